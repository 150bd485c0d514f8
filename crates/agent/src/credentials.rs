//! The AWS credential and region chain, the subset the agent needs:
//! `AWS_ACCESS_KEY_ID` / `AWS_SECRET_ACCESS_KEY` (/ `AWS_SESSION_TOKEN`), else
//! the shared credentials file (`AWS_SHARED_CREDENTIALS_FILE` or
//! `~/.aws/credentials`, profile `AWS_PROFILE` or `default`); the region from
//! `AWS_REGION`, `AWS_DEFAULT_REGION`, else the config file (`AWS_CONFIG_FILE`
//! or `~/.aws/config`).
//!
//! The environment and file reads are passed in, so the chain itself is
//! pure and tested without touching the process environment.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use crate::AgentError;

/// AWS credentials for signing.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    pub access_key_id: String,
    pub secret_access_key: String,
    pub session_token: Option<String>,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &"<redacted>")
            .field(
                "session_token",
                &self.session_token.as_ref().map(|_| "<redacted>"),
            )
            .finish()
    }
}

/// Sections of an INI file (`[name]` → key → value). Comments start with
/// `#` or `;`; keys and values are trimmed.
pub fn parse_ini(text: &str) -> BTreeMap<String, BTreeMap<String, String>> {
    let mut sections: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    let mut current: Option<String> = None;
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            let name = name.trim().to_string();
            sections.entry(name.clone()).or_default();
            current = Some(name);
            continue;
        }
        if let (Some(section), Some((key, value))) = (&current, line.split_once('=')) {
            sections
                .entry(section.clone())
                .or_default()
                .insert(key.trim().to_string(), value.trim().to_string());
        }
    }
    sections
}

/// Reads the process environment and files, for [`resolve_credentials`] and
/// [`resolve_region`].
pub trait Environment {
    fn var(&self, name: &str) -> Option<String>;
    fn read_file(&self, path: &Path) -> Option<String>;
}

/// The real process environment and file system.
pub struct ProcessEnvironment;

impl Environment for ProcessEnvironment {
    fn var(&self, name: &str) -> Option<String> {
        std::env::var(name).ok()
    }

    fn read_file(&self, path: &Path) -> Option<String> {
        std::fs::read_to_string(path).ok()
    }
}

fn non_empty(env: &dyn Environment, name: &str) -> Option<String> {
    env.var(name).filter(|v| !v.is_empty())
}

fn profile(env: &dyn Environment) -> String {
    non_empty(env, "AWS_PROFILE").unwrap_or_else(|| "default".to_string())
}

fn home_file(env: &dyn Environment, override_var: &str, relative: &str) -> Option<PathBuf> {
    non_empty(env, override_var)
        .map(PathBuf::from)
        .or_else(|| non_empty(env, "HOME").map(|home| PathBuf::from(home).join(relative)))
}

/// The credentials the AWS CLI would use.
pub fn resolve_credentials(env: &dyn Environment) -> Result<Credentials, AgentError> {
    if let (Some(access_key_id), Some(secret_access_key)) = (
        non_empty(env, "AWS_ACCESS_KEY_ID"),
        non_empty(env, "AWS_SECRET_ACCESS_KEY"),
    ) {
        return Ok(Credentials {
            access_key_id,
            secret_access_key,
            session_token: non_empty(env, "AWS_SESSION_TOKEN"),
        });
    }
    let profile = profile(env);
    let path = home_file(env, "AWS_SHARED_CREDENTIALS_FILE", ".aws/credentials");
    let section = path
        .as_deref()
        .and_then(|p| env.read_file(p))
        .map(|text| parse_ini(&text))
        .and_then(|mut sections| sections.remove(&profile));
    if let Some(section) = section {
        if let (Some(access_key_id), Some(secret_access_key)) = (
            section.get("aws_access_key_id").filter(|v| !v.is_empty()),
            section
                .get("aws_secret_access_key")
                .filter(|v| !v.is_empty()),
        ) {
            return Ok(Credentials {
                access_key_id: access_key_id.clone(),
                secret_access_key: secret_access_key.clone(),
                session_token: section
                    .get("aws_session_token")
                    .filter(|v| !v.is_empty())
                    .cloned(),
            });
        }
    }
    Err(AgentError::Config {
        message: format!(
            "no AWS credentials found: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (e.g. `eval \"$(berth env)\"`), \
             or add profile '{profile}' to {}",
            path.map_or("~/.aws/credentials".to_string(), |p| p.display().to_string())
        ),
    })
}

