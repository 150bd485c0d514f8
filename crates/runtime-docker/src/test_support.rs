//! Helpers for tests that need a real Docker daemon (this crate's and the
//! agent's end-to-end tests). Not for production use.
//!
//! - [`docker_or_skip`]: connect, or print why the test is skipped. Skipping
//!   happens only when no daemon is reachable, and never in CI (`CI=true`) or
//!   with `BERTH_REQUIRE_DOCKER=1`, where an unreachable daemon fails the test.
//! - [`ensure_test_image`]: build [`TEST_IMAGE`] from the host's static
//!   busybox when it is missing (no registry is needed).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use crate::DockerRuntime;

/// A tiny local image: a static busybox with its applets installed in /bin.
pub const TEST_IMAGE: &str = "berth-test/busybox:latest";

/// Where the static busybox comes from, unless `BERTH_TEST_BUSYBOX` names another file.
pub const DEFAULT_BUSYBOX_PATH: &str = "/bin/busybox";

const DOCKERFILE: &str = "FROM scratch\n\
COPY busybox /bin/busybox\n\
RUN [\"/bin/busybox\", \"--install\", \"-s\", \"/bin\"]\n\
ENV PATH=/bin\n";

fn docker_required() -> bool {
    std::env::var("CI").is_ok_and(|value| value == "true")
        || std::env::var("BERTH_REQUIRE_DOCKER").is_ok_and(|value| value == "1")
}

/// Connects to the Docker daemon for the test `test_name`.
///
/// `None` (after printing `SKIPPED <test>: <reason>` to stderr) when no
/// daemon is reachable and Docker is not required; panics when it is
/// required (see the module docs) or when the test image cannot be made.
pub async fn docker_or_skip(test_name: &str) -> Option<DockerRuntime> {
    match DockerRuntime::connect().await {
        Ok(docker) => {
            if let Err(error) = ensure_test_image() {
                panic!("{test_name}: cannot provide the test image {TEST_IMAGE}: {error}");
            }
            Some(docker)
        }
        Err(error) if docker_required() => panic!(
            "{test_name}: Docker is required here (CI=true or BERTH_REQUIRE_DOCKER=1) but \
             unreachable: {error}"
        ),
        Err(error) => {
            // Straight to the process's stderr: the test harness captures
            // `eprintln!` and would hide the reason for a passing test.
            let _ = writeln!(
                std::io::stderr(),
                "SKIPPED {test_name}: no Docker daemon reachable ({error}). Start dockerd (or set \
                 DOCKER_HOST) to run it; set BERTH_REQUIRE_DOCKER=1 to make this a failure."
            );
            None
        }
    }
}

/// Makes sure [`TEST_IMAGE`] exists, building it once per process if needed.
pub fn ensure_test_image() -> Result<(), String> {
    static BUILT: OnceLock<Result<(), String>> = OnceLock::new();
    BUILT.get_or_init(build_test_image_if_missing).clone()
}

fn build_test_image_if_missing() -> Result<(), String> {
    let present = Command::new("docker")
        .args(["image", "inspect", "--format", "{{.Id}}", TEST_IMAGE])
        .output()
        .map_err(|error| format!("cannot run the docker CLI: {error}; install docker.io"))?
        .status
        .success();
    if present {
        return Ok(());
    }
    build_busybox_image(TEST_IMAGE)
}

