//! One decoder and one encoder per protocol, so every operation is written once.
//!
//! Requests of all three protocols go through the generated query decoder (`FromForm`):
//! a JSON or CBOR body is first flattened into the form parameters the query protocol would
//! have sent (`MetricData.member.1.Value=…`), so required members, enum values, lengths and
//! ranges are checked the same way, in AWS's `ValidationError` wording, whatever the client
//! speaks. Responses are serde (JSON, CBOR) or the generated `ToXml` (query).

use api::ApiError;
use cloudwatch_wire::{Form, Request, Response};
use serde::Serialize;

use crate::error;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Wire {
    Json,
    Cbor,
    Query,
}

/// The form parameters of a request body in `wire`.
pub(crate) fn form(wire: Wire, body: &[u8]) -> Result<Form, ApiError> {
    let json = match wire {
        Wire::Query => return Ok(Form::parse(body)),
        Wire::Json => {
            let body: &[u8] = if body.iter().all(u8::is_ascii_whitespace) {
                b"{}"
            } else {
                body
            };
            serde_json::from_slice::<serde_json::Value>(body)
                .map_err(|err| serialization(format!("Malformed JSON body: {err}")))?
        }
        Wire::Cbor => cloudwatch_wire::cbor_to_json_value(body).map_err(serialization)?,
    };
    let serde_json::Value::Object(members) = json else {
        return Err(serialization("The request body must be a structure."));
    };
    let mut pairs = Vec::new();
    flatten_members(&members, "", &mut pairs);
    Ok(Form::from_pairs(
        pairs
            .iter()
            .map(|(key, value)| (key.as_str(), value.as_str())),
    ))
}

fn serialization(message: impl Into<String>) -> ApiError {
    let mut error = ApiError::serialization(message);
    error.query_code = Some("SerializationException");
    error
}

fn flatten_members(
    members: &serde_json::Map<String, serde_json::Value>,
    prefix: &str,
    out: &mut Vec<(String, String)>,
) {
    for (name, value) in members {
        flatten_value(value, &format!("{prefix}{name}"), out);
    }
}

fn flatten_value(value: &serde_json::Value, key: &str, out: &mut Vec<(String, String)>) {
    use serde_json::Value;
    match value {
        Value::Null => {}
        Value::Bool(flag) => out.push((key.to_string(), flag.to_string())),
        Value::Number(number) => out.push((key.to_string(), number.to_string())),
        Value::String(text) => out.push((key.to_string(), text.clone())),
        Value::Array(items) if items.is_empty() => out.push((key.to_string(), String::new())),
        Value::Array(items) => {
            for (index, item) in items.iter().enumerate() {
                flatten_value(item, &format!("{key}.member.{}", index + 1), out);
            }
        }
        Value::Object(members) => flatten_members(members, &format!("{key}."), out),
    }
}

/// Decodes an operation's input from `wire`.
pub(crate) fn decode<T: Request>(wire: Wire, body: &[u8]) -> Result<T, ApiError> {
    T::decode(&form(wire, body)?).map_err(error::validation)
}

/// Encodes an operation's output for `wire`.
pub(crate) fn encode<T: Response + Serialize>(
    wire: Wire,
    request_id: &str,
    output: &T,
) -> Result<Vec<u8>, ApiError> {
    Ok(match wire {
        Wire::Json => serde_json::to_vec(output)
            .map_err(|err| error::internal(format!("response encoding failed: {err}")))?,
        Wire::Cbor => cloudwatch_wire::to_cbor(output),
        Wire::Query => output.to_xml_document(request_id),
    })
}

/// The response of an operation without an output shape.
pub(crate) fn encode_empty(wire: Wire, action: &str, request_id: &str) -> Vec<u8> {
    match wire {
        Wire::Json => b"{}".to_vec(),
        Wire::Cbor => cloudwatch_wire::to_cbor(&serde_json::Map::new()),
        Wire::Query => aws_protocol::query_wire::xml_document(
            action,
            cloudwatch_wire::XML_NAMESPACE,
            request_id,
            |_| {},
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cloudwatch_wire::PutMetricDataInput;

    #[test]
    fn json_bodies_flatten_into_the_query_form() {
        let body = br#"{"Namespace":"App","MetricData":[{"MetricName":"Hits","Value":3,
            "Dimensions":[{"Name":"Host","Value":"a"}],"Timestamp":1796652000.5}]}"#;
        let request: PutMetricDataInput = decode(Wire::Json, body).unwrap();
        let datum = &request.metric_data.unwrap()[0];
        assert_eq!(datum.value, Some(3.0));
        assert_eq!(datum.timestamp, Some(1_796_652_000_500));
        assert_eq!(
            datum.dimensions.as_ref().unwrap()[0].name.as_deref(),
            Some("Host")
        );
    }

    #[test]
    fn every_protocol_reports_constraint_violations_alike() {
        let json = decode::<PutMetricDataInput>(Wire::Json, br#"{"MetricData":[]}"#).unwrap_err();
        let query = decode::<PutMetricDataInput>(Wire::Query, b"MetricData=").unwrap_err();
        assert_eq!(json.message, query.message);
        assert_eq!(
            json.message,
            "1 validation error detected: Value null at 'namespace' failed to satisfy \
             constraint: Member must not be null"
        );
        assert_eq!(json.code, "ValidationException");
        assert_eq!(json.query_code, Some("ValidationError"));
    }
}
