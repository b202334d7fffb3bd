//! A small part of Loki's `GET /loki/api/v1/query_range`, answered from the services' log files.
//!
//! Without Loki installed the lab still has logs: each service writes one JSON object per line to
//! `LOG_DIR/<service>.log`. In the full lab Alloy ships those lines to Loki
//! (`observability/alloy/logs.alloy`): each complete line unchanged, at the time of its own
//! `timestamp`, in the stream labelled with its `service` and `level`, with its `trace_id` and
//! `span_id` as structured metadata. This module answers as that Loki 3.x would, reading the files
//! at query time: Loki merges structured metadata into the stream labels of its answer unless the
//! client asks for categorised labels, so the lines of each span come back as a stream of their own.
//!
//! It answers a stream selector (`=`, `!=`, `=~`, `!~`; regexes anchored; labels other than
//! `service` and `level` are missing, so they compare as the empty string) followed by line filters
//! (`|=`, `!=`, `|~`, `!~`), with Loki's parameters, defaults and error messages
//! (`pkg/loghttp/params.go`, `pkg/loghttp/query.go`, `pkg/logql/syntax`). Anything else in LogQL,
//! such as `| json`, a label filter or a metric query, is refused with a message that says what
//! this store answers and that the full LogQL needs the real Loki (`nix run`).
//!
//! Log files can hold hundreds of megabytes after a load test, so they are read in chunks and only
//! lines that pass the line filters are parsed as JSON; with a `|=` filter the candidate lines are
//! found with `memchr::memmem` over the raw bytes.

use std::borrow::Cow;
use std::cmp::Ordering;
use std::collections::{BTreeMap, BinaryHeap};
use std::fmt;
use std::fs::File;
use std::io::{ErrorKind, Read};
use std::num::{IntErrorKind, ParseIntError};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use memchr::memmem::Finder;
use regex::Regex;
use serde_json::{Map, Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// Loki's default `limit` (`defaultQueryLimit`).
const DEFAULT_LIMIT: i64 = 100;
/// Loki's default `max_entries_limit_per_query`.
const MAX_ENTRIES_LIMIT: i64 = 5000;
const NANOS_PER_SECOND: i128 = 1_000_000_000;
/// Loki's default look-back when `start` is not given (`defaultSince`).
const DEFAULT_SINCE: i128 = 3600 * NANOS_PER_SECOND;
/// Loki refuses a `step` that makes more points than this per series.
const MAX_POINTS: i128 = 11_000;
/// Loki's default `max_line_size` (256KB, in binary units): it discards longer lines at ingestion.
const MAX_LINE_BYTES: usize = 256 * 1024;
/// The bytes read from a file at a time.
const CHUNK_BYTES: usize = 8 * 1024 * 1024;

/// What Loki says of a selector whose every matcher accepts the empty string
/// (`pkg/logql/syntax/parser.go`, as a `ParseError` without a position).
const EMPTY_COMPATIBLE: &str = "parse error : queries require at least one regexp or equality \
    matcher that does not have an empty-compatible value. For instance, app=~\".*\" does not meet \
    this requirement, but app=~\".+\" will";

/// A query Loki would refuse, or one this store does not answer; HTTP 400, with the message as a
/// plain-text body, as Loki answers.
#[derive(Debug, thiserror::Error)]
pub(crate) enum QueryError {
    /// A parameter other than `query` with a value that Loki refuses, in Loki's words.
    #[error("{0}")]
    Parameter(String),
    /// `query` is not LogQL.
    #[error("parse error at {at}: syntax error: {detail}")]
    Syntax { at: Position, detail: String },
    /// `query` is LogQL beyond what this store answers.
    #[error(
        "parse error at {at}: found {found} (`{text}`), but the lab's built-in store answers only \
         a stream selector on `service` and `level` followed by line filters (`|=`, `!=`, `|~`, \
         `!~`); the full LogQL needs the real Loki, which `nix run` brings"
    )]
    Unsupported {
        at: Position,
        found: &'static str,
        text: String,
    },
    /// A regex in a matcher or a line filter that does not compile.
    #[error("parse error at {at}: {source}")]
    Regex { at: Position, source: regex::Error },
    /// Every matcher of the selector accepts the empty string.
    #[error("{EMPTY_COMPATIBLE}")]
    EmptyCompatible,
    /// `limit` is above Loki's default `max_entries_limit_per_query`.
    #[error(
        "max entries limit per query exceeded, limit > max_entries_limit_per_query \
         ({limit} > {MAX_ENTRIES_LIMIT})"
    )]
    TooManyEntries { limit: i64 },
}

/// Where in the query text an error is, counted as Loki counts (from 1, in characters).
#[derive(Debug)]
pub(crate) struct Position {
    line: usize,
    col: usize,
}

impl fmt::Display for Position {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}, col {}", self.line, self.col)
    }
}

/// The answer to a query.
#[derive(Debug)]
pub(crate) struct Answer {
    /// Loki's JSON body.
    pub(crate) body: Value,
    /// Complete lines left out as not log entries: not a JSON object, without an RFC 3339
    /// `timestamp`, or longer than Loki accepts. Only lines that pass the query's line filters are
    /// looked at, except that a line longer than a read chunk (8 MiB) always counts.
    pub(crate) skipped_lines: u64,
}

/// Answers `GET /loki/api/v1/query_range?{raw_query_string}` (the part after `?`) from
/// `log_dir/*.log`, at `now`.
///
/// Files that cannot be read are left out and named in the answer's `warnings` (a field of Loki's
/// answer); a missing directory holds no logs.
pub(crate) fn query_range(
    log_dir: &Path,
    raw_query_string: &str,
    now: SystemTime,
) -> Result<Answer, QueryError> {
    let request = Request::parse(raw_query_string, unix_nanos(now))?;
    Ok(run(log_dir, &request, CHUNK_BYTES))
}

fn unix_nanos(time: SystemTime) -> i128 {
    match time.duration_since(UNIX_EPOCH) {
        Ok(after) => after.as_nanos() as i128,
        Err(before) => -(before.duration().as_nanos() as i128),
    }
}

fn run(log_dir: &Path, request: &Request, chunk_bytes: usize) -> Answer {
    let started = Instant::now();
    let mut scan = Scan::new(request, chunk_bytes);
    let mut warnings = Vec::new();
    match log_files(log_dir) {
        Ok(files) => {
            for path in files {
                match scan.file(&path) {
                    // Removed since it was listed: its lines are gone.
                    Err(e) if e.kind() == ErrorKind::NotFound => {}
                    Err(e) => warnings.push(format!("could not read {}: {e}", path.display())),
                    Ok(()) => {}
                }
            }
        }
        Err(e) if e.kind() == ErrorKind::NotFound => {}
        Err(e) => warnings.push(format!("could not list {}: {e}", log_dir.display())),
    }
    scan.finish(started.elapsed(), warnings)
}

/// `log_dir/*.log`, by name.
fn log_files(log_dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(log_dir)? {
        let path = entry?.path();
        if path.extension().is_some_and(|e| e == "log") && path.is_file() {
            files.push(path);
        }
    }
    files.sort();
    Ok(files)
}

enum Direction {
    Forward,
    Backward,
}

/// The parameters of a query, checked as Loki checks them, in Loki's order.
struct Request {
    query: Query,
    /// Entries with `start <= timestamp < end`, in nanoseconds since the epoch.
    start: i128,
    end: i128,
    limit: usize,
    direction: Direction,
}

