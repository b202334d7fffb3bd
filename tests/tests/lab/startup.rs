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
        (
            &["--max-times", "20000", "--max-rolls-in-flight", "10000"][..],
            "--max-times (20000) must be at most --max-rolls-in-flight (10000)",
        ),
        (&["--fault-token-required"][..], "--fault-token"),
        (&["--max-connections", "0"][..], "--max-connections"),
    ] {
        let mut all = vec!["--listen", "127.0.0.1:0"];
        all.extend_from_slice(args);
        let exited = run_to_exit("dice-roller", &all, &[]);
        assert!(!exited.status.success(), "{args:?} was accepted");
        assert!(exited.stderr.contains(says), "{args:?}: {}", exited.stderr);
    }
}

/// A dice file too large or too wide, with a repeated die or a byte-order mark, is refused at
/// once, naming what is wrong: the checks are one pass over the file.
#[test]
fn dice_files_beyond_the_limits_are_refused_at_once() {
    let distinct: Vec<String> = (0..1_000_000).map(|i| i.to_string()).collect();
    let million = format!(
        r#"{{"wide": {{"faces": [{}], "error_rate": 0}}}}"#,
        distinct.join(",")
    );
    let faces: Vec<String> = (0..10_001).map(|i| i.to_string()).collect();
    let many = format!(
        r#"{{"wide": {{"faces": [{}], "error_rate": 0}}}}"#,
        faces.join(",")
    );
    let cases = [
        (million, "bytes; a dice file is at most 4194304".to_owned()),
        (
            many,
            "die 'wide': field 'faces' has 10001 faces; a die has at most 10000".to_owned(),
        ),
        (
            r#"{"big": {"faces": [9223372036854775807], "error_rate": 0}}"#.to_owned(),
            "die 'big': field 'faces[0]' must be a whole number from -1000000000 to 1000000000"
                .to_owned(),
        ),
        (
            r#"{"fair": {"faces": [1], "error_rate": 0}, "fair": {"faces": [2], "error_rate": 0}}"#
                .to_owned(),
            "names die 'fair' twice".to_owned(),
        ),
        (
            "\u{feff}{\"fair\": {\"faces\": [1], \"error_rate\": 0}}".to_owned(),
            "starts with a byte-order mark".to_owned(),
        ),
        (
            r#"{"fair": {"faces": [1], "error_rate": "none"}}"#.to_owned(),
            "die 'fair': field 'error_rate' must be a number, not a string".to_owned(),
        ),
    ];
    for (text, says) in cases {
        let file = dice_file(&text);
        let path = file.to_str().unwrap();
        let started = std::time::Instant::now();
        let exited = run_to_exit(
            "die-service",
            &["--listen", "127.0.0.1:0", "--dice-file", path],
            &[],
        );
        let took = started.elapsed();
        assert!(!exited.status.success(), "{says}: accepted");
        assert!(
            exited.stderr.contains(&format!("dice file '{path}'")) && exited.stderr.contains(&says),
            "{says}: {}",
            exited.stderr
        );
        assert!(
            took < std::time::Duration::from_secs(5),
            "{says}: took {took:?}"
        );
    }
}

/// An OTLP endpoint that can never work stops the service with the reason, instead of looking
/// like a collector that is down.
#[test]
fn an_otlp_endpoint_that_cannot_work_is_refused() {
    for (endpoint, says) in [
        ("ftp://127.0.0.1:4318", "the scheme must be http"),
        ("http://127.0.0.1:99999", "invalid port number"),
        ("https://collector:4318", "the scheme must be http"),
    ] {
        let exited = lab_tests::process::run_to_exit_with_telemetry(
            "dice-roller",
            &["--listen", "127.0.0.1:0"],
            &[("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint)],
        );
        assert!(!exited.status.success(), "{endpoint} was accepted");
        assert!(
            exited.stderr.contains("cannot be used") && exited.stderr.contains(says),
            "{endpoint}: {}",
            exited.stderr
        );
    }
}
