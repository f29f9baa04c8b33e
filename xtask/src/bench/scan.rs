//! `cargo xtask bench scan [--quick]`: our on-demand scanner against clamscan and yara, on the
//! same files, with the same signatures, in the same run.
//!
//! 1. A corpus under `target/bench/scan/corpus`: copies of real files (shared libraries, docs,
//!    headers, Perl modules) plus generated text/binary/sparse files, some of them planted with
//!    known-bad content: whole-file MD5 or SHA-256 hashes that are in the hash signatures, and
//!    byte patterns of body signatures (at offset 0, at the end, across 64 KiB and 1 MiB
//!    boundaries, anywhere). Generated content and signatures come from a seeded PRNG, so they
//!    are identical on every machine; the real files are whatever this machine has.
//! 2. Signatures: `.hdb` (MD5) and `.hsb` (SHA-256) lines `hash:size:Name`, mostly random,
//!    `.ndb` body signatures `Name:0:*:hex` (12-24 fixed bytes, some with `??` and `{n-m}`), and
//!    the same body patterns as YARA hex-string rules in one `.yar` file. EICAR is left out: a
//!    clamscan with only custom databases does not report it, our scanner always does.
//! 3. Runs `clamscan` (single thread) with the ClamAV files, `yara -p 1` and `-p 2` with the
//!    `.yar` file, and the real `wdavdaemon` + `mdatp scan custom` with each set at 1 and 2
//!    threads (a fresh `MDATP_ROOT` per configuration, passive mode so nothing is moved).
//! 4. Reports load time, scan time, throughput, peak RSS and whether each tool found exactly the
//!    planted files and exactly the peer's files: a table on stdout, `report.md`, `report.json`.
//!    Detection differences fail the run (in both modes); timings never do.
//!
//! The corpus and signatures are cached between runs (`manifest.json` names the generator
//! version, seed and mode) and regenerated when any of those change or a file went missing.

use std::{
    collections::BTreeSet,
    fmt::Write as _,
    fs,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use anyhow::{bail, Context, Result};
use serde_json::{json, Value};

use crate::{deps, dist, util, util::Rng};

/// Bump when the generator changes, so cached corpora are rebuilt.
const GENERATOR: u64 = 1;
const EICAR_MARKER: &[u8] = b"EICAR-STANDARD-ANTIVIRUS-TEST-FILE";

pub struct Options {
    pub quick: bool,
    pub seed: u64,
    pub tools: Tools,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            quick: false,
            seed: 1,
            tools: Tools {
                clamscan: true,
                yara: true,
                ours: true,
            },
        }
    }
}

/// Which tools run. Leaving one out is explicit (`--tools`), never a silent skip.
#[derive(Clone, Copy)]
pub struct Tools {
    pub clamscan: bool,
    pub yara: bool,
    pub ours: bool,
}

impl Tools {
    pub fn parse(list: &str) -> Result<Tools> {
        let mut t = Tools {
            clamscan: false,
            yara: false,
            ours: false,
        };
        for name in list.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            match name {
                "clamscan" => t.clamscan = true,
                "yara" => t.yara = true,
                "ours" => t.ours = true,
                _ => bail!("unknown tool `{name}` in --tools (known: clamscan, yara, ours)"),
            }
        }
        Ok(t)
    }
}

/// Sizes of one benchmark mode.
struct Params {
    mode: &'static str,
    files: usize,
    bytes: u64,
    /// Share of files and bytes that are copies of real files (when the machine has enough).
    real_share: f64,
    max_real_file: u64,
    hdb: usize,
    hsb: usize,
    ndb: usize,
    planted_md5: usize,
    planted_sha256: usize,
    planted_body: usize,
}

const FULL: Params = Params {
    mode: "full",
    files: 30_000,
    bytes: 1_200_000_000,
    real_share: 0.6,
    max_real_file: 16 << 20,
    hdb: 50_000,
    hsb: 50_000,
    ndb: 5_000,
    planted_md5: 100,
    planted_sha256: 100,
    planted_body: 300,
};

const QUICK: Params = Params {
    mode: "quick",
    files: 2_000,
    bytes: 50_000_000,
    real_share: 0.6,
    max_real_file: 4 << 20,
    hdb: 5_000,
    hsb: 5_000,
    ndb: 500,
    planted_md5: 10,
    planted_sha256: 10,
    planted_body: 30,
};

const REAL_ROOTS: &[&str] = &[
    "/usr/lib/x86_64-linux-gnu",
    "/usr/share/doc",
    "/usr/include",
];

/// `cargo xtask bench scan`: runs the benchmark and prints what was not run.
pub fn run(opts: &Options) -> Result<()> {
    let not_run = bench(opts)?;
    for line in &not_run {
        eprintln!("bench scan: NOT RUN: {line}");
    }
    Ok(())
}

