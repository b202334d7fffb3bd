//! The documentation stands on its own: every relative link of README.md, `docs/` and
//! `lab-guide/` resolves, every repository path they name in backticks exists, and no tracked file
//! points outside the repository.

use std::path::Path;
use std::process::Command;

use lab_tests::repo;

/// The Markdown pages users read.
fn pages() -> Vec<String> {
    let mut pages = vec!["README.md".to_owned()];
    for dir in ["docs", "lab-guide"] {
        for file in repo::files(dir, "md") {
            pages.push(format!(
                "{dir}/{}",
                file.file_name().unwrap().to_string_lossy()
            ));
        }
    }
    pages
}

#[test]
fn every_link_and_every_named_file_exists() {
    let root = repo::root();
    let mut missing = Vec::new();
    for page in pages() {
        let text = repo::read(&page);
        let dir = Path::new(&page).parent().unwrap();
        // [text](target): relative targets, without their #anchor.
        for (i, _) in text.match_indices("](") {
            let target: String = text[i + 2..].chars().take_while(|c| *c != ')').collect();
            let path = target.split('#').next().unwrap();
            if path.is_empty() || path.contains("://") || path.starts_with("mailto:") {
                continue;
            }
            if !root.join(dir).join(path).exists() {
                missing.push(format!("{page}: link {target}"));
            }
        }
        // `path/of/a/file.ext` in backticks.
        for quoted in text.split('`').skip(1).step_by(2) {
            let looks_like_a_path = quoted.contains('/')
                && !quoted.contains([' ', '*'])
                && !quoted.contains("://")
                && [
                    "crates/",
                    "services/",
                    "tests/",
                    "launcher/",
                    "nix/",
                    "observability/",
                ]
                .iter()
                .any(|top| quoted.starts_with(top))
                && Path::new(quoted).extension().is_some();
            if looks_like_a_path && !root.join(quoted).exists() {
                missing.push(format!("{page}: `{quoted}`"));
            }
        }
    }
    assert!(missing.is_empty(), "these do not exist: {missing:#?}");
}

#[test]
fn nothing_points_outside_the_repository() {
    let out = Command::new("git")
        .args(["ls-files"])
        .current_dir(repo::root())
        .output()
        .expect("git runs");
    let tracked = String::from_utf8(out.stdout).unwrap();
    // The folder beside a developer's checkout, which no user's clone has.
    let beside = concat!("..", "/shared");
    let mut outside = Vec::new();
    for file in tracked.lines().filter(|f| *f != ".ci/run") {
        let Ok(text) = std::fs::read_to_string(repo::root().join(file)) else {
            continue;
        };
        if text.contains(beside) {
            outside.push(file.to_owned());
        }
    }
    assert!(outside.is_empty(), "these refer to {beside}: {outside:?}");
}
