//! [`EtcdConfig`]: where the etcd cluster is and how to reach it, parsed from
//! a store URL.
//!
//! ```text
//! etcd://[user[:password]@]host[:port][,host[:port]...][/key-prefix]
//! etcds://[user[:password]@]host[:port][,...][/key-prefix]?ca=PATH[&cert=PATH&key=PATH][&domain=NAME]
//! ```
//!
//! The port defaults to 2379. The path, when there is one other than `/`, is
//! the key prefix, verbatim (`etcd://h:2379/berth/prod` stores the key
//! `/ecs/…` as `/berth/prod/ecs/…`). User, password and prefix are
//! percent-decoded. `etcds://` needs `ca`, the PEM file of the certificate
//! authority that signed the members' certificates; `cert` and `key` (both or
//! neither) are a client certificate for etcd's `--client-cert-auth`;
//! `domain` overrides the name checked in the members' certificates.
//!
//! Parsing is pure: TLS files are read by [`crate::EtcdStore::connect`].

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

use percent_encoding::percent_decode_str;

use crate::EtcdStoreError;

const DEFAULT_PORT: u16 = 2379;

/// How to reach the etcd cluster; [`EtcdConfig::from_url`] or build it by hand
/// (start from [`EtcdConfig::new`] for the defaults).
#[derive(Clone, PartialEq, Eq)]
pub struct EtcdConfig {
    /// `host:port` of each member's client URL.
    pub endpoints: Vec<String>,
    /// Authenticate as this etcd user (etcd's `auth enable`).
    pub user: Option<EtcdUser>,
    /// `Some`: talk TLS (`etcds://`).
    pub tls: Option<EtcdTls>,
    /// Every key is stored under this prefix, and ranges and watches are
    /// confined to it; "" uses the whole key space.
    pub key_prefix: String,
    /// Give up connecting to one member after this long (the next request
    /// tries again).
    pub connect_timeout_ms: u64,
    /// HTTP/2 keep-alive pings: how often, and how long to wait for the answer
    /// before the connection counts as lost (a watch then re-opens elsewhere).
    /// etcd refuses pings more often than every 5 s by default.
    pub keep_alive_interval_ms: u64,
    pub keep_alive_timeout_ms: u64,
    /// How many times a request that failed on a lost connection or during a
    /// leader election is tried again (with back-off) before the error is
    /// returned; also how many times in a row a watch tries to re-open.
    pub retry_attempts: u32,
}

#[derive(Clone, PartialEq, Eq)]
pub struct EtcdUser {
    pub name: String,
    pub password: String,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EtcdTls {
    /// PEM file of the certificate authority the members' certificates chain to.
    pub ca_certificate_path: PathBuf,
    /// PEM files of a client certificate and its key, for `--client-cert-auth`.
    pub client_certificate_path: Option<PathBuf>,
    pub client_key_path: Option<PathBuf>,
    /// The name to check in the members' certificates instead of the host.
    pub domain_name: Option<String>,
}

impl EtcdConfig {
    /// The given endpoints, no user, no TLS, no prefix, default timeouts.
    pub fn new(endpoints: impl IntoIterator<Item = impl Into<String>>) -> Self {
        EtcdConfig {
            endpoints: endpoints.into_iter().map(Into::into).collect(),
            user: None,
            tls: None,
            key_prefix: String::new(),
            connect_timeout_ms: 2_000,
            keep_alive_interval_ms: 10_000,
            keep_alive_timeout_ms: 5_000,
            retry_attempts: 20,
        }
    }

    pub fn with_key_prefix(mut self, key_prefix: impl Into<String>) -> Self {
        self.key_prefix = key_prefix.into();
        self
    }

    pub fn from_url(url: &str) -> Result<Self, EtcdStoreError> {
        parse_url(url).map_err(|reason| EtcdStoreError::InvalidUrl {
            url: redact_password(url),
            reason,
        })
    }

    /// The URLs etcd-client connects to, one per member.
    pub(crate) fn endpoint_urls(&self) -> Vec<String> {
        let scheme = if self.tls.is_some() { "https" } else { "http" };
        self.endpoints
            .iter()
            .map(|endpoint| format!("{scheme}://{endpoint}"))
            .collect()
    }
}

impl FromStr for EtcdConfig {
    type Err = EtcdStoreError;

    fn from_str(url: &str) -> Result<Self, Self::Err> {
        EtcdConfig::from_url(url)
    }
}

// The password never reaches logs through `{:?}`.
impl fmt::Debug for EtcdConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EtcdConfig")
            .field("endpoints", &self.endpoints)
            .field("user", &self.user)
            .field("tls", &self.tls)
            .field("key_prefix", &self.key_prefix)
            .field("connect_timeout_ms", &self.connect_timeout_ms)
            .field("keep_alive_interval_ms", &self.keep_alive_interval_ms)
            .field("keep_alive_timeout_ms", &self.keep_alive_timeout_ms)
            .field("retry_attempts", &self.retry_attempts)
            .finish()
    }
}

