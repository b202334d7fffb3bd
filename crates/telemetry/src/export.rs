//! Span export: where spans go, and how a batch is sent there.
//!
//! The endpoint is read from the `OTEL_EXPORTER_OTLP_*` variables and checked at start-up: an
//! endpoint that can never work (not `http://`, no host, a bad port) stops the service with a
//! clear message instead of looking like a collector that is down. [`Otlp`] POSTs each batch that
//! the batch processor ([`crate::batch`]) has put together. Spans can then be lost two ways, each
//! counted in `telemetry_spans_dropped_total{reason}` and said once per spell with its real cause
//! (by the batch processor): the queue is full (`queue_full`: more spans end than the exporter
//! sends), or an export fails (`export_failed`: the collector is away or refuses, with its error).
//! The lab is often started before (or without) Alloy, so that second case is quiet after its
//! first warning, and says once when exports succeed again.

use std::time::Duration;

use crate::batch::{self, Processor};
use crate::{DEFAULT_OTLP_ENDPOINT, Error};

/// The span processor for a service, configured by `OTEL_BSP_*`; returns it with the endpoint
/// spans go to.
pub(crate) fn processor() -> Result<(Processor, String), Error> {
    let configured = env_nonempty("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
        .or_else(|| env_nonempty("OTEL_EXPORTER_OTLP_ENDPOINT").map(|base| traces_url(&base)));
    let endpoint = configured.unwrap_or_else(|| traces_url(DEFAULT_OTLP_ENDPOINT));
    check_endpoint(&endpoint)?;
    let sender = Otlp::new(&endpoint)?;
    let processor = Processor::new(batch::Config::from_env(), sender, endpoint.clone());
    Ok((processor, endpoint))
}

/// An endpoint this build can send to: `http://host[:port]/...`.
fn check_endpoint(endpoint: &str) -> Result<(), Error> {
    let bad = |why: String| Error::Endpoint {
        endpoint: endpoint.to_owned(),
        why,
    };
    let url = url::Url::parse(endpoint).map_err(|e| bad(e.to_string()))?;
    if url.scheme() != "http" {
        return Err(bad(format!(
            "the scheme must be http (OTLP over HTTP without TLS), not {}",
            url.scheme()
        )));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(bad("it names no host".into()));
    }
    Ok(())
}

/// OTLP/HTTP with protobuf, as the exporter specification describes it: each batch's
/// `ExportTraceServiceRequest` is POSTed to the endpoint, with
/// `OTEL_EXPORTER_OTLP_TRACES_HEADERS` / `OTEL_EXPORTER_OTLP_HEADERS` and within
/// `OTEL_EXPORTER_OTLP_TRACES_TIMEOUT` / `OTEL_EXPORTER_OTLP_TIMEOUT` (10 s by default).
#[derive(Debug)]
struct Otlp {
    client: reqwest::blocking::Client,
    endpoint: String,
    headers: reqwest::header::HeaderMap,
}

/// How long an export may take when neither `OTEL_EXPORTER_OTLP_*TIMEOUT` nor
/// `OTEL_BSP_EXPORT_TIMEOUT` says.
const EXPORT_TIMEOUT: Duration = Duration::from_secs(10);

impl Otlp {
    fn new(endpoint: &str) -> Result<Self, Error> {
        let timeout = [
            "OTEL_EXPORTER_OTLP_TRACES_TIMEOUT",
            "OTEL_EXPORTER_OTLP_TIMEOUT",
        ]
        .iter()
        .find_map(|name| env_nonempty(name)?.trim().parse().ok())
        .map_or(EXPORT_TIMEOUT, Duration::from_millis);
        // The batch processor's own bound on an export, when it is set and shorter.
        let timeout = env_nonempty("OTEL_BSP_EXPORT_TIMEOUT")
            .and_then(|v| v.trim().parse().ok())
            .map_or(timeout, |bound| timeout.min(Duration::from_millis(bound)));
        let mut headers = reqwest::header::HeaderMap::new();
        let listed = [
            "OTEL_EXPORTER_OTLP_TRACES_HEADERS",
            "OTEL_EXPORTER_OTLP_HEADERS",
        ]
        .iter()
        .find_map(|name| env_nonempty(name))
        .unwrap_or_default();
        for pair in listed.split(',').filter(|p| !p.trim().is_empty()) {
            let bad = || {
                Error::Exporter(format!(
                    "OTEL_EXPORTER_OTLP_HEADERS: '{pair}' is not key=value"
                ))
            };
            let (key, value) = pair.split_once('=').ok_or_else(bad)?;
            let value = percent_decode(value.trim());
            headers.insert(
                reqwest::header::HeaderName::from_bytes(key.trim().as_bytes())
                    .map_err(|_| bad())?,
                reqwest::header::HeaderValue::from_str(&value).map_err(|_| bad())?,
            );
        }
        // reqwest's blocking client runs a runtime of its own, which may not be made inside
        // another; the services set telemetry up inside theirs, so it is made on a thread apart.
        let client = std::thread::spawn(move || {
            reqwest::blocking::Client::builder()
                .timeout(timeout)
                .build()
        })
        .join()
        .map_err(|_| Error::Exporter("building the HTTP client panicked".into()))?
        .map_err(|e| Error::Exporter(e.to_string()))?;
        Ok(Self {
            client,
            endpoint: endpoint.to_owned(),
            headers,
        })
    }
}

impl batch::Sender for Otlp {
    fn send(&self, body: Vec<u8>) -> Result<(), String> {
        let response = self
            .client
            .post(&self.endpoint)
            .headers(self.headers.clone())
            .header(reqwest::header::CONTENT_TYPE, "application/x-protobuf")
            .body(body)
            .send()
            .map_err(|e| without_url(&e))?;
        let status = response.status();
        if status.is_success() {
            return Ok(());
        }
        let text = response.text().unwrap_or_default();
        Err(format!(
            "the collector answered {status}: {}",
            text.chars().take(200).collect::<String>()
        ))
    }
}

/// reqwest's error without the URL it names (the warning names the endpoint already).
fn without_url(error: &reqwest::Error) -> String {
    let mut text = error.to_string();
    if let Some(url) = error.url() {
        text = text
            .replace(&format!(" ({url})"), "")
            .replace(url.as_str(), "the endpoint");
    }
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        text.push_str(&format!(": {cause}"));
        source = cause.source();
    }
    text
}

