/// A request that breaks one of ECS's rules. The variant is the AWS error
/// code the API answers with; the message says what is wrong and how to fix it.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ModelError {
    /// Answered as `ClientException`.
    #[error("{0}")]
    Client(String),
    /// Answered as `InvalidParameterException`.
    #[error("{0}")]
    InvalidParameter(String),
}

impl ModelError {
    pub fn client(message: impl Into<String>) -> Self {
        ModelError::Client(message.into())
    }
    pub fn invalid_parameter(message: impl Into<String>) -> Self {
        ModelError::InvalidParameter(message.into())
    }
    pub fn message(&self) -> &str {
        match self {
            ModelError::Client(m) | ModelError::InvalidParameter(m) => m,
        }
    }
}
