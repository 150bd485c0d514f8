//! Data-driven tests: every query runs over its events offered forwards and
//! backwards, and both runs must give the expected rows.

use super::{parse, Event, Output, QueryError};

/// 2024-01-01 00:00:00 UTC.
const T0: i64 = 1_704_067_200_000;

/// An event `secs` seconds after T0 in stream `s1` (or the stream given).
#[derive(Clone)]
struct E {
    secs: f64,
    msg: String,
    stream: &'static str,
}

fn e(secs: f64, msg: &str) -> E {
    E {
        secs,
        msg: msg.to_string(),
        stream: "s1",
    }
}

fn es(secs: f64, stream: &'static str, msg: &str) -> E {
    E {
        secs,
        msg: msg.to_string(),
        stream,
    }
}

fn ts(secs: f64) -> i64 {
    T0 + (secs * 1000.0) as i64
}

/// Runs `query`, offering `events` in the given order; each event's `@ptr`
/// is `p<index>`.
fn run_in(query: &str, events: &[E], reverse: bool) -> Output {
    let q = parse(query).unwrap_or_else(|e| panic!("{query}: {e}"));
    let mut run = q.run();
    let ptrs: Vec<String> = (0..events.len()).map(|i| format!("p{i}")).collect();
    let mut order: Vec<usize> = (0..events.len()).collect();
    if reverse {
        order.reverse();
    }
    for i in order {
        let ev = &events[i];
        run.offer(&Event {
            timestamp_ms: ts(ev.secs),
            ingestion_time_ms: ts(ev.secs) + 500,
            message: &ev.msg,
            log_stream: ev.stream,
            log: "123456789012:app",
            ptr: &ptrs[i],
        });
    }
    run.finish()
}

fn run(query: &str, events: &[E]) -> Output {
    let forward = run_in(query, events, false);
    let backward = run_in(query, events, true);
    assert_eq!(forward, backward, "{query}: result depends on event order");
    forward
}

fn check(query: &str, events: &[E], expected: &[&[(&str, &str)]]) {
    let out = run(query, events);
    let expected: Vec<Vec<(String, String)>> = expected
        .iter()
        .map(|r| {
            r.iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        })
        .collect();
    assert_eq!(out.rows, expected, "query: {query}");
}

/// Only the values of field `f`, row by row.
fn column(query: &str, events: &[E], f: &str) -> Vec<String> {
    run(query, events)
        .rows
        .into_iter()
        .map(|r| {
            r.into_iter()
                .find(|(k, _)| k == f)
                .map_or_else(|| "<none>".to_string(), |(_, v)| v)
        })
        .collect()
}

fn err(query: &str) -> QueryError {
    match parse(query) {
        Ok(_) => panic!("{query}: expected an error"),
        Err(e) => e,
    }
}

fn json_events() -> Vec<E> {
    vec![
        e(
            1.0,
            r#"{"status": 200, "method": "GET", "bytes": 100, "user": "ann"}"#,
        ),
        e(
            2.0,
            r#"{"status": 404, "method": "GET", "bytes": 50, "user": "bob"}"#,
        ),
        e(
            3.0,
            r#"{"status": 500, "method": "POST", "bytes": 250, "user": "ann"}"#,
        ),
        e(
            4.0,
            r#"{"status": 200, "method": "POST", "bytes": 25, "user": "cy"}"#,
        ),
        e(5.0, "plain text line"),
    ]
}

// ---- default shape, @ptr, limits -------------------------------------------

#[test]
fn no_fields_gives_timestamp_message_and_ptr_newest_first() {
    check(
        "filter @message like 'b'",
        &[e(0.0, "a"), e(1.0, "b1"), e(2.5, "b2")],
        &[
            &[
                ("@timestamp", "2024-01-01 00:00:02.500"),
                ("@message", "b2"),
                ("@ptr", "p2"),
            ],
            &[
                ("@timestamp", "2024-01-01 00:00:01.000"),
                ("@message", "b1"),
                ("@ptr", "p1"),
            ],
        ],
    );
}

#[test]
fn explicit_ptr_is_not_repeated() {
    check(
        "fields @ptr, @message",
        &[e(0.0, "x")],
        &[&[("@ptr", "p0"), ("@message", "x")]],
    );
}

#[test]
fn limit_keeps_the_newest() {
    let events: Vec<E> = (0..10).map(|i| e(i as f64, &format!("m{i}"))).collect();
    assert_eq!(
        column("fields @message | limit 3", &events, "@message"),
        ["m9", "m8", "m7"]
    );
}

