//! `berth bench logs`: CloudWatch Logs figures over real HTTP with real
//! SigV4 signatures, against an in-process server whose log events are in
//! segment files (durable: every acknowledged PutLogEvents was fsynced).
//!
//! 1. Ingest: `--clients` clients, each with its own stream and one
//!    keep-alive connection, send full PutLogEvents batches (10,000 events,
//!    1,040,000 bytes as CloudWatch counts them) until `--events` are
//!    stored: events/s and MB/s of messages, batch latency.
//! 2. Reads over what was stored: FilterLogEvents across every stream with
//!    a selective pattern (one event per batch matches), and GetLogEvents
//!    pages bounded to one second in the middle of a stream.
//! 3. Bytes on disk per stored message byte.
//! 4. With `--container-latency`: a container's write → GetLogEvents
//!    latency (`bench_logs_container`).

use std::sync::Arc;

use anyhow::{bail, Context as _, Result};
use serde_json::{json, Value};

use crate::bench_support::{micros, percentile, start_in_process, Client, InProcessOptions, LOGS};
use crate::clock;

/// Events per PutLogEvents batch (CloudWatch's maximum).
const BATCH_EVENTS: usize = 10_000;
/// Message bytes per event: 10,000 × (78 + 26) = 1,040,000 bytes per batch,
/// just under CloudWatch's 1,048,576.
const MESSAGE_BYTES: usize = 78;
/// Events stored per millisecond of event time in each stream.
const EVENTS_PER_MS: i64 = 100;
const GROUP: &str = "/berth/bench";

#[derive(clap::Args)]
pub struct LogsBenchArgs {
    /// Concurrent ingest clients, each writing its own stream.
    #[arg(long, default_value_t = 16)]
    clients: usize,
    /// Events to ingest (and then read over).
    #[arg(long, default_value_t = 10_000_000)]
    events: u64,
    /// GetLogEvents pages to time.
    #[arg(long, default_value_t = 200)]
    pages: usize,
    /// Also measure a container's write → GetLogEvents latency (a real
    /// `berth agent` and a container on the local Docker Engine).
    #[arg(long)]
    container_latency: bool,
    /// Lines the container writes for the latency phase.
    #[arg(long, default_value_t = 500)]
    lines: usize,
    #[arg(long, default_value = crate::DEFAULT_REGION)]
    region: String,
}

