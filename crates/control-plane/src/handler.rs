//! One request, start to finish: read the body (bounded), verify SigV4,
//! route to a service, encode the response.

use std::sync::Arc;

use api::access_keys::AccessKeys;
use api::RequestContext;
use aws_protocol::sigv4::{self, AuthError, AuthMode, SigningKeyCache, Verified};
use bytes::Bytes;
use http::request::Parts;
use http::{Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;

use crate::clock;
use crate::response::{self, Body, Protocol, WireError};
use crate::Services;

const TARGET_HEADER: &str = "x-amz-target";

pub(crate) struct Handler {
    services: Services,
    access_keys: Arc<AccessKeys>,
    signing_keys: SigningKeyCache,
    account_id: String,
    principal_arn: String,
    auth_mode: AuthMode,
    max_body_bytes: usize,
    /// Serve `GET /metrics` (see [`crate::metrics`]).
    metrics_endpoint: bool,
    /// Flips to `true` when the server shuts down; ends agent sessions.
    shutdown: tokio::sync::watch::Receiver<bool>,
}

/// What a request turned into, for the response and the request log.
struct Outcome {
    response: Response<Body>,
    /// `ecs:RegisterTaskDefinition`-style label; `-` before routing.
    operation: String,
}

impl Handler {
    pub(crate) fn new(
        services: Services,
        access_keys: Arc<AccessKeys>,
        account_id: String,
        auth_mode: AuthMode,
        max_body_bytes: usize,
        metrics_endpoint: bool,
        shutdown: tokio::sync::watch::Receiver<bool>,
    ) -> Self {
        let principal_arn = format!("arn:aws:iam::{account_id}:root");
        Handler {
            services,
            access_keys,
            signing_keys: SigningKeyCache::default(),
            account_id,
            principal_arn,
            auth_mode,
            max_body_bytes,
            metrics_endpoint,
            shutdown,
        }
    }

    pub(crate) async fn serve(&self, request: Request<Incoming>) -> Response<Body> {
        if self.metrics_endpoint && crate::metrics::is_scrape(&request) {
            return crate::metrics::respond(request.headers());
        }
        if let Some(registry) = self.services.registry_for(request.uri().path()) {
            let request = request.map(|body| {
                body.map_err(|err| Box::new(err) as Box<dyn std::error::Error + Send + Sync>)
                    .boxed_unsync()
            });
            return registry.serve(request).await;
        }
        let started = clock::monotonic_now();
        let request_id = uuid::Uuid::new_v4().to_string();
        let outcome = self.dispatch(request, &request_id).await;
        let latency = started.elapsed();
        let status = outcome.response.status();
        let (service, operation) = crate::metrics::api_labels(
            &outcome.operation,
            status,
            outcome.response.headers().get(response::ERROR_TYPE_HEADER),
        );
        instruments::global().observe_api_request(
            service,
            operation,
            status.as_u16(),
            latency.as_secs_f64(),
        );
        let latency_ms = latency.as_secs_f64() * 1000.0;
        tracing::debug!(
            request_id,
            operation = outcome.operation,
            status = outcome.response.status().as_u16(),
            latency_ms,
            "request"
        );
        outcome.response
    }

    async fn dispatch(&self, request: Request<Incoming>, request_id: &str) -> Outcome {
        let (mut parts, body) = request.into_parts();
        let target = parts
            .headers
            .get(TARGET_HEADER)
            .map(|value| String::from_utf8_lossy(value.as_bytes()).into_owned());
        let rpc_v2_cbor = parts
            .headers
            .get(aws_protocol::rpcv2::PROTOCOL_HEADER)
            .is_some_and(|value| value.as_bytes() == aws_protocol::rpcv2::PROTOCOL.as_bytes());
        let json_1_0 = parts
            .headers
            .get(http::header::CONTENT_TYPE)
            .is_some_and(|value| value.as_bytes() == response::JSON_1_0_CONTENT_TYPE.as_bytes());
        let protocol = if rpc_v2_cbor {
            Protocol::Cbor
        } else if target.is_some() {
            Protocol::Json
        } else {
            Protocol::Query
        };
        let fail = |error: WireError, operation: String| Outcome {
            response: response::error(protocol, request_id, &error),
            operation,
        };

        let body = match self.read_body(&parts, body).await {
            Ok(body) => body,
            Err(error) => return fail(error, "-".into()),
        };
        let now_ms = clock::now_ms();
        let verified = match self.verify(protocol, &mut parts, &body, now_ms) {
            Ok(verified) => verified,
            Err(error) => return fail(error, "-".into()),
        };
        let body = match self.decode_content_encoding(&parts, body) {
            Ok(body) => body,
            Err(error) => return fail(error, "-".into()),
        };
        let ctx = RequestContext {
            region: verified.region.clone(),
            account_id: self.account_id.clone(),
            principal_arn: self.principal_arn.clone(),
            access_key_id: verified.access_key_id.clone(),
            request_id: request_id.to_string(),
            now_ms,
        };
        if parts.method == Method::POST && parts.uri.path() == model::agent::SESSION_PATH {
            return self.agent_session(ctx, &verified, &body).await;
        }
        if protocol == Protocol::Cbor {
            return self
                .dispatch_cbor(&ctx, &verified, parts.uri.path(), &body)
                .await;
        }
        match target {
            Some(target) => {
                self.dispatch_json(&ctx, &verified, &target, json_1_0, &body)
                    .await
            }
            None => self.dispatch_query(&ctx, &verified, &parts, &body).await,
        }
    }

    async fn read_body(&self, parts: &Parts, body: Incoming) -> Result<Bytes, WireError> {
        let declared_length = parts
            .headers
            .get(http::header::CONTENT_LENGTH)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.parse::<u64>().ok());
        if declared_length.is_some_and(|length| length > self.max_body_bytes as u64) {
            return Err(self.too_large());
        }
        match Limited::new(body, self.max_body_bytes).collect().await {
            Ok(collected) => Ok(collected.to_bytes()),
            Err(err) if err.is::<http_body_util::LengthLimitError>() => Err(self.too_large()),
            Err(err) => Err(WireError::new(
                StatusCode::BAD_REQUEST,
                "SerializationException",
                format!("could not read the request body: {err}"),
            )),
        }
    }

    /// botocore gzips the bodies of operations with the `requestcompression` trait
    /// (CloudWatch's PutMetricData) from 10 KiB on and says so in `Content-Encoding`. The
    /// signature covers the compressed bytes, so the body is inflated after verification,
    /// and no larger than the body limit.
    fn decode_content_encoding(&self, parts: &Parts, body: Bytes) -> Result<Bytes, WireError> {
        let gzip = parts
            .headers
            .get_all(http::header::CONTENT_ENCODING)
            .iter()
            .filter_map(|value| value.to_str().ok())
            .flat_map(|value| value.split(','))
            .any(|coding| coding.trim().eq_ignore_ascii_case("gzip"));
        if !gzip {
            return Ok(body);
        }
        gunzip(&body, self.max_body_bytes).map_err(|err| match err {
            GunzipError::TooLarge => self.too_large(),
            GunzipError::Invalid(err) => WireError::new(
                StatusCode::BAD_REQUEST,
                "SerializationException",
                format!("could not decompress the gzip request body: {err}"),
            ),
        })
    }

    fn too_large(&self) -> WireError {
        WireError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "RequestEntityTooLargeException",
            format!(
                "the request body is larger than the {} byte limit",
                self.max_body_bytes
            ),
        )
    }

    fn verify(
        &self,
        protocol: Protocol,
        parts: &mut Parts,
        body: &[u8],
        now_ms: i64,
    ) -> Result<Verified, WireError> {
        // HTTP/2 carries the host in `:authority`, which hyper puts in the
        // URI; SigV4 signs it as `host`.
        if !parts.headers.contains_key(http::header::HOST) {
            if let Some(authority) = parts.uri.authority() {
                if let Ok(host) = http::HeaderValue::from_str(authority.as_str()) {
                    parts.headers.insert(http::header::HOST, host);
                }
            }
        }
        let request = sigv4::RequestParts {
            method: parts.method.as_str(),
            path: parts.uri.path(),
            query: parts.uri.query().unwrap_or(""),
            headers: &parts.headers,
            body,
        };
        let secret_for = |access_key_id: &str| self.access_keys.secret_for(access_key_id);
        sigv4::verify_with_cache(
            &request,
            &secret_for,
            &self.signing_keys,
            now_ms.div_euclid(1000),
            self.auth_mode,
        )
        .map_err(|err| auth_failure(protocol, err))
    }

    async fn dispatch_json(
        &self,
        ctx: &RequestContext,
        verified: &Verified,
        target: &str,
        json_1_0: bool,
        body: &[u8],
    ) -> Outcome {
        let Some((prefix, operation)) = aws_protocol::json::parse_target(target) else {
            return json_failure(
                &ctx.request_id,
                target.to_string(),
                unknown_operation(format!(
                    "X-Amz-Target '{target}' is not of the form <ServicePrefix>.<Operation>"
                )),
            );
        };
        let Some(service) = self.services.json(prefix) else {
            return json_failure(
                &ctx.request_id,
                target.to_string(),
                unknown_operation(format!(
                    "no service here answers X-Amz-Target prefix '{prefix}'"
                )),
            );
        };
        let label = format!("{}:{operation}", service.signing_name());
        if let Err(err) = verified.require_service(service.signing_name()) {
            return json_failure(&ctx.request_id, label, auth_failure(Protocol::Json, err));
        }
        let body: &[u8] = if body.is_empty() { b"{}" } else { body };
        if service.is_event_stream(operation) {
            return match service.open_event_stream(ctx, operation, body).await {
                Ok(stream) => Outcome {
                    response: response::event_stream(
                        &ctx.request_id,
                        stream,
                        self.shutdown.clone(),
                    ),
                    operation: label,
                },
                Err(err) => json_failure(&ctx.request_id, label, err.into()),
            };
        }
        match service.handle(ctx, operation, body).await {
            Ok(response_body) => Outcome {
                response: response::json_success(&ctx.request_id, json_1_0, response_body),
                operation: label,
            },
            Err(err) => json_failure(&ctx.request_id, label, err.into()),
        }
    }

    /// A Smithy RPC v2 CBOR request: `POST /service/<service>/operation/<operation>`, routed
    /// to the JSON service whose target prefix is `<service>`.
    async fn dispatch_cbor(
        &self,
        ctx: &RequestContext,
        verified: &Verified,
        path: &str,
        body: &[u8],
    ) -> Outcome {
        let fail = |label: String, error: WireError| Outcome {
            response: response::error(Protocol::Cbor, &ctx.request_id, &error),
            operation: label,
        };
        let Some((service_name, operation)) = aws_protocol::rpcv2::parse_path(path) else {
            return fail(
                path.to_string(),
                unknown_operation(format!(
                    "rpc-v2-cbor requests go to /service/<ServiceName>/operation/<Operation>, \
                     not '{path}'"
                )),
            );
        };
        let Some(service) = self.services.json(service_name) else {
            return fail(
                path.to_string(),
                unknown_operation(format!(
                    "no service here answers rpc-v2-cbor service '{service_name}'"
                )),
            );
        };
        let label = format!("{}:{operation}", service.signing_name());
        if let Err(err) = verified.require_service(service.signing_name()) {
            return fail(label, auth_failure(Protocol::Cbor, err));
        }
        match service.handle_cbor(ctx, operation, body).await {
            Ok(response_body) => Outcome {
                response: response::cbor_success(&ctx.request_id, response_body),
                operation: label,
            },
            Err(err) => fail(label, err.into()),
        }
    }

    async fn agent_session(
        &self,
        ctx: RequestContext,
        verified: &Verified,
        body: &[u8],
    ) -> Outcome {
        let label = "ecs:AgentSession".to_string();
        let Some(ecs) = self.services.agent_sessions() else {
            return json_failure(
                &ctx.request_id,
                label,
                unknown_operation("this server does not accept agent sessions".into()),
            );
        };
        if let Err(err) = verified.require_service(api::Ecs::SIGNING_NAME) {
            return json_failure(&ctx.request_id, label, auth_failure(Protocol::Json, err));
        }
        let request_id = ctx.request_id.clone();
        match crate::agent_session::open(Arc::clone(ecs), ctx, body, self.shutdown.clone()).await {
            Ok(response) => Outcome {
                response,
                operation: label,
            },
            Err(err) => json_failure(&request_id, label, err.into()),
        }
    }

    async fn dispatch_query(
        &self,
        ctx: &RequestContext,
        verified: &Verified,
        parts: &Parts,
        body: &[u8],
    ) -> Outcome {
        let Some(service) = self.services.query(&verified.service) else {
            let error = WireError::new(
                StatusCode::BAD_REQUEST,
                "InvalidAction",
                format!(
                    "this endpoint does not serve the query-protocol service '{}'; \
                     requests without X-Amz-Target must be signed for a query-protocol \
                     service Berth implements",
                    verified.service
                ),
            );
            return Outcome {
                response: response::error(Protocol::Query, &ctx.request_id, &error),
                operation: format!("{}:-", verified.service),
            };
        };
        let params = if parts.method == Method::GET {
            parts.uri.query().unwrap_or("").as_bytes()
        } else {
            body
        };
        let label = format!("{}:{}", service.signing_name(), query_action(params));
        let response = match service.handle(ctx, params).await {
            Ok(response_body) => response::query_success(&ctx.request_id, response_body),
            Err(err) => response::error(Protocol::Query, &ctx.request_id, &err.into()),
        };
        Outcome {
            response,
            operation: label,
        }
    }
}

