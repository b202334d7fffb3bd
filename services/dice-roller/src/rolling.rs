//! Rolling: fetching a die's spec, rolling it once or many times at once, and counting it all.
//!
//! A roll waits its simulated delay (the die's `delay_ms`, else the configured default) on a tokio
//! timer, draws a result and records it three ways: on its `roll` span (`die.type`, `roll.index`,
//! `roll.value`, status Error when it failed), in one log line inside that span, and in
//! `dice_rolls_total` and `dice_roll_results_total`. Metric labels only ever carry die types the
//! die-service confirmed and faces of those dice, so a garbage die name adds no series. Every way
//! a request fails is a [`RollError`], whose status is decided in one place.

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use dice::{DieSpec, Roll};
use futures::StreamExt as _;
use futures::stream::FuturesUnordered;
use lab_http::client::{Upstream, UpstreamError};
use lab_http::faults::Switch;
use lab_http::reply::{ErrorStatus, result};
use opentelemetry::KeyValue;
use opentelemetry::trace::SpanKind;
use prometheus::{Histogram, IntCounterVec, IntGauge, Registry};
use rand::Rng as _;
use serde::{Serialize, Serializer};
use telemetry::{metrics, span};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use warp::http::StatusCode;
use warp::reply::Response;

use crate::params::{Fetch, RollAsyncQuery, RollQuery, quote};

/// Simulated work per roll: `[min, max]` milliseconds, drawn uniformly.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DelayRange {
    pub min: u64,
    pub max: u64,
}

impl FromStr for DelayRange {
    type Err = String;

    /// `MIN..MAX` or a single number.
    fn from_str(text: &str) -> Result<Self, String> {
        let number = |part: &str| {
            part.trim()
                .parse::<u64>()
                .map_err(|_| format!("'{text}' is not MIN..MAX or N milliseconds"))
        };
        let (min, max) = match text.split_once("..") {
            Some((min, max)) => (number(min)?, number(max)?),
            None => (number(text)?, number(text)?),
        };
        if min > max {
            return Err(format!("'{text}': the minimum is greater than the maximum"));
        }
        Ok(Self { min, max })
    }
}

impl Serialize for DelayRange {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&format!("{}..{}", self.min, self.max))
    }
}

/// Sync (`/roll`) or async (`/roll-async`): the `mode` label.
#[derive(Clone, Copy)]
enum Mode {
    Sync,
    Async,
}

impl Mode {
    fn label(self) -> &'static str {
        match self {
            Self::Sync => "sync",
            Self::Async => "async",
        }
    }
}

