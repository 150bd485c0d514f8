//! Verification behaviour, one error path at a time, and sign → verify round trips.

use super::*;
use http::header::HOST;
use http::HeaderName;
use proptest::prelude::*;

const ACCESS_KEY_ID: &str = "AKIDEXAMPLE";
const SECRET: &str = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";
/// 20150830T123600Z
const SIGNED_AT: i64 = 1_440_938_160;

fn secret_for(access_key_id: &str) -> Option<String> {
    (access_key_id == ACCESS_KEY_ID).then(|| SECRET.to_owned())
}

fn signing_params(now_epoch_s: i64) -> SigningParams<'static> {
    SigningParams {
        access_key_id: ACCESS_KEY_ID,
        secret_access_key: SECRET,
        session_token: None,
        region: "us-east-1",
        service: "ecs",
        now_epoch_s,
    }
}

#[derive(Clone)]
struct TestRequest {
    method: String,
    path: String,
    query: String,
    headers: HeaderMap,
    body: Vec<u8>,
}

impl TestRequest {
    /// An ECS-style JSON 1.1 call, unsigned.
    fn ecs() -> TestRequest {
        let mut request = TestRequest {
            method: "POST".into(),
            path: "/".into(),
            query: String::new(),
            headers: HeaderMap::new(),
            body: br#"{"maxResults":10}"#.to_vec(),
        };
        request = request
            .with_header("host", "127.0.0.1:4566")
            .with_header("content-type", crate::json::CONTENT_TYPE)
            .with_header(
                "x-amz-target",
                "AmazonEC2ContainerServiceV20141113.ListClusters",
            );
        request
    }

    fn with_header(mut self, name: &str, value: &str) -> TestRequest {
        self.headers.insert(
            HeaderName::from_bytes(name.as_bytes()).unwrap(),
            HeaderValue::from_str(value).unwrap(),
        );
        self
    }

    fn without_header(mut self, name: &str) -> TestRequest {
        self.headers.remove(name);
        self
    }

    fn signed_at(mut self, now_epoch_s: i64) -> TestRequest {
        sign_headers(
            &self.method,
            &self.path,
            &self.query,
            &mut self.headers,
            &self.body,
            &signing_params(now_epoch_s),
        )
        .unwrap();
        self
    }

    fn presigned_at(mut self, now_epoch_s: i64, expires_s: u32) -> TestRequest {
        self.query = presign_query(
            &self.method,
            &self.path,
            &self.query,
            &self.headers,
            &signing_params(now_epoch_s),
            expires_s,
        )
        .unwrap();
        self
    }

    fn parts(&self) -> RequestParts<'_> {
        RequestParts {
            method: &self.method,
            path: &self.path,
            query: &self.query,
            headers: &self.headers,
            body: &self.body,
        }
    }

    fn verify_at(&self, now_epoch_s: i64, mode: AuthMode) -> Result<Verified, AuthError> {
        verify(&self.parts(), &secret_for, now_epoch_s, mode)
    }
}

/// Expects `request` to be rejected with `code` and exactly `message`, in both modes when
/// the failure is one Open mode also reports.
fn check_rejected(request: &TestRequest, now_epoch_s: i64, code: &str, message: &str) {
    let error = request
        .verify_at(now_epoch_s, AuthMode::Verify)
        .unwrap_err();
    assert_eq!((error.code, error.message.as_str()), (code, message));
    assert_eq!(error.status(), 403);
    let checks_signature = matches!(code, codes::UNRECOGNIZED_CLIENT)
        || message.starts_with("The request signature we calculated");
    if !checks_signature {
        assert_eq!(
            request.verify_at(now_epoch_s, AuthMode::Open),
            Err(error),
            "Open mode must report the same syntax/scope/skew failure"
        );
    }
}

