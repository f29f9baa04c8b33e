use aho_corasick::{AhoCorasick, AhoCorasickKind, MatchKind};
use std::time::Instant;
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

fn rng(state: &mut u64) -> u64 { *state ^= *state >> 12; *state ^= *state << 25; *state ^= *state >> 27; state.wrapping_mul(0x2545_f491_4f6c_dd1d) }
fn main() {
    let mut data = Vec::new();
    for e in std::fs::read_dir("/usr/lib/x86_64-linux-gnu").unwrap() {
        let p = e.unwrap().path();
        if let Ok(m) = std::fs::symlink_metadata(&p) { if m.is_file() { data.extend(std::fs::read(&p).unwrap()); } }
        if data.len() > 200_000_000 { break; }
    }
    let mut seed = 7u64;
    for alen in [4usize, 8] {
    let pats: Vec<Vec<u8>> = (0..5000).map(|_| (0..alen).map(|_| rng(&mut seed) as u8).collect()).collect();
    for kind in [AhoCorasickKind::DFA, AhoCorasickKind::ContiguousNFA] {
        let t = cpu_now();
        let ac = AhoCorasick::builder().match_kind(MatchKind::Standard).kind(Some(kind)).build(&pats).unwrap();
        let bt = cpu_now()-t;
        let t = cpu_now();
        let n = ac.find_overlapping_iter(&data).count();
        let s1 = (cpu_now()-t);
        let t = cpu_now();
        let n2 = ac.find_iter(&data).count();
        let s2 = (cpu_now()-t);
        println!("alen {alen} {kind:?}: build {bt:.2}s mem {} KB; overlapping {:.0} MB/s ({n}), find_iter {:.0} MB/s ({n2})", ac.memory_usage()/1024, data.len() as f64/s1/1e6, data.len() as f64/s2/1e6);
    }}
    // hashes
    use md5::Digest;
    let t = cpu_now(); let _ = md5::Md5::digest(&data); println!("md5 {:.0} MB/s", data.len() as f64/(cpu_now()-t)/1e6);
    let t = cpu_now(); let _ = sha2::Sha256::digest(&data); println!("sha256 {:.0} MB/s", data.len() as f64/(cpu_now()-t)/1e6);
    let t = cpu_now(); let _ = <sha1::Sha1 as sha1::Digest>::digest(&data); println!("sha1 {:.0} MB/s", data.len() as f64/(cpu_now()-t)/1e6);
}
