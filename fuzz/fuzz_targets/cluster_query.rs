//! The cluster query language (`scheduler::query`): every input is parsed
//! as an expression (the `memberOf` constraint and `ListContainerInstances`
//! filter), evaluated on two container instances, and also read as a
//! `registeredAt` timestamp. Parse errors are answers; a panic is a bug.
#![no_main]

use std::collections::BTreeMap;

use libfuzzer_sys::fuzz_target;
use scheduler::query::{parse_timestamp_ms, Expr, QueryTarget};

struct Instance {
    attributes: BTreeMap<&'static str, Option<&'static str>>,
    ec2_instance_id: Option<&'static str>,
    agent_connected: bool,
    agent_version: Option<&'static str>,
    registered_at_ms: i64,
    running_tasks_count: u32,
    task_groups: Vec<&'static str>,
}

impl QueryTarget for Instance {
    fn attribute(&self, name: &str) -> Option<Option<&str>> {
        self.attributes.get(name).copied()
    }
    fn ec2_instance_id(&self) -> Option<&str> {
        self.ec2_instance_id
    }
    fn agent_connected(&self) -> bool {
        self.agent_connected
    }
    fn agent_version(&self) -> Option<&str> {
        self.agent_version
    }
    fn registered_at_ms(&self) -> i64 {
        self.registered_at_ms
    }
    fn running_tasks_count(&self) -> u32 {
        self.running_tasks_count
    }
    fn any_task_group(&self, predicate: &mut dyn FnMut(&str) -> bool) -> bool {
        self.task_groups.iter().any(|group| predicate(group))
    }
}

fn instances() -> [Instance; 2] {
    [
        Instance {
            attributes: BTreeMap::from([
                ("ecs.instance-type", Some("t2.small")),
                ("ecs.availability-zone", Some("us-east-1a")),
                ("ecs.capability.ecr-auth", None),
                ("stack", Some("prod")),
                ("disk-gib", Some("100")),
            ]),
            ec2_instance_id: Some("i-abcd1234"),
            agent_connected: true,
            agent_version: Some("1.14.5"),
            registered_at_ms: 1_518_516_000_000,
            running_tasks_count: 1,
            task_groups: vec!["service:production", "family:web"],
        },
        Instance {
            attributes: BTreeMap::new(),
            ec2_instance_id: None,
            agent_connected: false,
            agent_version: None,
            registered_at_ms: i64::MIN,
            running_tasks_count: u32::MAX,
            task_groups: Vec::new(),
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
