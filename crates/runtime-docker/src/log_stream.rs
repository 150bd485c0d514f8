//! Decoding the body of `GET /containers/{id}/logs?timestamps=1` into
//! [`LogLine`]s. Pure: bytes in, lines out, whatever way the body was split
//! into reads.
//!
//! Three layers:
//! 1. Framing. A container without a TTY gets Docker's multiplexed stream:
//!    frames of an 8-byte header (stream type 1 = stdout, 2 = stderr,
//!    3 = an error the daemon hit while streaming; three zero bytes; a
//!    big-endian `u32` length) and that many bytes, one log message per
//!    frame. A TTY container's stream is raw: messages back to back, all
//!    stdout.
//! 2. Messages. Each is `<RFC 3339 timestamp> <text>`. Text ending in `\n`
//!    ends a line; text without it is a *partial* message: Docker's log
//!    copier cuts lines at [`DOCKER_PARTIAL_MESSAGE_BYTES`] (every piece
//!    stamped with the line's first timestamp), and a process that exits
//!    mid-line leaves a last partial. In the raw stream a partial is
//!    followed directly by the next message's timestamp, so a partial is
//!    recognised there as exactly [`DOCKER_PARTIAL_MESSAGE_BYTES`] of text
//!    without newline followed by a timestamp and a space.
//! 3. Lines. Partials are joined with the next messages of the same source
//!    (stdout and stderr are joined separately) that carry the same
//!    timestamp, up to [`MAX_LOG_LINE_BYTES`]; longer lines are cut into
//!    pieces of that size. A message with another timestamp starts a new
//!    line: Docker 20.10's `local` driver drops the newline of a split
//!    line's last piece, and every piece carries the line's first
//!    timestamp, so the timestamp is what tells where the line ended. A
//!    line still open when the stream ends cleanly is delivered as is.
//!    `\r` is kept.
//!
//! Known limit: in the raw stream of a TTY container logged by the `local`
//! driver, the last piece of a line longer than 16 KiB has no newline and
//! runs into the next message's timestamp, which then stays in the text
//! (the `json-file` driver, which the agent uses, is not affected).

use runtime::{LogLine, LogSource, RuntimeError, MAX_LOG_LINE_BYTES};

use crate::rfc3339::parse_rfc3339_ns;

/// The size Docker's log copier cuts long lines at (`json-file` and
/// `local` alike).
pub const DOCKER_PARTIAL_MESSAGE_BYTES: usize = 16 * 1024;

/// Longer than any RFC 3339 timestamp Docker writes
/// (`2024-05-01T12:34:56.123456789+02:00` is 35 bytes), so a message whose
/// first space comes later has no timestamp.
const MAX_TIMESTAMP_BYTES: usize = 40;

const FRAME_HEADER_BYTES: usize = 8;

/// How the response body is framed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StreamFormat {
    /// Non-TTY containers: 8-byte frame headers.
    Multiplexed,
    /// TTY containers (`pseudoTerminal`): messages back to back, all stdout.
    Raw,
}

/// `since` for the logs endpoint: seconds with nine fractional digits
/// (Docker's filter is inclusive). Times before the epoch mean "from the
/// start" (`0`).
pub fn since_parameter(since_ns: i64) -> String {
    if since_ns <= 0 {
        return "0".to_string();
    }
    format!(
        "{}.{:09}",
        since_ns / 1_000_000_000,
        since_ns % 1_000_000_000
    )
}

/// The lines a follow delivered that a catch-up read could return again.
///
/// Docker ends a follow when the container stops, and may do so before it
/// has sent the last entries of the log (a final line without newline is
/// always missing with the `local` driver, sometimes with `json-file`, on
/// Docker 20.10). So when a follow ends, the logs are read once more
/// without `follow` from [`DeliveredTail::catch_up_since_ns`] on, and
/// [`DeliveredTail::is_new`] drops what was delivered already. To know
/// that, it remembers the delivered lines that such a read returns again:
/// those stamped at or after the last delivered timestamp or the start of
/// a line still being rejoined.
#[derive(Debug, Default)]
pub struct DeliveredTail {
    /// In delivery order; all at or after `catch_up_since_ns(None)`.
    remembered: std::collections::VecDeque<LogLine>,
    last_ns: Option<i64>,
}