impl Request {
    fn parse(raw_query_string: &str, now: i128) -> Result<Self, QueryError> {
        let params = Params::parse(raw_query_string);
        let since = match params.get("since") {
            Some(since) => prometheus_duration(since)
                .map_err(|e| parameter(format!("could not parse 'since' parameter: {e}")))?,
            None => DEFAULT_SINCE,
        };
        let end = match params.get("end") {
            Some(end) => timestamp(end)
                .map_err(|e| parameter(format!("could not parse 'end' parameter: {e}")))?,
            None => now,
        };
        // `since` counts back from `end`, or from now when `end` is in the future.
        let start = match params.get("start") {
            Some(start) => timestamp(start)
                .map_err(|e| parameter(format!("could not parse 'start' parameter: {e}")))?,
            None => end.min(now) - since,
        };
        if end < start {
            return Err(parameter(
                "end timestamp must not be before or equal to start time",
            ));
        }
        let limit = match params.get("limit") {
            Some(limit) => limit
                .parse::<i64>()
                .map_err(|e| parameter(format!("strconv.Atoi: {}", go_int_error(limit, &e))))?,
            None => DEFAULT_LIMIT,
        };
        if limit <= 0 {
            return Err(parameter("limit must be a positive value"));
        }
        let direction = match params.get("direction") {
            None => Direction::Backward,
            Some(d) if d.eq_ignore_ascii_case("backward") => Direction::Backward,
            Some(d) if d.eq_ignore_ascii_case("forward") => Direction::Forward,
            Some(d) => return Err(parameter(format!("invalid direction '{d}'"))),
        };
        // `step` and `interval` change nothing here, but Loki refuses bad ones.
        if let Some(step) = params.get("step") {
            let step = seconds_or_duration(step)?;
            if step <= 0 {
                return Err(parameter(
                    "zero or negative query resolution step widths are not accepted. \
                     Try a positive integer",
                ));
            }
            if (end - start) / step > MAX_POINTS {
                return Err(parameter(
                    "exceeded maximum resolution of 11,000 points per time series. \
                     Try increasing the value of the step parameter",
                ));
            }
        }
        if let Some(interval) = params.get("interval")
            && seconds_or_duration(interval)? < 0
        {
            return Err(parameter("interval must be >= 0"));
        }
        let query = Query::parse(params.get("query").unwrap_or(""))?;
        if limit > MAX_ENTRIES_LIMIT {
            return Err(QueryError::TooManyEntries { limit });
        }
        Ok(Self {
            query,
            start,
            end,
            limit: limit as usize,
            direction,
        })
    }
}

fn parameter(message: impl Into<String>) -> QueryError {
    QueryError::Parameter(message.into())
}

/// The query string's parameters; the first value of each counts, and an empty one is absent, as
/// with Go's `Form.Get`.
struct Params<'a>(Vec<(Cow<'a, str>, Cow<'a, str>)>);

impl<'a> Params<'a> {
    fn parse(raw: &'a str) -> Self {
        Self(form_urlencoded::parse(raw.as_bytes()).collect())
    }

    fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_ref())
            .filter(|v| !v.is_empty())
    }
}

/// Go's `strconv` error text for an integer that did not parse.
fn go_int_error(text: &str, error: &ParseIntError) -> String {
    let why = match error.kind() {
        IntErrorKind::PosOverflow | IntErrorKind::NegOverflow => "value out of range",
        _ => "invalid syntax",
    };
    format!("parsing {text:?}: {why}")
}

/// A time as Loki's `parseTimestamp` reads it: float seconds (rounded to milliseconds), an integer
/// of at most 10 characters as seconds and a longer one as nanoseconds, or RFC 3339.
fn timestamp(text: &str) -> Result<i128, String> {
    if text.contains('.')
        && let Ok(seconds) = text.parse::<f64>()
        && seconds.is_finite()
    {
        let whole = seconds.trunc();
        let fraction = ((seconds - whole) * 1000.0).round() / 1000.0;
        return Ok(i128::from(whole as i64) * NANOS_PER_SECOND + (fraction * 1e9) as i128);
    }
    match text.parse::<i64>() {
        Ok(n) if text.len() <= 10 => Ok(i128::from(n) * NANOS_PER_SECOND),
        Ok(n) => Ok(i128::from(n)),
        Err(e) => {
            rfc3339(text).ok_or_else(|| format!("strconv.ParseInt: {}", go_int_error(text, &e)))
        }
    }
}

fn rfc3339(text: &str) -> Option<i128> {
    OffsetDateTime::parse(text, &Rfc3339)
        .ok()
        .map(OffsetDateTime::unix_timestamp_nanos)
}

/// `step` or `interval`: float seconds, or a Prometheus duration.
fn seconds_or_duration(text: &str) -> Result<i128, QueryError> {
    if let Ok(seconds) = text.parse::<f64>() {
        let nanos = seconds * 1e9;
        if nanos > i64::MAX as f64 || nanos < i64::MIN as f64 {
            return Err(parameter(format!(
                "cannot parse {text:?} to a valid duration. It overflows int64"
            )));
        }
        return Ok(i128::from(nanos as i64));
    }
    prometheus_duration(text)
        .map_err(|_| parameter(format!("cannot parse {text:?} to a valid duration")))
}

/// A Prometheus duration such as `1h30m` (`model.ParseDuration`), in nanoseconds.
fn prometheus_duration(text: &str) -> Result<i128, String> {
    match text {
        "0" => return Ok(0),
        "" => return Err("empty duration string".to_owned()),
        _ => {}
    }
    let invalid = || format!("not a valid duration string: {text:?}");
    let mut rest = text;
    let mut total: i128 = 0;
    let mut last_rank = 0;
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        let value: u64 = rest[..digits].parse().map_err(|_| invalid())?;
        rest = &rest[digits..];
        let unit_len = rest.bytes().take_while(|b| !b.is_ascii_digit()).count();
        let (unit, after) = rest.split_at(unit_len);
        rest = after;
        // Units go from the largest to the smallest, each at most once.
        let (rank, nanos) = match unit {
            "y" => (1, 365 * 24 * 3600 * NANOS_PER_SECOND),
            "w" => (2, 7 * 24 * 3600 * NANOS_PER_SECOND),
            "d" => (3, 24 * 3600 * NANOS_PER_SECOND),
            "h" => (4, 3600 * NANOS_PER_SECOND),
            "m" => (5, 60 * NANOS_PER_SECOND),
            "s" => (6, NANOS_PER_SECOND),
            "ms" => (7, NANOS_PER_SECOND / 1000),
            "" => return Err(invalid()),
            _ => return Err(format!("unknown unit {unit:?} in duration {text:?}")),
        };
        if rank <= last_rank {
            return Err(invalid());
        }
        last_rank = rank;
        total += i128::from(value) * nanos;
        if total > i128::from(i64::MAX) {
            return Err("duration out of range".to_owned());
        }
    }
    Ok(total)
}

/// The LogQL this store answers: a stream selector and line filters.
struct Query {
    matchers: Vec<Matcher>,
    filters: Vec<LineFilter>,
}

/// The labels a stream has here; a matcher on any other label sees the empty string.
enum StreamLabel {
    Service,
    Level,
}

struct Matcher {
    label: Option<StreamLabel>,
    test: ValueTest,
}

enum ValueTest {
    Equal(String),
    NotEqual(String),
    /// Anchored at both ends.
    Matches(Regex),
    NotMatches(Regex),
}

impl ValueTest {
    fn accepts(&self, value: &str) -> bool {
        match self {
            Self::Equal(v) => value == v,
            Self::NotEqual(v) => value != v,
            Self::Matches(re) => re.is_match(value),
            Self::NotMatches(re) => !re.is_match(value),
        }
    }
}

