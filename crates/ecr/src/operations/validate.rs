//! ECR's request checks, in the service's words: `InvalidParameterException`
//! with "Invalid parameter at '<member>' failed to satisfy constraint:
//! '<constraint>'", the first violation of a request only (as ECR reports).

use std::sync::OnceLock;

use api::{ApiError, RequestContext};
use regex::Regex;

use crate::error;

/// What repository names match (botocore's model pattern).
const REPOSITORY_NAME_PATTERN: &str =
    r"^[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*(/[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*)*$";
/// The expression ECR's message names for a bad repository name.
const REPOSITORY_NAME_MESSAGE_PATTERN: &str =
    "(?:[a-z0-9]+(?:[._-][a-z0-9]+)*/)*[a-z0-9]+(?:[._-][a-z0-9]+)*";
/// Digests as the model's `LayerDigest` pattern writes them.
const LAYER_DIGEST_PATTERN: &str = r"^[a-zA-Z0-9\-_+.]+:[a-fA-F0-9]+$";
const UPLOAD_ID_PATTERN: &str =
    "^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$";

fn matches(cell: &'static OnceLock<Regex>, pattern: &str, value: &str) -> bool {
    cell.get_or_init(|| Regex::new(pattern).expect("patterns compile"))
        .is_match(value)
}

/// A required member.
pub(crate) fn required<T>(member: &str, value: Option<T>) -> Result<T, ApiError> {
    value.ok_or_else(|| error::invalid_parameter_at(member, "must not be null"))
}

/// A string's length, in characters.
pub(crate) fn length(member: &str, value: &str, min: usize, max: usize) -> Result<(), ApiError> {
    let length = value.chars().count();
    if length < min {
        return Err(error::invalid_parameter_at(
            member,
            format!("must have length greater than or equal to {min}"),
        ));
    }
    if length > max {
        return Err(error::invalid_parameter_at(
            member,
            format!("must have length less than or equal to {max}"),
        ));
    }
    Ok(())
}

/// A list's number of members.
pub(crate) fn count(member: &str, count: usize, min: usize, max: usize) -> Result<(), ApiError> {
    if count < min {
        return Err(error::invalid_parameter_at(
            member,
            format!("must contain at least {min} members"),
        ));
    }
    if count > max {
        return Err(error::invalid_parameter_at(
            member,
            format!("must contain at most {max} members"),
        ));
    }
    Ok(())
}

/// A required `repositoryName`.
pub(crate) fn repository_name(value: Option<&str>) -> Result<&str, ApiError> {
    static CELL: OnceLock<Regex> = OnceLock::new();
    let name = required("repositoryName", value)?;
    length("repositoryName", name, 2, 256)?;
    if !matches(&CELL, REPOSITORY_NAME_PATTERN, name) {
        return Err(error::invalid_parameter_at(
            "repositoryName",
            format!("must satisfy regular expression '{REPOSITORY_NAME_MESSAGE_PATTERN}'"),
        ));
    }
    Ok(name)
}

/// `registryId`, which must name the caller's own registry when given.
pub(crate) fn registry_id(ctx: &RequestContext, value: Option<&str>) -> Result<(), ApiError> {
    let Some(id) = value else { return Ok(()) };
    if id.len() != 12 || !id.bytes().all(|b| b.is_ascii_digit()) {
        return Err(error::invalid_parameter_at(
            "registryId",
            "must satisfy regular expression '[0-9]{12}'",
        ));
    }
    if id != ctx.account_id {
        return Err(error::invalid_parameter_at(
            "registryId",
            format!(
                "Berth serves only the registry of account '{}'; omit registryId or pass that id",
                ctx.account_id
            ),
        ));
    }
    Ok(())
}

/// `maxResults` in `[1, max]`; the page size (100 when absent, as ECR).
pub(crate) fn max_results(value: Option<i32>, max: i32) -> Result<usize, ApiError> {
    match value {
        None => Ok(100.min(max as usize)),
        Some(n) if n < 1 => Err(error::invalid_parameter_at(
            "maxResults",
            "must have value greater than or equal to 1",
        )),
        Some(n) if n > max => Err(error::invalid_parameter_at(
            "maxResults",
            format!("must have value less than or equal to {max}"),
        )),
        Some(n) => Ok(n as usize),
    }
}

