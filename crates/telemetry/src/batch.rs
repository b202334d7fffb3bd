//! The batch span processor: each span written into OTLP's protobuf as it ends, on the thread that
//! ends it, and the batches sent by a thread of their own.
//!
//! The SDK's `BatchSpanProcessor` keeps every ended span as a `SpanData` (about 400 bytes, plus its
//! attributes on the heap) in a channel whose slots are all allocated at start-up, moves it to its
//! exporter thread and frees it there. For the lab's batches of rolls that was the biggest share of
//! a service's memory (3 MiB for a queue of 8,192 spans before a span had ended) and a steady cost
//! in copies and in the allocator's locks, taken by threads that free each other's memory. Here a
//! span becomes its protobuf bytes (about 150 for a roll) where it ends, written straight into the
//! batch of its thread's shard (see [`Shared`]); its `SpanData` is freed on that thread, and the
//! exporter thread only joins the bytes of a batch and POSTs them.
//!
//! It is configured as the specification configures a batch processor: `OTEL_BSP_SCHEDULE_DELAY`
//! (how long a span may wait for its batch; [`SCHEDULE_DELAY`] by default), `OTEL_BSP_MAX_QUEUE_SIZE`
//! (spans that may wait; beyond, spans are dropped and counted) and
//! `OTEL_BSP_MAX_EXPORT_BATCH_SIZE` (spans per export). `force_flush` and shutdown send what waits.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use opentelemetry::{Context, InstrumentationScope};
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

/// Emptied buffers of sent batches kept for the next batches, at most.
const SPARE_BUFFERS: usize = 4;

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
}

/// What the threads that end spans and the exporter thread share.
///
/// A span is added to the batch of its thread's shard. Threads are given shards in turn, so each
/// of a runtime's worker threads has one to itself, and two threads ending spans at once neither
/// wait for each other nor pass a lock's memory back and forth between their cores (with one
/// shared batch, that was the largest single cost of a `roll` span). Only the exporter visits
/// every shard, at its ticks. The queue's bound is a count that a shard draws on a few dozen
/// places at a time, for the same reason.
#[derive(Debug)]
struct Shared {
    config: Config,
    shards: Box<[Shard]>,
    /// Places in the queue taken: by the spans in the shards' batches and in `State::ready`, and
    /// by the places the shards have drawn and not used yet.
    queued: AtomicUsize,
    /// The places a shard draws at a time.
    draw: usize,
    /// Set at shutdown: a span that ends after it is not kept.
    closed: AtomicBool,
    state: Mutex<State>,
    /// Signalled for the exporter thread: a batch is ready or started, a flush or shutdown is asked.
    work: Condvar,
    /// Signalled by the exporter thread: a flush is done, or it has stopped.
    done: Condvar,
    resource: Mutex<EncodedResource>,
}

/// One shard's batch being filled, alone on its cache lines.
#[derive(Debug, Default)]
#[repr(align(128))]
struct Shard(Mutex<Filling>);

#[derive(Debug, Default)]
struct Filling {
    batch: Option<Batch>,
    /// Places in the queue drawn and not used yet.
    places: usize,
}

#[derive(Debug, Default)]
struct State {
    /// Batches to send, in order: full ones, and those taken from the shards at a tick or a flush.
    ready: VecDeque<Batch>,
    /// A shard has started a batch since the exporter last looked.
    started: bool,
    /// Buffers of sent batches, emptied, for the next batches to fill without growing again.
    spare: Vec<Vec<u8>>,
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
    /// The buffer of a sent batch, for the first group to write into.
    spare: Option<Vec<u8>>,
    spans: usize,
    /// When its first span arrived: it is sent at the exporter's next tick after that, if not
    /// full before.
    since: Instant,
}

impl Batch {
    /// An empty batch whose first group will write into `spare`.
    fn new(spare: Option<Vec<u8>>) -> Self {
        Self {
            groups: Vec::with_capacity(1),
            spare,
            spans: 0,
            since: Instant::now(),
        }
    }

