//! Desync mitigation: ALB classifies every HTTP/1.x request by the threat
//! it poses to the HTTP parsers behind it (the tiers and reasons of AWS's
//! `http_desync_guardian`), and its `routing.http.desync_mitigation_mode`
//! decides what happens to each tier:
//!
//! | Classification | monitor | defensive         | strictest |
//! |----------------|---------|-------------------|-----------|
//! | Compliant      | forward | forward           | forward   |
//! | Acceptable     | forward | forward           | block     |
//! | Ambiguous      | forward | forward, then close | block   |
//! | Severe         | forward | block             | block     |
//!
//! A blocked request is answered 400 and its client connection closed;
//! "then close" closes the client and the target connections after the
//! response.
//!
//! The request arrives here as the proxy's HTTP/1 parser (hyper) produced
//! it, which refuses some of what the guardian would classify (a bare CR or
//! NUL in a header, a space in the URI, different Content-Length values, a
//! Transfer-Encoding other than chunked last) with a 400 in every mode, and
//! repairs some (a Content-Length beside a chunked Transfer-Encoding is
//! dropped and the client connection closed after the response; a repeated
//! equal Content-Length field is kept once). The rules below still cover
//! those cases, so the classification does not depend on the parser.

use crate::config::DesyncMitigationMode;
use crate::headers::is_token_byte;

/// The guardian's tiers, from harmless to dangerous.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Classification {
    /// Complies with RFC 7230.
    Compliant,
    /// Does not comply, but poses no known risk.
    Acceptable,
    /// Does not comply, and servers may disagree about it.
    Ambiguous,
    /// Malformed, or crafted to desynchronise parsers.
    Severe,
}

/// Why a request got its classification (the access logs'
/// `classification_reason`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClassificationReason {
    Compliant,
    NonCompliantHeader,
    GetHeadZeroContentLength,
    UndefinedContentLengthSemantics,
    UndefinedTransferEncodingSemantics,
    DuplicateContentLength,
    BothTeClPresent,
    SuspiciousHeader,
    BadHeader,
    BadMethod,
    MultipleContentLength,
    BadContentLength,
    MultipleTransferEncodingChunked,
    BadTransferEncoding,
}

impl ClassificationReason {
    pub fn classification(self) -> Classification {
        use ClassificationReason::*;
        match self {
            Compliant => Classification::Compliant,
            NonCompliantHeader | GetHeadZeroContentLength => Classification::Acceptable,
            UndefinedContentLengthSemantics
            | UndefinedTransferEncodingSemantics
            | DuplicateContentLength
            | BothTeClPresent
            | SuspiciousHeader => Classification::Ambiguous,
            BadHeader
            | BadMethod
            | MultipleContentLength
            | BadContentLength
            | MultipleTransferEncodingChunked
            | BadTransferEncoding => Classification::Severe,
        }
    }

    /// The guardian's name for the reason.
    pub fn as_str(self) -> &'static str {
        use ClassificationReason::*;
        match self {
            Compliant => "Compliant",
            NonCompliantHeader => "NonCompliantHeader",
            GetHeadZeroContentLength => "GetHeadZeroContentLength",
            UndefinedContentLengthSemantics => "UndefinedContentLengthSemantics",
            UndefinedTransferEncodingSemantics => "UndefinedTransferEncodingSemantics",
            DuplicateContentLength => "DuplicateContentLength",
            BothTeClPresent => "BothTeClPresent",
            SuspiciousHeader => "SuspiciousHeader",
            BadHeader => "BadHeader",
            BadMethod => "BadMethod",
            MultipleContentLength => "MultipleContentLength",
            BadContentLength => "BadContentLength",
            MultipleTransferEncodingChunked => "MultipleTransferEncodingChunked",
            BadTransferEncoding => "BadTransferEncoding",
        }
    }
}

/// What the load balancer does with a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mitigation {
    Forward,
    /// Forward, then close the client and target connections.
    ForwardThenClose,
    /// Answer 400 and close the client connection.
    Block,
}

