//! ECS JSON 1.1 request bodies: each input is a sequence of calls
//! (`Operation\n<body>`, separated by `\n###\n`) run through `api::Ecs::handle`
//! on a fresh in-memory store, so later calls see what earlier ones created.
//! The first line names the operation; a line that is no ECS operation picks
//! one of all of ECS's operations (supported or not) by its bytes. Errors
//! are answers; a panic is a bug.
#![no_main]

use std::sync::Arc;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| berth_fuzz::on_worker_stack(|| run(data)));

fn run(data: &[u8]) {
    let ecs = api::Ecs::new(Arc::new(store::MemoryStore::new()));
    berth_fuzz::runtime().block_on(async {
        for (index, call) in berth_fuzz::calls(data).into_iter().enumerate() {
            let (name, body) = berth_fuzz::first_line(call);
            let operation = operation(name);
            let ctx = berth_fuzz::request_context(index);
            if let Ok(response) = ecs.handle(&ctx, operation, body).await {
                // Every answer must be a JSON document.
                serde_json::from_slice::<serde_json::Value>(&response)
                    .unwrap_or_else(|e| panic!("{operation} answered non-JSON: {e}"));
            }
        }
    });
}

fn operation(name: &[u8]) -> &'static str {
    let operations = ecs_wire::OPERATIONS;
    if let Some(found) = std::str::from_utf8(name)
        .ok()
        .and_then(ecs_wire::find_operation)
    {
        return found.name;
    }
    let pick = name
        .iter()
        .fold(0usize, |sum, &byte| sum.wrapping_add(usize::from(byte)));
    operations[pick % operations.len()].name
}