enum LineFilter {
    Contains(Finder<'static>),
    NotContains(Finder<'static>),
    /// Not anchored: anywhere in the line.
    Matches(regex::bytes::Regex),
    NotMatches(regex::bytes::Regex),
}

impl LineFilter {
    fn accepts(&self, line: &[u8]) -> bool {
        match self {
            Self::Contains(f) => f.find(line).is_some(),
            Self::NotContains(f) => f.find(line).is_none(),
            Self::Matches(re) => re.is_match(line),
            Self::NotMatches(re) => !re.is_match(line),
        }
    }
}

enum FilterOp {
    Contains,
    NotContains,
    Matches,
    NotMatches,
}

impl Query {
    fn parse(text: &str) -> Result<Self, QueryError> {
        let mut parser = Parser { text, pos: 0 };
        parser.skip_space();
        let matchers = parser.selector()?;
        let mut filters = Vec::new();
        loop {
            parser.skip_space();
            if parser.rest().is_empty() {
                break;
            }
            filters.push(parser.line_filter()?);
        }
        if matchers.iter().all(|m| m.test.accepts("")) {
            return Err(QueryError::EmptyCompatible);
        }
        Ok(Self { matchers, filters })
    }

    fn selects(&self, service: &str, level: &str) -> bool {
        self.matchers.iter().all(|m| {
            m.test.accepts(match m.label {
                Some(StreamLabel::Service) => service,
                Some(StreamLabel::Level) => level,
                None => "",
            })
        })
    }

    /// The longest `|=` text: lines without it need no further look.
    fn required_text(&self) -> Option<&Finder<'static>> {
        self.filters
            .iter()
            .filter_map(|f| match f {
                LineFilter::Contains(finder) if !finder.needle().is_empty() => Some(finder),
                _ => None,
            })
            .max_by_key(|f| f.needle().len())
    }
}

/// A hand-written parser for the LogQL subset, with Loki's lexical rules: blanks and `#` comments
/// between tokens, strings in double quotes with Go's escapes or in backticks.
struct Parser<'a> {
    text: &'a str,
    pos: usize,
}

/// Words that start a LogQL stage after `|` and are not label filters.
const PARSER_STAGES: [&str; 5] = ["json", "logfmt", "regexp", "pattern", "unpack"];
const FORMAT_STAGES: [&str; 2] = ["line_format", "label_format"];
const OTHER_STAGES: [&str; 4] = ["unwrap", "drop", "keep", "decolorize"];

impl<'a> Parser<'a> {
    fn rest(&self) -> &'a str {
        &self.text[self.pos..]
    }

    fn skip_space(&mut self) {
        loop {
            let rest = self.rest();
            let trimmed = rest.trim_start_matches([' ', '\t', '\r', '\n']);
            self.pos += rest.len() - trimmed.len();
            if !trimmed.starts_with('#') {
                return;
            }
            self.pos += trimmed.find('\n').unwrap_or(trimmed.len());
        }
    }

    fn eat(&mut self, token: &str) -> bool {
        let found = self.rest().starts_with(token);
        if found {
            self.pos += token.len();
        }
        found
    }

    fn identifier(&mut self) -> Option<&'a str> {
        let rest = self.rest();
        if !rest.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_') {
            return None;
        }
        let len = rest
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(rest.len());
        self.pos += len;
        Some(&rest[..len])
    }

    fn position(&self, offset: usize) -> Position {
        let before = &self.text[..offset];
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        Position {
            line: before.matches('\n').count() + 1,
            col: before[line_start..].chars().count() + 1,
        }
    }

    fn syntax(&self, offset: usize, detail: impl Into<String>) -> QueryError {
        QueryError::Syntax {
            at: self.position(offset),
            detail: detail.into(),
        }
    }

    /// "unexpected X, expected Y" at the current position.
    fn unexpected(&self, expected: &str) -> QueryError {
        let found = match self.rest().chars().next() {
            None => "end of query".to_owned(),
            Some(c) => format!("{c:?}"),
        };
        self.syntax(self.pos, format!("unexpected {found}, expected {expected}"))
    }

    fn unsupported(&self, offset: usize, found: &'static str) -> QueryError {
        const SHOWN: usize = 40;
        let line = self.text[offset..].lines().next().unwrap_or("").trim_end();
        let text = match line.char_indices().nth(SHOWN) {
            Some((cut, _)) => format!("{}…", &line[..cut]),
            None => line.to_owned(),
        };
        QueryError::Unsupported {
            at: self.position(offset),
            found,
            text,
        }
    }

    fn selector(&mut self) -> Result<Vec<Matcher>, QueryError> {
        let start = self.pos;
        if !self.eat("{") {
            return Err(self.not_a_selector(start));
        }
        let mut matchers = Vec::new();
        self.skip_space();
        if self.eat("}") {
            return Ok(matchers);
        }
        loop {
            self.skip_space();
            matchers.push(self.matcher()?);
            self.skip_space();
            if self.eat("}") {
                return Ok(matchers);
            }
            if !self.eat(",") {
                return Err(self.unexpected("',' or '}'"));
            }
        }
    }

    /// The error for a query that does not start with `{`.
    fn not_a_selector(&mut self, start: usize) -> QueryError {
        const EXPECTED: &str = "a stream selector such as {service=\"dice-roller\"}";
        if self.rest().starts_with('(') {
            return self.unsupported(start, "a parenthesised expression");
        }
        let Some(word) = self.identifier() else {
            return self.unexpected(EXPECTED);
        };
        self.skip_space();
        let grouped = matches!(self.identifier(), Some("by" | "without"));
        if grouped || self.rest().starts_with('(') {
            return self.unsupported(start, "a metric query");
        }
        self.syntax(start, format!("unexpected {word:?}, expected {EXPECTED}"))
    }

    fn matcher(&mut self) -> Result<Matcher, QueryError> {
        let Some(name) = self.identifier() else {
            return Err(self.unexpected("a label name"));
        };
        let label = match name {
            "service" => Some(StreamLabel::Service),
            "level" => Some(StreamLabel::Level),
            _ => None,
        };
        self.skip_space();
        let op = ["=~", "!~", "!=", "="]
            .into_iter()
            .find(|op| self.eat(op))
            .ok_or_else(|| self.unexpected("=, !=, =~ or !~"))?;
        self.skip_space();
        let at = self.pos;
        let value = self.string()?;
        let test = match op {
            "=" => ValueTest::Equal(value),
            "!=" => ValueTest::NotEqual(value),
            _ => {
                // Checked alone first, so that the anchoring cannot change what it means.
                Regex::new(&value).map_err(|e| self.regex_error(at, e))?;
                let anchored =
                    Regex::new(&format!("^(?s:{value})$")).map_err(|e| self.regex_error(at, e))?;
                if op == "=~" {
                    ValueTest::Matches(anchored)
                } else {
                    ValueTest::NotMatches(anchored)
                }
            }
        };
        Ok(Matcher { label, test })
    }

    fn regex_error(&self, offset: usize, source: regex::Error) -> QueryError {
        QueryError::Regex {
            at: self.position(offset),
            source,
        }
    }

    fn line_filter(&mut self) -> Result<LineFilter, QueryError> {
        let start = self.pos;
        let op = if self.eat("|=") {
            FilterOp::Contains
        } else if self.eat("!=") {
            FilterOp::NotContains
        } else if self.eat("|~") {
            FilterOp::Matches
        } else if self.eat("!~") {
            FilterOp::NotMatches
        } else if self.rest().starts_with("|>") || self.rest().starts_with("!>") {
            return Err(self.unsupported(start, "a pattern line filter"));
        } else if self.eat("|") {
            return Err(self.stage(start));
        } else {
            return Err(self.unexpected("a line filter (|=, !=, |~, !~) or the end of the query"));
        };
        self.skip_space();
        let at = self.pos;
        if !self.rest().starts_with(['"', '`']) {
            if self.identifier() == Some("ip") {
                return Err(self.unsupported(start, "an ip() line filter"));
            }
            self.pos = at;
            return Err(self.unexpected("a string in double quotes or backticks"));
        }
        let text = self.string()?;
        self.skip_space();
        let after = self.pos;
        if self.identifier() == Some("or") {
            return Err(self.unsupported(after, "`or` between line filter values"));
        }
        self.pos = after;
        let regex = || regex::bytes::Regex::new(&text).map_err(|e| self.regex_error(at, e));
        Ok(match op {
            FilterOp::Contains => LineFilter::Contains(Finder::new(text.as_bytes()).into_owned()),
            FilterOp::NotContains => {
                LineFilter::NotContains(Finder::new(text.as_bytes()).into_owned())
            }
            FilterOp::Matches => LineFilter::Matches(regex()?),
            FilterOp::NotMatches => LineFilter::NotMatches(regex()?),
        })
    }

    /// The error for a `|` stage, `start` being at the `|`.
    fn stage(&mut self, start: usize) -> QueryError {
        self.skip_space();
        let found = match self.identifier() {
            Some(word) if PARSER_STAGES.contains(&word) => "a parser stage",
            Some(word) if FORMAT_STAGES.contains(&word) => "a formatting stage",
            Some(word) if OTHER_STAGES.contains(&word) => "a pipeline stage",
            Some(_) => "a label filter",
            None => "a pipeline stage",
        };
        self.unsupported(start, found)
    }

    /// A string in double quotes, with Go's escapes, or in backticks, taken as it is.
    fn string(&mut self) -> Result<String, QueryError> {
        let start = self.pos;
        let rest = self.rest();
        if let Some(raw) = rest.strip_prefix('`') {
            let end = raw
                .find('`')
                .ok_or_else(|| self.syntax(start, "literal not terminated"))?;
            self.pos += end + 2;
            return Ok(raw[..end].to_owned());
        }
        let Some(quoted) = rest.strip_prefix('"') else {
            return Err(self.unexpected("a string in double quotes or backticks"));
        };
        let mut bytes = Vec::new();
        let mut chars = quoted.char_indices();
        loop {
            let Some((i, c)) = chars.next() else {
                return Err(self.syntax(start, "literal not terminated"));
            };
            match c {
                '"' => {
                    self.pos += i + 2;
                    break;
                }
                '\n' => return Err(self.syntax(start, "literal not terminated")),
                '\\' => {
                    let escape_at = self.pos + 1 + i;
                    unescape(&mut chars, &mut bytes)
                        .ok_or_else(|| self.syntax(escape_at, "invalid escape in string"))?;
                }
                c => bytes.extend_from_slice(c.encode_utf8(&mut [0; 4]).as_bytes()),
            }
        }
        String::from_utf8(bytes).map_err(|_| self.syntax(start, "string is not valid UTF-8"))
    }
}

