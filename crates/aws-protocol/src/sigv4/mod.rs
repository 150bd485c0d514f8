//! AWS Signature Version 4: verification (server side) and signing (our clients).
//!
//! [`verify`] / [`verify_with_cache`] accept both forms AWS accepts for non-S3 services:
//!
//! * the `Authorization` header:
//!   `AWS4-HMAC-SHA256 Credential=AKID/20150830/us-east-1/ecs/aws4_request,
//!   SignedHeaders=host;x-amz-date, Signature=…`, timestamp from `X-Amz-Date` (or `Date`);
//! * the query string (presigned URLs): `X-Amz-Algorithm`, `X-Amz-Credential`, `X-Amz-Date`,
//!   `X-Amz-Expires`, `X-Amz-SignedHeaders`, `X-Amz-Signature`.
//!
//! Failures carry AWS's error codes and message wording (see [`codes`]); AWS checks in a
//! fixed order and so do we: form → syntax → `host` signed → timestamp → clock skew →
//! expiry → credential scope → access key → signature.
//!
//! Everything is pure: the current time comes in as `now_epoch_s`, secrets through a lookup
//! function. The `Host` header must be in [`RequestParts::headers`]; an HTTP/2 shell must copy
//! the `:authority` there first.

mod canonical;
mod sign;
mod signing_key;

use std::borrow::Cow;

use hmac::Mac;
use http::header::{AUTHORIZATION, DATE};
use http::{HeaderMap, HeaderValue};
use sha2::{Digest, Sha256};

use crate::date::{parse_amz_date, parse_http_date, AmzDate};

pub use sign::{presign_query, sign_headers, SignError, SigningParams};
pub use signing_key::{derive_signing_key, SigningKeyCache};

/// The only algorithm SigV4 defines.
pub const ALGORITHM: &str = "AWS4-HMAC-SHA256";
/// `X-Amz-Content-Sha256` value that leaves the body out of the signature.
pub const UNSIGNED_PAYLOAD: &str = "UNSIGNED-PAYLOAD";
/// How far the signing time may be from `now`, either way: AWS's 15 minutes.
pub const MAX_CLOCK_SKEW_S: i64 = 15 * 60;
/// The longest `X-Amz-Expires` AWS accepts: one week.
pub const MAX_PRESIGNED_EXPIRES_S: i64 = 7 * 24 * 60 * 60;
/// Hex SHA-256 of an empty body.
pub const EMPTY_SHA256: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

const CREDENTIAL_TERMINATOR: &str = "aws4_request";
const X_AMZ_DATE: &str = "x-amz-date";
const X_AMZ_CONTENT_SHA256: &str = "x-amz-content-sha256";

/// AWS error codes for authentication failures, as JSON-protocol services (ECS) send them.
/// [`AuthError::query_code`] gives the query-protocol (ELBv2) spelling.
pub mod codes {
    /// No `Authorization` header and no query-string signature.
    pub const MISSING_AUTHENTICATION_TOKEN: &str = "MissingAuthenticationTokenException";
    /// The authorization is malformed or lacks a part.
    pub const INCOMPLETE_SIGNATURE: &str = "IncompleteSignatureException";
    /// The access key is unknown.
    pub const UNRECOGNIZED_CLIENT: &str = "UnrecognizedClientException";
    /// Wrong signature, clock skew, expired or badly scoped credential.
    pub const INVALID_SIGNATURE: &str = "InvalidSignatureException";
}

/// The parts of an HTTP request that SigV4 covers, borrowed from whatever the shell parsed.
#[derive(Clone, Copy, Debug)]
pub struct RequestParts<'a> {
    /// The method as received, e.g. `POST`.
    pub method: &'a str,
    /// The raw path as received, still percent-encoded.
    pub path: &'a str,
    /// The raw query string without `?`; may be empty.
    pub query: &'a str,
    /// All request headers, including `Host`.
    pub headers: &'a HeaderMap,
    /// The complete body.
    pub body: &'a [u8],
}

/// How strictly [`verify`] checks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AuthMode {
    /// Look the access key up and check the signature.
    Verify,
    /// Require a well-formed SigV4 authorization (either form, valid scope, timestamp and
    /// signed headers, within the clock skew) but accept any access key and do not check the
    /// signature: for local use where any credentials the CLI has should work.
    Open,
}

