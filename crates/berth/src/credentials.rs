//! The files in the data directory that tell AWS clients how to reach Berth:
//! - `credentials`: AWS shared-credentials format, profile `[berth]`, mode 0600;
//! - `config`: AWS config format, `[profile berth]` with `region` and
//!   `endpoint_url` (so `AWS_PROFILE=berth` alone points the AWS CLI and
//!   boto3 at this server);
//! - `endpoint`: the URL of the last server started with this data
//!   directory, one line, read by `berth env`.

use std::fs;
use std::io::Write as _;
use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context as _, Result};
use api::access_keys::AccessKey;

pub const PROFILE: &str = "berth";

pub fn credentials_path(data_dir: &Path) -> PathBuf {
    data_dir.join("credentials")
}

pub fn config_path(data_dir: &Path) -> PathBuf {
    data_dir.join("config")
}

pub fn endpoint_path(data_dir: &Path) -> PathBuf {
    data_dir.join("endpoint")
}

/// Writes the `[berth]` credentials profile unless the file already holds
/// exactly this key.
pub fn write_credentials(data_dir: &Path, key: &AccessKey) -> Result<PathBuf> {
    let path = credentials_path(data_dir);
    let contents = format!(
        "[{PROFILE}]\naws_access_key_id = {}\naws_secret_access_key = {}\n",
        key.access_key_id, key.secret_access_key
    );
    write_private_if_changed(&path, &contents)?;
    Ok(path)
}

/// Writes the `[profile berth]` config (region and endpoint).
pub fn write_config(data_dir: &Path, region: &str, endpoint_url: &str) -> Result<PathBuf> {
    let path = config_path(data_dir);
    let contents =
        format!("[profile {PROFILE}]\nregion = {region}\nendpoint_url = {endpoint_url}\n");
    write_private_if_changed(&path, &contents)?;
    Ok(path)
}

pub fn write_endpoint(data_dir: &Path, endpoint_url: &str) -> Result<()> {
    write_private_if_changed(&endpoint_path(data_dir), &format!("{endpoint_url}\n"))
}

pub struct StoredCredentials {
    pub access_key_id: String,
    pub secret_access_key: String,
}

pub fn read_credentials(data_dir: &Path) -> Result<StoredCredentials> {
    let path = credentials_path(data_dir);
    let text = fs::read_to_string(&path).with_context(|| {
        format!(
            "cannot read {}; start Berth once (`berth up`) to create it, or pass the \
             --data-dir it was started with",
            path.display()
        )
    })?;
    let profile = ini_section(&text, PROFILE);
    let value = |name: &str| {
        profile
            .iter()
            .find(|(key, _)| *key == name)
            .map(|(_, value)| value.to_string())
            .with_context(|| format!("{} has no {name} in profile [{PROFILE}]", path.display()))
    };
    Ok(StoredCredentials {
        access_key_id: value("aws_access_key_id")?,
        secret_access_key: value("aws_secret_access_key")?,
    })
}

/// The region in `config`'s `[profile berth]`, if any.
pub fn read_region(data_dir: &Path) -> Option<String> {
    let text = fs::read_to_string(config_path(data_dir)).ok()?;
    ini_section(&text, &format!("profile {PROFILE}"))
        .into_iter()
        .find(|(key, _)| *key == "region")
        .map(|(_, value)| value.to_string())
}

pub fn read_endpoint(data_dir: &Path) -> Option<String> {
    let text = fs::read_to_string(endpoint_path(data_dir)).ok()?;
    let endpoint = text.trim();
    (!endpoint.is_empty()).then(|| endpoint.to_string())
}

/// `key = value` pairs of `[section]` in an INI document.
fn ini_section<'a>(text: &'a str, section: &str) -> Vec<(&'a str, &'a str)> {
    let mut in_section = false;
    let mut pairs = Vec::new();
    for line in text.lines().map(str::trim) {
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            in_section = name.trim() == section;
        } else if in_section {
            if let Some((key, value)) = line.split_once('=') {
                pairs.push((key.trim(), value.trim()));
            }
        }
    }
    pairs
}

/// Replaces `path` atomically with `contents`, readable by the owner only.
fn write_private_if_changed(path: &Path, contents: &str) -> Result<()> {
    if fs::read_to_string(path).is_ok_and(|existing| existing == contents) {
        let mode = fs::metadata(path)?.permissions().mode() & 0o777;
        if mode == 0o600 {
            return Ok(());
        }
    }
    let Some(file_name) = path.file_name() else {
        bail!("{} is not a file path", path.display());
    };
    let mut temporary_name = file_name.to_os_string();
    temporary_name.push(".tmp");
    let temporary = path.with_file_name(temporary_name);
    let write = || -> std::io::Result<()> {
        let _ = fs::remove_file(&temporary);
        let mut file = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&temporary)?;
        file.write_all(contents.as_bytes())?;
        file.sync_all()?;
        fs::rename(&temporary, path)
    };
    write().with_context(|| format!("cannot write {}", path.display()))
}

#[cfg(test)]
mod tests {
    use api::access_keys::AccessKeyStatus;

    use super::*;

    fn key(id: &str) -> AccessKey {
        AccessKey {
            access_key_id: id.into(),
            secret_access_key: "abc/def+ghi".repeat(4)[..40].to_string(),
            account_id: "000000000000".into(),
            created_at_ms: 0,
            status: AccessKeyStatus::Active,
        }
    }

    #[test]
    fn credentials_round_trip_with_owner_only_mode() {
        let dir = tempfile::tempdir().unwrap();
        let path = write_credentials(dir.path(), &key("AKIAAAAAAAAAAAAAAAAA")).unwrap();
        assert_eq!(
            fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
        let read = read_credentials(dir.path()).unwrap();
        assert_eq!(read.access_key_id, "AKIAAAAAAAAAAAAAAAAA");
        assert_eq!(read.secret_access_key, key("x").secret_access_key);

        write_credentials(dir.path(), &key("AKIABBBBBBBBBBBBBBBB")).unwrap();
        assert_eq!(
            read_credentials(dir.path()).unwrap().access_key_id,
            "AKIABBBBBBBBBBBBBBBB"
        );
    }

    #[test]
    fn config_and_endpoint_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(read_region(dir.path()), None);
        assert_eq!(read_endpoint(dir.path()), None);
        write_config(dir.path(), "eu-west-1", "http://127.0.0.1:9").unwrap();
        write_endpoint(dir.path(), "http://127.0.0.1:9").unwrap();
        assert_eq!(read_region(dir.path()).as_deref(), Some("eu-west-1"));
        assert_eq!(
            read_endpoint(dir.path()).as_deref(),
            Some("http://127.0.0.1:9")
        );
    }

    #[test]
    fn ini_sections_are_kept_apart() {
        let text = "[default]\nregion = a\n\n# comment\n[profile berth]\n region=b \n[other]\nregion = c\n";
        assert_eq!(ini_section(text, "profile berth"), vec![("region", "b")]);
        assert_eq!(ini_section(text, "missing"), Vec::<(&str, &str)>::new());
    }
}