#[test]
fn accepts_a_signed_request_and_reports_the_scope() {
    let request = TestRequest::ecs().signed_at(SIGNED_AT);
    let expected = Verified {
        access_key_id: ACCESS_KEY_ID.into(),
        region: "us-east-1".into(),
        service: "ecs".into(),
        signed_at_epoch_s: SIGNED_AT,
    };
    assert_eq!(
        request.verify_at(SIGNED_AT + 30, AuthMode::Verify),
        Ok(expected.clone())
    );
    let cache = SigningKeyCache::new(4);
    for _ in 0..3 {
        assert_eq!(
            verify_with_cache(
                &request.parts(),
                &secret_for,
                &cache,
                SIGNED_AT,
                AuthMode::Verify
            ),
            Ok(expected.clone())
        );
    }
    assert_eq!(cache.len(), 1);
}

#[test]
fn no_authorization_at_all_is_a_missing_token() {
    let request = TestRequest::ecs();
    check_rejected(
        &request,
        SIGNED_AT,
        codes::MISSING_AUTHENTICATION_TOKEN,
        "Missing Authentication Token",
    );
    let mut with_other_algorithm = TestRequest::ecs();
    with_other_algorithm.query = "X-Amz-Algorithm=AWS4-HMAC-SHA1&X-Amz-Signature=x".into();
    check_rejected(
        &with_other_algorithm,
        SIGNED_AT,
        codes::MISSING_AUTHENTICATION_TOKEN,
        "Missing Authentication Token",
    );
}

#[test]
fn a_non_sigv4_authorization_lacks_every_parameter() {
    let sigv2 = TestRequest::ecs()
        .with_header("x-amz-date", "20150830T123600Z")
        .with_header(
            "authorization",
            "AWS AKIAI2HBJEUM7LRSTWOQ:qaNdqGsI6bq4Hi+9Gzovwyjbh0E=",
        );
    check_rejected(
        &sigv2,
        SIGNED_AT,
        codes::INCOMPLETE_SIGNATURE,
        "Authorization header requires 'Credential' parameter. Authorization header requires \
         'Signature' parameter. Authorization header requires 'SignedHeaders' parameter. \
         Authorization=AWS AKIAI2HBJEUM7LRSTWOQ:qaNdqGsI6bq4Hi+9Gzovwyjbh0E=",
    );
    let bearer = TestRequest::ecs().with_header("authorization", "eyJ0eXAi.eyJzdWIi.4f1J");
    check_rejected(
        &bearer,
        SIGNED_AT,
        codes::INCOMPLETE_SIGNATURE,
        "Authorization header requires 'Credential' parameter. Authorization header requires \
         'Signature' parameter. Authorization header requires 'SignedHeaders' parameter. \
         Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header. \
         Authorization=eyJ0eXAi.eyJzdWIi.4f1J",
    );
}

#[test]
fn missing_sigv4_parameters_are_listed() {
    let request = TestRequest::ecs()
        .with_header("x-amz-date", "20150830T123600Z")
        .with_header("authorization", "AWS4-HMAC-SHA256 Credential=ABCDEF");
    check_rejected(
        &request,
        SIGNED_AT,
        codes::INCOMPLETE_SIGNATURE,
        "Authorization header requires 'Signature' parameter. Authorization header requires \
         'SignedHeaders' parameter. Authorization=AWS4-HMAC-SHA256 Credential=ABCDEF",
    );
    let no_date = TestRequest::ecs()
        .signed_at(SIGNED_AT)
        .without_header("x-amz-date");
    let authorization = no_date.headers["authorization"]
        .to_str()
        .unwrap()
        .to_owned();
    check_rejected(
        &no_date,
        SIGNED_AT,
        codes::INCOMPLETE_SIGNATURE,
        &format!(
            "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header. \
             Authorization={authorization}"
        ),
    );
}

