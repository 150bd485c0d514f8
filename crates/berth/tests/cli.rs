//! The built `berth` binary: start, credentials, `berth env`, a signed
//! request, SIGTERM, and refusing unsafe configurations.

use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::{SocketAddr, TcpStream};
use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use aws_protocol::sigv4::{self, SigningParams};
use http::{HeaderMap, HeaderValue};

const BERTH: &str = env!("CARGO_BIN_EXE_berth");
const READY_PREFIX: &str = "berth ready on http://";
const STARTUP_TIMEOUT: Duration = Duration::from_secs(60);

/// A running `berth` process, killed if the test fails before stopping it.
struct Running {
    child: Child,
    addr: SocketAddr,
    stderr_lines: mpsc::Receiver<String>,
}

impl Running {
    fn start(args: &[&str]) -> Running {
        let mut child = Command::new(BERTH)
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("berth starts");
        let stderr = child.stderr.take().unwrap();
        let (sender, stderr_lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if sender.send(line).is_err() {
                    break;
                }
            }
        });
        let mut running = Running {
            child,
            addr: SocketAddr::from(([0, 0, 0, 0], 0)),
            stderr_lines,
        };
        let mut seen = Vec::new();
        loop {
            let line = running
                .stderr_lines
                .recv_timeout(STARTUP_TIMEOUT)
                .unwrap_or_else(|_| panic!("no ready line; stderr so far: {seen:#?}"));
            if let Some(addr) = line.strip_prefix(READY_PREFIX) {
                running.addr = addr.trim().parse().expect("the ready line has an address");
                return running;
            }
            seen.push(line);
        }
    }

    /// SIGTERM, then the exit status.
    fn terminate(mut self) -> ExitStatus {
        let pid = self.child.id().to_string();
        let killed = Command::new("kill").args(["-TERM", &pid]).status().unwrap();
        assert!(killed.success());
        for _ in 0..300 {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("berth did not exit within 30 s of SIGTERM");
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

fn berth(args: &[&str]) -> Output {
    Command::new(BERTH).args(args).output().expect("berth runs")
}

fn data_dir_arg(dir: &Path) -> &str {
    dir.to_str().unwrap()
}

/// `name = value` from an INI file.
fn ini_value(text: &str, name: &str) -> String {
    text.lines()
        .find_map(|line| {
            let (key, value) = line.split_once('=')?;
            (key.trim() == name).then(|| value.trim().to_string())
        })
        .unwrap_or_else(|| panic!("{name} missing in {text}"))
}

/// The `export …` line of `berth env`, as name → value.
fn env_exports(stdout: &[u8]) -> Vec<(String, String)> {
    let text = std::str::from_utf8(stdout).unwrap().trim();
    let assignments = text.strip_prefix("export ").expect("an export line");
    assignments
        .split_whitespace()
        .map(|pair| {
            let (name, value) = pair.split_once('=').unwrap();
            (name.to_string(), value.to_string())
        })
        .collect()
}

fn lookup<'a>(exports: &'a [(String, String)], name: &str) -> &'a str {
    &exports
        .iter()
        .find(|(key, _)| key == name)
        .unwrap_or_else(|| panic!("{name} missing in {exports:?}"))
        .1
}

#[allow(clippy::disallowed_methods)]
fn now_epoch_s() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// Sends one signed ECS request over plain HTTP/1.1 and returns the status
/// line and the whole response.
fn signed_ecs_request(addr: SocketAddr, key_id: &str, secret: &str, operation: &str) -> String {
    let body = b"{}";
    let mut headers = HeaderMap::new();
    headers.insert("host", HeaderValue::from_str(&addr.to_string()).unwrap());
    headers.insert(
        "content-type",
        HeaderValue::from_static("application/x-amz-json-1.1"),
    );
    headers.insert(
        "x-amz-target",
        HeaderValue::from_str(&format!("AmazonEC2ContainerServiceV20141113.{operation}")).unwrap(),
    );
    sigv4::sign_headers(
        "POST",
        "/",
        "",
        &mut headers,
        body,
        &SigningParams {
            access_key_id: key_id,
            secret_access_key: secret,
            session_token: None,
            region: "us-east-1",
            service: "ecs",
            now_epoch_s: now_epoch_s(),
        },
    )
    .unwrap();
    let mut request = String::from("POST / HTTP/1.1\r\n");
    for (name, value) in &headers {
        request.push_str(&format!("{name}: {}\r\n", value.to_str().unwrap()));
    }
    request.push_str(&format!(
        "content-length: {}\r\nconnection: close\r\n\r\n",
        body.len()
    ));
    let mut stream = TcpStream::connect(addr).unwrap();
    stream.write_all(request.as_bytes()).unwrap();
    stream.write_all(body).unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    response
}

#[test]
fn version_prints_the_version() {
    let output = berth(&["version"]);
    assert!(output.status.success());
    assert_eq!(
        String::from_utf8(output.stdout).unwrap(),
        format!("berth {}\n", env!("CARGO_PKG_VERSION"))
    );
}