/// Who signed an accepted request, and for what.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Verified {
    /// The access key from the credential scope.
    pub access_key_id: String,
    /// The region from the credential scope.
    pub region: String,
    /// The service (signing name) from the credential scope, e.g. `ecs`.
    pub service: String,
    /// When the request was signed.
    pub signed_at_epoch_s: i64,
}

impl Verified {
    /// Fails unless the request was signed for `service` (the signing name, e.g. `ecs`).
    pub fn require_service(&self, service: &str) -> Result<(), AuthError> {
        if self.service == service {
            Ok(())
        } else {
            Err(AuthError::invalid_signature(format!(
                "Credential should be scoped to correct service: '{service}'."
            )))
        }
    }

    /// Fails unless the request was signed for `region`.
    pub fn require_region(&self, region: &str) -> Result<(), AuthError> {
        if self.region == region {
            Ok(())
        } else {
            Err(AuthError::invalid_signature(format!(
                "Credential should be scoped to a valid region, not '{}'.",
                self.region
            )))
        }
    }
}

/// A rejected request: an AWS error code from [`codes`] and AWS's message. Always HTTP 403.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {message}")]
pub struct AuthError {
    /// One of the [`codes`].
    pub code: &'static str,
    /// The message AWS would send.
    pub message: String,
}

impl AuthError {
    /// The HTTP status of every authentication failure.
    pub const STATUS: u16 = 403;

    fn new(code: &'static str, message: impl Into<String>) -> AuthError {
        AuthError {
            code,
            message: message.into(),
        }
    }

    fn missing_token() -> AuthError {
        AuthError::new(
            codes::MISSING_AUTHENTICATION_TOKEN,
            "Missing Authentication Token",
        )
    }

    fn incomplete(message: impl Into<String>) -> AuthError {
        AuthError::new(codes::INCOMPLETE_SIGNATURE, message)
    }

    fn invalid_signature(message: impl Into<String>) -> AuthError {
        AuthError::new(codes::INVALID_SIGNATURE, message)
    }

    /// The HTTP status to answer with (403).
    pub fn status(&self) -> u16 {
        AuthError::STATUS
    }

    /// The code as query-protocol services (ELBv2, IAM) spell it.
    pub fn query_code(&self) -> &'static str {
        match self.code {
            codes::MISSING_AUTHENTICATION_TOKEN => "MissingAuthenticationToken",
            codes::INCOMPLETE_SIGNATURE => "IncompleteSignature",
            codes::UNRECOGNIZED_CLIENT => "InvalidClientTokenId",
            codes::INVALID_SIGNATURE => "SignatureDoesNotMatch",
            other => other,
        }
    }

    /// The JSON 1.1 error body for this failure.
    pub fn json_body(&self) -> Vec<u8> {
        crate::json::error_body(self.code, &self.message)
    }
}

const SIGNATURE_MISMATCH_MESSAGE: &str = "The request signature we calculated does not match the signature you provided. \
     Check your AWS Secret Access Key and signing method. Consult the service documentation for details.";

/// Verifies `parts` without a key cache: four extra HMACs per call. Prefer
/// [`verify_with_cache`] on a server.
pub fn verify(
    parts: &RequestParts<'_>,
    secret_for: &dyn Fn(&str) -> Option<String>,
    now_epoch_s: i64,
    mode: AuthMode,
) -> Result<Verified, AuthError> {
    verify_inner(parts, secret_for, None, now_epoch_s, mode)
}

