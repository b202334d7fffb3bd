//! Test data: a dice file whose dice make outcomes predictable, scratch directories, and fresh
//! trace contexts. What a test writes under the temporary directory is removed when the test is
//! done with it, so a run leaves nothing behind.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// Dice for tests: `fixed` always rolls 3, `doomed` always fails, `half` fails half the time, and
/// `fair` is the workshop's.
pub const TEST_DICE: &str = r#"{
  "fair": {"faces": [1, 2, 3, 4, 5, 6], "error_rate": 0.0},
  "fixed": {"faces": [3], "error_rate": 0.0, "description": "always 3"},
  "doomed": {"faces": [1], "error_rate": 1.0},
  "half": {"faces": [0, 6], "error_rate": 0.5}
}"#;

static COUNTER: AtomicU64 = AtomicU64::new(1);

fn unique() -> u64 {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    nanos ^ (COUNTER.fetch_add(1, Ordering::Relaxed) << 48) ^ u64::from(std::process::id())
}

/// Writes `json` to a fresh file in the temporary directory; the file is removed when the path
/// is dropped (a die-service reads its file once, at start-up).
pub fn dice_file(json: &str) -> tempfile::TempPath {
    let mut file = tempfile::Builder::new()
        .prefix("dice-lab-test-")
        .suffix(".json")
        .tempfile()
        .expect("the temporary directory is writable");
    std::io::Write::write_all(&mut file, json.as_bytes())
        .expect("the temporary directory is writable");
    file.into_temp_path()
}

/// A fresh directory under the temporary one, named after `name`, removed with what it holds when
/// dropped.
pub fn scratch_dir(name: &str) -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix(&format!("dice-lab-{name}-"))
        .tempdir()
        .expect("the temporary directory is writable")
}

/// A sampled W3C trace context: `(trace_id, parent_span_id, traceparent header)`.
pub fn traceparent() -> (String, String, String) {
    let trace_id = format!("{:016x}{:016x}", unique(), unique());
    let span_id = format!("{:016x}", unique() | 1);
    let header = format!("00-{trace_id}-{span_id}-01");
    (trace_id, span_id, header)
}
