//! The SigV4 canonical request, built exactly as AWS (and botocore) do for non-S3 services.
//!
//! ```text
//! METHOD \n
//! canonical path \n            raw path, dot segments and empty segments removed, then
//!                              URI-encoded again ('%' becomes '%25': the double encoding)
//! canonical query \n           every key and value percent-decoded ('+' is a space) and
//!                              re-encoded, pairs sorted by key then value
//! name:value \n ...            each signed header, values trimmed and inner whitespace runs
//!                              folded to one space, repeated headers joined with ','
//! \n
//! signed;header;names \n
//! payload hash                 hex SHA-256 of the body, or UNSIGNED-PAYLOAD
//! ```
//!
//! Signing and verification share this module, so the botocore fixtures in
//! `tests/fixtures/sigv4.json` are what keeps it honest.

use std::borrow::Cow;
use std::ops::Range;

use http::HeaderMap;

const UPPER_HEX: &[u8; 16] = b"0123456789ABCDEF";

/// RFC 3986 unreserved characters: the only bytes SigV4 leaves unencoded.
pub(crate) fn is_unreserved(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~')
}

fn push_encoded(out: &mut Vec<u8>, byte: u8) {
    if is_unreserved(byte) {
        out.push(byte);
    } else {
        out.extend_from_slice(&[
            b'%',
            UPPER_HEX[usize::from(byte >> 4)],
            UPPER_HEX[usize::from(byte & 0x0f)],
        ]);
    }
}

/// Appends `text` URI-encoded the SigV4 way (everything but unreserved bytes as `%XX`).
pub(crate) fn push_uri_encoded(out: &mut Vec<u8>, text: &str) {
    for &byte in text.as_bytes() {
        push_encoded(out, byte);
    }
}

fn hex_value(digit: u8) -> Option<u8> {
    match digit {
        b'0'..=b'9' => Some(digit - b'0'),
        b'a'..=b'f' => Some(digit - b'a' + 10),
        b'A'..=b'F' => Some(digit - b'A' + 10),
        _ => None,
    }
}

/// Decodes one form-encoded query component: `%XX` escapes and `+` as a space. A `%` not
/// followed by two hex digits stays a literal `%` (the same rule the canonical query uses,
/// so signer and verifier always agree).
fn decode_query_bytes(raw: &str, mut emit: impl FnMut(u8)) {
    let bytes = raw.as_bytes();
    let mut index = 0;
    while index < bytes.len() {
        match bytes[index] {
            b'%' if index + 2 < bytes.len() => {
                match (hex_value(bytes[index + 1]), hex_value(bytes[index + 2])) {
                    (Some(high), Some(low)) => {
                        emit(high << 4 | low);
                        index += 3;
                    }
                    _ => {
                        emit(b'%');
                        index += 1;
                    }
                }
            }
            b'+' => {
                emit(b' ');
                index += 1;
            }
            byte => {
                emit(byte);
                index += 1;
            }
        }
    }
}

/// The decoded text of one query component (lossy UTF-8), borrowing when nothing needs
/// decoding, as for every `X-Amz-*` value but the credential and signed-header list.
pub(crate) fn decode_query_component(raw: &str) -> Cow<'_, str> {
    if !raw.bytes().any(|byte| byte == b'%' || byte == b'+') {
        return Cow::Borrowed(raw);
    }
    let mut decoded = Vec::with_capacity(raw.len());
    decode_query_bytes(raw, |byte| decoded.push(byte));
    match String::from_utf8(decoded) {
        Ok(text) => Cow::Owned(text),
        Err(error) => Cow::Owned(String::from_utf8_lossy(error.as_bytes()).into_owned()),
    }
}

fn push_requery_encoded(out: &mut Vec<u8>, raw: &str) {
    decode_query_bytes(raw, |byte| push_encoded(out, byte));
}

/// Appends the canonical path: botocore's `remove_dot_segments` (which also drops empty
/// segments, i.e. repeated slashes) applied to the raw path, then every byte but unreserved
/// ones and `/` percent-encoded. The path is not decoded first, so `%20` becomes `%2520`.
pub(crate) fn push_canonical_path(out: &mut Vec<u8>, raw_path: &str) {
    if raw_path.is_empty() || raw_path == "/" {
        out.push(b'/');
        return;
    }
    let mut segments: Vec<&str> = Vec::new();
    for segment in raw_path.split('/') {
        match segment {
            "" | "." => {}
            ".." => {
                segments.pop();
            }
            _ => segments.push(segment),
        }
    }
    if raw_path.starts_with('/') {
        out.push(b'/');
    }
    for (index, segment) in segments.iter().enumerate() {
        if index > 0 {
            out.push(b'/');
        }
        push_uri_encoded(out, segment);
    }
    if raw_path.ends_with('/') && !segments.is_empty() {
        out.push(b'/');
    }
}