/// The region the AWS CLI would use.
pub fn resolve_region(env: &dyn Environment) -> Result<String, AgentError> {
    if let Some(region) =
        non_empty(env, "AWS_REGION").or_else(|| non_empty(env, "AWS_DEFAULT_REGION"))
    {
        return Ok(region);
    }
    let profile = profile(env);
    let section_name = if profile == "default" {
        "default".to_string()
    } else {
        format!("profile {profile}")
    };
    let path = home_file(env, "AWS_CONFIG_FILE", ".aws/config");
    path.as_deref()
        .and_then(|p| env.read_file(p))
        .map(|text| parse_ini(&text))
        .and_then(|mut sections| sections.remove(&section_name))
        .and_then(|mut section| section.remove("region"))
        .filter(|r| !r.is_empty())
        .ok_or_else(|| AgentError::Config {
            message: "no AWS region found: set AWS_REGION (e.g. `eval \"$(berth env)\"`) or `region` in ~/.aws/config"
                .to_string(),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    struct FakeEnvironment {
        vars: BTreeMap<&'static str, &'static str>,
        files: BTreeMap<PathBuf, &'static str>,
    }

    impl Environment for FakeEnvironment {
        fn var(&self, name: &str) -> Option<String> {
            self.vars.get(name).map(|v| v.to_string())
        }
        fn read_file(&self, path: &Path) -> Option<String> {
            self.files.get(path).map(|v| v.to_string())
        }
    }

    fn env(
        vars: &[(&'static str, &'static str)],
        files: &[(&str, &'static str)],
    ) -> FakeEnvironment {
        FakeEnvironment {
            vars: vars.iter().copied().collect(),
            files: files.iter().map(|(p, t)| (PathBuf::from(p), *t)).collect(),
        }
    }

    const CREDENTIALS_FILE: &str = "[default]\naws_access_key_id = AKIDDEFAULT\naws_secret_access_key = secret1\n\n\
        # a comment\n[berth]\naws_access_key_id=AKIDBERTH\naws_secret_access_key=secret2\naws_session_token = tok\n";

    #[test]
    fn environment_variables_come_first() {
        let chain = env(
            &[
                ("AWS_ACCESS_KEY_ID", "AKIDENV"),
                ("AWS_SECRET_ACCESS_KEY", "s"),
                ("HOME", "/home/u"),
            ],
            &[("/home/u/.aws/credentials", CREDENTIALS_FILE)],
        );
        let credentials = resolve_credentials(&chain).unwrap();
        assert_eq!(credentials.access_key_id, "AKIDENV");
        assert_eq!(credentials.session_token, None);
    }

    #[test]
    fn shared_file_with_profile() {
        let default = env(
            &[("HOME", "/home/u")],
            &[("/home/u/.aws/credentials", CREDENTIALS_FILE)],
        );
        assert_eq!(
            resolve_credentials(&default).unwrap().access_key_id,
            "AKIDDEFAULT"
        );
        let named = env(
            &[
                ("AWS_PROFILE", "berth"),
                ("AWS_SHARED_CREDENTIALS_FILE", "/etc/creds"),
            ],
            &[("/etc/creds", CREDENTIALS_FILE)],
        );
        let credentials = resolve_credentials(&named).unwrap();
        assert_eq!(credentials.access_key_id, "AKIDBERTH");
        assert_eq!(credentials.session_token.as_deref(), Some("tok"));
        assert!(!format!("{credentials:?}").contains("secret2"));
    }

    #[test]
    fn missing_credentials_say_what_to_do() {
        let error =
            resolve_credentials(&env(&[("AWS_PROFILE", "nope"), ("HOME", "/h")], &[])).unwrap_err();
        let message = error.to_string();
        assert!(
            message.contains("AWS_ACCESS_KEY_ID") && message.contains("'nope'"),
            "{message}"
        );
    }

    #[test]
    fn region_chain() {
        assert_eq!(
            resolve_region(&env(
                &[("AWS_REGION", "eu-west-1"), ("AWS_DEFAULT_REGION", "x")],
                &[]
            ))
            .unwrap(),
            "eu-west-1"
        );
        assert_eq!(
            resolve_region(&env(&[("AWS_DEFAULT_REGION", "us-west-2")], &[])).unwrap(),
            "us-west-2"
        );
        let config = "[default]\nregion = ap-south-1\n[profile berth]\nregion = us-east-2\n";
        assert_eq!(
            resolve_region(&env(&[("HOME", "/h")], &[("/h/.aws/config", config)])).unwrap(),
            "ap-south-1"
        );
        assert_eq!(
            resolve_region(&env(
                &[("HOME", "/h"), ("AWS_PROFILE", "berth")],
                &[("/h/.aws/config", config)]
            ))
            .unwrap(),
            "us-east-2"
        );
        assert!(resolve_region(&env(&[], &[])).is_err());
    }
}