/// The benchmark. `Ok` holds the lines saying what was not run (outside CI, missing peers);
/// `Err` is a failure: a tool that did not work, or detections that differ.
pub fn bench(opts: &Options) -> Result<Vec<String>> {
    let p = if opts.quick { &QUICK } else { &FULL };
    let mut not_run = Vec::new();
    let mut failures = Vec::new();

    deps::ensure(deps::BUILD)?;
    if opts.tools.clamscan || opts.tools.yara {
        if let Err(e) = deps::ensure(deps::TEST) {
            if util::is_ci() {
                return Err(e.context("CI=true: the real peers clamscan and yara are required"));
            }
            eprintln!("bench scan: warning: {e:#}");
        }
    }
    if opts.tools.ours {
        dist::build_release()?;
    }

    let dir = util::target_dir().join("bench/scan");
    let set = prepare(&dir, p, opts.seed)?;
    let out = dir.join("out");
    let _ = fs::remove_dir_all(&out);
    fs::create_dir_all(&out)?;
    eprintln!(
        "bench scan ({}): corpus {} files, {:.1} MB; {} MD5 + {} SHA-256 + {} body signatures; \
         planted: {} hash, {} body",
        p.mode,
        set.files,
        set.bytes as f64 / 1e6,
        p.hdb,
        p.hsb,
        p.ndb,
        set.expected_clamav.len() - set.expected_yara.len(),
        set.expected_yara.len()
    );

    let loadavg_before = loadavg();
    let mut rows = vec![read_all(&set)?];
    let peer = |tool: &str, wanted: bool, not_run: &mut Vec<String>, failures: &mut Vec<String>| {
        if !wanted {
            not_run.push(format!("{tool}: left out by --tools"));
            false
        } else if util::which(tool).is_none() {
            let msg = format!(
                "{tool}: not installed (Debian package `{}`)",
                if tool == "yara" { "yara" } else { "clamav" }
            );
            if util::is_ci() {
                failures.push(msg)
            } else {
                not_run.push(msg)
            }
            false
        } else {
            true
        }
    };

    let mut clam_row = None;
    if peer("clamscan", opts.tools.clamscan, &mut not_run, &mut failures) {
        match run_clamscan(&set, &out) {
            Ok(row) => clam_row = Some(push(&mut rows, row)),
            Err(e) => failures.push(format!("clamscan: {e:#}")),
        }
    }
    let mut yara_rows = [None, None];
    if peer("yara", opts.tools.yara, &mut not_run, &mut failures) {
        for (i, threads) in [1, 2].into_iter().enumerate() {
            match run_yara(&set, &out, threads) {
                Ok(row) => yara_rows[i] = Some(push(&mut rows, row)),
                Err(e) => failures.push(format!("yara -p {threads}: {e:#}")),
            }
        }
    }
    let mut ours_rows = [[None, None], [None, None]]; // [clamav, yara][1 thread, 2 threads]
    if opts.tools.ours {
        for (s, sigs) in [Sigs::Clamav, Sigs::Yara].into_iter().enumerate() {
            for (t, threads) in [1, 2].into_iter().enumerate() {
                match run_ours(&set, &out, sigs, threads) {
                    Ok(row) => ours_rows[s][t] = Some(push(&mut rows, row)),
                    Err(e) => failures.push(format!(
                        "ours ({} set, {threads} thread(s)): {e:#}",
                        sigs.name()
                    )),
                }
            }
        }
        if let Some(missing) = set.expected_clamav.iter().find(|p| !Path::new(p).exists()) {
            failures.push(format!(
                "{missing} is gone after our scans: passive mode was not honoured; the corpus will be regenerated"
            ));
            let _ = fs::remove_file(dir.join("manifest.json"));
        }
    } else {
        not_run.push("ours: left out by --tools".into());
    }

    // Correctness: every tool against the planted set, ours against the peer.
    for row in rows.iter_mut() {
        let Some(found) = &row.detected else { continue };
        let expected = match row.sigs {
            Sigs::Clamav => &set.expected_clamav,
            Sigs::Yara => &set.expected_yara,
            Sigs::None => continue,
        };
        row.vs_planted = Some(Diff::new(expected, found));
    }
    let pairs = [
        (ours_rows[0][0], clam_row),
        (ours_rows[0][1], clam_row),
        (ours_rows[1][0], yara_rows[0]),
        (ours_rows[1][1], yara_rows[1]),
        (yara_rows[1], yara_rows[0]),
    ];
    for (a, b) in pairs {
        if let (Some(a), Some(b)) = (a, b) {
            if let (Some(fa), Some(fb)) = (&rows[a].detected, &rows[b].detected) {
                let d = Diff::new(fb, fa);
                rows[a].vs_peer = Some((rows[b].label(), d));
            }
        }
    }
    for row in &rows {
        if let Some(d) = &row.vs_planted {
            if !d.is_empty() {
                failures.push(format!(
                    "{}: detections differ from the planted files: {d}",
                    row.label()
                ));
            }
        }
        if let Some((peer, d)) = &row.vs_peer {
            if !d.is_empty() {
                failures.push(format!(
                    "{}: detections differ from {peer}: {d}",
                    row.label()
                ));
            }
        }
    }

    let ratios = ratios(&rows, clam_row, yara_rows, ours_rows);
    let report = Report {
        p,
        seed: opts.seed,
        set: &set,
        rows: &rows,
        ratios: &ratios,
        failures: &failures,
        not_run: &not_run,
        loadavg_before,
        loadavg_after: loadavg(),
    };
    let md = report.markdown();
    fs::write(dir.join("report.md"), &md)?;
    fs::write(
        dir.join("report.json"),
        serde_json::to_string_pretty(&report.json())? + "\n",
    )?;
    println!("{md}");
    eprintln!(
        "bench scan: wrote {} and report.json",
        dir.join("report.md").display()
    );
    if !failures.is_empty() {
        bail!(
            "bench scan: {} problem(s):\n  - {}",
            failures.len(),
            failures.join("\n  - ")
        );
    }
    Ok(not_run)
}

fn push(rows: &mut Vec<Row>, row: Row) -> usize {
    rows.push(row);
    rows.len() - 1
}

// ---------------------------------------------------------------------------------------------
// Corpus and signatures

/// The generated benchmark input, as recorded in `manifest.json`.
struct Set {
    corpus: PathBuf,
    files: u64,
    bytes: u64,
    clamav_sigs: Vec<PathBuf>,
    yara_sigs: Vec<PathBuf>,
    /// Absolute paths of the files the ClamAV set must report (hash- and body-planted).
    expected_clamav: BTreeSet<String>,
    /// Absolute paths of the files the YARA set must report (body-planted).
    expected_yara: BTreeSet<String>,
}

impl Set {
    /// How long one scan of the corpus may take: generous (1 MB/s plus two minutes); a hung
    /// tool must not hang CI.
    fn timeout(&self) -> Duration {
        Duration::from_secs(120 + self.bytes / 1_000_000)
    }
}

/// Returns the cached corpus and signatures when they match `p` and `seed`, else makes them.
fn prepare(dir: &Path, p: &Params, seed: u64) -> Result<Set> {
    fs::create_dir_all(dir)?;
    let manifest_path = dir.join("manifest.json");
    if let Ok(text) = fs::read_to_string(&manifest_path) {
        if let Ok(m) = serde_json::from_str::<Value>(&text) {
            if let Some(set) = cached(dir, &m, p, seed) {
                eprintln!("bench scan: reusing the corpus in {}", set.corpus.display());
                return Ok(set);
            }
        }
    }
    let _ = fs::remove_file(&manifest_path);
    let start = Instant::now();
    let set = generate(dir, p, seed)?;
    let rel = |s: &BTreeSet<String>| -> Vec<String> {
        s.iter()
            .map(|x| {
                x.strip_prefix(&format!("{}/", set.corpus.display()))
                    .unwrap_or(x)
                    .to_string()
            })
            .collect()
    };
    let manifest = json!({
        "generator": GENERATOR,
        "seed": seed,
        "mode": p.mode,
        "files": set.files,
        "bytes": set.bytes,
        "expected_clamav": rel(&set.expected_clamav),
        "expected_yara": rel(&set.expected_yara),
    });
    fs::write(
        &manifest_path,
        serde_json::to_string_pretty(&manifest)? + "\n",
    )?;
    eprintln!(
        "bench scan: generated the corpus and signatures in {:.1} s",
        start.elapsed().as_secs_f64()
    );
    Ok(set)
}

fn sig_paths(dir: &Path) -> (Vec<PathBuf>, Vec<PathBuf>) {
    let clam = dir.join("sigs/clamav");
    (
        vec![
            clam.join("bench.hdb"),
            clam.join("bench.hsb"),
            clam.join("bench.ndb"),
        ],
        vec![dir.join("sigs/yara/bench.yar")],
    )
}

fn cached(dir: &Path, m: &Value, p: &Params, seed: u64) -> Option<Set> {
    if m["generator"].as_u64()? != GENERATOR
        || m["seed"].as_u64()? != seed
        || m["mode"].as_str()? != p.mode
    {
        return None;
    }
    let corpus = dir.join("corpus").canonicalize().ok()?;
    let (clamav_sigs, yara_sigs) = sig_paths(dir);
    if !clamav_sigs.iter().chain(&yara_sigs).all(|s| s.is_file()) {
        return None;
    }
    let files = walk(&corpus).ok()?;
    let (n, bytes) = (files.len() as u64, files.iter().map(|f| f.1).sum::<u64>());
    if n != m["files"].as_u64()? || bytes != m["bytes"].as_u64()? {
        eprintln!("bench scan: the cached corpus changed ({n} files, {bytes} bytes); regenerating");
        return None;
    }
    let abs = |v: &Value| -> Option<BTreeSet<String>> {
        v.as_array()?
            .iter()
            .map(|x| Some(format!("{}/{}", corpus.display(), x.as_str()?)))
            .collect()
    };
    Some(Set {
        expected_clamav: abs(&m["expected_clamav"])?,
        expected_yara: abs(&m["expected_yara"])?,
        corpus,
        files: n,
        bytes,
        clamav_sigs,
        yara_sigs,
    })
}

