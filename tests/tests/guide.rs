//! The lab guide, executed: every exercise in `lab-guide/` runs as one test against a real lab, so
//! that a change which breaks an exercise breaks CI.
//!
//! The guide's fenced blocks say what to do. A ```` ```sh lab ```` block starts the lab and keeps
//! it running, as in its own terminal: this harness runs it in the background (with the built
//! `dice-lab` first on `PATH` and Debian's Prometheus beside it), waits until the services and
//! Prometheus answer, and a later `sh lab` block replaces the running lab, as Ctrl-C and a new
//! start would. A ```` ```sh ```` block is what an attendee types; it must succeed, and its output
//! is kept for the next check. A ```` ```check ```` block holds the exercise's expected
//! observations, one per line, in the vocabulary `lab-guide/README.md` explains: requests, the
//! answer, the trace and its log lines as attendees read them (the frontend's `/api/traces/{id}`
//! and `/api/traces/{id}/logs`, the data of the page's waterfall and of `dice-lab trace`, answered
//! here by the lab's store in place of Tempo and Loki) and PromQL on the lab's real Prometheus
//! (what Grafana's panels show). Anything that takes time to arrive is polled for, never slept on.
//!
//! Exercises run in order on one lab, one test each, named `guide_exercise_NN_...`. A last test
//! checks that every exercise has all its parts.

use std::io::Read as _;
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use frontend_ui::trace_api::{LogsAnswer, TraceAnswer};
use lab_tests::fixtures::traceparent;
use lab_tests::otlp::{Kind, Span, StatusCode};
use lab_tests::process::binary;
use lab_tests::trace::{Trace, max_concurrency, total_duration_ns};
use lab_tests::{signal, wait};
use libtest_mimic::{Arguments, Failed, Trial};
use parts::Part;
use serde_json::Value;

/// How long a trace, a log line or a metric may take to arrive.
const TRACE_WAIT: Duration = Duration::from_secs(20);
const METRIC_WAIT: Duration = Duration::from_secs(60);
/// How long one `sh` step may run.
const STEP_TIMEOUT: Duration = Duration::from_secs(180);

fn guide_dir() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../lab-guide"))
}

fn main() {
    let mut args = Arguments::from_args();
    args.test_threads = Some(1);
    let exercises = Exercise::read_all();
    let lab = Arc::new(Mutex::new(Harness::new(&exercises)));

    let mut trials: Vec<Trial> = exercises
        .iter()
        .cloned()
        .map(|exercise| {
            let lab = lab.clone();
            Trial::test(exercise.test_name(), move || {
                let mut lab = lab.lock().unwrap_or_else(|p| p.into_inner());
                lab.run(&exercise)
            })
        })
        .collect();
    trials.push(Trial::test(
        "guide_has_every_part_of_every_exercise",
        move || check_structure(&exercises),
    ));
    let conclusion = libtest_mimic::run(&args, trials);
    lab.lock().unwrap_or_else(|p| p.into_inner()).stop_lab();
    conclusion.exit();
}

// ---------------------------------------------------------------------------------------------
// Reading the guide

#[derive(Clone, Debug)]
enum Block {
    Lab(String),
    Shell(String),
    Check(Vec<String>),
}

#[derive(Clone, Debug)]
struct Exercise {
    number: u32,
    title: String,
    file: PathBuf,
    text: String,
    blocks: Vec<Block>,
}

impl Exercise {
    /// `lab-guide/NN-*.md`, in order.
    fn read_all() -> Vec<Self> {
        let mut files: Vec<PathBuf> = std::fs::read_dir(guide_dir())
            .expect("lab-guide/ exists")
            .map(|e| e.unwrap().path())
            .filter(|p| {
                let name = p.file_name().unwrap().to_string_lossy();
                name.ends_with(".md") && name.as_bytes()[0].is_ascii_digit()
            })
            .collect();
        files.sort();
        files.into_iter().map(|file| Self::read(&file)).collect()
    }

