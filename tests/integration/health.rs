//! `mdatp health` and `mdatp version`.

use crate::util::*;

/// Every field of REFERENCE.md's health section, in its order.
const FIELDS: &[&str] = &[
    "healthy",
    "health_issues",
    "licensed",
    "engine_version",
    "engine_load_status",
    "app_version",
    "org_id",
    "log_level",
    "machine_guid",
    "release_ring",
    "product_expiration",
    "cloud_enabled",
    "cloud_automatic_sample_submission_consent",
    "cloud_diagnostic_enabled",
    "passive_mode_enabled",
    "behavior_monitoring",
    "real_time_protection_enabled",
    "real_time_protection_available",
    "real_time_protection_subsystem",
    "supplementary_events_subsystem",
    "tamper_protection",
    "automatic_definition_update_enabled",
    "definitions_updated",
    "definitions_updated_minutes_ago",
    "definitions_version",
    "definitions_status",
    "edr_early_preview_enabled",
    "edr_device_tags",
    "edr_group_ids",
    "edr_configuration_version",
    "edr_machine_id",
    "conflicting_applications",
    "network_protection_status",
    "network_protection_enforcement_level",
    "troubleshooting_mode",
    "antivirus_enforcement_level",
];

/// Parses `name : value` lines of `mdatp health`.
fn health_lines(text: &str) -> Vec<(String, String)> {
    text.lines()
        .filter_map(|l| l.split_once(" : ").map(|(n, v)| (n.trim().to_string(), v.trim().to_string())))
        .collect()
}

#[test]
fn every_reference_field_in_text_and_json() {
    let d = TestDaemon::start();
    let text = d.ok(&["health"]).stdout;
    let lines = health_lines(&text);
    for f in FIELDS {
        assert!(lines.iter().any(|(n, _)| n == f), "field {f} missing from `mdatp health`:\n{text}");
    }
    let json = d.json(&["health"]);
    let obj = json.as_object().unwrap_or_else(|| panic!("health --output json is not an object: {json}"));
    for f in FIELDS {
        assert!(obj.contains_key(*f), "field {f} missing from `mdatp health --output json`: {json}");
    }
    // Strings are quoted in text, as the reference prints them.
    let status = lines.iter().find(|(n, _)| n == "definitions_status").unwrap();
    assert!(status.1.starts_with('"'), "definitions_status not quoted: {status:?}");
    // A field whose subsystem does not exist yet reports the honest value.
    assert_eq!(d.health_field("real_time_protection_available"), "false");
    // --field prints the same value as the full listing.
    let guid = lines.iter().find(|(n, _)| n == "machine_guid").unwrap().1.clone();
    assert_eq!(d.health_field("machine_guid"), guid);
}