/// Regular files below `dir` (symlinks are not followed) with their sizes, sorted by path.
fn walk(dir: &Path) -> Result<Vec<(PathBuf, u64)>> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let entries = match fs::read_dir(&d) {
            Ok(e) => e,
            Err(e) if d != dir => {
                eprintln!("bench scan: skipping {}: {e}", d.display());
                continue;
            }
            Err(e) => return Err(e).with_context(|| d.display().to_string()),
        };
        for entry in entries {
            let entry = entry?;
            let meta = entry.metadata()?; // does not follow symlinks
            if meta.is_dir() {
                stack.push(entry.path());
            } else if meta.is_file() {
                out.push((entry.path(), meta.len()));
            }
        }
    }
    out.sort();
    Ok(out)
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Tok {
    Byte(u8),
    /// `??` in both syntaxes.
    Any,
    /// `{lo-hi}` in ClamAV, `[lo-hi]` in YARA.
    Jump(u8, u8),
}

/// A body signature: 12-24 fixed bytes; 40 % carry `??` or a `{n-m}` jump, always with at
/// least four fixed bytes on each side (both tools need a static anchor).
fn gen_pattern(rng: &mut Rng) -> Vec<Tok> {
    let fixed = rng.range(12, 24) as usize;
    let mut bytes = vec![0u8; fixed];
    rng.fill(&mut bytes);
    let mut toks: Vec<Tok> = bytes.into_iter().map(Tok::Byte).collect();
    let kind = rng.below(100);
    if kind < 60 {
        return toks;
    }
    if kind < 80 {
        let at = rng.range(4, fixed as u64 - 4) as usize;
        for _ in 0..rng.range(1, 2) {
            toks.insert(at, Tok::Any);
        }
    } else if kind < 90 {
        let a = rng.range(4, fixed as u64 - 8) as usize;
        let b = rng.range(a as u64 + 4, fixed as u64 - 4) as usize;
        toks.insert(b, Tok::Any);
        toks.insert(a, Tok::Any);
    } else {
        let at = rng.range(4, fixed as u64 - 4) as usize;
        let lo = rng.range(1, 4) as u8;
        toks.insert(at, Tok::Jump(lo, lo + rng.range(1, 4) as u8));
    }
    toks
}

fn clamav_hex(toks: &[Tok]) -> String {
    let mut s = String::new();
    for t in toks {
        match t {
            Tok::Byte(b) => write!(s, "{b:02x}").unwrap(),
            Tok::Any => s.push_str("??"),
            Tok::Jump(lo, hi) => write!(s, "{{{lo}-{hi}}}").unwrap(),
        }
    }
    s
}

fn yara_hex(toks: &[Tok]) -> String {
    let parts: Vec<String> = toks
        .iter()
        .map(|t| match t {
            Tok::Byte(b) => format!("{b:02x}"),
            Tok::Any => "??".into(),
            Tok::Jump(lo, hi) => format!("[{lo}-{hi}]"),
        })
        .collect();
    parts.join(" ")
}

/// Bytes that match `toks`, wildcards and jumps filled at random.
fn instantiate(toks: &[Tok], rng: &mut Rng) -> Vec<u8> {
    let mut out = Vec::new();
    for t in toks {
        match *t {
            Tok::Byte(b) => out.push(b),
            Tok::Any => out.push(rng.next_u64() as u8),
            Tok::Jump(lo, hi) => {
                for _ in 0..rng.range(lo as u64, hi as u64) {
                    out.push(rng.next_u64() as u8);
                }
            }
        }
    }
    out
}

#[derive(Clone, Copy, PartialEq)]
enum Kind {
    Text,
    Binary,
    Sparse,
}

#[derive(Clone, Copy, PartialEq)]
enum Plant {
    None,
    Md5,
    Sha256,
    Body,
}

struct GenFile {
    rel: String,
    size: u64,
    kind: Kind,
    plant: Plant,
}