    fn read(file: &Path) -> Self {
        let text = std::fs::read_to_string(file).unwrap_or_else(|e| panic!("{file:?}: {e}"));
        let heading = text
            .lines()
            .find(|l| l.starts_with("# "))
            .unwrap_or_else(|| panic!("{file:?} has no '# Exercise N: title' heading"));
        let (number, title) = heading
            .strip_prefix("# Exercise ")
            .and_then(|rest| rest.split_once(": "))
            .unwrap_or_else(|| panic!("{file:?}: the heading must be '# Exercise N: title'"));
        let number = number
            .parse()
            .unwrap_or_else(|_| panic!("{file:?}: '{number}' is not an exercise number"));
        Self {
            number,
            title: title.to_owned(),
            file: file.to_owned(),
            blocks: blocks(&text),
            text,
        }
    }

    fn test_name(&self) -> String {
        let slug: String = self
            .title
            .to_lowercase()
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
            .collect();
        let slug = slug
            .split('_')
            .filter(|w| !w.is_empty())
            .collect::<Vec<_>>()
            .join("_");
        format!("guide_exercise_{:02}_{slug}", self.number)
    }
}

/// The fenced blocks this harness runs: `sh lab`, `sh` and `check`. Others are illustrations.
fn blocks(text: &str) -> Vec<Block> {
    let mut found = Vec::new();
    let mut lines = text.lines();
    while let Some(line) = lines.next() {
        let Some(info) = line.trim_start().strip_prefix("```") else {
            continue;
        };
        let body: Vec<&str> = lines
            .by_ref()
            .take_while(|l| l.trim_start() != "```")
            .collect();
        let body = body.join("\n");
        match info.trim() {
            "sh lab" => found.push(Block::Lab(body)),
            "sh" => found.push(Block::Shell(body)),
            "check" => found.push(Block::Check(
                body.lines()
                    .map(str::trim)
                    .filter(|l| !l.is_empty() && !l.starts_with('#'))
                    .map(str::to_owned)
                    .collect(),
            )),
            _ => {}
        }
    }
    found
}