    /// The buffer of `scope`'s spans.
    fn group(&mut self, scope: &InstrumentationScope) -> &mut Vec<u8> {
        let at = match self.groups.iter().position(|(s, _)| s == scope) {
            Some(at) => at,
            None => {
                let buffer = self.spare.take().unwrap_or_default();
                self.groups.push((scope.clone(), buffer));
                self.groups.len() - 1
            }
        };
        &mut self.groups[at].1
    }

    /// Its buffers, emptied, its spare among them.
    fn into_buffers(self) -> Vec<Vec<u8>> {
        self.groups
            .into_iter()
            .map(|(_, spans)| spans)
            .chain(self.spare)
            .map(|mut buffer| {
                buffer.clear();
                buffer
            })
            .collect()
    }

    /// Moves `other`'s spans into this batch; returns `other`'s buffers, emptied.
    fn absorb(&mut self, other: Batch) -> Vec<Vec<u8>> {
        self.since = self.since.min(other.since);
        self.spans += other.spans;
        for (scope, spans) in &other.groups {
            self.group(scope).extend_from_slice(spans);
        }
        other.into_buffers()
    }
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The shard of the calling thread.
    fn shard(&self) -> MutexGuard<'_, Filling> {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        thread_local! {
            static MINE: usize = NEXT.fetch_add(1, Ordering::Relaxed);
        }
        let at = MINE.with(|mine| *mine) % self.shards.len();
        self.shards[at].0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Moves the shards' batches that `take` chooses to the ready ones, joined into as few as
    /// the batch size allows; says whether a batch is left in a shard. `state` is let go while the
    /// shards are visited, so that no thread ending a span waits for it meanwhile.
    fn gather<'a>(
        &'a self,
        state: MutexGuard<'a, State>,
        take: impl Fn(&Batch) -> bool,
    ) -> (MutexGuard<'a, State>, bool) {
        drop(state);
        let mut taken = Vec::new();
        let mut left = false;
        for shard in &self.shards {
            let mut filling = shard.0.lock().unwrap_or_else(|e| e.into_inner());
            let batch = &mut filling.batch;
            match batch.as_ref() {
                Some(b) if take(b) => taken.extend(batch.take()),
                Some(_) => left = true,
                None => {}
            }
        }
        let mut state = self.lock();
        let joined = join(taken, self.config.batch, &mut state.spare);
        state.ready.extend(joined);
        (state, left)
    }

    /// Draws up to `draw` places in the queue, as many as are free.
    fn draw_places(&self) -> usize {
        let mut drawn = 0;
        let _ = self
            .queued
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |queued| {
                drawn = self.draw.min(self.config.queue.saturating_sub(queued));
                (drawn > 0).then_some(queued + drawn)
            });
        drawn
    }
}

/// Shards for a machine: two per core, so that each of a runtime's worker threads (one per core)
/// has its own, with room for the threads of its blocking pool.
fn shard_count() -> usize {
    std::thread::available_parallelism()
        .map_or(4, |cores| cores.get() * 2)
        .clamp(2, 64)
}

