//! Threats and quarantine: both restore forms, refusals, removal, obfuscation, allowed threats.

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::util::*;

/// An on-demand daemon with `n` EICAR files (distinct content) quarantined from `data/q`.
fn quarantined_files(n: usize) -> (TestDaemon, Vec<(PathBuf, Vec<u8>)>) {
    let d = TestDaemon::start();
    d.set_on_demand();
    let dir = d.data().join("q");
    let files: Vec<(PathBuf, Vec<u8>)> = (0..n)
        .map(|i| {
            let p = dir.join(format!("infected-{i}.bin"));
            let content = eicar_with(&pseudo_random(100 + i as u64, 50_000 + i * 1000));
            write(&p, &content);
            (p, content)
        })
        .collect();
    let j = d.scan_json(&dir, &[]);
    assert_eq!(j["threats_detected"], n as u64, "{j}");
    for (p, _) in &files {
        assert!(!p.exists(), "{} not quarantined", p.display());
    }
    (d, files)
}

/// The quarantined threat for `path`.
#[track_caller]
fn quarantined_threat(d: &TestDaemon, path: &Path) -> Value {
    let q: Vec<Value> = d.quarantined().into_iter().filter(|t| t["path"] == path_string(path)).collect();
    assert_eq!(q.len(), 1, "expected one quarantined threat for {}: {q:?}", path.display());
    q[0].clone()
}

fn id_of(t: &Value) -> String {
    t["id"].as_str().expect("threat id").to_string()
}

#[test]
fn restore_by_id_is_byte_identical_with_mode_and_owner() {
    let d = TestDaemon::start();
    d.set_on_demand();
    let f = d.data().join("r/payload.sh");
    let content = eicar_with(&pseudo_random(7, 300_000));
    write(&f, &content);
    fs::set_permissions(&f, fs::Permissions::from_mode(0o751)).unwrap();
    if is_root() {
        std::os::unix::fs::chown(&f, Some(1234), Some(1234)).unwrap();
    }
    d.scan(&[&f]).success();
    assert!(!f.exists(), "not quarantined");
    let t = quarantined_threat(&d, &f);
    let id = id_of(&t);
    let o = d.ok(&["threat", "quarantine", "restore", "threat-id", "--id", &id]);
    assert!(!o.stdout.trim().is_empty(), "restore printed nothing");
    assert_eq!(fs::read(&f).expect("restored file"), content, "restored content differs");
    assert_eq!(mode(&f), 0o751, "mode not restored");
    if is_root() {
        let m = fs::metadata(&f).unwrap();
        assert_eq!((m.uid(), m.gid()), (1234, 1234), "owner not restored");
    }
    assert!(d.quarantined().is_empty(), "still listed in quarantine after restore");
    let got = d.json(&["threat", "get", "--id", &id]);
    assert_eq!(got["state"], "restored", "{got}");
    // A second restore of the same id is refused.
    fs::remove_file(&f).unwrap();
    d.mdatp(&["threat", "quarantine", "restore", "threat-id", "--id", &id]).failure();
    assert!(!f.exists());
}