/// Verifies `parts`, taking derived signing keys from `cache`.
///
/// `secret_for` maps an access key id to its secret (`None`: unknown key); it is not called
/// in [`AuthMode::Open`].
pub fn verify_with_cache(
    parts: &RequestParts<'_>,
    secret_for: &dyn Fn(&str) -> Option<String>,
    cache: &SigningKeyCache,
    now_epoch_s: i64,
    mode: AuthMode,
) -> Result<Verified, AuthError> {
    verify_inner(parts, secret_for, Some(cache), now_epoch_s, mode)
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum AuthForm {
    Header,
    Query,
}

enum Timestamp<'a> {
    /// `X-Amz-Date` (header or query): basic format only.
    AmzDate(Cow<'a, str>),
    /// `Date` header: basic format or an HTTP date.
    HttpDate(Cow<'a, str>),
}

impl Timestamp<'_> {
    fn parse(&self) -> Result<i64, AuthError> {
        let (parsed, text) = match self {
            Timestamp::AmzDate(text) => (parse_amz_date(text), text),
            Timestamp::HttpDate(text) => {
                (parse_amz_date(text).or_else(|| parse_http_date(text)), text)
            }
        };
        parsed.ok_or_else(|| {
            AuthError::incomplete(format!(
                "Date must be in ISO-8601 'basic format'. Got '{text}'. See http://en.wikipedia.org/wiki/ISO_8601"
            ))
        })
    }
}

/// The authorization parameters, from either form.
struct AuthFields<'a> {
    form: AuthForm,
    credential: Cow<'a, str>,
    signed_headers: Cow<'a, str>,
    signature: Cow<'a, str>,
    timestamp: Timestamp<'a>,
    expires: Option<Cow<'a, str>>,
}

fn header_text(value: &HeaderValue) -> Cow<'_, str> {
    String::from_utf8_lossy(value.as_bytes())
}

fn header_timestamp(headers: &HeaderMap) -> Option<Timestamp<'_>> {
    if let Some(value) = headers.get(X_AMZ_DATE) {
        Some(Timestamp::AmzDate(header_text(value)))
    } else {
        headers
            .get(DATE)
            .map(|value| Timestamp::HttpDate(header_text(value)))
    }
}

const REQUIRES_CREDENTIAL: &str = "Authorization header requires 'Credential' parameter.";
const REQUIRES_SIGNATURE: &str = "Authorization header requires 'Signature' parameter.";
const REQUIRES_SIGNED_HEADERS: &str = "Authorization header requires 'SignedHeaders' parameter.";
const REQUIRES_DATE: &str =
    "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header.";

fn missing_header_parts(missing: &[&str], authorization: &str) -> AuthError {
    AuthError::incomplete(format!(
        "{} Authorization={authorization}",
        missing.join(" ")
    ))
}

/// Parses `Authorization: AWS4-HMAC-SHA256 Credential=…, SignedHeaders=…, Signature=…`.
fn parse_authorization_header<'a>(
    value: &'a HeaderValue,
    headers: &'a HeaderMap,
) -> Result<AuthFields<'a>, AuthError> {
    let timestamp = header_timestamp(headers);
    let Ok(text) = std::str::from_utf8(value.as_bytes()) else {
        let mut missing = vec![
            REQUIRES_CREDENTIAL,
            REQUIRES_SIGNATURE,
            REQUIRES_SIGNED_HEADERS,
        ];
        if timestamp.is_none() {
            missing.push(REQUIRES_DATE);
        }
        return Err(missing_header_parts(&missing, &header_text(value)));
    };
    let text = text.trim();
    let (scheme, parameters) = text
        .split_once(|c: char| c.is_ascii_whitespace())
        .unwrap_or((text, ""));

    let mut credential = None;
    let mut signed_headers = None;
    let mut signature = None;
    if scheme == ALGORITHM {
        // AWS splits on commas and whitespace; the last value of a repeated key wins.
        for token in parameters
            .split(|c: char| c == ',' || c.is_ascii_whitespace())
            .filter(|token| !token.is_empty())
        {
            let Some((key, value)) = token.split_once('=') else {
                return Err(AuthError::incomplete(format!(
                    "'{token}' not a valid key=value pair (missing equal-sign) in Authorization header: '{text}'."
                )));
            };
            match key {
                "Credential" => credential = Some(value),
                "SignedHeaders" => signed_headers = Some(value),
                "Signature" => signature = Some(value),
                _ => {}
            }
        }
    }

    let mut missing = Vec::new();
    if credential.is_none() {
        missing.push(REQUIRES_CREDENTIAL);
    }
    if signature.is_none() {
        missing.push(REQUIRES_SIGNATURE);
    }
    if signed_headers.is_none() {
        missing.push(REQUIRES_SIGNED_HEADERS);
    }
    if timestamp.is_none() {
        missing.push(REQUIRES_DATE);
    }
    match (credential, signed_headers, signature, timestamp) {
        (Some(credential), Some(signed_headers), Some(signature), Some(timestamp)) => {
            Ok(AuthFields {
                form: AuthForm::Header,
                credential: Cow::Borrowed(credential),
                signed_headers: Cow::Borrowed(signed_headers),
                signature: Cow::Borrowed(signature),
                timestamp,
                expires: None,
            })
        }
        _ => Err(missing_header_parts(&missing, text)),
    }
}

