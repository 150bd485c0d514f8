//! Figures for `berth bench logs`: durable append throughput with
//! concurrent writers, page read latency on a large stream, a scan, and
//! reopening. A shell: it reads the clock (only here in this crate).

use std::path::Path;
use std::time::{Duration, Instant};

use crate::segments::SegmentLogStore;
use crate::{Append, Direction, LogStore, LogStoreError, NewEvent, Read, Scan};

/// What to measure.
#[derive(Clone, Copy, Debug)]
pub struct FigureOptions {
    /// Concurrent writers, each on its own stream.
    pub writers: usize,
    /// Batches each writer appends.
    pub batches_per_writer: usize,
    /// Events per batch (CloudWatch allows 10,000).
    pub events_per_batch: usize,
    /// Bytes per message (10,000 × ~100 bytes ≈ 1 MB, CloudWatch's batch limit).
    pub message_bytes: usize,
    /// Events in the stream the read figures use.
    pub read_stream_events: usize,
    /// Reads measured for each read figure.
    pub reads: usize,
}

impl Default for FigureOptions {
    fn default() -> Self {
        Self {
            writers: 16,
            batches_per_writer: 10,
            events_per_batch: 10_000,
            message_bytes: 100,
            read_stream_events: 1_000_000,
            reads: 50,
        }
    }
}

/// Latency summary of repeated operations.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Latency {
    pub p50: Duration,
    pub p99: Duration,
    pub max: Duration,
}

impl Latency {
    fn of(mut samples: Vec<Duration>) -> Self {
        if samples.is_empty() {
            return Self::default();
        }
        samples.sort();
        let at = |q: f64| samples[((samples.len() - 1) as f64 * q).round() as usize];
        Self {
            p50: at(0.5),
            p99: at(0.99),
            max: *samples.last().expect("samples"),
        }
    }
}

/// What was measured.
#[derive(Clone, Debug, Default)]
pub struct Figures {
    pub append_events_per_second: f64,
    pub append_megabytes_per_second: f64,
    pub append_batch: Latency,
    /// A forward, time-bounded page (`start_ms` somewhere in the stream).
    pub read_forward_page: Latency,
    /// A backward page from the stream's end (GetLogEvents' default).
    pub read_backward_page: Latency,
    pub events_per_page: usize,
    /// A scan of every writer stream for a message that matches 1 in 1,000.
    pub scan_events_examined_per_second: f64,
    pub open: Duration,
    pub disk_bytes: u64,
}

impl std::fmt::Display for Figures {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let ms = |d: Duration| d.as_secs_f64() * 1e3;
        writeln!(
            f,
            "append: {:.0} events/s durable, {:.1} MB/s; batch p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
            self.append_events_per_second,
            self.append_megabytes_per_second,
            ms(self.append_batch.p50),
            ms(self.append_batch.p99),
            ms(self.append_batch.max)
        )?;
        for (name, latency) in [
            ("forward page from a start time", self.read_forward_page),
            ("backward page from the end", self.read_backward_page),
        ] {
            writeln!(
                f,
                "read {name} ({} events): p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
                self.events_per_page,
                ms(latency.p50),
                ms(latency.p99),
                ms(latency.max)
            )?;
        }
        writeln!(
            f,
            "scan: {:.0} events examined/s",
            self.scan_events_examined_per_second
        )?;
        write!(
            f,
            "open: {:.0} ms for {:.1} MB on disk",
            ms(self.open),
            self.disk_bytes as f64 / 1e6
        )
    }
}

fn batch(first_ms: i64, count: usize, message_bytes: usize, tag: usize) -> Vec<NewEvent> {
    (0..count)
        .map(|i| {
            let mut message = format!("{tag} {} ", first_ms + i as i64);
            if (first_ms as usize + i).is_multiple_of(1_000) {
                message.push_str("NEEDLE ");
            }
            let pad = message_bytes.saturating_sub(message.len());
            message.extend(std::iter::repeat_n('x', pad));
            NewEvent {
                timestamp_ms: first_ms + i as i64,
                message,
            }
        })
        .collect()
}

