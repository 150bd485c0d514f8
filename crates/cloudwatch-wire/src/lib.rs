//! CloudWatch's wire shapes (API version 2010-08-01), generated from botocore's model by
//! `tools/codegen/query_shapes.py --json-timestamps` into `generated.rs` (do not edit it;
//! regenerate). CloudWatch speaks three protocols and Berth serves all of them from these
//! shapes:
//!
//! - `smithy-rpc-v2-cbor` (the model's first protocol): [`from_cbor`] / [`to_cbor`];
//!   timestamps are CBOR tag 1 (epoch seconds).
//! - `awsJson1_0` (`X-Amz-Target: GraniteServiceVersion20100801.<Operation>`): serde_json;
//!   timestamps are epoch seconds.
//! - `awsQuery` (form in, XML out; older SDKs and CLIs): the generated `FromForm` / `ToXml`
//!   over `aws_protocol::query_wire`; timestamps are ISO 8601.
//!
//! Every member is `Option`; strings stay `String` (enum values are validated only by the
//! query decoder, the others by the operations), timestamps are epoch milliseconds in Rust.

mod generated;
pub use generated::*;

pub use aws_protocol::query_wire::*;

/// The `X-Amz-Target` prefix of the JSON protocol, and the service name in the CBOR
/// protocol's path (`/service/GraniteServiceVersion20100801/operation/<Operation>`).
pub const TARGET_PREFIX: &str = "GraniteServiceVersion20100801";

/// An operation's output shape.
pub trait Response: ToXml {
    const ACTION: &'static str;

    /// The query protocol's response document (see
    /// [`aws_protocol::query_wire::xml_document`]).
    fn to_xml_document(&self, request_id: &str) -> Vec<u8> {
        xml_document(Self::ACTION, XML_NAMESPACE, request_id, |out| {
            self.write_xml(out)
        })
    }
}

/// The error shape `code` names, as the JSON and CBOR protocols report it in `__type`
/// (`InvalidParameterValue` → `InvalidParameterValueException`), with its HTTP status and
/// whether it is the sender's fault. `code` may be the query code or the shape name.
pub fn error_type(code: &str) -> Option<(&'static str, u16, bool)> {
    // A shape's own name first: two shapes share the code `ResourceNotFound`.
    let entry = ERROR_TYPES
        .iter()
        .find(|(name, _, _, _)| *name == code)
        .or_else(|| {
            ERROR_TYPES
                .iter()
                .find(|(_, query_code, _, _)| *query_code == code)
        })?;
    Some((entry.0, entry.2, entry.3))
}

/// Decodes a CBOR request body into `T`. The body goes through a JSON value so numbers
/// convert as the JSON protocol's do (an integer where a double is expected), tag 1
/// timestamps become their epoch seconds and byte strings base64 (as JSON carries blobs).
/// An empty body is an empty structure.
pub fn from_cbor<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, String> {
    // Straight into the shape when the numbers have the shape's types (what botocore
    // sends); through a JSON value otherwise.
    if !body.is_empty() {
        if let Ok(decoded) = ciborium::de::from_reader::<T, _>(body) {
            return Ok(decoded);
        }
    }
    let value: ciborium::Value = if body.is_empty() {
        ciborium::Value::Map(Vec::new())
    } else {
        ciborium::de::from_reader(body).map_err(|err| format!("Malformed CBOR body: {err}"))?
    };
    serde_json_from_value(cbor_to_json(value)?)
}

/// A CBOR body as the JSON value the JSON protocol would have sent (see [`from_cbor`]).
pub fn cbor_to_json_value(body: &[u8]) -> Result<serde_json::Value, String> {
    if body.is_empty() {
        return Ok(serde_json::Value::Object(Default::default()));
    }
    let value: ciborium::Value =
        ciborium::de::from_reader(body).map_err(|err| format!("Malformed CBOR body: {err}"))?;
    cbor_to_json(value)
}

fn serde_json_from_value<T: serde::de::DeserializeOwned>(
    value: serde_json::Value,
) -> Result<T, String> {
    serde_json::from_value(value).map_err(|err| err.to_string())
}

fn cbor_to_json(value: ciborium::Value) -> Result<serde_json::Value, String> {
    use ciborium::Value as C;
    use serde_json::Value as J;
    Ok(match value {
        C::Integer(integer) => {
            let wide = i128::from(integer);
            if let Ok(small) = i64::try_from(wide) {
                J::from(small)
            } else if let Ok(unsigned) = u64::try_from(wide) {
                J::from(unsigned)
            } else {
                return Err("integer out of range".to_string());
            }
        }
        C::Float(float) => serde_json::Number::from_f64(float)
            .map(J::Number)
            // NaN and infinities have no JSON form; the operations refuse them as AWS does
            // (a string the shape's f64 cannot take).
            .unwrap_or_else(|| J::String(float.to_string())),
        C::Text(text) => J::String(text),
        C::Bytes(bytes) => {
            use base64::Engine;
            J::String(base64::engine::general_purpose::STANDARD.encode(bytes))
        }
        C::Bool(flag) => J::Bool(flag),
        C::Null => J::Null,
        C::Tag(_, inner) => cbor_to_json(*inner)?,
        C::Array(items) => J::Array(
            items
                .into_iter()
                .map(cbor_to_json)
                .collect::<Result<_, _>>()?,
        ),
        C::Map(entries) => {
            let mut map = serde_json::Map::with_capacity(entries.len());
            for (key, value) in entries {
                let C::Text(key) = key else {
                    return Err("map keys must be text strings".to_string());
                };
                // CBOR's null member is an absent one.
                if matches!(value, C::Null) {
                    continue;
                }
                map.insert(key, cbor_to_json(value)?);
            }
            J::Object(map)
        }
        _ => return Err("unsupported CBOR value".to_string()),
    })
}

