//! How a request's headers are rewritten on their way to a target, and the
//! cookies stickiness reads and writes: ALB's rules as pure functions the
//! proxy applies while it writes the request head (none allocates).

use std::net::SocketAddr;

/// `routing.http.drop_invalid_header_fields.enabled`'s rule: a valid header
/// field name matches `^[-A-Za-z0-9]+$`.
pub fn is_valid_header_field_name(name: &[u8]) -> bool {
    !name.is_empty()
        && name
            .iter()
            .all(|byte| byte.is_ascii_alphanumeric() || *byte == b'-')
}

/// A cookie name is an RFC 7230 token (RFC 6265's `cookie-name`).
pub fn is_valid_cookie_name(name: &str) -> bool {
    !name.is_empty() && name.bytes().all(is_token_byte)
}

/// RFC 7230's `tchar`.
pub(crate) fn is_token_byte(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&byte)
}

/// The entry append mode adds to `X-Forwarded-For` for a client at `peer`:
/// its address, or with `routing.http.xff_client_port.enabled` its address
/// and port (`192.0.2.1:41234`, `[2001:db8::1]:41234`). Computed once per
/// client connection.
pub fn forwarded_for_entry(peer: SocketAddr, with_port: bool) -> String {
    if with_port {
        // `SocketAddr`'s own form brackets IPv6 addresses.
        peer.to_string()
    } else {
        peer.ip().to_string()
    }
}

/// The `Host` header a target receives when the load balancer does not
/// preserve it: `host`, then `:port` if there is one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OutgoingHost<'a> {
    pub host: &'a str,
    pub port: Option<HostPort<'a>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HostPort<'a> {
    /// The port the client wrote.
    Requested(&'a str),
    /// The listener's port.
    Listener(u16),
}

/// ALB's `Host` rewriting with `routing.http.preserve_host_header.enabled`
/// off: the host comes from the request target when it is in absolute form
/// (`GET http://name/path`), else from the first `Host` header. On the
/// default ports (80 and 443) any port is removed; on another listener port
/// the client's port is kept and, if it gave none, the listener's is
/// appended. `None` when the request names no host.
pub fn outgoing_host<'a>(
    listener_port: u16,
    absolute_authority: Option<&'a str>,
    host_header: Option<&'a str>,
) -> Option<OutgoingHost<'a>> {
    let authority = absolute_authority.or(host_header)?;
    // Without any userinfo an absolute URI's authority may carry.
    let authority = authority
        .rsplit_once('@')
        .map_or(authority, |(_, after)| after);
    let (host, port) = split_host_port(authority);
    let port = if listener_port == 80 || listener_port == 443 {
        None
    } else {
        Some(port.map_or(HostPort::Listener(listener_port), HostPort::Requested))
    };
    Some(OutgoingHost { host, port })
}

/// `name:port` into its parts (`[v6]:port` keeps its brackets on the name).
fn split_host_port(authority: &str) -> (&str, Option<&str>) {
    let port_start = if authority.starts_with('[') {
        authority
            .find(']')
            .and_then(|end| authority[end + 1..].strip_prefix(':').map(|_| end + 1))
    } else {
        authority.rfind(':')
    };
    match port_start {
        Some(colon) => {
            let port = &authority[colon + 1..];
            let port = (!port.is_empty()).then_some(port);
            (&authority[..colon], port)
        }
        None => (authority, None),
    }
}

/// The value of cookie `name` in a request's `Cookie` header values (the
/// first one found).
pub fn request_cookie<'a>(
    cookie_headers: impl IntoIterator<Item = &'a [u8]>,
    name: &str,
) -> Option<&'a str> {
    cookie_headers
        .into_iter()
        .filter_map(|value| std::str::from_utf8(value).ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(cookie, _)| *cookie == name)
        .map(|(_, value)| value.trim_matches('"'))
}

/// Whether one of a response's `Set-Cookie` values sets cookie `name`.
pub fn response_sets_cookie<'a>(
    set_cookie_headers: impl IntoIterator<Item = &'a [u8]>,
    name: &str,
) -> bool {
    set_cookie_headers.into_iter().any(|value| {
        value
            .split(|byte| *byte == b'=')
            .next()
            .is_some_and(|cookie| cookie.trim_ascii() == name.as_bytes())
            && value.contains(&b'=')
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_field_names() {
        for (name, valid) in [
            ("x-request-id", true),
            ("X-Request-ID2", true),
            ("x_request_id", false),
            ("x.request", false),
            ("x~y", false),
            ("", false),
        ] {
            assert_eq!(is_valid_header_field_name(name.as_bytes()), valid, "{name}");
        }
        for (name, valid) in [
            ("SESSION", true),
            ("a.b_c", true),
            ("a b", false),
            ("", false),
        ] {
            assert_eq!(is_valid_cookie_name(name), valid, "{name}");
        }
    }

    #[test]
    fn forwarded_for_entries() {
        let v4: SocketAddr = "192.0.2.1:41234".parse().unwrap();
        let v6: SocketAddr = "[2001:db8::1]:41234".parse().unwrap();
        assert_eq!(forwarded_for_entry(v4, false), "192.0.2.1");
        assert_eq!(forwarded_for_entry(v4, true), "192.0.2.1:41234");
        assert_eq!(forwarded_for_entry(v6, false), "2001:db8::1");
        assert_eq!(forwarded_for_entry(v6, true), "[2001:db8::1]:41234");
    }

    fn written(host: Option<OutgoingHost<'_>>) -> Option<String> {
        host.map(|host| match host.port {
            None => host.host.to_string(),
            Some(HostPort::Requested(port)) => format!("{}:{port}", host.host),
            Some(HostPort::Listener(port)) => format!("{}:{port}", host.host),
        })
    }

    /// AWS's table of Host rewriting, and a few more.
    #[test]
    fn host_rewriting() {
        for (listener_port, absolute, host, expected) in [
            (80, None, Some("example.com"), Some("example.com")),
            (80, None, Some("example.com:80"), Some("example.com")),
            (443, None, Some("example.com:443"), Some("example.com")),
            (80, Some("dns_name"), Some("example.com"), Some("dns_name")),
            (8080, None, Some("example.com"), Some("example.com:8080")),
            (
                8080,
                None,
                Some("example.com:8080"),
                Some("example.com:8080"),
            ),
            (
                8080,
                None,
                Some("example.com:9000"),
                Some("example.com:9000"),
            ),
            (
                8080,
                None,
                Some("[2001:db8::1]"),
                Some("[2001:db8::1]:8080"),
            ),
            (80, None, Some("[2001:db8::1]:80"), Some("[2001:db8::1]")),
            (8080, Some("user@name:81"), None, Some("name:81")),
            (8080, None, None, None),
        ] {
            assert_eq!(
                written(outgoing_host(listener_port, absolute, host)).as_deref(),
                expected,
                "{listener_port} {absolute:?} {host:?}"
            );
        }
    }

    #[test]
    fn cookies() {
        let headers: [&[u8]; 2] = [b"a=1; AWSALBAPP-0=abc", b"SESSION=\"x\""];
        assert_eq!(request_cookie(headers, "AWSALBAPP-0"), Some("abc"));
        assert_eq!(request_cookie(headers, "SESSION"), Some("x"));
        assert_eq!(request_cookie(headers, "AWSALB"), None);
        let set: [&[u8]; 2] = [b"other=1; Path=/", b"SESSION=abc; Max-Age=60"];
        assert!(response_sets_cookie(set, "SESSION"));
        assert!(!response_sets_cookie(set, "SESS"));
        assert!(!response_sets_cookie([&b"SESSION"[..]], "SESSION"));
    }
}
