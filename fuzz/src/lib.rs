//! What the fuzz targets share: how one input is split into a sequence of
//! requests, and the request context every call runs in.
//!
//! An input is a sequence of calls separated by a line holding only `###`,
//! so the seed files under `fuzz/corpus/` stay readable.

/// The most calls one input makes (bounds the time one input takes).
pub const MAX_CALLS: usize = 12;

/// Splits `data` into at most [`MAX_CALLS`] calls at `\n###\n`.
pub fn calls(data: &[u8]) -> Vec<&[u8]> {
    const SEPARATOR: &[u8] = b"\n###\n";
    let mut calls = Vec::new();
    let mut rest = data;
    while calls.len() < MAX_CALLS {
        match rest
            .windows(SEPARATOR.len())
            .position(|window| window == SEPARATOR)
        {
            Some(at) => {
                calls.push(&rest[..at]);
                rest = &rest[at + SEPARATOR.len()..];
            }
            None => {
                calls.push(rest);
                break;
            }
        }
    }
    calls
}

/// Splits one call into its first line and the rest.
pub fn first_line(call: &[u8]) -> (&[u8], &[u8]) {
    match call.iter().position(|&byte| byte == b'\n') {
        Some(at) => (&call[..at], &call[at + 1..]),
        None => (call, &[]),
    }
}

/// The context of call number `index` of an input: a fixed region, account
/// and clock that moves one second per call.
pub fn request_context(index: usize) -> api::RequestContext {
    api::RequestContext {
        region: "us-east-1".to_string(),
        account_id: "000000000000".to_string(),
        principal_arn: "arn:aws:iam::000000000000:root".to_string(),
        request_id: format!("fuzz-{index}"),
        now_ms: 1_700_000_000_000 + 1_000 * index as i64,
    }
}

/// The stack of a tokio worker thread, where the server decodes requests.
pub const WORKER_STACK_BYTES: usize = 2 << 20;

/// Runs `work` on a thread with a tokio worker's stack, so input that
/// recurses too deep for the server crashes the fuzzer too (a stack overflow
/// aborts the process, as it would abort the server).
pub fn on_worker_stack<T: Send>(work: impl FnOnce() -> T + Send) -> T {
    std::thread::scope(|scope| {
        std::thread::Builder::new()
            .stack_size(WORKER_STACK_BYTES)
            .spawn_scoped(scope, work)
            .expect("a thread")
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
    })
}

/// A current-thread tokio runtime, built once per process.
pub fn runtime() -> &'static tokio::runtime::Runtime {
    static RUNTIME: std::sync::OnceLock<tokio::runtime::Runtime> = std::sync::OnceLock::new();
    RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a tokio runtime")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_calls_and_lines() {
        assert_eq!(calls(b"a\n###\nb\n###\n"), vec![&b"a"[..], b"b", b""]);
        assert_eq!(
            first_line(b"Op\n{\"a\":1}"),
            (&b"Op"[..], &b"{\"a\":1}"[..])
        );
        assert_eq!(first_line(b"Op"), (&b"Op"[..], &b""[..]));
    }
}
