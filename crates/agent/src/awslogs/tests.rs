use std::collections::BTreeMap;

use super::*;

fn options(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

const BASE: &[(&str, &str)] = &[
    ("awslogs-group", "/ecs/web"),
    ("awslogs-region", "us-east-1"),
];

fn with_base(extra: &[(&str, &str)]) -> BTreeMap<String, String> {
    let mut all = options(BASE);
    all.extend(options(extra));
    all
}

#[test]
fn options_are_validated_as_docker_validates_them() {
    fn check(options: BTreeMap<String, String>, expected: Result<AwsLogsConfig, OptionsError>) {
        assert_eq!(parse_options(&options), expected, "{options:?}");
    }
    let base = AwsLogsConfig {
        group: "/ecs/web".into(),
        region: "us-east-1".into(),
        stream_prefix: None,
        create_group: false,
        multiline_pattern: None,
        mode: DeliveryMode::Blocking,
    };
    let invalid = |m: &str| Err(OptionsError::Invalid(m.to_string()));
    check(with_base(&[]), Ok(base.clone()));
    check(
        with_base(&[
            ("awslogs-stream-prefix", "ecs"),
            ("awslogs-create-group", "true"),
            ("awslogs-multiline-pattern", "^INFO"),
            ("mode", "non-blocking"),
            ("max-buffer-size", "4m"),
        ]),
        Ok(AwsLogsConfig {
            stream_prefix: Some("ecs".into()),
            create_group: true,
            multiline_pattern: Some("^INFO".into()),
            mode: DeliveryMode::NonBlocking {
                max_buffer_size_bytes: 4 << 20,
            },
            ..base.clone()
        }),
    );
    check(
        with_base(&[("mode", "non-blocking")]),
        Ok(AwsLogsConfig {
            mode: DeliveryMode::NonBlocking {
                max_buffer_size_bytes: DEFAULT_MAX_BUFFER_SIZE_BYTES,
            },
            ..base.clone()
        }),
    );
    check(
        with_base(&[("awslogs-datetime-format", "%Y-%m-%d")]),
        Ok(AwsLogsConfig {
            multiline_pattern: Some(r"\d{4}-(?:0[1-9]|1[0-2])-(?:0[1-9]|[1,2][0-9]|3[0,1])".into()),
            ..base.clone()
        }),
    );
    check(
        with_base(&[("awslogs-create-group", "False")]),
        Ok(base.clone()),
    );
    check(
        options(&[("awslogs-region", "us-east-1")]),
        invalid("must specify a value for log opt 'awslogs-group'"),
    );
    check(
        options(&[("awslogs-group", "g")]),
        invalid("must specify a value for log opt 'awslogs-region' (the region of the log group, e.g. us-east-1)"),
    );
    check(
        with_base(&[("awslogs-group-name", "x")]),
        invalid("unknown log opt 'awslogs-group-name' for awslogs log driver"),
    );
    check(
        with_base(&[("max-size", "10m")]),
        invalid("unknown log opt 'max-size' for awslogs log driver"),
    );
    check(
        with_base(&[("awslogs-create-group", "yes")]),
        invalid("must specify valid value for log opt 'awslogs-create-group': strconv.ParseBool: parsing \"yes\": invalid syntax"),
    );
    check(
        with_base(&[
            ("awslogs-datetime-format", "%Y"),
            ("awslogs-multiline-pattern", "^x"),
        ]),
        invalid("you cannot configure log opt 'awslogs-datetime-format' and 'awslogs-multiline-pattern' at the same time"),
    );
    check(
        with_base(&[("max-buffer-size", "4m")]),
        invalid("logger: max-buffer-size option is only supported with 'mode=non-blocking'"),
    );
    check(
        with_base(&[("mode", "blocking"), ("max-buffer-size", "4m")]),
        invalid("logger: max-buffer-size option is only supported with 'mode=non-blocking'"),
    );
    check(
        with_base(&[("mode", "sometimes")]),
        invalid("logger: logging mode not supported: sometimes (use 'blocking' or 'non-blocking')"),
    );
    check(
        with_base(&[("mode", "non-blocking"), ("max-buffer-size", "lots")]),
        invalid("invalid value for log opt 'max-buffer-size': \"lots\"; give a size such as 4m, 25m or 1g"),
    );
    for unsupported in ["awslogs-endpoint", "awslogs-stream", "tag"] {
        let result = parse_options(&with_base(&[(unsupported, "x")]));
        assert!(
            matches!(&result, Err(OptionsError::Unsupported(m)) if m.contains(unsupported)),
            "{unsupported}: {result:?}"
        );
    }
    let Err(OptionsError::Invalid(message)) =
        parse_options(&with_base(&[("awslogs-multiline-pattern", "(unclosed")]))
    else {
        panic!("a bad pattern is refused");
    };
    assert!(
        message.starts_with("awslogs could not parse multiline pattern key \"(unclosed\": "),
        "{message}"
    );
}

#[test]
fn strftime_becomes_dockers_regex() {
    fn check(format: &str, matching: &[&str], not_matching: &[&str]) {
        let regex = regex::Regex::new(&strftime_to_regex(format).unwrap()).unwrap();
        for line in matching {
            assert!(regex.is_match(line), "{format} should match {line:?}");
        }
        for line in not_matching {
            assert!(!regex.is_match(line), "{format} should not match {line:?}");
        }
    }
    check(
        "%Y-%m-%dT%H:%M:%S%L%z",
        &["2024-02-29T23:59:01.123+0100 boom"],
        &["2024-13-01T00:00:00.000+0000", "   at Foo.bar()"],
    );
    check(
        "%a %b %d %I:%M %p",
        &["Mon Jan 01 12:30 PM x"],
        &["Mon Jan 01 13:30 PM"],
    );
    check(
        "%A, %B %j",
        &["Friday, December 366"],
        &["Friday, December 367"],
    );
    check("%y/%U/%W/%w %Z", &["24/53/00/6 UTC"], &["24/54/00/6 UTC"]);
    check("%f 100%%", &["123456 100%"], &["12345 100%"]);
    check("^%H:%M", &["09:15 started"], &["at 09:15"]);
    // Docker matches anywhere in the line unless the format anchors it.
    check("%H:%M:%S", &["[main] 09:15:00 started"], &["09:15"]);
    assert!(strftime_to_regex("%Q").unwrap_err().contains("'%Q'"));
    assert!(strftime_to_regex("100%").unwrap_err().contains("lone '%'"));
}

#[test]
fn buffer_sizes_read_as_docker_reads_them() {
    fn check(text: &str, expected: Option<u64>) {
        assert_eq!(parse_buffer_size(text).ok(), expected, "{text}");
    }
    check("4m", Some(4 << 20));
    check("25m", Some(25 << 20));
    check("25MiB", Some(25 << 20));
    check("1g", Some(1 << 30));
    check("512k", Some(512 << 10));
    check("1.5k", Some(1536));
    check("1048576", Some(1_048_576));
    check("100b", Some(100));
    check("2 MB", Some(2 << 20));
    check("", None);
    check("m", None);
    check("0", None);
    check("-1m", None);
    check("4x", None);
}

#[test]
fn streams_are_named_as_ecs_names_them() {
    let mut config = parse_options(&with_base(&[("awslogs-stream-prefix", "ecs")])).unwrap();
    let task_arn = "arn:aws:ecs:us-east-1:000000000000:task/default/0123456789abcdef";
    let docker_id = "a".repeat(64);
    assert_eq!(
        stream_name(&config, "web", task_arn, &docker_id),
        "ecs/web/0123456789abcdef"
    );
    config.stream_prefix = None;
    assert_eq!(stream_name(&config, "web", task_arn, &docker_id), docker_id);
}

#[test]
fn positions_encode_timestamp_index_and_piece() {
    let position = Position::new(1_700_000_000_123_456_789, 3, 2);
    assert_eq!(
        position.0,
        (1_700_000_000_123_456_789u128 << 32) | (3 << 4) | 2
    );
    assert_eq!(position.timestamp_ns(), 1_700_000_000_123_456_789);
    assert_eq!(position.piece(), 2);
    assert_eq!(
        position.line(),
        Position::new(1_700_000_000_123_456_789, 3, 0)
    );
    assert_eq!(Position::parse(&position.to_cursor()), Some(position));
    assert_eq!(Position::parse("x"), None);
    assert_eq!(
        position.resume_since_ns(),
        1_700_000_000_123_456_789 - RESUME_SLACK_NS
    );
    assert!(Position::new(10, 0, 0) > Position::new(9, 1000, 15));
}

/// Timestamps → (placed timestamp, index, delivered-through) or None (skipped).
fn place_all(after: Option<Position>, timestamps: &[i64]) -> Vec<Option<(i64, u128, Option<u8>)>> {
    let mut positions = LinePositions::new(after);
    timestamps
        .iter()
        .map(|ts| {
            positions.place(*ts).map(|placed| {
                (
                    placed.timestamp_ns,
                    (placed.position.0 >> 4) & 0x0fff_ffff,
                    placed.delivered_pieces_through,
                )
            })
        })
        .collect()
}

#[test]
fn lines_get_positions_that_only_grow() {
    fn check(
        after: Option<Position>,
        timestamps: &[i64],
        expected: &[Option<(i64, u128, Option<u8>)>],
    ) {
        assert_eq!(
            place_all(after, timestamps),
            expected,
            "{after:?} {timestamps:?}"
        );
    }
    check(
        None,
        &[10, 10, 11, 11, 11, 12],
        &[
            Some((10, 0, None)),
            Some((10, 1, None)),
            Some((11, 0, None)),
            Some((11, 1, None)),
            Some((11, 2, None)),
            Some((12, 0, None)),
        ],
    );
    // A line stamped before its predecessor (stderr vs stdout copiers) takes
    // the predecessor's timestamp.
    check(
        None,
        &[20, 19, 21],
        &[
            Some((20, 0, None)),
            Some((20, 1, None)),
            Some((21, 0, None)),
        ],
    );
    // Resuming after (11, index 1): earlier lines are skipped, the cursor's
    // own line is reported as delivered, later ones are new.
    check(
        Some(Position::new(11, 1, 0)),
        &[10, 10, 11, 11, 11, 12],
        &[
            None,
            None,
            None,
            Some((11, 1, Some(0))),
            Some((11, 2, None)),
            Some((12, 0, None)),
        ],
    );
}

#[test]
fn a_resumed_read_places_lines_exactly_as_the_first_read_did() {
    // However the log is cut, skipping up to any cursor then resuming from
    // resume_since_ns gives each remaining line the position it had.
    let timestamps: Vec<i64> = [
        0i64,
        0,
        1,
        1,
        1,
        3,
        2,
        3,
        4,
        4,
        6_000_000_000,
        6_000_000_000,
    ]
    .iter()
    .map(|t| 1_000_000_000_000 + t)
    .collect();
    let mut first = LinePositions::new(None);
    let placed: Vec<PlacedLine> = timestamps
        .iter()
        .map(|t| first.place(*t).unwrap())
        .collect();
    for (cut, cursor) in placed.iter().enumerate() {
        let since = cursor.position.resume_since_ns();
        let mut resumed = LinePositions::new(Some(cursor.position));
        let again: Vec<Position> = timestamps
            .iter()
            .filter(|t| **t >= since)
            .filter_map(|t| resumed.place(*t))
            .filter(|p| p.delivered_pieces_through.is_none())
            .map(|p| p.position)
            .collect();
        let expected: Vec<Position> = placed[cut + 1..].iter().map(|p| p.position).collect();
        assert_eq!(again, expected, "cut after line {cut}");
    }
}

fn placed(timestamp_ns: i64, index: u32) -> PlacedLine {
    PlacedLine {
        position: Position::new(timestamp_ns, index, 0),
        timestamp_ns,
        delivered_pieces_through: None,
    }
}

/// (message, timestamp ms) of events.
fn messages(events: &[Event]) -> Vec<(String, i64)> {
    events
        .iter()
        .map(|e| (e.message.clone(), e.timestamp_ms))
        .collect()
}

#[test]
fn lines_become_events() {
    /// Lines (text, timestamp ms) pushed one by one, then the stream ends.
    fn check(pattern: Option<&str>, lines: &[(&str, i64)], expected: &[(&str, i64)]) {
        let mut assembler = Assembler::new(pattern.map(|p| regex::Regex::new(p).unwrap()));
        let mut events = Vec::new();
        for (index, (text, ms)) in lines.iter().enumerate() {
            events.extend(assembler.push(
                text.as_bytes(),
                placed(ms * 1_000_000 + 7, index as u32),
                0,
            ));
        }
        events.extend(assembler.finish());
        let expected: Vec<(String, i64)> =
            expected.iter().map(|(m, t)| (m.to_string(), *t)).collect();
        assert_eq!(messages(&events), expected, "{pattern:?} {lines:?}");
    }
    check(
        None,
        &[("one", 1), ("", 2), ("three\r", 3)],
        &[("one", 1), ("three\r", 3)],
    );
    check(
        Some("^[0-9]{4}-"),
        &[
            ("2024-01-01 Exception", 10),
            ("  at a()", 11),
            ("", 12),
            ("  at b()", 13),
            ("2024-01-01 next", 20),
        ],
        &[
            ("2024-01-01 Exception\n  at a()\n\n  at b()\n", 10),
            ("2024-01-01 next\n", 20),
        ],
    );
    // Lines before the first start line form an event of their own.
    check(
        Some("^START"),
        &[("orphan", 1), ("START x", 2), ("more", 3)],
        &[("orphan\n", 1), ("START x\nmore\n", 2)],
    );
    // Invalid UTF-8 is replaced, as Docker's JSON encoding does.
    check(None, &[("caf\u{e9}", 1)], &[("caf\u{e9}", 1)]);
}

#[test]
fn invalid_utf8_is_replaced() {
    let mut assembler = Assembler::new(None);
    let events = assembler.push(b"a\xffb", placed(1_000_000, 0), 0);
    assert_eq!(events[0].message, "a\u{fffd}b");
}

#[test]
fn long_lines_are_split_into_pieces_with_their_own_positions() {
    let line = "é".repeat(MAX_EVENT_MESSAGE_BYTES); // 2 bytes each
    let mut assembler = Assembler::new(None);
    let events = assembler.push(line.as_bytes(), placed(5_000_000, 0), 0);
    assert_eq!(events.len(), 2);
    assert!(events
        .iter()
        .all(|e| e.message.len() <= MAX_EVENT_MESSAGE_BYTES));
    assert_eq!(events[0].message.len(), MAX_EVENT_MESSAGE_BYTES);
    assert_eq!(
        events
            .iter()
            .map(|e| e.message.as_str())
            .collect::<String>(),
        line
    );
    assert_eq!(events[0].position, Position::new(5_000_000, 0, 0));
    assert_eq!(events[1].position, Position::new(5_000_000, 0, 1));
    assert_eq!((events[0].lines, events[1].lines), (0, 1));
    // Resuming with piece 0 delivered: only piece 1 comes again.
    let mut resumed = Assembler::new(None);
    let mut positions = LinePositions::new(Some(events[0].position));
    let again = resumed.push(line.as_bytes(), positions.place(5_000_000).unwrap(), 0);
    assert_eq!(again, vec![events[1].clone()]);
}

#[test]
fn multiline_events_never_exceed_the_event_size() {
    let mut assembler = Assembler::new(Some(regex::Regex::new("^START").unwrap()));
    let half = "x".repeat(MAX_EVENT_MESSAGE_BYTES / 2);
    let mut events = Vec::new();
    for index in 0..3 {
        events.extend(assembler.push(half.as_bytes(), placed(1_000_000, index), 0));
    }
    events.extend(assembler.finish());
    assert_eq!(events.len(), 3);
    assert!(events
        .iter()
        .all(|e| e.message.len() <= MAX_EVENT_MESSAGE_BYTES));
}

#[test]
fn a_pending_multiline_event_is_flushed_when_idle() {
    let mut assembler = Assembler::new(Some(regex::Regex::new("^START").unwrap()));
    assert!(assembler
        .push(b"START", placed(1_000_000, 0), 100)
        .is_empty());
    assert!(assembler
        .push(b"more", placed(2_000_000, 0), 600)
        .is_empty());
    assert!(
        assembler.flush_idle(1_500, 1_000).is_empty(),
        "not idle long enough"
    );
    let flushed = assembler.flush_idle(1_600, 1_000);
    assert_eq!(messages(&flushed), vec![("START\nmore\n".to_string(), 1)]);
    assert_eq!(flushed[0].position, Position::new(2_000_000, 0, 0));
    assert_eq!(flushed[0].lines, 2);
    assert!(!assembler.has_pending());
}

fn event(ms: i64, size: usize, index: u32) -> Event {
    Event {
        timestamp_ms: ms,
        message: "m".repeat(size),
        position: Position::new(ms * 1_000_000, index, 0),
        lines: 1,
    }
}

#[test]
fn batches_keep_put_log_events_limits() {
    /// Events (ms, size) → sizes of the batches cut.
    fn check(events: &[(i64, usize)], expected: &[usize]) {
        let mut outbox = Outbox::default();
        for (index, (ms, size)) in events.iter().enumerate() {
            outbox.push(event(*ms, *size, index as u32));
        }
        let mut batches = Vec::new();
        let mut last_cursor = None;
        while let Some(batch) = outbox.take_batch() {
            assert!(Some(batch.cursor) > last_cursor, "cursors grow");
            last_cursor = Some(batch.cursor);
            batches.push(batch.events.len());
        }
        assert_eq!(batches, expected);
        assert_eq!(outbox.bytes(), 0);
    }
    check(&[], &[]);
    check(&[(1, 10), (2, 10)], &[2]);
    let many: Vec<(i64, usize)> = (0..10_001).map(|i| (i, 1)).collect();
    check(&many, &[10_000, 1]);
    // 4 events of 262,118 bytes (+26 each) fill 1,048,576 exactly.
    let big: Vec<(i64, usize)> = (0..5).map(|i| (i, MAX_EVENT_MESSAGE_BYTES)).collect();
    check(&big, &[4, 1]);
    check(
        &[(0, 1), (MAX_BATCH_SPAN_MS, 1), (MAX_BATCH_SPAN_MS + 1, 1)],
        &[2, 1],
    );
}

#[test]
fn the_cursor_is_the_last_events_position() {
    let mut outbox = Outbox::default();
    outbox.push(event(1, 3, 0));
    outbox.push(event(2, 3, 0));
    let batch = outbox.take_batch().unwrap();
    assert_eq!(batch.cursor, Position::new(2_000_000, 0, 0));
    assert_eq!(
        batch.events,
        vec![
            AgentLogEvent {
                timestamp: 1,
                message: "mmm".into()
            },
            AgentLogEvent {
                timestamp: 2,
                message: "mmm".into()
            }
        ]
    );
    assert!(outbox.is_empty());
}

#[test]
fn a_full_non_blocking_buffer_drops_the_oldest_lines_behind_a_marker() {
    let mut outbox = Outbox::default();
    for index in 0..5 {
        outbox.push_bounded(event(10 + index, 100, 0), 1_000);
    }
    assert_eq!(outbox.len(), 5, "500 bytes fit");
    for index in 5..20 {
        outbox.push_bounded(event(10 + index, 100, 0), 1_000);
    }
    assert!(outbox.bytes() <= 1_000, "{}", outbox.bytes());
    let batch = outbox.take_batch().unwrap();
    let marker = &batch.events[0];
    let kept = batch.events.len() - 1;
    let dropped = 20 - kept;
    assert_eq!(
        marker.message,
        format!(
            "[berth] {dropped} log lines ({} bytes) were dropped here: the container wrote faster \
             than its output could be delivered, and mode non-blocking keeps at most \
             max-buffer-size (1000 bytes) waiting",
            dropped * 100
        )
    );
    assert_eq!(marker.timestamp, 10, "where the first dropped line was");
    assert_eq!(batch.events[1].timestamp, 10 + dropped as i64);
    assert_eq!(
        batch.events.last().unwrap().timestamp,
        29,
        "the newest is kept"
    );
    // Later drops make a new marker.
    for index in 0..30 {
        outbox.push_bounded(event(40 + index, 100, 0), 1_000);
    }
    let batch = outbox.take_batch().unwrap();
    assert!(batch.events[0].message.starts_with("[berth] "));
    assert_eq!(batch.events.last().unwrap().timestamp, 69);
}