fn generate(dir: &Path, p: &Params, seed: u64) -> Result<Set> {
    let corpus = dir.join("corpus");
    for sub in ["corpus", "sigs", "out"] {
        let _ = fs::remove_dir_all(dir.join(sub));
    }
    fs::create_dir_all(&corpus)?;
    let corpus = corpus.canonicalize()?;
    // Separate streams, so the generated part does not depend on this machine's real files.
    let mut pat_rng = Rng::new(seed ^ 0x5041_5454);
    let mut real_rng = Rng::new(seed ^ 0x5245_414C);
    let mut gen_rng = Rng::new(seed ^ 0x4745_4E53);
    let mut sig_rng = Rng::new(seed ^ 0x5349_4753);

    // Real files: a seeded sample of this machine's libraries, docs, headers and Perl modules.
    let mut candidates = Vec::new();
    let mut roots: Vec<PathBuf> = REAL_ROOTS.iter().map(PathBuf::from).collect();
    if let Ok(entries) = fs::read_dir("/usr/share") {
        let mut perl: Vec<PathBuf> = entries
            .filter_map(|e| e.ok())
            .filter(|e| e.file_name().to_string_lossy().starts_with("perl"))
            .map(|e| e.path())
            .collect();
        perl.sort();
        roots.extend(perl);
    }
    for root in roots.iter().filter(|r| r.is_dir()) {
        candidates.extend(
            walk(root)?
                .into_iter()
                .filter(|(_, len)| (1..=p.max_real_file).contains(len)),
        );
    }
    real_rng.shuffle(&mut candidates);
    let real_files_max = (p.files as f64 * p.real_share) as usize;
    let real_bytes_max = (p.bytes as f64 * p.real_share) as u64;
    let (mut real_files, mut real_bytes, mut sizes) = (0usize, 0u64, Vec::new());
    for (path, len) in candidates {
        if real_files >= real_files_max {
            break;
        }
        if real_bytes + len > real_bytes_max {
            continue;
        }
        let Ok(data) = fs::read(&path) else { continue };
        if contains(&data, EICAR_MARKER) {
            continue; // our scanner has EICAR built in, clamscan -d does not: keep it out
        }
        let dest = corpus.join("real").join(path.strip_prefix("/").unwrap());
        fs::create_dir_all(dest.parent().unwrap())?;
        fs::write(&dest, &data).with_context(|| dest.display().to_string())?;
        real_files += 1;
        real_bytes += data.len() as u64;
        sizes.push(data.len() as u64);
    }

    // Generated files fill the rest: sizes mostly small, a few of several MB, scaled to the budget.
    let n_gen = p
        .files
        .saturating_sub(real_files)
        .max(p.planted_md5 + p.planted_sha256 + p.planted_body);
    let gen_budget = p.bytes.saturating_sub(real_bytes).max(n_gen as u64 * 4096);
    let mut raw: Vec<f64> = (0..n_gen)
        .map(|_| {
            let r = gen_rng.below(100);
            (if r < 70 {
                gen_rng.log_uniform(64, 16 << 10)
            } else if r < 95 {
                gen_rng.log_uniform(16 << 10, 256 << 10)
            } else {
                gen_rng.log_uniform(256 << 10, 8 << 20)
            }) as f64
        })
        .collect();
    let scale = gen_budget as f64 / raw.iter().sum::<f64>();
    raw.iter_mut()
        .for_each(|s| *s = (*s * scale).clamp(32.0, (32 << 20) as f64));
    let mut gen: Vec<GenFile> = raw
        .into_iter()
        .enumerate()
        .map(|(i, size)| {
            let kind = match gen_rng.below(10) {
                0..=3 => Kind::Text,
                4..=7 => Kind::Binary,
                _ => Kind::Sparse,
            };
            let ext = match kind {
                Kind::Text => "txt",
                Kind::Binary => "bin",
                Kind::Sparse => "dat",
            };
            GenFile {
                rel: format!("gen/d{:03}/f{i:05}.{ext}", i / 100),
                size: size as u64,
                kind,
                plant: Plant::None,
            }
        })
        .collect();
    let mut eligible: Vec<usize> = (0..gen.len()).filter(|&i| gen[i].size >= 1024).collect();
    gen_rng.shuffle(&mut eligible);
    let wanted = p.planted_body + p.planted_md5 + p.planted_sha256;
    if eligible.len() < wanted {
        bail!(
            "only {} generated files of 1 KiB or more, {wanted} needed for planting",
            eligible.len()
        );
    }
    for (k, &i) in eligible[..wanted].iter().enumerate() {
        gen[i].plant = if k < p.planted_body {
            Plant::Body
        } else if k < p.planted_body + p.planted_md5 {
            Plant::Md5
        } else {
            Plant::Sha256
        };
    }

    let patterns: Vec<Vec<Tok>> = (0..p.ndb).map(|_| gen_pattern(&mut pat_rng)).collect();
    let words: Vec<String> = (0..2048)
        .map(|_| {
            (0..gen_rng.range(2, 10))
                .map(|_| (b'a' + gen_rng.below(26) as u8) as char)
                .collect()
        })
        .collect();
    let mut expected_clamav = BTreeSet::new();
    let mut expected_yara = BTreeSet::new();
    let (mut md5_files, mut sha_files) = (Vec::new(), Vec::new());
    for f in &gen {
        let mut data = content(f, &words, &mut gen_rng);
        let path = corpus.join(&f.rel);
        let abs = path.display().to_string();
        match f.plant {
            Plant::None => {}
            Plant::Body => {
                plant_body(&mut data, &patterns, &mut gen_rng);
                expected_yara.insert(abs.clone());
                expected_clamav.insert(abs);
            }
            Plant::Md5 => {
                md5_files.push(path.clone());
                expected_clamav.insert(abs);
            }
            Plant::Sha256 => {
                sha_files.push(path.clone());
                expected_clamav.insert(abs);
            }
        }
        fs::create_dir_all(path.parent().unwrap())?;
        fs::write(&path, &data).with_context(|| path.display().to_string())?;
        sizes.push(data.len() as u64);
    }

    // Signatures. Random hash signatures use a real corpus file size one time in five, so that
    // size-keyed lookups cannot skip every file.
    let sigs = dir.join("sigs");
    fs::create_dir_all(sigs.join("clamav"))?;
    fs::create_dir_all(sigs.join("yara"))?;
    for (ext, tool, hex_len, planted, count, label) in [
        ("hdb", "md5sum", 32, &md5_files, p.hdb, "Md5"),
        ("hsb", "sha256sum", 64, &sha_files, p.hsb, "Sha256"),
    ] {
        let mut lines = hashes(tool, planted)?;
        while lines.len() < count {
            let mut hex = String::new();
            while hex.len() < hex_len {
                write!(hex, "{:016x}", sig_rng.next_u64()).unwrap();
            }
            let size = if sig_rng.chance(0.2) {
                sizes[sig_rng.below(sizes.len() as u64) as usize]
            } else {
                sig_rng.log_uniform(16, 64 << 20)
            };
            lines.push((hex, size));
        }
        sig_rng.shuffle(&mut lines);
        let mut text = String::new();
        for (i, (hash, size)) in lines.iter().enumerate() {
            writeln!(text, "{hash}:{size}:Bench.{label}.{i:05}").unwrap();
        }
        fs::write(sigs.join("clamav").join(format!("bench.{ext}")), text)?;
    }
    let (mut ndb, mut yar) = (String::new(), String::new());
    for (i, toks) in patterns.iter().enumerate() {
        writeln!(ndb, "Bench.Body.{i:05}:0:*:{}", clamav_hex(toks)).unwrap();
        writeln!(
            yar,
            "rule bench_body_{i:05} {{ strings: $a = {{ {} }} condition: $a }}",
            yara_hex(toks)
        )
        .unwrap();
    }
    fs::write(sigs.join("clamav/bench.ndb"), ndb)?;
    fs::write(sigs.join("yara/bench.yar"), yar)?;

    let (clamav_sigs, yara_sigs) = sig_paths(dir);
    let files = walk(&corpus)?;
    Ok(Set {
        files: files.len() as u64,
        bytes: files.iter().map(|f| f.1).sum(),
        corpus,
        clamav_sigs,
        yara_sigs,
        expected_clamav,
        expected_yara,
    })
}

/// Content of a generated file: words and lines, random bytes, or mostly zeros.
fn content(f: &GenFile, words: &[String], rng: &mut Rng) -> Vec<u8> {
    let size = f.size as usize;
    let mut data = vec![0u8; size];
    match f.kind {
        Kind::Binary => rng.fill(&mut data),
        Kind::Sparse => {
            for _ in 0..size / 64 {
                let at = rng.below(size as u64) as usize;
                data[at] = rng.next_u64() as u8;
            }
        }
        Kind::Text => {
            let mut text = Vec::with_capacity(size + 16);
            while text.len() < size {
                let w = &words[rng.below(words.len() as u64) as usize];
                text.extend_from_slice(w.as_bytes());
                text.push(if rng.chance(0.1) { b'\n' } else { b' ' });
            }
            data.copy_from_slice(&text[..size]);
        }
    }
    data
}

/// Writes one or two body-signature instances into `data`: at offset 0, at the very end, across
/// a 64 KiB or 1 MiB boundary (where a chunked reader splits), or anywhere.
fn plant_body(data: &mut [u8], patterns: &[Vec<Tok>], rng: &mut Rng) {
    let len = data.len();
    let first = instantiate(&patterns[rng.below(patterns.len() as u64) as usize], rng);
    let n = first.len();
    let at = match rng.below(5) {
        0 => 0,
        1 => len - n,
        2 if len > (64 << 10) + n => (64 << 10) - n / 2,
        3 if len > (1 << 20) + n => (1 << 20) - n / 2,
        _ => rng.below((len - n) as u64) as usize,
    };
    data[at..at + n].copy_from_slice(&first);
    if rng.chance(0.3) {
        // A second, different pattern in the half the first one is not in.
        let second = instantiate(&patterns[rng.below(patterns.len() as u64) as usize], rng);
        let m = second.len();
        let half = len / 2;
        let at2 = if at + n <= half {
            half + rng.below((len - half - m) as u64) as usize
        } else {
            rng.below((half - m) as u64) as usize
        };
        data[at2..at2 + m].copy_from_slice(&second);
    }
}