#[test]
fn restore_by_path_into_a_destination_dir() {
    let (d, files) = quarantined_files(2);
    let (p, content) = &files[1];
    let dest = d.data().join("restored-here");
    fs::create_dir_all(&dest).unwrap();
    let o = d.ok(&[
        "threat", "quarantine", "restore", "threat-path",
        "--path", p.to_str().unwrap(),
        "--destination-path", dest.to_str().unwrap(),
    ]);
    let target = dest.join(p.file_name().unwrap());
    assert_eq!(fs::read(&target).unwrap_or_else(|e| panic!("{}: {e}; {}", target.display(), o.describe())), *content);
    assert!(!p.exists(), "restore with --destination-path wrote the original path");
    // The other one is still quarantined.
    assert_eq!(d.quarantined().len(), 1);
    quarantined_threat(&d, &files[0].0);
    // Unknown original path: a clear error.
    let o = d.mdatp(&["threat", "quarantine", "restore", "threat-path", "--path", "/no/such/file"]).failure();
    assert!(o.stderr.contains("/no/such/file"), "{}", o.describe());
    // A destination that does not exist is refused, and nothing is lost.
    let o = d
        .mdatp(&[
            "threat", "quarantine", "restore", "threat-path",
            "--path", files[0].0.to_str().unwrap(),
            "--destination-path", d.data().join("no/such/dir").to_str().unwrap(),
        ])
        .failure();
    assert!(o.stderr.contains("no/such/dir"), "{}", o.describe());
    quarantined_threat(&d, &files[0].0);
    // A relative destination is refused.
    d.mdatp(&[
        "threat", "quarantine", "restore", "threat-path",
        "--path", files[0].0.to_str().unwrap(),
        "--destination-path", "relative/dir",
    ])
    .failure();
}

#[test]
fn restore_never_overwrites_an_existing_file() {
    let (d, files) = quarantined_files(1);
    let (p, content) = &files[0];
    let id = id_of(&quarantined_threat(&d, p));
    write(p, b"someone else's file");
    let o = d.mdatp(&["threat", "quarantine", "restore", "threat-id", "--id", &id]).failure();
    assert!(o.text_lower().contains("exist"), "message does not say why: {}", o.describe());
    assert_eq!(fs::read(p).unwrap(), b"someone else's file", "the existing file was touched");
    // Same with --destination-path onto an existing name.
    let dest = d.data().join("dest");
    write(&dest.join(p.file_name().unwrap()), b"also there");
    let o = d
        .mdatp(&["threat", "quarantine", "restore", "threat-id", "--id", &id, "--destination-path", dest.to_str().unwrap()])
        .failure();
    assert!(o.text_lower().contains("exist"), "{}", o.describe());
    assert_eq!(fs::read(dest.join(p.file_name().unwrap())).unwrap(), b"also there");
    // Still quarantined, and restorable once the way is clear.
    quarantined_threat(&d, p);
    fs::remove_file(p).unwrap();
    d.ok(&["threat", "quarantine", "restore", "threat-id", "--id", &id]);
    assert_eq!(fs::read(p).unwrap(), *content);
}

