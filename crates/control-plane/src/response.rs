//! Encoding responses on the wire: success and error bodies, the
//! `x-amzn-RequestId` header every response carries, and the error headers
//! the AWS SDKs read.

use std::convert::Infallible;

use aws_protocol::eventstream::StreamMessage;
use bytes::Bytes;
use http::{HeaderValue, Response, StatusCode};
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::Frame;

/// Whole bodies for API responses, streamed ones for agent sessions.
pub type Body = UnsyncBoxBody<Bytes, Infallible>;

pub(crate) fn full(bytes: impl Into<Bytes>) -> Body {
    Full::new(bytes.into()).boxed_unsync()
}

pub(crate) const REQUEST_ID_HEADER: &str = "x-amzn-RequestId";
pub(crate) const ERROR_TYPE_HEADER: &str = "x-amzn-ErrorType";
const XML_CONTENT_TYPE: &str = "text/xml";

/// Which wire protocol the caller speaks, so errors come back in a form its
/// SDK parses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Protocol {
    Json,
    Query,
    /// Smithy RPC v2 CBOR.
    Cbor,
}

/// An error as the caller sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct WireError {
    pub status: StatusCode,
    pub code: String,
    pub message: String,
    /// The error shape's other members (JSON and CBOR protocols only).
    pub members: serde_json::Map<String, serde_json::Value>,
    /// The query-protocol code of an `awsQueryCompatible` service's error.
    pub query_code: Option<&'static str>,
}

impl WireError {
    pub fn new(status: StatusCode, code: impl Into<String>, message: impl Into<String>) -> Self {
        WireError {
            status,
            code: code.into(),
            message: message.into(),
            members: Default::default(),
            query_code: None,
        }
    }
}

impl From<api::ApiError> for WireError {
    fn from(err: api::ApiError) -> Self {
        let status =
            StatusCode::from_u16(err.http_status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        WireError {
            members: err.members,
            query_code: err.query_code,
            ..WireError::new(status, err.code, err.message)
        }
    }
}

/// A JSON success, labelled with the JSON version the request used (1.1, or
/// 1.0 for services such as CloudWatch).
pub(crate) fn json_success(request_id: &str, json_1_0: bool, body: Vec<u8>) -> Response<Body> {
    let content_type = if json_1_0 {
        JSON_1_0_CONTENT_TYPE
    } else {
        aws_protocol::json::CONTENT_TYPE
    };
    build(StatusCode::OK, request_id, content_type, body)
}

pub(crate) const JSON_1_0_CONTENT_TYPE: &str = "application/x-amz-json-1.0";

pub(crate) fn cbor_success(request_id: &str, body: Vec<u8>) -> Response<Body> {
    let mut response = build(
        StatusCode::OK,
        request_id,
        aws_protocol::rpcv2::CONTENT_TYPE,
        body,
    );
    response.headers_mut().insert(
        aws_protocol::rpcv2::PROTOCOL_HEADER,
        HeaderValue::from_static(aws_protocol::rpcv2::PROTOCOL),
    );
    response
}

pub(crate) fn query_success(request_id: &str, body: Vec<u8>) -> Response<Body> {
    build(StatusCode::OK, request_id, XML_CONTENT_TYPE, body)
}

/// An event-stream response: `initial-response` (the output has no other
/// members), then the service's messages as the client reads them, until the
/// service ends the stream, the client goes away or the server shuts down.
pub(crate) fn event_stream(
    request_id: &str,
    stream: crate::EventStream,
    mut shutdown: tokio::sync::watch::Receiver<bool>,
) -> Response<Body> {
    use futures::StreamExt;
    let shutting_down = async move {
        // A dropped sender is a shutdown too.
        let _ = shutdown.wait_for(|stopping| *stopping).await;
    };
    let frames = futures::stream::once(async { StreamMessage::initial_response() })
        .chain(stream)
        .take_until(shutting_down)
        .map(|message| Ok::<_, Infallible>(Frame::data(message.encode())));
    let mut response = Response::new(StreamBody::new(frames).boxed_unsync());
    let headers = response.headers_mut();
    headers.insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static(aws_protocol::eventstream::CONTENT_TYPE),
    );
    if let Ok(value) = HeaderValue::from_str(request_id) {
        headers.insert(REQUEST_ID_HEADER, value);
    }
    response
}

/// The error in `protocol`'s format.
pub(crate) fn error(protocol: Protocol, request_id: &str, error: &WireError) -> Response<Body> {
    let mut response = match protocol {
        Protocol::Json => build(
            error.status,
            request_id,
            aws_protocol::json::CONTENT_TYPE,
            aws_protocol::json::error_body_with(&error.code, &error.message, &error.members),
        ),
        Protocol::Query => build(
            error.status,
            request_id,
            XML_CONTENT_TYPE,
            aws_protocol::query::error_xml(
                error.query_code.unwrap_or(&error.code),
                &error.message,
                request_id,
                !error.status.is_server_error(),
            ),
        ),
        Protocol::Cbor => {
            let mut response = build(
                error.status,
                request_id,
                aws_protocol::rpcv2::CONTENT_TYPE,
                aws_protocol::rpcv2::error_body(&error.code, &error.message, &error.members),
            );
            response.headers_mut().insert(
                aws_protocol::rpcv2::PROTOCOL_HEADER,
                HeaderValue::from_static(aws_protocol::rpcv2::PROTOCOL),
            );
            response
        }
    };
    let headers = response.headers_mut();
    if let Ok(value) = HeaderValue::from_str(&error.code) {
        headers.insert(ERROR_TYPE_HEADER, value);
    }
    if let (Some(query_code), Protocol::Json | Protocol::Cbor) = (error.query_code, protocol) {
        let header =
            aws_protocol::rpcv2::query_error_header(query_code, error.status.is_server_error());
        if let Ok(value) = HeaderValue::from_str(&header) {
            headers.insert(aws_protocol::rpcv2::QUERY_ERROR_HEADER, value);
        }
    }
    response
}

