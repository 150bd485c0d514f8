//! Which exposition format a scraper asked for.

/// The text formats `prometheus-client` writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// The Prometheus text format, version 0.0.4: the default.
    PrometheusText,
    /// OpenMetrics 1.0.0 text (what Prometheus asks for first).
    OpenMetrics,
}

const OPENMETRICS_MEDIA_TYPE: &str = "application/openmetrics-text";
const TEXT_MEDIA_TYPE: &str = "text/plain";

impl Format {
    /// The `Content-Type` of a response in this format.
    pub fn content_type(self) -> &'static str {
        match self {
            Format::PrometheusText => prometheus_client::encoding::prometheus_text::CONTENT_TYPE,
            Format::OpenMetrics => "application/openmetrics-text; version=1.0.0; charset=utf-8",
        }
    }

    /// The format for an `Accept` header: OpenMetrics when the client
    /// accepts `application/openmetrics-text` at least as much as
    /// `text/plain` (and `*/*`), else the 0.0.4 text format, which is also
    /// the answer to no header. The `version` parameter is not compared
    /// (guess: every OpenMetrics scraper reads 1.0.0).
    pub fn negotiate(accept: Option<&str>) -> Format {
        let Some(accept) = accept else {
            return Format::PrometheusText;
        };
        let mut openmetrics_q = 0.0_f64;
        let mut text_q = 0.0_f64;
        for range in accept.split(',') {
            let mut parts = range.split(';');
            let media_type = parts.next().unwrap_or("").trim().to_ascii_lowercase();
            let q = parts
                .filter_map(|param| param.split_once('='))
                .find(|(key, _)| key.trim().eq_ignore_ascii_case("q"))
                .and_then(|(_, value)| value.trim().parse::<f64>().ok())
                .filter(|q| (0.0..=1.0).contains(q))
                .unwrap_or(1.0);
            match media_type.as_str() {
                OPENMETRICS_MEDIA_TYPE => openmetrics_q = openmetrics_q.max(q),
                TEXT_MEDIA_TYPE | "text/*" | "*/*" => text_q = text_q.max(q),
                _ => {}
            }
        }
        if openmetrics_q > 0.0 && openmetrics_q >= text_q {
            Format::OpenMetrics
        } else {
            Format::PrometheusText
        }
    }
}