/// `%XX` escapes decoded, as the exporter specification writes header values.
fn percent_decode(text: &str) -> String {
    url::form_urlencoded::parse(format!("v={}", text.replace('+', "%2B")).as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default()
}

/// The signal-specific URL for a base endpoint, as the OTLP exporter specification builds it.
fn traces_url(base: &str) -> String {
    format!("{}/v1/traces", base.trim_end_matches('/'))
}

fn env_nonempty(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_that_cannot_work_are_refused_with_the_reason() {
        assert!(check_endpoint("http://127.0.0.1:4318/v1/traces").is_ok());
        assert!(check_endpoint("http://alloy/v1/traces").is_ok());
        for (endpoint, why) in [
            ("ftp://127.0.0.1:4318/v1/traces", "the scheme must be http"),
            (
                "https://collector:4318/v1/traces",
                "the scheme must be http",
            ),
            ("http://127.0.0.1:99999/v1/traces", "invalid port number"),
            ("127.0.0.1:4318", "relative URL without a base"),
            ("http://:4318/v1/traces", "empty host"),
        ] {
            let error = check_endpoint(endpoint).unwrap_err().to_string();
            assert!(error.contains(why), "{endpoint}: {error}");
            assert!(error.contains(endpoint), "{endpoint}: {error}");
        }
    }
}
