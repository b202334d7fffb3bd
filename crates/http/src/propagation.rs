//! The W3C trace context headers of a request, as OpenTelemetry's propagator reads and writes
//! them.
//!
//! `opentelemetry-http`'s adaptors parse the header name the propagator asks for on every call
//! (`traceparent`, then `tracestate`, for every request a service answers and every call it makes);
//! these know the two names in advance and look them up as they are.

use http::header::{HeaderMap, HeaderName, HeaderValue};
use opentelemetry::propagation::{Extractor, Injector};

const TRACEPARENT: HeaderName = HeaderName::from_static("traceparent");
const TRACESTATE: HeaderName = HeaderName::from_static("tracestate");

/// The header named `key`, for writing: one of the two the propagator uses, or any other by its
/// name.
fn name(key: &str) -> Option<HeaderName> {
    match key {
        "traceparent" => Some(TRACEPARENT),
        "tracestate" => Some(TRACESTATE),
        _ => HeaderName::from_bytes(key.as_bytes()).ok(),
    }
}

/// A request's headers, read by the propagator.
pub(crate) struct Incoming<'a>(pub(crate) &'a HeaderMap);

impl Extractor for Incoming<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        let value = match key {
            "traceparent" => self.0.get(TRACEPARENT),
            "tracestate" => self.0.get(TRACESTATE),
            _ => self.0.get(key),
        };
        value?.to_str().ok()
    }

    fn get_all(&self, key: &str) -> Option<Vec<&str>> {
        let values: Vec<&str> = self
            .0
            .get_all(key)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .collect();
        (!values.is_empty()).then_some(values)
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(HeaderName::as_str).collect()
    }
}

/// An outgoing request's headers, written by the propagator.
pub(crate) struct Outgoing<'a>(pub(crate) &'a mut HeaderMap);

impl Injector for Outgoing<'_> {
    fn set(&mut self, key: &str, value: String) {
        if let (Some(name), Ok(value)) = (name(key), HeaderValue::try_from(value)) {
            self.0.insert(name, value);
        }
    }

    fn reserve(&mut self, additional: usize) {
        self.0.reserve(additional);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry::propagation::TextMapPropagator as _;
    use opentelemetry::trace::TraceContextExt as _;
    use opentelemetry_sdk::propagation::TraceContextPropagator;

    #[test]
    fn a_context_read_from_headers_is_written_back_the_same() {
        let mut incoming = HeaderMap::new();
        let parent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        incoming.insert("traceparent", HeaderValue::from_static(parent));
        incoming.insert("tracestate", HeaderValue::from_static("lab=1"));
        incoming.insert("x-other", HeaderValue::from_static("kept apart"));
        let propagator = TraceContextPropagator::new();
        let cx = propagator.extract(&Incoming(&incoming));
        let ids = cx.span().span_context().clone();
        assert!(ids.is_remote() && ids.is_sampled());
        assert_eq!(
            ids.trace_id().to_string(),
            "4bf92f3577b34da6a3ce929d0e0e4736"
        );
        assert_eq!(Incoming(&incoming).get("x-other"), Some("kept apart"));
        incoming.append("x-other", HeaderValue::from_static("and another"));
        assert_eq!(
            Incoming(&incoming).get_all("x-other"),
            Some(vec!["kept apart", "and another"])
        );
        assert_eq!(Incoming(&incoming).get_all("x-none"), None);
        assert_eq!(Incoming(&incoming).keys().len(), 3);

        let mut outgoing = HeaderMap::new();
        propagator.inject_context(&cx, &mut Outgoing(&mut outgoing));
        assert_eq!(outgoing["traceparent"], parent);
        assert_eq!(outgoing["tracestate"], "lab=1");
        assert_eq!(outgoing.len(), 2);
    }

    #[test]
    fn names_and_values_that_are_not_http_are_left_out() {
        let mut outgoing = HeaderMap::new();
        Outgoing(&mut outgoing).set("not a name", "v".into());
        Outgoing(&mut outgoing).set("traceparent", "bad\nvalue".into());
        assert!(outgoing.is_empty());
        assert_eq!(Incoming(&outgoing).get("not a name"), None);
    }
}