/// Appends what the escape after a `\` stands for (Go's escapes in a double-quoted string);
/// `None` if it is not one.
fn unescape(chars: &mut std::str::CharIndices<'_>, out: &mut Vec<u8>) -> Option<()> {
    let (_, c) = chars.next()?;
    let mut digits = |count: usize, radix: u32| -> Option<u32> {
        (0..count).try_fold(0u32, |n, _| {
            Some(n * radix + chars.next()?.1.to_digit(radix)?)
        })
    };
    match c {
        'a' => out.push(0x07),
        'b' => out.push(0x08),
        'f' => out.push(0x0c),
        'n' => out.push(b'\n'),
        'r' => out.push(b'\r'),
        't' => out.push(b'\t'),
        'v' => out.push(0x0b),
        '\\' | '"' => out.push(c as u8),
        // Bytes, not characters, as in Go.
        'x' => out.push(u8::try_from(digits(2, 16)?).ok()?),
        '0'..='7' => {
            let low = digits(2, 8)?;
            out.push(u8::try_from(c.to_digit(8)? * 64 + low).ok()?);
        }
        'u' | 'U' => {
            let c = char::from_u32(digits(if c == 'u' { 4 } else { 8 }, 16)?)?;
            out.extend_from_slice(c.encode_utf8(&mut [0; 4]).as_bytes());
        }
        _ => return None,
    }
    Some(())
}

/// The labels of an entry's stream: its stream labels and structured metadata, merged, as Loki
/// answers without categorised labels. Empty values are absent. Fields in label-name order.
struct Labels<'a> {
    level: Option<&'a str>,
    service: Option<&'a str>,
    span_id: Option<&'a str>,
    trace_id: Option<&'a str>,
}

impl<'a> Labels<'a> {
    /// The labels Alloy gives a line (`observability/alloy/logs.alloy`): its `service` and `level`
    /// fields as stream labels, its `trace_id` and `span_id` as structured metadata, each when it
    /// is a string that is not empty.
    fn of(fields: &'a Map<String, Value>) -> Self {
        let text = |name| {
            fields
                .get(name)
                .and_then(Value::as_str)
                .filter(|v| !v.is_empty())
        };
        Self {
            level: text("level"),
            service: text("service"),
            span_id: text("span_id"),
            trace_id: text("trace_id"),
        }
    }

    fn pairs(&self) -> impl Iterator<Item = (&'static str, &'a str)> {
        [
            ("level", self.level),
            ("service", self.service),
            ("span_id", self.span_id),
            ("trace_id", self.trace_id),
        ]
        .into_iter()
        .filter_map(|(name, value)| Some((name, value?)))
    }

    /// Prometheus' text for a label set, by which Loki orders the streams of an answer.
    fn text(&self) -> String {
        let pairs: Vec<String> = self
            .pairs()
            .map(|(name, value)| format!("{name}={value:?}"))
            .collect();
        format!("{{{}}}", pairs.join(", "))
    }

    fn json(&self) -> Value {
        Value::Object(
            self.pairs()
                .map(|(name, value)| (name.to_owned(), Value::from(value)))
                .collect(),
        )
    }
}

/// An entry within the limit so far.
struct Kept {
    /// Its place in the answer, the first being the smallest: the time (negated when backward),
    /// then the order in which lines were read.
    rank: (i128, i128),
    timestamp: i128,
    line: String,
}

impl PartialEq for Kept {
    fn eq(&self, other: &Self) -> bool {
        self.rank == other.rank
    }
}

impl Eq for Kept {}

impl PartialOrd for Kept {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Kept {
    fn cmp(&self, other: &Self) -> Ordering {
        self.rank.cmp(&other.rank)
    }
}

/// The state of a query across files.
struct Scan<'q> {
    request: &'q Request,
    required: Option<&'q Finder<'static>>,
    /// The kept entries, the last in the answer's order on top.
    kept: BinaryHeap<Kept>,
    buffer: Vec<u8>,
    bytes_read: u64,
    /// Entries that pass the whole query, within the limit or not.
    matched: u64,
    skipped: u64,
}

impl<'q> Scan<'q> {
    fn new(request: &'q Request, chunk_bytes: usize) -> Self {
        Self {
            request,
            required: request.query.required_text(),
            kept: BinaryHeap::with_capacity(request.limit + 1),
            buffer: vec![0; chunk_bytes],
            bytes_read: 0,
            matched: 0,
            skipped: 0,
        }
    }

    /// Reads the complete lines of a file, a chunk at a time. A line still being written (no `\n`
    /// yet) is left for a later query; one longer than a chunk is skipped.
    fn file(&mut self, path: &Path) -> std::io::Result<()> {
        let mut file = File::open(path)?;
        let mut buffer = std::mem::take(&mut self.buffer);
        let result = self.read_lines(&mut file, &mut buffer);
        self.buffer = buffer;
        result
    }

