//! SigV4 header and presigned-query parsing and verification
//! (`aws_protocol::sigv4`). An input is a request in a small text form:
//!
//! ```text
//! <now_epoch_s> <secret access key>
//! METHOD /path?query
//! Header-Name: value
//! …
//!
//! body
//! ```
//!
//! Every access key resolves to the secret on the first line, except
//! `UNKNOWN`. Each request is verified in both modes, with and without the
//! signing-key cache (which must agree), and its canonical request is built.
//! Rejections are answers; a panic is a bug.
#![no_main]

use std::sync::OnceLock;

use aws_protocol::sigv4::{self, AuthMode, RequestParts, SigningKeyCache};
use http::{HeaderMap, HeaderName, HeaderValue};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| berth_fuzz::on_worker_stack(|| run(data)));

fn run(data: &[u8]) {
    static CACHE: OnceLock<SigningKeyCache> = OnceLock::new();
    // A small cache, so eviction runs too.
    let cache = CACHE.get_or_init(|| SigningKeyCache::new(8));

    let (clock_line, rest) = berth_fuzz::first_line(data);
    let clock_line = String::from_utf8_lossy(clock_line);
    let (now, secret) = clock_line.split_once(' ').unwrap_or((&clock_line, ""));
    // The clock is the server's, not the client's: keep it within the years
    // a clock can show (0000 to 9999).
    let now_epoch_s = now
        .parse::<i64>()
        .unwrap_or(1_440_938_160)
        .clamp(-62_167_219_200, 253_402_300_799);
    let secret = secret.to_string();

    let (request_line, mut rest) = berth_fuzz::first_line(rest);
    let request_line = String::from_utf8_lossy(request_line);
    let (method, target) = request_line.split_once(' ').unwrap_or((&request_line, "/"));
    let (path, query) = target.split_once('?').unwrap_or((target, ""));

    let mut headers = HeaderMap::new();
    loop {
        let (line, after) = berth_fuzz::first_line(rest);
        rest = after;
        if line.is_empty() {
            break;
        }
        let Some(colon) = line.iter().position(|&byte| byte == b':') else {
            continue;
        };
        let value = line[colon + 1..]
            .strip_prefix(b" ")
            .unwrap_or(&line[colon + 1..]);
        // The HTTP shell only ever sees headers hyper accepted.
        if let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(&line[..colon]),
            HeaderValue::from_bytes(value),
        ) {
            headers.append(name, value);
        }
    }
    let parts = RequestParts {
        method,
        path,
        query,
        headers: &headers,
        body: rest,
    };
    let secret_for = |access_key_id: &str| (access_key_id != "UNKNOWN").then(|| secret.clone());

    let _ = sigv4::canonical_request_text(&parts);
    let verified = sigv4::verify(&parts, &secret_for, now_epoch_s, AuthMode::Verify);
    let cached =
        sigv4::verify_with_cache(&parts, &secret_for, cache, now_epoch_s, AuthMode::Verify);
    assert_eq!(verified, cached, "the key cache changed the verdict");
    let open = sigv4::verify(&parts, &secret_for, now_epoch_s, AuthMode::Open);
    if let Ok(verified) = &verified {
        assert_eq!(
            open.as_ref(),
            Ok(verified),
            "Open refused what Verify accepted"
        );
        let _ = verified.require_service("ecs");
        let _ = verified.require_region("us-east-1");
    }
    if let Err(error) = verified {
        let _ = error.query_code();
        let _ = error.json_body();
    }
}