impl DeliveredTail {
    /// Records a delivered line; `open_since_ns` is the decoder's
    /// [`LogDecoder::open_since_ns`] after it.
    pub fn delivered(&mut self, line: &LogLine, open_since_ns: Option<i64>) {
        let last_ns = self
            .last_ns
            .map_or(line.timestamp_ns, |last| last.max(line.timestamp_ns));
        self.last_ns = Some(last_ns);
        self.remembered.push_back(line.clone());
        let keep_from = open_since_ns.map_or(last_ns, |open| open.min(last_ns));
        self.remembered
            .retain(|kept| kept.timestamp_ns >= keep_from);
    }

    /// Where the catch-up read starts: the last delivered timestamp, or
    /// the start of a line the follow left open (`open_since_ns`), or, when
    /// nothing was delivered, where the follow started.
    pub fn catch_up_since_ns(&self, open_since_ns: Option<i64>, follow_since_ns: i64) -> i64 {
        let last = self.last_ns.unwrap_or(follow_since_ns);
        open_since_ns.map_or(last, |open| open.min(last))
    }

    /// Whether a line of the catch-up read is new, i.e. not one the follow
    /// delivered (each remembered line matches once).
    pub fn is_new(&mut self, line: &LogLine) -> bool {
        match self.remembered.iter().position(|kept| kept == line) {
            Some(index) => {
                self.remembered.remove(index);
                false
            }
            None => true,
        }
    }
}

/// A line being rejoined from partial messages.
#[derive(Debug)]
struct OpenLine {
    timestamp_ns: i64,
    text: Vec<u8>,
}

/// Turns the bytes of one log response into lines. Feed every read to
/// [`LogDecoder::push`]; call [`LogDecoder::finish`] when the body ends
/// cleanly (not after a read error: a cut connection may have cut a line).
#[derive(Debug)]
pub struct LogDecoder {
    format: StreamFormat,
    /// Bytes received and not yet decoded into messages.
    pending: Vec<u8>,
    stdout: Option<OpenLine>,
    stderr: Option<OpenLine>,
}

impl LogDecoder {
    pub fn new(format: StreamFormat) -> Self {
        LogDecoder {
            format,
            pending: Vec::new(),
            stdout: None,
            stderr: None,
        }
    }

    /// Decodes one read of the body, adding the lines it completed to
    /// `lines` (also those before a fault in the same read).
    pub fn push(&mut self, bytes: &[u8], lines: &mut Vec<LogLine>) -> Result<(), RuntimeError> {
        self.pending.extend_from_slice(bytes);
        self.decode(false, lines)
    }

    /// The earliest timestamp of a line still being rejoined, if any.
    pub fn open_since_ns(&self) -> Option<i64> {
        [&self.stdout, &self.stderr]
            .into_iter()
            .flatten()
            .map(|line| line.timestamp_ns)
            .min()
    }

    /// A followed body ended cleanly: decodes what is left, adding it to
    /// `lines`, but keeps back the open lines (Docker's follow can end
    /// before the rest of a line, see [`DeliveredTail`]); returns the
    /// earliest timestamp of those, from which to read again.
    pub fn end_follow(&mut self, lines: &mut Vec<LogLine>) -> Result<Option<i64>, RuntimeError> {
        self.decode(true, lines)?;
        self.check_drained()?;
        let open_since_ns = self.open_since_ns();
        self.stdout = None;
        self.stderr = None;
        Ok(open_since_ns)
    }

