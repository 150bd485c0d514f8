//! SigV4 signing for our own clients (agent, benchmarks, tests), producing exactly what
//! botocore produces for the same request.

use hmac::Mac;
use http::header::{AUTHORIZATION, HOST};
use http::{HeaderMap, HeaderName, HeaderValue};

use super::canonical::{self, push_uri_encoded};
use super::signing_key::{derive_signing_key, keyed_hmac};
use super::{hex_sha256, update_string_to_sign, ALGORITHM, X_AMZ_CONTENT_SHA256, X_AMZ_DATE};
use crate::date::AmzDate;

/// Who signs, for what, and when.
#[derive(Clone, Copy, Debug)]
pub struct SigningParams<'a> {
    /// The access key id, e.g. `AKIDEXAMPLE`.
    pub access_key_id: &'a str,
    /// The secret access key.
    pub secret_access_key: &'a str,
    /// A session token for temporary credentials, sent as `X-Amz-Security-Token`.
    pub session_token: Option<&'a str>,
    /// The region, e.g. `us-east-1`.
    pub region: &'a str,
    /// The service signing name, e.g. `ecs` or `elasticloadbalancing`.
    pub service: &'a str,
    /// The signing time.
    pub now_epoch_s: i64,
}

/// Why a request could not be signed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SignError {
    /// SigV4 always signs `Host`, so it must be set before signing.
    #[error("the request has no Host header: set it to the endpoint's host[:port] before signing")]
    MissingHost,
    /// A credential or scope part cannot appear in an HTTP header.
    #[error("the {header} header cannot carry the given value: check the credentials, region and service for control characters")]
    InvalidHeaderValue {
        /// The header that could not be set.
        header: &'static str,
    },
}

/// Headers botocore never signs: hop-by-hop ones a proxy may rewrite, and the user agent.
const UNSIGNED_HEADERS: [&str; 12] = [
    "authorization",
    "connection",
    "expect",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "user-agent",
    "x-amzn-trace-id",
];

fn signed_header_names(headers: &HeaderMap) -> String {
    let mut names: Vec<&str> = headers
        .keys()
        .map(HeaderName::as_str)
        .filter(|name| !UNSIGNED_HEADERS.contains(name))
        .collect();
    names.sort_unstable();
    names.join(";")
}

fn header_value(text: &str, header: &'static str) -> Result<HeaderValue, SignError> {
    HeaderValue::from_str(text).map_err(|_| SignError::InvalidHeaderValue { header })
}

fn signature_hex(
    params: &SigningParams<'_>,
    signed_at: &AmzDate,
    credential_scope: &str,
    canonical_request: &[u8],
) -> String {
    let mut canonical_hash_hex = [0u8; 64];
    let canonical_hash = hex_sha256(canonical_request, &mut canonical_hash_hex);
    let mut mac = keyed_hmac(&derive_signing_key(
        params.secret_access_key,
        signed_at.date_stamp(),
        params.region,
        params.service,
    ));
    update_string_to_sign(&mut mac, signed_at, credential_scope, canonical_hash);
    hex::encode(mac.finalize().into_bytes())
}