/// The `X-Amz-*` parameters of a query string, first occurrence of each.
#[derive(Default)]
struct QueryAuthParams<'a> {
    algorithm: Option<Cow<'a, str>>,
    credential: Option<Cow<'a, str>>,
    date: Option<Cow<'a, str>>,
    expires: Option<Cow<'a, str>>,
    signed_headers: Option<Cow<'a, str>>,
    signature: Option<Cow<'a, str>>,
}

fn scan_query_auth(query: &str) -> QueryAuthParams<'_> {
    let mut params = QueryAuthParams::default();
    if !query.contains("X-Amz-") {
        return params;
    }
    for pair in query.split('&') {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        let slot = match key {
            "X-Amz-Algorithm" => &mut params.algorithm,
            "X-Amz-Credential" => &mut params.credential,
            "X-Amz-Date" => &mut params.date,
            "X-Amz-Expires" => &mut params.expires,
            "X-Amz-SignedHeaders" => &mut params.signed_headers,
            "X-Amz-Signature" => &mut params.signature,
            _ => continue,
        };
        if slot.is_none() {
            *slot = Some(canonical::decode_query_component(value));
        }
    }
    params
}

fn parse_query_auth(params: QueryAuthParams<'_>) -> Result<AuthFields<'_>, AuthError> {
    if params.algorithm.as_deref() != Some(ALGORITHM) {
        return Err(AuthError::missing_token());
    }
    let mut missing = Vec::new();
    if params.credential.is_none() {
        missing.push("AWS query-string parameters must include 'X-Amz-Credential'.");
    }
    if params.signature.is_none() {
        missing.push("AWS query-string parameters must include 'X-Amz-Signature'.");
    }
    if params.signed_headers.is_none() {
        missing.push("AWS query-string parameters must include 'X-Amz-SignedHeaders'.");
    }
    if params.date.is_none() {
        missing.push("AWS query-string parameters must include 'X-Amz-Date'.");
    }
    match (
        params.credential,
        params.signed_headers,
        params.signature,
        params.date,
    ) {
        (Some(credential), Some(signed_headers), Some(signature), Some(date)) => Ok(AuthFields {
            form: AuthForm::Query,
            credential,
            signed_headers,
            signature,
            timestamp: Timestamp::AmzDate(date),
            expires: params.expires,
        }),
        _ => Err(AuthError::incomplete(format!(
            "{} Re-examine the query-string parameters.",
            missing.join(" ")
        ))),
    }
}

fn auth_fields<'a>(parts: &RequestParts<'a>) -> Result<AuthFields<'a>, AuthError> {
    let query_params = scan_query_auth(parts.query);
    match (
        parts.headers.get(AUTHORIZATION),
        query_params.algorithm.is_some(),
    ) {
        (Some(value), false) => parse_authorization_header(value, parts.headers),
        (None, true) => parse_query_auth(query_params),
        (Some(_), true) => Err(AuthError::invalid_signature(
            "Only one auth mechanism allowed; only the X-Amz-Algorithm query parameter or the \
             Authorization header should be specified",
        )),
        (None, false) => Err(AuthError::missing_token()),
    }
}

fn check_clock_skew(
    signed_at: &AmzDate,
    signed_at_epoch_s: i64,
    now_epoch_s: i64,
) -> Result<(), AuthError> {
    let now = AmzDate::from_epoch_s(now_epoch_s);
    if signed_at_epoch_s < now_epoch_s.saturating_sub(MAX_CLOCK_SKEW_S) {
        let earliest = AmzDate::from_epoch_s(now_epoch_s.saturating_sub(MAX_CLOCK_SKEW_S));
        return Err(AuthError::invalid_signature(format!(
            "Signature expired: {signed_at} is now earlier than {earliest} ({now} - 15 min.)"
        )));
    }
    if signed_at_epoch_s > now_epoch_s.saturating_add(MAX_CLOCK_SKEW_S) {
        let latest = AmzDate::from_epoch_s(now_epoch_s.saturating_add(MAX_CLOCK_SKEW_S));
        return Err(AuthError::invalid_signature(format!(
            "Signature not yet current: {signed_at} is still later than {latest} ({now} + 15 min.)"
        )));
    }
    Ok(())
}

