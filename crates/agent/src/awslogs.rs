//! The `awslogs` log driver, decided purely: options → [`AwsLogsConfig`],
//! the stream name ECS gives a container, and a container's output lines →
//! CloudWatch Logs events → batches with a producer cursor.
//!
//! Berth does not hand `awslogs` to Docker: the container logs with
//! `json-file` (so Docker keeps every line on disk) and the agent's
//! `log_shipper` reads the lines back, assembles them here and delivers
//! them to the control plane with `PutContainerLogEvents`, whose producer
//! cursor makes a resend after a lost acknowledgement a no-op. The cursor is
//! the [`Position`] of the last line a batch includes; after a restart the
//! agent asks the control plane for it and skips every line at or before it.
//!
//! Events are assembled as Docker's own awslogs driver assembles them: one
//! event per line (empty lines make none), or with
//! `awslogs-multiline-pattern` / `awslogs-datetime-format` a line matching
//! the pattern starts an event and the following lines join it (each line
//! followed by `\n`, as Docker sends them); events over
//! [`MAX_EVENT_MESSAGE_BYTES`] are split; batches keep PutLogEvents' limits.
//!
//! Pure: no I/O, no clock (`now_ms` is an argument).

use std::collections::{BTreeMap, VecDeque};

use model::agent_logs::AgentLogEvent;

/// Label holding a container's awslogs options (JSON object), so a
/// restarted agent can ship a container's output without its task
/// definition.
pub const LABEL_AWSLOGS_OPTIONS: &str = "berth.awslogs-options";

pub use model::agent_logs::{
    EVENT_OVERHEAD_BYTES, MAX_BATCH_BYTES, MAX_BATCH_EVENTS, MAX_BATCH_SPAN_MS,
};
/// The largest event CloudWatch accepts is 256 KiB including the overhead.
pub const MAX_EVENT_MESSAGE_BYTES: usize = 262_144 - EVENT_OVERHEAD_BYTES;
/// `max-buffer-size` when not given (Docker's default, 1 MiB).
pub const DEFAULT_MAX_BUFFER_SIZE_BYTES: u64 = 1024 * 1024;
/// When resuming, lines are read back from this long before the cursor's
/// timestamp: Docker's stdout and stderr copiers timestamp lines
/// independently, so a line can carry a timestamp slightly before the one
/// written just before it; positions stay exact as long as that skew is
/// below this.
pub const RESUME_SLACK_NS: i64 = 5_000_000_000;

/// The options Docker's awslogs driver knows that Berth does not honour.
const DOCKER_OPTIONS_NOT_SUPPORTED: &[&str] = &[
    "tag",
    "awslogs-stream",
    "awslogs-create-stream",
    "awslogs-credentials-endpoint",
    "awslogs-datetime-as-event-time",
    "awslogs-datetime-timezone",
    "awslogs-force-flush-interval-seconds",
    "awslogs-max-buffered-events",
    "awslogs-format",
];

/// `mode`: what happens when the container writes faster than its output
/// is delivered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeliveryMode {
    /// Stop reading the container's log while too much is unsent (Docker
    /// keeps the rest on disk).
    Blocking,
    /// Keep reading into a buffer of at most this many bytes; when full, the
    /// oldest unsent lines are dropped and a marker event says so.
    NonBlocking { max_buffer_size_bytes: u64 },
}

/// A container's awslogs settings, validated.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AwsLogsConfig {
    pub group: String,
    /// Log calls are signed for this region.
    pub region: String,
    pub stream_prefix: Option<String>,
    pub create_group: bool,
    /// The regular expression that starts an event (from
    /// `awslogs-multiline-pattern`, or converted from
    /// `awslogs-datetime-format`); it compiles.
    pub multiline_pattern: Option<String>,
    pub mode: DeliveryMode,
}

impl AwsLogsConfig {
    /// The compiled [`AwsLogsConfig::multiline_pattern`].
    pub fn start_pattern(&self) -> Option<regex::Regex> {
        self.multiline_pattern
            .as_deref()
            .and_then(|pattern| regex::Regex::new(pattern).ok())
    }
}

/// Why a container's awslogs options cannot be used.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum OptionsError {
    /// Docker would refuse the options when creating the container; the
    /// text is Docker's (or in its style, for what Berth requires besides).
    Invalid(String),
    /// An option Docker knows that Berth does not honour.
    Unsupported(String),
}

