//! Application Auto Scaling's errors, in AWS's words. Every error reaches the caller as an
//! [`api::ApiError`]; this module is the one place the codes are spelled.

use api::ApiError;

/// What went wrong with a request, by the error shape AWS answers with.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum AutoScalingError {
    /// A request AWS's front end or the service refuses (400).
    #[error("{0}")]
    Validation(String),
    /// The scalable target, policy or scheduled action named does not exist.
    #[error("{0}")]
    ObjectNotFound(String),
    /// A concurrent request changed the same records; retry.
    #[error("{0}")]
    ConcurrentUpdate(String),
    /// A quota (scalable targets, policies, scheduled actions) is reached.
    #[error("{0}")]
    LimitExceeded(String),
    /// TagResource and its kin: the ARN names no scalable target.
    #[error("{0}")]
    ResourceNotFound(String),
    /// More than 50 tags on one resource.
    #[error("{0}")]
    TooManyTags(String),
    /// Reading the CloudWatch alarms of a policy failed.
    #[error("{0}")]
    FailedResourceAccess(String),
    /// NextToken is not one this service returned.
    #[error("{0}")]
    InvalidNextToken(String),
    /// A fault of Berth's (500).
    #[error("{0}")]
    Internal(String),
}

impl From<AutoScalingError> for ApiError {
    fn from(err: AutoScalingError) -> Self {
        let client = |code: &'static str, message: String| ApiError::client(code, message);
        match err {
            AutoScalingError::Validation(m) => client("ValidationException", m),
            AutoScalingError::ObjectNotFound(m) => client("ObjectNotFoundException", m),
            AutoScalingError::ConcurrentUpdate(m) => client("ConcurrentUpdateException", m),
            AutoScalingError::LimitExceeded(m) => client("LimitExceededException", m),
            AutoScalingError::ResourceNotFound(m) => client("ResourceNotFoundException", m),
            AutoScalingError::TooManyTags(m) => client("TooManyTagsException", m),
            AutoScalingError::FailedResourceAccess(m) => client("FailedResourceAccessException", m),
            AutoScalingError::InvalidNextToken(m) => client("InvalidNextTokenException", m),
            AutoScalingError::Internal(m) => ApiError {
                code: "InternalServiceException",
                message: m,
                http_status: 500,
                members: Default::default(),
                query_code: None,
            },
        }
    }
}

pub(crate) fn validation(message: impl Into<String>) -> ApiError {
    AutoScalingError::Validation(message.into()).into()
}

pub(crate) fn object_not_found(message: impl Into<String>) -> ApiError {
    AutoScalingError::ObjectNotFound(message.into()).into()
}

pub(crate) fn limit_exceeded(message: impl Into<String>) -> ApiError {
    AutoScalingError::LimitExceeded(message.into()).into()
}

pub(crate) fn resource_not_found(message: impl Into<String>) -> ApiError {
    AutoScalingError::ResourceNotFound(message.into()).into()
}

pub(crate) fn too_many_tags(message: impl Into<String>) -> ApiError {
    AutoScalingError::TooManyTags(message.into()).into()
}

pub(crate) fn failed_resource_access(message: impl Into<String>) -> ApiError {
    AutoScalingError::FailedResourceAccess(message.into()).into()
}

pub(crate) fn invalid_next_token() -> ApiError {
    AutoScalingError::InvalidNextToken("Invalid token".into()).into()
}

/// A read-modify-write lost its compare-and-swap race too many times.
pub(crate) fn concurrent_update() -> ApiError {
    AutoScalingError::ConcurrentUpdate(
        "You already have a pending update to an Application Auto Scaling resource; retry the request."
            .into(),
    )
    .into()
}

/// `No scalable target registered for service namespace: ecs, resource ID: …, scalable
/// dimension: …`
pub(crate) fn target_not_found(namespace: &str, resource_id: &str, dimension: &str) -> ApiError {
    object_not_found(format!(
        "No scalable target registered for service namespace: {namespace}, resource ID: {resource_id}, scalable dimension: {dimension}"
    ))
}

pub(crate) fn policy_not_found(
    namespace: &str,
    resource_id: &str,
    dimension: &str,
    policy_name: &str,
) -> ApiError {
    object_not_found(format!(
        "No scaling policy found for service namespace: {namespace}, resource ID: {resource_id}, scalable dimension: {dimension}, policy name: {policy_name}"
    ))
}

pub(crate) fn scheduled_action_not_found(
    namespace: &str,
    resource_id: &str,
    dimension: &str,
    name: &str,
) -> ApiError {
    object_not_found(format!(
        "No scheduled action found for service namespace: {namespace}, resource ID: {resource_id}, scalable dimension: {dimension}, scheduled action name: {name}"
    ))
}

/// Another service's error while Berth called it in-process (CloudWatch, ECS), as a fault of
/// ours: the caller's request was valid.
pub(crate) fn internal(message: impl Into<String>) -> ApiError {
    AutoScalingError::Internal(message.into()).into()
}
