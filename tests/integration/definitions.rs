//! Definitions: the two directories, live reload, `definitions update` and `restore`, threat
//! types of signatures.

use std::fs;

use crate::util::*;

fn md5_hex(data: &[u8]) -> String {
    use md5::Digest;
    md5::Md5::digest(data).iter().map(|b| format!("{b:02x}")).collect()
}

fn hdb_line(data: &[u8], name: &str) -> String {
    format!("{}:{}:{name}\n", md5_hex(data), data.len())
}

#[test]
fn dropped_file_is_picked_up_without_update() {
    let d = TestDaemon::start();
    let v0 = d.health_field("definitions_version");
    let bad = pseudo_random(500, 3000);
    let f = d.data().join("live/bad.bin");
    write(&f, &bad);
    write_atomic(&d.definitions_dir().join("live.hdb"), hdb_line(&bad, "Test.Live.Reload").as_bytes());
    d.wait_health("definitions_version", "a new version", |v| v != v0);
    assert_eq!(d.scan_json(&f, &[])["threats_detected"], 1);
    assert_eq!(d.health_field("definitions_status"), "\"up_to_date\"");
}

#[test]
fn packaged_set_and_updated_set() {
    let mut d = TestDaemon::new_stopped();
    let a = pseudo_random(510, 2000);
    let b = pseudo_random(511, 2000);
    let packaged = d.p("/opt/microsoft/mdatp/definitions");
    write(&packaged.join("main.hdb"), hdb_line(&a, "Test.Packaged.A").as_bytes());
    write(&packaged.join("extra.hdb"), hdb_line(&b, "Test.Packaged.B").as_bytes());
    d.spawn();
    let dir = d.data().join("pk");
    write(&dir.join("a"), &a);
    write(&dir.join("b"), &b);
    assert_eq!(d.scan_json(&dir, &[])["threats_detected"], 2, "packaged definitions not loaded");
    // A file of the same name in the updated directory replaces the packaged one.
    write_atomic(&d.definitions_dir().join("extra.hdb"), hdb_line(&a, "Test.Updated.A").as_bytes());
    d.ok(&["definitions", "update"]);
    let j = d.scan_json(&dir, &[]);
    assert_eq!(j["threats_detected"], 1, "updated extra.hdb must replace the packaged one: {j}");
}

#[test]
fn definitions_restore_rolls_back() {
    let d = TestDaemon::start();
    let a = pseudo_random(520, 2000);
    let b = pseudo_random(521, 2000);
    let dir = d.data().join("rb");
    write(&dir.join("a"), &a);
    write(&dir.join("b"), &b);
    write_atomic(&d.definitions_dir().join("set.hdb"), hdb_line(&a, "Test.Set.One").as_bytes());
    d.ok(&["definitions", "update"]);
    let v1 = d.health_field("definitions_version");
    write_atomic(&d.definitions_dir().join("set.hdb"), hdb_line(&b, "Test.Set.Two").as_bytes());
    d.ok(&["definitions", "update"]);
    let v2 = d.health_field("definitions_version");
    assert_ne!(v1, v2);
    assert_eq!(d.threats().len(), 0);
    d.scan_json(&dir, &[]);
    assert_eq!(d.threat_paths(), vec![path_string(&dir.join("b"))]);
    d.ok(&["definitions", "restore"]);
    assert_eq!(d.health_field("definitions_version"), v1, "restore did not bring the previous version back");
    let j = d.scan_json(&dir.join("a"), &[]);
    assert_eq!(j["threats_detected"], 1, "previous definitions not in force after restore: {j}");
    // The rolled-back set survives a restart.
    let mut d = d;
    d.restart();
    assert_eq!(d.health_field("definitions_version"), v1);
}

#[test]
fn definitions_update_without_changes_keeps_the_version() {
    let d = TestDaemon::start();
    let v0 = d.health_field("definitions_version");
    let o = d.ok(&["definitions", "update"]);
    assert!(!o.stdout.trim().is_empty(), "{}", o.describe());
    assert_eq!(d.health_field("definitions_version"), v0);
}

#[test]
fn malformed_hash_line_names_file_and_line() {
    let d = TestDaemon::start();
    let v0 = d.health_field("definitions_version");
    write_atomic(
        &d.definitions_dir().join("broken.hsb"),
        b"# a comment\n\n0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef:12:Fine\nnot-a-hash:12:Broken\n",
    );
    let o = d.mdatp(&["definitions", "update"]).failure();
    assert!(o.stderr.contains("broken.hsb:4"), "want file:line in the message: {}", o.describe());
    assert_eq!(d.health_field("definitions_version"), v0);
    // EICAR (built in) is still detected.
    let f = d.data().join("e.com");
    write_eicar(&f);
    assert_eq!(d.scan_json(&f, &[])["threats_detected"], 1);
}

#[test]
fn bad_yara_rule_is_rejected() {
    let d = TestDaemon::start();
    let v0 = d.health_field("definitions_version");
    write_atomic(&d.definitions_dir().join("bad.yar"), b"rule Broken { strings: $a = \"x\" condition: $b }\n");
    let o = d.mdatp(&["definitions", "update"]).failure();
    assert!(o.stderr.contains("bad.yar"), "{}", o.describe());
    assert_eq!(d.health_field("definitions_version"), v0);
    fs::remove_file(d.definitions_dir().join("bad.yar")).unwrap();
    d.ok(&["definitions", "update"]);
}

#[test]
fn pua_signatures_follow_the_pua_policy() {
    let d = TestDaemon::start();
    d.set_on_demand();
    let pua = pseudo_random(530, 4000);
    let f = d.data().join("pua/adware.bin");
    write(&f, &pua);
    write_atomic(&d.definitions_dir().join("pua.hdb"), hdb_line(&pua, "PUA.Test.Adware").as_bytes());
    d.ok(&["definitions", "update"]);
    // Default: audit (reported, not moved, even in on_demand).
    assert_eq!(d.scan_json(&f, &[])["threats_detected"], 1);
    let t = d.threats_for(&f);
    assert_eq!(t[0]["type"], "potentially_unwanted_application", "{t:?}");
    assert!(f.exists(), "an audited PUA was moved");
    d.ok(&["threat", "policy", "set", "--type", "potentially_unwanted_application", "--action", "off"]);
    assert_eq!(d.scan_json(&f, &[])["threats_detected"], 0);
    d.ok(&["threat", "policy", "set", "--type", "potentially_unwanted_application", "--action", "block"]);
    assert_eq!(d.scan_json(&f, &[])["threats_detected"], 1);
    assert!(!f.exists(), "a blocked PUA was not quarantined");
    // A managed policy cannot be changed with the CLI.
    d.write_managed(r#"{"antivirusEngine": {"enforcementLevel": "on_demand", "threatTypeSettings": [{"key": "potentially_unwanted_application", "value": "audit"}]}}"#);
    d.wait_health("antivirus_enforcement_level", "managed", |v| v.ends_with("[managed]"));
    let o = d.mdatp(&["threat", "policy", "set", "--type", "potentially_unwanted_application", "--action", "block"]).failure();
    assert!(o.text_lower().contains("managed"), "{}", o.describe());
}