/// Every way a roll request ends without rolls.
#[derive(Debug, thiserror::Error)]
pub(crate) enum RollError {
    /// The query is not one the route takes.
    #[error("{0}")]
    BadQuery(String),
    /// The die-service knows no such die; its own sentence.
    #[error("{0}")]
    UnknownDie(String),
    #[error(transparent)]
    DieService(#[from] UpstreamError),
    /// The one roll of `/roll` failed, as the die's error rate says it sometimes does.
    #[error("die '{die}' failed")]
    Failed { die: String },
    /// Rolling these would pass the most rolls the roller runs at once.
    #[error("the dice-roller is running its most rolls at once ({limit}); try again in a second")]
    Busy { limit: u32 },
}

impl ErrorStatus for RollError {
    fn status(&self) -> StatusCode {
        match self {
            Self::BadQuery(_) => StatusCode::BAD_REQUEST,
            Self::UnknownDie(_) => StatusCode::NOT_FOUND,
            Self::DieService(error) => error.status(),
            Self::Failed { .. } => StatusCode::INTERNAL_SERVER_ERROR,
            Self::Busy { .. } => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    fn retry_after(&self) -> Option<u32> {
        match self {
            Self::Busy { .. } => Some(1),
            Self::DieService(error) => error.retry_after(),
            _ => None,
        }
    }
}

#[derive(Serialize)]
struct OneRoll {
    die: String,
    roll: i64,
}

#[derive(Serialize)]
struct ManyRolls {
    die: String,
    count: usize,
    rolls: Vec<Option<i64>>,
    failed: usize,
    total: i64,
}

/// The roller's shared state: the die-service client, the limits and the metrics.
#[derive(Clone)]
pub(crate) struct Roller(Arc<Inner>);

struct Inner {
    die_service: Upstream,
    max_times: u32,
    default_delay: DelayRange,
    sequential: Switch,
    /// A turn per roll that may run at once, and their number.
    budget: Arc<Semaphore>,
    max_rolls: u32,
    rolls: IntCounterVec,
    results: IntCounterVec,
    batch_size: Histogram,
    in_progress: IntGauge,
}

impl Roller {
    pub(crate) fn new(
        die_service: Upstream,
        max_times: u32,
        default_delay: DelayRange,
        sequential: Switch,
        max_rolls: u32,
        registry: &Registry,
    ) -> Self {
        Self(Arc::new(Inner {
            die_service,
            max_times,
            default_delay,
            sequential,
            budget: Arc::new(Semaphore::new(max_rolls as usize)),
            max_rolls,
            rolls: metrics::counter_vec(
                registry,
                "dice_rolls_total",
                "Rolls, by die type, mode (sync or async) and result (success or error).",
                &["die_type", "mode", "result"],
            ),
            results: metrics::counter_vec(
                registry,
                "dice_roll_results_total",
                "Successful rolls by die type and face value: the observed distribution.",
                &["die_type", "value"],
            ),
            batch_size: metrics::histogram(
                registry,
                "async_roll_batch_size",
                "Rolls per /roll-async request that rolled (a batch refused for a bad die is not counted).",
                &[1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0, 200.0, 500.0, 1000.0],
            ),
            in_progress: metrics::int_gauge(
                registry,
                "async_rolls_in_progress",
                "Concurrent rolls of /roll-async requests running now.",
            ),
        }))
    }

    /// `GET /roll`.
    pub(crate) async fn roll(&self, query: &str) -> Response {
        result(self.roll_one(query).await)
    }

    async fn roll_one(&self, query: &str) -> Result<OneRoll, RollError> {
        let query = RollQuery::parse(query).map_err(RollError::BadQuery)?;
        let _turn = self.turns(1)?;
        let spec = self.fetch_spec(&query.die).await?;
        let mut span = roll_span(&span::parent(), &die_attribute(&query.die), None);
        match self
            .roll_once(&mut span, &query.die, &spec, Mode::Sync, None)
            .await
        {
            Roll::Value(roll) => Ok(OneRoll {
                die: query.die,
                roll,
            }),
            Roll::Failed => Err(RollError::Failed { die: query.die }),
        }
    }

    /// `GET /roll-async`.
    pub(crate) async fn roll_async(&self, query: &str) -> Response {
        result(self.roll_batch(query).await)
    }

    async fn roll_batch(&self, query: &str) -> Result<ManyRolls, RollError> {
        let query = RollAsyncQuery::parse(query, self.0.max_times).map_err(RollError::BadQuery)?;
        let _turns = self.turns(query.times)?;
        let rolls = self.roll_many(&query).await?;
        self.0.batch_size.observe(f64::from(query.times));
        let failed = rolls.iter().filter(|r| r.is_none()).count();
        let total = rolls.iter().flatten().sum();
        Ok(ManyRolls {
            die: query.die,
            count: rolls.len(),
            rolls,
            failed,
            total,
        })
    }

    /// Turns for `rolls` rolls, at once or not at all: past the most rolls at once, the request
    /// is refused at once rather than queued.
    fn turns(&self, rolls: u32) -> Result<OwnedSemaphorePermit, RollError> {
        self.0
            .budget
            .clone()
            .try_acquire_many_owned(rolls)
            .map_err(|_| RollError::Busy {
                limit: self.0.max_rolls,
            })
    }

    /// Runs `query.times` rolls at once; `None` marks a failed roll. With the `sequential` fault
    /// switch on, each roll is awaited before the next one starts.
    async fn roll_many(&self, query: &RollAsyncQuery) -> Result<Vec<Option<i64>>, RollError> {
        let die = query.die.as_str();
        let once = match query.fetch {
            Fetch::Once => Some(Arc::new(self.fetch_spec(die).await?)),
            Fetch::Each => None,
        };
        let once = &once;
        // Every roll's span (and its fetch, with `fetch=each`) is a child of the request's span.
        let parent = &span::parent();
        let die_type = &die_attribute(die);
        let roll = |index: usize| async move {
            let spec = match once {
                Some(spec) => spec.clone(),
                None => Arc::new(self.fetch_spec(die).await?),
            };
            let mut span = roll_span(parent, die_type, Some(index));
            let roll = self
                .roll_once(&mut span, die, &spec, Mode::Async, Some(index))
                .await;
            Ok::<_, RollError>((index, roll))
        };
        let mut rolls = vec![None; query.times as usize];
        let mut record = |(index, roll): (usize, Roll)| {
            rolls[index] = match roll {
                Roll::Value(value) => Some(value),
                Roll::Failed => None,
            }
        };
        if self.0.sequential.is_on() {
            for index in 0..query.times as usize {
                record(roll(index).await?);
            }
            return Ok(rolls);
        }
        // All the rolls at once, polled together in this request's task, as asyncio's `gather`
        // runs coroutines: each waits on its own timer, none blocks another, and a roll costs no
        // task of its own.
        let mut pending: FuturesUnordered<_> = (0..query.times as usize).map(roll).collect();
        while let Some(done) = pending.next().await {
            // The first failed fetch decides the answer; dropping the rest stops them.
            record(done?);
        }
        Ok(rolls)
    }

    /// One roll, recorded in its `span`: the delay, the draw, the records.
    async fn roll_once(
        &self,
        span: &mut span::Leaf,
        die: &str,
        spec: &DieSpec,
        mode: Mode,
        index: Option<usize>,
    ) -> Roll {
        let _in_progress =
            matches!(mode, Mode::Async).then(|| InProgress::start(&self.0.in_progress));
        let delay = self.delay_for(spec);
        if !delay.is_zero() {
            tokio::time::sleep(delay).await;
        }
        let roll = spec.roll(&mut rand::rng());
        match roll {
            Roll::Value(value) => {
                span.set_attribute(KeyValue::new("roll.value", value));
                self.0
                    .rolls
                    .with_label_values(&[die, mode.label(), "success"])
                    .inc();
                self.0
                    .results
                    .with_label_values(&[die, &value.to_string()])
                    .inc();
                span.in_scope(|| {
                    tracing::info!(
                        die_type = die,
                        roll_index = index,
                        roll_value = value,
                        delay_ms = delay.as_millis() as u64,
                        "rolled {value}"
                    )
                });
            }
            Roll::Failed => {
                span.set_error("roll_failed", format!("die '{die}' failed"));
                self.0
                    .rolls
                    .with_label_values(&[die, mode.label(), "error"])
                    .inc();
                span.in_scope(|| {
                    tracing::warn!(
                        die_type = die,
                        roll_index = index,
                        delay_ms = delay.as_millis() as u64,
                        "die '{die}' failed"
                    )
                });
            }
        }
        roll
    }

    fn delay_for(&self, spec: &DieSpec) -> Duration {
        let [min, max] = spec
            .delay_ms
            .unwrap_or([self.0.default_delay.min, self.0.default_delay.max]);
        Duration::from_millis(rand::rng().random_range(min..=max))
    }

    /// `GET /dice/{die}` on the die-service, as a checked spec or why there is none. A name no
    /// die can have is unknown without asking.
    async fn fetch_spec(&self, die: &str) -> Result<DieSpec, RollError> {
        if !dice::is_valid_type(die) {
            return Err(RollError::UnknownDie(format!(
                "unknown die '{}': {}",
                quote(die),
                dice::TYPE_RULE
            )));
        }
        let answer = self.0.die_service.get(&["dice", die], None).await?;
        match answer.status {
            StatusCode::OK => parse_spec(&answer.body).map_err(|detail| {
                RollError::DieService(UpstreamError::Invalid {
                    name: self.0.die_service.name(),
                    detail,
                })
            }),
            StatusCode::NOT_FOUND => Err(RollError::UnknownDie(
                error_message(&answer.body)
                    .unwrap_or_else(|| format!("unknown die '{}'", quote(die))),
            )),
            status => Err(RollError::DieService(UpstreamError::Status {
                name: self.0.die_service.name(),
                status,
            })),
        }
    }
}

/// `die.type` for the spans of one request: the name is shared by all its rolls, not copied.
fn die_attribute(die: &str) -> opentelemetry::Value {
    opentelemetry::Value::String(Arc::<str>::from(die).into())
}

/// A `roll` span under `parent` (the request's span).
fn roll_span(
    parent: &opentelemetry::Context,
    die_type: &opentelemetry::Value,
    index: Option<usize>,
) -> span::Leaf {
    span::Leaf::start("roll", SpanKind::Internal, parent, || {
        // Room for `roll.value` (or `error.type`), set when the roll ends.
        let mut attributes = Vec::with_capacity(4);
        attributes.push(KeyValue::new("die.type", die_type.clone()));
        // `roll.mode` tells a batch's rolls from a lone one where only the span is seen: Tempo's
        // span metrics keep it as a dimension, so a panel can sum the async rolls alone.
        match index {
            Some(index) => {
                attributes.push(KeyValue::new("roll.mode", "async"));
                attributes.push(KeyValue::new("roll.index", index as i64));
            }
            None => attributes.push(KeyValue::new("roll.mode", "sync")),
        }
        attributes
    })
}

/// The spec in a die-service answer, checked as the die-service checks its file.
fn parse_spec(body: &[u8]) -> Result<DieSpec, String> {
    let value: serde_json::Value =
        serde_json::from_slice(body).map_err(|e| format!("not JSON: {e}"))?;
    DieSpec::from_json(&value, &["type"]).map_err(|e| e.to_string())
}

/// The `error` sentence of an error body.
fn error_message(body: &[u8]) -> Option<String> {
    let value: serde_json::Value = serde_json::from_slice(body).ok()?;
    value.get("error")?.as_str().map(str::to_owned)
}

/// Counts a roll in `async_rolls_in_progress` for as long as it lives, even if it is cancelled.
struct InProgress(IntGauge);

impl InProgress {
    fn start(gauge: &IntGauge) -> Self {
        gauge.inc();
        Self(gauge.clone())
    }
}

impl Drop for InProgress {
    fn drop(&mut self) {
        self.0.dec();
    }
}