/// Validates the awslogs options of a container definition.
pub fn parse_options(options: &BTreeMap<String, String>) -> Result<AwsLogsConfig, OptionsError> {
    let invalid = |message: String| Err(OptionsError::Invalid(message));
    for key in options.keys() {
        match key.as_str() {
            "awslogs-group"
            | "awslogs-region"
            | "awslogs-stream-prefix"
            | "awslogs-create-group"
            | "awslogs-datetime-format"
            | "awslogs-multiline-pattern"
            | "mode"
            | "max-buffer-size" => {}
            "awslogs-endpoint" => {
                return Err(OptionsError::Unsupported(
                    "log option 'awslogs-endpoint': Berth agents deliver container output to \
                     their own control plane; remove the option"
                        .to_string(),
                ))
            }
            other if DOCKER_OPTIONS_NOT_SUPPORTED.contains(&other) => {
                return Err(OptionsError::Unsupported(format!(
                    "log option '{other}' of the awslogs driver; remove it (Berth honours \
                     awslogs-group, awslogs-region, awslogs-stream-prefix, awslogs-create-group, \
                     awslogs-datetime-format, awslogs-multiline-pattern, mode and max-buffer-size)"
                )))
            }
            other => return invalid(format!("unknown log opt '{other}' for awslogs log driver")),
        }
    }
    let group = options.get("awslogs-group").map_or("", String::as_str);
    if group.is_empty() {
        return invalid("must specify a value for log opt 'awslogs-group'".to_string());
    }
    let region = options.get("awslogs-region").map_or("", String::as_str);
    if region.is_empty() {
        return invalid(
            "must specify a value for log opt 'awslogs-region' (the region of the log group, \
             e.g. us-east-1)"
                .to_string(),
        );
    }
    let create_group = match options.get("awslogs-create-group").map(String::as_str) {
        None | Some("") => false,
        Some(value) => match parse_bool(value) {
            Some(value) => value,
            None => {
                return invalid(format!(
                    "must specify valid value for log opt 'awslogs-create-group': \
                     strconv.ParseBool: parsing \"{value}\": invalid syntax"
                ))
            }
        },
    };
    let datetime_format = options.get("awslogs-datetime-format");
    let multiline = options.get("awslogs-multiline-pattern");
    if datetime_format.is_some() && multiline.is_some() {
        return invalid(
            "you cannot configure log opt 'awslogs-datetime-format' and \
             'awslogs-multiline-pattern' at the same time"
                .to_string(),
        );
    }
    let multiline_pattern = match (datetime_format, multiline) {
        (Some(format), _) if !format.is_empty() => {
            Some(strftime_to_regex(format).map_err(OptionsError::Invalid)?)
        }
        (_, Some(pattern)) if !pattern.is_empty() => Some(pattern.clone()),
        _ => None,
    };
    if let Some(pattern) = &multiline_pattern {
        if let Err(error) = regex::Regex::new(pattern) {
            return invalid(format!(
                "awslogs could not parse multiline pattern key {pattern:?}: {error}"
            ));
        }
    }
    let max_buffer_size = options.get("max-buffer-size");
    let mode = match options.get("mode").map(String::as_str) {
        None | Some("") | Some("blocking") => {
            if max_buffer_size.is_some() {
                return invalid(
                    "logger: max-buffer-size option is only supported with 'mode=non-blocking'"
                        .to_string(),
                );
            }
            DeliveryMode::Blocking
        }
        Some("non-blocking") => DeliveryMode::NonBlocking {
            max_buffer_size_bytes: match max_buffer_size {
                None => DEFAULT_MAX_BUFFER_SIZE_BYTES,
                Some(size) => parse_buffer_size(size).map_err(OptionsError::Invalid)?,
            },
        },
        Some(other) => {
            return invalid(format!(
                "logger: logging mode not supported: {other} (use 'blocking' or 'non-blocking')"
            ))
        }
    };
    Ok(AwsLogsConfig {
        group: group.to_string(),
        region: region.to_string(),
        stream_prefix: options
            .get("awslogs-stream-prefix")
            .filter(|p| !p.is_empty())
            .cloned(),
        create_group,
        multiline_pattern,
        mode,
    })
}