#[test]
fn a_parameter_without_equal_sign_is_reported_with_the_header() {
    let authorization =
        "AWS4-HMAC-SHA256 Credential= AKIDEXAMPLE/20150830/us-east-1/ecs/aws4_request, \
                         SignedHeaders=host;x-amz-date, Signature=abc";
    let request = TestRequest::ecs()
        .with_header("x-amz-date", "20150830T123600Z")
        .with_header("authorization", authorization);
    check_rejected(
        &request,
        SIGNED_AT,
        codes::INCOMPLETE_SIGNATURE,
        &format!(
            "'AKIDEXAMPLE/20150830/us-east-1/ecs/aws4_request' not a valid key=value pair \
             (missing equal-sign) in Authorization header: '{authorization}'."
        ),
    );
}

#[test]
fn missing_query_parameters_are_listed() {
    let mut request = TestRequest::ecs();
    request.query = "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Date=20150830T123600Z".into();
    check_rejected(
        &request,
        SIGNED_AT,
        codes::INCOMPLETE_SIGNATURE,
        "AWS query-string parameters must include 'X-Amz-Credential'. AWS query-string parameters \
         must include 'X-Amz-Signature'. AWS query-string parameters must include \
         'X-Amz-SignedHeaders'. Re-examine the query-string parameters.",
    );
}

#[test]
fn header_and_query_authorization_together_are_refused() {
    let mut request = TestRequest::ecs().signed_at(SIGNED_AT);
    request.query = "X-Amz-Algorithm=AWS4-HMAC-SHA256".into();
    check_rejected(
        &request,
        SIGNED_AT,
        codes::INVALID_SIGNATURE,
        "Only one auth mechanism allowed; only the X-Amz-Algorithm query parameter or the \
         Authorization header should be specified",
    );
}

#[test]
fn host_must_be_signed() {
    let request = TestRequest::ecs()
        .with_header("x-amz-date", "20150830T123600Z")
        .with_header(
            "authorization",
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/ecs/aws4_request, \
             SignedHeaders=content-type;x-amz-date, Signature=00",
        );
    check_rejected(
        &request,
        SIGNED_AT,
        codes::INVALID_SIGNATURE,
        "'Host' or ':authority' must be a 'SignedHeader' in the AWS Authorization.",
    );
}

#[test]
fn the_timestamp_must_be_in_basic_format() {
    let request = TestRequest::ecs()
        .signed_at(SIGNED_AT)
        .with_header("x-amz-date", "2015-08-30T12:36:00Z");
    check_rejected(
        &request,
        SIGNED_AT,
        codes::INCOMPLETE_SIGNATURE,
        "Date must be in ISO-8601 'basic format'. Got '2015-08-30T12:36:00Z'. See \
         http://en.wikipedia.org/wiki/ISO_8601",
    );
}

#[test]
fn clock_skew_beyond_fifteen_minutes_is_refused_both_ways() {
    let request = TestRequest::ecs().signed_at(SIGNED_AT);
    assert!(request.verify_at(SIGNED_AT + 900, AuthMode::Verify).is_ok());
    assert!(request.verify_at(SIGNED_AT - 900, AuthMode::Verify).is_ok());
    check_rejected(
        &request,
        SIGNED_AT + 25 * 60,
        codes::INVALID_SIGNATURE,
        "Signature expired: 20150830T123600Z is now earlier than 20150830T124600Z \
         (20150830T130100Z - 15 min.)",
    );
    check_rejected(
        &request,
        SIGNED_AT - 20 * 60,
        codes::INVALID_SIGNATURE,
        "Signature not yet current: 20150830T123600Z is still later than 20150830T123100Z \
         (20150830T121600Z + 15 min.)",
    );
}

#[test]
fn the_credential_needs_five_parts() {
    let request = TestRequest::ecs()
        .with_header("x-amz-date", "20150830T123600Z")
        .with_header(
            "authorization",
            "AWS4-HMAC-SHA256 Credential=foo/bar/20150830/us-east-1/ecs/aws4_request, \
             SignedHeaders=host;x-amz-date, Signature=00",
        );
    check_rejected(
        &request,
        SIGNED_AT,
        codes::INCOMPLETE_SIGNATURE,
        "Credential must have exactly 5 slash-delimited elements, e.g. \
         keyid/date/region/service/term, got 'foo/bar/20150830/us-east-1/ecs/aws4_request'",
    );
}