    fn read_lines(&mut self, file: &mut File, buffer: &mut [u8]) -> std::io::Result<()> {
        // `buffer[..held]` is the start of a line whose end is not read yet.
        let mut held = 0;
        let mut too_long = false;
        loop {
            let read = match file.read(&mut buffer[held..]) {
                Ok(0) => return Ok(()),
                Ok(read) => read,
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            self.bytes_read += read as u64;
            let filled = held + read;
            let mut from = 0;
            if too_long {
                match memchr::memchr(b'\n', &buffer[held..filled]) {
                    Some(i) => {
                        from = held + i + 1;
                        too_long = false;
                    }
                    None => {
                        held = 0;
                        continue;
                    }
                }
            }
            match memchr::memrchr(b'\n', &buffer[from..filled]) {
                Some(i) => {
                    let complete = from + i + 1;
                    self.lines(&buffer[from..complete]);
                    buffer.copy_within(complete..filled, 0);
                    held = filled - complete;
                }
                None if filled == buffer.len() => {
                    self.skipped += 1;
                    too_long = true;
                    held = 0;
                }
                None => {
                    buffer.copy_within(from..filled, 0);
                    held = filled - from;
                }
            }
        }
    }

    /// Whole lines, each ending in `\n`.
    fn lines(&mut self, block: &[u8]) {
        let Some(required) = self.required else {
            let mut start = 0;
            for end in memchr::memchr_iter(b'\n', block) {
                self.line(&block[start..end]);
                start = end + 1;
            }
            return;
        };
        let mut rest = block;
        while let Some(found) = required.find(rest) {
            let start = memchr::memrchr(b'\n', &rest[..found]).map_or(0, |i| i + 1);
            // A line ends at its `\n`, even when the text looked for has one.
            let end = memchr::memchr(b'\n', &rest[found..]).map_or(rest.len(), |i| found + i);
            self.line(&rest[start..end]);
            rest = rest.get(end + 1..).unwrap_or_default();
        }
    }

    fn line(&mut self, line: &[u8]) {
        let request = self.request;
        if !request.query.filters.iter().all(|f| f.accepts(line)) {
            return;
        }
        if line.len() > MAX_LINE_BYTES {
            self.skipped += 1;
            return;
        }
        let Ok(Value::Object(fields)) = serde_json::from_slice::<Value>(line) else {
            self.skipped += 1;
            return;
        };
        let Some(timestamp) = fields
            .get("timestamp")
            .and_then(Value::as_str)
            .and_then(rfc3339)
        else {
            self.skipped += 1;
            return;
        };
        if timestamp < request.start || timestamp >= request.end {
            return;
        }
        let labels = Labels::of(&fields);
        let selected = request
            .query
            .selects(labels.service.unwrap_or(""), labels.level.unwrap_or(""));
        if !selected {
            return;
        }
        self.matched += 1;
        let order = i128::from(self.matched);
        let rank = match request.direction {
            Direction::Forward => (timestamp, order),
            Direction::Backward => (-timestamp, -order),
        };
        if self.kept.len() == request.limit && self.kept.peek().is_some_and(|last| rank > last.rank)
        {
            return;
        }
        self.kept.push(Kept {
            rank,
            timestamp,
            // Valid JSON is valid UTF-8.
            line: String::from_utf8_lossy(line).into_owned(),
        });
        if self.kept.len() > request.limit {
            self.kept.pop();
        }
    }

    /// Loki's answer: streams in label order, each with its entries in the query's direction.
    fn finish(self, elapsed: Duration, warnings: Vec<String>) -> Answer {
        let entries = self.kept.into_sorted_vec();
        let returned = entries.len();
        let mut streams: BTreeMap<String, (Value, Vec<Value>)> = BTreeMap::new();
        for entry in entries {
            // Parsed once already; the labels are taken again only for the entries kept.
            let fields: Map<String, Value> = serde_json::from_str(&entry.line).unwrap_or_default();
            let labels = Labels::of(&fields);
            let (_, values) = streams
                .entry(labels.text())
                .or_insert_with(|| (labels.json(), Vec::new()));
            values.push(json!([entry.timestamp.to_string(), entry.line]));
        }
        let result: Vec<Value> = streams
            .into_values()
            .map(|(stream, values)| json!({ "stream": stream, "values": values }))
            .collect();
        let seconds = elapsed.as_secs_f64();
        let mut body = Map::new();
        body.insert("status".to_owned(), json!("success"));
        if !warnings.is_empty() {
            body.insert("warnings".to_owned(), json!(warnings));
        }
        body.insert(
            "data".to_owned(),
            json!({
                "resultType": "streams",
                "result": result,
                "stats": {
                    "summary": {
                        "bytesProcessedPerSecond":
                            if seconds > 0.0 { (self.bytes_read as f64 / seconds) as u64 } else { 0 },
                        "execTime": seconds,
                        "totalBytesProcessed": self.bytes_read,
                        "totalEntriesReturned": returned,
                        "totalPostFilterLines": self.matched,
                    }
                }
            }),
        );
        Answer {
            body: Value::Object(body),
            skipped_lines: self.skipped,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU32, Ordering as AtomicOrdering};

    use super::*;

    /// 2026-11-28T02:00:00Z, and the time the tests query at, an hour later.
    const BASE: i128 = 1_795_831_200 * NANOS_PER_SECOND;
    const NOW: i128 = BASE + 3600 * NANOS_PER_SECOND;
    const TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";

    /// A directory under the system's temporary one, removed when dropped.
    struct LogDir(PathBuf);

    impl LogDir {
        fn new() -> Self {
            static NEXT: AtomicU32 = AtomicU32::new(0);
            let path = std::env::temp_dir().join(format!(
                "dice-lab-loki-{}-{}",
                std::process::id(),
                NEXT.fetch_add(1, AtomicOrdering::Relaxed)
            ));
            std::fs::create_dir_all(&path).unwrap();
            Self(path)
        }

        fn write(&self, name: &str, lines: &[String]) {
            std::fs::write(self.0.join(name), lines.concat()).unwrap();
        }

        /// The answer at [`NOW`] to the query string made of `params`.
        fn query(&self, params: &[(&str, &str)]) -> Result<Answer, QueryError> {
            let now = UNIX_EPOCH + Duration::from_nanos(NOW as u64);
            query_range(&self.0, &query_string(params), now)
        }

        /// The entries answered to `params`, as (stream labels, nanoseconds, message), stream by
        /// stream in the answer's order.
        fn entries(&self, params: &[(&str, &str)]) -> Vec<(String, i128, String)> {
            let answer = self
                .query(params)
                .unwrap_or_else(|e| panic!("{params:?}: {e}"));
            entries(&answer.body)
        }

        /// The messages answered to `params`, oldest first.
        fn messages(&self, params: &[(&str, &str)]) -> Vec<String> {
            let mut entries = self.entries(params);
            entries.sort_by_key(|(_, ts, _)| *ts);
            entries.into_iter().map(|(_, _, m)| m).collect()
        }
    }

    impl Drop for LogDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn query_string(params: &[(&str, &str)]) -> String {
        form_urlencoded::Serializer::new(String::new())
            .extend_pairs(params)
            .finish()
    }

    fn entries(body: &Value) -> Vec<(String, i128, String)> {
        let mut entries = Vec::new();
        for stream in body["data"]["result"].as_array().unwrap() {
            for value in stream["values"].as_array().unwrap() {
                let line: Value = serde_json::from_str(value[1].as_str().unwrap()).unwrap();
                entries.push((
                    stream["stream"].to_string(),
                    value[0].as_str().unwrap().parse().unwrap(),
                    line["message"].as_str().unwrap().to_owned(),
                ));
            }
        }
        entries
    }

    /// A line as the services write it, `seconds` after [`BASE`].
    fn line(seconds: u32, service: &str, level: &str, message: &str) -> String {
        traced(seconds, service, level, message, None)
    }

    fn traced(
        seconds: u32,
        service: &str,
        level: &str,
        message: &str,
        span: Option<(&str, &str)>,
    ) -> String {
        let mut fields = json!({
            "timestamp": format!(
                "2026-11-28T{:02}:{:02}:{:02}.123456789Z",
                2 + seconds / 3600,
                seconds / 60 % 60,
                seconds % 60
            ),
            "level": level,
            "service": service,
            "target": "dice_roller::rolling",
            "message": message,
        });
        if let Some((trace_id, span_id)) = span {
            fields["trace_id"] = json!(trace_id);
            fields["span_id"] = json!(span_id);
        }
        format!("{fields}\n")
    }

    /// Three services' files, each line at its own second.
    fn lab() -> LogDir {
        let dir = LogDir::new();
        dir.write(
            "dice-roller.log",
            &[
                line(1, "dice-roller", "info", "rolled 4"),
                line(2, "dice-roller", "warn", "rolled 6 again"),
                line(3, "dice-roller", "error", "die jammed"),
            ],
        );
        dir.write(
            "die-service.log",
            &[
                line(4, "die-service", "info", "face 4"),
                line(5, "die-service", "debug", "face {\"6\"}"),
            ],
        );
        dir.write(
            "frontend.log",
            &[line(6, "frontend", "info", "GET /api/roll")],
        );
        dir.write(
            "notes.txt",
            &[line(7, "frontend", "info", "not a log file")],
        );
        dir
    }

    fn query(logql: &str) -> Vec<(&'static str, &str)> {
        vec![("query", logql), ("direction", "forward")]
    }

    #[test]
    fn the_selector_compares_service_and_level_and_anchors_regexes() {
        let dir = lab();
        let m = |logql: &str| dir.messages(&query(logql));
        assert_eq!(
            m(r#"{service="dice-roller"}"#),
            ["rolled 4", "rolled 6 again", "die jammed"]
        );
        assert_eq!(
            m(r#"{service!="dice-roller", level="info"}"#),
            ["face 4", "GET /api/roll"]
        );
        assert_eq!(
            m(r#"{service=~"di.*"}"#),
            [
                "rolled 4",
                "rolled 6 again",
                "die jammed",
                "face 4",
                r#"face {"6"}"#
            ]
        );
        // Anchored at both ends, as Loki anchors: `dice` is not `dice-roller`.
        assert!(m(r#"{service=~"dice"}"#).is_empty());
        assert!(m(r#"{service=~"roller"}"#).is_empty());
        assert_eq!(
            m(r#"{service!~"di.*", level=~"info|debug"}"#),
            ["GET /api/roll"]
        );
        assert_eq!(
            m(r#"{level=~"warn|error"}"#),
            ["rolled 6 again", "die jammed"]
        );
        // Any other label is missing, so it compares as "".
        assert_eq!(m(r#"{service="frontend", env=""}"#), ["GET /api/roll"]);
        assert_eq!(m(r#"{service="frontend", env!~".+"}"#), ["GET /api/roll"]);
        assert!(m(r#"{service="frontend", env="prod"}"#).is_empty());
        // Structured metadata is not a stream label.
        assert!(m(&format!(r#"{{service="frontend", trace_id="{TRACE}"}}"#)).is_empty());
        // Blanks, comments and several lines are LogQL too.
        assert_eq!(
            m("{ service = \"frontend\" ,\n  level = `info` } # the frontend\n"),
            ["GET /api/roll"]
        );
    }

    #[test]
    fn a_selector_needs_a_matcher_that_rejects_the_empty_string() {
        let dir = lab();
        for logql in [
            r#"{service=~".*"}"#,
            r#"{service!="x"}"#,
            r#"{env=""}"#,
            r#"{level!~"info"}"#,
            "{}",
        ] {
            let error = dir.query(&query(logql)).unwrap_err();
            assert_eq!(error.to_string(), EMPTY_COMPATIBLE, "{logql}");
            assert!(error.to_string().starts_with(
                "parse error : queries require at least one regexp or equality matcher that does \
                 not have an empty-compatible value. For instance, app=~\".*\" does not meet this \
                 requirement, but app=~\".+\" will"
            ));
        }
        assert_eq!(dir.messages(&query(r#"{service=~".+"}"#)).len(), 6);
        assert_eq!(
            dir.messages(&query(r#"{service=~".*", level="warn"}"#)),
            ["rolled 6 again"]
        );
        assert_eq!(
            dir.messages(&query(r#"{level!~"", service!="dice-roller"}"#))
                .len(),
            3
        );
    }

    #[test]
    fn line_filters_look_at_the_raw_line() {
        let dir = lab();
        let m = |filters: &str| dir.messages(&query(&format!(r#"{{service=~".+"}} {filters}"#)));
        assert_eq!(m(r#"|= "rolled""#), ["rolled 4", "rolled 6 again"]);
        assert_eq!(
            m(r#"!= "rolled" != "face""#),
            ["die jammed", "GET /api/roll"]
        );
        // Not anchored.
        assert_eq!(m(r#"|~ "ed [0-5]""#), ["rolled 4"]);
        assert_eq!(m(r#"!~ "rolled|face" |= "info""#), ["GET /api/roll"]);
        // The raw line, JSON escapes and all; Go's escapes in double quotes, none in backticks.
        assert_eq!(m(r#"|= "face {\\\"6\\\"}""#), [r#"face {"6"}"#]);
        assert_eq!(m(r#"|= `face {\"6\"}`"#), [r#"face {"6"}"#]);
        assert_eq!(m(r#"|= "\"message\":\"face \u0034""#), ["face 4"]);
        assert_eq!(
            m(r#"|~ `"level":"(warn|error)"` |~ `"message":"[a-z]+ \d`"#),
            ["rolled 6 again"]
        );
        assert_eq!(
            m(r#"|= "rolled" |= "again" |~ "(?i)ROLLED""#),
            ["rolled 6 again"]
        );
        assert_eq!(m(r#"|= """#).len(), 6);
        assert!(m(r#"!= """#).is_empty());
        assert!(m(r#"|= "\n""#).is_empty());
    }

    #[test]
    fn start_is_inclusive_end_exclusive_in_every_time_format() {
        let dir = LogDir::new();
        dir.write(
            "a.log",
            &[
                line(0, "a", "info", "at two"),
                line(1800, "a", "info", "at half past"),
                line(3600, "a", "info", "at three"),
            ],
        );
        // The lines are at .123456789 past their second.
        let ns = |seconds: i128| (BASE + seconds * NANOS_PER_SECOND + 123_456_789).to_string();
        let (start, end) = (ns(0), ns(3600));
        let m = |params: &[(&str, &str)]| {
            let mut params = params.to_vec();
            params.push(("query", r#"{service="a"}"#));
            dir.messages(&params)
        };
        let both = ["at two", "at half past"];
        assert_eq!(m(&[("start", &start), ("end", &end)]), both);
        assert_eq!(
            m(&[
                ("start", "2026-11-28T02:00:00.123456789Z"),
                ("end", "2026-11-28T03:00:00.123456789Z")
            ]),
            both
        );
        assert_eq!(
            m(&[
                ("start", "2026-11-28T03:00:00.123456789+01:00"),
                ("end", "2026-11-28T04:00:00.123456789+01:00")
            ]),
            both
        );
        // Float seconds, rounded to milliseconds as Loki rounds them: .123 and .124.
        assert_eq!(
            m(&[("start", "1795831200.1232"), ("end", "1795834800.1236")]),
            ["at two", "at half past", "at three"]
        );
        // Ten digits or fewer are seconds.
        assert_eq!(m(&[("start", "1795831200"), ("end", "1795834800")]), both);
        assert_eq!(
            m(&[("start", "1795831201"), ("end", "1795834801")]),
            ["at half past", "at three"]
        );
        // `since` counts back from `end`; with neither, the last hour.
        assert_eq!(m(&[("since", "30m"), ("end", &end)]), ["at half past"]);
        assert_eq!(
            m(&[("since", "1h"), ("end", &ns(3601))]),
            ["at two", "at half past", "at three"]
        );
        assert_eq!(m(&[]), both);
        assert_eq!(m(&[("since", "0")]), Vec::<String>::new());
        // `end` in the future: `since` counts back from now.
        assert_eq!(
            m(&[("since", "30m"), ("end", "2030-01-01T00:00:00Z")]),
            ["at half past", "at three"]
        );
        assert!(m(&[("start", &start), ("end", &start)]).is_empty());
    }

    #[test]
    fn the_limit_keeps_the_newest_backward_and_the_oldest_forward() {
        let dir = LogDir::new();
        dir.write(
            "a.log",
            &[
                line(1, "a", "info", "1"),
                line(3, "a", "info", "3"),
                line(5, "a", "info", "5"),
            ],
        );
        dir.write(
            "b.log",
            &[
                line(2, "b", "info", "2"),
                line(4, "b", "info", "4"),
                line(6, "b", "info", "6"),
            ],
        );
        let answer = |params: &[(&str, &str)]| {
            let mut params = params.to_vec();
            params.push(("query", r#"{service=~"a|b"}"#));
            dir.entries(&params)
                .into_iter()
                .map(|(stream, _, message)| {
                    (
                        serde_json::from_str::<Value>(&stream).unwrap()["service"]
                            .as_str()
                            .unwrap()
                            .to_owned(),
                        message,
                    )
                })
                .collect::<Vec<_>>()
        };
        let pairs = |list: &[(&str, &str)]| {
            list.iter()
                .map(|(s, m)| ((*s).to_owned(), (*m).to_owned()))
                .collect::<Vec<_>>()
        };
        // Backward is the default: the newest, newest first in each stream.
        assert_eq!(
            answer(&[("limit", "3")]),
            pairs(&[("a", "5"), ("b", "6"), ("b", "4")])
        );
        assert_eq!(
            answer(&[("limit", "3"), ("direction", "BACKWARD")]),
            answer(&[("limit", "3")])
        );
        assert_eq!(
            answer(&[("limit", "3"), ("direction", "forward")]),
            pairs(&[("a", "1"), ("a", "3"), ("b", "2")])
        );
        assert_eq!(
            answer(&[("limit", "1"), ("direction", "Forward")]),
            pairs(&[("a", "1")])
        );
        assert_eq!(answer(&[]).len(), 6);
        assert_eq!(answer(&[("limit", "5000")]).len(), 6);
    }

    #[test]
    fn streams_are_labelled_as_loki_labels_them() {
        let dir = LogDir::new();
        let span_a = Some((TRACE, "00f067aa0ba902b7"));
        let span_b = Some((TRACE, "b7ad6b7169203331"));
        let lines = [
            traced(1, "dice-roller", "info", "roll", span_a),
            traced(2, "dice-roller", "info", "rolled 4", span_b),
            traced(3, "dice-roller", "info", "rolled 6", span_b),
            traced(4, "dice-roller", "info", "done", span_a),
            line(5, "dice-roller", "info", "no span"),
        ];
        dir.write("dice-roller.log", &lines);
        let answer = dir
            .query(&[
                ("query", r#"{service="dice-roller"}"#),
                ("direction", "forward"),
            ])
            .unwrap();
        assert_eq!(answer.skipped_lines, 0);
        let body = &answer.body;
        assert_eq!(body["status"], "success");
        assert!(body.get("warnings").is_none());
        assert_eq!(body["data"]["resultType"], "streams");
        assert_eq!(body["data"]["stats"]["summary"]["totalEntriesReturned"], 5);
        let ns = |s: i128| (BASE + s * NANOS_PER_SECOND + 123_456_789).to_string();
        let unchanged = |l: &String| l.trim_end().to_owned();
        // Ordered by Prometheus' text of the labels, as Loki orders them: `..., span_id=` comes
        // before `...}`.
        assert_eq!(
            body["data"]["result"],
            json!([
                {
                    "stream": {
                        "level": "info",
                        "service": "dice-roller",
                        "span_id": "00f067aa0ba902b7",
                        "trace_id": TRACE,
                    },
                    "values": [[ns(1), unchanged(&lines[0])], [ns(4), unchanged(&lines[3])]],
                },
                {
                    "stream": {
                        "level": "info",
                        "service": "dice-roller",
                        "span_id": "b7ad6b7169203331",
                        "trace_id": TRACE,
                    },
                    "values": [[ns(2), unchanged(&lines[1])], [ns(3), unchanged(&lines[2])]],
                },
                {
                    "stream": {"level": "info", "service": "dice-roller"},
                    "values": [[ns(5), unchanged(&lines[4])]],
                },
            ])
        );
        // Label keys in name order, as Loki writes them.
        let keys: Vec<&String> = body["data"]["result"][0]["stream"]
            .as_object()
            .unwrap()
            .keys()
            .collect();
        assert_eq!(keys, ["level", "service", "span_id", "trace_id"]);
        // A trace's lines, across services, by the trace id.
        dir.write(
            "frontend.log",
            &[traced(
                6,
                "frontend",
                "info",
                "GET /api/roll",
                Some((TRACE, "aaaaaaaaaaaaaaaa")),
            )],
        );
        let entries = dir.entries(&query(&format!(r#"{{service=~".+"}} |= "{TRACE}""#)));
        assert_eq!(entries.len(), 5);
    }

    #[test]
    fn other_logql_is_refused_saying_what_and_where() {
        let dir = lab();
        let refused = |logql: &str| dir.query(&query(logql)).unwrap_err();
        assert_eq!(
            refused(r#"{service="dice-roller"} | json"#).to_string(),
            "parse error at line 1, col 25: found a parser stage (`| json`), but the lab's \
             built-in store answers only a stream selector on `service` and `level` followed by \
             line filters (`|=`, `!=`, `|~`, `!~`); the full LogQL needs the real Loki, which \
             `nix run` brings"
        );
        for (logql, found, col) in [
            (
                r#"{service="a"} |= "x" | logfmt | level="info""#,
                "a parser stage",
                22,
            ),
            (r#"rate({service="a"}[5m])"#, "a metric query", 1),
            (r#"count_over_time({service="a"}[5m])"#, "a metric query", 1),
            (
                r#"sum by (level) (count_over_time({service="a"}[5m]))"#,
                "a metric query",
                1,
            ),
            (r#"({service="a"})"#, "a parenthesised expression", 1),
            (r#"{service="a"} | level="info""#, "a label filter", 15),
            (
                &format!(r#"{{service="a"}} | trace_id="{TRACE}""#),
                "a label filter",
                15,
            ),
            (
                r#"{service="a"} | line_format "{{.message}}""#,
                "a formatting stage",
                15,
            ),
            (r#"{service="a"} | drop target"#, "a pipeline stage", 15),
            (
                r#"{service="a"} |= "x" or "y""#,
                "`or` between line filter values",
                22,
            ),
            (r#"{service="a"} |> "<_> 4""#, "a pattern line filter", 15),
            (
                r#"{service="a"} |= ip("10.0.0.0/8")"#,
                "an ip() line filter",
                15,
            ),
            ("{service=\"a\"}\n  | json", "a parser stage", 3),
        ] {
            match refused(logql) {
                QueryError::Unsupported { at, found: f, text } => {
                    assert_eq!((f, at.col), (found, col), "{logql}");
                    assert!(
                        logql.contains(text.trim_end_matches('…')),
                        "{logql}: {text}"
                    );
                }
                other => panic!("{logql}: {other:?}"),
            }
        }
        assert_eq!(
            refused("{service=\"a\"}\n  | json").to_string()[..28],
            *"parse error at line 2, col 3"
        );
    }

    #[test]
    fn syntax_errors_say_where() {
        let dir = lab();
        let error = |logql: &str| dir.query(&query(logql)).unwrap_err().to_string();
        for (logql, expected) in [
            (
                "",
                "parse error at line 1, col 1: syntax error: unexpected end of query, expected a stream selector",
            ),
            (
                r#"service="a""#,
                r#"parse error at line 1, col 1: syntax error: unexpected "service""#,
            ),
            (
                r#"{service="a""#,
                "parse error at line 1, col 13: syntax error: unexpected end of query, expected ',' or '}'",
            ),
            (
                r#"{service "a"}"#,
                "parse error at line 1, col 10: syntax error: unexpected '\"', expected =, !=, =~ or !~",
            ),
            (
                r#"{service=a}"#,
                "parse error at line 1, col 10: syntax error: unexpected 'a', expected a string",
            ),
            (
                r#"{service="a",}"#,
                "parse error at line 1, col 14: syntax error: unexpected '}', expected a label name",
            ),
            (
                r#"{service="a"} |= x"#,
                "parse error at line 1, col 18: syntax error: unexpected 'x', expected a string",
            ),
            (
                r#"{service="a"} x"#,
                "parse error at line 1, col 15: syntax error: unexpected 'x', expected a line filter",
            ),
            (
                r#"{service="a} |= "x""#,
                "parse error at line 1, col 18: syntax error: unexpected 'x', expected ',' or '}'",
            ),
            (
                r#"{service="a\q"}"#,
                "parse error at line 1, col 12: syntax error: invalid escape in string",
            ),
            (
                "{service=`a}",
                "parse error at line 1, col 10: syntax error: literal not terminated",
            ),
            (
                r#"{service=~"("}"#,
                "parse error at line 1, col 11: regex parse error",
            ),
            (
                r#"{service="a"} |~ "a)|(b""#,
                "parse error at line 1, col 18: regex parse error",
            ),
        ] {
            let error = error(logql);
            assert!(error.starts_with(expected), "{logql}: {error}");
        }
    }

    #[test]
    fn bad_parameters_are_refused_in_lokis_words() {
        let dir = lab();
        let selector = r#"{service=~".+"}"#;
        let error = |params: &[(&str, &str)]| {
            let mut params = params.to_vec();
            if !params.iter().any(|(name, _)| *name == "query") {
                params.push(("query", selector));
            }
            dir.query(&params).unwrap_err().to_string()
        };
        assert_eq!(
            error(&[("start", "yesterday")]),
            "could not parse 'start' parameter: strconv.ParseInt: parsing \"yesterday\": invalid syntax"
        );
        assert_eq!(
            error(&[("end", "99999999999999999999")]),
            "could not parse 'end' parameter: strconv.ParseInt: parsing \"99999999999999999999\": value out of range"
        );
        assert_eq!(
            error(&[("since", "1x")]),
            "could not parse 'since' parameter: unknown unit \"x\" in duration \"1x\""
        );
        assert_eq!(
            error(&[("since", "30m1h")]),
            "could not parse 'since' parameter: not a valid duration string: \"30m1h\""
        );
        assert_eq!(
            error(&[("start", "1795834800"), ("end", "1795831200")]),
            "end timestamp must not be before or equal to start time"
        );
        assert_eq!(error(&[("limit", "0")]), "limit must be a positive value");
        assert_eq!(error(&[("limit", "-3")]), "limit must be a positive value");
        assert_eq!(
            error(&[("limit", "ten")]),
            "strconv.Atoi: parsing \"ten\": invalid syntax"
        );
        assert_eq!(
            error(&[("limit", "5001")]),
            "max entries limit per query exceeded, limit > max_entries_limit_per_query (5001 > 5000)"
        );
        assert_eq!(
            error(&[("direction", "sideways")]),
            "invalid direction 'sideways'"
        );
        assert_eq!(
            error(&[("step", "0")]),
            "zero or negative query resolution step widths are not accepted. Try a positive integer"
        );
        assert_eq!(
            error(&[("step", "soon")]),
            "cannot parse \"soon\" to a valid duration"
        );
        assert_eq!(
            error(&[("step", "1"), ("since", "1d")]),
            "exceeded maximum resolution of 11,000 points per time series. Try increasing the \
             value of the step parameter"
        );
        assert_eq!(error(&[("interval", "-1")]), "interval must be >= 0");
        // Parameters are checked before the query, and the entries limit after it, as in Loki.
        assert!(
            error(&[("start", "x"), ("query", "| json")]).starts_with("could not parse 'start'")
        );
        assert!(error(&[("limit", "9000"), ("query", "| json")]).starts_with("parse error"));
        // Accepted: the largest limit, steps and intervals that Loki accepts, unknown parameters.
        let accepted = [
            ("limit", "5000"),
            ("step", "15s"),
            ("interval", "1.5"),
            ("since", "1h30m"),
            ("shards", "0_of_2"),
            ("query", selector),
        ];
        assert_eq!(
            dir.query(&accepted).unwrap().body["data"]["result"]
                .as_array()
                .unwrap()
                .len(),
            6
        );
    }

    #[test]
    fn lines_that_are_not_entries_are_skipped_and_counted() {
        let dir = LogDir::new();
        let huge = line(4, "a", "info", &"x".repeat(MAX_LINE_BYTES));
        let mut partial = line(5, "a", "info", "still being written");
        partial.pop();
        dir.write(
            "a.log",
            &[
                line(1, "a", "info", "first"),
                "not json at all\n".to_owned(),
                "[\"an\", \"array\"]\n".to_owned(),
                "{\"timestamp\":\"yesterday\",\"service\":\"a\",\"level\":\"info\"}\n".to_owned(),
                "{\"service\":\"a\",\"level\":\"info\",\"message\":\"no time\"}\n".to_owned(),
                "\n".to_owned(),
                line(2, "a", "info", "second"),
                huge,
                line(3, "a", "info", "third"),
                partial,
            ],
        );
        let answer = dir.query(&query(r#"{service="a"}"#)).unwrap();
        assert_eq!(
            entries(&answer.body)
                .into_iter()
                .map(|(_, _, m)| m)
                .collect::<Vec<_>>(),
            ["first", "second", "third"]
        );
        assert_eq!(answer.skipped_lines, 6);
        // Only lines that pass the line filters are looked at.
        let answer = dir.query(&query(r#"{service="a"} |= "second""#)).unwrap();
        assert_eq!(answer.skipped_lines, 0);
        assert_eq!(entries(&answer.body).len(), 1);
        let answer = dir.query(&query(r#"{service="a"} |= "json""#)).unwrap();
        assert_eq!((answer.skipped_lines, entries(&answer.body).len()), (1, 0));
    }

    #[test]
    fn the_answer_does_not_depend_on_where_chunks_end() {
        let dir = LogDir::new();
        let mut lines: Vec<String> = (0..300)
            .map(|i| {
                let span = (i % 3 == 0).then_some((TRACE, "00f067aa0ba902b7"));
                let message = format!("rolled {i} {}", "-".repeat(i as usize % 37));
                traced(
                    i,
                    "dice-roller",
                    ["info", "warn"][i as usize % 2],
                    &message,
                    span,
                )
            })
            .collect();
        // Longer than the small chunk: skipped there, but no entry either way.
        lines.insert(100, format!("{}\n", "garbage ".repeat(100)));
        dir.write("dice-roller.log", &lines);
        for logql in [
            r#"{service="dice-roller"}"#,
            &format!(r#"{{service="dice-roller"}} |= "{TRACE}""#),
            r#"{level="warn"} |= "rolled 1" != "rolled 10""#,
        ] {
            for direction in ["forward", "backward"] {
                let request = Request::parse(
                    &query_string(&[
                        ("query", logql),
                        ("direction", direction),
                        ("limit", "1000"),
                    ]),
                    NOW,
                )
                .unwrap();
                let whole = run(&dir.0, &request, CHUNK_BYTES).body;
                let chunked = run(&dir.0, &request, 512).body;
                assert_eq!(
                    whole["data"]["result"], chunked["data"]["result"],
                    "{logql}"
                );
                assert!(!entries(&whole).is_empty(), "{logql}");
            }
        }
    }

    #[test]
    fn a_missing_directory_holds_no_logs_and_unreadable_files_are_warned_of() {
        let dir = LogDir::new();
        let missing = dir.0.join("missing");
        let now = UNIX_EPOCH + Duration::from_nanos(NOW as u64);
        let answer = query_range(&missing, "query={service=\"a\"}", now).unwrap();
        assert_eq!(answer.body["data"]["result"], json!([]));
        assert!(answer.body.get("warnings").is_none());

        dir.write("a.log", &[line(1, "a", "info", "readable")]);
        // Opens, but every read fails (EIO).
        #[cfg(target_os = "linux")]
        std::os::unix::fs::symlink("/proc/self/mem", dir.0.join("b.log")).unwrap();
        let answer = dir.query(&query(r#"{service="a"}"#)).unwrap();
        assert_eq!(entries(&answer.body).len(), 1);
        #[cfg(target_os = "linux")]
        {
            let warnings = answer.body["warnings"].as_array().unwrap();
            assert_eq!(warnings.len(), 1);
            assert!(warnings[0].as_str().unwrap().starts_with("could not read "));
        }
    }
}
