//! The batch span processor: each span written into OTLP's protobuf as it ends, on the thread that
//! ends it, and the batches sent by a thread of their own.
//!
//! The SDK's `BatchSpanProcessor` keeps every ended span as a `SpanData` (about 400 bytes, plus its
//! attributes on the heap) in a channel whose slots are all allocated at start-up, moves it to its
//! exporter thread and frees it there. For the lab's batches of rolls that was the biggest share of
//! a service's memory (3 MiB for a queue of 8,192 spans before a span had ended) and a steady cost
//! in copies and in the allocator's locks, taken by threads that free each other's memory. Here a
//! span becomes its protobuf bytes (about 150 for a roll) where it ends, its `SpanData` is freed on
//! that thread, and the exporter thread only joins the bytes of a batch and POSTs them.
//!
//! It is configured as the specification configures a batch processor: `OTEL_BSP_SCHEDULE_DELAY`
//! (how long a span may wait for its batch; [`SCHEDULE_DELAY`] by default), `OTEL_BSP_MAX_QUEUE_SIZE`
//! (spans that may wait; beyond, spans are dropped and counted) and
//! `OTEL_BSP_MAX_EXPORT_BATCH_SIZE` (spans per export). `force_flush` and shutdown send what waits.

use std::collections::VecDeque;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use opentelemetry::Context;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::error::{OTelSdkError, OTelSdkResult};
use opentelemetry_sdk::trace::{Span, SpanData, SpanProcessor};

use crate::encode::{self, EncodedResource, ScopeGroup};
use crate::metrics;

/// How long a span may wait for the next export when `OTEL_BSP_SCHEDULE_DELAY` is unset: short,
/// so that a click's trace can be read within about a second (the specification's default is
/// 5 s). Under load, batches fill long before it passes, so it costs nothing there.
pub(crate) const SCHEDULE_DELAY: Duration = Duration::from_millis(200);

/// Spans per export when `OTEL_BSP_MAX_EXPORT_BATCH_SIZE` is unset (the specification's default
/// is 512): a batch of rolls makes hundreds of spans at once, and fewer, larger exports keep up
/// with a service at full speed on two cores.
pub(crate) const EXPORT_BATCH_SIZE: usize = 2048;

/// Spans that may wait for export when `OTEL_BSP_MAX_QUEUE_SIZE` is unset (the specification's
/// default is 2048): four batches, room for a burst while one is being sent. Only what waits takes
/// memory, about 150 bytes a span.
pub(crate) const QUEUE_SIZE: usize = 8192;

/// How long without a dropped span ends a spell of them.
const QUIET: Duration = Duration::from_secs(10);

/// The batch processor's settings.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Config {
    pub(crate) queue: usize,
    pub(crate) batch: usize,
    pub(crate) delay: Duration,
}

impl Config {
    /// From the `OTEL_BSP_*` variables, else the lab's defaults; a batch is never larger than the
    /// queue.
    pub(crate) fn from_env() -> Self {
        let number = |name: &str| {
            std::env::var(name)
                .ok()
                .and_then(|v| v.trim().parse::<u64>().ok())
        };
        let queue = number("OTEL_BSP_MAX_QUEUE_SIZE")
            .filter(|n| *n > 0)
            .map_or(QUEUE_SIZE, |n| n as usize);
        let batch = number("OTEL_BSP_MAX_EXPORT_BATCH_SIZE")
            .filter(|n| *n > 0)
            .map_or(EXPORT_BATCH_SIZE, |n| n as usize)
            .min(queue);
        let delay = number("OTEL_BSP_SCHEDULE_DELAY").map_or(SCHEDULE_DELAY, Duration::from_millis);
        Self {
            queue,
            batch,
            delay,
        }
    }
}

/// Where a batch goes: an OTLP/HTTP request body in, the failure's reason out.
pub(crate) trait Sender: std::fmt::Debug + Send + Sync + 'static {
    fn send(&self, body: Vec<u8>) -> Result<(), String>;
}

/// The processor given to the tracer provider.
#[derive(Debug)]
pub(crate) struct Processor {
    shared: Arc<Shared>,
    config: Config,
}