#[test]
fn the_credential_scope_must_match_the_timestamp_and_terminator() {
    let request = TestRequest::ecs()
        .with_header("x-amz-date", "20150830T123600Z")
        .with_header(
            "authorization",
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150829/us-east-1/ecs/aws5_request, \
             SignedHeaders=host;x-amz-date, Signature=00",
        );
    check_rejected(
        &request,
        SIGNED_AT,
        codes::INVALID_SIGNATURE,
        "Credential should be scoped with a valid terminator: 'aws4_request', not 'aws5_request'. \
         Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: \
         '20150829' != '20150830', from '20150830T123600Z'.",
    );
}

#[test]
fn an_unknown_access_key_is_unrecognized() {
    let mut request = TestRequest::ecs();
    sign_headers(
        &request.method,
        &request.path,
        &request.query,
        &mut request.headers,
        &request.body,
        &SigningParams {
            access_key_id: "AKIDUNKNOWN",
            ..signing_params(SIGNED_AT)
        },
    )
    .unwrap();
    check_rejected(
        &request,
        SIGNED_AT,
        codes::UNRECOGNIZED_CLIENT,
        "The security token included in the request is invalid.",
    );
    assert!(request.verify_at(SIGNED_AT, AuthMode::Open).is_ok());
}

const MISMATCH: &str = "The request signature we calculated does not match the signature you \
                        provided. Check your AWS Secret Access Key and signing method. Consult \
                        the service documentation for details.";

#[test]
fn a_wrong_signature_is_invalid() {
    let mut request = TestRequest::ecs();
    sign_headers(
        &request.method,
        &request.path,
        &request.query,
        &mut request.headers,
        &request.body,
        &SigningParams {
            secret_access_key: "not-the-secret",
            ..signing_params(SIGNED_AT)
        },
    )
    .unwrap();
    check_rejected(&request, SIGNED_AT, codes::INVALID_SIGNATURE, MISMATCH);
    assert!(
        request.verify_at(SIGNED_AT, AuthMode::Open).is_ok(),
        "Open mode does not check the signature"
    );
}

#[test]
fn the_signature_must_be_lowercase_hex() {
    let request = TestRequest::ecs().signed_at(SIGNED_AT);
    let authorization = request.headers["authorization"].to_str().unwrap();
    let (head, signature) = authorization.rsplit_once("Signature=").unwrap();
    for bad in [
        signature.to_uppercase(),
        format!("{signature}0"),
        signature[1..].to_owned(),
    ] {
        let tampered = request
            .clone()
            .with_header("authorization", &format!("{head}Signature={bad}"));
        check_rejected(&tampered, SIGNED_AT, codes::INVALID_SIGNATURE, MISMATCH);
    }
}

#[test]
fn every_signed_part_is_covered() {
    let request = TestRequest::ecs().signed_at(SIGNED_AT);
    let mut tampered = Vec::new();
    let mut method = request.clone();
    method.method = "PUT".into();
    tampered.push(("method", method));
    let mut path = request.clone();
    path.path = "/x".into();
    tampered.push(("path", path));
    let mut query = request.clone();
    query.query = "a=1".into();
    tampered.push(("query", query));
    let mut body = request.clone();
    body.body[2] ^= 1;
    tampered.push(("body", body));
    tampered.push((
        "signed header",
        request
            .clone()
            .with_header("x-amz-target", "AmazonEC2ContainerServiceV20141113.RunTask"),
    ));
    tampered.push((
        "timestamp",
        request
            .clone()
            .with_header("x-amz-date", "20150830T123601Z"),
    ));
    // Signed over a claimed body hash that is not the body's: the claim is not trusted.
    tampered.push((
        "a lying content hash",
        TestRequest::ecs()
            .with_header("x-amz-content-sha256", EMPTY_SHA256)
            .signed_at(SIGNED_AT),
    ));
    for (what, request) in tampered {
        assert_eq!(
            request
                .verify_at(SIGNED_AT, AuthMode::Verify)
                .map_err(|error| error.message),
            Err(MISMATCH.to_owned()),
            "tampered {what}"
        );
    }
    let unsigned_header_added = request.clone().with_header("x-forwarded-for", "10.0.0.1");
    assert!(unsigned_header_added
        .verify_at(SIGNED_AT, AuthMode::Verify)
        .is_ok());
}