/// Go's `strconv.ParseBool`, which Docker uses.
fn parse_bool(value: &str) -> Option<bool> {
    match value {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Some(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Some(false),
        _ => None,
    }
}

/// `awslogs-datetime-format` (strftime) → the regular expression Docker's
/// awslogs driver makes of it: each `%x` sequence becomes a pattern, the
/// text between stays as written (a regular expression, as in Docker). The
/// line matches if the pattern matches anywhere in it, as in Docker (write
/// `^` first to anchor it). A sequence Docker does not know is refused
/// (Docker would silently drop it).
pub fn strftime_to_regex(format: &str) -> Result<String, String> {
    let mut regex = String::new();
    let mut chars = format.chars();
    while let Some(c) = chars.next() {
        if c != '%' {
            regex.push(c);
            continue;
        }
        let Some(sequence) = chars.next() else {
            return Err(format!(
                "log opt 'awslogs-datetime-format' {format:?} ends with a lone '%'; write '%%' for a percent sign"
            ));
        };
        let pattern = match sequence {
            'a' => "(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun)",
            'A' => "(?:Monday|Tuesday|Wednesday|Thursday|Friday|Saturday|Sunday)",
            'b' => "(?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)",
            'B' => "(?:January|February|March|April|May|June|July|August|September|October|November|December)",
            'd' => "(?:0[1-9]|[1,2][0-9]|3[0,1])",
            'f' => r"\d{6}",
            'H' => "(?:[0,1][0-9]|2[0-3])",
            'I' => "(?:0[0-9]|1[0-2])",
            'j' => "(?:0[0-9][1-9]|[1,2][0-9][0-9]|3[0-5][0-9]|36[0-6])",
            'L' => r"\.\d{3}",
            'm' => "(?:0[1-9]|1[0-2])",
            'M' => "[0-5][0-9]",
            'p' => "[A,P]M",
            'S' => "[0-5][0-9]",
            'U' | 'W' => "(?:[0-4][0-9]|5[0-3])",
            'w' => "[0-6]",
            'y' => r"\d{2}",
            'Y' => r"\d{4}",
            'z' => r"[+-]\d{4}",
            'Z' => "[A-Z]{1,4}T",
            '%' => "%",
            other => {
                return Err(format!(
                    "log opt 'awslogs-datetime-format' {format:?} uses '%{other}', which the awslogs \
                     driver does not know; use %a %A %b %B %d %f %H %I %j %L %m %M %p %S %U %w %W %y %Y %z %Z or %%"
                ))
            }
        };
        regex.push_str(pattern);
    }
    Ok(regex)
}

/// `max-buffer-size` as Docker reads it (go-units `RAMInBytes`): a number,
/// optionally a unit `k`, `m`, `g`, `t` or `p` (powers of 1024, any case),
/// optionally followed by `i` and/or `b`: "4m", "25MiB", "512k", "1048576".
pub fn parse_buffer_size(text: &str) -> Result<u64, String> {
    let invalid = || {
        format!(
            "invalid value for log opt 'max-buffer-size': {text:?}; give a size such as 4m, 25m or 1g"
        )
    };
    let trimmed = text.trim_end_matches(['b', 'B']);
    let trimmed = trimmed.trim_end_matches(['i', 'I']);
    let (number, multiplier) = match trimmed.chars().last().map(|c| c.to_ascii_lowercase()) {
        Some('k') => (&trimmed[..trimmed.len() - 1], 1u64 << 10),
        Some('m') => (&trimmed[..trimmed.len() - 1], 1 << 20),
        Some('g') => (&trimmed[..trimmed.len() - 1], 1 << 30),
        Some('t') => (&trimmed[..trimmed.len() - 1], 1 << 40),
        Some('p') => (&trimmed[..trimmed.len() - 1], 1 << 50),
        _ => (trimmed, 1),
    };
    let number = number.strip_suffix(' ').unwrap_or(number);
    if number.is_empty() || !number.chars().all(|c| c.is_ascii_digit() || c == '.') {
        return Err(invalid());
    }
    let value: f64 = number.parse().map_err(|_| invalid())?;
    let bytes = value * multiplier as f64;
    if !(1.0..=u64::MAX as f64).contains(&bytes) {
        return Err(invalid());
    }
    Ok(bytes as u64)
}

/// The log stream ECS names for a container: `<prefix>/<container name>/<task
/// id>` with `awslogs-stream-prefix`; without it, as Docker's awslogs
/// driver names it, the container's full Docker id.
pub fn stream_name(
    config: &AwsLogsConfig,
    container_name: &str,
    task_arn: &str,
    docker_id: &str,
) -> String {
    match &config.stream_prefix {
        Some(prefix) => format!(
            "{prefix}/{container_name}/{}",
            task_arn.rsplit('/').next().unwrap_or(task_arn)
        ),
        None => docker_id.to_string(),
    }
}

/// Where a piece of output is in a container's log: the line's timestamp
/// (nanoseconds), its index among the lines with that timestamp, and the
/// piece of the line (a line over [`MAX_EVENT_MESSAGE_BYTES`] becomes
/// several events). Positions grow strictly along the log.
///
/// As a `u128`: `timestamp_ns << 32 | index << 4 | piece`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Position(pub u128);

const PIECE_BITS: u32 = 4;
// The longest line a runtime delivers, even if every byte is invalid UTF-8
// (3 bytes each once replaced), fits in the pieces a position can count.
const _: () = assert!(runtime::MAX_LOG_LINE_BYTES * 3 / MAX_EVENT_MESSAGE_BYTES < 1 << PIECE_BITS);

impl Position {
    pub fn new(timestamp_ns: i64, index: u32, piece: u8) -> Position {
        let timestamp = u128::from(timestamp_ns.max(0) as u64);
        let index = u128::from(index.min(u32::MAX >> PIECE_BITS));
        Position(timestamp << 32 | index << PIECE_BITS | u128::from(piece))
    }

    pub fn timestamp_ns(self) -> i64 {
        i64::try_from(self.0 >> 32).unwrap_or(i64::MAX)
    }

    /// The line's position (piece 0).
    pub fn line(self) -> Position {
        Position(self.0 & !((1u128 << PIECE_BITS) - 1))
    }

    pub fn piece(self) -> u8 {
        (self.0 & ((1u128 << PIECE_BITS) - 1)) as u8
    }

    /// Parses the decimal cursor the control plane stores.
    pub fn parse(cursor: &str) -> Option<Position> {
        cursor.parse().ok().map(Position)
    }

    pub fn to_cursor(self) -> String {
        self.0.to_string()
    }

    /// Where to start reading the log to resume after this position.
    pub fn resume_since_ns(self) -> i64 {
        (self.timestamp_ns() - RESUME_SLACK_NS).max(0)
    }
}

/// Gives the lines of one read of the log their positions, in order. A line
/// timestamped before the one read just before it takes that one's
/// timestamp, so positions (and event timestamps) never go back; lines at
/// or before `after` (the position already delivered) are reported as
/// already delivered.
#[derive(Clone, Debug)]
pub struct LinePositions {
    after: Option<Position>,
    timestamp_ns: i64,
    index: u32,
    any: bool,
}

/// One line, placed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PlacedLine {
    pub position: Position,
    /// The line's timestamp, never before the previous line's.
    pub timestamp_ns: i64,
    /// Pieces up to this one were delivered before (the line itself is at
    /// the cursor); `None`: nothing of it was.
    pub delivered_pieces_through: Option<u8>,
}