#[derive(Debug)]
struct Shared {
    state: Mutex<State>,
    /// Signalled for the exporter thread: a batch is full, a flush or shutdown is asked.
    work: Condvar,
    /// Signalled by the exporter thread: a flush is done, or it has stopped.
    done: Condvar,
    resource: Mutex<EncodedResource>,
}

#[derive(Debug, Default)]
struct State {
    /// Full batches first, the one being filled last.
    batches: VecDeque<Batch>,
    /// Spans in `batches`.
    queued: usize,
    /// Flushes asked for, and done (each flush sends what waited when it was asked).
    flushes_asked: u64,
    flushes_done: u64,
    shutdown: bool,
    stopped: bool,
    /// When a span was last dropped, and whether this spell of drops has been said.
    last_drop: Option<Instant>,
}

#[derive(Debug)]
struct Batch {
    groups: Vec<ScopeGroup>,
    spans: usize,
    /// When its first span arrived: it is sent at the exporter's next tick after that, if not
    /// full before.
    since: Instant,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Processor {
    /// Starts the exporter thread, which sends every batch with `sender`.
    pub(crate) fn new(config: Config, sender: impl Sender, endpoint: String) -> Self {
        let shared = Arc::new(Shared {
            state: Mutex::default(),
            work: Condvar::new(),
            done: Condvar::new(),
            resource: Mutex::default(),
        });
        {
            let shared = shared.clone();
            std::thread::Builder::new()
                .name("otlp-export".into())
                .spawn(move || export_batches(&shared, config, &sender, &endpoint))
                .expect("a thread for the span exporter");
        }
        Self { shared, config }
    }

    /// Asks the exporter thread for `what` and waits until `finished` says it is done, at most
    /// `timeout`.
    fn ask(
        &self,
        timeout: Duration,
        what: impl FnOnce(&mut State) -> Box<dyn Fn(&State) -> bool>,
    ) -> OTelSdkResult {
        let mut state = self.shared.lock();
        let finished = what(&mut state);
        self.shared.work.notify_one();
        let (state, waited) = self
            .shared
            .done
            .wait_timeout_while(state, timeout, |s| !finished(s) && !s.stopped)
            .unwrap_or_else(|e| e.into_inner());
        if waited.timed_out() && !finished(&state) {
            return Err(OTelSdkError::Timeout(timeout));
        }
        Ok(())
    }

    fn dropped(&self, state: &mut State) -> bool {
        metrics::spans_dropped("queue_full").inc();
        let now = Instant::now();
        let new_spell = state.last_drop.is_none_or(|last| now - last > QUIET);
        state.last_drop = Some(now);
        new_spell
    }
}

impl SpanProcessor for Processor {
    fn on_start(&self, _span: &mut Span, _cx: &Context) {}

    fn on_end(&self, span: SpanData) {
        if !span.span_context.is_sampled() {
            return;
        }
        // Each thread writes its spans in a buffer of its own, kept from span to span.
        thread_local! {
            static SCRATCH: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
        }
        SCRATCH.with_borrow_mut(|bytes| {
            bytes.clear();
            // A burst's large span leaves a large buffer behind; give it back.
            bytes.shrink_to(4096);
            encode::scope_span(bytes, &span);
            let mut state = self.shared.lock();
            if state.shutdown {
                return;
            }
            if state.queued >= self.config.queue {
                let say = self.dropped(&mut state);
                drop(state);
                if say {
                    tracing::warn!(
                        queue = self.config.queue,
                        "spans end faster than they can be exported: the queue of {} spans \
                         (OTEL_BSP_MAX_QUEUE_SIZE) is full, so spans are dropped and counted in \
                         telemetry_spans_dropped_total{{reason=\"queue_full\"}} (said once, until \
                         none is dropped for {} s)",
                        self.config.queue,
                        QUIET.as_secs()
                    );
                }
                return;
            }
            let batch = match state.batches.back_mut() {
                Some(last) if last.spans < self.config.batch => last,
                _ => {
                    state.batches.push_back(Batch {
                        groups: Vec::with_capacity(1),
                        spans: 0,
                        since: Instant::now(),
                    });
                    state.batches.back_mut().expect("just pushed")
                }
            };
            let group = match batch
                .groups
                .iter_mut()
                .position(|(scope, _)| scope == &span.instrumentation_scope)
            {
                Some(at) => &mut batch.groups[at].1,
                None => {
                    batch
                        .groups
                        .push((span.instrumentation_scope.clone(), Vec::new()));
                    &mut batch.groups.last_mut().expect("just pushed").1
                }
            };
            group.extend_from_slice(bytes);
            batch.spans += 1;
            let first = batch.spans == 1;
            let full = batch.spans == self.config.batch;
            state.queued += 1;
            drop(state);
            // The exporter sleeps until a batch is due: wake it when one starts (to time it) or fills.
            if first || full {
                self.shared.work.notify_one();
            }
        });
    }

