//! `GET /metrics`: Berth's instruments for Prometheus (no SigV4, as
//! Prometheus scrapes), and the bounded labels an API request is counted
//! under.

use http::{HeaderMap, HeaderValue, Method, Request, Response, StatusCode};
use instruments::{Format, OTHER};

use crate::response::{self, Body};

pub(crate) const PATH: &str = "/metrics";

/// Error codes that mean the operation (or the service) named by the
/// request is not one Berth knows: its name must not become a label.
const UNKNOWN_OPERATION_CODES: &[&str] = &["UnknownOperationException", "InvalidAction"];

pub(crate) fn is_scrape<B>(request: &Request<B>) -> bool {
    request.method() == Method::GET && request.uri().path() == PATH
}

/// The instruments in the format the `Accept` header asks for.
pub(crate) fn respond(headers: &HeaderMap) -> Response<Body> {
    let accept = headers
        .get(http::header::ACCEPT)
        .and_then(|value| value.to_str().ok());
    let format = Format::negotiate(accept);
    let (status, content_type, body) = match instruments::global().encode(format) {
        Ok(text) => (StatusCode::OK, format.content_type(), text),
        Err(err) => {
            tracing::warn!(%err, "encoding /metrics failed");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                "text/plain; charset=utf-8",
                format!("{err}\n"),
            )
        }
    };
    let mut response = Response::new(response::full(body));
    *response.status_mut() = status;
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static(content_type),
    );
    response
}

/// `(service, operation)` for `berth_api_requests_total`, from the
/// handler's `service:Operation` label. Only names a service answered for
/// are kept: a request that was not routed is `other`/`other`, one whose
/// operation no service knows (or that failed authentication, so its name is
/// the caller's word) keeps only what is trusted.
pub(crate) fn api_labels<'a>(
    label: &'a str,
    status: StatusCode,
    error_type: Option<&HeaderValue>,
) -> (&'a str, &'a str) {
    let Some((service, operation)) = label.split_once(':') else {
        return (OTHER, OTHER);
    };
    let unknown = error_type.is_some_and(|code| {
        UNKNOWN_OPERATION_CODES
            .iter()
            .any(|known| code.as_bytes() == known.as_bytes())
    });
    if unknown || operation == "-" || operation.is_empty() {
        // The service part may be the caller's word too (an unknown
        // X-Amz-Target prefix, an unknown credential-scope service).
        return (OTHER, OTHER);
    }
    if status == StatusCode::FORBIDDEN {
        // Routed, but the operation name is not authenticated.
        return (service, OTHER);
    }
    (service, operation)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(label: &str, status: u16, error_type: Option<&str>, expected: (&str, &str)) {
        let status = StatusCode::from_u16(status).unwrap();
        let error_type = error_type.map(HeaderValue::from_str).transpose().unwrap();
        assert_eq!(
            api_labels(label, status, error_type.as_ref()),
            expected,
            "{label} {status} {error_type:?}"
        );
    }

    #[test]
    fn labels_keep_only_names_a_service_answered_for() {
        check("ecs:RunTask", 200, None, ("ecs", "RunTask"));
        check(
            "ecs:RunTask",
            400,
            Some("ClusterNotFoundException"),
            ("ecs", "RunTask"),
        );
        check(
            "ecs:RunTask",
            500,
            Some("ServerException"),
            ("ecs", "RunTask"),
        );
        check(
            "elasticloadbalancing:DescribeLoadBalancers",
            200,
            None,
            ("elasticloadbalancing", "DescribeLoadBalancers"),
        );
        check(
            "ecs:Bogus",
            400,
            Some("UnknownOperationException"),
            (OTHER, OTHER),
        );
        check(
            "elasticloadbalancing:Bogus",
            400,
            Some("InvalidAction"),
            (OTHER, OTHER),
        );
        check("made-up:-", 400, Some("InvalidAction"), (OTHER, OTHER));
        check(
            "Prefix.Op",
            400,
            Some("UnknownOperationException"),
            (OTHER, OTHER),
        );
        check(
            "-",
            403,
            Some("MissingAuthenticationTokenException"),
            (OTHER, OTHER),
        );
        check(
            "ecs:Whatever",
            403,
            Some("AccessDeniedException"),
            ("ecs", OTHER),
        );
    }

    #[test]
    fn only_get_of_the_exact_path_is_a_scrape() {
        let request = |method: Method, uri: &str| {
            Request::builder().method(method).uri(uri).body(()).unwrap()
        };
        assert!(is_scrape(&request(Method::GET, "/metrics")));
        assert!(is_scrape(&request(Method::GET, "/metrics?x=1")));
        assert!(!is_scrape(&request(Method::POST, "/metrics")));
        assert!(!is_scrape(&request(Method::GET, "/metrics/")));
        assert!(!is_scrape(&request(Method::GET, "/")));
    }
}
