//! `<data-dir>/agent-state.json`: the agent's identity (cluster and
//! container instance ARN), so a restarted agent re-registers as the same
//! container instance. Written atomically (temporary file, fsync, rename).

use std::io::Write as _;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::AgentError;

pub const FILE_NAME: &str = "agent-state.json";

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AgentState {
    pub cluster: String,
    pub container_instance_arn: String,
}

pub fn path(data_dir: &Path) -> PathBuf {
    data_dir.join(FILE_NAME)
}

fn fault(path: &Path, message: impl std::fmt::Display) -> AgentError {
    AgentError::StateFile {
        path: path.display().to_string(),
        message: message.to_string(),
    }
}

/// The saved state, `None` when the agent has not registered from this data
/// directory before.
pub fn load(data_dir: &Path) -> Result<Option<AgentState>, AgentError> {
    let path = path(data_dir);
    match std::fs::read(&path) {
        Ok(bytes) => serde_json::from_slice(&bytes).map(Some).map_err(|e| {
            fault(
                &path,
                format!("{e}; fix or delete the file (the agent then joins as a new container instance)"),
            )
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(fault(&path, e)),
    }
}

pub fn save(data_dir: &Path, state: &AgentState) -> Result<(), AgentError> {
    let path = path(data_dir);
    std::fs::create_dir_all(data_dir)
        .map_err(|e| fault(&path, format!("cannot create the data directory: {e}")))?;
    let temporary = data_dir.join(format!(".{FILE_NAME}.tmp"));
    let bytes = serde_json::to_vec_pretty(state).map_err(|e| fault(&path, e))?;
    let mut file = std::fs::File::create(&temporary).map_err(|e| fault(&temporary, e))?;
    file.write_all(&bytes).map_err(|e| fault(&temporary, e))?;
    file.sync_all().map_err(|e| fault(&temporary, e))?;
    std::fs::rename(&temporary, &path).map_err(|e| fault(&path, e))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn saves_and_loads_atomically() {
        let dir = tempfile::tempdir().unwrap();
        let data_dir = dir.path().join("nested");
        assert_eq!(load(&data_dir).unwrap(), None);
        let state = AgentState {
            cluster: "default".into(),
            container_instance_arn:
                "arn:aws:ecs:us-east-1:000000000000:container-instance/default/abc".into(),
        };
        save(&data_dir, &state).unwrap();
        assert_eq!(load(&data_dir).unwrap(), Some(state));
        assert!(!data_dir.join(".agent-state.json.tmp").exists());
        std::fs::write(path(&data_dir), "{").unwrap();
        let error = load(&data_dir).unwrap_err().to_string();
        assert!(error.contains("delete the file"), "{error}");
    }
}
