//! Requests signed by botocore itself (tools/sigv4-fixtures/gen.py writes
//! tests/fixtures/sigv4.json): each must verify, each single-byte tamper of a signed part must
//! fail with InvalidSignatureException, and our signer must reproduce botocore's signature.

use aws_protocol::sigv4::{
    self, canonical_request_text, codes, presign_query, sign_headers, AuthMode, RequestParts,
    SigningKeyCache, SigningParams,
};
use http::header::AUTHORIZATION;
use http::{HeaderMap, HeaderName, HeaderValue};
use serde::Deserialize;

#[derive(Debug, Deserialize)]
struct FixtureFile {
    fixtures: Vec<Fixture>,
}

#[derive(Debug, Deserialize)]
struct Fixture {
    name: String,
    access_key_id: String,
    secret_access_key: String,
    session_token: Option<String>,
    region: String,
    service: String,
    signed_at: String,
    signed_at_epoch_s: i64,
    now_epoch_s: i64,
    form: String,
    method: String,
    path: String,
    query: String,
    headers: Vec<(String, String)>,
    body_hex: String,
    unsigned_payload: bool,
    canonical_request: String,
    sign_input_headers: Option<Vec<(String, String)>>,
}

fn load() -> Vec<Fixture> {
    let text = include_str!("fixtures/sigv4.json");
    let file: FixtureFile = serde_json::from_str(text).expect("fixtures parse");
    assert!(file.fixtures.len() >= 15, "expected the full fixture set");
    file.fixtures
}

fn header_map(pairs: &[(String, String)]) -> HeaderMap {
    let mut headers = HeaderMap::new();
    for (name, value) in pairs {
        headers.append(
            HeaderName::from_bytes(name.as_bytes()).unwrap(),
            HeaderValue::from_str(value).unwrap(),
        );
    }
    headers
}