impl fmt::Debug for EtcdUser {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EtcdUser")
            .field("name", &self.name)
            .field("password", &"<redacted>")
            .finish()
    }
}

fn parse_url(url: &str) -> Result<EtcdConfig, String> {
    let (tls, rest) = if let Some(rest) = url.strip_prefix("etcd://") {
        (false, rest)
    } else if let Some(rest) = url.strip_prefix("etcds://") {
        (true, rest)
    } else {
        return Err("the scheme must be etcd:// or etcds://".to_string());
    };
    let (rest, query) = match rest.split_once('?') {
        Some((rest, query)) => (rest, Some(query)),
        None => (rest, None),
    };
    let (authority, path) = match rest.find('/') {
        Some(slash) => rest.split_at(slash),
        None => (rest, ""),
    };
    let (userinfo, hosts) = match authority.rsplit_once('@') {
        Some((userinfo, hosts)) => (Some(userinfo), hosts),
        None => (None, authority),
    };

    let mut config = EtcdConfig::new(Vec::<String>::new());
    config.user = userinfo.map(parse_user).transpose()?;
    for host in hosts.split(',') {
        config.endpoints.push(parse_endpoint(host)?);
    }
    if path != "/" {
        config.key_prefix = decode(path, "the key prefix")?;
    }

    let mut tls_options = TlsQuery::default();
    for pair in query
        .unwrap_or("")
        .split('&')
        .filter(|pair| !pair.is_empty())
    {
        let (name, value) = pair
            .split_once('=')
            .ok_or_else(|| format!("query parameter {pair:?} has no value"))?;
        let value = decode(value, name)?;
        let slot = match name {
            "ca" => &mut tls_options.ca,
            "cert" => &mut tls_options.cert,
            "key" => &mut tls_options.key,
            "domain" => &mut tls_options.domain,
            other => {
                return Err(format!(
                    "unknown query parameter {other:?} (known: ca, cert, key, domain)"
                ))
            }
        };
        *slot = Some(value);
    }
    config.tls = tls_options.into_tls(tls)?;
    Ok(config)
}

#[derive(Default)]
struct TlsQuery {
    ca: Option<String>,
    cert: Option<String>,
    key: Option<String>,
    domain: Option<String>,
}

impl TlsQuery {
    fn into_tls(self, tls: bool) -> Result<Option<EtcdTls>, String> {
        if !tls {
            if self.ca.is_some()
                || self.cert.is_some()
                || self.key.is_some()
                || self.domain.is_some()
            {
                return Err("ca, cert, key and domain need the etcds:// scheme".to_string());
            }
            return Ok(None);
        }
        let ca = self.ca.ok_or(
            "etcds:// needs ?ca=PATH, the PEM file of the certificate authority of the etcd members",
        )?;
        if self.cert.is_some() != self.key.is_some() {
            return Err("cert and key go together: give both or neither".to_string());
        }
        Ok(Some(EtcdTls {
            ca_certificate_path: PathBuf::from(ca),
            client_certificate_path: self.cert.map(PathBuf::from),
            client_key_path: self.key.map(PathBuf::from),
            domain_name: self.domain,
        }))
    }
}

fn parse_user(userinfo: &str) -> Result<EtcdUser, String> {
    let (name, password) = userinfo.split_once(':').unwrap_or((userinfo, ""));
    let name = decode(name, "the user name")?;
    if name.is_empty() {
        return Err("the user name before '@' is empty".to_string());
    }
    Ok(EtcdUser {
        name,
        password: decode(password, "the password")?,
    })
}

fn parse_endpoint(host: &str) -> Result<String, String> {
    if host.is_empty() {
        return Err("a host is empty (hosts are separated by single commas)".to_string());
    }
    // `[v6]:port`, `[v6]`, `host:port` or `host`.
    let (name, port) = if let Some(bracketed) = host.strip_prefix('[') {
        let (address, after) = bracketed
            .split_once(']')
            .ok_or_else(|| format!("host {host:?} has no closing ']'"))?;
        let port =
            match after {
                "" => None,
                _ => Some(after.strip_prefix(':').ok_or_else(|| {
                    format!("unexpected {after:?} after the address in {host:?}")
                })?),
            };
        (format!("[{address}]"), port)
    } else {
        match host.split_once(':') {
            Some((name, port)) => (name.to_string(), Some(port)),
            None => (host.to_string(), None),
        }
    };
    let port = match port {
        None => DEFAULT_PORT,
        Some(port) => port.parse::<u16>().map_err(|_| {
            format!("port {port:?} of host {host:?} is not a number from 1 to 65535")
        })?,
    };
    if port == 0 {
        return Err(format!("port 0 of host {host:?} is not a usable port"));
    }
    Ok(format!("{name}:{port}"))
}

