//! ELBv2's query protocol: each input is a sequence of form bodies
//! (separated by `\n###\n`) run through `elbv2::Elbv2::handle` on a fresh
//! in-memory store, so later calls see what earlier ones created. Every
//! answer must be XML; errors are answers; a panic is a bug.
#![no_main]

use std::sync::Arc;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| berth_fuzz::on_worker_stack(|| run(data)));

fn run(data: &[u8]) {
    let elbv2 = elbv2::Elbv2::new(Arc::new(store::MemoryStore::new()));
    berth_fuzz::runtime().block_on(async {
        for (index, body) in berth_fuzz::calls(data).into_iter().enumerate() {
            let ctx = berth_fuzz::request_context(index);
            if let Ok(response) = elbv2.handle(&ctx, body).await {
                assert!(
                    response.starts_with(b"<"),
                    "an answer that is not XML: {:?}",
                    String::from_utf8_lossy(&response)
                );
            }
        }
    });
}
