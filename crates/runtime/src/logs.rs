//! What a container wrote: the values [`crate::ContainerRuntime::follow_logs`]
//! yields.

use futures::stream::BoxStream;

use crate::RuntimeError;

/// Which of the container's output streams a line came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogSource {
    Stdout,
    Stderr,
}

/// One line a container wrote, as the runtime recorded it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogLine {
    pub source: LogSource,
    /// When the runtime read the line, nanoseconds since the Unix epoch.
    pub timestamp_ns: i64,
    /// The line without its trailing newline (a final line without newline
    /// is delivered as is; a `\r` before the newline is kept). Lines Docker
    /// split into partial messages (16 KiB) are rejoined, up to
    /// [`MAX_LOG_LINE_BYTES`]; beyond that the rest of the line becomes
    /// further lines.
    pub text: Vec<u8>,
}

/// The longest [`LogLine::text`] a runtime delivers: 1 MiB.
pub const MAX_LOG_LINE_BYTES: usize = 1024 * 1024;

/// A container's output lines, in the order written; see
/// [`crate::ContainerRuntime::follow_logs`].
pub type LogLineStream = BoxStream<'static, Result<LogLine, RuntimeError>>;