/// Signs a request in the header form, like botocore's `SigV4Auth`.
///
/// Sets `X-Amz-Date`, `X-Amz-Security-Token` (with a session token) and `Authorization`,
/// replacing earlier values. Every header present is signed except the ones botocore skips
/// (hop-by-hop headers such as `Connection`, and `User-Agent`), so set `Host` (required) and
/// any `Content-Type` / `X-Amz-Target` first. The payload hash is the SHA-256 of `body`, or the
/// `X-Amz-Content-Sha256` header's value when present (e.g. `UNSIGNED-PAYLOAD`); that header
/// is not added otherwise, as botocore does not for non-S3 services.
pub fn sign_headers(
    method: &str,
    path: &str,
    query: &str,
    headers: &mut HeaderMap,
    body: &[u8],
    params: &SigningParams<'_>,
) -> Result<(), SignError> {
    if !headers.contains_key(HOST) {
        return Err(SignError::MissingHost);
    }
    headers.remove(AUTHORIZATION);
    let signed_at = AmzDate::from_epoch_s(params.now_epoch_s);
    headers.insert(X_AMZ_DATE, header_value(signed_at.as_str(), "X-Amz-Date")?);
    if let Some(token) = params.session_token {
        headers.insert(
            "x-amz-security-token",
            header_value(token, "X-Amz-Security-Token")?,
        );
    }
    let signed_headers = signed_header_names(headers);
    let mut body_hash_hex = [0u8; 64];
    let payload_hash = match headers.get(X_AMZ_CONTENT_SHA256) {
        Some(value) => String::from_utf8_lossy(value.as_bytes()).into_owned(),
        None => hex_sha256(body, &mut body_hash_hex).to_owned(),
    };
    let canonical_request = canonical::canonical_request(&canonical::CanonicalInput {
        method,
        raw_path: path,
        raw_query: query,
        skip_signature_param: false,
        headers,
        signed_headers: &signed_headers,
        payload_hash: &payload_hash,
    });
    let credential_scope = format!(
        "{}/{}/{}/aws4_request",
        signed_at.date_stamp(),
        params.region,
        params.service
    );
    let signature = signature_hex(params, &signed_at, &credential_scope, &canonical_request);
    let authorization = format!(
        "{ALGORITHM} Credential={}/{credential_scope}, SignedHeaders={signed_headers}, Signature={signature}",
        params.access_key_id
    );
    headers.insert(
        AUTHORIZATION,
        header_value(&authorization, "Authorization")?,
    );
    Ok(())
}

fn push_query_param(query: &mut Vec<u8>, key: &str, value: &str) {
    if !query.is_empty() {
        query.push(b'&');
    }
    query.extend_from_slice(key.as_bytes());
    query.push(b'=');
    push_uri_encoded(query, value);
}