/// Encodes a response shape as CBOR (timestamps as tag 1).
pub fn to_cbor<T: serde::Serialize>(value: &T) -> Vec<u8> {
    let mut out = Vec::new();
    // Writing into a Vec fails only for values serde cannot express, which the generated
    // shapes never hold.
    ciborium::ser::into_writer(value, &mut out).expect("wire shapes encode as CBOR");
    out
}

/// Reading double members: a CBOR integer is a double too (serde_json converts by itself;
/// ciborium keeps the two apart), so a body whose whole numbers are integers still decodes
/// straight into the shape.
pub mod number {
    use serde::de::{self, Deserializer, Visitor};
    use serde::Deserialize;

    struct Double(f64);

    impl<'de> Deserialize<'de> for Double {
        fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
            struct DoubleVisitor;
            impl Visitor<'_> for DoubleVisitor {
                type Value = Double;
                fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                    f.write_str("a number")
                }
                fn visit_f64<E: de::Error>(self, value: f64) -> Result<Double, E> {
                    Ok(Double(value))
                }
                fn visit_i64<E: de::Error>(self, value: i64) -> Result<Double, E> {
                    Ok(Double(value as f64))
                }
                fn visit_u64<E: de::Error>(self, value: u64) -> Result<Double, E> {
                    Ok(Double(value as f64))
                }
            }
            deserializer.deserialize_any(DoubleVisitor)
        }
    }

    pub fn option<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<f64>, D::Error> {
        Ok(Option::<Double>::deserialize(deserializer)?.map(|double| double.0))
    }

    pub fn option_list<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Option<Vec<f64>>, D::Error> {
        Ok(Option::<Vec<Double>>::deserialize(deserializer)?
            .map(|items| items.into_iter().map(|double| double.0).collect()))
    }
}

/// Serde for timestamp members: epoch milliseconds in Rust; epoch seconds on the JSON
/// protocol and CBOR tag 1 (epoch seconds) on the CBOR protocol; accepts numbers and ISO 8601
/// strings when reading.
pub mod timestamp {
    use serde::de::{self, Deserializer, Visitor};
    use serde::ser::Serializer;
    use serde::{Deserialize, Serialize};

    fn seconds(epoch_ms: i64) -> f64 {
        epoch_ms as f64 / 1000.0
    }

    struct Epoch(i64);

    impl Serialize for Epoch {
        fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
            if serializer.is_human_readable() {
                serializer.serialize_f64(seconds(self.0))
            } else {
                ciborium::tag::Required::<f64, 1>(seconds(self.0)).serialize(serializer)
            }
        }
    }

    struct EpochVisitor;

    impl Visitor<'_> for EpochVisitor {
        type Value = Epoch;
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("a timestamp (epoch seconds)")
        }
        fn visit_f64<E: de::Error>(self, value: f64) -> Result<Epoch, E> {
            if value.is_finite() {
                Ok(Epoch((value * 1000.0).round() as i64))
            } else {
                Err(E::custom("timestamp must be finite"))
            }
        }
        fn visit_i64<E: de::Error>(self, value: i64) -> Result<Epoch, E> {
            value
                .checked_mul(1000)
                .map(Epoch)
                .ok_or_else(|| E::custom("timestamp out of range"))
        }
        fn visit_u64<E: de::Error>(self, value: u64) -> Result<Epoch, E> {
            i64::try_from(value)
                .map_err(|_| E::custom("timestamp out of range"))
                .and_then(|value| self.visit_i64(value))
        }
        fn visit_str<E: de::Error>(self, value: &str) -> Result<Epoch, E> {
            aws_protocol::query_wire::parse_iso8601_ms(value)
                .map(Epoch)
                .ok_or_else(|| E::custom(format!("invalid timestamp '{value}'")))
        }
    }

    /// The number inside a CBOR tag 1.
    struct Untagged(Epoch);

    impl<'de> Deserialize<'de> for Untagged {
        fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
            deserializer.deserialize_any(EpochVisitor).map(Untagged)
        }
    }

    impl<'de> Deserialize<'de> for Epoch {
        fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
            if deserializer.is_human_readable() {
                deserializer.deserialize_any(EpochVisitor)
            } else {
                // CBOR: tag 1 (or no tag) around epoch seconds.
                let ciborium::tag::Captured(_, Untagged(epoch)) =
                    Deserialize::deserialize(deserializer)?;
                Ok(epoch)
            }
        }
    }

    pub mod option {
        use super::*;

        pub fn serialize<S: Serializer>(
            value: &Option<i64>,
            serializer: S,
        ) -> Result<S::Ok, S::Error> {
            value.map(Epoch).serialize(serializer)
        }

        pub fn deserialize<'de, D: Deserializer<'de>>(
            deserializer: D,
        ) -> Result<Option<i64>, D::Error> {
            Ok(Option::<Epoch>::deserialize(deserializer)?.map(|epoch| epoch.0))
        }
    }

    pub mod option_list {
        use super::*;

        pub fn serialize<S: Serializer>(
            value: &Option<Vec<i64>>,
            serializer: S,
        ) -> Result<S::Ok, S::Error> {
            value
                .as_ref()
                .map(|items| items.iter().copied().map(Epoch).collect::<Vec<_>>())
                .serialize(serializer)
        }

        pub fn deserialize<'de, D: Deserializer<'de>>(
            deserializer: D,
        ) -> Result<Option<Vec<i64>>, D::Error> {
            Ok(Option::<Vec<Epoch>>::deserialize(deserializer)?
                .map(|items| items.into_iter().map(|epoch| epoch.0).collect()))
        }
    }
}

#[cfg(test)]
mod tests;
