//! Archives through the real daemon: every format the issue lists, nesting, bombs and the
//! `archive_bomb` threat-type policy.

use std::fs;
use std::path::PathBuf;

use crate::util::*;

/// One archive per format, each holding EICAR (not visible in its raw bytes unless said so).
fn every_format(dir: &std::path::Path) -> Vec<(PathBuf, bool)> {
    let doc: &[u8] = b"an innocent document";
    // Compressible padding makes every compressor code the EICAR bytes instead of storing them.
    let payload = eicar_with(&b"\npadding padding padding\n".repeat(400));
    let member = [("docs/readme.txt", doc), ("bin/eicar.com", payload.as_slice())];
    let raw_tar = tar(&member);
    let list: Vec<(&str, Vec<u8>, bool)> = vec![
        // (name, bytes, EICAR visible in the raw bytes)
        ("deflate.zip", zip_with(&member, zip::CompressionMethod::Deflated), false),
        ("bzip2.zip", zip_with(&member, zip::CompressionMethod::Bzip2), false),
        ("stored.zip", zip_with(&member, zip::CompressionMethod::Stored), true),
        ("plain.tar", raw_tar.clone(), true),
        ("gz.tar.gz", gzip(&raw_tar), false),
        ("bz.tar.bz2", bzip2(&raw_tar), false),
        ("xz.tar.xz", xz(&raw_tar), false),
        ("single.gz", gzip(&payload), false),
        ("seven.7z", sevenz(&member), false),
        ("newc.cpio", cpio_newc(&member), true),
        ("nested.zip", zip_with(&[("x.7z", &sevenz(&[("y.tar.xz", &xz(&raw_tar))]))], zip::CompressionMethod::Deflated), false),
        // Format is recognised by content, never by name.
        ("misnamed.txt", zip_with(&member, zip::CompressionMethod::Deflated), false),
    ];
    list.into_iter()
        .map(|(name, bytes, raw)| {
            assert_eq!(contains(&bytes, EICAR), raw, "test data: {name} raw visibility");
            let p = dir.join(name);
            write(&p, &bytes);
            (p, raw)
        })
        .collect()
}

#[test]
fn every_format_is_opened_when_scan_archives_is_enabled() {
    let d = TestDaemon::start();
    let dir = d.data().join("formats");
    let files = every_format(&dir);
    write(&dir.join("clean.zip"), &zip_with(&[("a.txt", b"hello")], zip::CompressionMethod::Deflated));
    write(&dir.join("clean.tar.gz"), &gzip(&tar(&[("a.txt", b"hello")])));
    d.ok(&["config", "scan-archives", "--value", "enabled"]);
    let j = d.scan_json(&dir, &[]);
    let paths = d.threat_paths();
    let missed: Vec<&PathBuf> = files.iter().map(|(p, _)| p).filter(|p| !paths.contains(&path_string(p))).collect();
    assert!(missed.is_empty(), "archives whose EICAR was missed: {missed:?}\nsummary: {j}");
    assert_eq!(j["threats_detected"], files.len(), "{j}");
    assert_eq!(j["files_scanned"], files.len() + 2, "{j}");
    for t in d.threats() {
        assert_eq!(t["name"], EICAR_NAME, "{t}");
        assert_eq!(t["type"], "virus", "{t}");
    }
    let nested = d.threats_for(&dir.join("nested.zip"));
    let inner = nested[0]["inner"].as_str().unwrap_or_default();
    assert!(inner.starts_with("x.7z/") && inner.ends_with("eicar.com") && inner.contains("y.tar"), "inner path: {inner}");
}

#[test]
fn archives_are_not_opened_when_scan_archives_is_disabled() {
    let d = TestDaemon::start();
    let dir = d.data().join("formats");
    let files = every_format(&dir);
    d.ok(&["config", "scan-archives", "--value", "disabled"]);
    let j = d.scan_json(&dir, &[]);
    let mut raw: Vec<String> = files.iter().filter(|(_, r)| *r).map(|(p, _)| path_string(p)).collect();
    raw.sort();
    assert_eq!(d.threat_paths(), raw, "with scan-archives disabled only raw-visible EICAR is found: {j}");
}

#[test]
fn ratio_bomb_policy_off_audit_block() {
    let d = TestDaemon::start();
    d.set_on_demand();
    d.ok(&["config", "scan-archives", "--value", "enabled"]);
    let dir = d.data().join("bombs");
    let bomb = gzip(&vec![0u8; 16 << 20]);
    let f = dir.join("zeros.gz");
    // Default (audit): reported as archive_bomb, not moved even in on_demand mode.
    write(&f, &bomb);
    let j = d.scan_json(&dir, &[]);
    assert_eq!(j["threats_detected"], 1, "{j}");
    let t = d.threats_for(&f);
    assert_eq!(t.len(), 1, "{t:?}");
    assert_eq!(t[0]["type"], "archive_bomb");
    assert!(t[0]["name"].as_str().unwrap().to_lowercase().contains("bomb"), "{t:?}");
    assert!(f.exists(), "an audited archive bomb was moved");
    // off: not reported at all.
    d.ok(&["threat", "policy", "set", "--type", "archive_bomb", "--action", "off"]);
    let j = d.scan_json(&dir, &[]);
    assert_eq!(j["threats_detected"], 0, "{j}");
    // block: quarantined.
    d.ok(&["threat", "policy", "set", "--type", "archive_bomb", "--action", "block"]);
    let j = d.scan_json(&dir, &[]);
    assert_eq!(j["threats_detected"], 1, "{j}");
    assert!(!f.exists(), "a blocked archive bomb was not quarantined");
    let q = d.quarantined();
    assert_eq!(q.len(), 1, "{q:?}");
    assert_eq!(q[0]["type"], "archive_bomb");
}

#[test]
fn deflate_zip_bomb_and_a_real_threat_in_the_same_tree() {
    let d = TestDaemon::start();
    d.ok(&["config", "scan-archives", "--value", "enabled"]);
    let dir = d.data().join("zb");
    let zeros = vec![0u8; 16 << 20];
    write(&dir.join("bomb.zip"), &zip_with(&[("zeros.bin", &zeros)], zip::CompressionMethod::Deflated));
    write(&dir.join("eicar.zip"), &zip_with(&[("eicar.com", EICAR)], zip::CompressionMethod::Deflated));
    let j = d.scan_json(&dir, &[]);
    assert_eq!(j["threats_detected"], 2, "{j}");
    let bomb = d.threats_for(&dir.join("bomb.zip"));
    assert_eq!(bomb.len(), 1);
    assert_eq!(bomb[0]["type"], "archive_bomb");
    let eicar = d.threats_for(&dir.join("eicar.zip"));
    assert_eq!(eicar[0]["name"], EICAR_NAME);
}

#[test]
fn small_compressible_files_are_not_bombs() {
    let d = TestDaemon::start();
    d.ok(&["config", "scan-archives", "--value", "enabled"]);
    let dir = d.data().join("notbomb");
    // 512 KiB of zeros: a high ratio, but far too small to hurt anyone.
    write(&dir.join("small.gz"), &gzip(&vec![0u8; 512 << 10]));
    write(&dir.join("logs.tar.xz"), &xz(&tar(&[("a.log", &b"line\n".repeat(50_000))])));
    let j = d.scan_json(&dir, &[]);
    assert_eq!(j["threats_detected"], 0, "false positive: {j}; threats: {:?}", d.threats());
    fs::remove_dir_all(&dir).unwrap();
}