    fn force_flush(&self) -> OTelSdkResult {
        self.ask(crate::FLUSH_TIMEOUT, |state| {
            state.flushes_asked += 1;
            let asked = state.flushes_asked;
            Box::new(move |s: &State| s.flushes_done >= asked)
        })
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        self.ask(timeout, |state| {
            state.shutdown = true;
            Box::new(|s: &State| s.stopped)
        })
    }

    fn set_resource(&mut self, resource: &Resource) {
        *self
            .shared
            .resource
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = EncodedResource::new(resource);
    }
}

impl Drop for Processor {
    fn drop(&mut self) {
        let mut state = self.shared.lock();
        state.shutdown = true;
        drop(state);
        self.shared.work.notify_one();
    }
}

/// The exporter thread: sends each batch when it is full, when it has waited the schedule delay,
/// or when a flush or shutdown asks; says once per spell that exports fail, and why, counting the
/// spans of failed exports.
fn export_batches(shared: &Shared, config: Config, sender: &dyn Sender, endpoint: &str) {
    // The exporter ticks every schedule delay, as the specification's batch processor exports:
    // a batch that is not full leaves at the first tick after its first span, so a span waits
    // half the delay on average and never the whole of it.
    let epoch = Instant::now();
    let tick_after = |since: Instant| {
        let delay = config.delay.as_nanos().max(1);
        let ticks = since.duration_since(epoch).as_nanos() / delay + 1;
        epoch + Duration::from_nanos(u64::try_from(ticks * delay).unwrap_or(u64::MAX))
    };
    let mut failing = false;
    let mut state = shared.lock();
    loop {
        let flushing = state.flushes_asked > state.flushes_done || state.shutdown;
        let due = state.batches.front().is_some_and(|first| {
            flushing || first.spans >= config.batch || Instant::now() >= tick_after(first.since)
        });
        if !due {
            if flushing {
                // Everything that waited has been sent.
                state.flushes_done = state.flushes_asked;
                if state.shutdown {
                    state.stopped = true;
                    shared.done.notify_all();
                    return;
                }
                shared.done.notify_all();
                continue;
            }
            state = match state.batches.front() {
                Some(first) => {
                    let left = tick_after(first.since).saturating_duration_since(Instant::now());
                    shared
                        .work
                        .wait_timeout(state, left)
                        .unwrap_or_else(|e| e.into_inner())
                        .0
                }
                None => shared.work.wait(state).unwrap_or_else(|e| e.into_inner()),
            };
            continue;
        }
        let batch = state.batches.pop_front().expect("a batch is due");
        state.queued -= batch.spans;
        drop(state);

        let body = {
            let resource = shared.resource.lock().unwrap_or_else(|e| e.into_inner());
            encode::request(&resource, &batch.groups)
        };
        let spans = batch.spans;
        drop(batch);
        match sender.send(body) {
            Err(error) => {
                metrics::spans_dropped("export_failed").inc_by(spans as u64);
                if !failing {
                    failing = true;
                    tracing::warn!(
                        endpoint,
                        error = %error,
                        dropped_spans = spans,
                        "cannot export spans: {error}; this batch of {spans} spans is dropped, as \
                         are the next ones until an export succeeds, all counted in \
                         telemetry_spans_dropped_total{{reason=\"export_failed\"}} (said once)"
                    );
                }
            }
            Ok(()) if failing => {
                failing = false;
                tracing::info!(endpoint, "exporting spans again");
            }
            Ok(()) => {}
        }
        state = shared.lock();
    }
}

#[cfg(test)]
mod tests {
    use opentelemetry::trace::{Tracer as _, TracerProvider as _};
    use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
    use opentelemetry_sdk::trace::SdkTracerProvider;
    use prost::Message as _;