#[test]
fn unsigned_payload_leaves_the_body_out() {
    let request = TestRequest::ecs()
        .with_header("x-amz-content-sha256", UNSIGNED_PAYLOAD)
        .signed_at(SIGNED_AT);
    let mut other_body = request.clone();
    other_body.body = b"anything else".to_vec();
    assert!(other_body.verify_at(SIGNED_AT, AuthMode::Verify).is_ok());
}

#[test]
fn an_http_date_header_can_carry_the_timestamp() {
    // Signed by hand as botocore does when a Date header is present: the header is signed,
    // the string to sign uses the basic-format timestamp.
    let mut request = TestRequest::ecs().with_header("date", "Sun, 30 Aug 2015 12:36:00 GMT");
    let signed_headers = "content-type;date;host;x-amz-target";
    let mut canonical = canonical::canonical_request(&canonical::CanonicalInput {
        method: &request.method,
        raw_path: &request.path,
        raw_query: &request.query,
        skip_signature_param: false,
        headers: &request.headers,
        signed_headers,
        payload_hash: &hex::encode(Sha256::digest(&request.body)),
    });
    let mut mac =
        signing_key::keyed_hmac(&derive_signing_key(SECRET, "20150830", "us-east-1", "ecs"));
    let mut hash_hex = [0u8; 64];
    update_string_to_sign(
        &mut mac,
        &AmzDate::from_epoch_s(SIGNED_AT),
        "20150830/us-east-1/ecs/aws4_request",
        hex_sha256(&canonical, &mut hash_hex),
    );
    canonical.clear();
    let signature = hex::encode(mac.finalize().into_bytes());
    request = request.with_header(
        "authorization",
        &format!(
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/ecs/aws4_request, \
             SignedHeaders={signed_headers}, Signature={signature}"
        ),
    );
    assert_eq!(
        request
            .verify_at(SIGNED_AT, AuthMode::Verify)
            .map(|verified| verified.signed_at_epoch_s),
        Ok(SIGNED_AT)
    );
}

#[test]
fn presigned_requests_verify_until_they_expire() {
    let request = TestRequest {
        method: "GET".into(),
        body: Vec::new(),
        ..TestRequest::ecs()
    }
    .without_header("content-type")
    .without_header("x-amz-target")
    .presigned_at(SIGNED_AT, 300);
    assert!(request.verify_at(SIGNED_AT + 300, AuthMode::Verify).is_ok());
    check_rejected(
        &request,
        SIGNED_AT + 301,
        codes::INVALID_SIGNATURE,
        "Signature expired: 20150830T123600Z is now earlier than 20150830T123601Z \
         (20150830T124101Z - 300 sec.)",
    );
    let mut tampered = request.clone();
    tampered.query = tampered
        .query
        .replace("X-Amz-Expires=300", "X-Amz-Expires=600");
    check_rejected(&tampered, SIGNED_AT, codes::INVALID_SIGNATURE, MISMATCH);
}