/// One request as a server would see it; tampering edits these fields.
#[derive(Clone)]
struct Wire {
    method: String,
    path: String,
    query: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Wire {
    fn of(fixture: &Fixture) -> Wire {
        Wire {
            method: fixture.method.clone(),
            path: fixture.path.clone(),
            query: fixture.query.clone(),
            headers: fixture.headers.clone(),
            body: hex::decode(&fixture.body_hex).unwrap(),
        }
    }

    fn verify(
        &self,
        fixture: &Fixture,
        cache: &SigningKeyCache,
        now_epoch_s: i64,
    ) -> Result<sigv4::Verified, sigv4::AuthError> {
        let headers = header_map(&self.headers);
        let parts = RequestParts {
            method: &self.method,
            path: &self.path,
            query: &self.query,
            headers: &headers,
            body: &self.body,
        };
        let secret_for = |access_key_id: &str| {
            (access_key_id == fixture.access_key_id).then(|| fixture.secret_access_key.clone())
        };
        sigv4::verify_with_cache(&parts, &secret_for, cache, now_epoch_s, AuthMode::Verify)
    }

    fn canonical_request(&self) -> String {
        let headers = header_map(&self.headers);
        canonical_request_text(&RequestParts {
            method: &self.method,
            path: &self.path,
            query: &self.query,
            headers: &headers,
            body: &self.body,
        })
        .unwrap()
    }
}

/// Replaces one byte of `text` at the first position where `pick` says so with a different
/// character of the same class, so the canonical form really changes.
fn flip_one_character(text: &str, pick: impl Fn(char) -> bool) -> Option<String> {
    let (index, character) = text.char_indices().find(|&(_, c)| pick(c))?;
    let replacement = match character {
        'a'..='y' | 'A'..='Y' | '0'..='8' => char::from(character as u8 + 1),
        'z' => 'a',
        'Z' => 'A',
        '9' => '0',
        _ => return None,
    };
    let mut tampered = text.to_owned();
    tampered.replace_range(
        index..index + character.len_utf8(),
        &replacement.to_string(),
    );
    Some(tampered)
}

/// `YYYYMMDDTHHMMSSZ` with the last seconds digit changed (same day, same minute).
fn one_second_later(timestamp: &str) -> String {
    let last_digit = &timestamp[14..15];
    let changed = if last_digit == "9" { "8" } else { "9" };
    format!("{}{changed}Z", &timestamp[..14])
}

fn signed_header_names(fixture: &Fixture) -> Vec<String> {
    if fixture.form == "query" {
        let (_, rest) = fixture.query.split_once("X-Amz-SignedHeaders=").unwrap();
        let raw = rest.split('&').next().unwrap();
        raw.replace("%3B", ";")
            .split(';')
            .map(str::to_owned)
            .collect()
    } else {
        let authorization = &fixture
            .headers
            .iter()
            .find(|(name, _)| name.eq_ignore_ascii_case("authorization"))
            .unwrap()
            .1;
        let (_, rest) = authorization.split_once("SignedHeaders=").unwrap();
        rest.split(',')
            .next()
            .unwrap()
            .split(';')
            .map(str::to_owned)
            .collect()
    }
}

#[test]
fn botocore_requests_verify_and_match_its_canonical_request() {
    let cache = SigningKeyCache::default();
    for fixture in load() {
        let wire = Wire::of(&fixture);
        assert_eq!(
            wire.canonical_request(),
            fixture.canonical_request,
            "{}: canonical request differs from botocore's",
            fixture.name
        );
        let verified = wire
            .verify(&fixture, &cache, fixture.now_epoch_s)
            .unwrap_or_else(|error| panic!("{}: {error}", fixture.name));
        assert_eq!(
            verified.access_key_id, fixture.access_key_id,
            "{}",
            fixture.name
        );
        assert_eq!(verified.region, fixture.region, "{}", fixture.name);
        assert_eq!(verified.service, fixture.service, "{}", fixture.name);
        assert_eq!(
            verified.signed_at_epoch_s, fixture.signed_at_epoch_s,
            "{}",
            fixture.name
        );
        // The uncached path agrees.
        let headers = header_map(&wire.headers);
        let parts = RequestParts {
            method: &wire.method,
            path: &wire.path,
            query: &wire.query,
            headers: &headers,
            body: &wire.body,
        };
        let secret_for = |_: &str| Some(fixture.secret_access_key.clone());
        assert_eq!(
            sigv4::verify(&parts, &secret_for, fixture.now_epoch_s, AuthMode::Verify),
            Ok(verified),
            "{}",
            fixture.name
        );
    }
}

#[test]
fn every_single_byte_tamper_of_a_signed_part_fails() {
    let cache = SigningKeyCache::default();
    let alphanumeric = |c: char| c.is_ascii_alphanumeric();
    for fixture in load() {
        let original = Wire::of(&fixture);
        let mut tampered: Vec<(String, Wire)> = Vec::new();

        let mut method = original.clone();
        method.method = flip_one_character(&method.method, alphanumeric).unwrap();
        tampered.push(("method".into(), method));

        let mut path = original.clone();
        path.path = match flip_one_character(&path.path, alphanumeric) {
            Some(changed) => changed,
            None => "/x".into(), // "/" has nothing to flip; any other path differs
        };
        tampered.push(("path".into(), path));

        // Every query value, except the authorization parameters whose tampering fails
        // earlier with other codes (algorithm, scope, date handled below, signature itself).
        let pairs: Vec<&str> = original.query.split('&').collect();
        for (index, pair) in pairs.iter().enumerate() {
            let Some((key, value)) = pair.split_once('=') else {
                continue;
            };
            let is_auth_syntax = [
                "X-Amz-Algorithm",
                "X-Amz-Credential",
                "X-Amz-Date",
                "X-Amz-SignedHeaders",
                "X-Amz-Signature",
            ]
            .contains(&key);
            let Some(changed) = flip_one_character(value, alphanumeric) else {
                continue;
            };
            if is_auth_syntax {
                continue;
            }
            let mut query = original.clone();
            let mut changed_pairs: Vec<String> = pairs.iter().map(|p| (*p).to_owned()).collect();
            changed_pairs[index] = format!("{key}={changed}");
            query.query = changed_pairs.join("&");
            tampered.push((format!("query pair {key}"), query));
        }

        // Every signed header's value (the date included).
        for name in signed_header_names(&fixture) {
            let mut header = original.clone();
            let Some(slot) = header
                .headers
                .iter_mut()
                .find(|(header_name, _)| header_name.eq_ignore_ascii_case(&name))
            else {
                panic!("{}: signed header {name} not sent", fixture.name);
            };
            let changed = if name == "x-amz-date" {
                // A second later keeps the date (and the clock skew) valid.
                Some(one_second_later(&slot.1))
            } else {
                flip_one_character(&slot.1, alphanumeric)
            };
            if let Some(changed) = changed {
                slot.1 = changed;
                tampered.push((format!("header {name}"), header));
            }
        }
        if fixture.form == "query" {
            let mut date = original.clone();
            date.query = date.query.replace(
                fixture.signed_at.as_str(),
                &one_second_later(&fixture.signed_at),
            );
            tampered.push(("X-Amz-Date".into(), date));
        }

        if !original.body.is_empty() {
            let mut body = original.clone();
            body.body[0] ^= 0x01;
            if fixture.unsigned_payload {
                assert!(
                    body.verify(&fixture, &cache, fixture.now_epoch_s).is_ok(),
                    "{}: UNSIGNED-PAYLOAD leaves the body out",
                    fixture.name
                );
            } else {
                tampered.push(("body".into(), body));
            }
        }

        assert!(tampered.len() >= 4, "{}: too few tampers", fixture.name);
        for (what, wire) in tampered {
            let error = wire
                .verify(&fixture, &cache, fixture.now_epoch_s)
                .expect_err(&format!("{}: tampered {what} still verified", fixture.name));
            assert_eq!(
                error.code,
                codes::INVALID_SIGNATURE,
                "{}: tampered {what}: {error}",
                fixture.name
            );
        }
    }
}

#[test]
fn our_signer_reproduces_botocore() {
    let mut compared = 0;
    for fixture in load() {
        let Some(input_headers) = &fixture.sign_input_headers else {
            continue;
        };
        let wire = Wire::of(&fixture);
        let params = SigningParams {
            access_key_id: &fixture.access_key_id,
            secret_access_key: &fixture.secret_access_key,
            session_token: fixture.session_token.as_deref(),
            region: &fixture.region,
            service: &fixture.service,
            now_epoch_s: fixture.signed_at_epoch_s,
        };
        let sent = header_map(&fixture.headers);
        if fixture.form == "header" {
            let mut headers = header_map(input_headers);
            sign_headers(
                &wire.method,
                &wire.path,
                &wire.query,
                &mut headers,
                &wire.body,
                &params,
            )
            .unwrap();
            assert_eq!(
                headers[AUTHORIZATION], sent[AUTHORIZATION],
                "{}",
                fixture.name
            );
            assert_eq!(
                headers["x-amz-date"], sent["x-amz-date"],
                "{}",
                fixture.name
            );
        } else {
            let operation_query = fixture
                .query
                .split("&X-Amz-Algorithm=")
                .next()
                .filter(|prefix| !prefix.starts_with("X-Amz-Algorithm="))
                .unwrap_or("");
            let headers = header_map(input_headers);
            let query = presign_query(
                &wire.method,
                &wire.path,
                operation_query,
                &headers,
                &params,
                {
                    let (_, rest) = fixture.query.split_once("X-Amz-Expires=").unwrap();
                    rest.split('&').next().unwrap().parse().unwrap()
                },
            )
            .unwrap();
            assert_eq!(query, fixture.query, "{}", fixture.name);
        }
        compared += 1;
    }
    assert!(compared >= 14, "only {compared} fixtures compared");
}

#[test]
fn botocore_requests_outside_the_window_are_refused() {
    let cache = SigningKeyCache::default();
    for fixture in load() {
        let wire = Wire::of(&fixture);
        let error = wire
            .verify(&fixture, &cache, fixture.signed_at_epoch_s + 16 * 60)
            .unwrap_err();
        assert_eq!(error.code, codes::INVALID_SIGNATURE, "{}", fixture.name);
        assert!(
            error.message.starts_with(&format!(
                "Signature expired: {} is now earlier than",
                fixture.signed_at
            )),
            "{}: {}",
            fixture.name,
            error.message
        );
    }
}
