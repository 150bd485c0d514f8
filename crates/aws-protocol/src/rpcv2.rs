//! The Smithy RPC v2 CBOR protocol (`smithy-rpc-v2-cbor`), the first CloudWatch's model
//! lists (SDKs that support it use it; botocore 1.44 still prefers JSON 1.0): `POST /service/<ServiceName>/operation/<Operation>` with
//! `smithy-protocol: rpc-v2-cbor`, CBOR bodies both ways, and errors as a CBOR map with
//! `__type` and `message`.

/// The header both requests and responses carry, and its value.
pub const PROTOCOL_HEADER: &str = "smithy-protocol";
pub const PROTOCOL: &str = "rpc-v2-cbor";
pub const CONTENT_TYPE: &str = "application/cbor";
/// An `awsQueryCompatible` service's query-protocol error code and fault
/// (`InvalidParameterValue;Sender`), on JSON and CBOR error responses; botocore reports that
/// code when the request said `x-amzn-query-mode: true`.
pub const QUERY_ERROR_HEADER: &str = "x-amzn-query-error";

/// `(service, operation)` of an RPC v2 path, `None` for any other path.
pub fn parse_path(path: &str) -> Option<(&str, &str)> {
    let rest = path.strip_prefix("/service/")?;
    let (service, operation) = rest.split_once("/operation/")?;
    let valid = |name: &str| {
        !name.is_empty()
            && name
                .bytes()
                .all(|byte| byte.is_ascii_alphanumeric() || byte == b'_')
    };
    (valid(service) && valid(operation)).then_some((service, operation))
}

/// The value of [`QUERY_ERROR_HEADER`].
pub fn query_error_header(query_code: &str, server_fault: bool) -> String {
    let fault = if server_fault { "Receiver" } else { "Sender" };
    format!("{query_code};{fault}")
}

/// An error body: a CBOR map of `__type`, `message` and the shape's other members.
pub fn error_body(
    type_name: &str,
    message: &str,
    members: &serde_json::Map<String, serde_json::Value>,
) -> Vec<u8> {
    let mut map = serde_json::Map::with_capacity(members.len() + 2);
    map.insert("__type".into(), type_name.into());
    map.insert("message".into(), message.into());
    for (name, value) in members {
        map.insert(name.clone(), value.clone());
    }
    let mut out = Vec::new();
    // A JSON value always encodes.
    let _ = ciborium::ser::into_writer(&serde_json::Value::Object(map), &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_name_service_and_operation() {
        let cases = [
            (
                "/service/GraniteServiceVersion20100801/operation/PutMetricData",
                Some(("GraniteServiceVersion20100801", "PutMetricData")),
            ),
            ("/service/x/operation/", None),
            ("/service//operation/Op", None),
            ("/v2/", None),
            ("/service/a/operation/b/c", None),
        ];
        for (path, expected) in cases {
            assert_eq!(parse_path(path), expected, "{path}");
        }
    }

    #[test]
    fn error_bodies_are_cbor_maps() {
        let body = error_body("ResourceNotFound", "gone", &Default::default());
        let value: ciborium::Value = ciborium::de::from_reader(&body[..]).unwrap();
        let map = value.as_map().unwrap();
        assert_eq!(map[0].0.as_text(), Some("__type"));
        assert_eq!(map[0].1.as_text(), Some("ResourceNotFound"));
        assert_eq!(map[1].1.as_text(), Some("gone"));
        assert_eq!(
            query_error_header("ResourceNotFound", false),
            "ResourceNotFound;Sender"
        );
    }
}