/// `X-Amz-Expires` of a presigned request: seconds after `X-Amz-Date` the URL stays valid.
fn check_expiry(
    expires: Option<&str>,
    signed_at: &AmzDate,
    signed_at_epoch_s: i64,
    now_epoch_s: i64,
) -> Result<(), AuthError> {
    let Some(expires) = expires else {
        return Ok(());
    };
    let expires_s = match expires.parse::<i64>() {
        Ok(seconds) if seconds >= 0 && expires.bytes().all(|b| b.is_ascii_digit()) => seconds,
        _ => return Err(AuthError::incomplete("X-Amz-Expires should be a number")),
    };
    if expires_s > MAX_PRESIGNED_EXPIRES_S {
        return Err(AuthError::incomplete(format!(
            "X-Amz-Expires must be less than a week (in seconds); that is, the given X-Amz-Expires \
             must be less than {MAX_PRESIGNED_EXPIRES_S} seconds"
        )));
    }
    if now_epoch_s > signed_at_epoch_s + expires_s {
        let now = AmzDate::from_epoch_s(now_epoch_s);
        let earliest = AmzDate::from_epoch_s(now_epoch_s - expires_s);
        return Err(AuthError::invalid_signature(format!(
            "Signature expired: {signed_at} is now earlier than {earliest} ({now} - {expires_s} sec.)"
        )));
    }
    Ok(())
}

fn split_credential(credential: &str) -> Option<[&str; 5]> {
    let mut pieces = credential.split('/');
    let split = [
        pieces.next()?,
        pieces.next()?,
        pieces.next()?,
        pieces.next()?,
        pieces.next()?,
    ];
    match pieces.next() {
        None => Some(split),
        Some(_) => None,
    }
}

fn is_lowercase_hex_signature(signature: &str) -> bool {
    signature.len() == 64
        && signature
            .bytes()
            .all(|byte| byte.is_ascii_digit() || (b'a'..=b'f').contains(&byte))
}

fn verify_inner(
    parts: &RequestParts<'_>,
    secret_for: &dyn Fn(&str) -> Option<String>,
    cache: Option<&SigningKeyCache>,
    now_epoch_s: i64,
    mode: AuthMode,
) -> Result<Verified, AuthError> {
    let fields = auth_fields(parts)?;

    if !fields
        .signed_headers
        .split(';')
        .any(|name| name.eq_ignore_ascii_case("host"))
    {
        return Err(AuthError::invalid_signature(
            "'Host' or ':authority' must be a 'SignedHeader' in the AWS Authorization.",
        ));
    }

    let signed_at_epoch_s = fields.timestamp.parse()?;
    let signed_at = AmzDate::from_epoch_s(signed_at_epoch_s);
    check_clock_skew(&signed_at, signed_at_epoch_s, now_epoch_s)?;
    check_expiry(
        fields.expires.as_deref(),
        &signed_at,
        signed_at_epoch_s,
        now_epoch_s,
    )?;

    let Some([access_key_id, date_stamp, region, service, terminator]) =
        split_credential(&fields.credential)
    else {
        return Err(AuthError::incomplete(format!(
            "Credential must have exactly 5 slash-delimited elements, e.g. keyid/date/region/service/term, got '{}'",
            fields.credential
        )));
    };
    let mut scope_problems = Vec::new();
    if terminator != CREDENTIAL_TERMINATOR {
        scope_problems.push(format!(
            "Credential should be scoped with a valid terminator: '{CREDENTIAL_TERMINATOR}', not '{terminator}'."
        ));
    }
    if date_stamp != signed_at.date_stamp() {
        scope_problems.push(format!(
            "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: \
             '{date_stamp}' != '{}', from '{signed_at}'.",
            signed_at.date_stamp()
        ));
    }
    if !scope_problems.is_empty() {
        return Err(AuthError::invalid_signature(scope_problems.join(" ")));
    }

    let verified = || Verified {
        access_key_id: access_key_id.to_owned(),
        region: region.to_owned(),
        service: service.to_owned(),
        signed_at_epoch_s,
    };
    if mode == AuthMode::Open {
        return Ok(verified());
    }

    let Some(secret) = secret_for(access_key_id) else {
        return Err(AuthError::new(
            codes::UNRECOGNIZED_CLIENT,
            "The security token included in the request is invalid.",
        ));
    };

    let canonical_request = verifier_canonical_request(parts, &fields);
    let mut canonical_hash_hex = [0u8; 64];
    let canonical_hash = hex_sha256(&canonical_request, &mut canonical_hash_hex);

    let key_scope = signing_key::KeyScope {
        access_key_id,
        date_stamp,
        region,
        service,
    };
    let mut mac = match cache {
        Some(cache) => cache.keyed_mac(&key_scope, &secret),
        None => signing_key::keyed_hmac(&derive_signing_key(&secret, date_stamp, region, service)),
    };
    let credential_scope = &fields.credential[access_key_id.len() + 1..];
    update_string_to_sign(&mut mac, &signed_at, credential_scope, canonical_hash);

    let mut provided = [0u8; 32];
    let signature_matches = is_lowercase_hex_signature(&fields.signature)
        && hex::decode_to_slice(fields.signature.as_bytes(), &mut provided).is_ok()
        && mac.verify_slice(&provided).is_ok();
    if signature_matches {
        Ok(verified())
    } else {
        Err(AuthError::invalid_signature(SIGNATURE_MISMATCH_MESSAGE))
    }
}

