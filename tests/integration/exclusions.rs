//! Exclusions: folder, file and extension exclusions, every wildcard rule of REFERENCE.md,
//! `--ignore-exclusions`, managed exclusions and scopes.

use std::path::{Path, PathBuf};

use crate::util::*;

/// Places EICAR copies at `rel` paths below `base`; returns their full paths.
fn plant(base: &Path, rel: &[&str]) -> Vec<PathBuf> {
    rel.iter()
        .map(|r| {
            let p = base.join(r);
            write_eicar(&p);
            p
        })
        .collect()
}

fn count_in(j: &serde_json::Value) -> usize {
    j["threats_detected"].as_u64().unwrap() as usize
}

/// Puts every EICAR file of `want` and `skipped` (back) in place, scans `dir` in on_demand
/// mode and asserts that exactly the `want` files were detected: they are quarantined (gone)
/// and the `skipped` ones are still there.
#[track_caller]
fn assert_detects(d: &TestDaemon, dir: &Path, extra: &[&str], want: &[&PathBuf], skipped: &[&PathBuf]) {
    for p in want.iter().chain(skipped) {
        write_eicar(p);
    }
    let j = d.scan_json(dir, extra);
    let still: Vec<&PathBuf> = want.iter().copied().filter(|p| p.exists()).collect();
    let gone: Vec<&PathBuf> = skipped.iter().copied().filter(|p| !p.exists()).collect();
    assert!(
        still.is_empty() && gone.is_empty() && count_in(&j) == want.len(),
        "scan of {} {extra:?}: want {want:?} detected and {skipped:?} skipped;\n  not detected: {still:?}\n  not skipped: {gone:?}\n  summary: {j}\nexclusions:\n{}",
        dir.display(),
        d.ok(&["exclusion", "list"]).stdout
    );
}