impl LinePositions {
    /// For a read of the log that starts at `after.resume_since_ns()` (or at
    /// the beginning when nothing was delivered).
    pub fn new(after: Option<Position>) -> LinePositions {
        LinePositions {
            after,
            timestamp_ns: 0,
            index: 0,
            any: false,
        }
    }

    /// Places the next line; `None` when it was delivered entirely before.
    pub fn place(&mut self, timestamp_ns: i64) -> Option<PlacedLine> {
        if self.any && timestamp_ns <= self.timestamp_ns {
            self.index = self.index.saturating_add(1);
        } else {
            self.timestamp_ns = timestamp_ns;
            self.index = 0;
        }
        self.any = true;
        let position = Position::new(self.timestamp_ns, self.index, 0);
        let delivered_pieces_through = match self.after {
            Some(after) if position < after.line() => return None,
            Some(after) if position == after.line() => Some(after.piece()),
            _ => None,
        };
        Some(PlacedLine {
            position,
            timestamp_ns: self.timestamp_ns,
            delivered_pieces_through,
        })
    }
}

/// One CloudWatch Logs event, with the position of the last output it holds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Event {
    pub timestamp_ms: i64,
    pub message: String,
    pub position: Position,
    /// How many output lines it holds (for the non-blocking drop marker).
    pub lines: u64,
}

