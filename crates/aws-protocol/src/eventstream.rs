//! Event-stream responses (`application/vnd.amazon.eventstream`), the
//! framing AWS uses for operations whose output is a stream of events
//! (CloudWatch Logs' StartLiveTail).
//!
//! Each message is a binary frame (prelude, headers, payload, CRC32s),
//! encoded by `aws-smithy-eventstream`. Its headers say what it is:
//! `:message-type` `event` with `:event-type` naming the stream member, or
//! `exception` with `:exception-type` naming a modeled error; the payload is
//! the member's JSON. JSON 1.1 services open the stream with an
//! `initial-response` event carrying the output's non-stream members (`{}`
//! when there are none), which botocore insists on.

use aws_smithy_eventstream::frame::write_message_to;
use aws_smithy_types::event_stream::{Header, HeaderValue, Message};
use bytes::Bytes;

pub const CONTENT_TYPE: &str = "application/vnd.amazon.eventstream";

/// The event type of the first message of a JSON 1.1 event stream.
pub const INITIAL_RESPONSE: &str = "initial-response";

/// One message of an event stream, before framing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StreamMessage {
    /// A member of the stream union, e.g. `sessionUpdate`.
    Event {
        event_type: String,
        payload: Vec<u8>,
    },
    /// A modeled error, e.g. `SessionTimeoutException`; the stream ends after it.
    Exception {
        exception_type: String,
        payload: Vec<u8>,
    },
}

impl StreamMessage {
    pub fn event(event_type: impl Into<String>, payload: Vec<u8>) -> Self {
        StreamMessage::Event {
            event_type: event_type.into(),
            payload,
        }
    }

    pub fn exception(exception_type: impl Into<String>, message: &str) -> Self {
        StreamMessage::Exception {
            exception_type: exception_type.into(),
            payload: serde_json::to_vec(&serde_json::json!({ "message": message }))
                .unwrap_or_default(),
        }
    }

    pub fn initial_response() -> Self {
        StreamMessage::event(INITIAL_RESPONSE, b"{}".to_vec())
    }

    pub fn is_exception(&self) -> bool {
        matches!(self, StreamMessage::Exception { .. })
    }

    /// The message as one binary frame.
    pub fn encode(&self) -> Bytes {
        let (message_type, type_header, type_name, payload) = match self {
            StreamMessage::Event {
                event_type,
                payload,
            } => ("event", ":event-type", event_type, payload),
            StreamMessage::Exception {
                exception_type,
                payload,
            } => ("exception", ":exception-type", exception_type, payload),
        };
        let message = Message::new(Bytes::copy_from_slice(payload))
            .add_header(string_header(":message-type", message_type))
            .add_header(string_header(type_header, type_name))
            .add_header(string_header(":content-type", "application/json"));
        let mut frame = Vec::with_capacity(payload.len() + 128);
        // Only headers and payloads over the format's size limits fail;
        // ours are short names and JSON bounded by the services.
        write_message_to(&message, &mut frame).expect("event-stream message within limits");
        Bytes::from(frame)
    }
}

fn string_header(name: &'static str, value: &str) -> Header {
    Header::new(name, HeaderValue::String(value.to_string().into()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_smithy_eventstream::frame::read_message_from;

    fn header<'a>(message: &'a Message, name: &str) -> &'a str {
        message
            .headers()
            .iter()
            .find(|header| header.name().as_str() == name)
            .and_then(|header| header.value().as_string().ok())
            .map(|value| value.as_str())
            .unwrap_or_else(|| panic!("no {name} header"))
    }

    #[test]
    fn events_carry_their_type_and_json_payload() {
        let frame =
            StreamMessage::event("sessionUpdate", br#"{"sessionResults":[]}"#.to_vec()).encode();
        let message = read_message_from(&frame[..]).unwrap();
        assert_eq!(header(&message, ":message-type"), "event");
        assert_eq!(header(&message, ":event-type"), "sessionUpdate");
        assert_eq!(header(&message, ":content-type"), "application/json");
        assert_eq!(&message.payload()[..], br#"{"sessionResults":[]}"#);
    }

    #[test]
    fn exceptions_carry_their_type_and_message() {
        let frame = StreamMessage::exception("SessionTimeoutException", "timed \"out\"").encode();
        let message = read_message_from(&frame[..]).unwrap();
        assert_eq!(header(&message, ":message-type"), "exception");
        assert_eq!(
            header(&message, ":exception-type"),
            "SessionTimeoutException"
        );
        let payload: serde_json::Value = serde_json::from_slice(message.payload()).unwrap();
        assert_eq!(payload, serde_json::json!({"message": "timed \"out\""}));
    }

    #[test]
    fn frames_follow_each_other_in_one_body() {
        let mut body = Vec::new();
        body.extend_from_slice(&StreamMessage::initial_response().encode());
        body.extend_from_slice(&StreamMessage::event("sessionStart", b"{}".to_vec()).encode());
        let mut rest = &body[..];
        let first = read_message_from(&mut rest).unwrap();
        let second = read_message_from(&mut rest).unwrap();
        assert!(rest.is_empty());
        assert_eq!(header(&first, ":event-type"), INITIAL_RESPONSE);
        assert_eq!(&first.payload()[..], b"{}");
        assert_eq!(header(&second, ":event-type"), "sessionStart");
    }
}