/// Builds a busybox image tagged `tag` (see [`TEST_IMAGE`]) from the host's
/// static busybox (`BERTH_TEST_BUSYBOX`, default [`DEFAULT_BUSYBOX_PATH`]),
/// with the docker CLI.
pub fn build_busybox_image(tag: &str) -> Result<(), String> {
    let busybox = std::env::var_os("BERTH_TEST_BUSYBOX")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(DEFAULT_BUSYBOX_PATH));
    check_static_executable(&busybox)?;

    let context = std::env::temp_dir().join(format!(
        "berth-test-image-{}-{}",
        std::process::id(),
        tag.replace(['/', ':'], "-")
    ));
    std::fs::create_dir_all(&context)
        .map_err(|error| format!("cannot create {}: {error}", context.display()))?;
    let result = (|| {
        std::fs::copy(&busybox, context.join("busybox"))
            .map_err(|error| format!("cannot copy {}: {error}", busybox.display()))?;
        std::fs::write(context.join("Dockerfile"), DOCKERFILE)
            .map_err(|error| format!("cannot write the Dockerfile: {error}"))?;
        let output = Command::new("docker")
            .args(["build", "--quiet", "--tag", tag])
            .arg(&context)
            .output()
            .map_err(|error| format!("cannot run docker build: {error}"))?;
        if output.status.success() {
            Ok(())
        } else {
            Err(format!(
                "docker build failed: {}",
                String::from_utf8_lossy(&output.stderr).trim()
            ))
        }
    })();
    let _ = std::fs::remove_dir_all(&context);
    result
}

/// A `FROM scratch` image needs an executable with no dynamic loader: an ELF
/// file without a `PT_INTERP` program header.
fn check_static_executable(path: &Path) -> Result<(), String> {
    let install_hint = "install Debian's busybox-static (apt-get install busybox-static) or point \
                        BERTH_TEST_BUSYBOX at a statically linked busybox";
    let bytes = std::fs::read(path)
        .map_err(|error| format!("cannot read {}: {error}; {install_hint}", path.display()))?;
    if !is_static_elf64(&bytes) {
        return Err(format!(
            "{} is not a statically linked 64-bit ELF executable; {install_hint}",
            path.display()
        ));
    }
    Ok(())
}

fn is_static_elf64(bytes: &[u8]) -> bool {
    const PT_INTERP: u32 = 3;
    if bytes.len() < 64 || &bytes[0..4] != b"\x7fELF" || bytes[4] != 2 || bytes[5] != 1 {
        return false;
    }
    let read_u16 = |at: usize| u16::from_le_bytes([bytes[at], bytes[at + 1]]) as usize;
    let mut offset_bytes = [0u8; 8];
    offset_bytes.copy_from_slice(&bytes[0x20..0x28]);
    let Ok(program_headers) = usize::try_from(u64::from_le_bytes(offset_bytes)) else {
        return false;
    };
    let entry_size = read_u16(0x36);
    let entries = read_u16(0x38);
    (0..entries).all(|index| {
        let at = program_headers + index * entry_size;
        match bytes.get(at..at + 4) {
            Some(kind) => u32::from_le_bytes([kind[0], kind[1], kind[2], kind[3]]) != PT_INTERP,
            None => false,
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A minimal ELF64 header followed by program headers of the given types.
    fn elf_with_program_headers(types: &[u32]) -> Vec<u8> {
        let mut bytes = vec![0u8; 64];
        bytes[0..4].copy_from_slice(b"\x7fELF");
        bytes[4] = 2; // 64-bit
        bytes[5] = 1; // little-endian
        bytes[0x20..0x28].copy_from_slice(&64u64.to_le_bytes());
        bytes[0x36..0x38].copy_from_slice(&56u16.to_le_bytes());
        bytes[0x38..0x3a].copy_from_slice(&(types.len() as u16).to_le_bytes());
        for kind in types {
            let mut header = vec![0u8; 56];
            header[0..4].copy_from_slice(&kind.to_le_bytes());
            bytes.extend(header);
        }
        bytes
    }

    #[test]
    fn static_elf_detection() {
        assert!(is_static_elf64(&elf_with_program_headers(&[6, 1, 1])));
        assert!(
            !is_static_elf64(&elf_with_program_headers(&[6, 3, 1])),
            "PT_INTERP means dynamic"
        );
        let mut truncated = elf_with_program_headers(&[1]);
        truncated.truncate(66);
        assert!(!is_static_elf64(&truncated));
        assert!(!is_static_elf64(b"#!/bin/sh\necho hi\n"));
        assert!(!is_static_elf64(&[]));
    }
}