#[test]
fn field_healthy_prints_true_or_false() {
    let d = TestDaemon::start();
    // No onboarding file: "missing license" makes the agent unhealthy.
    assert_eq!(d.health_field("healthy"), "false");
    let issues = d.health_field("health_issues");
    assert!(issues.contains("missing license"), "health_issues: {issues}");
    assert_eq!(d.health_field("licensed"), "false");
    // Onboard: licensed, and healthy in the default (passive) mode.
    write(&d.onboarding_path(), br#"{"onboardingInfo": "{\"body\": \"{\\\"orgIds\\\": [\\\"11111111-2222-3333-4444-555555555555\\\"]}\"}"}"#);
    d.wait_health("licensed", "true", |v| v == "true");
    assert_eq!(d.health_field("healthy"), "true", "health: {}", d.ok(&["health"]).stdout);
    assert_eq!(d.health_field("org_id"), "\"11111111-2222-3333-4444-555555555555\"");
    let j = d.json(&["health", "--field", "healthy"]);
    assert!(j.to_string().contains("true"), "health --field healthy --output json: {j}");
}

#[test]
fn unknown_field_fails_with_a_message() {
    let d = TestDaemon::start();
    let o = d.mdatp(&["health", "--field", "no_such_field"]).failure();
    assert!(o.stderr.contains("no_such_field"), "message does not name the field: {}", o.describe());
    assert_eq!(o.stderr.trim().lines().count(), 1, "not a one-line message: {}", o.describe());
    assert!(o.stdout.is_empty(), "{}", o.describe());
    d.mdatp(&["health", "--field", "no_such_field", "--output", "json"]).failure();
}

#[test]
fn managed_suffix_for_managed_keys() {
    let d = TestDaemon::start();
    assert!(!d.ok(&["health"]).stdout.contains("[managed]"), "nothing is managed yet");
    d.write_managed(r#"{"antivirusEngine": {"enforcementLevel": "on_demand"}}"#);
    d.wait_health("antivirus_enforcement_level", "managed on_demand", |v| v == "\"on_demand\" [managed]");
    let text = d.ok(&["health"]).stdout;
    let lines = health_lines(&text);
    let line = |n: &str| lines.iter().find(|(x, _)| x == n).map(|x| x.1.clone()).unwrap_or_default();
    assert_eq!(line("passive_mode_enabled"), "false [managed]", "{text}");
    assert!(!line("log_level").contains("[managed]"), "log_level is not managed: {text}");
    let json = d.json(&["health"]);
    assert_eq!(json["antivirus_enforcement_level"]["isManaged"], true, "{json}");
}

#[test]
fn version_prints_the_product_version() {
    // `mdatp version` needs no daemon.
    let root = tempfile::tempdir().unwrap();
    let mut c = mdatp_command(root.path());
    c.arg("version");
    let o = run(c).success();
    assert_eq!(o.stdout.trim(), format!("Product version: {}", env!("CARGO_PKG_VERSION")), "{}", o.describe());
    let d = TestDaemon::start();
    let v = d.json(&["version"]);
    assert_eq!(v["app_version"], env!("CARGO_PKG_VERSION"), "{v}");
    assert_eq!(d.health_field("app_version"), format!("\"{}\"", env!("CARGO_PKG_VERSION")));
}

#[test]
fn daemon_not_running_gives_a_clear_error() {
    let root = tempfile::tempdir().unwrap();
    for args in [&["health"][..], &["health", "--field", "healthy"], &["scan", "list"], &["threat", "list", "--output", "json"]] {
        let mut c = mdatp_command(root.path());
        c.args(args);
        let o = run(c).failure();
        assert_eq!(o.stderr.trim().lines().count(), 1, "not one line: {}", o.describe());
        assert!(o.stderr.contains("not running"), "unclear message: {}", o.describe());
        assert!(o.stdout.is_empty(), "{}", o.describe());
    }
    // Same after a daemon was killed (a stale socket file is left behind).
    let mut d = TestDaemon::start();
    d.kill();
    let o = d.mdatp(&["health"]).failure();
    assert!(o.stderr.contains("not running"), "stale socket: {}", o.describe());
    d.spawn();
    d.assert_alive();
}

#[test]
fn details_definitions_shows_only_definitions_fields() {
    let d = TestDaemon::start();
    let text = d.ok(&["health", "--details", "definitions"]).stdout;
    let names: Vec<String> = health_lines(&text).into_iter().map(|(n, _)| n).collect();
    assert!(names.contains(&"definitions_version".to_string()), "{text}");
    assert!(names.iter().all(|n| n.starts_with("definitions_")), "{text}");
}

#[test]
fn second_daemon_on_the_same_root_refuses_to_start() {
    let mut d = TestDaemon::start();
    let o = std::process::Command::new(WDAVDAEMON)
        .env("MDATP_ROOT", d.root())
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    assert_ne!(o.status.code(), Some(0), "a second daemon started");
    assert!(String::from_utf8_lossy(&o.stderr).contains("already"), "{}", String::from_utf8_lossy(&o.stderr));
    d.assert_alive();
}
