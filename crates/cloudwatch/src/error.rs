//! CloudWatch's errors, in AWS's words. CloudWatch is `awsQueryCompatible`: the JSON and
//! CBOR protocols name an error by its shape (`InvalidParameterValueException`) and carry
//! the query protocol's code (`InvalidParameterValue`) in `x-amzn-query-error`; the query
//! protocol sends that code. This module is the one place the codes are spelled.

use api::ApiError;

/// An error of the modelled shape `shape` (e.g. `InvalidParameterValueException`).
fn modelled(shape: &'static str, message: impl Into<String>) -> ApiError {
    let (type_name, status, _) = cloudwatch_wire::error_type(shape).unwrap_or((shape, 400, true));
    let query_code = cloudwatch_wire::ERROR_TYPES
        .iter()
        .find(|(name, _, _, _)| *name == type_name)
        .map(|(_, code, _, _)| *code)
        .unwrap_or(shape);
    let mut error = ApiError::client(type_name, message).with_query_code(query_code);
    error.http_status = status;
    error
}

/// `InvalidParameterValue`: a parameter's value is not acceptable.
pub(crate) fn invalid_value(message: impl Into<String>) -> ApiError {
    modelled("InvalidParameterValueException", message)
}

/// `InvalidParameterValue` in AWS's usual wording: `The value X for parameter Y is invalid.`
pub(crate) fn invalid_value_for(value: impl std::fmt::Display, parameter: &str) -> ApiError {
    invalid_value(format!(
        "The value {value} for parameter {parameter} is invalid."
    ))
}

/// `InvalidParameterCombination`.
pub(crate) fn invalid_combination(message: impl Into<String>) -> ApiError {
    modelled("InvalidParameterCombinationException", message)
}

/// `MissingParameter`: `The parameter X is required.`
pub(crate) fn missing(parameter: &str) -> ApiError {
    modelled(
        "MissingRequiredParameterException",
        format!("The parameter {parameter} is required."),
    )
}

/// `ValidationError` (the constraint violations the decoders find, and AWS's own).
pub(crate) fn validation(message: impl Into<String>) -> ApiError {
    modelled("ValidationException", message)
}

/// `ResourceNotFound`.
pub(crate) fn not_found(message: impl Into<String>) -> ApiError {
    modelled("ResourceNotFound", message)
}

/// `ResourceNotFoundException` (tagging operations).
pub(crate) fn resource_not_found_exception(message: impl Into<String>) -> ApiError {
    modelled("ResourceNotFoundException", message)
}

/// `InvalidNextToken`.
pub(crate) fn invalid_next_token() -> ApiError {
    modelled(
        "InvalidNextToken",
        "The service cannot process the NextToken.",
    )
}

/// `LimitExceeded` (alarms).
pub(crate) fn limit_exceeded(message: impl Into<String>) -> ApiError {
    modelled("LimitExceededFault", message)
}

/// An operation of the model Berth does not serve.
pub(crate) fn unsupported_operation(operation: &str) -> ApiError {
    modelled(
        "InvalidParameterValueException",
        format!("The operation {operation} is not supported by Berth."),
    )
}

/// A fault of Berth's (500, `InternalServiceError`).
pub(crate) fn internal(message: impl Into<String>) -> ApiError {
    modelled("InternalServiceFault", message)
}

pub(crate) fn from_metric_store(err: metric_store::MetricStoreError) -> ApiError {
    internal(format!("metric store: {err}"))
}