fn decode(text: &str, what: &str) -> Result<String, String> {
    percent_decode_str(text)
        .decode_utf8()
        .map(|decoded| decoded.into_owned())
        .map_err(|_| format!("{what} is not UTF-8 once percent-decoded"))
}

/// `url` with the password (if any) replaced, for error messages.
fn redact_password(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let Some(at) = rest[..authority_end].rfind('@') else {
        return url.to_string();
    };
    match rest[..at].split_once(':') {
        Some((user, _)) => format!("{scheme}://{user}:<redacted>{}", &rest[at..]),
        None => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(url: &str, expected: Result<EtcdConfig, &str>) {
        let actual = EtcdConfig::from_url(url).map_err(|error| error.to_string());
        match expected {
            Ok(config) => assert_eq!(actual.expect(url), config, "{url}"),
            Err(fragment) => {
                let message = actual.expect_err(url);
                assert!(
                    message.contains(fragment),
                    "{url}: {message:?} should mention {fragment:?}"
                );
            }
        }
    }

    fn endpoints(hosts: &[&str]) -> EtcdConfig {
        EtcdConfig::new(hosts.iter().copied())
    }

    #[test]
    fn parses_hosts_ports_and_prefix() {
        check("etcd://localhost", Ok(endpoints(&["localhost:2379"])));
        check(
            "etcd://host1:2379,host2:22379,host3",
            Ok(endpoints(&["host1:2379", "host2:22379", "host3:2379"])),
        );
        check(
            "etcd://[::1]:2379,[fe80::1]",
            Ok(endpoints(&["[::1]:2379", "[fe80::1]:2379"])),
        );
        check("etcd://h:1/", Ok(endpoints(&["h:1"])));
        check(
            "etcd://h:1/berth/prod",
            Ok(endpoints(&["h:1"]).with_key_prefix("/berth/prod")),
        );
        check(
            "etcd://h:1/berth%20x/",
            Ok(endpoints(&["h:1"]).with_key_prefix("/berth x/")),
        );
    }

    #[test]
    fn parses_user_and_password() {
        let mut expected = endpoints(&["h:2379"]);
        expected.user = Some(EtcdUser {
            name: "berth".to_string(),
            password: "p@ss:word".to_string(),
        });
        check("etcd://berth:p%40ss%3Aword@h", Ok(expected.clone()));
        expected.user.as_mut().expect("user").password = String::new();
        check("etcd://berth@h", Ok(expected));
        check("etcd://:secret@h", Err("user name"));
    }

    #[test]
    fn parses_tls_options() {
        let mut expected = endpoints(&["a:2379", "b:2379"]).with_key_prefix("/p");
        expected.tls = Some(EtcdTls {
            ca_certificate_path: PathBuf::from("/etc/ca.pem"),
            client_certificate_path: Some(PathBuf::from("/etc/c.pem")),
            client_key_path: Some(PathBuf::from("/etc/k.pem")),
            domain_name: Some("etcd.internal".to_string()),
        });
        check(
            "etcds://a,b/p?ca=/etc/ca.pem&cert=/etc/c.pem&key=/etc/k.pem&domain=etcd.internal",
            Ok(expected.clone()),
        );
        assert_eq!(
            expected.endpoint_urls(),
            vec!["https://a:2379", "https://b:2379"]
        );
        check("etcds://a", Err("?ca=PATH"));
        check(
            "etcds://a?ca=/ca.pem&cert=/c.pem",
            Err("cert and key go together"),
        );
        check("etcd://a?ca=/ca.pem", Err("need the etcds:// scheme"));
        check(
            "etcds://a?ca=/ca.pem&color=blue",
            Err("unknown query parameter"),
        );
    }

    #[test]
    fn rejects_malformed_urls() {
        check("http://h:2379", Err("etcd:// or etcds://"));
        check("etcd://", Err("a host is empty"));
        check("etcd://a,,b", Err("a host is empty"));
        check("etcd://h:http", Err("not a number"));
        check("etcd://h:0", Err("port 0"));
        check("etcd://h:70000", Err("not a number"));
        check("etcd://[::1:2379", Err("closing ']'"));
    }

    #[test]
    fn never_shows_the_password() {
        let error = EtcdConfig::from_url("etcd://berth:hunter2@h:bad")
            .expect_err("bad port")
            .to_string();
        assert!(!error.contains("hunter2"), "{error}");
        assert!(error.contains("berth:<redacted>@h:bad"), "{error}");
        let config = EtcdConfig::from_url("etcd://berth:hunter2@h").expect("valid");
        assert!(!format!("{config:?}").contains("hunter2"));
    }
}