/// Appends the canonical query string. `skip_signature` leaves out `X-Amz-Signature`, as the
/// query-string (presigned) form requires.
pub(crate) fn push_canonical_query(out: &mut Vec<u8>, raw_query: &str, skip_signature: bool) {
    if raw_query.is_empty() {
        return;
    }
    let mut encoded: Vec<u8> = Vec::with_capacity(raw_query.len() + 16);
    let mut pairs: Vec<(Range<usize>, Range<usize>)> = Vec::new();
    for pair in raw_query.split('&') {
        if pair.is_empty() {
            continue;
        }
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        let key_start = encoded.len();
        push_requery_encoded(&mut encoded, key);
        let key_range = key_start..encoded.len();
        if skip_signature && &encoded[key_range.clone()] == b"X-Amz-Signature" {
            encoded.truncate(key_start);
            continue;
        }
        push_requery_encoded(&mut encoded, value);
        pairs.push((key_range.clone(), key_range.end..encoded.len()));
    }
    pairs.sort_unstable_by(|left, right| {
        (&encoded[left.0.clone()], &encoded[left.1.clone()])
            .cmp(&(&encoded[right.0.clone()], &encoded[right.1.clone()]))
    });
    for (index, (key, value)) in pairs.into_iter().enumerate() {
        if index > 0 {
            out.push(b'&');
        }
        out.extend_from_slice(&encoded[key]);
        out.push(b'=');
        out.extend_from_slice(&encoded[value]);
    }
}

/// Whitespace as Python's `str.split()` sees it in ASCII, which is what botocore folds.
fn is_folded_whitespace(byte: u8) -> bool {
    matches!(
        byte,
        b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c | 0x1c..=0x1f
    )
}

/// Appends a header value trimmed, with inner whitespace runs folded to one space.
fn push_trimmed_value(out: &mut Vec<u8>, value: &[u8]) {
    let mut started = false;
    let mut pending_space = false;
    for &byte in value {
        if is_folded_whitespace(byte) {
            pending_space = started;
        } else {
            if pending_space {
                out.push(b' ');
                pending_space = false;
            }
            out.push(byte);
            started = true;
        }
    }
}

/// Appends one `name:value\n` line per signed header present in `headers`, in the order of
/// `signed_headers` (`;`-separated, as sent). A signed header absent from the request gets no
/// line, so the signature cannot match one computed over it.
pub(crate) fn push_canonical_headers(out: &mut Vec<u8>, headers: &HeaderMap, signed_headers: &str) {
    for name in signed_headers.split(';') {
        let mut values = headers.get_all(name).iter().peekable();
        if values.peek().is_none() {
            continue;
        }
        out.extend_from_slice(name.as_bytes());
        out.push(b':');
        for (index, value) in values.enumerate() {
            if index > 0 {
                out.push(b',');
            }
            push_trimmed_value(out, value.as_bytes());
        }
        out.push(b'\n');
    }
}

/// Everything the canonical request covers.
pub(crate) struct CanonicalInput<'a> {
    pub method: &'a str,
    pub raw_path: &'a str,
    pub raw_query: &'a str,
    pub skip_signature_param: bool,
    pub headers: &'a HeaderMap,
    pub signed_headers: &'a str,
    pub payload_hash: &'a str,
}