/// The canonical request as the verifier computes it for `fields`.
fn verifier_canonical_request(parts: &RequestParts<'_>, fields: &AuthFields<'_>) -> Vec<u8> {
    let mut body_hash_hex = [0u8; 64];
    let payload_hash = match parts.headers.get(X_AMZ_CONTENT_SHA256) {
        Some(value) if value.as_bytes() == UNSIGNED_PAYLOAD.as_bytes() => UNSIGNED_PAYLOAD,
        // Any other claimed hash is replaced by the real one: a client that signed a wrong
        // hash, or a body changed in flight, fails the signature check.
        _ => hex_sha256(parts.body, &mut body_hash_hex),
    };
    canonical::canonical_request(&canonical::CanonicalInput {
        method: parts.method,
        raw_path: parts.path,
        raw_query: parts.query,
        skip_signature_param: fields.form == AuthForm::Query,
        headers: parts.headers,
        signed_headers: &fields.signed_headers,
        payload_hash,
    })
}

/// The canonical request the verifier builds for `parts` (lossy UTF-8), for diagnosing a
/// signature mismatch against a client's own (botocore logs it at debug level). Fails only
/// when the authorization itself cannot be parsed.
pub fn canonical_request_text(parts: &RequestParts<'_>) -> Result<String, AuthError> {
    let fields = auth_fields(parts)?;
    Ok(String::from_utf8_lossy(&verifier_canonical_request(parts, &fields)).into_owned())
}

/// Writes the hex SHA-256 of `data` into `buffer` and returns it as text.
fn hex_sha256<'b>(data: &[u8], buffer: &'b mut [u8; 64]) -> &'b str {
    let digest = Sha256::digest(data);
    // 32 bytes always fit 64 hex digits, which are ASCII.
    let _ = hex::encode_to_slice(digest, buffer);
    std::str::from_utf8(buffer).unwrap_or_default()
}

/// Feeds the string to sign into `mac`:
/// `AWS4-HMAC-SHA256\n{timestamp}\n{scope}\n{hex sha256 of canonical request}`.
fn update_string_to_sign(
    mac: &mut signing_key::HmacSha256,
    signed_at: &AmzDate,
    credential_scope: &str,
    canonical_hash_hex: &str,
) {
    mac.update(ALGORITHM.as_bytes());
    mac.update(b"\n");
    mac.update(signed_at.as_str().as_bytes());
    mac.update(b"\n");
    mac.update(credential_scope.as_bytes());
    mac.update(b"\n");
    mac.update(canonical_hash_hex.as_bytes());
}

#[cfg(test)]
mod tests;