/// A fresh daemon in on_demand mode (detections are moved, so a test sees what was skipped).
fn daemon() -> TestDaemon {
    let d = TestDaemon::start();
    d.set_on_demand();
    d
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[test]
fn folder_file_and_extension_exclusions() {
    let d = daemon();
    let base = d.data().join("ex");
    let files = plant(&base, &["keep/a.com", "skipdir/b.com", "skipdir/deep/c.com", "one/skipme.com", "one/other.com", "ext/x.skipext", "ext/y.com"]);
    let [keep, sk_b, sk_c, sk_file, other, sk_ext, y] = [&files[0], &files[1], &files[2], &files[3], &files[4], &files[5], &files[6]];
    assert_detects(&d, &base, &[], &[keep, sk_b, sk_c, sk_file, other, sk_ext, y], &[]);
    d.ok(&["exclusion", "folder", "add", "--path", s(&base.join("skipdir"))]);
    d.ok(&["exclusion", "file", "add", "--path", s(sk_file)]);
    d.ok(&["exclusion", "extension", "add", "--name", ".skipext"]);
    let list = d.ok(&["exclusion", "list"]).stdout;
    for want in [s(&base.join("skipdir")), s(sk_file), ".skipext"] {
        assert!(list.contains(want), "{want} missing from exclusion list:\n{list}");
    }
    assert_detects(&d, &base, &[], &[keep, other, y], &[sk_b, sk_c, sk_file, sk_ext]);
    // --ignore-exclusions scans them anyway.
    assert_detects(&d, &base, &["--ignore-exclusions"], &[keep, other, y, sk_b, sk_c, sk_file, sk_ext], &[]);
    // Removing the exclusions brings the files back.
    d.ok(&["exclusion", "folder", "remove", "--path", s(&base.join("skipdir"))]);
    d.ok(&["exclusion", "file", "remove", "--path", s(sk_file)]);
    d.ok(&["exclusion", "extension", "remove", "--name", ".skipext"]);
    assert_detects(&d, &base, &[], &[keep, other, y, sk_b, sk_c, sk_file, sk_ext], &[]);
    // Removing one that does not exist fails.
    d.mdatp(&["exclusion", "folder", "remove", "--path", s(&base.join("skipdir"))]).failure();
}

#[test]
fn excluded_folder_given_as_scan_path() {
    let d = daemon();
    let base = d.data().join("exroot");
    let files = plant(&base, &["a.com", "sub/b.com"]);
    d.ok(&["exclusion", "folder", "add", "--path", s(&base)]);
    assert_detects(&d, &base, &[], &[], &[&files[0], &files[1]]);
    // A folder below an excluded one is excluded, also when it is the scan's root.
    assert_detects(&d, &base.join("sub"), &[], &[], &[&files[1]]);
    assert_detects(&d, &base, &["--ignore-exclusions"], &[&files[0], &files[1]], &[]);
}

#[test]
fn wildcard_star_is_one_folder_level() {
    let d = daemon();
    let t = d.data().join("w1");
    let files = plant(&t, &["abc/tmp/x.com", "abc/tmp/sub/y.com", "abc/log/z.com", "a/b/tmp/deep.com", "tmp/direct.com", "xyz/tmpfoo/q.com"]);
    // TMP/*/tmp: matches TMP/abc/tmp/** only.
    d.ok(&["exclusion", "folder", "add", "--path", &format!("{}/*/tmp", s(&t))]);
    let [x, y, z, deep, direct, q] = [&files[0], &files[1], &files[2], &files[3], &files[4], &files[5]];
    assert_detects(&d, &t, &[], &[z, deep, direct, q], &[x, y]);
    assert_detects(&d, &t, &["--ignore-exclusions"], &[x, y, z, deep, direct, q], &[]);
}

#[test]
fn wildcard_trailing_star_matches_everything_below_the_parent() {
    let d = daemon();
    let t = d.data().join("w2");
    let files = plant(&t, &["trail/a.com", "trail/sub/b.com", "trail/sub/deeper/c.com", "trailer/d.com", "other/trail/e.com"]);
    d.ok(&["exclusion", "folder", "add", "--path", &format!("{}/trail/*", s(&t))]);
    let [a, b, c, dd, e] = [&files[0], &files[1], &files[2], &files[3], &files[4]];
    assert_detects(&d, &t, &[], &[dd, e], &[a, b, c]);
}

#[test]
fn wildcard_question_mark_is_one_character() {
    let d = daemon();
    let t = d.data().join("w3");
    let files = plant(&t, &["q/file1.com", "q/fileA.com", "q/file12.com", "q/file.com", "q/sub/file2.com"]);
    d.ok(&["exclusion", "file", "add", "--path", &format!("{}/q/file?.com", s(&t))]);
    let [f1, fa, f12, f, sub2] = [&files[0], &files[1], &files[2], &files[3], &files[4]];
    assert_detects(&d, &t, &[], &[f12, f, sub2], &[f1, fa]);
    // ? in a folder level.
    d.ok(&["exclusion", "folder", "add", "--path", &format!("{}/s?b", s(&t.join("q")))]);
    assert_detects(&d, &t, &[], &[f12, f], &[f1, fa, sub2]);
}

#[test]
fn wildcards_combined_with_files_and_ignore_exclusions() {
    let d = daemon();
    let t = d.data().join("w4");
    let files = plant(&t, &["var/abc/tmp/a.com", "var/abc/log/b.com", "var/def/tmp/c.com"]);
    d.ok(&["exclusion", "file", "add", "--path", &format!("{}/var/*/tmp/a.com", s(&t))]);
    let [a, b, c] = [&files[0], &files[1], &files[2]];
    assert_detects(&d, &t, &[], &[b, c], &[a]);
    assert_detects(&d, &t, &["--ignore-exclusions"], &[a, b, c], &[]);
}

#[test]
fn managed_exclusions_are_listed_and_cannot_be_removed() {
    let d = daemon();
    let t = d.data().join("m");
    let files = plant(&t, &["managed/a.com", "free/b.com", "c.mgdext"]);
    let managed_dir = t.join("managed");
    d.write_managed(&format!(
        r#"{{"antivirusEngine": {{"enforcementLevel": "on_demand", "exclusions": [
            {{"$type": "excludedPath", "isDirectory": true, "path": "{}"}},
            {{"$type": "excludedFileExtension", "extension": ".mgdext"}}
        ]}}}}"#,
        s(&managed_dir)
    ));
    d.wait_health("antivirus_enforcement_level", "managed", |v| v.ends_with("[managed]"));
    let list = d.ok(&["exclusion", "list"]).stdout;
    assert!(list.contains(s(&managed_dir)), "managed folder missing from exclusion list:\n{list}");
    assert!(list.contains(".mgdext"), "managed extension missing:\n{list}");
    assert!(list.contains("[managed]"), "managed exclusions not marked:\n{list}");
    let j = d.json(&["exclusion", "list"]);
    assert!(j.as_array().unwrap().iter().all(|e| e["managed"] == true), "{j}");
    let o = d.mdatp(&["exclusion", "folder", "remove", "--path", s(&managed_dir)]).failure();
    assert!(o.text_lower().contains("managed"), "{}", o.describe());
    let o = d.mdatp(&["exclusion", "extension", "remove", "--name", ".mgdext"]).failure();
    assert!(o.text_lower().contains("managed"), "{}", o.describe());
    assert!(d.ok(&["exclusion", "list"]).stdout.contains(s(&managed_dir)));
    // And they apply.
    assert_detects(&d, &t, &[], &[&files[1]], &[&files[0], &files[2]]);
    // A local one merges with them (default merge policy) and can be removed.
    d.ok(&["exclusion", "folder", "add", "--path", s(&t.join("free"))]);
    assert_detects(&d, &t, &[], &[], &[&files[0], &files[1], &files[2]]);
    d.ok(&["exclusion", "folder", "remove", "--path", s(&t.join("free"))]);
}

