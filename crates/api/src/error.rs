use std::fmt;

/// An error answered to the caller in AWS's error format.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub struct ApiError {
    /// The AWS error code, e.g. `ClusterNotFoundException`.
    pub code: &'static str,
    pub message: String,
    /// 400 for client faults, 500 for `ServerException`.
    pub http_status: u16,
    /// The error shape's other members (e.g. CloudWatch Logs'
    /// `queryCompileError`), sent beside `__type` and `message`.
    pub members: serde_json::Map<String, serde_json::Value>,
    /// For services AWS marks `awsQueryCompatible` (CloudWatch): the error's
    /// query-protocol code when it differs from `code` (the shape name the
    /// JSON and CBOR protocols send in `__type`), e.g. `InvalidParameterValue`
    /// for `InvalidParameterValueException`. Sent in `x-amzn-query-error` on
    /// JSON and CBOR, and as the code on the query protocol.
    pub query_code: Option<&'static str>,
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code, self.message)
    }
}

impl ApiError {
    pub fn client(code: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            code,
            message: message.into(),
            http_status: 400,
            members: Default::default(),
            query_code: None,
        }
    }
    pub fn server(message: impl Into<String>) -> Self {
        ApiError {
            code: "ServerException",
            message: message.into(),
            http_status: 500,
            members: Default::default(),
            query_code: None,
        }
    }
    /// The error with its query-protocol code (see [`ApiError::query_code`]).
    pub fn with_query_code(mut self, query_code: &'static str) -> Self {
        self.query_code = Some(query_code);
        self
    }
    /// The error with one more member of its shape.
    pub fn with_member(mut self, name: &str, value: serde_json::Value) -> Self {
        self.members.insert(name.to_string(), value);
        self
    }
    pub fn unknown_operation(operation: &str) -> Self {
        Self::client(
            "UnknownOperationException",
            format!("Unknown operation: {operation}"),
        )
    }
    pub fn serialization(message: impl Into<String>) -> Self {
        Self::client("SerializationException", message)
    }
    pub fn invalid_parameter(message: impl Into<String>) -> Self {
        Self::client("InvalidParameterException", message)
    }
    pub fn client_exception(message: impl Into<String>) -> Self {
        Self::client("ClientException", message)
    }
}

impl From<store::StoreError> for ApiError {
    fn from(err: store::StoreError) -> Self {
        ApiError::server(err.to_string())
    }
}

impl From<model::ModelError> for ApiError {
    fn from(err: model::ModelError) -> Self {
        match err {
            model::ModelError::Client(message) => ApiError::client_exception(message),
            model::ModelError::InvalidParameter(message) => ApiError::invalid_parameter(message),
        }
    }
}

impl ApiError {
    pub fn cluster_not_found() -> Self {
        Self::client("ClusterNotFoundException", "Cluster not found.")
    }
}
