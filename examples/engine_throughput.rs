//! Measures the scan engine's single-thread throughput on real files with a generated signature
//! set like the benchmark's (50,000 MD5 + 50,000 SHA-256 hash signatures, 5,000 12–24 byte
//! `.ndb` patterns, the same patterns as 5,000 YARA rules). Prints, never asserts.
//!
//! `cargo run --release --example engine_throughput [MAX_MB] [DIR...]`

use std::path::{Path, PathBuf};
use std::time::Instant;

use mdatp::engine::Definitions;

/// CPU time of this thread (user + system), in seconds: the machine is shared, so wall time
/// would measure the neighbours.
fn cpu_now() -> f64 {
    let s = std::fs::read_to_string("/proc/thread-self/stat").unwrap_or_default();
    let rest = s.rsplit_once(')').map(|x| x.1).unwrap_or("");
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks: f64 = f.get(11).and_then(|x| x.parse().ok()).unwrap_or(0.0)
        + f.get(12).and_then(|x| x.parse().ok()).unwrap_or(0.0);
    ticks / 100.0
}

fn rng(state: &mut u64) -> u64 {
    // xorshift64*
    *state ^= *state >> 12;
    *state ^= *state << 25;
    *state ^= *state >> 27;
    state.wrapping_mul(0x2545_f491_4f6c_dd1d)
}

fn collect(dir: &Path, out: &mut Vec<Vec<u8>>, paths: &mut Vec<PathBuf>, budget: &mut u64) {
    let Ok(rd) = std::fs::read_dir(dir) else { return };
    let mut entries: Vec<PathBuf> = rd.filter_map(|e| e.ok().map(|e| e.path())).collect();
    entries.sort();
    for p in entries {
        if *budget == 0 {
            return;
        }
        let Ok(md) = std::fs::symlink_metadata(&p) else { continue };
        if md.is_dir() {
            collect(&p, out, paths, budget);
        } else if md.is_file() {
            if let Ok(d) = std::fs::read(&p) {
                *budget = budget.saturating_sub(d.len() as u64);
                out.push(d);
                paths.push(p);
            }
        }
    }
}