/// A multiline event being gathered.
#[derive(Clone, Debug)]
struct Pending {
    timestamp_ms: i64,
    message: String,
    position: Position,
    lines: u64,
    last_line_at_ms: i64,
}

/// Lines → events (see the module docs).
#[derive(Debug)]
pub struct Assembler {
    start_pattern: Option<regex::Regex>,
    pending: Option<Pending>,
}

/// Splits `message` into pieces of at most [`MAX_EVENT_MESSAGE_BYTES`] at
/// character boundaries.
fn split_message(message: &str) -> Vec<&str> {
    let mut pieces = Vec::new();
    let mut rest = message;
    while !rest.is_empty() {
        let mut end = rest.len().min(MAX_EVENT_MESSAGE_BYTES);
        while !rest.is_char_boundary(end) {
            end -= 1;
        }
        let (piece, tail) = rest.split_at(end);
        pieces.push(piece);
        rest = tail;
    }
    pieces
}

impl Assembler {
    pub fn new(start_pattern: Option<regex::Regex>) -> Assembler {
        Assembler {
            start_pattern,
            pending: None,
        }
    }

    /// Events of one message whose last line is at `position`; pieces up
    /// to `skip_through` were delivered before.
    fn message_events(
        message: &str,
        timestamp_ms: i64,
        position: Position,
        lines: u64,
        skip_through: Option<u8>,
    ) -> Vec<Event> {
        let pieces = split_message(message);
        let last = pieces.len().saturating_sub(1);
        pieces
            .into_iter()
            .enumerate()
            .filter(|(piece, _)| skip_through.is_none_or(|through| *piece > usize::from(through)))
            .map(|(piece, text)| Event {
                timestamp_ms,
                message: text.to_string(),
                position: Position(position.0 | piece as u128),
                lines: if piece == last { lines } else { 0 },
            })
            .collect()
    }

    fn flush_pending(&mut self) -> Vec<Event> {
        match self.pending.take() {
            Some(p) => Self::message_events(&p.message, p.timestamp_ms, p.position, p.lines, None),
            None => Vec::new(),
        }
    }

    /// One line of output; the events that are complete now.
    pub fn push(&mut self, text: &[u8], line: PlacedLine, now_ms: i64) -> Vec<Event> {
        let text = String::from_utf8_lossy(text);
        let timestamp_ms = line.timestamp_ns.div_euclid(1_000_000);
        if let Some(through) = line.delivered_pieces_through {
            // This line ended the last delivered event; pieces of it may
            // remain (a long line whose split was cut by a batch).
            return Self::message_events(&text, timestamp_ms, line.position, 1, Some(through));
        }
        let Some(pattern) = &self.start_pattern else {
            return Self::message_events(&text, timestamp_ms, line.position, 1, None);
        };
        let mut events = Vec::new();
        if pattern.is_match(&text) {
            events.extend(self.flush_pending());
        }
        let would_be = self.pending.as_ref().map_or(0, |p| p.message.len()) + text.len() + 1;
        if would_be > MAX_EVENT_MESSAGE_BYTES {
            events.extend(self.flush_pending());
        }
        let pending = self.pending.get_or_insert_with(|| Pending {
            timestamp_ms,
            message: String::new(),
            position: line.position,
            lines: 0,
            last_line_at_ms: now_ms,
        });
        pending.message.push_str(&text);
        pending.message.push('\n');
        pending.position = line.position;
        pending.lines += 1;
        pending.last_line_at_ms = now_ms;
        events
    }

    /// The multiline event gathered so far, if no line has joined it for
    /// `idle_ms`.
    pub fn flush_idle(&mut self, now_ms: i64, idle_ms: i64) -> Vec<Event> {
        match &self.pending {
            Some(p) if now_ms - p.last_line_at_ms >= idle_ms => self.flush_pending(),
            _ => Vec::new(),
        }
    }

    /// The output ended: whatever is gathered.
    pub fn finish(&mut self) -> Vec<Event> {
        self.flush_pending()
    }

