//! The cluster query language (`scheduler::query`): every input is parsed
//! as an expression (the `memberOf` constraint and `ListContainerInstances`
//! filter), evaluated on two container instances, and also read as a
//! `registeredAt` timestamp. Parse errors are answers; a panic is a bug.
#![no_main]

use std::collections::BTreeMap;

use libfuzzer_sys::fuzz_target;
use scheduler::query::{parse_timestamp_ms, Expr};
use scheduler::{InstanceSnapshot, InstanceStatus, Resources};

/// Two container instances as the scheduler evaluates them: one with every
/// field the language reads, one with none (and extreme numbers).
fn instances() -> [InstanceSnapshot; 2] {
    let text = |pairs: &[(&str, Option<&str>)]| -> BTreeMap<String, Option<String>> {
        pairs
            .iter()
            .map(|(name, value)| (name.to_string(), value.map(str::to_string)))
            .collect()
    };
    [
        InstanceSnapshot {
            container_instance_arn:
                "arn:aws:ecs:us-east-1:000000000000:container-instance/default/a".into(),
            ec2_instance_id: Some("i-abcd1234".into()),
            status: InstanceStatus::Active,
            agent_connected: true,
            agent_version: Some("1.14.5".into()),
            registered_at_ms: 1_518_516_000_000,
            remaining: Resources::default(),
            used_tcp_ports: Vec::new(),
            used_udp_ports: Vec::new(),
            attributes: text(&[
                ("ecs.instance-type", Some("t2.small")),
                ("ecs.availability-zone", Some("us-east-1a")),
                ("ecs.capability.ecr-auth", None),
                ("stack", Some("prod")),
                ("disk-gib", Some("100")),
            ]),
            running_tasks_count: 1,
            task_groups: BTreeMap::from([
                ("service:production".to_string(), 1),
                ("family:web".to_string(), 1),
            ]),
        },
        InstanceSnapshot {
            container_instance_arn:
                "arn:aws:ecs:us-east-1:000000000000:container-instance/default/b".into(),
            ec2_instance_id: None,
            status: InstanceStatus::Draining,
            agent_connected: false,
            agent_version: None,
            registered_at_ms: i64::MIN,
            remaining: Resources::default(),
            used_tcp_ports: Vec::new(),
            used_udp_ports: Vec::new(),
            attributes: BTreeMap::new(),
            running_tasks_count: u32::MAX,
            task_groups: BTreeMap::new(),
        },
    ]
}

fuzz_target!(|data: &[u8]| berth_fuzz::on_worker_stack(|| run(data)));

fn run(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let _ = parse_timestamp_ms(text);
    let Ok(expr) = Expr::parse(text) else {
        return;
    };
    let _ = expr.depends_on_tasks();
    for instance in instances() {
        let _ = expr.matches(&instance);
    }
}