fn rss() -> String {
    let s = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    s.lines().filter(|l| l.starts_with("VmRSS") || l.starts_with("VmHWM")).collect::<Vec<_>>().join(" ")
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn measure(label: &str, defs: &Definitions, files: &[Vec<u8>]) -> Vec<usize> {
    let total: usize = files.iter().map(Vec::len).sum();
    let mut best = f64::MAX;
    let mut hits = 0;
    for _ in 0..3 {
        let t = cpu_now();
        hits = files.iter().filter(|f| defs.scan_bytes(f).is_some()).count();
        best = best.min(cpu_now() - t);
    }
    let detected: Vec<usize> = (0..files.len()).filter(|&i| defs.scan_bytes(&files[i]).is_some()).collect();
    println!(
        "{label:<48} {:>8.1} MB/s  ({} files, {:.0} MB, {hits} detected, {:.2} s CPU)",
        total as f64 / best / 1e6,
        files.len(),
        total as f64 / 1e6,
        best
    );
    detected
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let max_mb: u64 = args.first().and_then(|a| a.parse().ok()).unwrap_or(400);
    let dirs: Vec<PathBuf> = if args.len() > 1 {
        args[1..].iter().map(PathBuf::from).collect()
    } else {
        ["/usr/lib/x86_64-linux-gnu", "/usr/share/doc", "/usr/share/perl", "/usr/include"]
            .iter()
            .map(PathBuf::from)
            .collect()
    };
    let mut files = Vec::new();
    let mut paths = Vec::new();
    let per_dir = max_mb * 1_000_000 / dirs.len() as u64;
    for d in &dirs {
        let mut b = per_dir;
        collect(d, &mut files, &mut paths, &mut b);
    }
    println!("corpus: {} files, {:.0} MB", files.len(), files.iter().map(Vec::len).sum::<usize>() as f64 / 1e6);

    let mut seed = 0x1234_5678_9abc_def1u64;
    let tmp = std::env::temp_dir().join(format!("engine-throughput-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&tmp);
    let hashes_dir = tmp.join("hashes");
    let ndb_dir = tmp.join("ndb");
    let yara_dir = tmp.join("yara");
    let all_sizes_dir = tmp.join("allsizes");
    for d in [&hashes_dir, &ndb_dir, &yara_dir, &all_sizes_dir] {
        std::fs::create_dir_all(d).unwrap();
    }
    // Hash signatures with random digests; sizes drawn from the corpus's own file sizes
    // half of the time (so many files need hashing), random otherwise.
    let sizes: Vec<usize> = files.iter().map(Vec::len).collect();
    let mut hdb = String::new();
    let mut hsb = String::new();
    for i in 0..50_000 {
        let r = rng(&mut seed);
        let size = if r % 2 == 0 { sizes[(r >> 8) as usize % sizes.len()] as u64 } else { r % 10_000_000 };
        let d: Vec<u8> = (0..16).map(|_| rng(&mut seed) as u8).collect();
        hdb.push_str(&format!("{}:{size}:Gen.Md5.{i}\n", hex(&d)));
        let d: Vec<u8> = (0..32).map(|_| rng(&mut seed) as u8).collect();
        hsb.push_str(&format!("{}:{size}:Gen.Sha256.{i}\n", hex(&d)));
    }
    // Plant signatures that do match: hashes of 10 + 10 corpus files, 10 patterns cut out of
    // corpus files (so the detections can be compared with clamscan's and yara's).
    {
        use md5::Digest as _;
        for k in 0..10 {
            let f = &files[rng(&mut seed) as usize % files.len()];
            hdb.push_str(&format!("{}:{}:Planted.Md5.{k}\n", hex(&md5::Md5::digest(f)), f.len()));
            let f = &files[rng(&mut seed) as usize % files.len()];
            hsb.push_str(&format!("{}:{}:Planted.Sha256.{k}\n", hex(&sha2::Sha256::digest(f)), f.len()));
        }
    }
    let mut planted = Vec::new();
    while planted.len() < 10 {
        let f = &files[rng(&mut seed) as usize % files.len()];
        if f.len() < 64 {
            continue;
        }
        let off = rng(&mut seed) as usize % (f.len() - 16);
        planted.push(f[off..off + 16].to_vec());
    }
    std::fs::write(hashes_dir.join("gen.hdb"), &hdb).unwrap();
    std::fs::write(hashes_dir.join("gen.hsb"), &hsb).unwrap();
    std::fs::write(all_sizes_dir.join("gen.hdb"), format!("{}:*:Any.Md5\n", "00".repeat(16))).unwrap();
    std::fs::write(all_sizes_dir.join("gen.hsb"), format!("{}:*:Any.Sha256\n", "00".repeat(32))).unwrap();
    // Body patterns: random bytes, 12–24 long.
    let mut ndb = String::new();
    let mut yar = String::new();
    for i in 0..5_000 {
        let len = 12 + rng(&mut seed) as usize % 13;
        let p: Vec<u8> = (0..len).map(|_| rng(&mut seed) as u8).collect();
        ndb.push_str(&format!("Gen.Body.{i}:0:*:{}\n", hex(&p)));
        let hs: Vec<String> = p.iter().map(|b| format!("{b:02X}")).collect();
        yar.push_str(&format!("rule Gen_Body_{i} {{ strings: $a = {{ {} }} condition: $a }}\n", hs.join(" ")));
    }
    for (i, p) in planted.iter().enumerate() {
        ndb.push_str(&format!("Planted.Body.{i}:0:*:{}\n", hex(p)));
        let hs: Vec<String> = p.iter().map(|b| format!("{b:02X}")).collect();
        yar.push_str(&format!("rule Planted_Body_{i} {{ strings: $a = {{ {} }} condition: $a }}\n", hs.join(" ")));
    }
    std::fs::write(ndb_dir.join("gen.ndb"), &ndb).unwrap();
    std::fs::write(yara_dir.join("gen.yar"), &yar).unwrap();

    let load = |dirs: &[&Path]| {
        let t = Instant::now();
        let d = Definitions::load(dirs).unwrap();
        println!("load {:?}: {:.2} s wall, {} signatures, body filter {} KiB; {}", dirs.iter().map(|d| d.file_name().unwrap()).collect::<Vec<_>>(), t.elapsed().as_secs_f64(), d.signature_count(), d.body_filter_memory() / 1024, rss());
        d
    };
    let builtin = Definitions::builtin();
    measure("built-in only (EICAR)", &builtin, &files);
    let d = load(&[&ndb_dir]);
    measure("5,000 ndb", &d, &files);
    drop(d);
    let d = load(&[&hashes_dir, &ndb_dir]);
    let clam_like = measure("100,000 hashes + 5,000 ndb", &d, &files);
    drop(d);
    let d = load(&[&all_sizes_dir]);
    measure("MD5+SHA-256 of every file (`*` sizes)", &d, &files);
    drop(d);
    let d = load(&[&yara_dir]);
    let yara_like = measure("5,000 YARA rules", &d, &files);
    drop(d);
    if std::env::var_os("KEEP").is_some() {
        // For side-by-side runs: yara -p 1 --scan-list TMP/yara/gen.yar TMP/files.txt,
        // clamscan -d TMP/hashes -d TMP/ndb -f TMP/files.txt
        let list: String = paths.iter().map(|p| format!("{}\n", p.display())).collect();
        std::fs::write(tmp.join("files.txt"), list).unwrap();
        for (name, det) in [("ours-clam.txt", &clam_like), ("ours-yara.txt", &yara_like)] {
            let l: String = det.iter().map(|&i| format!("{}\n", paths[i].display())).collect();
            std::fs::write(tmp.join(name), l).unwrap();
        }
        println!("kept {}", tmp.display());
    } else {
        let _ = std::fs::remove_dir_all(&tmp);
    }
}