    fn check_drained(&self) -> Result<(), RuntimeError> {
        if self.pending.is_empty() {
            Ok(())
        } else {
            Err(malformed(format!(
                "it ended inside a frame ({} bytes left over)",
                self.pending.len()
            )))
        }
    }

    /// The body ended cleanly: decodes what is left and adds it and the
    /// open lines to `lines`.
    pub fn finish(&mut self, lines: &mut Vec<LogLine>) -> Result<(), RuntimeError> {
        self.decode(true, lines)?;
        self.check_drained()?;
        let mut open: Vec<(LogSource, OpenLine)> = [
            (LogSource::Stdout, self.stdout.take()),
            (LogSource::Stderr, self.stderr.take()),
        ]
        .into_iter()
        .filter_map(|(source, line)| line.map(|line| (source, line)))
        .collect();
        open.sort_by_key(|(_, line)| line.timestamp_ns);
        lines.extend(open.into_iter().map(|(source, line)| LogLine {
            source,
            timestamp_ns: line.timestamp_ns,
            text: line.text,
        }));
        Ok(())
    }

    fn decode(&mut self, at_end: bool, lines: &mut Vec<LogLine>) -> Result<(), RuntimeError> {
        let mut consumed = 0;
        let result = loop {
            let rest = &self.pending[consumed..];
            let step = match self.format {
                StreamFormat::Multiplexed => next_frame(rest),
                StreamFormat::Raw => next_raw_message(rest, at_end).map(|length| {
                    length.map(|length| (length, Frame::Message(LogSource::Stdout, (0, length))))
                }),
            };
            match step {
                Ok(Some((length, frame))) => {
                    let frame = match frame {
                        Frame::Message(source, range) => {
                            let start = consumed;
                            Frame::Message(source, (start + range.0, start + range.1))
                        }
                        Frame::DaemonError(range) => {
                            Frame::DaemonError((consumed + range.0, consumed + range.1))
                        }
                    };
                    consumed += length;
                    if let Err(error) = self.apply(frame, lines) {
                        break Err(error);
                    }
                }
                Ok(None) => break Ok(()),
                Err(error) => break Err(error),
            }
        };
        self.pending.drain(..consumed);
        result
    }

    fn apply(&mut self, frame: Frame, lines: &mut Vec<LogLine>) -> Result<(), RuntimeError> {
        match frame {
            Frame::DaemonError((start, end)) => Err(RuntimeError::Other {
                message: format!(
                    "Docker failed while streaming the logs: {}",
                    String::from_utf8_lossy(&self.pending[start..end]).trim_end()
                ),
            }),
            Frame::Message(source, (start, end)) => {
                let (timestamp_ns, text) = split_timestamp(&self.pending[start..end])?;
                let (text, complete) = match text.strip_suffix(b"\n") {
                    Some(text) => (text, true),
                    None => (text, false),
                };
                let open = match source {
                    LogSource::Stdout => &mut self.stdout,
                    LogSource::Stderr => &mut self.stderr,
                };
                if open
                    .as_ref()
                    .is_some_and(|line| line.timestamp_ns != timestamp_ns)
                {
                    let ended = open.take().expect("checked");
                    lines.push(LogLine {
                        source,
                        timestamp_ns: ended.timestamp_ns,
                        text: ended.text,
                    });
                }
                join(open, source, timestamp_ns, text, complete, lines);
                Ok(())
            }
        }
    }
}

/// A decoded unit of the body; ranges are relative to where it started.
enum Frame {
    /// A log message of one source: `timestamp text`.
    Message(LogSource, (usize, usize)),
    /// Stream type 3: the daemon's own error text.
    DaemonError((usize, usize)),
}