/// Presigns a request in the query-string form, like botocore's `SigV4QueryAuth`, and
/// returns the complete new query string (without `?`): `query` followed by the `X-Amz-*`
/// parameters and `X-Amz-Signature`.
///
/// `query` must already be encoded the way it will be sent. The body is taken to be empty,
/// as for the GET requests presigned URLs are for. `headers` must contain `Host`; all of
/// them but the ones botocore skips are signed and must be sent along.
pub fn presign_query(
    method: &str,
    path: &str,
    query: &str,
    headers: &HeaderMap,
    params: &SigningParams<'_>,
    expires_s: u32,
) -> Result<String, SignError> {
    if !headers.contains_key(HOST) {
        return Err(SignError::MissingHost);
    }
    let signed_at = AmzDate::from_epoch_s(params.now_epoch_s);
    let credential_scope = format!(
        "{}/{}/{}/aws4_request",
        signed_at.date_stamp(),
        params.region,
        params.service
    );
    let signed_headers = signed_header_names(headers);
    let mut full_query: Vec<u8> = query.as_bytes().to_vec();
    push_query_param(&mut full_query, "X-Amz-Algorithm", ALGORITHM);
    push_query_param(
        &mut full_query,
        "X-Amz-Credential",
        &format!("{}/{credential_scope}", params.access_key_id),
    );
    push_query_param(&mut full_query, "X-Amz-Date", signed_at.as_str());
    push_query_param(&mut full_query, "X-Amz-Expires", &expires_s.to_string());
    push_query_param(&mut full_query, "X-Amz-SignedHeaders", &signed_headers);
    if let Some(token) = params.session_token {
        push_query_param(&mut full_query, "X-Amz-Security-Token", token);
    }
    // Only ASCII was appended to a `&str`.
    let mut full_query = String::from_utf8_lossy(&full_query).into_owned();
    let canonical_request = canonical::canonical_request(&canonical::CanonicalInput {
        method,
        raw_path: path,
        raw_query: &full_query,
        skip_signature_param: true,
        headers,
        signed_headers: &signed_headers,
        payload_hash: super::EMPTY_SHA256,
    });
    let signature = signature_hex(params, &signed_at, &credential_scope, &canonical_request);
    full_query.push_str("&X-Amz-Signature=");
    full_query.push_str(&signature);
    Ok(full_query)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(now_epoch_s: i64) -> SigningParams<'static> {
        SigningParams {
            access_key_id: "AKIDEXAMPLE",
            secret_access_key: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
            session_token: None,
            region: "us-east-1",
            service: "service",
            now_epoch_s,
        }
    }

    #[test]
    fn signs_the_aws_test_suite_get_vanilla_request() {
        // aws-sig-v4-test-suite "get-vanilla": GET / at 20150830T123600Z for
        // us-east-1/service with the documented example credentials.
        let mut headers = HeaderMap::new();
        headers.insert(HOST, HeaderValue::from_static("example.amazonaws.com"));
        sign_headers("GET", "/", "", &mut headers, b"", &params(1_440_938_160)).unwrap();
        assert_eq!(headers["x-amz-date"], "20150830T123600Z");
        assert_eq!(
            headers[AUTHORIZATION],
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, \
             SignedHeaders=host;x-amz-date, \
             Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"
        );
    }

    #[test]
    fn signing_replaces_an_old_authorization_and_skips_unsigned_headers() {
        let mut headers = HeaderMap::new();
        headers.insert(HOST, HeaderValue::from_static("example.amazonaws.com"));
        headers.insert("user-agent", HeaderValue::from_static("agent/1"));
        headers.insert(AUTHORIZATION, HeaderValue::from_static("stale"));
        let signing = SigningParams {
            session_token: Some("token"),
            ..params(1_440_938_160)
        };
        sign_headers("GET", "/", "", &mut headers, b"", &signing).unwrap();
        let authorization = headers[AUTHORIZATION].to_str().unwrap();
        assert!(
            authorization.contains("SignedHeaders=host;x-amz-date;x-amz-security-token,"),
            "{authorization}"
        );
        assert_eq!(headers.get_all(AUTHORIZATION).iter().count(), 1);
        assert_eq!(headers["x-amz-security-token"], "token");
    }

    #[test]
    fn signing_requires_a_host_header() {
        let mut headers = HeaderMap::new();
        assert_eq!(
            sign_headers("GET", "/", "", &mut headers, b"", &params(0)),
            Err(SignError::MissingHost)
        );
        assert_eq!(
            presign_query("GET", "/", "", &headers, &params(0), 60),
            Err(SignError::MissingHost)
        );
    }

    #[test]
    fn unusable_credentials_are_reported() {
        let mut headers = HeaderMap::new();
        headers.insert(HOST, HeaderValue::from_static("example.amazonaws.com"));
        let signing = SigningParams {
            session_token: Some("line\nbreak"),
            ..params(0)
        };
        assert_eq!(
            sign_headers("GET", "/", "", &mut headers, b"", &signing),
            Err(SignError::InvalidHeaderValue {
                header: "X-Amz-Security-Token"
            })
        );
    }

    #[test]
    fn presign_appends_the_auth_parameters_in_botocore_order() {
        let mut headers = HeaderMap::new();
        headers.insert(HOST, HeaderValue::from_static("example.amazonaws.com"));
        let query = presign_query(
            "GET",
            "/",
            "Action=List",
            &headers,
            &params(1_440_938_160),
            300,
        )
        .unwrap();
        let (unsigned, signature) = query.rsplit_once("&X-Amz-Signature=").unwrap();
        assert_eq!(
            unsigned,
            "Action=List&X-Amz-Algorithm=AWS4-HMAC-SHA256\
             &X-Amz-Credential=AKIDEXAMPLE%2F20150830%2Fus-east-1%2Fservice%2Faws4_request\
             &X-Amz-Date=20150830T123600Z&X-Amz-Expires=300&X-Amz-SignedHeaders=host"
        );
        assert_eq!(signature.len(), 64);
    }
}
