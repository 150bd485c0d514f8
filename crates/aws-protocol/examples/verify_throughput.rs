//! Prints how many SigV4 verifications per second one thread does for a typical ECS call
//! (a signed `RunTask` with a ~300-byte JSON body), with the signing-key cache warm.
//!
//! ```text
//! cargo run --release -p aws-protocol --example verify_throughput [-- SECONDS]
//! ```

use std::time::{Duration, Instant};

use aws_protocol::sigv4::{
    sign_headers, verify_with_cache, AuthMode, RequestParts, SigningKeyCache, SigningParams,
};
use http::{HeaderMap, HeaderValue};

const ACCESS_KEY_ID: &str = "AKIDEXAMPLE";
const SECRET: &str = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";
/// 2024-02-29T12:00:00Z; signing and verifying use the same fixed instant.
const SIGNED_AT_EPOCH_S: i64 = 1_709_208_000;

/// The one place this example reads the clock: to measure itself.
#[allow(clippy::disallowed_methods)]
fn measure(run_for: Duration, mut iteration: impl FnMut()) -> (u64, Duration) {
    let started = Instant::now();
    let mut count = 0u64;
    while started.elapsed() < run_for {
        for _ in 0..1_000 {
            iteration();
        }
        count += 1_000;
    }
    (count, started.elapsed())
}

fn main() {
    let run_for_s: u64 = std::env::args()
        .nth(1)
        .and_then(|arg| arg.parse().ok())
        .unwrap_or(3);

    let body = br#"{"cluster":"default","taskDefinition":"web:3","count":2,"launchType":"EC2","overrides":{"containerOverrides":[{"name":"app","environment":[{"name":"GREETING","value":"hello"}]}]},"startedBy":"ecs-svc/1234567890123456789","tags":[{"key":"team","value":"platform"}],"clientToken":"5c0f4f5e-1b5a-4c1e-9d59-7c1e4f2a9b10"}"#;
    let mut headers = HeaderMap::new();
    headers.insert("host", HeaderValue::from_static("127.0.0.1:4566"));
    headers.insert(
        "content-type",
        HeaderValue::from_static("application/x-amz-json-1.1"),
    );
    headers.insert(
        "x-amz-target",
        HeaderValue::from_static("AmazonEC2ContainerServiceV20141113.RunTask"),
    );
    headers.insert(
        "user-agent",
        HeaderValue::from_static("aws-cli/2.15.0 md/Botocore#1.34.0 ua/2.0 os/linux"),
    );
    headers.insert("content-length", HeaderValue::from(body.len()));
    let params = SigningParams {
        access_key_id: ACCESS_KEY_ID,
        secret_access_key: SECRET,
        session_token: None,
        region: "us-east-1",
        service: "ecs",
        now_epoch_s: SIGNED_AT_EPOCH_S,
    };
    sign_headers("POST", "/", "", &mut headers, body, &params).expect("the request has a Host");

    let parts = RequestParts {
        method: "POST",
        path: "/",
        query: "",
        headers: &headers,
        body,
    };
    let secret_for =
        |access_key_id: &str| (access_key_id == ACCESS_KEY_ID).then(|| SECRET.to_owned());
    let cache = SigningKeyCache::default();
    let mut verify_once = || {
        let verified = verify_with_cache(
            &parts,
            &secret_for,
            &cache,
            SIGNED_AT_EPOCH_S + 1,
            AuthMode::Verify,
        );
        assert!(
            verified.is_ok(),
            "the benchmark request must verify: {verified:?}"
        );
    };
    // Warm the key cache and the branch predictors.
    measure(Duration::from_millis(200), &mut verify_once);
    let (count, elapsed) = measure(Duration::from_secs(run_for_s), &mut verify_once);
    let per_second = count as f64 / elapsed.as_secs_f64();
    println!(
        "sigv4 verify (ECS RunTask, {} byte body, cached signing key, 1 thread): \
         {per_second:.0} verifications/s ({:.2} µs each, {count} in {:.2} s)",
        body.len(),
        1e6 / per_second,
        elapsed.as_secs_f64()
    );
}