/// `(hex digest, size)` of each file, by coreutils' `md5sum`/`sha256sum` (one process).
fn hashes(tool: &str, files: &[PathBuf]) -> Result<Vec<(String, u64)>> {
    if files.is_empty() {
        return Ok(Vec::new());
    }
    let out = util::output(Command::new(tool).args(files))?;
    let digests: Vec<&str> = out
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    if digests.len() != files.len() {
        bail!(
            "{tool} printed {} digests for {} files",
            digests.len(),
            files.len()
        );
    }
    files
        .iter()
        .zip(digests)
        .map(|(f, d)| Ok((d.to_string(), fs::metadata(f)?.len())))
        .collect()
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    let mut i = 0;
    while let Some(pos) = hay[i..].iter().position(|&b| b == needle[0]) {
        let at = i + pos;
        if hay[at..].starts_with(needle) {
            return true;
        }
        i = at + 1;
    }
    false
}

// ---------------------------------------------------------------------------------------------
// Runs

#[derive(Clone, Copy, PartialEq)]
enum Sigs {
    None,
    Clamav,
    Yara,
}

impl Sigs {
    fn name(self) -> &'static str {
        match self {
            Sigs::None => "-",
            Sigs::Clamav => "clamav",
            Sigs::Yara => "yara",
        }
    }
}

struct Row {
    tool: String,
    sigs: Sigs,
    threads: u32,
    /// Time to load the signatures (peers: the same command on an empty directory; ours:
    /// `mdatp definitions update`).
    load: Option<Duration>,
    /// Time of the scan itself (peers: whole command minus load; ours: `mdatp scan custom`).
    scan: Duration,
    /// Whole command, peers only.
    wall: Option<Duration>,
    rss_kib: Option<u64>,
    /// CPU time of the scan (peers: whole command minus load; ours: the daemon's and the CLI's
    /// CPU time during `mdatp scan custom`). Less sensitive than wall time to a busy machine.
    cpu: Option<Duration>,
    files_scanned: Option<u64>,
    detected: Option<BTreeSet<String>>,
    vs_planted: Option<Diff>,
    vs_peer: Option<(String, Diff)>,
    bytes: u64,
}

impl Row {
    fn label(&self) -> String {
        match self.sigs {
            Sigs::None => self.tool.clone(),
            _ => format!(
                "{} ({} set, {} thread{})",
                self.tool,
                self.sigs.name(),
                self.threads,
                if self.threads == 1 { "" } else { "s" }
            ),
        }
    }
    /// Megabytes per CPU second: how much one core gets through.
    fn mb_per_cpu_s(&self) -> Option<f64> {
        Some(self.bytes as f64 / 1e6 / self.cpu?.as_secs_f64().max(1e-6))
    }
    fn mb_per_s(&self) -> f64 {
        self.bytes as f64 / 1e6 / self.scan.as_secs_f64().max(1e-6)
    }
}

/// What `found` has that `expected` has not, and the other way round.
struct Diff {
    missing: Vec<String>,
    extra: Vec<String>,
}

impl Diff {
    fn new(expected: &BTreeSet<String>, found: &BTreeSet<String>) -> Diff {
        Diff {
            missing: expected.difference(found).cloned().collect(),
            extra: found.difference(expected).cloned().collect(),
        }
    }
    fn is_empty(&self) -> bool {
        self.missing.is_empty() && self.extra.is_empty()
    }
}

impl std::fmt::Display for Diff {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let show = |v: &[String]| -> String {
            let mut s = v.iter().take(5).cloned().collect::<Vec<_>>().join(", ");
            if v.len() > 5 {
                write!(s, ", ... ({} more)", v.len() - 5).unwrap();
            }
            s
        };
        write!(f, "{} missing", self.missing.len())?;
        if !self.missing.is_empty() {
            write!(f, " [{}]", show(&self.missing))?;
        }
        write!(f, ", {} extra", self.extra.len())?;
        if !self.extra.is_empty() {
            write!(f, " [{}]", show(&self.extra))?;
        }
        Ok(())
    }
}

/// Reads every corpus file once: warms the page cache for everyone and gives the read limit.
fn read_all(set: &Set) -> Result<Row> {
    let files = walk(&set.corpus)?;
    let start = Instant::now();
    let mut buf = vec![0u8; 1 << 20];
    for (path, _) in &files {
        use std::io::Read;
        let mut f = fs::File::open(path)?;
        while f.read(&mut buf)? > 0 {}
    }
    Ok(Row {
        tool: "read every file (1 thread, page cache)".into(),
        sigs: Sigs::None,
        threads: 1,
        load: None,
        scan: start.elapsed(),
        wall: None,
        rss_kib: None,
        cpu: None,
        files_scanned: Some(files.len() as u64),
        detected: None,
        vs_planted: None,
        vs_peer: None,
        bytes: set.bytes,
    })
}

/// Runs a peer on the corpus and on an empty directory (its load time).
fn run_peer(
    out: &Path,
    name: &str,
    cmd: impl Fn(&Path) -> Command,
    ok_codes: &[i32],
    set: &Set,
) -> Result<(util::Finished, util::Finished, String)> {
    let (corpus, timeout) = (&set.corpus, set.timeout());
    let empty = out.join("empty");
    fs::create_dir_all(&empty)?;
    let (so, se) = (
        out.join(format!("{name}.load.stdout")),
        out.join(format!("{name}.load.stderr")),
    );
    let load = util::run_measured(&mut cmd(&empty), &so, &se, Duration::from_secs(300))?;
    if load.timed_out || !ok_codes.contains(&load.code) {
        bail!(
            "`{}` exited with {}: {}",
            util::display(&cmd(&empty)),
            load.code,
            util::tail(&se, 5)
        );
    }
    let (so, se) = (
        out.join(format!("{name}.stdout")),
        out.join(format!("{name}.stderr")),
    );
    eprintln!("$ {}", util::display(&cmd(corpus)));
    let scan = util::run_measured(&mut cmd(corpus), &so, &se, timeout)?;
    if scan.timed_out {
        bail!(
            "`{}` ran longer than {timeout:?} and was killed",
            util::display(&cmd(corpus))
        );
    }
    if !ok_codes.contains(&scan.code) {
        bail!(
            "`{}` exited with {}: {}",
            util::display(&cmd(corpus)),
            scan.code,
            util::tail(&se, 5)
        );
    }
    let stdout = String::from_utf8_lossy(&fs::read(&so)?).into_owned();
    Ok((load, scan, stdout))
}

fn peer_row(
    tool: String,
    sigs: Sigs,
    threads: u32,
    load: util::Finished,
    scan: util::Finished,
    detected: BTreeSet<String>,
    bytes: u64,
) -> Row {
    Row {
        tool,
        sigs,
        threads,
        load: Some(load.wall),
        scan: scan.wall.saturating_sub(load.wall),
        wall: Some(scan.wall),
        rss_kib: Some(scan.max_rss_kib),
        cpu: Some(scan.cpu.saturating_sub(load.cpu)),
        files_scanned: None,
        detected: Some(detected),
        vs_planted: None,
        vs_peer: None,
        bytes,
    }
}