/// The next multiplexed frame: bytes it takes and what it holds; `None`
/// until it has fully arrived.
fn next_frame(bytes: &[u8]) -> Result<Option<(usize, Frame)>, RuntimeError> {
    let Some(header) = bytes.get(..FRAME_HEADER_BYTES) else {
        return Ok(None);
    };
    let length = u32::from_be_bytes([header[4], header[5], header[6], header[7]]) as usize;
    let end = FRAME_HEADER_BYTES + length;
    if header[1..4] != [0, 0, 0] {
        return Err(malformed(format!("a frame header is not one: {header:?}")));
    }
    let range = (FRAME_HEADER_BYTES, end);
    let frame = match header[0] {
        1 => Frame::Message(LogSource::Stdout, range),
        2 => Frame::Message(LogSource::Stderr, range),
        3 => Frame::DaemonError(range),
        other => {
            return Err(malformed(format!(
                "a frame has stream type {other} (expected 1 = stdout, 2 = stderr, 3 = error)"
            )))
        }
    };
    if bytes.len() < end {
        return Ok(None);
    }
    Ok(Some((end, frame)))
}

/// Where the timestamp at the start of `bytes` ends (the index of its
/// space), `Ok(None)` if more bytes are needed to tell, `Err(())` if
/// `bytes` does not start with a timestamp and a space.
fn timestamp_end(bytes: &[u8]) -> Result<Option<usize>, ()> {
    let window = &bytes[..bytes.len().min(MAX_TIMESTAMP_BYTES)];
    match window.iter().position(|byte| *byte == b' ') {
        Some(space) => {
            let parsed = std::str::from_utf8(&window[..space])
                .ok()
                .and_then(parse_rfc3339_ns);
            parsed.map(|_| Some(space)).ok_or(())
        }
        None if bytes.len() >= MAX_TIMESTAMP_BYTES => Err(()),
        None => {
            // Reject early what can never become a timestamp (a newline, or
            // a character no RFC 3339 timestamp holds).
            let plausible = window
                .iter()
                .all(|byte| byte.is_ascii_digit() || b"-:.+TtZz".contains(byte));
            if plausible {
                Ok(None)
            } else {
                Err(())
            }
        }
    }
}

/// The length of the next message of a raw (TTY) stream (timestamp and
/// text).
/// `None` until it can be told apart from what follows.
fn next_raw_message(bytes: &[u8], at_end: bool) -> Result<Option<usize>, RuntimeError> {
    if bytes.is_empty() {
        return Ok(None);
    }
    let content_start = match timestamp_end(bytes) {
        Ok(Some(space)) => space + 1,
        Ok(None) if !at_end => return Ok(None),
        _ => {
            return Err(malformed(format!(
                "a message does not start with a timestamp: {:?}",
                String::from_utf8_lossy(&bytes[..bytes.len().min(MAX_TIMESTAMP_BYTES)])
            )))
        }
    };
    let content = &bytes[content_start..];
    let newline = content.iter().position(|byte| *byte == b'\n');
    // A partial: exactly DOCKER_PARTIAL_MESSAGE_BYTES without a newline,
    // then the next message's timestamp.
    if newline.is_none_or(|newline| newline > DOCKER_PARTIAL_MESSAGE_BYTES) {
        if let Some(after) = content.get(DOCKER_PARTIAL_MESSAGE_BYTES..) {
            match timestamp_end(after) {
                Ok(Some(_)) => {
                    let end = content_start + DOCKER_PARTIAL_MESSAGE_BYTES;
                    return Ok(Some(end));
                }
                Ok(None) if !at_end && newline.is_none() => return Ok(None),
                _ => {}
            }
        }
    }
    match newline {
        Some(newline) => {
            let end = content_start + newline + 1;
            Ok(Some(end))
        }
        None if at_end => Ok(Some(bytes.len())),
        None => Ok(None),
    }
}