fn build(
    status: StatusCode,
    request_id: &str,
    content_type: &'static str,
    body: Vec<u8>,
) -> Response<Body> {
    let mut response = Response::new(full(body));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static(content_type),
    );
    if let Ok(value) = HeaderValue::from_str(request_id) {
        headers.insert(REQUEST_ID_HEADER, value);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn body_text(response: Response<Body>) -> String {
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        String::from_utf8(bytes.to_vec()).unwrap()
    }

    #[tokio::test]
    async fn json_errors_carry_type_in_body_and_header() {
        let err = WireError::new(StatusCode::BAD_REQUEST, "ClientException", "bad \"thing\"");
        let response = error(Protocol::Json, "rid-1", &err);
        assert_eq!(response.status(), StatusCode::BAD_REQUEST);
        assert_eq!(response.headers()[ERROR_TYPE_HEADER], "ClientException");
        assert_eq!(response.headers()[REQUEST_ID_HEADER], "rid-1");
        assert_eq!(
            response.headers()[http::header::CONTENT_TYPE],
            "application/x-amz-json-1.1"
        );
        let body: serde_json::Value = serde_json::from_str(&body_text(response).await).unwrap();
        assert_eq!(
            body,
            serde_json::json!({"__type": "ClientException", "message": "bad \"thing\""})
        );
    }

    #[tokio::test]
    async fn query_errors_are_error_response_documents() {
        let err = WireError::new(StatusCode::BAD_REQUEST, "InvalidAction", "no <such> action");
        let response = error(Protocol::Query, "rid-2", &err);
        assert_eq!(response.headers()[http::header::CONTENT_TYPE], "text/xml");
        assert_eq!(response.headers()[ERROR_TYPE_HEADER], "InvalidAction");
        assert_eq!(
            body_text(response).await,
            r#"<ErrorResponse><Error><Type>Sender</Type><Code>InvalidAction</Code><Message>no &lt;such&gt; action</Message></Error><RequestId>rid-2</RequestId></ErrorResponse>"#
        );
    }

    fn event_types(body: &[u8]) -> Vec<String> {
        let mut rest = body;
        let mut types = Vec::new();
        while !rest.is_empty() {
            let message = aws_smithy_eventstream::frame::read_message_from(&mut rest).unwrap();
            let event_type = message
                .headers()
                .iter()
                .find(|h| h.name().as_str() == ":event-type")
                .map(|h| h.value().as_string().unwrap().as_str().to_string())
                .unwrap();
            types.push(event_type);
        }
        types
    }

    #[tokio::test]
    async fn event_streams_open_with_the_initial_response_and_end_with_the_service() {
        use futures::StreamExt;
        let (_stop, shutdown) = tokio::sync::watch::channel(false);
        let messages = futures::stream::iter([
            StreamMessage::event("sessionStart", b"{}".to_vec()),
            StreamMessage::event("sessionUpdate", b"{}".to_vec()),
        ])
        .boxed();
        let response = event_stream("rid-3", messages, shutdown);
        assert_eq!(
            response.headers()[http::header::CONTENT_TYPE],
            "application/vnd.amazon.eventstream"
        );
        assert_eq!(response.headers()[REQUEST_ID_HEADER], "rid-3");
        let body = response.into_body().collect().await.unwrap().to_bytes();
        assert_eq!(
            event_types(&body),
            ["initial-response", "sessionStart", "sessionUpdate"]
        );
    }

    #[tokio::test]
    async fn event_streams_end_when_the_server_shuts_down() {
        use futures::StreamExt;
        let (stop, shutdown) = tokio::sync::watch::channel(false);
        let endless = futures::stream::pending::<StreamMessage>().boxed();
        let mut body = event_stream("rid-4", endless, shutdown).into_body();
        let first = body.frame().await.unwrap().unwrap().into_data().unwrap();
        assert_eq!(event_types(&first), ["initial-response"]);
        stop.send(true).unwrap();
        assert!(body.frame().await.is_none());
    }

    #[tokio::test]
    async fn server_faults_map_to_500_and_receiver() {
        let err = WireError::from(api::ApiError::server("disk gone"));
        assert_eq!(err.status, StatusCode::INTERNAL_SERVER_ERROR);
        let response = error(Protocol::Query, "r", &err);
        assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
        assert!(body_text(response).await.contains("<Type>Receiver</Type>"));
    }
}