#[derive(Debug)]
enum GunzipError {
    TooLarge,
    Invalid(std::io::Error),
}

/// The inflated gzip stream `compressed`, at most `max_bytes` long.
fn gunzip(compressed: &[u8], max_bytes: usize) -> Result<Bytes, GunzipError> {
    use std::io::Read;
    let mut inflated = Vec::new();
    flate2::read::MultiGzDecoder::new(compressed)
        .take(max_bytes as u64 + 1)
        .read_to_end(&mut inflated)
        .map_err(GunzipError::Invalid)?;
    if inflated.len() > max_bytes {
        return Err(GunzipError::TooLarge);
    }
    Ok(Bytes::from(inflated))
}

fn json_failure(request_id: &str, operation: String, error: WireError) -> Outcome {
    Outcome {
        response: response::error(Protocol::Json, request_id, &error),
        operation,
    }
}

fn unknown_operation(message: String) -> WireError {
    WireError::new(
        StatusCode::BAD_REQUEST,
        "UnknownOperationException",
        message,
    )
}

/// A 403 with the authentication failure's code as `protocol` spells it.
fn auth_failure(protocol: Protocol, err: AuthError) -> WireError {
    let code = match protocol {
        Protocol::Json | Protocol::Cbor => err.code,
        Protocol::Query => err.query_code(),
    };
    WireError::new(StatusCode::FORBIDDEN, code, err.message)
}

/// The `Action` parameter of a form-encoded query request, for logging.
fn query_action(params: &[u8]) -> &str {
    std::str::from_utf8(params)
        .unwrap_or("")
        .split('&')
        .find_map(|pair| pair.strip_prefix("Action="))
        .unwrap_or("-")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_action_is_read_from_the_form() {
        assert_eq!(
            query_action(b"Version=2015-12-01&Action=DescribeLoadBalancers"),
            "DescribeLoadBalancers"
        );
        assert_eq!(query_action(b"Version=2015-12-01"), "-");
        assert_eq!(query_action(b"\xff"), "-");
    }

    #[test]
    fn gzip_bodies_are_inflated_within_the_limit() {
        use std::io::Write;
        let body = b"Action=PutMetricData&Namespace=App".repeat(100);
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        encoder.write_all(&body).unwrap();
        let compressed = encoder.finish().unwrap();
        assert_eq!(
            gunzip(&compressed, body.len()).unwrap(),
            Bytes::from(body.clone())
        );
        assert!(matches!(
            gunzip(&compressed, body.len() - 1),
            Err(GunzipError::TooLarge)
        ));
        assert!(matches!(
            gunzip(b"not gzip", 1000),
            Err(GunzipError::Invalid(_))
        ));
    }
}