/// The mode's treatment of a classification (the table above).
pub fn mitigation(mode: DesyncMitigationMode, classification: Classification) -> Mitigation {
    use Classification::*;
    match (mode, classification) {
        (DesyncMitigationMode::Monitor, _) | (_, Compliant) => Mitigation::Forward,
        (DesyncMitigationMode::Defensive, Acceptable) => Mitigation::Forward,
        (DesyncMitigationMode::Defensive, Ambiguous) => Mitigation::ForwardThenClose,
        (DesyncMitigationMode::Defensive, Severe) => Mitigation::Block,
        (DesyncMitigationMode::Strictest, _) => Mitigation::Block,
    }
}

/// Classifies a request by its method and header fields (name in lower
/// case as parsed, raw value), returning the most serious reason found.
pub fn classify<'a>(
    method: &str,
    headers: impl IntoIterator<Item = (&'a str, &'a [u8])>,
) -> ClassificationReason {
    let mut worst = ClassificationReason::Compliant;
    let mut raise = |reason: ClassificationReason| {
        if reason.classification() > worst.classification() {
            worst = reason;
        }
    };
    if method.is_empty() || !method.bytes().all(is_token_byte) {
        raise(ClassificationReason::BadMethod);
    }
    let no_body_semantics = method == "GET" || method == "HEAD";
    let mut content_length: Option<u64> = None;
    let mut content_length_fields = 0;
    let mut transfer_encoding = false;
    let mut chunked_count = 0;
    for (name, value) in headers {
        // One pass over the value in the common case (nothing unusual).
        if value
            .iter()
            .any(|byte| *byte >= 0x7f || (*byte < 0x20 && *byte != b'\t'))
        {
            if value
                .iter()
                .any(|byte| *byte == 0 || *byte == b'\r' || *byte == b'\n')
            {
                raise(ClassificationReason::BadHeader);
            } else {
                raise(ClassificationReason::NonCompliantHeader);
            }
        }
        match name {
            "content-length" => {
                for part in value.split(|byte| *byte == b',') {
                    content_length_fields += 1;
                    let part = part.trim_ascii();
                    let parsed = (!part.is_empty() && part.iter().all(u8::is_ascii_digit))
                        .then(|| std::str::from_utf8(part).ok()?.parse::<u64>().ok())
                        .flatten();
                    match (parsed, content_length) {
                        (None, _) => raise(ClassificationReason::BadContentLength),
                        (Some(length), Some(previous)) if length != previous => {
                            raise(ClassificationReason::MultipleContentLength)
                        }
                        (Some(_), Some(_)) => raise(ClassificationReason::DuplicateContentLength),
                        (Some(length), None) => content_length = Some(length),
                    }
                }
            }
            "transfer-encoding" => {
                transfer_encoding = true;
                for coding in value.split(|byte| *byte == b',') {
                    let coding = coding.trim_ascii();
                    if coding.eq_ignore_ascii_case(b"chunked") {
                        chunked_count += 1;
                    } else if ![&b"gzip"[..], b"deflate", b"compress", b"identity"]
                        .iter()
                        .any(|known| coding.eq_ignore_ascii_case(known))
                    {
                        raise(ClassificationReason::BadTransferEncoding);
                    }
                }
            }
            _ if is_suspicious(name) => raise(ClassificationReason::SuspiciousHeader),
            _ => {}
        }
    }
    if chunked_count > 1 {
        raise(ClassificationReason::MultipleTransferEncodingChunked);
    }
    if transfer_encoding && content_length_fields > 0 {
        raise(ClassificationReason::BothTeClPresent);
    }
    if no_body_semantics {
        if transfer_encoding {
            raise(ClassificationReason::UndefinedTransferEncodingSemantics);
        }
        match content_length {
            Some(0) => raise(ClassificationReason::GetHeadZeroContentLength),
            Some(_) => raise(ClassificationReason::UndefinedContentLengthSemantics),
            None => {}
        }
    }
    worst
}

