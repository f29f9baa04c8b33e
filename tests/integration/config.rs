//! Configuration: managed beats local beats defaults, invalid files are rejected with a
//! message naming file and key, and changes apply live.

use crate::util::*;

const GOOD: &str = r#"{"antivirusEngine": {"enforcementLevel": "on_demand", "maximumOnDemandScanThreads": 4}}"#;

#[test]
fn managed_beats_local() {
    let d = TestDaemon::start();
    d.write_managed(r#"{"antivirusEngine": {"enforcementLevel": "real_time"}}"#);
    d.wait_health("antivirus_enforcement_level", "managed real_time", |v| v == "\"real_time\" [managed]");
    for args in [
        &["config", "passive-mode", "--value", "enabled"][..],
        &["config", "real-time-protection", "--value", "disabled"],
    ] {
        let o = d.mdatp(args).failure();
        assert!(o.text_lower().contains("managed"), "message does not mention managed: {}", o.describe());
        assert_eq!(o.stderr.trim().lines().count(), 1, "{}", o.describe());
    }
    assert_eq!(d.health_field("antivirus_enforcement_level"), "\"real_time\" [managed]");
    assert_eq!(d.health_field("passive_mode_enabled"), "false [managed]");
    // A key the managed file does not set can still be changed locally.
    d.ok(&["config", "behavior-monitoring", "--value", "enabled"]);
    assert_eq!(d.health_field("behavior_monitoring"), "\"enabled\"");
    // Managed scanArchives blocks the CLI too.
    d.write_managed(r#"{"antivirusEngine": {"enforcementLevel": "real_time", "scanArchives": false}}"#);
    let o = wait_until(CHANGE_TIMEOUT, "scanArchives to become managed", || {
        let o = d.mdatp(&["config", "scan-archives", "--value", "enabled"]);
        (!o.ok()).then_some(o)
    });
    assert!(o.text_lower().contains("managed"), "{}", o.describe());
}

#[test]
fn local_changes_show_in_health() {
    let d = TestDaemon::start();
    assert_eq!(d.health_field("antivirus_enforcement_level"), "\"passive\"");
    let o = d.ok(&["config", "real-time-protection", "--value", "enabled"]);
    assert_eq!(o.stdout.trim(), "Configuration property updated", "{}", o.describe());
    assert_eq!(d.health_field("real_time_protection_enabled"), "true");
    assert_eq!(d.health_field("antivirus_enforcement_level"), "\"real_time\"");
    assert_eq!(d.health_field("passive_mode_enabled"), "false");
    d.ok(&["config", "passive-mode", "--value", "enabled"]);
    assert_eq!(d.health_field("passive_mode_enabled"), "true");
    assert_eq!(d.health_field("real_time_protection_enabled"), "false");
    d.ok(&["config", "cloud", "--value", "disabled"]);
    assert_eq!(d.health_field("cloud_enabled"), "false");
    d.ok(&["config", "network-protection", "enforcement-level", "--value", "audit"]);
    assert_eq!(d.health_field("network_protection_enforcement_level"), "\"audit\"");
    let j = d.json(&["config", "behavior-monitoring", "--value", "enabled"]);
    assert!(j.to_string().contains("Configuration property updated"), "{j}");
    // Local settings survive a restart.
    let mut d = d;
    d.restart();
    assert_eq!(d.health_field("passive_mode_enabled"), "true");
    assert_eq!(d.health_field("cloud_enabled"), "false");
    // Bad values are refused by the CLI.
    d.mdatp(&["config", "maximum-on-demand-scan-threads", "--value", "65"]).failure();
    d.mdatp(&["config", "scan-archives", "--value", "maybe"]).failure();
}

/// Writes `bad`, waits until health names `file_hint` and every `keys`, then checks the last
/// good configuration is still in force and that fixing the file clears the issue.
fn rejected(bad: &str, keys: &[&str]) {
    let d = TestDaemon::start();
    d.write_managed(GOOD);
    d.wait_health("antivirus_enforcement_level", "managed on_demand", |v| v == "\"on_demand\" [managed]");
    assert!(!d.health_field("health_issues").contains("mdatp_managed.json"));
    d.write_managed(bad);
    let issues = d.wait_health("health_issues", "naming the managed file", |v| v.contains("mdatp_managed.json"));
    for k in keys {
        assert!(issues.contains(k), "health_issues does not name key {k}: {issues}");
    }
    assert_eq!(d.health_field("healthy"), "false");
    // The last good configuration stays in force.
    assert_eq!(d.health_field("antivirus_enforcement_level"), "\"on_demand\" [managed]", "for {bad}");
    // Fixing the file clears the issue.
    d.write_managed(r#"{"antivirusEngine": {"enforcementLevel": "real_time"}}"#);
    d.wait_health("antivirus_enforcement_level", "real_time", |v| v == "\"real_time\" [managed]");
    let issues = d.health_field("health_issues");
    assert!(!issues.contains("mdatp_managed.json"), "issue not cleared: {issues}");
}

#[test]
fn invalid_managed_bad_json() {
    rejected(r#"{"antivirusEngine": {"enforcementLevel": "passive",, }"#, &[]);
}

#[test]
fn invalid_managed_wrong_type() {
    rejected(
        r#"{"antivirusEngine": {"enforcementLevel": "passive", "scanArchives": "yes"}}"#,
        &["antivirusEngine.scanArchives"],
    );
}

#[test]
fn invalid_managed_out_of_range() {
    rejected(
        r#"{"antivirusEngine": {"enforcementLevel": "passive", "maximumOnDemandScanThreads": 100}}"#,
        &["antivirusEngine.maximumOnDemandScanThreads", "100"],
    );
}

#[test]
fn invalid_managed_unknown_key() {
    rejected(
        r#"{"antivirusEngine": {"enforcementLevel": "passive", "scanArchivez": true}}"#,
        &["scanArchivez"],
    );
}

#[test]
fn invalid_managed_bad_enum_value() {
    rejected(r#"{"antivirusEngine": {"enforcementLevel": "loud"}}"#, &["antivirusEngine.enforcementLevel", "loud"]);
}

#[test]
fn invalid_managed_at_start_up_is_reported() {
    // A daemon that starts with a bad file still runs, with defaults, and says why.
    let mut d = TestDaemon::new_stopped();
    d.write_managed(r#"{"antivirusEngine": {"maximumOnDemandScanThreads": 0}}"#);
    d.spawn();
    let issues = d.health_field("health_issues");
    assert!(issues.contains("mdatp_managed.json") && issues.contains("maximumOnDemandScanThreads"), "{issues}");
}

#[test]
fn changes_apply_live_without_restart() {
    let d = TestDaemon::start();
    d.write_managed(r#"{"antivirusEngine": {"enforcementLevel": "on_demand"}}"#);
    d.wait_health("antivirus_enforcement_level", "on_demand", |v| v == "\"on_demand\" [managed]");
    d.write_managed(r#"{"antivirusEngine": {"enforcementLevel": "passive"}, "cloudService": {"enabled": false}}"#);
    d.wait_health("antivirus_enforcement_level", "passive", |v| v == "\"passive\" [managed]");
    assert_eq!(d.health_field("cloud_enabled"), "false [managed]");
    // Removing the managed file hands control back to local settings and defaults.
    std::fs::remove_file(d.managed_path()).unwrap();
    d.wait_health("antivirus_enforcement_level", "unmanaged passive", |v| v == "\"passive\"");
    assert_eq!(d.health_field("cloud_enabled"), "true");
    // A live change of behaviour, not just of health: passive reports, on_demand quarantines.
    let f = d.data().join("live/eicar.com");
    write_eicar(&f);
    d.scan(&[&f]).success();
    assert!(f.exists());
    d.write_managed(r#"{"antivirusEngine": {"enforcementLevel": "on_demand"}}"#);
    d.wait_health("antivirus_enforcement_level", "on_demand", |v| v.starts_with("\"on_demand\""));
    d.scan(&[&f]).success();
    assert!(!f.exists(), "on_demand set live did not quarantine");
    // Editing the local settings file by hand is picked up too.
    write_atomic(&d.local_config_path(), br#"{"cloudService": {"enabled": false}}"#);
    d.wait_health("cloud_enabled", "false", |v| v == "false");
}

#[test]
fn invalid_local_settings_file() {
    let d = TestDaemon::start();
    d.ok(&["config", "real-time-protection", "--value", "disabled"]);
    write_atomic(&d.local_config_path(), b"{ not json");
    let issues = d.wait_health("health_issues", "naming wdavcfg", |v| v.contains("wdavcfg"));
    assert!(!issues.is_empty());
    // The last good local settings stay in force.
    assert_eq!(d.health_field("antivirus_enforcement_level"), "\"on_demand\"");
    // The CLI refuses to write over a file it cannot read, and says so.
    let o = d.mdatp(&["config", "cloud", "--value", "disabled"]).failure();
    assert!(o.stderr.contains("wdavcfg"), "{}", o.describe());
    assert_eq!(std::fs::read(d.local_config_path()).unwrap(), b"{ not json", "the bad file was overwritten");
}
