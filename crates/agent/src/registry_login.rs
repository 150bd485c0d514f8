//! Pulling from Berth's own registry (ECR): the agent asks the control
//! plane for an authorization token (ECR's GetAuthorizationToken, signed
//! with the agent's credentials, as the ECS agent uses the task execution
//! role) and pulls images whose registry is the token's `proxyEndpoint`
//! with it. Tokens are cached until an hour before they expire.
//!
//! Images of any other registry are pulled as before: anonymously or with
//! `repositoryCredentials`.

use async_trait::async_trait;
use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use runtime::{ImageReference, RegistryAuth};
use serde::Deserialize;
use tokio::sync::Mutex;

use crate::client::EcsClient;
use crate::clock::Clock;
use crate::AgentError;

/// ECR's JSON 1.1 target prefix and signing name.
pub const ECR_TARGET_PREFIX: &str = "AmazonEC2ContainerRegistry_V20150921";
pub const ECR_SIGNING_NAME: &str = "ecr";

/// A token is refreshed this long before it expires.
const REFRESH_BEFORE_EXPIRY_MS: i64 = 60 * 60 * 1000;
/// After the control plane answered that it has no registry, ask again
/// after this long.
const NO_REGISTRY_RETRY_MS: i64 = 5 * 60 * 1000;

/// The credentials to pull an image with: the seam between the executor
/// and the control plane (a fake in tests).
#[async_trait]
pub trait RegistryLogin: Send + Sync {
    /// `Ok(None)`: the image is not in Berth's registry (pull as before).
    async fn credentials_for(&self, image: &str) -> Result<Option<RegistryAuth>, String>;
}