#[test]
fn server_creates_credentials_serves_signed_requests_and_stops_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let data_dir = data_dir_arg(dir.path());
    let server = Running::start(&["server", "--listen", "127.0.0.1:0", "--data-dir", data_dir]);
    assert_eq!(server.addr.ip().to_string(), "127.0.0.1");
    assert_ne!(
        server.addr.port(),
        0,
        "the ready line reports the real port"
    );

    let credentials_path = dir.path().join("credentials");
    let mode = std::fs::metadata(&credentials_path)
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600, "credentials are private");
    let credentials = std::fs::read_to_string(&credentials_path).unwrap();
    assert!(credentials.starts_with("[berth]\n"), "{credentials}");
    let key_id = ini_value(&credentials, "aws_access_key_id");
    let secret = ini_value(&credentials, "aws_secret_access_key");
    assert!(key_id.starts_with("AKIA") && key_id.len() == 20, "{key_id}");
    assert_eq!(secret.len(), 40);

    let config = std::fs::read_to_string(dir.path().join("config")).unwrap();
    assert!(config.starts_with("[profile berth]\n"), "{config}");
    assert_eq!(ini_value(&config, "region"), "us-east-1");
    assert_eq!(
        ini_value(&config, "endpoint_url"),
        format!("http://{}", server.addr)
    );

    let env = berth(&["env", "--data-dir", data_dir]);
    assert!(env.status.success(), "{env:?}");
    let exports = env_exports(&env.stdout);
    assert_eq!(lookup(&exports, "AWS_ACCESS_KEY_ID"), key_id);
    assert_eq!(lookup(&exports, "AWS_SECRET_ACCESS_KEY"), secret);
    assert_eq!(lookup(&exports, "AWS_REGION"), "us-east-1");
    assert_eq!(lookup(&exports, "AWS_DEFAULT_REGION"), "us-east-1");
    assert_eq!(
        lookup(&exports, "AWS_ENDPOINT_URL"),
        format!("http://{}", server.addr)
    );
    let env_listen = berth(&["env", "--data-dir", data_dir, "--listen", "10.0.0.1:80"]);
    assert_eq!(
        lookup(&env_exports(&env_listen.stdout), "AWS_ENDPOINT_URL"),
        "http://10.0.0.1:80"
    );

    // The stored key is the one the server checks signatures against.
    let accepted = signed_ecs_request(server.addr, &key_id, &secret, "NoSuchOperation");
    assert!(accepted.starts_with("HTTP/1.1 400"), "{accepted}");
    assert!(accepted.contains("UnknownOperationException"), "{accepted}");
    let refused = signed_ecs_request(server.addr, &key_id, &"x".repeat(40), "NoSuchOperation");
    assert!(refused.starts_with("HTTP/1.1 403"), "{refused}");
    assert!(refused.contains("InvalidSignatureException"), "{refused}");

    let status = server.terminate();
    assert!(status.success(), "SIGTERM is a clean exit: {status:?}");
}

#[test]
fn a_restart_reuses_the_stored_key_and_rewrites_a_missing_credentials_file() {
    let dir = tempfile::tempdir().unwrap();
    let data_dir = data_dir_arg(dir.path());
    let credentials_path = dir.path().join("credentials");

    let first = Running::start(&["server", "--listen", "127.0.0.1:0", "--data-dir", data_dir]);
    let original = std::fs::read_to_string(&credentials_path).unwrap();
    assert!(first.terminate().success());

    std::fs::remove_file(&credentials_path).unwrap();
    let second = Running::start(&["up", "--listen", "127.0.0.1:0", "--data-dir", data_dir]);
    assert_eq!(
        std::fs::read_to_string(&credentials_path).unwrap(),
        original
    );
    assert!(second.terminate().success());
}

#[test]
fn open_auth_refuses_a_non_loopback_address() {
    let dir = tempfile::tempdir().unwrap();
    let output = berth(&[
        "server",
        "--auth",
        "open",
        "--listen",
        "0.0.0.0:0",
        "--data-dir",
        data_dir_arg(dir.path()),
    ]);
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("loopback"), "{stderr}");
    assert!(!stderr.contains(READY_PREFIX), "{stderr}");
    assert!(
        !dir.path().join("credentials").exists(),
        "nothing is created before the refusal"
    );
}

#[test]
fn open_auth_on_loopback_accepts_any_key() {
    let dir = tempfile::tempdir().unwrap();
    let server = Running::start(&[
        "server",
        "--auth",
        "open",
        "--listen",
        "127.0.0.1:0",
        "--store",
        "memory://",
        "--data-dir",
        data_dir_arg(dir.path()),
    ]);
    let response = signed_ecs_request(
        server.addr,
        "AKIDEXAMPLE",
        "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
        "NoSuchOperation",
    );
    assert!(response.contains("UnknownOperationException"), "{response}");
    assert!(server.terminate().success());
}

#[test]
fn env_without_credentials_explains_what_to_do() {
    let dir = tempfile::tempdir().unwrap();
    let output = berth(&["env", "--data-dir", data_dir_arg(dir.path())]);
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("berth up"), "{stderr}");
}
