//! The AWS JSON 1.1 protocol (ECS and other `X-Amz-Target` services).

use serde::Serialize;

/// `Content-Type` of JSON 1.1 requests and responses.
pub const CONTENT_TYPE: &str = "application/x-amz-json-1.1";

#[derive(Serialize)]
struct ErrorBody<'a> {
    #[serde(rename = "__type")]
    error_type: &'a str,
    message: &'a str,
}

/// An error response body: `{"__type":"<code>","message":"<message>"}`, JSON-escaped.
pub fn error_body(code: &str, message: &str) -> Vec<u8> {
    let body = ErrorBody {
        error_type: code,
        message,
    };
    // Serializing two string fields into memory cannot fail.
    serde_json::to_vec(&body).unwrap_or_default()
}

/// [`error_body`] with the error shape's other members beside `__type` and
/// `message` (a member of those names in `members` is ignored).
pub fn error_body_with(
    code: &str,
    message: &str,
    members: &serde_json::Map<String, serde_json::Value>,
) -> Vec<u8> {
    if members.is_empty() {
        return error_body(code, message);
    }
    let mut body = members.clone();
    body.insert("__type".into(), code.into());
    body.insert("message".into(), message.into());
    serde_json::to_vec(&body).unwrap_or_default()
}

/// Splits an `X-Amz-Target` value such as `AmazonEC2ContainerServiceV20141113.RunTask` into
/// the service prefix and the operation name. `None` unless both are non-empty.
pub fn parse_target(value: &str) -> Option<(&str, &str)> {
    let (prefix, operation) = value.rsplit_once('.')?;
    if prefix.is_empty() || operation.is_empty() {
        None
    } else {
        Some((prefix, operation))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_body_escapes_and_keeps_the_aws_field_order() {
        let check = |code: &str, message: &str, expected: &str| {
            let body = error_body(code, message);
            assert_eq!(std::str::from_utf8(&body).unwrap(), expected);
            let parsed: serde_json::Value = serde_json::from_slice(&body).unwrap();
            assert_eq!(parsed["__type"], code);
            assert_eq!(parsed["message"], message);
        };
        check(
            "ClusterNotFoundException",
            "Cluster not found.",
            r#"{"__type":"ClusterNotFoundException","message":"Cluster not found."}"#,
        );
        check(
            "InvalidParameterException",
            "bad \"name\"\n\\ \u{1} caf\u{e9}",
            r#"{"__type":"InvalidParameterException","message":"bad \"name\"\n\\ \u0001 café"}"#,
        );
    }

    #[test]
    fn error_members_go_beside_type_and_message() {
        let mut members = serde_json::Map::new();
        members.insert(
            "queryCompileError".into(),
            serde_json::json!({"message": "m"}),
        );
        members.insert("message".into(), "not this one".into());
        let body: serde_json::Value =
            serde_json::from_slice(&error_body_with("MalformedQueryException", "bad", &members))
                .unwrap();
        assert_eq!(
            body,
            serde_json::json!({"__type": "MalformedQueryException", "message": "bad",
                "queryCompileError": {"message": "m"}})
        );
        assert_eq!(
            error_body_with("X", "y", &serde_json::Map::new()),
            error_body("X", "y")
        );
    }

    #[test]
    fn parse_target_splits_prefix_and_operation() {
        assert_eq!(
            parse_target("AmazonEC2ContainerServiceV20141113.RunTask"),
            Some(("AmazonEC2ContainerServiceV20141113", "RunTask"))
        );
        assert_eq!(
            parse_target("Logs_20140328.PutLogEvents"),
            Some(("Logs_20140328", "PutLogEvents"))
        );
        assert_eq!(parse_target("a.b.C"), Some(("a.b", "C")));
        for bad in [
            "",
            "RunTask",
            ".RunTask",
            "AmazonEC2ContainerServiceV20141113.",
        ] {
            assert_eq!(parse_target(bad), None, "{bad:?}");
        }
    }
}