impl Processor {
    /// Starts the exporter thread, which sends every batch with `sender`.
    pub(crate) fn new(config: Config, sender: impl Sender, endpoint: String) -> Self {
        let shards = shard_count();
        let shared = Arc::new(Shared {
            config,
            shards: (0..shards).map(|_| Shard::default()).collect(),
            queued: AtomicUsize::new(0),
            // A quarter of the queue at most is held by the shards unused.
            draw: (config.queue / (4 * shards)).clamp(1, 64),
            closed: AtomicBool::new(false),
            state: Mutex::default(),
            work: Condvar::new(),
            done: Condvar::new(),
            resource: Mutex::default(),
        });
        {
            let shared = shared.clone();
            std::thread::Builder::new()
                .name("otlp-export".into())
                .spawn(move || export_batches(&shared, &sender, &endpoint))
                .expect("a thread for the span exporter");
        }
        Self { shared }
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

    /// Counts a span dropped for a full queue, and says so once per spell.
    fn dropped(&self) {
        metrics::spans_dropped("queue_full").inc();
        let now = Instant::now();
        let mut state = self.shared.lock();
        let new_spell = state.last_drop.is_none_or(|last| now - last > QUIET);
        state.last_drop = Some(now);
        drop(state);
        if new_spell {
            tracing::warn!(
                queue = self.shared.config.queue,
                "spans end faster than they can be exported: the queue of {} spans \
                 (OTEL_BSP_MAX_QUEUE_SIZE) is full, so spans are dropped and counted in \
                 telemetry_spans_dropped_total{{reason=\"queue_full\"}} (said once, until \
                 none is dropped for {} s)",
                self.shared.config.queue,
                QUIET.as_secs()
            );
        }
    }
}

impl SpanProcessor for Processor {
    fn on_start(&self, _span: &mut Span, _cx: &Context) {}

    fn on_end(&self, span: SpanData) {
        if !span.span_context.is_sampled() {
            return;
        }
        let shared = &self.shared;
        if shared.closed.load(Ordering::Relaxed) {
            return;
        }
        let mut shard = shared.shard();
        if shard.places == 0 {
            shard.places = shared.draw_places();
            if shard.places == 0 {
                drop(shard);
                self.dropped();
                return;
            }
        }
        shard.places -= 1;
        let batch = match &mut shard.batch {
            Some(batch) => batch,
            None => {
                // The exporter times a batch from its start: tell it.
                let mut state = shared.lock();
                state.started = true;
                let buffer = state.spare.pop();
                drop(state);
                shared.work.notify_one();
                shard.batch.insert(Batch::new(buffer))
            }
        };
        // Written straight into the batch: no other thread waits for this shard meanwhile.
        encode::scope_span(batch.group(&span.instrumentation_scope), &span);
        batch.spans += 1;
        if batch.spans >= shared.config.batch {
            let full = shard.batch.take().expect("a batch was just filled");
            drop(shard);
            shared.lock().ready.push_back(full);
            shared.work.notify_one();
        }
    }

