//! aws-protocol: the AWS wire formats Berth speaks, as pure functions.
//!
//! * [`sigv4`] — Signature Version 4 verification (both the `Authorization` header and the
//!   presigned query-string form) with AWS's error codes and messages, a signing-key cache for
//!   the request hot path, and signing for our own clients.
//! * [`json`] — JSON 1.1 protocol helpers (ECS): content type, error bodies, `X-Amz-Target`.
//! * [`query`] — query protocol helpers (ELBv2, CloudWatch): form bodies and XML error responses;
//!   [`query_wire`] the runtime of the generated query-protocol shapes.
//! * [`rpcv2`] — the Smithy RPC v2 CBOR protocol (CloudWatch): paths, headers, error bodies.
//! * [`eventstream`] — `application/vnd.amazon.eventstream` frames for streaming responses
//!   (StartLiveTail).
//! * [`date`] — the `YYYYMMDD'T'HHMMSS'Z'` timestamps and HTTP dates, without a date crate.
//!
//! **Architecture Invariant:** no I/O, no tokio, no clock: the current time is always an
//! argument (`now_epoch_s`) and secrets come through a lookup function.

pub mod date;
pub mod eventstream;
pub mod json;
pub mod query;
pub mod query_wire;
pub mod rpcv2;
pub mod sigv4;