/// A header name that is not `transfer-encoding` or `content-length` but
/// reads as one once case and delimiters are normalised
/// (`transfer_encoding`, `content.length`, `transfer-encoding-`).
fn is_suspicious(name: &str) -> bool {
    // Neither normalises from fewer than 13 bytes.
    if name.len() < b"contentlength".len() {
        return false;
    }
    let letters = || {
        name.bytes()
            .filter(u8::is_ascii_alphanumeric)
            .map(|byte| byte.to_ascii_lowercase())
    };
    letters().eq(b"transferencoding".iter().copied())
        || letters().eq(b"contentlength".iter().copied())
}

#[cfg(test)]
mod tests {
    use super::*;
    use ClassificationReason::*;

    fn check(method: &str, headers: &[(&str, &[u8])], expected: ClassificationReason) {
        assert_eq!(
            classify(method, headers.iter().copied()),
            expected,
            "{method} {headers:?}"
        );
    }

    #[test]
    fn classifications() {
        check("GET", &[("host", b"a"), ("accept", b"*/*")], Compliant);
        check("POST", &[("content-length", b"5")], Compliant);
        check(
            "POST",
            &[("transfer-encoding", b"gzip, chunked")],
            Compliant,
        );
        // Acceptable.
        check(
            "GET",
            &[("x-name", "caf\u{e9}".as_bytes())],
            NonCompliantHeader,
        );
        check("GET", &[("x-name", b"a\x01b")], NonCompliantHeader);
        check("GET", &[("content-length", b"0")], GetHeadZeroContentLength);
        check(
            "HEAD",
            &[("content-length", b"0")],
            GetHeadZeroContentLength,
        );
        // Ambiguous.
        check(
            "GET",
            &[("content-length", b"5")],
            UndefinedContentLengthSemantics,
        );
        check(
            "GET",
            &[("transfer-encoding", b"chunked")],
            UndefinedTransferEncodingSemantics,
        );
        check(
            "POST",
            &[("content-length", b"5, 5")],
            DuplicateContentLength,
        );
        check(
            "POST",
            &[("content-length", b"5"), ("content-length", b"5")],
            DuplicateContentLength,
        );
        check(
            "POST",
            &[("transfer-encoding", b"chunked"), ("content-length", b"5")],
            BothTeClPresent,
        );
        check(
            "POST",
            &[("transfer_encoding", b"chunked")],
            SuspiciousHeader,
        );
        check("POST", &[("content.length", b"5")], SuspiciousHeader);
        check("POST", &[("x-content-length", b"5")], Compliant);
        // Severe.
        check("GET", &[("x-name", b"a\rb")], BadHeader);
        check("GET", &[("x-name", b"a\0b")], BadHeader);
        check("GE T", &[], BadMethod);
        check(
            "POST",
            &[("content-length", b"5"), ("content-length", b"6")],
            MultipleContentLength,
        );
        check("POST", &[("content-length", b"5x")], BadContentLength);
        check("POST", &[("content-length", b"-1")], BadContentLength);
        check(
            "POST",
            &[("transfer-encoding", b"chunked, chunked")],
            MultipleTransferEncodingChunked,
        );
        check(
            "POST",
            &[("transfer-encoding", b"xchunked")],
            BadTransferEncoding,
        );
        // The most serious reason wins.
        check(
            "GET",
            &[("x-name", "\u{e9}".as_bytes()), ("content-length", b"1x")],
            BadContentLength,
        );
    }

    #[test]
    fn modes() {
        use Classification::*;
        use DesyncMitigationMode::*;
        use Mitigation::*;
        for (mode, expected) in [
            (Monitor, [Forward, Forward, Forward, Forward]),
            (Defensive, [Forward, Forward, ForwardThenClose, Block]),
            (Strictest, [Forward, Block, Block, Block]),
        ] {
            for (classification, expected) in [Compliant, Acceptable, Ambiguous, Severe]
                .into_iter()
                .zip(expected)
            {
                assert_eq!(
                    mitigation(mode, classification),
                    expected,
                    "{mode:?} {classification:?}"
                );
            }
        }
    }
}