fn run_clamscan(set: &Set, out: &Path) -> Result<Row> {
    let db = set.clamav_sigs[0].parent().unwrap().to_path_buf();
    let cmd = |target: &Path| {
        let mut c = Command::new("clamscan");
        c.args(["-r", "--no-summary", "--infected", "-d"])
            .arg(&db)
            .arg(target);
        c
    };
    // 0: nothing found, 1: something found, 2: an error.
    let (load, scan, stdout) = run_peer(out, "clamscan", cmd, &[0, 1], set)?;
    let detected = parse_clamscan(&stdout);
    Ok(peer_row(
        "clamscan".into(),
        Sigs::Clamav,
        1,
        load,
        scan,
        detected,
        set.bytes,
    ))
}

/// `PATH: NAME FOUND` lines (ClamAV appends `.UNOFFICIAL` to names from custom databases).
fn parse_clamscan(stdout: &str) -> BTreeSet<String> {
    stdout
        .lines()
        .filter_map(|l| {
            l.strip_suffix(" FOUND")?
                .rsplit_once(": ")
                .map(|(path, _name)| path.to_string())
        })
        .collect()
}

fn run_yara(set: &Set, out: &Path, threads: u32) -> Result<Row> {
    let rules = set.yara_sigs[0].clone();
    // -N: do not follow symlinks (like clamscan and us), -w: no warnings on stdout/stderr.
    let cmd = |target: &Path| {
        let mut c = Command::new("yara");
        c.args(["-r", "-N", "-w", "-p", &threads.to_string()])
            .arg(&rules)
            .arg(target);
        c
    };
    let (load, scan, stdout) = run_peer(out, &format!("yara-p{threads}"), cmd, &[0], set)?;
    let detected = parse_yara(&stdout);
    Ok(peer_row(
        format!("yara -p {threads}"),
        Sigs::Yara,
        threads,
        load,
        scan,
        detected,
        set.bytes,
    ))
}

/// `RULE PATH` lines.
fn parse_yara(stdout: &str) -> BTreeSet<String> {
    stdout
        .lines()
        .filter_map(|l| l.split_once(' ').map(|(_rule, path)| path.to_string()))
        .collect()
}

/// A `wdavdaemon` running in the foreground under its own `MDATP_ROOT`; stopped on drop.
struct Daemon {
    child: Child,
    root: PathBuf,
    log: PathBuf,
    mdatp: PathBuf,
}

impl Daemon {
    fn start(label: &str, defs: &[PathBuf]) -> Result<Daemon> {
        let release = util::target_dir().join("release");
        // Short, under /tmp: the daemon's socket path must fit in sun_path (108 bytes).
        let root = std::env::temp_dir().join(format!("xtask-bench-{}-{label}", std::process::id()));
        let _ = fs::remove_dir_all(&root);
        let defs_dir = root.join("var/opt/microsoft/mdatp/definitions");
        fs::create_dir_all(&defs_dir)?;
        for d in defs {
            fs::copy(d, defs_dir.join(d.file_name().unwrap()))?;
        }
        let log = root.join("wdavdaemon.log");
        let file = fs::File::create(&log)?;
        let mut cmd = Command::new(release.join("wdavdaemon"));
        cmd.env("MDATP_ROOT", &root)
            .stdin(Stdio::null())
            .stdout(file.try_clone()?)
            .stderr(file);
        let child = cmd
            .spawn()
            .with_context(|| format!("cannot start {}", util::display(&cmd)))?;
        let mut d = Daemon {
            child,
            root,
            log,
            mdatp: release.join("mdatp"),
        };
        d.wait_healthy(Duration::from_secs(30))?;
        Ok(d)
    }

    fn cli(&self) -> Command {
        let mut c = Command::new(&self.mdatp);
        c.env("MDATP_ROOT", &self.root);
        c
    }

    /// Runs `mdatp ARGS` (killed after `timeout`) and returns its stdout.
    fn mdatp_within(&self, args: &[&str], timeout: Duration) -> Result<String> {
        let (so, se) = (self.root.join("cli.stdout"), self.root.join("cli.stderr"));
        let mut cmd = self.cli();
        cmd.args(args);
        let done = util::run_measured(&mut cmd, &so, &se, timeout)?;
        if done.timed_out || done.code != 0 {
            bail!(
                "`mdatp {}` {}: {}\ndaemon log:\n{}",
                args.join(" "),
                if done.timed_out {
                    format!("did not finish within {timeout:?}")
                } else {
                    format!("exited with {}", done.code)
                },
                util::tail(&se, 5),
                util::tail(&self.log, 10)
            );
        }
        Ok(fs::read_to_string(&so)?)
    }

    fn mdatp(&self, args: &[&str]) -> Result<String> {
        self.mdatp_within(args, Duration::from_secs(120))
    }