fn check_structure(exercises: &[Exercise]) -> Result<(), Failed> {
    if exercises.len() < 8 {
        return Err(format!(
            "the guide has {} exercises, not at least 8",
            exercises.len()
        )
        .into());
    }
    let index = std::fs::read_to_string(guide_dir().join("README.md"))
        .map_err(|e| format!("lab-guide/README.md: {e}"))?;
    for (i, exercise) in exercises.iter().enumerate() {
        let name = exercise.file.file_name().unwrap().to_string_lossy();
        if exercise.number != i as u32 + 1 {
            return Err(
                format!("{name} is exercise {}, expected {}", exercise.number, i + 1).into(),
            );
        }
        for part in [
            "## Goal",
            "## Steps",
            "## What you should see",
            "## Questions",
            "## Solution",
        ] {
            if !exercise.text.contains(part) {
                return Err(format!("{name} lacks a '{part}' section").into());
            }
        }
        let shells = exercise
            .blocks
            .iter()
            .filter(|b| matches!(b, Block::Shell(_) | Block::Lab(_)))
            .count();
        let checks = exercise
            .blocks
            .iter()
            .filter(|b| matches!(b, Block::Check(_)))
            .count();
        if shells == 0 || checks == 0 {
            return Err(format!("{name} needs at least one sh block and one check block").into());
        }
        if !index.contains(&format!("({name})")) {
            return Err(format!("lab-guide/README.md does not link {name}").into());
        }
    }
    if !guide_dir().join("instructors.md").is_file() {
        return Err("lab-guide/instructors.md is missing".into());
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Running it

/// One lab for the whole guide, and what the checks look at.
struct Harness {
    runtime: tokio::runtime::Runtime,
    work: PathBuf,
    path: String,
    lab: Option<Child>,
    labs_started: u32,
    scripts: u32,
    first_lab_block: Option<String>,
    /// The output of the last `sh` step.
    output: String,
    /// The last answer to a check's request.
    answer: Option<Answer>,
    /// The trace the last request started or continued.
    trace_id: Option<String>,
    http: reqwest::Client,
}

struct Answer {
    status: u16,
    text: String,
    json: Option<Value>,
}

impl Harness {
    fn new(exercises: &[Exercise]) -> Self {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("a tokio runtime");
        let work = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("guide");
        let _ = std::fs::remove_dir_all(&work);
        std::fs::create_dir_all(&work).expect("a work directory");
        let first_lab_block = exercises
            .iter()
            .flat_map(|e| &e.blocks)
            .find_map(|b| match b {
                Block::Lab(script) => Some(script.clone()),
                _ => None,
            });
        Self {
            runtime,
            work,
            path: String::new(),
            lab: None,
            labs_started: 0,
            scripts: 0,
            first_lab_block,
            output: String::new(),
            answer: None,
            trace_id: None,
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(30))
                .build()
                .expect("an HTTP client"),
        }
    }

    fn run(&mut self, exercise: &Exercise) -> Result<(), Failed> {
        if self.path.is_empty() {
            self.path = search_path()?;
        }
        let needs_lab_first = !matches!(exercise.blocks.first(), Some(Block::Lab(_)));
        if needs_lab_first && self.lab.is_none() {
            let script = self
                .first_lab_block
                .clone()
                .ok_or("the guide has no ```sh lab block that starts the lab")?;
            self.start_lab(&script)?;
        }
        for block in &exercise.blocks {
            match block {
                Block::Lab(script) => {
                    self.stop_lab();
                    self.start_lab(script)?;
                }
                Block::Shell(script) => self.step(script)?,
                Block::Check(lines) => {
                    for line in lines {
                        self.check(line)
                            .map_err(|e| format!("check `{line}` failed: {e}"))?;
                    }
                    self.show_trace();
                }
            }
        }
        Ok(())
    }

    /// `bash` running `script` from a file, as a terminal would run typed commands: the script's
    /// text is not on bash's command line, where `pkill -f` would find it.
    fn command(&mut self, script: &str) -> Command {
        self.scripts += 1;
        let file = self.work.join(format!("step-{}.sh", self.scripts));
        std::fs::write(&file, script).expect("the work directory is writable");
        let mut command = Command::new("bash");
        command
            .args(["-e", "-o", "pipefail"])
            .arg(&file)
            .current_dir(&self.work)
            .env("PATH", &self.path)
            .env_remove("OTEL_EXPORTER_OTLP_ENDPOINT")
            .env_remove("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
            .env_remove("OTEL_BSP_SCHEDULE_DELAY")
            .env_remove("TRACE_QUERY_URL")
            .env_remove("LOG_QUERY_URL")
            .env_remove("DICE_LAB_STATE_DIR")
            .env_remove("FAULT_LATENCY_MS")
            .env_remove("FAULT_ERROR_RATE")
            .env_remove("ROLL_SEQUENTIAL")
            .stdin(Stdio::null());
        command
    }

    /// Starts a `sh lab` block in the background and waits until the lab answers.
    fn start_lab(&mut self, script: &str) -> Result<(), Failed> {
        self.labs_started += 1;
        let log = self.work.join(format!("lab-{}.log", self.labs_started));
        let out = std::fs::File::create(&log).map_err(|e| e.to_string())?;
        let child = self
            .command(script)
            .stdout(out.try_clone().map_err(|e| e.to_string())?)
            .stderr(out)
            // Its own process group, as a terminal's job: stop_lab sends it Ctrl-C's SIGINT.
            .process_group(0)
            .spawn()
            .map_err(|e| format!("cannot start `{script}`: {e}"))?;
        self.lab = Some(child);
        let deadline = Instant::now() + Duration::from_secs(120);
        let ready: Vec<String> = Part::SERVICES
            .into_iter()
            .chain([Part::Prometheus, Part::Store])
            .map(Part::ready_url)
            .collect();
        loop {
            let all = ready.iter().all(|url| {
                self.runtime
                    .block_on(async { self.http.get(url).send().await })
                    .is_ok_and(|r| r.status().is_success())
            });
            if all {
                return Ok(());
            }
            let exited = self.lab.as_mut().and_then(|c| c.try_wait().ok().flatten());
            if exited.is_some() || Instant::now() > deadline {
                let text = std::fs::read_to_string(&log).unwrap_or_default();
                return Err(format!(
                    "`{script}` did not bring the lab up ({exited:?}); it said:\n{text}"
                )
                .into());
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// Ctrl-C for the lab's terminal, then waits until it has stopped.
    fn stop_lab(&mut self) {
        let Some(mut child) = self.lab.take() else {
            return;
        };
        signal::group(child.id(), signal::SIGINT);
        let deadline = Instant::now() + Duration::from_secs(30);
        while child.try_wait().ok().flatten().is_none() {
            if Instant::now() > deadline {
                signal::group(child.id(), signal::SIGKILL);
                let _ = child.wait();
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Runs one `sh` block as an attendee would, keeping its output.
    fn step(&mut self, script: &str) -> Result<(), Failed> {
        let mut child = self
            .command(script)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0)
            .spawn()
            .map_err(|e| format!("cannot run `{script}`: {e}"))?;
        let mut stdout = child.stdout.take().expect("piped");
        let mut stderr = child.stderr.take().expect("piped");
        let reader = std::thread::spawn(move || {
            let mut out = String::new();
            let _ = stdout.read_to_string(&mut out);
            let mut err = String::new();
            let _ = stderr.read_to_string(&mut err);
            (out, err)
        });
        let deadline = Instant::now() + STEP_TIMEOUT;
        let status = loop {
            if let Some(status) = child.try_wait().map_err(|e| e.to_string())? {
                break status;
            }
            if Instant::now() > deadline {
                signal::group(child.id(), signal::SIGKILL);
                let _ = child.wait();
                return Err(format!("`{script}` ran longer than {STEP_TIMEOUT:?}").into());
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        let (out, err) = reader.join().expect("the output reader finishes");
        if !status.success() {
            return Err(format!("`{script}` failed ({status}):\n{out}\n{err}").into());
        }
        self.output = format!("{out}{err}");
        Ok(())
    }

    fn check(&mut self, line: &str) -> Result<(), String> {
        let words = split_words(line)?;
        let words: Vec<&str> = words.iter().map(String::as_str).collect();
        match words.as_slice() {
            ["GET", url] => self.get(url),
            ["status", expected] => {
                let answer = self.answer()?;
                (answer.status.to_string() == *expected)
                    .then_some(())
                    .ok_or_else(|| {
                        format!("status {}; the answer was {}", answer.status, answer.text)
                    })
            }
            ["body", "contains", text] => {
                let answer = self.answer()?;
                answer
                    .text
                    .contains(text)
                    .then_some(())
                    .ok_or_else(|| format!("the answer does not contain {text:?}: {}", answer.text))
            }
            ["json", field, op, value] => {
                let answer = self.answer()?;
                let json = answer
                    .json
                    .as_ref()
                    .ok_or_else(|| format!("the answer is not JSON: {}", answer.text))?;
                let found = field
                    .split('.')
                    .try_fold(json, |v, key| v.get(key))
                    .ok_or_else(|| format!("the answer has no {field}: {json}"))?;
                compare_values(found, op, &parse_value(value))
                    .map_err(|e| format!("{field}: {e}; the answer was {json}"))
            }
            ["output", "contains", text] => {
                self.output.contains(text).then_some(()).ok_or_else(|| {
                    format!(
                        "the step's output does not contain {text:?}:\n{}",
                        self.output
                    )
                })
            }
            ["trace", service, name, rest @ ..] => {
                let trace_id = self
                    .trace_id
                    .clone()
                    .ok_or("no request has started a trace yet")?;
                let property = TraceProperty::parse(rest)?;
                self.poll(TRACE_WAIT, || {
                    let trace = self.trace(&trace_id);
                    property
                        .holds(&trace, service, name)
                        .map_err(|e| format!("{e} in trace {trace_id}:\n{}", trace.render()))
                })
            }
            ["logs", service, rest @ ..] => {
                let trace_id = self
                    .trace_id
                    .clone()
                    .ok_or("no request has started a trace yet")?;
                let (level, op, value) = match rest {
                    [op, value] => (None, *op, *value),
                    [level, op, value] => (Some(*level), *op, *value),
                    _ => return Err("logs SERVICE [LEVEL] OP N".into()),
                };
                self.poll(TRACE_WAIT, || {
                    let lines = self.log_lines(service, &trace_id, level);
                    compare_values(&Value::from(lines), op, &parse_value(value))
                        .map_err(|e| format!("log lines of {service} with trace {trace_id}: {e}"))
                })
            }
            ["metric", query, op, value] => self.poll(METRIC_WAIT, || {
                let found = self.promql(query)?;
                compare_values(&Value::from(found), op, &parse_value(value))
                    .map_err(|e| format!("{query}: {e}"))
            }),
            _ => Err("not a check this harness knows (see lab-guide/README.md)".into()),
        }
    }

    /// With `LAB_GUIDE_SHOW_TRACES=1`, prints the trace a check block looked at, for authors
    /// who want real output to put in the guide.
    fn show_trace(&self) {
        if std::env::var_os("LAB_GUIDE_SHOW_TRACES").is_some_and(|v| v == "1")
            && let Some(trace_id) = &self.trace_id
        {
            eprintln!("trace {trace_id}:\n{}", self.trace(trace_id).render());
        }
    }

    fn answer(&self) -> Result<&Answer, String> {
        self.answer
            .as_ref()
            .ok_or_else(|| "no request has been made yet".to_owned())
    }

    /// A check's request. The frontend's `/api` starts its own trace and names it in the answer;
    /// other requests carry a `traceparent` of a fresh trace.
    fn get(&mut self, url: &str) -> Result<(), String> {
        let parsed = reqwest::Url::parse(url).map_err(|e| format!("{url}: {e}"))?;
        let mut request = self.http.get(url);
        let mut sent = None;
        if !parsed.path().starts_with("/api/") {
            let (trace_id, _, header) = traceparent();
            request = request.header("traceparent", header);
            sent = Some(trace_id);
        }
        let (status, text) = self.runtime.block_on(async {
            let response = request
                .send()
                .await
                .map_err(|e| format!("GET {url}: {e}"))?;
            let status = response.status().as_u16();
            let text = response.text().await.map_err(|e| e.to_string())?;
            Ok::<_, String>((status, text))
        })?;
        let json: Option<Value> = serde_json::from_str(&text).ok();
        self.trace_id = json
            .as_ref()
            .and_then(|j| j.get("trace_id"))
            .and_then(Value::as_str)
            .map(str::to_owned)
            .or(sent);
        self.answer = Some(Answer { status, text, json });
        Ok(())
    }

    /// The trace as the page's waterfall gets it: the frontend's `/api/traces/{id}`; no spans
    /// while it answers 404 (not arrived yet).
    fn trace(&self, trace_id: &str) -> Trace {
        let url = format!("{}/api/traces/{trace_id}", Part::Frontend.local_url());
        let answer: Option<TraceAnswer> = self.api(&url);
        Trace::new(answer.map(|a| spans(&a)).unwrap_or_default())
    }

    /// Lines of the service in the trace, as the page's log panel gets them: the frontend's
    /// `/api/traces/{id}/logs`.
    fn log_lines(&self, service: &str, trace_id: &str, level: Option<&str>) -> usize {
        let url = format!("{}/api/traces/{trace_id}/logs", Part::Frontend.local_url());
        let answer: Option<LogsAnswer> = self.api(&url);
        answer.map_or(0, |logs| {
            logs.lines
                .iter()
                .filter(|l| l.service == service)
                .filter(|l| level.is_none_or(|level| l.level == level))
                .count()
        })
    }

    /// A trace route's answer, or `None` when it is not 200.
    fn api<T: serde::de::DeserializeOwned>(&self, url: &str) -> Option<T> {
        self.runtime.block_on(async {
            let response = self.http.get(url).send().await.ok()?;
            if !response.status().is_success() {
                return None;
            }
            response.json().await.ok()
        })
    }

    /// The value of an instant PromQL query on the lab's Prometheus: the one sample, or the sum
    /// when there are several.
    fn promql(&self, query: &str) -> Result<f64, String> {
        let body: Value = self.runtime.block_on(async {
            let encoded =
                percent_encoding::utf8_percent_encode(query, percent_encoding::NON_ALPHANUMERIC);
            self.http
                .get(format!(
                    "{}/api/v1/query?query={encoded}",
                    Part::Prometheus.local_url()
                ))
                .send()
                .await
                .map_err(|e| e.to_string())?
                .json()
                .await
                .map_err(|e| e.to_string())
        })?;
        if body["status"] != "success" {
            return Err(format!("Prometheus refused it: {body}"));
        }
        let result = &body["data"]["result"];
        let values: Vec<f64> = match body["data"]["resultType"].as_str() {
            Some("scalar") => vec![
                result[1]
                    .as_str()
                    .unwrap_or("NaN")
                    .parse()
                    .unwrap_or(f64::NAN),
            ],
            _ => result
                .as_array()
                .into_iter()
                .flatten()
                .map(|s| {
                    s["value"][1]
                        .as_str()
                        .unwrap_or("NaN")
                        .parse()
                        .unwrap_or(f64::NAN)
                })
                .collect(),
        };
        if values.is_empty() {
            return Err("no data yet".into());
        }
        Ok(values.iter().sum())
    }

    fn poll(
        &self,
        timeout: Duration,
        check: impl FnMut() -> Result<(), String>,
    ) -> Result<(), String> {
        wait::until_blocking(timeout, Duration::from_millis(250), check)
    }
}

/// The spans of the frontend's answer, as the trace assertions read spans.
fn spans(answer: &TraceAnswer) -> Vec<Span> {
    let start: u64 = answer.start_unix_nano.parse().unwrap_or(0);
    let resources: std::collections::HashMap<&str, Arc<std::collections::BTreeMap<String, Value>>> =
        answer
            .spans
            .iter()
            .map(|row| {
                let resource = [("service.name".to_owned(), Value::from(row.service.clone()))];
                (
                    row.service.as_str(),
                    Arc::new(resource.into_iter().collect()),
                )
            })
            .collect();
    answer
        .spans
        .iter()
        .map(|row| Span {
            trace_id: answer.trace_id.clone(),
            span_id: row.span_id.clone(),
            parent_span_id: row.parent_span_id.clone().unwrap_or_default(),
            name: row.name.clone(),
            kind: Kind::from_name(&row.kind),
            attributes: row.attributes.clone().into_iter().collect(),
            resource: resources[row.service.as_str()].clone(),
            scope: String::new(),
            status: StatusCode::from_name(&row.status),
            status_message: row.status_message.clone(),
            start_ns: start + row.start_ns,
            end_ns: start + row.end_ns(),
        })
        .collect()
}

/// PATH for the guide's commands: the built `dice-lab` first, then the test's own PATH, which
/// must have Prometheus (the guide's metric checks query it).
fn search_path() -> Result<String, String> {
    let bin = binary("dice-lab");
    let dir = bin.parent().expect("the binary is in a directory");
    let path = std::env::var("PATH").unwrap_or_default();
    let has_prometheus = std::env::split_paths(&path).any(|d| d.join("prometheus").is_file());
    if !has_prometheus {
        return Err(
            "the guide's checks need Prometheus on PATH (apt-get install prometheus); .ci/run installs it"
                .into(),
        );
    }
    Ok(format!("{}:{path}", dir.display()))
}

/// What a `trace SERVICE NAME ...` check asserts about the spans SERVICE exported as NAME.
enum TraceProperty {
    Count(String, Value),
    Errors(String, Value),
    Overlapping,
    OneAtATime,
    Root,
    Kind(Kind),
    Parent(String, String),
    Duration(String, Value),
    Total(String, String, String),
}

impl TraceProperty {
    fn parse(words: &[&str]) -> Result<Self, String> {
        Ok(match words {
            ["count", op, n] => Self::Count((*op).into(), parse_value(n)),
            ["errors", op, n] => Self::Errors((*op).into(), parse_value(n)),
            ["overlapping"] => Self::Overlapping,
            ["one-at-a-time"] => Self::OneAtATime,
            ["root"] => Self::Root,
            ["kind", kind] => Self::Kind(match *kind {
                "server" => Kind::Server,
                "client" => Kind::Client,
                "internal" => Kind::Internal,
                other => return Err(format!("unknown span kind {other}")),
            }),
            ["parent", service, name] => Self::Parent((*service).into(), (*name).into()),
            ["duration", op, ms] => Self::Duration((*op).into(), parse_value(ms)),
            ["total", op, service, name] => {
                Self::Total((*op).into(), (*service).into(), (*name).into())
            }
            _ => return Err(format!("unknown trace property {words:?}")),
        })
    }

    fn holds(&self, trace: &Trace, service: &str, name: &str) -> Result<(), String> {
        let spans: Vec<&Span> = trace.find(service, name);
        let some = || {
            if spans.is_empty() {
                Err(format!("no span {name:?} from {service}"))
            } else {
                Ok(())
            }
        };
        match self {
            Self::Count(op, n) => compare_values(&Value::from(spans.len()), op, n)
                .map_err(|e| format!("{name:?} spans from {service}: {e}")),
            Self::Errors(op, n) => {
                let errors = spans
                    .iter()
                    .filter(|s| s.status == StatusCode::Error)
                    .count();
                compare_values(&Value::from(errors), op, n)
                    .map_err(|e| format!("{name:?} error spans from {service}: {e}"))
            }
            Self::Overlapping => {
                some()?;
                (max_concurrency(&spans) >= 2)
                    .then_some(())
                    .ok_or_else(|| format!("the {name:?} spans never overlap"))
            }
            Self::OneAtATime => {
                if spans.len() < 2 {
                    return Err(format!("fewer than two {name:?} spans"));
                }
                (max_concurrency(&spans) == 1)
                    .then_some(())
                    .ok_or_else(|| format!("the {name:?} spans overlap"))
            }
            Self::Root => {
                some()?;
                spans
                    .iter()
                    .all(|s| s.parent_span_id.is_empty())
                    .then_some(())
                    .ok_or_else(|| format!("{name:?} has a parent"))
            }
            Self::Kind(kind) => {
                some()?;
                spans
                    .iter()
                    .all(|s| s.kind == *kind)
                    .then_some(())
                    .ok_or_else(|| format!("{name:?} is not of kind {kind:?}"))
            }
            Self::Parent(parent_service, parent_name) => {
                some()?;
                let parents: Vec<&Span> = trace.find(parent_service, parent_name);
                spans
                    .iter()
                    .all(|s| parents.iter().any(|p| p.span_id == s.parent_span_id))
                    .then_some(())
                    .ok_or_else(|| {
                        format!("{name:?} is not a child of {parent_service}'s {parent_name:?}")
                    })
            }
            Self::Duration(op, ms) => {
                some()?;
                for span in &spans {
                    let took = span.duration_ns() as f64 / 1e6;
                    compare_values(&Value::from(took), op, ms)
                        .map_err(|e| format!("{name:?} took {took:.1} ms: {e}"))?;
                }
                Ok(())
            }
            Self::Total(op, other_service, other_name) => {
                some()?;
                let other = trace.find(other_service, other_name);
                let [other] = other.as_slice() else {
                    return Err(format!(
                        "not exactly one {other_name:?} from {other_service}"
                    ));
                };
                let total = total_duration_ns(&spans) as f64 / 1e6;
                let theirs = other.duration_ns() as f64 / 1e6;
                compare_values(&Value::from(total), op, &Value::from(theirs)).map_err(|e| {
                    format!("the {name:?} spans took {total:.1} ms in all, {other_name:?} {theirs:.1} ms: {e}")
                })
            }
        }
    }
}

fn parse_value(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|_| Value::from(text))
}

/// `found OP expected`, numerically when both are numbers.
fn compare_values(found: &Value, op: &str, expected: &Value) -> Result<(), String> {
    let holds = match (found.as_f64(), expected.as_f64(), op) {
        (_, _, "contains") => found
            .as_str()
            .zip(expected.as_str())
            .is_some_and(|(f, e)| f.contains(e)),
        (Some(f), Some(e), "=") => f == e,
        (Some(f), Some(e), "!=") => f != e,
        (Some(f), Some(e), ">=") => f >= e,
        (Some(f), Some(e), "<=") => f <= e,
        (Some(f), Some(e), ">") => f > e,
        (Some(f), Some(e), "<") => f < e,
        (_, _, "=") => found == expected,
        (_, _, "!=") => found != expected,
        _ => return Err(format!("cannot compare {found} {op} {expected}")),
    };
    holds
        .then_some(())
        .ok_or_else(|| format!("found {found}, expected {op} {expected}"))
}

/// Words separated by spaces; '...' or "..." quote a word with spaces.
fn split_words(line: &str) -> Result<Vec<String>, String> {
    let mut words = Vec::new();
    let mut chars = line.chars().peekable();
    while let Some(&c) = chars.peek() {
        if c.is_whitespace() {
            chars.next();
            continue;
        }
        let mut word = String::new();
        if c == '\'' || c == '"' {
            chars.next();
            loop {
                match chars.next() {
                    Some(q) if q == c => break,
                    Some(other) => word.push(other),
                    None => return Err(format!("unclosed {c} in `{line}`")),
                }
            }
        } else {
            while let Some(&c) = chars.peek() {
                if c.is_whitespace() {
                    break;
                }
                word.push(c);
                chars.next();
            }
        }
        words.push(word);
    }
    Ok(words)
}