#[test]
fn presigned_expiry_must_be_a_number_of_at_most_a_week() {
    let request = TestRequest {
        method: "GET".into(),
        body: Vec::new(),
        ..TestRequest::ecs()
    }
    .presigned_at(SIGNED_AT, 300);
    let mut not_a_number = request.clone();
    not_a_number.query = not_a_number
        .query
        .replace("X-Amz-Expires=300", "X-Amz-Expires=-1");
    check_rejected(
        &not_a_number,
        SIGNED_AT,
        codes::INCOMPLETE_SIGNATURE,
        "X-Amz-Expires should be a number",
    );
    let mut too_long = request.clone();
    too_long.query = too_long
        .query
        .replace("X-Amz-Expires=300", "X-Amz-Expires=604801");
    check_rejected(
        &too_long,
        SIGNED_AT,
        codes::INCOMPLETE_SIGNATURE,
        "X-Amz-Expires must be less than a week (in seconds); that is, the given X-Amz-Expires \
         must be less than 604800 seconds",
    );
}

#[test]
fn open_mode_never_looks_up_the_secret() {
    let request = TestRequest::ecs().signed_at(SIGNED_AT);
    let refuse_lookup = |_: &str| -> Option<String> { panic!("Open mode looked up a secret") };
    let verified = verify(&request.parts(), &refuse_lookup, SIGNED_AT, AuthMode::Open).unwrap();
    assert_eq!(verified.access_key_id, ACCESS_KEY_ID);
}

#[test]
fn a_rotated_secret_is_not_served_from_the_cache() {
    let request = TestRequest::ecs().signed_at(SIGNED_AT);
    let cache = SigningKeyCache::default();
    let parts = request.parts();
    assert!(verify_with_cache(&parts, &secret_for, &cache, SIGNED_AT, AuthMode::Verify).is_ok());
    let rotated = |_: &str| Some("rotated-secret".to_owned());
    assert_eq!(
        verify_with_cache(&parts, &rotated, &cache, SIGNED_AT, AuthMode::Verify)
            .map_err(|error| error.code),
        Err(codes::INVALID_SIGNATURE)
    );
}

#[test]
fn scope_requirements_use_aws_wording() {
    let verified = TestRequest::ecs()
        .signed_at(SIGNED_AT)
        .verify_at(SIGNED_AT, AuthMode::Verify)
        .unwrap();
    assert_eq!(verified.require_service("ecs"), Ok(()));
    assert_eq!(verified.require_region("us-east-1"), Ok(()));
    assert_eq!(
        verified
            .require_service("elasticloadbalancing")
            .unwrap_err()
            .message,
        "Credential should be scoped to correct service: 'elasticloadbalancing'."
    );
    assert_eq!(
        verified.require_region("eu-west-1").unwrap_err().message,
        "Credential should be scoped to a valid region, not 'us-east-1'."
    );
}

#[test]
fn errors_render_for_both_protocols() {
    let error = TestRequest::ecs()
        .verify_at(SIGNED_AT, AuthMode::Verify)
        .unwrap_err();
    assert_eq!(error.query_code(), "MissingAuthenticationToken");
    assert_eq!(
        error.to_string(),
        "MissingAuthenticationTokenException: Missing Authentication Token"
    );
    assert_eq!(
        error.json_body(),
        br#"{"__type":"MissingAuthenticationTokenException","message":"Missing Authentication Token"}"#
    );
    for (code, query_code) in [
        (codes::INCOMPLETE_SIGNATURE, "IncompleteSignature"),
        (codes::UNRECOGNIZED_CLIENT, "InvalidClientTokenId"),
        (codes::INVALID_SIGNATURE, "SignatureDoesNotMatch"),
    ] {
        assert_eq!(AuthError::new(code, "m").query_code(), query_code);
    }
}

