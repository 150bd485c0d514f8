//! Which etcd failures are worth another try, and the back-off between tries.
//!
//! A request that fails on a lost connection or during a leader election
//! may or may not have been applied. Reads and compaction are safe to repeat
//! either way; a transaction is repeated only when it certainly did not
//! reach etcd's log (the connection could not be made, or the member refused
//! it before proposing it), as etcd's own Go client does: repeating an
//! applied transaction would apply its writes twice.

use std::error::Error as _;
use std::time::Duration;

use tonic::Code;

/// What a failed request tells about its effect.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Failure {
    /// It was not applied; any request may be tried again.
    NotApplied,
    /// It may have been applied; only idempotent requests are tried again.
    MaybeApplied,
    /// Trying again will not help (bad request, permission, …).
    Permanent,
}

/// Messages of etcd errors returned before a request is proposed to raft.
const REFUSED_BEFORE_PROPOSAL: &[&str] = &[
    "etcdserver: no leader",
    "etcdserver: not capable",
    "etcdserver: too many requests",
    "raft proposal dropped",
];

pub(crate) fn classify(error: &etcd_client::Error) -> Failure {
    match error {
        etcd_client::Error::TransportError(_) => Failure::NotApplied,
        etcd_client::Error::IoError(_) => Failure::MaybeApplied,
        etcd_client::Error::GRpcStatus(status) => classify_status(status),
        _ => Failure::Permanent,
    }
}

pub(crate) fn classify_status(status: &tonic::Status) -> Failure {
    if connection_refused(status) {
        return Failure::NotApplied;
    }
    if REFUSED_BEFORE_PROPOSAL
        .iter()
        .any(|message| status.message().contains(message))
    {
        return Failure::NotApplied;
    }
    match status.code() {
        Code::Unavailable | Code::Unknown | Code::Cancelled | Code::DeadlineExceeded => {
            Failure::MaybeApplied
        }
        _ => Failure::Permanent,
    }
}

/// The request failed because no connection could be made: it never left.
fn connection_refused(status: &tonic::Status) -> bool {
    if status.message().contains("tcp connect error") {
        return true;
    }
    let mut source = status.source();
    while let Some(error) = source {
        if let Some(io) = error.downcast_ref::<std::io::Error>() {
            if matches!(
                io.kind(),
                std::io::ErrorKind::ConnectionRefused | std::io::ErrorKind::NotConnected
            ) {
                return true;
            }
        }
        if error.to_string().contains("tcp connect error") {
            return true;
        }
        source = error.source();
    }
    false
}

/// Wait before try number `attempt + 1`: 20 ms doubling to at most 1 s.
pub(crate) async fn back_off(attempt: u32) {
    let delay_ms = 20u64.saturating_mul(1 << attempt.min(6)).min(1_000);
    tokio::time::sleep(Duration::from_millis(delay_ms)).await;
}