#[test]
fn default_limit_is_10000() {
    let events: Vec<E> = (0..10_005).map(|i| e(i as f64, "x")).collect();
    let out = run("fields @message", &events);
    assert_eq!(out.rows.len(), 10_000);
    assert_eq!(out.records_matched, 10_005.0);
    let out = run("stats count(*) by @timestamp", &events);
    assert_eq!(out.rows.len(), 10_000);
}

#[test]
fn statistics_count_scanned_matched_and_bytes() {
    let out = run(
        "filter @message like 'b' | stats count(*)",
        &[e(0.0, "abc"), e(1.0, "xyz"), e(2.0, "b")],
    );
    assert_eq!(out.records_scanned, 3.0);
    assert_eq!(out.records_matched, 2.0);
    assert_eq!(out.bytes_scanned, 7.0);
    assert_eq!(
        out.rows,
        vec![vec![("count(*)".to_string(), "2".to_string())]]
    );
}

#[test]
fn no_events_no_rows() {
    check("stats count(*)", &[], &[]);
    check("fields @message", &[], &[]);
}

// ---- fields, display, system fields ----------------------------------------

#[test]
fn fields_with_aliases_and_expressions() {
    check(
        "fields @timestamp, strlen(@message) as len, toupper(@message)",
        &[e(0.0, "abc")],
        &[&[
            ("@timestamp", "2024-01-01 00:00:00.000"),
            ("len", "3"),
            ("toupper(@message)", "ABC"),
            ("@ptr", "p0"),
        ]],
    );
}

#[test]
fn several_fields_commands_add_up_and_display_restricts() {
    check(
        "fields @message | fields strlen(@message) as n",
        &[e(0.0, "ab")],
        &[&[("@message", "ab"), ("n", "2"), ("@ptr", "p0")]],
    );
    check(
        "fields @message, strlen(@message) as n | display n",
        &[e(0.0, "ab")],
        &[&[("n", "2"), ("@ptr", "p0")]],
    );
}

#[test]
fn system_fields() {
    check(
        "fields @timestamp, @ingestionTime, @logStream, @log, @message",
        &[es(1.0, "web/1", "hello")],
        &[&[
            ("@timestamp", "2024-01-01 00:00:01.000"),
            ("@ingestionTime", "2024-01-01 00:00:01.500"),
            ("@logStream", "web/1"),
            ("@log", "123456789012:app"),
            ("@message", "hello"),
            ("@ptr", "p0"),
        ]],
    );
}

#[test]
fn missing_values_are_left_out_of_rows() {
    check(
        "fields nothere, @message",
        &[e(0.0, "x")],
        &[&[("@message", "x"), ("@ptr", "p0")]],
    );
}

// ---- JSON discovery ----------------------------------------------------------

#[test]
fn json_fields_are_flattened_with_dots() {
    let msg = r#"{"detail": {"user": {"id": 42, "name": "ann"}}, "items": ["a", {"k": "v"}], "ok": true, "none": null, "ratio": 0.25}"#;
    check(
        "fields detail.user.id, `detail.user.name`, items.0, items.1.k, ok, none, ratio",
        &[e(0.0, msg)],
        &[&[
            ("detail.user.id", "42"),
            ("detail.user.name", "ann"),
            ("items.0", "a"),
            ("items.1.k", "v"),
            ("ok", "true"),
            ("ratio", "0.25"),
            ("@ptr", "p0"),
        ]],
    );
}