    fn force_flush(&self) -> OTelSdkResult {
        self.ask(crate::FLUSH_TIMEOUT, |state| {
            state.flushes_asked += 1;
            let asked = state.flushes_asked;
            Box::new(move |s: &State| s.flushes_done >= asked)
        })
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        self.shared.closed.store(true, Ordering::Relaxed);
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
        self.shared.closed.store(true, Ordering::Relaxed);
        let mut state = self.shared.lock();
        state.shutdown = true;
        drop(state);
        self.shared.work.notify_one();
    }
}

/// `batches` joined into as few as hold at most `most` spans each, in order; the buffers emptied
/// by joining are put in `spare`.
fn join(batches: Vec<Batch>, most: usize, spare: &mut Vec<Vec<u8>>) -> Vec<Batch> {
    let mut joined: Vec<Batch> = Vec::with_capacity(batches.len());
    for batch in batches {
        match joined.last_mut() {
            Some(last) if last.spans + batch.spans <= most => {
                keep_spare(spare, last.absorb(batch));
            }
            _ => joined.push(batch),
        }
    }
    joined
}

fn keep_spare(spare: &mut Vec<Vec<u8>>, buffers: Vec<Vec<u8>>) {
    for buffer in buffers {
        if spare.len() < SPARE_BUFFERS && buffer.capacity() > 0 {
            spare.push(buffer);
        }
    }
}

/// The exporter thread: sends each batch when it is full, at the first tick after its first span,
/// or when a flush or shutdown asks; says once per spell that exports fail, and why, counting the
/// spans of failed exports.
fn export_batches(shared: &Shared, sender: &dyn Sender, endpoint: &str) {
    let config = shared.config;
    // The exporter ticks every schedule delay, as the specification's batch processor exports:
    // a batch that is not full leaves at the first tick after its first span, so a span waits
    // half the delay on average and never the whole of it.
    let epoch = Instant::now();
    let tick_after = |since: Instant| {
        let delay = config.delay.as_nanos().max(1);
        let ticks = since.duration_since(epoch).as_nanos() / delay + 1;
        epoch + Duration::from_nanos(u64::try_from(ticks * delay).unwrap_or(u64::MAX))
    };
    let mut exports = Exports {
        shared,
        sender,
        endpoint,
        failing: false,
    };
    // The next tick at which a shard's batch is due, when one is being filled.
    let mut tick: Option<Instant> = None;
    let mut state = shared.lock();
    loop {
        if state.flushes_asked > state.flushes_done || state.shutdown {
            // Everything that waits when the flush is asked: the ready batches and every shard's.
            let asked = state.flushes_asked;
            state = shared.gather(state, |_| true).0;
            for _ in 0..state.ready.len() {
                state = exports.send_first(state);
            }
            state.flushes_done = asked;
            tick = None;
            if state.shutdown {
                state.stopped = true;
                shared.done.notify_all();
                return;
            }
            shared.done.notify_all();
            continue;
        }
        if std::mem::take(&mut state.started) {
            tick = tick.or_else(|| Some(tick_after(Instant::now())));
        }
        let now = Instant::now();
        if tick.is_some_and(|tick| now >= tick) {
            let left;
            (state, left) = shared.gather(state, |batch| tick_after(batch.since) <= now);
            tick = left.then(|| tick_after(now));
        }
        if !state.ready.is_empty() {
            state = exports.send_first(state);
            continue;
        }
        state = match tick {
            Some(tick) => {
                let left = tick.saturating_duration_since(Instant::now());
                shared
                    .work
                    .wait_timeout(state, left)
                    .unwrap_or_else(|e| e.into_inner())
                    .0
            }
            None => shared.work.wait(state).unwrap_or_else(|e| e.into_inner()),
        };
    }
}

/// The exporter thread's sending: each batch as one request, and whether exports fail.
struct Exports<'a> {
    shared: &'a Shared,
    sender: &'a dyn Sender,
    endpoint: &'a str,
    failing: bool,
}

impl<'a> Exports<'a> {
    /// Sends the first ready batch, without holding `state` meanwhile; keeps its buffers for the
    /// batches to come.
    fn send_first(&mut self, mut state: MutexGuard<'a, State>) -> MutexGuard<'a, State> {
        let Some(batch) = state.ready.pop_front() else {
            return state;
        };
        self.shared.queued.fetch_sub(batch.spans, Ordering::Relaxed);
        drop(state);
        let body = {
            let resource = self
                .shared
                .resource
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            encode::request(&resource, &batch.groups)
        };
        let spans = batch.spans;
        let buffers = batch.into_buffers();
        self.outcome(self.sender.send(body), spans);
        let mut state = self.shared.lock();
        keep_spare(&mut state.spare, buffers);
        state
    }

    fn outcome(&mut self, sent: Result<(), String>, spans: usize) {
        match sent {
            Err(error) => {
                metrics::spans_dropped("export_failed").inc_by(spans as u64);
                if !self.failing {
                    self.failing = true;
                    let endpoint = self.endpoint;
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
            Ok(()) if self.failing => {
                self.failing = false;
                tracing::info!(endpoint = self.endpoint, "exporting spans again");
            }
            Ok(()) => {}
        }
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
    fn the_spans_of_several_threads_leave_together_in_batches_no_larger_than_the_size() {
        let sink = Collect::default();
        let provider = provider(100, 10, Duration::from_secs(600), &sink);
        std::thread::scope(|s| {
            for _ in 0..4 {
                s.spawn(|| spans(&provider, 3));
            }
        });
        provider.force_flush().unwrap();
        let batches = sink.batches();
        assert_eq!(batches.iter().sum::<usize>(), 12, "{batches:?}");
        assert!(batches.iter().all(|n| *n <= 10), "{batches:?}");
        assert_eq!(batches.len(), 2, "threads' batches are joined: {batches:?}");
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