/// Splits a message into its timestamp and text.
fn split_timestamp(message: &[u8]) -> Result<(i64, &[u8]), RuntimeError> {
    let no_timestamp = || {
        malformed(format!(
            "a message does not start with a timestamp: {:?}",
            String::from_utf8_lossy(&message[..message.len().min(MAX_TIMESTAMP_BYTES)])
        ))
    };
    let window = &message[..message.len().min(MAX_TIMESTAMP_BYTES)];
    let space = window
        .iter()
        .position(|byte| *byte == b' ')
        .ok_or_else(no_timestamp)?;
    let timestamp_ns = std::str::from_utf8(&message[..space])
        .ok()
        .and_then(parse_rfc3339_ns)
        .ok_or_else(no_timestamp)?;
    Ok((timestamp_ns, &message[space + 1..]))
}

/// Adds a message's text to the source's open line, delivering what is
/// complete (or too long to wait for).
fn join(
    open: &mut Option<OpenLine>,
    source: LogSource,
    timestamp_ns: i64,
    text: &[u8],
    complete: bool,
    lines: &mut Vec<LogLine>,
) {
    let line = open.get_or_insert_with(|| OpenLine {
        timestamp_ns,
        text: Vec::new(),
    });
    line.text.extend_from_slice(text);
    while line.text.len() > MAX_LOG_LINE_BYTES {
        let rest = line.text.split_off(MAX_LOG_LINE_BYTES);
        lines.push(LogLine {
            source,
            timestamp_ns: line.timestamp_ns,
            text: std::mem::replace(&mut line.text, rest),
        });
        line.timestamp_ns = timestamp_ns;
    }
    if complete {
        let line = open.take().expect("just inserted");
        lines.push(LogLine {
            source,
            timestamp_ns: line.timestamp_ns,
            text: line.text,
        });
    }
}