    /// Polls `mdatp health --field healthy` until it exits 0.
    fn wait_healthy(&mut self, timeout: Duration) -> Result<()> {
        let start = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait()? {
                bail!(
                    "wdavdaemon exited ({status}) before it answered `mdatp health`; its log:\n{}",
                    util::tail(&self.log, 20)
                );
            }
            if self
                .mdatp_within(&["health", "--field", "healthy"], Duration::from_secs(5))
                .is_ok()
            {
                return Ok(());
            }
            if start.elapsed() > timeout {
                bail!("`mdatp health --field healthy` did not succeed within {timeout:?}; daemon log:\n{}", util::tail(&self.log, 20));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Peak RSS of the daemon so far (VmHWM), in KiB.
    fn vm_hwm_kib(&self) -> Option<u64> {
        let status = fs::read_to_string(format!("/proc/{}/status", self.child.id())).ok()?;
        status.lines().find_map(|l| {
            l.strip_prefix("VmHWM:")?
                .trim()
                .strip_suffix("kB")?
                .trim()
                .parse()
                .ok()
        })
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        util::signal(self.child.id(), libc::SIGTERM);
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                let _ = fs::remove_dir_all(&self.root);
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        eprintln!("bench scan: wdavdaemon did not stop within 10 s of SIGTERM; killing it");
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = fs::remove_dir_all(&self.root);
    }
}

fn run_ours(set: &Set, out: &Path, sigs: Sigs, threads: u32) -> Result<Row> {
    let defs = if sigs == Sigs::Yara {
        &set.yara_sigs
    } else {
        &set.clamav_sigs
    };
    let label = format!("{}-{threads}", sigs.name());
    let daemon = Daemon::start(&label, defs)?;
    daemon.mdatp(&["config", "passive-mode", "--value", "enabled"])?;
    daemon.mdatp(&[
        "config",
        "maximum-on-demand-scan-threads",
        "--value",
        &threads.to_string(),
    ])?;
    let start = Instant::now();
    daemon.mdatp(&["definitions", "update"])?;
    let load = start.elapsed();

    let (so, se) = (
        out.join(format!("ours-{label}.stdout")),
        out.join(format!("ours-{label}.stderr")),
    );
    let mut cmd = daemon.cli();
    cmd.args(["scan", "custom", "--path"])
        .arg(&set.corpus)
        .args(["--output", "json"]);
    eprintln!(
        "$ MDATP_ROOT={} {}",
        daemon.root.display(),
        util::display(&cmd)
    );
    let cpu_before = util::process_cpu(daemon.child.id());
    let scan = util::run_measured(&mut cmd, &so, &se, set.timeout())?;
    let cpu_after = util::process_cpu(daemon.child.id());
    if scan.timed_out {
        bail!(
            "`mdatp scan custom` ran longer than {:?} and was killed; daemon log:\n{}",
            set.timeout(),
            util::tail(&daemon.log, 10)
        );
    }
    if scan.code != 0 {
        bail!(
            "`mdatp scan custom` exited with {}: {}; daemon log:\n{}",
            scan.code,
            util::tail(&se, 5),
            util::tail(&daemon.log, 10)
        );
    }
    let text = fs::read_to_string(&so)?;
    let summary: Value = serde_json::from_str(&text).with_context(|| {
        format!("`mdatp scan custom --output json` printed no JSON: {text:.300}")
    })?;
    let files_scanned = summary["files_scanned"]
        .as_u64()
        .context("scan output has no `files_scanned` number")?;
    let threats = summary["threats_detected"]
        .as_u64()
        .context("scan output has no `threats_detected` number")?;

    let list = daemon.mdatp(&["threat", "list", "--output", "json"])?;
    fs::write(out.join(format!("ours-{label}.threats.json")), &list)?;
    let list: Value =
        serde_json::from_str(&list).context("`mdatp threat list --output json` printed no JSON")?;
    let detected = parse_threats(&list, &set.corpus)?;
    if threats < detected.len() as u64 {
        eprintln!(
            "bench scan: note: scan reported {threats} threats, threat list holds {} files",
            detected.len()
        );
    }
    let rss = daemon.vm_hwm_kib();
    drop(daemon);
    Ok(Row {
        tool: "ours".into(),
        sigs,
        threads,
        load: Some(load),
        scan: scan.wall,
        wall: None,
        rss_kib: rss,
        cpu: match (cpu_before, cpu_after) {
            (Some(b), Some(a)) => Some(a.saturating_sub(b) + scan.cpu),
            _ => None,
        },
        files_scanned: Some(files_scanned),
        detected: Some(detected),
        vs_planted: None,
        vs_peer: None,
        bytes: set.bytes,
    })
}

/// The distinct paths of a `threat list --output json` array.
fn parse_threats(list: &Value, corpus: &Path) -> Result<BTreeSet<String>> {
    let items = list
        .as_array()
        .context("`mdatp threat list --output json` is not a JSON array")?;
    items
        .iter()
        .map(|t| {
            let path = t["path"]
                .as_str()
                .with_context(|| format!("threat without a `path`: {t}"))?;
            Ok(if path.starts_with('/') {
                path.to_string()
            } else {
                corpus.join(path).display().to_string()
            })
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Report

struct Ratio {
    what: &'static str,
    goal: &'static str,
    value: Option<f64>,
}

fn ratios(
    rows: &[Row],
    clam: Option<usize>,
    yara: [Option<usize>; 2],
    ours: [[Option<usize>; 2]; 2],
) -> Vec<Ratio> {
    let tp = |i: Option<usize>| i.map(|i| rows[i].mb_per_s());
    let per_cpu = |i: Option<usize>| rows[i?].mb_per_cpu_s();
    let div = |a: Option<f64>, b: Option<f64>| Some(a? / b?);
    vec![
        Ratio {
            what: "ours / clamscan, 1 thread (ClamAV set)",
            goal: ">= 10",
            value: div(tp(ours[0][0]), tp(clam)),
        },
        Ratio {
            what: "ours / yara, 1 thread (YARA set)",
            goal: ">= 1",
            value: div(tp(ours[1][0]), tp(yara[0])),
        },
        Ratio {
            what: "ours / yara, 2 threads (YARA set)",
            goal: ">= 1",
            value: div(tp(ours[1][1]), tp(yara[1])),
        },
        Ratio {
            what: "ours 2 threads / 1 thread (ClamAV set)",
            goal: "~2",
            value: div(tp(ours[0][1]), tp(ours[0][0])),
        },
        Ratio {
            what: "ours 2 threads / 1 thread (YARA set)",
            goal: "~2",
            value: div(tp(ours[1][1]), tp(ours[1][0])),
        },
        Ratio {
            what: "yara -p 2 / -p 1",
            goal: "",
            value: div(tp(yara[1]), tp(yara[0])),
        },
        Ratio {
            what: "ours / clamscan, MB per CPU second (ClamAV set, 1 thread)",
            goal: "",
            value: div(per_cpu(ours[0][0]), per_cpu(clam)),
        },
        Ratio {
            what: "ours / yara, MB per CPU second (YARA set, 1 thread)",
            goal: "",
            value: div(per_cpu(ours[1][0]), per_cpu(yara[0])),
        },
    ]
}

struct Report<'a> {
    p: &'a Params,
    seed: u64,
    set: &'a Set,
    rows: &'a [Row],
    ratios: &'a [Ratio],
    failures: &'a [String],
    not_run: &'a [String],
    /// `/proc/loadavg` before and after: these machines are shared, timings are noisy.
    loadavg_before: String,
    loadavg_after: String,
}

fn loadavg() -> String {
    let s = fs::read_to_string("/proc/loadavg").unwrap_or_default();
    s.split_whitespace().take(3).collect::<Vec<_>>().join(" ")
}

fn version(cmd: &str, arg: &str) -> String {
    util::output(Command::new(cmd).arg(arg))
        .map(|s| s.lines().next().unwrap_or("").trim().to_string())
        .unwrap_or_else(|_| "not installed".into())
}

impl Report<'_> {
    fn markdown(&self) -> String {
        let mut s = String::new();
        let secs = |d: Option<Duration>| {
            d.map(|d| format!("{:.2}", d.as_secs_f64()))
                .unwrap_or_else(|| "-".into())
        };
        let check = |d: &Option<Diff>| match d {
            None => "-".to_string(),
            Some(d) if d.is_empty() => "yes".into(),
            Some(d) => format!("NO ({} missing, {} extra)", d.missing.len(), d.extra.len()),
        };
        writeln!(
            s,
            "# bench scan ({} mode, seed {})\n",
            self.p.mode, self.seed
        )
        .unwrap();
        writeln!(
            s,
            "Corpus: {} files, {:.1} MB (`{}`). Signatures: {} MD5 + {} SHA-256 hash, {} body (the same \
             {} as YARA rules). Planted: {} files for the ClamAV set, {} for the YARA set. \
             {} CPUs, load average {} before and {} after; clamscan: {}; yara: {}.\n",
            self.set.files,
            self.set.bytes as f64 / 1e6,
            self.set.corpus.display(),
            self.p.hdb,
            self.p.hsb,
            self.p.ndb,
            self.p.ndb,
            self.set.expected_clamav.len(),
            self.set.expected_yara.len(),
            std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0),
            self.loadavg_before,
            self.loadavg_after,
            version("clamscan", "--version"),
            version("yara", "--version"),
        )
        .unwrap();
        writeln!(s, "| run | signatures | threads | load s | scan s | MB/s | CPU s | MB/CPU-s | peak RSS MB | files found | = planted | = peer |").unwrap();
        writeln!(s, "|---|---|---|---|---|---|---|---|---|---|---|---|").unwrap();
        for r in self.rows {
            writeln!(
                s,
                "| {} | {} | {} | {} | {:.2} | {:.0} | {} | {} | {} | {} | {} | {} |",
                r.tool,
                r.sigs.name(),
                r.threads,
                secs(r.load),
                r.scan.as_secs_f64(),
                r.mb_per_s(),
                secs(r.cpu),
                r.mb_per_cpu_s()
                    .map(|v| format!("{v:.0}"))
                    .unwrap_or_else(|| "-".into()),
                r.rss_kib
                    .map(|k| format!("{:.0}", k as f64 / 1024.0))
                    .unwrap_or_else(|| "-".into()),
                r.detected
                    .as_ref()
                    .map(|d| d.len().to_string())
                    .unwrap_or_else(|| "-".into()),
                check(&r.vs_planted),
                match &r.vs_peer {
                    None => "-".into(),
                    Some((peer, d)) => format!(
                        "{} ({peer})",
                        check(&Some(Diff {
                            missing: d.missing.clone(),
                            extra: d.extra.clone()
                        }))
                    ),
                },
            )
            .unwrap();
        }
        writeln!(
            s,
            "\nload: peers = the same command on an empty directory, ours = `mdatp definitions update`. \
             scan: peers = whole command minus load, ours = `mdatp scan custom`. MB/s = corpus bytes / scan \
             time (10^6 bytes). CPU s: user + system time of the scan (peers: wait4 minus the load run; ours: the daemon's \
             /proc/PID/stat difference plus the CLI), steadier than wall time on a busy machine. \
             Peak RSS: peers = the process (wait4), ours = the daemon (VmHWM).\n"
        )
        .unwrap();
        writeln!(s, "| ratio (throughput) | value | goal |\n|---|---|---|").unwrap();
        for r in self.ratios {
            let v = r
                .value
                .map(|v| format!("{v:.2}"))
                .unwrap_or_else(|| "-".into());
            writeln!(s, "| {} | {v} | {} |", r.what, r.goal).unwrap();
        }
        if !self.failures.is_empty() {
            writeln!(s, "\n## Problems\n").unwrap();
            for f in self.failures {
                writeln!(s, "- {f}").unwrap();
            }
        }
        if !self.not_run.is_empty() {
            writeln!(s, "\n## Not run\n").unwrap();
            for f in self.not_run {
                writeln!(s, "- {f}").unwrap();
            }
        }
        s
    }

    fn json(&self) -> Value {
        let diff = |d: &Diff| json!({ "missing": d.missing, "extra": d.extra });
        json!({
            "mode": self.p.mode,
            "seed": self.seed,
            "cpus": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0),
            "loadavg_before": self.loadavg_before,
            "loadavg_after": self.loadavg_after,
            "corpus": { "path": self.set.corpus, "files": self.set.files, "bytes": self.set.bytes },
            "signatures": { "md5": self.p.hdb, "sha256": self.p.hsb, "body": self.p.ndb, "yara_rules": self.p.ndb },
            "planted": { "clamav_set": self.set.expected_clamav.len(), "yara_set": self.set.expected_yara.len() },
            "versions": { "clamscan": version("clamscan", "--version"), "yara": version("yara", "--version") },
            "runs": self.rows.iter().map(|r| json!({
                "tool": r.tool,
                "signatures": r.sigs.name(),
                "threads": r.threads,
                "load_s": r.load.map(|d| d.as_secs_f64()),
                "scan_s": r.scan.as_secs_f64(),
                "wall_s": r.wall.map(|d| d.as_secs_f64()),
                "mb_per_s": r.mb_per_s(),
                "cpu_s": r.cpu.map(|d| d.as_secs_f64()),
                "mb_per_cpu_s": r.mb_per_cpu_s(),
                "peak_rss_kib": r.rss_kib,
                "files_scanned": r.files_scanned,
                "files_detected": r.detected.as_ref().map(|d| d.len()),
                "vs_planted": r.vs_planted.as_ref().map(diff),
                "vs_peer": r.vs_peer.as_ref().map(|(p, d)| json!({ "peer": p, "diff": diff(d) })),
            })).collect::<Vec<_>>(),
            "ratios": self.ratios.iter().map(|r| json!({ "what": r.what, "goal": r.goal, "value": r.value })).collect::<Vec<_>>(),
            "problems": self.failures,
            "not_run": self.not_run,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pattern_syntaxes() {
        let toks = [
            Tok::Byte(0xaa),
            Tok::Byte(0x0b),
            Tok::Any,
            Tok::Byte(0xcc),
            Tok::Jump(2, 4),
            Tok::Byte(0xdd),
        ];
        assert_eq!(clamav_hex(&toks), "aa0b??cc{2-4}dd");
        assert_eq!(yara_hex(&toks), "aa 0b ?? cc [2-4] dd");
    }

    #[test]
    fn generated_patterns_have_static_anchors() {
        let mut rng = Rng::new(3);
        for _ in 0..2000 {
            let toks = gen_pattern(&mut rng);
            let fixed = toks.iter().filter(|t| matches!(t, Tok::Byte(_))).count();
            assert!((12..=24).contains(&fixed));
            // Every run of fixed bytes between wildcards is at least 4 long, and the pattern
            // starts and ends with one.
            let runs: Vec<usize> = toks
                .split(|t| !matches!(t, Tok::Byte(_)))
                .map(|r| r.len())
                .collect();
            assert!(runs.iter().all(|&n| n >= 4 || n == 0), "{toks:?}");
            assert!(runs[0] >= 4 && *runs.last().unwrap() >= 4, "{toks:?}");
            // An instance matches its own pattern.
            let inst = instantiate(&toks, &mut rng);
            assert!(matches(&toks, &inst), "{toks:?}");
        }
    }

    /// A tiny reference matcher for anchored patterns (the planted instance starts the slice).
    fn matches(toks: &[Tok], data: &[u8]) -> bool {
        match toks.split_first() {
            None => data.is_empty(),
            Some((Tok::Byte(b), rest)) => data.first() == Some(b) && matches(rest, &data[1..]),
            Some((Tok::Any, rest)) => !data.is_empty() && matches(rest, &data[1..]),
            Some((Tok::Jump(lo, hi), rest)) => {
                (*lo as usize..=*hi as usize).any(|n| n <= data.len() && matches(rest, &data[n..]))
            }
        }
    }

    #[test]
    fn parses_peer_output() {
        let clam = "/c/a b: x.txt: Bench.Body.00001.UNOFFICIAL FOUND\n/c/d: Bench.Md5.00002.UNOFFICIAL FOUND\nLibClamAV Warning: x\n";
        assert_eq!(
            parse_clamscan(clam),
            BTreeSet::from(["/c/a b: x.txt".to_string(), "/c/d".to_string()])
        );
        let yara = "bench_body_00001 /c/a b\nbench_body_00002 /c/a b\nbench_body_00003 /c/e\n";
        assert_eq!(
            parse_yara(yara),
            BTreeSet::from(["/c/a b".to_string(), "/c/e".to_string()])
        );
        let list = json!([{ "path": "/c/a", "name": "x" }, { "path": "/c/a", "name": "y" }, { "path": "b", "name": "z" }]);
        assert_eq!(
            parse_threats(&list, Path::new("/c")).unwrap(),
            BTreeSet::from(["/c/a".to_string(), "/c/b".to_string()])
        );
    }

    #[test]
    fn planting_stays_in_bounds() {
        let mut rng = Rng::new(9);
        let patterns: Vec<Vec<Tok>> = (0..50).map(|_| gen_pattern(&mut rng)).collect();
        for size in [1024usize, 1500, 70_000, (1 << 20) + 100] {
            for _ in 0..50 {
                let mut data = vec![0u8; size];
                plant_body(&mut data, &patterns, &mut rng);
                assert!(data.iter().any(|&b| b != 0));
            }
        }
    }
}