/// A token for one registry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct RegistryToken {
    /// `host:port`, as image references name the registry.
    pub registry: String,
    pub auth: RegistryAuth,
    pub expires_ms: i64,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct AuthorizationData {
    authorization_token: Option<String>,
    expires_at: Option<f64>,
    proxy_endpoint: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct GetAuthorizationTokenResponse {
    #[serde(default)]
    authorization_data: Vec<AuthorizationData>,
}

/// Reads GetAuthorizationToken's answer: the registry host of
/// `proxyEndpoint`, and the token split into user and password.
pub(crate) fn parse_token(body: &[u8]) -> Result<RegistryToken, String> {
    let response: GetAuthorizationTokenResponse = serde_json::from_slice(body)
        .map_err(|err| format!("GetAuthorizationToken answered unreadably: {err}"))?;
    let data = response
        .authorization_data
        .into_iter()
        .next()
        .ok_or("GetAuthorizationToken returned no authorizationData")?;
    let endpoint = data
        .proxy_endpoint
        .ok_or("GetAuthorizationToken returned no proxyEndpoint")?;
    let registry = endpoint
        .trim_start_matches("https://")
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .to_string();
    let decoded = data
        .authorization_token
        .and_then(|token| STANDARD.decode(token).ok())
        .and_then(|bytes| String::from_utf8(bytes).ok())
        .ok_or("GetAuthorizationToken returned an unreadable authorizationToken")?;
    let (username, password) = decoded
        .split_once(':')
        .ok_or("the authorization token is not user:password")?;
    Ok(RegistryToken {
        registry,
        auth: RegistryAuth {
            username: username.to_string(),
            password: password.to_string(),
        },
        expires_ms: data
            .expires_at
            .map_or(0, |seconds| (seconds * 1000.0) as i64),
    })
}

enum Cached {
    Nothing,
    Token(RegistryToken),
    /// The control plane serves no registry (until `retry_at_ms`).
    NoRegistry {
        retry_at_ms: i64,
    },
}

/// [`RegistryLogin`] through the control plane's ECR API.
pub struct EcrLogin {
    client: EcsClient,
    clock: Clock,
    cached: Mutex<Cached>,
}

impl EcrLogin {
    pub fn new(client: EcsClient, clock: Clock) -> Self {
        EcrLogin {
            client,
            clock,
            cached: Mutex::new(Cached::Nothing),
        }
    }

    async fn fetch(&self) -> Result<Option<RegistryToken>, AgentError> {
        match self
            .client
            .call_ecr("GetAuthorizationToken", b"{}".to_vec())
            .await
        {
            Ok(body) => parse_token(&body)
                .map(Some)
                .map_err(|message| AgentError::Protocol {
                    operation: "GetAuthorizationToken".into(),
                    message,
                }),
            // A control plane without ECR: nothing is in its registry.
            Err(AgentError::Api { code, .. }) if code == "UnknownOperationException" => Ok(None),
            Err(err) => Err(err),
        }
    }
}

#[async_trait]
impl RegistryLogin for EcrLogin {
    async fn credentials_for(&self, image: &str) -> Result<Option<RegistryAuth>, String> {
        let Some(registry) = ImageReference::parse(image).registry else {
            return Ok(None);
        };
        let now_ms = self.clock.now_ms();
        let mut cached = self.cached.lock().await;
        let fresh = match &*cached {
            Cached::Token(token) => token.expires_ms - REFRESH_BEFORE_EXPIRY_MS > now_ms,
            Cached::NoRegistry { retry_at_ms } => *retry_at_ms > now_ms,
            Cached::Nothing => false,
        };
        if !fresh {
            *cached = match self.fetch().await.map_err(|err| err.to_string())? {
                Some(token) => Cached::Token(token),
                None => Cached::NoRegistry {
                    retry_at_ms: now_ms + NO_REGISTRY_RETRY_MS,
                },
            };
        }
        Ok(match &*cached {
            Cached::Token(token) if token.registry == registry => Some(token.auth.clone()),
            _ => None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_read_from_get_authorization_token() {
        let body = serde_json::json!({"authorizationData": [{
            "authorizationToken": STANDARD.encode("AWS:secret.password"),
            "expiresAt": 1_800_000_000.5,
            "proxyEndpoint": "http://127.0.0.1:4566"
        }]});
        let token = parse_token(body.to_string().as_bytes()).unwrap();
        assert_eq!(
            token,
            RegistryToken {
                registry: "127.0.0.1:4566".into(),
                auth: RegistryAuth {
                    username: "AWS".into(),
                    password: "secret.password".into(),
                },
                expires_ms: 1_800_000_000_500,
            }
        );
        assert!(parse_token(br#"{"authorizationData":[]}"#).is_err());
        assert!(parse_token(b"nope").is_err());
    }
}

#[cfg(test)]
mod executor_tests {
    use std::sync::Arc;

    use runtime::fake::{FakeRuntime, RuntimeCall};

    use super::*;
    use crate::blueprint::RegistryCredentials;
    use crate::executor::execute_with_logs;
    use crate::reconcile::{Action, ImagePullBehavior};

    struct FakeLogin;

    #[async_trait]
    impl RegistryLogin for FakeLogin {
        async fn credentials_for(&self, image: &str) -> Result<Option<RegistryAuth>, String> {
            match ImageReference::parse(image).registry.as_deref() {
                Some("127.0.0.1:4566") => Ok(Some(RegistryAuth {
                    username: "AWS".into(),
                    password: "token".into(),
                })),
                Some("down:1") => Err("cannot reach the control plane".into()),
                _ => Ok(None),
            }
        }
    }

    async fn pull(image: &str, credentials: RegistryCredentials) -> (Vec<Option<String>>, bool) {
        let runtime = FakeRuntime::new();
        let done = execute_with_logs(
            Arc::new(runtime.clone()),
            None,
            Some(Arc::new(FakeLogin)),
            Clock::from_fn(|| 1_000),
            1_000,
            "task".into(),
            vec![Action::EnsureImage {
                image: image.into(),
                credentials,
                behavior: ImagePullBehavior::Always,
            }],
        )
        .await;
        let users = runtime
            .calls()
            .into_iter()
            .filter_map(|call| match call {
                RuntimeCall::PullImage { username, .. } => Some(username),
                _ => None,
            })
            .collect();
        let retried = done
            .updates
            .iter()
            .any(|update| matches!(update, crate::reconcile::LocalUpdate::RetryAfter { .. }));
        (users, retried)
    }

    #[tokio::test]
    async fn images_of_berths_registry_are_pulled_with_its_token_and_others_as_before() {
        assert_eq!(
            pull("127.0.0.1:4566/web:1", RegistryCredentials::None).await,
            (vec![Some("AWS".to_string())], false)
        );
        assert_eq!(
            pull("busybox:latest", RegistryCredentials::None).await,
            (vec![None], false)
        );
        let own = RegistryAuth {
            username: "me".into(),
            password: "pw".into(),
        };
        assert_eq!(
            pull("127.0.0.1:4566/web:1", RegistryCredentials::Auth(own)).await,
            (vec![Some("me".to_string())], false),
            "repositoryCredentials win"
        );
        assert_eq!(
            pull("down:1/web:1", RegistryCredentials::None).await,
            (vec![], true),
            "no token yet: retried, not failed"
        );
    }
}