#[test]
fn backquoted_names_with_odd_characters() {
    check(
        "fields `user-agent` as ua | display ua",
        &[e(0.0, r#"{"user-agent": "curl"}"#)],
        &[&[("ua", "curl"), ("@ptr", "p0")]],
    );
}

#[test]
fn non_json_and_broken_json_have_no_fields() {
    check(
        "filter ispresent(a) | fields a",
        &[e(0.0, "{not json"), e(1.0, "a=1"), e(2.0, r#"{"a": 1}"#)],
        &[&[("a", "1"), ("@ptr", "p2")]],
    );
}

// ---- filter --------------------------------------------------------------------

#[test]
fn filter_comparisons() {
    let ev = json_events();
    let q = |f: &str| column(&format!("filter {f} | fields user"), &ev, "@ptr");
    assert_eq!(q("status = 200"), ["p3", "p0"]);
    assert_eq!(q("status == 200"), ["p3", "p0"]);
    assert_eq!(q("status != 200"), ["p2", "p1"]);
    assert_eq!(q("status < 404"), ["p3", "p0"]);
    assert_eq!(q("status <= 404"), ["p3", "p1", "p0"]);
    assert_eq!(q("status > 404"), ["p2"]);
    assert_eq!(q("status >= 404"), ["p2", "p1"]);
    assert_eq!(q("method = 'POST'"), ["p3", "p2"]);
    assert_eq!(q(r#"status = "200""#), ["p3", "p0"]);
    assert_eq!(q("bytes * 2 > 200"), ["p2"]);
}

#[test]
fn filter_boolean_logic() {
    let ev = json_events();
    let q = |f: &str| column(&format!("filter {f} | fields user"), &ev, "@ptr");
    assert_eq!(q("status = 200 and method = 'GET'"), ["p0"]);
    assert_eq!(q("status = 404 or status = 500"), ["p2", "p1"]);
    assert_eq!(q("not status = 200 and ispresent(status)"), ["p2", "p1"]);
    assert_eq!(
        q("method = 'GET' and (status = 404 or status = 200)"),
        ["p1", "p0"]
    );
    assert_eq!(q("status = 500 or status = 404 and user = 'ann'"), ["p2"]);
    assert_eq!(q("not ispresent(status)"), ["p4"]);
}

#[test]
fn filter_like_strings_and_regexes() {
    let ev = vec![
        e(1.0, "ERROR disk full"),
        e(2.0, "error: timeout"),
        e(3.0, "all good"),
        e(4.0, "path /a/b ok"),
    ];
    let q = |f: &str| column(&format!("filter {f}"), &ev, "@ptr");
    assert_eq!(q("@message like 'error'"), ["p1"]);
    assert_eq!(q("@message like /(?i)error/"), ["p1", "p0"]);
    assert_eq!(q("@message like /^ERROR/"), ["p0"]);
    assert_eq!(q("@message not like /(?i)error/"), ["p3", "p2"]);
    assert_eq!(q("@message =~ /time.ut/"), ["p1"]);
    assert_eq!(q("@message =~ 'go+d'"), ["p2"]);
    assert_eq!(q(r"@message like /\/a\/b/"), ["p3"]);
    assert_eq!(q(r#"@message like "/a/""#), ["p3"]);
}

#[test]
fn filter_in_lists() {
    let ev = json_events();
    let q = |f: &str| column(&format!("filter {f} | fields user"), &ev, "@ptr");
    assert_eq!(q("status in [404, 500]"), ["p2", "p1"]);
    assert_eq!(q("user in ['ann', 'cy']"), ["p3", "p2", "p0"]);
    assert_eq!(q("user not in ['ann', 'cy'] and ispresent(user)"), ["p1"]);
    assert_eq!(q("status in []"), Vec::<String>::new());
}

#[test]
fn filter_presence_and_emptiness() {
    let ev = vec![
        e(1.0, r#"{"a": ""}"#),
        e(2.0, r#"{"a": "  "}"#),
        e(3.0, r#"{"a": "x"}"#),
        e(4.0, r#"{"b": 1}"#),
    ];
    let q = |f: &str| column(&format!("filter {f} | fields a"), &ev, "@ptr");
    assert_eq!(q("ispresent(a)"), ["p2", "p1", "p0"]);
    assert_eq!(q("isempty(a)"), ["p3", "p0"]);
    assert_eq!(q("isblank(a)"), ["p3", "p1", "p0"]);
    assert_eq!(q("not isblank(a)"), ["p2"]);
}

#[test]
fn filter_on_timestamps() {
    let ev = vec![e(0.0, "a"), e(1.0, "b"), e(2.0, "c")];
    let at = ts(1.0);
    assert_eq!(
        column(&format!("filter @timestamp >= {at}"), &ev, "@message"),
        ["c", "b"]
    );
    assert_eq!(
        column(
            "filter @timestamp < '2024-01-01 00:00:01.000'",
            &ev,
            "@message"
        ),
        ["a"]
    );
}

#[test]
fn comments_are_ignored() {
    check(
        "# errors only\nfilter @message like 'e' # trailing\n| fields @message # and 'this'",
        &[e(0.0, "e#1"), e(1.0, "x")],
        &[&[("@message", "e#1"), ("@ptr", "p0")]],
    );
}

#[test]
fn keywords_are_case_insensitive() {
    assert_eq!(
        column(
            "FILTER @message LIKE 'a' AND NOT @message LIKE 'b'",
            &[e(0.0, "a"), e(1.0, "ab")],
            "@ptr"
        ),
        ["p0"]
    );
}

// ---- functions and arithmetic -----------------------------------------------

#[test]
fn string_functions() {
    let ev = [e(0.0, r#"{"s": "  Hello World  ", "t": "abc", "n": 5}"#)];
    let f = |expr: &str| -> String {
        let rows = column(&format!("fields {expr} as v | display v"), &ev, "v");
        rows[0].clone()
    };
    assert_eq!(f("strlen(s)"), "15");
    assert_eq!(f("toupper(t)"), "ABC");
    assert_eq!(f("tolower('ABC')"), "abc");
    assert_eq!(f("trim(s)"), "Hello World");
    assert_eq!(f("ltrim(s)"), "Hello World  ");
    assert_eq!(f("rtrim(s)"), "  Hello World");
    assert_eq!(f("concat(t, '-', n)"), "abc-5");
    assert_eq!(f("concat(t, missing)"), "abc");
    assert_eq!(f("substr(t, 1)"), "bc");
    assert_eq!(f("substr(t, 0, 2)"), "ab");
    assert_eq!(f("substr(t, 5, 2)"), "");
    assert_eq!(f("replace(t, 'b', 'XX')"), "aXXc");
    assert_eq!(f("strcontains(t, 'bc')"), "1");
    assert_eq!(f("strcontains(t, 'z')"), "0");
    assert_eq!(f("coalesce(missing, t)"), "abc");
    assert_eq!(f("isempty(missing)"), "1");
    assert_eq!(f("ispresent(t)"), "1");
    assert_eq!(f("strlen(missing)"), "<none>");
}

#[test]
fn numeric_functions_and_arithmetic() {
    let ev = [e(0.0, r#"{"x": -2.5, "y": 4, "z": "7"}"#)];
    let f = |expr: &str| -> String {
        let rows = column(&format!("fields {expr} as v | display v"), &ev, "v");
        rows[0].clone()
    };
    assert_eq!(f("abs(x)"), "2.5");
    assert_eq!(f("ceil(x)"), "-2");
    assert_eq!(f("floor(x)"), "-3");
    assert_eq!(f("round(x)"), "-3");
    assert_eq!(f("round(10 / 3, 2)"), "3.33");
    assert_eq!(f("sqrt(y)"), "2");
    assert_eq!(f("pow(y, 2)"), "16");
    assert_eq!(f("greatest(x, y, 1)"), "4");
    assert_eq!(f("least(x, y, 1)"), "-2.5");
    assert_eq!(f("y + z"), "11");
    assert_eq!(f("y - 1 - 1"), "2");
    assert_eq!(f("y * x"), "-10");
    assert_eq!(f("y / 8"), "0.5");
    assert_eq!(f("z % y"), "3");
    assert_eq!(f("y / 0"), "<none>");
    assert_eq!(f("-y + 1"), "-3");
    assert_eq!(f("(1 + 2) * 3"), "9");
    assert_eq!(f("1 + 2 * 3"), "7");
    assert_eq!(f("y + 'nope'"), "<none>");
    assert_eq!(f("y > 3"), "1");
}

#[test]
fn time_functions() {
    let ev = [e(3725.25, r#"{"ms": 1704067200000}"#)]; // 01:02:05.250
    let f = |expr: &str| -> String {
        let rows = column(&format!("fields {expr} as v | display v"), &ev, "v");
        rows[0].clone()
    };
    assert_eq!(f("datefloor(@timestamp, 1h)"), "2024-01-01 01:00:00.000");
    assert_eq!(f("datefloor(@timestamp, 5m)"), "2024-01-01 01:00:00.000");
    assert_eq!(f("dateceil(@timestamp, 1m)"), "2024-01-01 01:03:00.000");
    assert_eq!(f("datefloor(@timestamp, 1d)"), "2024-01-01 00:00:00.000");
    assert_eq!(f("bin(30s)"), "2024-01-01 01:02:00.000");
    assert_eq!(f("fromMillis(ms)"), "2024-01-01 00:00:00.000");
    assert_eq!(f("toMillis(@timestamp)"), (T0 + 3_725_250).to_string());
    assert_eq!(f("@timestamp + 1000"), "2024-01-01 01:02:06.250");
    assert_eq!(f("@ingestionTime - @timestamp"), "500");
    assert_eq!(f("fromMillis(951782400000)"), "2000-02-29 00:00:00.000");
    assert_eq!(f("fromMillis(-1)"), "1969-12-31 23:59:59.999");
}

#[test]
fn division_is_not_a_regex() {
    check(
        "fields y / 2 as half, (y) / 4 as q | display half, q",
        &[e(0.0, r#"{"y": 4}"#)],
        &[&[("half", "2"), ("q", "1"), ("@ptr", "p0")]],
    );
}

// ---- stats -------------------------------------------------------------------

#[test]
fn stats_count_by_field_in_key_order() {
    check(
        "stats count(*) by method",
        &json_events(),
        &[
            &[("method", "GET"), ("count(*)", "2")],
            &[("method", "POST"), ("count(*)", "2")],
            &[("count(*)", "1")],
        ],
    );
    check(
        "filter ispresent(method) | stats count() as n by method",
        &json_events(),
        &[
            &[("method", "GET"), ("n", "2")],
            &[("method", "POST"), ("n", "2")],
        ],
    );
}

#[test]
fn stats_aggregates() {
    check(
        "stats count(*) as all, count(status) as c, sum(bytes) as s, avg(bytes) as a, \
         min(bytes) as lo, max(bytes) as hi, count_distinct(user) as u",
        &json_events(),
        &[&[
            ("all", "5"),
            ("c", "4"),
            ("s", "425"),
            ("a", "106.25"),
            ("lo", "25"),
            ("hi", "250"),
            ("u", "3"),
        ]],
    );
}

#[test]
fn stats_default_names_are_the_expression_text() {
    check(
        "stats sum(bytes), avg(bytes)",
        &json_events(),
        &[&[("sum(bytes)", "425"), ("avg(bytes)", "106.25")]],
    );
}

#[test]
fn stats_expressions_over_aggregates() {
    check(
        "stats sum(bytes) / count(*) as per, max(bytes) - min(bytes) as spread, count(*) * 2",
        &json_events(),
        &[&[("per", "85"), ("spread", "225"), ("count(*) * 2", "10")]],
    );
}

#[test]
fn stats_by_several_fields_with_aliases() {
    check(
        "filter ispresent(status) | stats sum(bytes) as b by method as m, status",
        &json_events(),
        &[
            &[("m", "GET"), ("status", "200"), ("b", "100")],
            &[("m", "GET"), ("status", "404"), ("b", "50")],
            &[("m", "POST"), ("status", "200"), ("b", "25")],
            &[("m", "POST"), ("status", "500"), ("b", "250")],
        ],
    );
}

#[test]
fn stats_by_time_bins() {
    let ev = vec![
        e(0.0, "a"),
        e(299.0, "b"),
        e(300.0, "c"),
        e(3600.0 * 2.0, "d"),
        e(86400.0 + 1.0, "e"),
    ];
    check(
        "stats count(*) by bin(5m)",
        &ev,
        &[
            &[("bin(5m)", "2024-01-01 00:00:00.000"), ("count(*)", "2")],
            &[("bin(5m)", "2024-01-01 00:05:00.000"), ("count(*)", "1")],
            &[("bin(5m)", "2024-01-01 02:00:00.000"), ("count(*)", "1")],
            &[("bin(5m)", "2024-01-02 00:00:00.000"), ("count(*)", "1")],
        ],
    );
    assert_eq!(
        column("stats count(*) as n by bin(1h) as hour", &ev, "n"),
        ["3", "1", "1"]
    );
    assert_eq!(
        column("stats count(*) as n by bin(1d)", &ev, "n"),
        ["4", "1"]
    );
    assert_eq!(
        column("stats count(*) as n by bin(300s)", &ev, "n"),
        ["2", "1", "1", "1"]
    );
    assert_eq!(
        column("stats count(*) as n by bin(2h)", &ev, "bin(2h)"),
        [
            "2024-01-01 00:00:00.000",
            "2024-01-01 02:00:00.000",
            "2024-01-02 00:00:00.000"
        ]
    );
}

#[test]
fn stats_earliest_latest_and_time_extremes() {
    check(
        "stats earliest(user) as first, latest(user) as last, min(@timestamp) as t0, \
         max(@timestamp) as t1 by method",
        &json_events()[..4],
        &[
            &[
                ("method", "GET"),
                ("first", "ann"),
                ("last", "bob"),
                ("t0", "2024-01-01 00:00:01.000"),
                ("t1", "2024-01-01 00:00:02.000"),
            ],
            &[
                ("method", "POST"),
                ("first", "ann"),
                ("last", "cy"),
                ("t0", "2024-01-01 00:00:03.000"),
                ("t1", "2024-01-01 00:00:04.000"),
            ],
        ],
    );
}

#[test]
fn stats_percentiles_and_stddev() {
    let ev: Vec<E> = (1..=100)
        .map(|i| e(i as f64, &format!(r#"{{"v": {i}}}"#)))
        .collect();
    check(
        "stats pct(v, 50) as p50, pct(v, 99) as p99, pct(v, 0) as p0, median(v) as med",
        &ev,
        &[&[("p50", "50"), ("p99", "99"), ("p0", "1"), ("med", "50")]],
    );
    check(
        "stats stddev(v) as sd",
        &[
            e(0.0, r#"{"v": 2}"#),
            e(1.0, r#"{"v": 4}"#),
            e(2.0, r#"{"v": 6}"#),
        ],
        &[&[("sd", "2")]],
    );
}

#[test]
fn stats_then_sort_limit_and_filter() {
    let ev = json_events();
    check(
        "stats sum(bytes) as b by user | sort b desc | limit 2",
        &ev,
        &[
            &[("user", "ann"), ("b", "350")],
            &[("user", "bob"), ("b", "50")],
        ],
    );
    check(
        "stats count(*) by user | sort count(*) desc, user asc | limit 2",
        &ev,
        &[
            &[("user", "ann"), ("count(*)", "2")],
            &[("user", "bob"), ("count(*)", "1")],
        ],
    );
    check(
        "stats sum(bytes) as b by user | filter b < 100 and ispresent(user)",
        &ev,
        &[
            &[("user", "bob"), ("b", "50")],
            &[("user", "cy"), ("b", "25")],
        ],
    );
}

#[test]
fn stats_twice() {
    check(
        "filter ispresent(user) | stats count(*) as n by user | stats max(n) as most, avg(n) as mean",
        &json_events(),
        &[&[("most", "2"), ("mean", "1.3333333333333333")]],
    );
}

#[test]
fn stats_after_parse_uses_parsed_strings_as_numbers() {
    check(
        "parse @message 'took * ms' as took | stats sum(took) as total, avg(took) as mean",
        &[
            e(0.0, "took 10 ms"),
            e(1.0, "took 15 ms"),
            e(2.0, "nothing"),
        ],
        &[&[("total", "25"), ("mean", "12.5")]],
    );
}

// ---- sort, limit, dedup -------------------------------------------------------

#[test]
fn sort_with_several_keys() {
    let ev = vec![
        e(1.0, r#"{"level": "b", "n": 1}"#),
        e(2.0, r#"{"level": "a", "n": 1}"#),
        e(3.0, r#"{"level": "b", "n": 3}"#),
        e(4.0, r#"{"level": "a", "n": 2}"#),
        e(5.0, r#"{"n": 9}"#),
    ];
    assert_eq!(
        column("fields level, n | sort level asc, n desc", &ev, "@ptr"),
        ["p3", "p1", "p2", "p0", "p4"]
    );
    assert_eq!(
        column("fields level, n | sort level desc, n", &ev, "@ptr"),
        ["p0", "p2", "p1", "p3", "p4"]
    );
    assert_eq!(
        column("sort n desc | limit 2 | fields n", &ev, "n"),
        ["9", "3"]
    );
}

#[test]
fn sort_numbers_numerically() {
    let ev = vec![
        e(1.0, r#"{"n": "10"}"#),
        e(2.0, r#"{"n": 9}"#),
        e(3.0, r#"{"n": "x"}"#),
    ];
    assert_eq!(column("fields n | sort n", &ev, "n"), ["9", "10", "x"]);
}

#[test]
fn sort_timestamp_and_limit_uses_a_bounded_heap() {
    let events: Vec<E> = (0..50_000)
        .map(|i| e(((i * 7919) % 50_000) as f64, "x"))
        .collect();
    let out = run("sort @timestamp desc | limit 3", &events);
    let times: Vec<&str> = out.rows.iter().map(|r| r[0].1.as_str()).collect();
    assert_eq!(
        times,
        [
            "2024-01-01 13:53:19.000",
            "2024-01-01 13:53:18.000",
            "2024-01-01 13:53:17.000"
        ]
    );
    let out = run(
        "fields @timestamp | sort @timestamp asc | fields strlen(@message) as l | limit 2",
        &events,
    );
    assert_eq!(
        out.rows[1],
        vec![
            (
                "@timestamp".to_string(),
                "2024-01-01 00:00:01.000".to_string()
            ),
            ("l".to_string(), "1".to_string()),
            (
                "@ptr".to_string(),
                format!(
                    "p{}",
                    (0..50_000).find(|i| (i * 7919) % 50_000 == 1).unwrap_or(0)
                )
            ),
        ]
    );
}

#[test]
fn filter_between_sort_and_limit() {
    let ev: Vec<E> = (0..10)
        .map(|i| e(i as f64, &format!(r#"{{"n": {i}}}"#)))
        .collect();
    assert_eq!(
        column(
            "sort n asc | filter n % 2 = 1 | limit 3 | fields n",
            &ev,
            "n"
        ),
        ["1", "3", "5"]
    );
}

#[test]
fn ties_break_newest_first_then_by_ptr() {
    let ev = vec![
        e(1.0, r#"{"k": 1}"#),
        e(2.0, r#"{"k": 1}"#),
        e(2.0, r#"{"k": 1}"#),
    ];
    assert_eq!(column("sort k | fields k", &ev, "@ptr"), ["p1", "p2", "p0"]);
}

#[test]
fn dedup_keeps_the_first_row_per_key() {
    let ev = vec![
        e(1.0, r#"{"u": "a", "n": 1}"#),
        e(2.0, r#"{"u": "b", "n": 2}"#),
        e(3.0, r#"{"u": "a", "n": 3}"#),
        e(4.0, r#"{"n": 4}"#),
        e(5.0, r#"{"n": 5}"#),
    ];
    assert_eq!(
        column("fields u, n | sort n desc | dedup u", &ev, "n"),
        ["5", "4", "3", "2"]
    );
    assert_eq!(
        column("fields u, n | dedup u", &ev, "n"),
        ["5", "4", "3", "2"]
    );
    assert_eq!(
        column("fields u, n | sort n asc | dedup u | limit 1", &ev, "n"),
        ["1"]
    );
}

// ---- parse --------------------------------------------------------------------

#[test]
fn parse_glob_patterns() {
    check(
        "parse @message 'user=* action=*' as user, action | display user, action",
        &[e(0.0, "x user=ann action=log in"), e(1.0, "no match")],
        &[
            &[("@ptr", "p1")],
            &[("user", "ann"), ("action", "log in"), ("@ptr", "p0")],
        ],
    );
    check(
        "parse @message '[*] *: *' as level, who, rest | filter level = 'ERROR' | fields who, rest",
        &[e(0.0, "[ERROR] db: down: really"), e(1.0, "[INFO] web: ok")],
        &[&[("who", "db"), ("rest", "down: really"), ("@ptr", "p0")]],
    );
}

#[test]
fn parse_regex_named_groups() {
    check(
        r"parse @message /(?<method>[A-Z]+) (?<path>\S+)/ | stats count(*) by method, path",
        &[
            e(0.0, "GET /a 200"),
            e(1.0, "GET /a 500"),
            e(2.0, "PUT /b 200"),
        ],
        &[
            &[("method", "GET"), ("path", "/a"), ("count(*)", "2")],
            &[("method", "PUT"), ("path", "/b"), ("count(*)", "1")],
        ],
    );
    check(
        r"parse /(?i)(?<lvl>error|warn)/ | filter ispresent(lvl) | fields lvl",
        &[e(0.0, "Error x"), e(1.0, "fine")],
        &[&[("lvl", "Error"), ("@ptr", "p0")]],
    );
}

#[test]
fn parse_a_json_field() {
    check(
        "parse req 'GET *' as path | fields path",
        &[e(0.0, r#"{"req": "GET /x"}"#)],
        &[&[("path", "/x"), ("@ptr", "p0")]],
    );
}

// ---- errors ---------------------------------------------------------------------

#[test]
fn errors_carry_character_spans() {
    let cases: &[(&str, &str, usize, usize)] = &[
        ("", "empty", 0, 0),
        ("fields a | bogus x", "expecting a command", 11, 16),
        ("fields nope(a)", "unrecognized function name: nope", 7, 11),
        ("filter a = 'x", "unterminated string", 11, 13),
        (
            "filter a like /x",
            "unterminated regular expression",
            14,
            16,
        ),
        ("filter a like /(/", "invalid regular expression", 14, 17),
        (
            "parse @message '* *' as a",
            "2 captures but 1 field name",
            21,
            25,
        ),
        ("parse @message 'x=*'", "needs `as`", 15, 20),
        ("parse @message /(x)/", "no named capture group", 15, 20),
        ("limit 0", "limit must be", 6, 7),
        ("limit x", "expecting a number", 6, 7),
        ("stats strlen(a)", "must use an aggregate", 6, 15),
        ("stats sum(count(*))", "cannot be nested", 10, 15),
        ("stats pct(a)", "pct takes", 6, 12),
        ("fields a b", "expecting | or the end", 9, 10),
        ("filter (a = 1", "expecting )", 13, 13),
        ("fields strlen(a, b)", "takes 1 argument", 7, 19),
        ("stats count(*) by bin(5q)", "invalid time unit", 22, 24),
        ("fields a |", "expecting a command", 10, 10),
        ("fields ~", "unexpected symbol found ~", 7, 8),
        ("pattern @message", "not supported", 0, 7),
        ("filter é = 1 and", "unexpected symbol found é", 7, 8),
        ("filter a = 'é' |", "expecting a command", 16, 16),
    ];
    for &(q, msg, start, end) in cases {
        let e = err(q);
        assert!(e.message.contains(msg), "{q}: {e:?}");
        assert_eq!((e.start, e.end), (start, end), "{q}: {e:?}");
    }
}

#[test]
fn columns_are_reported() {
    let q = parse("stats count(*) as n by bin(1h)").unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(q.columns(), ["bin(1h)", "n"]);
    let q = parse("filter x = 1").unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(q.columns(), ["@timestamp", "@message", "@ptr"]);
}

#[test]
fn limits_on_query_size_and_nesting() {
    let e = err(&"x".repeat(10_001));
    assert_eq!((e.start, e.end), (10_000, 10_001));
    let deep = format!("filter {}a{}", "(".repeat(500), ")".repeat(500));
    assert!(err(&deep).message.contains("nests too deeply"));
    assert!(err(&format!("filter {}a", "not ".repeat(500)))
        .message
        .contains("nests too deeply"));
    assert!(err(&format!("fields {}a", "-".repeat(500)))
        .message
        .contains("nests too deeply"));
    assert!(parse(&format!("filter {}a{}", "(".repeat(20), ")".repeat(20))).is_ok());
}

const SEEDS: &[&str] = &[
    "fields @timestamp, @message | sort @timestamp desc | limit 20",
    "filter a.b > 0 and x like /y/ | stats count(*) as n, sum(a.b) by bin(5m), x",
    "parse @message '* *' as p, q | filter p in ['r', 1] | display p, q",
    "parse @message /(?<w>\\w+)/ | stats pct(strlen(w), 90) by w | sort w desc",
    "fields concat(x, '-', a.b) as c, datefloor(@timestamp, 1h) as h | dedup c",
    "stats avg(a.b) * 2 as v, earliest(x), latest(x) | filter v >= 2 | sort v",
    "filter not ispresent(z) or @message =~ 'r.y' # comment\n| limit 5",
];

#[test]
fn arbitrary_text_never_panics() {
    let alphabet: Vec<char> = "fields filter stats sort limit parse dedup display by as and or not like in \
        count(*) sum( bin(5m) @message @timestamp a.b `x` 'y' \"z\" /r/ ( ) [ ] , | = != < <= > >= =~ + - * / % # \n 1 2.5 é"
        .chars()
        .collect();
    let words: Vec<&str> = "fields filter stats sort limit parse dedup display by as and or not like in \
        count(*) sum( bin(5m) @message @timestamp a.b `x` 'y' /r/ ( ) [ ] , | = != < <= > >= =~ + - * / % 1 2.5 é desc"
        .split(' ')
        .collect();
    let mut seed: u64 = 0x2545_f491_4f6c_dd1d;
    let mut next = || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let events = [e(0.0, r#"{"a": {"b": 1}, "x": "y"}"#), e(1.0, "r y z")];
    let mut parsed = 0;
    for _ in 0..1500 {
        // A valid query with a few random edits.
        let mut q: Vec<char> = SEEDS[(next() % SEEDS.len() as u64) as usize]
            .chars()
            .collect();
        for _ in 0..next() % 3 {
            let at = (next() % (q.len() as u64 + 1)) as usize;
            match next() % 3 {
                0 if at < q.len() => {
                    q.remove(at);
                }
                1 => q.insert(at, alphabet[(next() % alphabet.len() as u64) as usize]),
                _ => {
                    let w = words[(next() % words.len() as u64) as usize];
                    for (k, c) in w.chars().enumerate() {
                        q.insert(at + k, c);
                    }
                }
            }
        }
        let q: String = q.into_iter().collect();
        match parse(&q) {
            Ok(_) => {
                parsed += 1;
                run(&q, &events);
            }
            Err(e) => assert!(
                e.start <= e.end && e.end <= q.chars().count(),
                "{q:?}: {e:?}"
            ),
        }
    }
    assert!(parsed > 100, "only {parsed} queries parsed");
}