#[test]
fn canonical_request_text_shows_what_was_verified() {
    let request = TestRequest::ecs().signed_at(SIGNED_AT);
    let text = canonical_request_text(&request.parts()).unwrap();
    assert_eq!(
        text,
        format!(
            "POST\n/\n\ncontent-type:application/x-amz-json-1.1\nhost:127.0.0.1:4566\n\
             x-amz-date:20150830T123600Z\nx-amz-target:AmazonEC2ContainerServiceV20141113.ListClusters\n\n\
             content-type;host;x-amz-date;x-amz-target\n{}",
            hex::encode(Sha256::digest(&request.body))
        )
    );
}

fn query_component() -> impl Strategy<Value = String> {
    "[a-zA-Z0-9 ~+%&=/?#\u{e9}\u{2603}._-]{0,12}"
}

/// Query strings as clients write them: pairs percent-encoded, or raw text with stray `%`,
/// `+`, `=` and empty pairs.
fn query_string() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::collection::vec((query_component(), query_component()), 0..5).prop_map(|pairs| {
            pairs
                .into_iter()
                .map(|(key, value)| {
                    let mut pair = Vec::new();
                    canonical::push_uri_encoded(&mut pair, &key);
                    pair.push(b'=');
                    canonical::push_uri_encoded(&mut pair, &value);
                    String::from_utf8(pair).unwrap()
                })
                .collect::<Vec<_>>()
                .join("&")
        }),
        "[a-zA-Z0-9%+=&~._-]{0,30}",
    ]
    .prop_filter("would switch to query-string authorization", |query| {
        !query.contains("X-Amz-")
    })
}

fn extra_headers() -> impl Strategy<Value = Vec<(String, String)>> {
    prop::collection::vec(("x-[a-z0-9-]{1,10}", "[ -~\t]{0,20}"), 0..4)
}

fn build_request(
    method: &str,
    path: String,
    query: String,
    extra: Vec<(String, String)>,
    body: Vec<u8>,
) -> TestRequest {
    let mut request = TestRequest {
        method: method.to_owned(),
        path,
        query,
        headers: HeaderMap::new(),
        body,
    };
    request
        .headers
        .insert(HOST, HeaderValue::from_static("localhost:4566"));
    for (name, value) in extra {
        request.headers.append(
            HeaderName::from_bytes(name.as_bytes()).unwrap(),
            HeaderValue::from_str(&value).unwrap(),
        );
    }
    request
}

proptest! {
    #[test]
    fn sign_then_verify_round_trips(
        method in "(GET|POST|PUT|DELETE|PATCH)",
        path in "(/[a-zA-Z0-9%~+ .,;:@!$'()*\u{e9}\u{2603}_-]{0,10}){0,5}/?",
        query in query_string(),
        extra in extra_headers(),
        body in prop::collection::vec(any::<u8>(), 0..256),
        skew_s in -900i64..=900,
    ) {
        let mut request = build_request(&method, path, query, extra, body);
        sign_headers(
            &request.method,
            &request.path,
            &request.query,
            &mut request.headers,
            &request.body,
            &signing_params(SIGNED_AT),
        )
        .unwrap();
        let cache = SigningKeyCache::new(2);
        let verified =
            verify_with_cache(&request.parts(), &secret_for, &cache, SIGNED_AT + skew_s, AuthMode::Verify);
        prop_assert_eq!(verified.map(|verified| verified.signed_at_epoch_s), Ok(SIGNED_AT));
        request.body.push(0);
        prop_assert!(request.verify_at(SIGNED_AT, AuthMode::Verify).is_err());
    }

    #[test]
    fn presign_then_verify_round_trips(
        path in "(/[a-zA-Z0-9%~+ ._-]{0,10}){0,4}",
        query in query_string(),
        extra in extra_headers(),
        expires_s in 1u32..=604_800,
    ) {
        let request = build_request("GET", path, query, extra, Vec::new())
            .presigned_at(SIGNED_AT, expires_s);
        let verified = request.verify_at(SIGNED_AT + i64::from(expires_s).min(900), AuthMode::Verify);
        prop_assert_eq!(verified.map(|verified| verified.signed_at_epoch_s), Ok(SIGNED_AT));
    }
}