/// Runs the figures in `dir` (which should be empty; it is filled).
#[allow(clippy::disallowed_methods)] // a benchmark reads the clock
pub fn measure(dir: &Path, options: FigureOptions) -> Result<Figures, LogStoreError> {
    let store = SegmentLogStore::open(dir)?;
    let mut figures = Figures::default();

    // Concurrent durable appends, one stream per writer.
    let started = Instant::now();
    let latencies = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..options.writers)
            .map(|writer| {
                let store = &store;
                scope.spawn(move || -> Result<Vec<Duration>, LogStoreError> {
                    let stream = format!("writer-{writer}");
                    let mut latencies = Vec::new();
                    for b in 0..options.batches_per_writer {
                        let events = batch(
                            (b * options.events_per_batch) as i64,
                            options.events_per_batch,
                            options.message_bytes,
                            writer,
                        );
                        let one = Instant::now();
                        store.append(
                            &stream,
                            Append {
                                events: &events,
                                ingestion_time_ms: b as i64,
                                producer_cursor: None,
                            },
                        )?;
                        latencies.push(one.elapsed());
                    }
                    Ok(latencies)
                })
            })
            .collect();
        let mut all = Vec::new();
        for handle in handles {
            all.extend(handle.join().expect("writer thread")?);
        }
        Ok::<_, LogStoreError>(all)
    })?;
    let elapsed = started.elapsed().as_secs_f64();
    let events = (options.writers * options.batches_per_writer * options.events_per_batch) as f64;
    figures.append_events_per_second = events / elapsed;
    figures.append_megabytes_per_second = events * options.message_bytes as f64 / elapsed / 1e6;
    figures.append_batch = Latency::of(latencies);

    // A large stream, then pages of it.
    let mut written = 0;
    while written < options.read_stream_events {
        let count = options
            .events_per_batch
            .min(options.read_stream_events - written);
        let events = batch(written as i64, count, options.message_bytes, 0);
        store.append(
            "large",
            Append {
                events: &events,
                ingestion_time_ms: 0,
                producer_cursor: None,
            },
        )?;
        written += count;
    }
    let page_read = Read {
        start_ms: None,
        end_ms: None,
        direction: Direction::Forward,
        after: None,
        limit_events: 10_000,
        limit_bytes: 1_048_576,
    };
    let mut forward = Vec::new();
    let mut backward = Vec::new();
    for r in 0..options.reads {
        // Start times spread over the stream, deterministically.
        let start_ms = ((r * 7_919 * 997) % options.read_stream_events.max(1)) as i64;
        let one = Instant::now();
        let page = store.read(
            "large",
            Read {
                start_ms: Some(start_ms),
                ..page_read
            },
        )?;
        forward.push(one.elapsed());
        figures.events_per_page = figures.events_per_page.max(page.events.len());
        let one = Instant::now();
        store.read(
            "large",
            Read {
                direction: Direction::Backward,
                ..page_read
            },
        )?;
        backward.push(one.elapsed());
    }
    figures.read_forward_page = Latency::of(forward);
    figures.read_backward_page = Latency::of(backward);

    // A scan for a rare message across the writers' streams.
    let names: Vec<String> = (0..options.writers)
        .map(|w| format!("writer-{w}"))
        .collect();
    let streams: Vec<&str> = names.iter().map(String::as_str).collect();
    let needle = |message: &str| message.contains("NEEDLE");
    let started = Instant::now();
    let mut examined = 0;
    let mut after = None;
    loop {
        let page = store.scan(Scan {
            streams: &streams,
            start_ms: None,
            end_ms: None,
            after,
            matches: &needle,
            limit_events: 10_000,
            limit_bytes: 1_048_576,
        })?;
        examined += page.examined;
        match page.resume_after {
            Some(resume) => after = Some(resume),
            None => break,
        }
    }
    figures.scan_events_examined_per_second = examined as f64 / started.elapsed().as_secs_f64();

    figures.disk_bytes = store.disk_bytes()?;
    drop(store);
    let started = Instant::now();
    let reopened = SegmentLogStore::open(dir)?;
    figures.open = started.elapsed();
    drop(reopened);
    Ok(figures)
}