/// The canonical request bytes.
pub(crate) fn canonical_request(input: &CanonicalInput<'_>) -> Vec<u8> {
    let mut out = Vec::with_capacity(
        256 + input.raw_path.len() + input.raw_query.len() * 2 + input.signed_headers.len() * 4,
    );
    out.extend_from_slice(input.method.as_bytes());
    out.push(b'\n');
    push_canonical_path(&mut out, input.raw_path);
    out.push(b'\n');
    push_canonical_query(&mut out, input.raw_query, input.skip_signature_param);
    out.push(b'\n');
    push_canonical_headers(&mut out, input.headers, input.signed_headers);
    out.push(b'\n');
    out.extend_from_slice(input.signed_headers.as_bytes());
    out.push(b'\n');
    out.extend_from_slice(input.payload_hash.as_bytes());
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::{HeaderName, HeaderValue};

    fn check_path(raw: &str, expected: &str) {
        let mut out = Vec::new();
        push_canonical_path(&mut out, raw);
        assert_eq!(String::from_utf8(out).unwrap(), expected, "path {raw:?}");
    }

    fn check_query(raw: &str, skip_signature: bool, expected: &str) {
        let mut out = Vec::new();
        push_canonical_query(&mut out, raw, skip_signature);
        assert_eq!(String::from_utf8(out).unwrap(), expected, "query {raw:?}");
    }

    #[test]
    fn path_is_normalized_then_encoded_again() {
        check_path("", "/");
        check_path("/", "/");
        check_path("//", "/");
        check_path("/a/b", "/a/b");
        check_path("/a/./b/../c//d/", "/a/c/d/");
        check_path("/../..", "/");
        check_path("/a/..", "/");
        check_path("/a/../", "/");
        check_path("/a b", "/a%20b");
        check_path("/a%20b", "/a%2520b");
        check_path("/a+b/c%2Bd", "/a%2Bb/c%252Bd");
        check_path("/~user/-._", "/~user/-._");
        check_path("/caf\u{e9}", "/caf%C3%A9");
        check_path("/x%2Fy", "/x%252Fy");
        check_path("/*", "/%2A");
    }

    #[test]
    fn query_is_decoded_reencoded_and_sorted() {
        check_query("", false, "");
        check_query(
            "b=2&a=3&a=1&a=2&c=&flag&A=upper",
            false,
            "A=upper&a=1&a=2&a=3&b=2&c=&flag=",
        );
        check_query("&&x=1&&", false, "x=1");
        check_query("a=b+c&d=%2B&e=%7e&f=%7E", false, "a=b%20c&d=%2B&e=~&f=~");
        check_query("k=%zz&l=%4&m=%", false, "k=%25zz&l=%254&m=%25");
        check_query("caf\u{e9}=\u{2603}", false, "caf%C3%A9=%E2%98%83");
        check_query("a-b=2&a=1", false, "a=1&a-b=2");
        check_query("q=%2a&q=*", false, "q=%2A&q=%2A");
        check_query("X-Amz-Signature=abc&z=1", true, "z=1");
        check_query("X-Amz-Signature=abc&z=1", false, "X-Amz-Signature=abc&z=1");
    }

    #[test]
    fn decode_query_component_handles_plus_and_escapes() {
        assert!(matches!(
            decode_query_component("plain"),
            Cow::Borrowed("plain")
        ));
        assert_eq!(decode_query_component("a%2Fb+c"), "a/b c");
        assert_eq!(decode_query_component("%E2%98%83"), "\u{2603}");
        assert_eq!(decode_query_component("%FF"), "\u{fffd}");
        assert_eq!(decode_query_component("50%"), "50%");
    }

    #[test]
    fn header_values_are_trimmed_folded_and_joined() {
        let mut headers = HeaderMap::new();
        let mut add = |name: &str, value: &str| {
            headers.append(
                HeaderName::from_bytes(name.as_bytes()).unwrap(),
                HeaderValue::from_str(value).unwrap(),
            );
        };
        add("host", "example.com");
        add("x-spaces", "   a   b    c  ");
        add("x-tab", "x\t\ty z");
        add("x-multi", " first  value ");
        add("x-multi", "second");
        add("x-empty", "");
        let mut out = Vec::new();
        push_canonical_headers(
            &mut out,
            &headers,
            "host;x-empty;x-missing;x-multi;x-spaces;x-tab",
        );
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "host:example.com\nx-empty:\nx-multi:first value,second\nx-spaces:a b c\nx-tab:x y z\n"
        );
    }

    #[test]
    fn canonical_request_joins_the_parts() {
        let mut headers = HeaderMap::new();
        headers.insert("host", HeaderValue::from_static("example.amazonaws.com"));
        headers.insert("x-amz-date", HeaderValue::from_static("20150830T123600Z"));
        let request = canonical_request(&CanonicalInput {
            method: "GET",
            raw_path: "/",
            raw_query: "",
            skip_signature_param: false,
            headers: &headers,
            signed_headers: "host;x-amz-date",
            payload_hash: "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
        });
        assert_eq!(
            String::from_utf8(request).unwrap(),
            "GET\n/\n\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\nhost;x-amz-date\n\
             e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }
}
