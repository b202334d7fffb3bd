//! What the backends logged at warn or error during a normal run (their start, the traffic and
//! every query, before the restart check stops them): each line is one that docs/observability.md
//! lists as known upstream noise, with its reason. A new one fails here until it is fixed in the
//! configuration or listed. What they log while stopping and starting again is printed by the
//! restart check, not held to the list: it depends on what was in flight.

use lab_tests::repo;

use crate::lab::Lab;

/// `(backend, message)` of each row of the known-noise table in docs/observability.md that is
/// marked as seen in a normal run (*run*, not *stop*).
fn known_noise() -> Vec<(String, String)> {
    let doc = repo::read("docs/observability.md");
    let section = doc
        .split("\n## ")
        .find(|s| s.starts_with("Known upstream noise"))
        .expect("docs/observability.md has a section \"Known upstream noise\"");
    section
        .lines()
        .filter(|l| l.starts_with('|') && !l.starts_with("|---") && !l.starts_with("| backend"))
        .filter_map(|row| {
            let cells: Vec<&str> = row.split('|').map(str::trim).collect();
            let message = cells.get(2)?.strip_prefix('`')?.strip_suffix('`')?;
            (*cells.get(3)? == "*run*").then(|| (cells[1].to_owned(), message.to_owned()))
        })
        .collect()
}

pub async fn every_warning_is_known_upstream_noise(lab: &mut Lab) {
    let known = known_noise();
    let mut unknown = Vec::new();
    for backend in [&lab.tempo, &lab.loki, &lab.prometheus] {
        let warnings = backend.warnings();
        eprintln!(
            "{} logged {} lines at warn or error",
            backend.part,
            warnings.len()
        );
        for line in warnings {
            let listed = known.iter().any(|(part, message)| {
                part == backend.part.name() && line.contains(message.as_str())
            });
            if !listed {
                unknown.push(format!("{}: {line}", backend.part));
            }
        }
    }
    assert!(
        unknown.is_empty(),
        "lines at warn or error that docs/observability.md does not list:\n{}",
        unknown.join("\n")
    );
}
