/// Why a schedule or configuration cannot be used. The API answers with a
/// `ValidationException` carrying the message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScalingError {
    #[error("{0}")]
    Invalid(String),
}