#[test]
fn global_scope_rules() {
    let d = daemon();
    let t = d.data().join("g");
    let files = plant(&t, &["glob/a.com", "x/b.com"]);
    // Wildcards are refused in global scope, with a clear message.
    let o = d.mdatp(&["exclusion", "folder", "add", "--path", &format!("{}/*/x", s(&t)), "--scope", "global"]).failure();
    assert!(o.text_lower().contains("wildcard"), "unclear message: {}", o.describe());
    let o = d.mdatp(&["exclusion", "file", "add", "--path", &format!("{}/x/?.com", s(&t)), "--scope", "global"]).failure();
    assert!(o.text_lower().contains("wildcard"), "unclear message: {}", o.describe());
    // Relative paths are refused.
    d.mdatp(&["exclusion", "folder", "add", "--path", "relative/dir", "--scope", "global"]).failure();
    let list = d.ok(&["exclusion", "list"]).stdout;
    assert!(!list.contains("*/x"), "a refused exclusion was stored:\n{list}");
    // A global exclusion (full path, no wildcard) is accepted but does not apply to on-demand scans.
    d.ok(&["exclusion", "folder", "add", "--path", s(&t.join("glob")), "--scope", "global"]);
    assert!(d.ok(&["exclusion", "list"]).stdout.contains("global"));
    assert_detects(&d, &t, &[], &[&files[0], &files[1]], &[]);
    // With epp scope too, it applies.
    d.ok(&["exclusion", "folder", "add", "--path", s(&t.join("glob")), "--scope", "epp"]);
    assert_detects(&d, &t, &[], &[&files[1]], &[&files[0]]);
}

#[test]
fn symlinked_paths_do_not_match() {
    let d = daemon();
    let t = d.data().join("sl");
    let files = plant(&t, &["real/a.com"]);
    std::os::unix::fs::symlink(t.join("real"), t.join("link")).unwrap();
    // An exclusion written through the symlink does not exclude the real files.
    d.ok(&["exclusion", "folder", "add", "--path", s(&t.join("link"))]);
    assert_detects(&d, &t, &[], &[&files[0]], &[]);
}

#[test]
fn admin_only_merge_policy_ignores_local_exclusions() {
    let d = daemon();
    let t = d.data().join("ao");
    let files = plant(&t, &["local/a.com", "managed/b.com", "c.bare"]);
    d.ok(&["exclusion", "folder", "add", "--path", s(&t.join("local"))]);
    // Extension without its dot means the same.
    d.ok(&["exclusion", "extension", "add", "--name", "bare"]);
    assert_detects(&d, &t, &[], &[&files[1]], &[&files[0], &files[2]]);
    d.write_managed(&format!(
        r#"{{"antivirusEngine": {{"enforcementLevel": "on_demand", "exclusionsMergePolicy": "admin_only", "exclusions": [
            {{"$type": "excludedPath", "isDirectory": true, "path": "{}"}}]}}}}"#,
        s(&t.join("managed"))
    ));
    d.wait_health("antivirus_enforcement_level", "managed", |v| v.ends_with("[managed]"));
    assert_detects(&d, &t, &[], &[&files[0], &files[2]], &[&files[1]]);
}