    pub fn has_pending(&self) -> bool {
        self.pending.is_some()
    }
}

/// One `PutContainerLogEvents` worth of events.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Batch {
    pub events: Vec<AgentLogEvent>,
    /// The position of the last output included.
    pub cursor: Position,
}

/// Events not sent yet, in order, and how batches are cut from them.
#[derive(Debug, Default)]
pub struct Outbox {
    queue: VecDeque<Event>,
    bytes: usize,
    /// Lines and bytes dropped since the marker at the queue's front was made.
    dropped: Option<Dropped>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Dropped {
    lines: u64,
    bytes: u64,
    max_buffer_size_bytes: u64,
}

fn marker_message(dropped: Dropped) -> String {
    format!(
        "[berth] {} log lines ({} bytes) were dropped here: the container wrote faster than \
         its output could be delivered, and mode non-blocking keeps at most max-buffer-size \
         ({} bytes) waiting",
        dropped.lines, dropped.bytes, dropped.max_buffer_size_bytes
    )
}

impl Outbox {
    /// Message bytes waiting.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    pub fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }

    pub fn len(&self) -> usize {
        self.queue.len()
    }

    pub fn push(&mut self, event: Event) {
        self.bytes += event.message.len();
        self.queue.push_back(event);
    }

    /// Pushes, then drops the oldest waiting events until at most
    /// `max_bytes` wait; dropped events are replaced by one marker event at
    /// the front that says how many lines and bytes were lost (one marker
    /// for consecutive drops). The newest event is never dropped.
    pub fn push_bounded(&mut self, event: Event, max_bytes: u64) {
        self.push(event);
        let max_bytes = usize::try_from(max_bytes).unwrap_or(usize::MAX);
        while self.bytes > max_bytes && self.queue.len() > 1 {
            let has_marker = self.dropped.is_some();
            let victim_index = usize::from(has_marker);
            if victim_index >= self.queue.len() - 1 {
                break;
            }
            let victim = self.queue.remove(victim_index).expect("index checked");
            self.bytes -= victim.message.len();
            let dropped = self.dropped.get_or_insert(Dropped {
                lines: 0,
                bytes: 0,
                max_buffer_size_bytes: max_bytes as u64,
            });
            dropped.lines += victim.lines;
            dropped.bytes += victim.message.len() as u64;
            let message = marker_message(*dropped);
            if has_marker {
                let marker = &mut self.queue[0];
                self.bytes = self.bytes - marker.message.len() + message.len();
                marker.message = message;
                marker.position = victim.position;
            } else {
                self.bytes += message.len();
                self.queue.push_front(Event {
                    timestamp_ms: victim.timestamp_ms,
                    message,
                    position: victim.position,
                    lines: 0,
                });
            }
        }
    }

    /// Enough waits for a full batch.
    pub fn full_batch_ready(&self) -> bool {
        self.queue.len() >= MAX_BATCH_EVENTS
            || self.bytes + self.queue.len() * EVENT_OVERHEAD_BYTES >= MAX_BATCH_BYTES
    }

    /// Takes the next batch: the oldest events within PutLogEvents' limits.
    pub fn take_batch(&mut self) -> Option<Batch> {
        let first = self.queue.front()?;
        let first_ms = first.timestamp_ms;
        let mut count = 0;
        let mut bytes = 0;
        for event in &self.queue {
            let size = event.message.len() + EVENT_OVERHEAD_BYTES;
            if count == MAX_BATCH_EVENTS
                || bytes + size > MAX_BATCH_BYTES
                || event.timestamp_ms - first_ms > MAX_BATCH_SPAN_MS
            {
                break;
            }
            count += 1;
            bytes += size;
        }
        let count = count.max(1);
        let events: Vec<Event> = self.queue.drain(..count).collect();
        if self.dropped.is_some() {
            // The marker left with this batch.
            self.dropped = None;
        }
        self.bytes -= events.iter().map(|e| e.message.len()).sum::<usize>();
        let cursor = events.last().expect("at least one").position;
        Some(Batch {
            events: events
                .into_iter()
                .map(|e| AgentLogEvent {
                    timestamp: e.timestamp_ms,
                    message: e.message,
                })
                .collect(),
            cursor,
        })
    }
}

#[cfg(test)]
mod tests;