fn malformed(detail: String) -> RuntimeError {
    RuntimeError::Other {
        message: format!(
            "unexpected log stream from Docker: {detail}; is the daemon's API compatible \
             (Docker 19.03 or later)?"
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T1: &str = "2024-05-01T12:34:56.000000001Z";
    const T1_NS: i64 = 1_714_566_896_000_000_001;
    const T2: &str = "2024-05-01T12:34:56.5Z";
    const T2_NS: i64 = 1_714_566_896_500_000_000;
    const T3: &str = "2024-05-01T14:34:57+02:00";
    const T3_NS: i64 = 1_714_566_897_000_000_000;

    fn frame(stream_type: u8, payload: &[u8]) -> Vec<u8> {
        let mut bytes = vec![stream_type, 0, 0, 0];
        bytes.extend_from_slice(&(payload.len() as u32).to_be_bytes());
        bytes.extend_from_slice(payload);
        bytes
    }

    fn message(timestamp: &str, text: &[u8]) -> Vec<u8> {
        let mut bytes = format!("{timestamp} ").into_bytes();
        bytes.extend_from_slice(text);
        bytes
    }

    fn out(timestamp_ns: i64, text: &[u8]) -> LogLine {
        LogLine {
            source: LogSource::Stdout,
            timestamp_ns,
            text: text.to_vec(),
        }
    }

    fn err(timestamp_ns: i64, text: &[u8]) -> LogLine {
        LogLine {
            source: LogSource::Stderr,
            timestamp_ns,
            text: text.to_vec(),
        }
    }

    /// Decodes `body` fed in reads of every size from 1 byte to the whole
    /// body (and in one read), expecting the same lines each time.
    fn check(format: StreamFormat, body: &[u8], expected: Result<Vec<LogLine>, &str>) {
        let mut read_sizes: Vec<usize> = vec![7, 8, 9, 31, 1000, 16 * 1024 + 1];
        if body.len() < 64 * 1024 {
            // Byte by byte is slow for big bodies in debug builds.
            read_sizes.extend([1, 2, 3]);
        }
        read_sizes.push(body.len().max(1));
        for read_size in read_sizes {
            let mut decoder = LogDecoder::new(format);
            let mut lines = Vec::new();
            let mut failure = None;
            for chunk in body.chunks(read_size) {
                if let Err(error) = decoder.push(chunk, &mut lines) {
                    failure = Some(error);
                    break;
                }
            }
            let outcome = match failure {
                Some(error) => Err(error),
                None => decoder.finish(&mut lines).map(|()| lines),
            };
            match (&outcome, &expected) {
                (Ok(lines), Ok(expected)) => assert!(
                    lines == expected,
                    "{format:?} in reads of {read_size}: got {} lines {:?}, expected {} lines {:?}",
                    lines.len(),
                    summary(lines),
                    expected.len(),
                    summary(expected)
                ),
                (Err(error), Err(expected)) => assert!(
                    error.to_string().contains(expected),
                    "{format:?} in reads of {read_size}: {error} lacks {expected:?}"
                ),
                _ => panic!(
                    "{format:?} in reads of {read_size}: got {:?}, expected {:?}",
                    outcome.map(|lines| summary(&lines)),
                    expected.map(|lines| summary(&lines))
                ),
            }
        }
    }

    /// Lines with long texts shortened, for readable failures.
    fn summary(lines: &[LogLine]) -> Vec<(LogSource, i64, usize, String)> {
        lines
            .iter()
            .map(|line| {
                let text = String::from_utf8_lossy(&line.text[..line.text.len().min(20)]);
                (
                    line.source,
                    line.timestamp_ns,
                    line.text.len(),
                    text.into_owned(),
                )
            })
            .collect()
    }

    fn concat(parts: &[Vec<u8>]) -> Vec<u8> {
        parts.concat()
    }

    #[test]
    fn multiplexed_lines_by_source() {
        check(StreamFormat::Multiplexed, b"", Ok(vec![]));
        check(
            StreamFormat::Multiplexed,
            &concat(&[
                frame(1, &message(T1, b"out 1\n")),
                frame(2, &message(T2, b"err 2\r\n")),
                frame(1, &message(T3, b"\n")),
                frame(2, &message(T3, b"caf\xc3\xa9 \xff\n")),
            ]),
            Ok(vec![
                out(T1_NS, b"out 1"),
                err(T2_NS, b"err 2\r"),
                out(T3_NS, b""),
                err(T3_NS, b"caf\xc3\xa9 \xff"),
            ]),
        );
    }

    #[test]
    fn multiplexed_partials_are_rejoined_per_source() {
        let piece = vec![b'a'; DOCKER_PARTIAL_MESSAGE_BYTES];
        let mut long = piece.repeat(2);
        long.extend_from_slice(b"end");
        check(
            StreamFormat::Multiplexed,
            &concat(&[
                frame(1, &message(T1, &piece)),
                frame(2, &message(T2, b"err between\n")),
                frame(1, &message(T1, &piece)),
                frame(1, &message(T1, b"end\n")),
                frame(2, &message(T3, b"err after\n")),
            ]),
            Ok(vec![
                err(T2_NS, b"err between"),
                out(T1_NS, &long),
                err(T3_NS, b"err after"),
            ]),
        );
    }

    #[test]
    fn a_last_line_without_newline_comes_at_the_end() {
        check(
            StreamFormat::Multiplexed,
            &concat(&[
                frame(2, &message(T2, b"no newline on stderr")),
                frame(1, &message(T1, b"first\n")),
                frame(1, &message(T1, b"no newline on stdout")),
            ]),
            Ok(vec![
                out(T1_NS, b"first"),
                out(T1_NS, b"no newline on stdout"),
                err(T2_NS, b"no newline on stderr"),
            ]),
        );
    }

    #[test]
    fn a_new_timestamp_ends_a_line_without_newline() {
        let piece = vec![b'p'; DOCKER_PARTIAL_MESSAGE_BYTES];
        let mut long = piece.clone();
        long.extend_from_slice(b"end");
        check(
            StreamFormat::Multiplexed,
            &concat(&[
                // The `local` driver's split line: no newline after "end".
                frame(1, &message(T1, &piece)),
                frame(1, &message(T1, b"end")),
                frame(1, &message(T2, b"next\n")),
                frame(2, &message(T2, b"no newline, then")),
                frame(2, &message(T3, b"another line\n")),
            ]),
            Ok(vec![
                out(T1_NS, &long),
                out(T2_NS, b"next"),
                err(T2_NS, b"no newline, then"),
                err(T3_NS, b"another line"),
            ]),
        );
    }

    #[test]
    fn lines_beyond_a_mebibyte_are_cut() {
        let piece = vec![b'x'; DOCKER_PARTIAL_MESSAGE_BYTES];
        let pieces = MAX_LOG_LINE_BYTES / DOCKER_PARTIAL_MESSAGE_BYTES;
        let mut frames: Vec<Vec<u8>> = (0..pieces)
            .map(|_| frame(1, &message(T1, &piece)))
            .collect();
        // Exactly 1 MiB then a newline: one line.
        frames.push(frame(1, &message(T1, b"\n")));
        // 1 MiB + 3 bytes: a line of 1 MiB and one of 3 bytes.
        frames.extend((0..pieces).map(|_| frame(1, &message(T2, &piece))));
        frames.push(frame(1, &message(T2, b"yyy\n")));
        check(
            StreamFormat::Multiplexed,
            &concat(&frames),
            Ok(vec![
                out(T1_NS, &vec![b'x'; MAX_LOG_LINE_BYTES]),
                out(T2_NS, &vec![b'x'; MAX_LOG_LINE_BYTES]),
                out(T2_NS, b"yyy"),
            ]),
        );
    }

    #[test]
    fn raw_stream_is_stdout_with_partials_found_by_size() {
        let piece = vec![b'r'; DOCKER_PARTIAL_MESSAGE_BYTES];
        let mut long = piece.clone();
        long.extend_from_slice(&piece);
        long.extend_from_slice(b"tail\r");
        // Longer than a piece but never cut: no timestamp at the boundary.
        let mut unsplit = vec![b'u'; DOCKER_PARTIAL_MESSAGE_BYTES];
        unsplit.extend_from_slice(b" 2024 not a timestamp\r");
        check(
            StreamFormat::Raw,
            &concat(&[
                message(T1, b"hello\r\n"),
                message(T2, &piece),
                message(T2, &piece),
                message(T2, b"tail\r\n"),
                message(T3, &unsplit),
                b"\n".to_vec(),
                message(T3, b"\r\n"),
                message(T3, b"prompt$ "),
            ]),
            Ok(vec![
                out(T1_NS, b"hello\r"),
                out(T2_NS, &long),
                out(T3_NS, &unsplit),
                out(T3_NS, b"\r"),
                out(T3_NS, b"prompt$ "),
            ]),
        );
        // A final partial of exactly one piece.
        check(
            StreamFormat::Raw,
            &message(T1, &piece),
            Ok(vec![out(T1_NS, &piece)]),
        );
    }

    #[test]
    fn malformed_streams_are_errors() {
        check(
            StreamFormat::Multiplexed,
            &frame(1, b"no timestamp here\n"),
            Err("does not start with a timestamp"),
        );
        check(
            StreamFormat::Multiplexed,
            &frame(0, &message(T1, b"stdin?\n")),
            Err("stream type 0"),
        );
        check(
            StreamFormat::Multiplexed,
            b"\x01\x00\x07\x00\x00\x00\x00\x01x",
            Err("not one"),
        );
        let mut truncated = frame(1, &message(T1, b"cut short\n"));
        truncated.truncate(truncated.len() - 2);
        check(
            StreamFormat::Multiplexed,
            &truncated,
            Err("ended inside a frame"),
        );
        check(
            StreamFormat::Multiplexed,
            &concat(&[
                frame(1, &message(T1, b"fine\n")),
                frame(3, b"error from daemon in stream: Error grabbing logs: bad\n"),
            ]),
            Err("Docker failed while streaming the logs: error from daemon in stream: Error grabbing logs: bad"),
        );
        check(
            StreamFormat::Raw,
            b"hello\n",
            Err("does not start with a timestamp"),
        );
        check(
            StreamFormat::Raw,
            b"2024-05",
            Err("does not start with a timestamp"),
        );
    }

    #[test]
    fn a_catch_up_read_delivers_only_what_the_follow_missed() {
        /// Follows `followed` (the body of the follow), then catches up
        /// with `catch_up` (everything from the returned since on).
        fn check(
            followed: &[u8],
            follow_since_ns: i64,
            expected_since_ns: i64,
            catch_up: &[u8],
            expected: Vec<LogLine>,
        ) {
            let mut decoder = LogDecoder::new(StreamFormat::Multiplexed);
            let mut tail = DeliveredTail::default();
            let mut delivered = Vec::new();
            for chunk in followed.chunks(5) {
                let mut lines = Vec::new();
                decoder.push(chunk, &mut lines).unwrap();
                for line in lines {
                    tail.delivered(&line, decoder.open_since_ns());
                    delivered.push(line);
                }
            }
            let mut lines = Vec::new();
            let open = decoder.end_follow(&mut lines).unwrap();
            for line in lines {
                tail.delivered(&line, decoder.open_since_ns());
                delivered.push(line);
            }
            let since_ns = tail.catch_up_since_ns(open, follow_since_ns);
            assert_eq!(since_ns, expected_since_ns);
            let mut catch_up_decoder = LogDecoder::new(StreamFormat::Multiplexed);
            let mut again = Vec::new();
            catch_up_decoder.push(catch_up, &mut again).unwrap();
            catch_up_decoder.finish(&mut again).unwrap();
            delivered.extend(again.into_iter().filter(|line| tail.is_new(line)));
            assert_eq!(summary(&delivered), summary(&expected));
        }
        let first = frame(1, &message(T1, b"a\n"));
        let err_same_time = frame(2, &message(T1, b"e\n"));
        let last = frame(1, &message(T2, b"tail"));
        let later = frame(2, &message(T3, b"late\n"));
        // The follow missed the last partial line.
        check(
            &concat(&[first.clone(), err_same_time.clone()]),
            0,
            T1_NS,
            &concat(&[first.clone(), err_same_time.clone(), last.clone()]),
            vec![out(T1_NS, b"a"), err(T1_NS, b"e"), out(T2_NS, b"tail")],
        );
        // It sent the partial but not the rest of the log: read from the
        // partial's start, deliver it once.
        check(
            &concat(&[first.clone(), last.clone()]),
            0,
            T1_NS,
            &concat(&[first.clone(), last.clone(), later.clone()]),
            // A line left without newline ends when the stream does, so
            // it comes after the other source's later lines.
            vec![out(T1_NS, b"a"), err(T3_NS, b"late"), out(T2_NS, b"tail")],
        );
        // It missed nothing.
        check(
            &concat(&[first.clone(), later.clone()]),
            0,
            T3_NS,
            &later,
            vec![out(T1_NS, b"a"), err(T3_NS, b"late")],
        );
        // It sent nothing: catch up from where the follow started.
        check(b"", T2_NS, T2_NS, &last, vec![out(T2_NS, b"tail")]);
    }

    #[test]
    fn since_is_seconds_with_nanoseconds() {
        for (since_ns, expected) in [
            (0, "0"),
            (-5, "0"),
            (1, "0.000000001"),
            (1_714_566_896_123_456_789, "1714566896.123456789"),
            (1_714_566_896_000_000_000, "1714566896.000000000"),
        ] {
            assert_eq!(since_parameter(since_ns), expected, "since {since_ns}");
        }
    }
}
