//! CloudWatch Logs' errors, in AWS's words. Every error is an
//! [`api::ApiError`]; this module is the one place the codes are spelled.

use api::ApiError;

pub(crate) fn group_not_found() -> ApiError {
    ApiError::client(
        "ResourceNotFoundException",
        "The specified log group does not exist.",
    )
}

pub(crate) fn stream_not_found() -> ApiError {
    ApiError::client(
        "ResourceNotFoundException",
        "The specified log stream does not exist.",
    )
}

pub(crate) fn metric_filter_not_found() -> ApiError {
    ApiError::client(
        "ResourceNotFoundException",
        "The specified metric filter does not exist.",
    )
}

pub(crate) fn group_exists() -> ApiError {
    ApiError::client(
        "ResourceAlreadyExistsException",
        "The specified log group already exists",
    )
}

pub(crate) fn stream_exists() -> ApiError {
    ApiError::client(
        "ResourceAlreadyExistsException",
        "The specified log stream already exists",
    )
}

pub(crate) fn invalid(message: impl Into<String>) -> ApiError {
    ApiError::invalid_parameter(message)
}

pub(crate) fn limit_exceeded(message: impl Into<String>) -> ApiError {
    ApiError::client("LimitExceededException", message)
}

pub(crate) fn too_many_tags(message: impl Into<String>) -> ApiError {
    ApiError::client("TooManyTagsException", message)
}

pub(crate) fn from_log_store(err: log_store::LogStoreError) -> ApiError {
    unavailable(err.to_string())
}

/// A fault of Berth's, not the caller's (500).
pub(crate) fn unavailable(message: impl Into<String>) -> ApiError {
    ApiError {
        code: "ServiceUnavailableException",
        message: message.into(),
        http_status: 500,
        members: Default::default(),
        query_code: None,
    }
}
