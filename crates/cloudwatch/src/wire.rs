//! One decoder and one encoder per protocol, so every operation is written once.
//!
//! Query requests go through the generated form decoder (`FromForm`), which checks required
//! members, enum values, lengths and ranges while decoding; JSON and CBOR bodies are decoded
//! by serde and then checked by the generated `Validate`, which applies the same checks with
//! the same paths and AWS's `ValidationError` wording, so every protocol refuses the same
//! requests with the same message. Responses are serde (JSON, CBOR) or the generated
//! `ToXml` (query).

use api::ApiError;
use cloudwatch_wire::{Form, Request, Response, Validate};
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::error;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Wire {
    Json,
    Cbor,
    Query,
}

fn serialization(message: impl Into<String>) -> ApiError {
    let mut error = ApiError::serialization(message);
    error.query_code = Some("SerializationException");
    error
}

/// Decodes an operation's input from `wire`.
pub(crate) fn decode<T: Request + Validate + DeserializeOwned>(
    wire: Wire,
    body: &[u8],
) -> Result<T, ApiError> {
    let request: T = match wire {
        Wire::Query => return T::decode(&Form::parse(body)).map_err(error::validation),
        Wire::Json if body.iter().all(u8::is_ascii_whitespace) => {
            serde_json::from_slice(b"{}").map_err(|err| serialization(err.to_string()))?
        }
        Wire::Json => serde_json::from_slice(body)
            .map_err(|err| serialization(format!("Malformed JSON body: {err}")))?,
        Wire::Cbor => cloudwatch_wire::from_cbor(body).map_err(serialization)?,
    };
    request.validated().map_err(error::validation)?;
    Ok(request)
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
    fn json_bodies_decode_with_their_timestamps() {
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
        let nested_json = decode::<PutMetricDataInput>(
            Wire::Json,
            br#"{"Namespace":"App","MetricData":[{"MetricName":"a","Value":1},
                {"MetricName":"b","Unit":"Parsecs","Dimensions":[{"Name":"x"}]}]}"#,
        )
        .unwrap_err();
        let nested_query = decode::<PutMetricDataInput>(
            Wire::Query,
            b"Namespace=App&MetricData.member.1.MetricName=a&MetricData.member.1.Value=1\
              &MetricData.member.2.MetricName=b&MetricData.member.2.Unit=Parsecs\
              &MetricData.member.2.Dimensions.member.1.Name=x",
        )
        .unwrap_err();
        assert_eq!(nested_json.message, nested_query.message);
        assert!(
            nested_json
                .message
                .starts_with("2 validation errors detected"),
            "{}",
            nested_json.message
        );
        assert_eq!(
            json.message,
            "1 validation error detected: Value null at 'namespace' failed to satisfy \
             constraint: Member must not be null"
        );
        assert_eq!(json.code, "ValidationException");
        assert_eq!(json.query_code, Some("ValidationError"));
    }
}