#[test]
fn managed_disallowed_restore_is_refused() {
    let (d, files) = quarantined_files(1);
    let (p, _) = &files[0];
    let id = id_of(&quarantined_threat(&d, p));
    d.write_managed(r#"{"antivirusEngine": {"enforcementLevel": "on_demand", "disallowedThreatActions": ["restore"]}}"#);
    d.wait_health("antivirus_enforcement_level", "managed", |v| v.ends_with("[managed]"));
    let o = d.mdatp(&["threat", "quarantine", "restore", "threat-id", "--id", &id]).failure();
    assert!(o.text_lower().contains("disallowed") || o.text_lower().contains("managed"), "{}", o.describe());
    let o = d.mdatp(&["threat", "quarantine", "restore", "threat-path", "--path", p.to_str().unwrap()]).failure();
    assert!(o.text_lower().contains("disallowed") || o.text_lower().contains("managed"), "{}", o.describe());
    assert!(!p.exists(), "restored despite the policy");
    quarantined_threat(&d, p);
}

#[test]
fn quarantine_remove_and_remove_all() {
    let (d, files) = quarantined_files(3);
    let items_before = files_below(&d.quarantine_dir()).len();
    assert!(items_before >= 3, "quarantine dir holds {items_before} files for 3 threats");
    let id0 = id_of(&quarantined_threat(&d, &files[0].0));
    d.ok(&["threat", "quarantine", "remove", "--id", &id0]);
    assert_eq!(d.quarantined().len(), 2);
    assert_eq!(files_below(&d.quarantine_dir()).len(), items_before - 1, "item not deleted");
    assert_eq!(d.json(&["threat", "get", "--id", &id0])["state"], "removed");
    // Removed is gone for good: no restore.
    d.mdatp(&["threat", "quarantine", "restore", "threat-id", "--id", &id0]).failure();
    assert!(!files[0].0.exists());
    // Unknown id.
    d.mdatp(&["threat", "quarantine", "remove", "--id", "00000000-0000-0000-0000-000000000000"]).failure();
    d.ok(&["threat", "quarantine", "remove-all"]);
    assert!(d.quarantined().is_empty());
    assert_eq!(files_below(&d.quarantine_dir()).len(), items_before - 3, "items left after remove-all");
    for (p, _) in &files {
        assert!(!p.exists());
    }
    // The history keeps every threat.
    assert_eq!(d.threats().len(), 3);
}

#[test]
fn quarantine_holds_no_plaintext_copy() {
    let (d, files) = quarantined_files(2);
    let items = files_below(&d.quarantine_dir());
    assert!(!items.is_empty());
    for item in &items {
        let bytes = fs::read(item).unwrap();
        assert!(!contains(&bytes, EICAR), "{} holds the EICAR string in clear", item.display());
        assert!(!contains(&bytes, &files[0].1[1000..1064]), "{} holds the payload in clear", item.display());
        assert_eq!(mode(item) & 0o077, 0, "{} is readable by others: {:o}", item.display(), mode(item));
        assert_eq!(mode(item) & 0o111, 0, "{} is executable: {:o}", item.display(), mode(item));
    }
    assert_eq!(mode(&d.quarantine_dir()) & 0o077, 0, "quarantine dir open to others");
}

#[test]
fn allowed_threat_is_skipped_by_the_next_scan() {
    let d = TestDaemon::start();
    d.set_on_demand();
    let f = d.data().join("allowed/eicar.com");
    write_eicar(&f);
    d.ok(&["threat", "allowed", "add", "--name", EICAR_NAME]);
    let list = d.ok(&["threat", "allowed", "list"]).stdout;
    assert!(list.contains(EICAR_NAME), "{list}");
    let o = d.scan(&[f.parent().unwrap()]).success();
    assert_eq!(summary_lines(&o), expected_summary(1, 0), "{}", o.describe());
    assert_eq!(fs::read(&f).unwrap(), EICAR, "an allowed threat was quarantined");
    assert!(d.quarantined().is_empty());
    // Adding it twice is refused; removing it makes the next scan act again.
    d.mdatp(&["threat", "allowed", "add", "--name", EICAR_NAME]).failure();
    d.ok(&["threat", "allowed", "remove", "--name", EICAR_NAME]);
    let o = d.scan(&[f.parent().unwrap()]).success();
    assert_eq!(summary_lines(&o), expected_summary(1, 1), "{}", o.describe());
    assert!(!f.exists());
}

#[test]
fn threat_get_by_id() {
    let (d, files) = quarantined_files(1);
    let (p, content) = &files[0];
    let t = quarantined_threat(&d, p);
    let id = id_of(&t);
    let j = d.json(&["threat", "get", "--id", &id]);
    assert_eq!(j["id"], id.as_str());
    assert_eq!(j["name"], EICAR_NAME);
    assert_eq!(j["path"], path_string(p));
    assert_eq!(j["state"], "quarantined");
    assert_eq!(j["type"], "virus");
    let want_sha: String = {
        use sha2::Digest;
        sha2::Sha256::digest(content).iter().map(|b| format!("{b:02x}")).collect()
    };
    assert_eq!(j["sha256"], want_sha.as_str(), "{j}");
    let text = d.ok(&["threat", "get", "--id", &id]).stdout;
    assert!(text.contains(&id) && text.contains(EICAR_NAME) && text.contains(&path_string(p)), "{text}");
    let o = d.mdatp(&["threat", "get", "--id", "no-such-id"]).failure();
    assert!(o.stderr.contains("no-such-id"), "{}", o.describe());
}

#[test]
fn quarantine_add_of_a_passive_detection() {
    let d = TestDaemon::start();
    let f = d.data().join("later/eicar.com");
    write_eicar(&f);
    d.scan(&[&f]).success();
    assert!(f.exists(), "passive mode moved the file");
    let t = d.threats_for(&f);
    let id = id_of(&t[0]);
    d.ok(&["threat", "quarantine", "add", "--id", &id]);
    assert!(!f.exists(), "quarantine add left the file");
    quarantined_threat(&d, &f);
    d.ok(&["threat", "quarantine", "restore", "threat-path", "--path", f.to_str().unwrap()]);
    assert_eq!(fs::read(&f).unwrap(), EICAR);
}

#[test]
fn damaged_or_missing_items_are_not_restored() {
    let (d, files) = quarantined_files(2);
    let items = files_below(&d.quarantine_dir());
    assert_eq!(items.len(), 2, "{items:?}");
    let id0 = id_of(&quarantined_threat(&d, &files[0].0));
    let id1 = id_of(&quarantined_threat(&d, &files[1].0));
    let item0 = items.iter().find(|p| p.to_string_lossy().contains(&id0)).expect("item named after the threat id");
    let item1 = items.iter().find(|p| p.to_string_lossy().contains(&id1)).expect("item named after the threat id");
    // Flip bytes in the body of one item, delete the other.
    let mut bytes = fs::read(item0).unwrap();
    let n = bytes.len();
    for b in &mut bytes[n - 1000..n - 900] {
        *b ^= 0xff;
    }
    fs::write(item0, &bytes).unwrap();
    fs::remove_file(item1).unwrap();
    let o = d.mdatp(&["threat", "quarantine", "restore", "threat-id", "--id", &id0]).failure();
    assert!(o.text_lower().contains("damaged") || o.text_lower().contains("hash"), "{}", o.describe());
    assert!(!files[0].0.exists(), "damaged content was written back");
    let leftovers: Vec<_> = fs::read_dir(files[0].0.parent().unwrap()).unwrap().flatten().map(|e| e.path()).collect();
    assert!(leftovers.is_empty(), "restore left files behind: {leftovers:?}");
    let o = d.mdatp(&["threat", "quarantine", "restore", "threat-id", "--id", &id1]).failure();
    assert_eq!(o.stderr.trim().lines().count(), 1, "{}", o.describe());
    assert!(!files[1].0.exists());
    let mut d = d;
    d.assert_alive();
}

#[test]
fn managed_allowed_threats_and_disallowed_allow() {
    let d = TestDaemon::start();
    d.write_managed(&format!(
        r#"{{"antivirusEngine": {{"enforcementLevel": "on_demand", "allowedThreats": ["{EICAR_NAME}"]}}}}"#
    ));
    d.wait_health("antivirus_enforcement_level", "managed", |v| v.ends_with("[managed]"));
    let list = d.ok(&["threat", "allowed", "list"]).stdout;
    assert!(list.contains(EICAR_NAME) && list.contains("[managed]"), "{list}");
    let o = d.mdatp(&["threat", "allowed", "remove", "--name", EICAR_NAME]).failure();
    assert!(o.text_lower().contains("managed"), "{}", o.describe());
    let f = d.data().join("ma/eicar.com");
    write_eicar(&f);
    assert_eq!(d.scan_json(&f, &[])["threats_detected"], 0);
    assert!(f.exists());
    // disallowedThreatActions: allow -> the CLI cannot allow threats.
    d.write_managed(r#"{"antivirusEngine": {"enforcementLevel": "passive", "disallowedThreatActions": ["allow"]}}"#);
    d.wait_health("antivirus_enforcement_level", "managed passive", |v| v == "\"passive\" [managed]");
    let o = d.mdatp(&["threat", "allowed", "add", "--name", "Some.Threat"]).failure();
    assert!(o.text_lower().contains("disallowed"), "{}", o.describe());
    assert!(!d.ok(&["threat", "allowed", "list"]).stdout.contains("Some.Threat"));
}
