//! `@ptr`, the log record pointer GetLogRecord takes: the event's group,
//! stream, stream incarnation and position, hex-encoded (opaque to callers,
//! as AWS's is). The stream id makes a pointer into a deleted stream find
//! nothing even if a stream of the same name was created since.

use log_store::Position;

#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct RecordPointer {
    pub group: String,
    pub stream: String,
    pub stream_id: String,
    pub position: Position,
}

impl RecordPointer {
    pub fn encode(&self) -> String {
        hex::encode(format!(
            "1\n{}\n{}\n{}\n{}\n{}",
            self.stream_id,
            self.position.timestamp_ms,
            self.position.sequence,
            self.group,
            self.stream
        ))
    }

    pub fn decode(pointer: &str) -> Option<RecordPointer> {
        let text = String::from_utf8(hex::decode(pointer).ok()?).ok()?;
        let mut parts = text.splitn(6, '\n');
        if parts.next()? != "1" {
            return None;
        }
        let stream_id = parts.next()?.to_string();
        let timestamp_ms = parts.next()?.parse().ok()?;
        let sequence = parts.next()?.parse().ok()?;
        let group = parts.next()?.to_string();
        let stream = parts.next()?.to_string();
        Some(RecordPointer {
            group,
            stream,
            stream_id,
            position: Position {
                timestamp_ms,
                sequence,
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pointers_round_trip_and_garbage_is_refused() {
        let pointer = RecordPointer {
            group: "/ecs/web".into(),
            stream: "a/b\nc".into(),
            stream_id: "0123abcd".into(),
            position: Position {
                timestamp_ms: 1_800_000_000_000,
                sequence: 42,
            },
        };
        let encoded = pointer.encode();
        assert!(encoded.bytes().all(|b| b.is_ascii_hexdigit()));
        assert_eq!(RecordPointer::decode(&encoded), Some(pointer));
        for garbage in ["", "zz", "00", &hex::encode("2\na\n1\n2\ng\ns")] {
            assert_eq!(RecordPointer::decode(garbage), None, "{garbage}");
        }
    }
}
