//! Opaque `nextToken`s and `maxResults` bounds, as AWS list operations use them.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde::{Deserialize, Serialize};

use crate::ApiError;

#[derive(Serialize, Deserialize)]
struct TokenBody {
    /// The operation the token belongs to, so a token is not reused elsewhere.
    op: String,
    /// The sort key of the last item returned.
    after: String,
}

/// Encodes the position after `after` for `operation`.
pub fn encode_token(operation: &str, after: &str) -> String {
    let body = TokenBody {
        op: operation.to_string(),
        after: after.to_string(),
    };
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(&body).expect("token serializes"))
}

/// Decodes a `nextToken` given to `operation`; `None` when absent.
pub fn decode_token(operation: &str, token: Option<&str>) -> Result<Option<String>, ApiError> {
    let Some(token) = token else {
        return Ok(None);
    };
    let invalid = || {
        ApiError::invalid_parameter(
            "Invalid nextToken. Pass the nextToken returned by the previous call of the same operation, unchanged.",
        )
    };
    let bytes = URL_SAFE_NO_PAD
        .decode(token.trim_end_matches('='))
        .map_err(|_| invalid())?;
    let body: TokenBody = serde_json::from_slice(&bytes).map_err(|_| invalid())?;
    if body.op != operation {
        return Err(invalid());
    }
    Ok(Some(body.after))
}

/// Checks `maxResults` against `[1, max]` and applies the default.
pub fn page_size(max_results: Option<i32>, default: usize, max: usize) -> Result<usize, ApiError> {
    match max_results {
        None => Ok(default),
        Some(n) if n >= 1 && n as usize <= max => Ok(n as usize),
        Some(n) => Err(ApiError::invalid_parameter(format!(
            "maxResults must be between 1 and {max}; {n} was given."
        ))),
    }
}

/// One page of `items` (sorted by `key`), starting after the token's key.
/// Returns the page and the next token when more items follow.
pub fn paginate<T>(
    operation: &str,
    items: Vec<T>,
    key: impl Fn(&T) -> String,
    after: Option<&str>,
    page_size: usize,
    descending: bool,
) -> (Vec<T>, Option<String>) {
    let mut remaining: Vec<T> = match after {
        None => items,
        Some(after) => items
            .into_iter()
            .filter(|item| {
                let k = key(item);
                if descending {
                    k.as_str() < after
                } else {
                    k.as_str() > after
                }
            })
            .collect(),
    };
    if remaining.len() <= page_size {
        return (remaining, None);
    }
    remaining.truncate(page_size);
    let next = remaining
        .last()
        .map(|last| encode_token(operation, &key(last)));
    (remaining, next)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_round_trip_and_reject_garbage() {
        let token = encode_token("ListClusters", "/ecs/us-east-1/clusters/b");
        assert_eq!(
            decode_token("ListClusters", Some(&token))
                .unwrap()
                .as_deref(),
            Some("/ecs/us-east-1/clusters/b")
        );
        assert!(decode_token("ListTaskDefinitions", Some(&token)).is_err());
        assert!(decode_token("ListClusters", Some("not a token")).is_err());
        assert!(decode_token("ListClusters", Some("")).is_err());
        assert_eq!(decode_token("ListClusters", None).unwrap(), None);
    }

    #[test]
    fn pages_walk_everything_once() {
        for descending in [false, true] {
            let mut items: Vec<String> = (0..25).map(|i| format!("k{i:02}")).collect();
            if descending {
                items.reverse();
            }
            let mut seen = Vec::new();
            let mut after: Option<String> = None;
            loop {
                let (page, next) = paginate(
                    "Op",
                    items.clone(),
                    |s| s.clone(),
                    after.as_deref(),
                    10,
                    descending,
                );
                seen.extend(page);
                match next {
                    Some(token) => after = decode_token("Op", Some(&token)).unwrap(),
                    None => break,
                }
            }
            assert_eq!(seen, items);
        }
    }

    #[test]
    fn page_size_bounds() {
        assert_eq!(page_size(None, 100, 100).unwrap(), 100);
        assert_eq!(page_size(Some(1), 100, 100).unwrap(), 1);
        assert!(page_size(Some(0), 100, 100).is_err());
        assert!(page_size(Some(101), 100, 100).is_err());
    }
}