/// Whether `digest` is shaped as the model's `LayerDigest`.
pub(crate) fn is_layer_digest(digest: &str) -> bool {
    static CELL: OnceLock<Regex> = OnceLock::new();
    matches(&CELL, LAYER_DIGEST_PATTERN, digest)
}

/// A required `uploadId`.
pub(crate) fn upload_id(value: Option<&str>) -> Result<&str, ApiError> {
    static CELL: OnceLock<Regex> = OnceLock::new();
    let id = required("uploadId", value)?;
    if !matches(&CELL, UPLOAD_ID_PATTERN, id) {
        return Err(error::invalid_parameter_at(
            "uploadId",
            format!(
                "must satisfy regular expression '{}'",
                &UPLOAD_ID_PATTERN[1..UPLOAD_ID_PATTERN.len() - 1]
            ),
        ));
    }
    Ok(id)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx() -> RequestContext {
        RequestContext {
            region: "us-east-1".into(),
            account_id: "000000000000".into(),
            principal_arn: String::new(),
            access_key_id: String::new(),
            request_id: String::new(),
            now_ms: 0,
        }
    }

    fn message(result: Result<impl Sized, ApiError>) -> Option<String> {
        result.err().map(|err| {
            assert_eq!(err.code, "InvalidParameterException");
            err.message
        })
    }

    #[test]
    fn repository_names_follow_ecrs_grammar() {
        for good in ["ab", "web", "team/web-app", "a.b_c__d--e/f", "a1/b2/c3"] {
            assert_eq!(message(repository_name(Some(good))), None, "{good}");
        }
        let pattern = "Invalid parameter at 'repositoryName' failed to satisfy constraint: 'must satisfy regular expression '(?:[a-z0-9]+(?:[._-][a-z0-9]+)*/)*[a-z0-9]+(?:[._-][a-z0-9]+)*''";
        for bad in ["Web", "-web", "web-", "a//b", "/ab", "ab/", "a b", "a:b"] {
            assert_eq!(
                message(repository_name(Some(bad))).as_deref(),
                Some(pattern),
                "{bad}"
            );
        }
        assert_eq!(
            message(repository_name(Some("a"))).as_deref(),
            Some("Invalid parameter at 'repositoryName' failed to satisfy constraint: 'must have length greater than or equal to 2'")
        );
        assert_eq!(
            message(repository_name(None)).as_deref(),
            Some("Invalid parameter at 'repositoryName' failed to satisfy constraint: 'must not be null'")
        );
    }

    #[test]
    fn registry_ids_must_be_the_accounts() {
        assert_eq!(message(registry_id(&ctx(), None)), None);
        assert_eq!(message(registry_id(&ctx(), Some("000000000000"))), None);
        assert!(message(registry_id(&ctx(), Some("123")))
            .unwrap()
            .contains("'[0-9]{12}'"));
        assert!(message(registry_id(&ctx(), Some("111111111111")))
            .unwrap()
            .contains("000000000000"));
    }

    #[test]
    fn page_sizes_default_to_100() {
        assert_eq!(max_results(None, 1000).unwrap(), 100);
        assert_eq!(max_results(Some(1000), 1000).unwrap(), 1000);
        assert!(max_results(Some(0), 1000).is_err());
        assert!(max_results(Some(101), 100).is_err());
    }

    #[test]
    fn digests_and_upload_ids_have_their_model_shapes() {
        assert!(is_layer_digest("sha256:abcdef0123"));
        assert!(!is_layer_digest("sha256:xyz"));
        assert!(!is_layer_digest("abc"));
        assert!(upload_id(Some("01234567-89ab-cdef-0123-456789abcdef")).is_ok());
        assert!(upload_id(Some("nope")).is_err());
    }
}