pub async fn run(args: LogsBenchArgs) -> Result<()> {
    if args.clients == 0 || args.events == 0 {
        bail!("--clients and --events must be at least 1");
    }
    let (target, server) = start_in_process(
        &args.region,
        InProcessOptions {
            agent_sessions: args.container_latency,
            logs: true,
        },
    )
    .await?;
    let target = Arc::new(target);
    let log_events = server
        .log_events
        .clone()
        .context("the in-process server has no log store")?;
    println!(
        "berth bench logs: {} clients, {} events in full batches ({BATCH_EVENTS} events, {} bytes each)",
        args.clients,
        args.events,
        BATCH_EVENTS * (MESSAGE_BYTES + 26)
    );
    let mut setup = Client::new(Arc::clone(&target));
    setup
        .call_ok_to(LOGS, "CreateLogGroup", &json!({"logGroupName": GROUP}))
        .await?;
    for client in 0..args.clients {
        setup
            .call_ok_to(
                LOGS,
                "CreateLogStream",
                &json!({"logGroupName": GROUP, "logStreamName": stream_name(client)}),
            )
            .await?;
    }

    // 1. Ingest.
    let base_ms = clock::now_ms() - 60 * 60 * 1000;
    let batches_total = args.events.div_ceil(BATCH_EVENTS as u64);
    let next_batch = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let started = clock::monotonic_now();
    let mut workers = tokio::task::JoinSet::new();
    for client in 0..args.clients {
        let target = Arc::clone(&target);
        let next_batch = Arc::clone(&next_batch);
        workers.spawn(async move {
            let mut http = Client::new(target);
            let mut latencies_us = Vec::new();
            let mut batch_in_stream: i64 = 0;
            loop {
                let batch = next_batch.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if batch >= batches_total {
                    break;
                }
                let body = batch_body(client, batch, batch_in_stream, base_ms);
                batch_in_stream += 1;
                let sent = clock::monotonic_now();
                let (status, response) = http.call_bytes(LOGS, "PutLogEvents", body).await?;
                if !status.is_success() {
                    bail!(
                        "PutLogEvents: HTTP {status}: {}",
                        crate::bench_support::excerpt(&response)
                    );
                }
                latencies_us.push(micros(sent.elapsed()));
            }
            Ok::<_, anyhow::Error>((latencies_us, batch_in_stream))
        });
    }
    let mut latencies_us = Vec::new();
    let mut batches_per_stream = vec![0i64; args.clients];
    let mut index = 0;
    while let Some(joined) = workers.join_next().await {
        let (latencies, batches) = joined.context("an ingest client panicked")??;
        latencies_us.extend(latencies);
        batches_per_stream[index] = batches;
        index += 1;
    }
    let elapsed = started.elapsed().as_secs_f64();
    latencies_us.sort_unstable();
    let events = batches_total * BATCH_EVENTS as u64;
    println!(
        "ingest: {events} events in {elapsed:.1} s = {:.0} events/s, {:.1} MB/s of messages; batch latency p50 {:.1} ms, p99 {:.1} ms",
        events as f64 / elapsed,
        (events as f64 * MESSAGE_BYTES as f64) / elapsed / 1e6,
        percentile(&latencies_us, 0.50) as f64 / 1000.0,
        percentile(&latencies_us, 0.99) as f64 / 1000.0,
    );

    // 2. Reads.
    let mut reader = Client::new(Arc::clone(&target));
    let started = clock::monotonic_now();
    let mut matched = 0usize;
    let mut calls = 0usize;
    let mut token: Option<String> = None;
    loop {
        let mut request = json!({"logGroupName": GROUP, "filterPattern": "needle"});
        if let Some(token) = &token {
            request["nextToken"] = json!(token);
        }
        let page = reader.call_ok_to(LOGS, "FilterLogEvents", &request).await?;
        calls += 1;
        matched += page["events"].as_array().map_or(0, Vec::len);
        match page["nextToken"].as_str() {
            Some(next) => token = Some(next.to_string()),
            None => break,
        }
    }
    println!(
        "FilterLogEvents over {events} events, pattern \"needle\" ({matched} matches, {calls} calls): {:.2} s",
        started.elapsed().as_secs_f64()
    );
    let longest = batches_per_stream.iter().copied().max().unwrap_or(0);
    let span_ms = longest * BATCH_EVENTS as i64 / EVENTS_PER_MS;
    let mut page_us = Vec::new();
    let mut returned = 0usize;
    for page in 0..args.pages {
        let client = page % args.clients;
        let start = base_ms + (span_ms / 4) + (page as i64 * 37) % (span_ms / 2).max(1);
        let sent = clock::monotonic_now();
        let response = reader
            .call_ok_to(
                LOGS,
                "GetLogEvents",
                &json!({"logGroupName": GROUP, "logStreamName": stream_name(client),
                "startTime": start, "endTime": start + 1000, "startFromHead": true, "limit": 100}),
            )
            .await?;
        page_us.push(micros(sent.elapsed()));
        returned += response["events"].as_array().map_or(0, Vec::len);
    }
    page_us.sort_unstable();
    println!(
        "GetLogEvents, 1 s window, limit 100 ({} pages, {:.0} events each): p50 {:.2} ms, p99 {:.2} ms",
        args.pages,
        returned as f64 / args.pages.max(1) as f64,
        percentile(&page_us, 0.50) as f64 / 1000.0,
        percentile(&page_us, 0.99) as f64 / 1000.0,
    );

    // 3. Space.
    let disk = {
        let events = Arc::clone(&log_events);
        tokio::task::spawn_blocking(move || log_store::LogStore::disk_bytes(&*events)).await??
    };
    let message_bytes = events * MESSAGE_BYTES as u64;
    println!(
        "disk: {disk} bytes for {message_bytes} message bytes = {:.2} bytes on disk per stored byte ({:.2} per CloudWatch stored byte, which counts 26 per event)",
        disk as f64 / message_bytes as f64,
        disk as f64 / (events * (MESSAGE_BYTES as u64 + 26)) as f64,
    );

    if args.container_latency {
        crate::bench_logs_container::run(&target, &server, args.lines).await?;
    }
    server.stop().await;
    Ok(())
}

fn stream_name(client: usize) -> String {
    format!("client-{client:02}")
}

/// One full batch for `client`'s stream: timestamps increase within the
/// stream (`EVENTS_PER_MS` per millisecond) and the first event of every
/// batch carries the rare word `needle`.
fn batch_body(client: usize, batch: u64, batch_in_stream: i64, base_ms: i64) -> Vec<u8> {
    let first = batch_in_stream * BATCH_EVENTS as i64;
    let events: Vec<Value> = (0..BATCH_EVENTS)
        .map(|i| {
            let word = if i == 0 { "needle" } else { "hay" };
            let mut message = format!("{word} client={client} batch={batch} event={i} ");
            message.extend(std::iter::repeat_n(
                'x',
                MESSAGE_BYTES.saturating_sub(message.len()),
            ));
            json!({"timestamp": base_ms + (first + i as i64) / EVENTS_PER_MS, "message": message})
        })
        .collect();
    serde_json::to_vec(&json!({
        "logGroupName": GROUP,
        "logStreamName": stream_name(client),
        "logEvents": events,
    }))
    .expect("a batch serializes")
}
