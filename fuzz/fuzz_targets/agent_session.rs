//! The agent session stream: NDJSON from the control plane, fed in chunks
//! (sizes taken from the first byte) through the agent's `LineBuffer` and
//! `decode_session_line`, and every desired-task list it decodes through the
//! agent's reconciler (twice, the second time with the first plan's memory
//! updates applied), as the agent shell does. Bad messages are answers; a
//! panic is a bug.
#![no_main]

use agent::blueprint::AgentFacts;
use agent::client::{decode_session_line, LineBuffer};
use agent::reconcile::{reconcile, LocalState, ReconcileConfig};
use libfuzzer_sys::fuzz_target;
use model::agent::AgentMessage;

const NOW_MS: i64 = 1_700_000_000_000;

fuzz_target!(|data: &[u8]| berth_fuzz::on_worker_stack(|| run(data)));

fn run(data: &[u8]) {
    let Some((&chunk_byte, stream)) = data.split_first() else {
        return;
    };
    let chunk_size = usize::from(chunk_byte).max(1);
    let config = ReconcileConfig {
        facts: AgentFacts {
            container_instance_arn:
                "arn:aws:ecs:us-east-1:000000000000:container-instance/default/fuzz".to_string(),
            cpu_architecture: "X86_64".to_string(),
            default_stop_timeout_s: 30,
            ..AgentFacts::default()
        },
        task_cleanup_wait_ms: 3_600_000,
        ..ReconcileConfig::default()
    };
    let mut lines = LineBuffer::default();
    let mut local = LocalState::default();
    for chunk in stream.chunks(chunk_size) {
        if lines.push(chunk).is_err() {
            return;
        }
        while let Some(line) = lines.next_line() {
            let Some(Ok(AgentMessage::DesiredTasks { tasks, .. })) = decode_session_line(&line)
            else {
                continue;
            };
            for now_ms in [NOW_MS, NOW_MS + 60_000] {
                let plan = reconcile(&config, &tasks, &[], &local, now_ms);
                for task in &plan.tasks {
                    for update in &task.updates {
                        local.apply(&task.task_arn, update);
                    }
                }
            }
        }
    }
}