    use super::*;

    /// Keeps every request body; while held, `send` waits (counting the sends that wait).
    #[derive(Clone, Debug, Default)]
    struct Collect {
        bodies: Arc<Mutex<Vec<Vec<u8>>>>,
        hold: Arc<(Mutex<(bool, usize)>, Condvar)>,
    }

    impl Sender for Collect {
        fn send(&self, body: Vec<u8>) -> Result<(), String> {
            let (held, changed) = &*self.hold;
            let mut held = held.lock().unwrap();
            held.1 += 1;
            changed.notify_all();
            drop(changed.wait_while(held, |held| held.0).unwrap());
            self.bodies.lock().unwrap().push(body);
            Ok(())
        }
    }

    impl Collect {
        /// The spans in each request so far, every request decoded as a collector would.
        fn batches(&self) -> Vec<usize> {
            self.bodies
                .lock()
                .unwrap()
                .iter()
                .map(|body| {
                    let request = ExportTraceServiceRequest::decode(body.as_slice()).unwrap();
                    request
                        .resource_spans
                        .iter()
                        .flat_map(|r| &r.scope_spans)
                        .map(|s| s.spans.len())
                        .sum()
                })
                .collect()
        }

        fn wait_for(&self, requests: usize) -> Vec<usize> {
            let deadline = Instant::now() + Duration::from_secs(5);
            while self.bodies.lock().unwrap().len() < requests && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(5));
            }
            self.batches()
        }

        fn hold(&self, on: bool) {
            self.hold.0.lock().unwrap().0 = on;
            self.hold.1.notify_all();
        }

        /// Waits until a send has begun.
        fn wait_for_a_send(&self) {
            let (held, changed) = &*self.hold;
            let held = held.lock().unwrap();
            let (_held, waited) = changed
                .wait_timeout_while(held, Duration::from_secs(5), |held| held.1 == 0)
                .unwrap();
            assert!(
                !waited.timed_out(),
                "the exporter never sent the full batch"
            );
        }
    }

    fn provider(queue: usize, batch: usize, delay: Duration, sink: &Collect) -> SdkTracerProvider {
        let config = Config {
            queue,
            batch,
            delay,
        };
        SdkTracerProvider::builder()
            .with_span_processor(Processor::new(config, sink.clone(), "test".into()))
            .build()
    }

    fn spans(provider: &SdkTracerProvider, n: usize) {
        let tracer = provider.tracer("batch-test");
        for _ in 0..n {
            drop(tracer.start("span"));
        }
    }

    #[test]
    fn full_batches_leave_at_once_and_the_rest_at_a_flush() {
        let sink = Collect::default();
        let provider = provider(100, 10, Duration::from_secs(600), &sink);
        spans(&provider, 25);
        assert_eq!(sink.wait_for(2), [10, 10]);
        provider.force_flush().unwrap();
        assert_eq!(sink.batches(), [10, 10, 5]);
    }

    #[test]
    fn a_partial_batch_leaves_at_the_next_tick() {
        let sink = Collect::default();
        let provider = provider(100, 10, Duration::from_millis(200), &sink);
        // Let the first tick pass, so that the spans come early in a tick.
        std::thread::sleep(Duration::from_millis(210));
        spans(&provider, 3);
        assert!(
            sink.batches().is_empty(),
            "a partial batch waits for a tick"
        );
        assert_eq!(sink.wait_for(1), [3]);
    }

    #[test]
    fn a_full_queue_drops_and_counts_and_shutdown_sends_what_waits() {
        let sink = Collect::default();
        let provider = provider(20, 10, Duration::from_secs(600), &sink);
        let dropped = metrics::spans_dropped("queue_full").get();
        sink.hold(true);
        // The first batch is taken by the exporter, which is held; 20 more fill the queue.
        spans(&provider, 10);
        sink.wait_for_a_send();
        spans(&provider, 25);
        assert_eq!(metrics::spans_dropped("queue_full").get() - dropped, 5);
        sink.hold(false);
        provider.shutdown().unwrap();
        assert_eq!(sink.batches(), [10, 10, 10]);
    }
}
