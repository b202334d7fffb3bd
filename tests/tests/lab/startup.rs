//! Start-up and settings of the real binaries: what a user sees when a setting is wrong.

use lab_tests::fixtures::dice_file;
use lab_tests::process::run_to_exit;

#[test]
fn a_bad_dice_file_stops_the_die_service_naming_file_die_and_field() {
    let file = dice_file(
        r#"{"fair": {"faces": [1, 2], "error_rate": 0}, "broken": {"faces": [1], "error_rate": 2}}"#,
    );
    let path = file.to_str().unwrap();
    let exited = run_to_exit(
        "die-service",
        &["--listen", "127.0.0.1:0", "--dice-file", path],
        &[],
    );
    assert!(!exited.status.success());
    let expected = format!(
        "dice file '{path}': die 'broken': field 'error_rate' must be between 0 and 1, got 2"
    );
    assert!(
        exited.stderr.contains(&expected),
        "stderr: {}",
        exited.stderr
    );
    let error_line = exited
        .stdout
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find(|l| l["level"] == "error")
        .expect("a JSON error line on stdout");
    assert_eq!(error_line["error"], expected.as_str());

    let missing = run_to_exit(
        "die-service",
        &["--dice-file", "/nonexistent/dice.json"],
        &[],
    );
    assert!(!missing.status.success());
    assert!(
        missing
            .stderr
            .contains("cannot read dice file '/nonexistent/dice.json'"),
        "{}",
        missing.stderr
    );

    let not_json = dice_file("{ not json");
    let exited = run_to_exit(
        "die-service",
        &["--dice-file", not_json.to_str().unwrap()],
        &[],
    );
    assert!(
        exited.stderr.contains("is not a JSON object of dice"),
        "{}",
        exited.stderr
    );
}

#[test]
fn environment_variables_set_what_flags_set() {
    let file = dice_file(r#"{"only": {"faces": [], "error_rate": 0}}"#);
    let exited = run_to_exit(
        "die-service",
        &[],
        &[
            ("DICE_FILE", file.to_str().unwrap()),
            ("DIE_SERVICE_LISTEN", "127.0.0.1:0"),
        ],
    );
    assert!(
        exited
            .stderr
            .contains("die 'only': field 'faces' must list at least one face"),
        "{}",
        exited.stderr
    );
}

#[test]
fn a_taken_port_is_named() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = taken.local_addr().unwrap().to_string();
    for name in ["die-service", "dice-roller"] {
        let exited = run_to_exit(name, &["--listen", &address], &[]);
        assert!(!exited.status.success());
        assert!(
            exited
                .stderr
                .contains(&format!("cannot listen on {address}")),
            "{name}: {}",
            exited.stderr
        );
    }
}

#[test]
fn bad_roller_settings_are_refused() {
    for (args, says) in [
        (&["--max-times", "0"][..], "--max-times"),
        (
            &["--roll-delay-ms", "9..1"][..],
            "the minimum is greater than the maximum",
        ),
        (
            &["--roll-delay-ms", "soon"][..],
            "is not MIN..MAX or N milliseconds",
        ),
        (
            &["--die-service-timeout-ms", "0"][..],
            "--die-service-timeout-ms",
        ),
        (
            &["--die-service-url", "ftp://x"][..],
            "must start with http://",
        ),
        (&["--die-service-url", "not a url"][..], "is not a URL"),
    ] {
        let mut all = vec!["--listen", "127.0.0.1:0"];
        all.extend_from_slice(args);
        let exited = run_to_exit("dice-roller", &all, &[]);
        assert!(!exited.status.success(), "{args:?} was accepted");
        assert!(exited.stderr.contains(says), "{args:?}: {}", exited.stderr);
    }
}
