//! Registry credentials: the password GetAuthorizationToken hands out and
//! `docker login --username AWS` sends back.
//!
//! A password is `<payload>.<signature>`, both base64url: the payload names
//! the access key the token was issued to, the region and account whose
//! repositories it opens, and when it expires (12 hours, as on ECR); the
//! signature is HMAC-SHA256 of the payload under that key's secret. So a
//! token is refused once it expires, and as soon as its key is deleted or
//! deactivated. Pure: the clock and the key lookup are arguments.

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine as _;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

/// How long a token is valid (ECR: 12 hours).
pub const TOKEN_LIFETIME_MS: i64 = 12 * 60 * 60 * 1000;

/// The user name every ECR token goes with.
pub const USER_NAME: &str = "AWS";

/// What a token grants.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Grant {
    #[serde(rename = "k")]
    pub access_key_id: String,
    #[serde(rename = "r")]
    pub region: String,
    #[serde(rename = "a")]
    pub account_id: String,
    #[serde(rename = "e")]
    pub expires_ms: i64,
}

/// Why a credential was refused (the registry answers 401 either way).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    #[error("the authorization token is malformed")]
    Malformed,
    #[error("the authorization token has expired; reauthenticate with aws ecr get-login-password")]
    Expired,
    #[error(
        "the authorization token was issued to an access key that no longer exists or is inactive"
    )]
    UnknownKey,
    #[error("the authorization token's signature does not match")]
    BadSignature,
}

fn sign(secret: &str, payload: &str) -> Vec<u8> {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes any key");
    mac.update(payload.as_bytes());
    mac.finalize().into_bytes().to_vec()
}

/// The password for `grant`, signed with the key's `secret`.
pub fn issue_password(grant: &Grant, secret: &str) -> String {
    let payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(grant).expect("grants serialize"));
    let signature = URL_SAFE_NO_PAD.encode(sign(secret, &payload));
    format!("{payload}.{signature}")
}

/// GetAuthorizationToken's `authorizationToken`: base64 of `AWS:<password>`.
pub fn authorization_token(password: &str) -> String {
    STANDARD.encode(format!("{USER_NAME}:{password}"))
}

/// Checks a password at `now_ms`; `secret_for` finds an active key's secret.
pub fn verify_password(
    password: &str,
    now_ms: i64,
    secret_for: impl Fn(&str) -> Option<String>,
) -> Result<Grant, AuthError> {
    let (payload, signature) = password.split_once('.').ok_or(AuthError::Malformed)?;
    let grant: Grant = URL_SAFE_NO_PAD
        .decode(payload)
        .ok()
        .and_then(|bytes| serde_json::from_slice(&bytes).ok())
        .ok_or(AuthError::Malformed)?;
    let signature = URL_SAFE_NO_PAD
        .decode(signature)
        .map_err(|_| AuthError::Malformed)?;
    let secret = secret_for(&grant.access_key_id).ok_or(AuthError::UnknownKey)?;
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes any key");
    mac.update(payload.as_bytes());
    mac.verify_slice(&signature)
        .map_err(|_| AuthError::BadSignature)?;
    if now_ms >= grant.expires_ms {
        return Err(AuthError::Expired);
    }
    Ok(grant)
}

/// The password in an `Authorization: Basic …` header for user `AWS`.
pub fn basic_password(header: &str) -> Option<String> {
    let encoded = header
        .strip_prefix("Basic ")
        .or_else(|| header.strip_prefix("basic "))?;
    let decoded = String::from_utf8(STANDARD.decode(encoded.trim()).ok()?).ok()?;
    let (user, password) = decoded.split_once(':')?;
    (user == USER_NAME).then(|| password.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_800_000_000_000;

    fn grant() -> Grant {
        Grant {
            access_key_id: "AKIDEXAMPLE".into(),
            region: "us-east-1".into(),
            account_id: "000000000000".into(),
            expires_ms: NOW + TOKEN_LIFETIME_MS,
        }
    }

    fn secret_for(key: &str) -> Option<String> {
        (key == "AKIDEXAMPLE").then(|| "secret".to_string())
    }

    #[test]
    fn passwords_verify_until_they_expire_or_their_key_goes() {
        let password = issue_password(&grant(), "secret");
        assert_eq!(verify_password(&password, NOW, secret_for), Ok(grant()));
        assert_eq!(
            verify_password(&password, NOW + TOKEN_LIFETIME_MS, secret_for),
            Err(AuthError::Expired)
        );
        assert_eq!(
            verify_password(&password, NOW, |_| None),
            Err(AuthError::UnknownKey)
        );
        assert_eq!(
            verify_password(&password, NOW, |_| Some("other".into())),
            Err(AuthError::BadSignature)
        );
    }

    #[test]
    fn tampered_or_garbled_passwords_are_refused() {
        let password = issue_password(&grant(), "secret");
        let (_, signature) = password.split_once('.').unwrap();
        let mut longer = grant();
        longer.expires_ms += TOKEN_LIFETIME_MS;
        let forged = format!(
            "{}.{signature}",
            URL_SAFE_NO_PAD.encode(serde_json::to_vec(&longer).unwrap())
        );
        assert_eq!(
            verify_password(&forged, NOW, secret_for),
            Err(AuthError::BadSignature)
        );
        for garbage in ["", "abc", "a.b", "!!!.???"] {
            assert_eq!(
                verify_password(garbage, NOW, secret_for),
                Err(AuthError::Malformed),
                "{garbage}"
            );
        }
    }

    #[test]
    fn docker_sends_the_password_as_basic_credentials() {
        let password = issue_password(&grant(), "secret");
        let token = authorization_token(&password);
        let header = format!("Basic {token}");
        assert_eq!(basic_password(&header), Some(password));
        let other_user = format!("Basic {}", STANDARD.encode("root:pw"));
        assert_eq!(basic_password(&other_user), None);
        assert_eq!(basic_password("Bearer x"), None);
    }
}
