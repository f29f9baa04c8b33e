//! The body-signature matcher: one Aho-Corasick automaton over every signature's anchor, and
//! the verifier of `ndb.rs` run around each anchor hit.
//!
//! Anchor: the best window of at most [`MAX_ANCHOR`] consecutive literal bytes (outside
//! alternatives) of a signature, "best" meaning rarest by a simple byte-weight score (0x00,
//! 0xFF and common text bytes weigh less), so that zero runs and padding do not trigger
//! verifications everywhere. Signatures sharing an anchor share the automaton pattern.
//!
//! Slow path: a signature without two consecutive literal bytes (e.g. `4?5?6?` or only
//! alternatives) is not in the automaton. It is tried at every occurrence of one of its literal
//! bytes (found with `memchr`), or, without any literal byte, at every position allowed by its
//! offset. Such signatures cost a pass over the content each: keep them few.
//!
//! Work bound: the verifier's work per scan is bounded ([`Budget`]): pathological signatures
//! (many bounded gaps over hostile content) stop being verified once it is spent, rather than
//! taking quadratic time.

use aho_corasick::{AhoCorasick, AhoCorasickKind, MatchKind};

use super::ndb::{AnchorPos, BodySig, Budget, Offset, Tok};
use super::Target;

/// Longest anchor put into the automaton. Longer anchors make the automaton bigger without
/// making hits rarer in practice.
pub(crate) const MAX_ANCHOR: usize = 8;

/// Automata with at most this many anchor bytes are built as a DFA (fastest, ~1 KiB per
/// state); bigger ones as a contiguous NFA.
const DFA_MAX_ANCHOR_BYTES: usize = 64 * 1024;

fn weight(b: u8) -> u32 {
    match b {
        0x00 | 0xff => 1,
        b' ' | b'\n' | b'\r' | b'\t' | b'0' | b'e' | b't' | b'a' | b'o' | b'i' | b'n' | b's' => 2,
        b if b.is_ascii_alphanumeric() => 3,
        0x01..=0x1f | 0x80 | 0xcc | 0x90 | 0xfe => 3,
        _ => 4,
    }
}

fn score(w: &[u8]) -> u32 {
    let mut seen = [false; 256];
    let mut s = 0;
    for &b in w {
        s += weight(b);
        if !seen[b as usize] {
            seen[b as usize] = true;
            s += 1;
        }
    }
    s
}

/// The anchor of a signature: position and bytes; `len < 2` means slow path.
pub(crate) fn choose_anchor(sig: &BodySig) -> (AnchorPos, Vec<u8>) {
    let mut best: Option<(u32, AnchorPos, Vec<u8>)> = None;
    for (si, seg) in sig.segs.iter().enumerate() {
        let mut i = 0;
        while i < seg.len() {
            if !matches!(seg[i], Tok::Byte(_)) {
                i += 1;
                continue;
            }
            let run_start = i;
            while i < seg.len() && matches!(seg[i], Tok::Byte(_)) {
                i += 1;
            }
            let bytes: Vec<u8> = seg[run_start..i]
                .iter()
                .map(|t| if let Tok::Byte(b) = t { *b } else { unreachable!() })
                .collect();
            let wl = bytes.len().min(MAX_ANCHOR);
            for off in 0..=bytes.len() - wl {
                let w = &bytes[off..off + wl];
                // Prefer longer windows first, then rarer bytes.
                let s = (wl as u32) * 1000 + score(w);
                if best.as_ref().is_none_or(|(bs, _, _)| s > *bs) {
                    best = Some((s, AnchorPos { seg: si, tok: run_start + off, len: wl }, w.to_vec()));
                }
            }
        }
    }
    match best {
        Some((_, pos, bytes)) => (pos, bytes),
        None => (AnchorPos { seg: 0, tok: 0, len: 0 }, Vec::new()),
    }
}

fn target_ok(t: Target, data: &[u8]) -> bool {
    match t {
        Target::Any => true,
        Target::Pe => data.starts_with(b"MZ"),
        Target::Elf => data.starts_with(b"\x7fELF"),
        Target::MachO => {
            data.len() >= 4
                && matches!(
                    u32::from_be_bytes([data[0], data[1], data[2], data[3]]),
                    0xfeedface | 0xfeedfacf | 0xcefaedfe | 0xcffaedfe | 0xcafebabe
                )
        }
    }
}

/// Compiled body signatures.
pub(crate) struct BodyMatcher {
    sigs: Vec<BodySig>,
    ac: Option<AhoCorasick>,
    /// Automaton pattern id -> signatures using that anchor.
    pattern_sigs: Vec<Vec<(u32, AnchorPos)>>,
    slow: Vec<(u32, AnchorPos)>,
}

impl BodyMatcher {
    pub fn new(sigs: Vec<BodySig>) -> BodyMatcher {
        let mut patterns: Vec<Vec<u8>> = Vec::new();
        let mut index: std::collections::HashMap<Vec<u8>, usize> = Default::default();
        let mut pattern_sigs: Vec<Vec<(u32, AnchorPos)>> = Vec::new();
        let mut slow = Vec::new();
        for (i, sig) in sigs.iter().enumerate() {
            let (pos, bytes) = choose_anchor(sig);
            if pos.len >= 2 {
                let pid = *index.entry(bytes.clone()).or_insert_with(|| {
                    patterns.push(bytes);
                    pattern_sigs.push(Vec::new());
                    patterns.len() - 1
                });
                pattern_sigs[pid].push((i as u32, pos));
            } else {
                slow.push((i as u32, pos));
            }
        }
        let ac = if patterns.is_empty() {
            None
        } else {
            let total: usize = patterns.iter().map(Vec::len).sum();
            let kind = if total <= DFA_MAX_ANCHOR_BYTES {
                AhoCorasickKind::DFA
            } else {
                AhoCorasickKind::ContiguousNFA
            };
            let build = |kind| {
                AhoCorasick::builder()
                    .match_kind(MatchKind::Standard)
                    .kind(Some(kind))
                    .build(&patterns)
            };
            Some(
                build(kind)
                    .or_else(|_| build(AhoCorasickKind::ContiguousNFA))
                    .or_else(|_| build(AhoCorasickKind::NoncontiguousNFA))
                    .expect("an automaton over at most a few million anchor bytes always builds"),
            )
        };
        BodyMatcher { sigs, ac, pattern_sigs, slow }
    }

    pub fn sig(&self, id: u32) -> &BodySig {
        &self.sigs[id as usize]
    }

    /// Index of the first signature found in `data`. `eof_known` is false when `data` is only
    /// the head of a longer content (then `EOF-n` signatures are not tried).
    pub fn scan(&self, data: &[u8], eof_known: bool) -> Option<u32> {
        let mut budget = Budget(8 * data.len() as u64 + (4 << 20));
        let usable = |sig: &BodySig| {
            (eof_known || !matches!(sig.offset, Offset::Eof { .. })) && target_ok(sig.target, data)
        };
        if let Some(ac) = &self.ac {
            for m in ac.find_overlapping_iter(data) {
                for &(sid, pos) in &self.pattern_sigs[m.pattern().as_usize()] {
                    let sig = &self.sigs[sid as usize];
                    if usable(sig) && sig.verify_at(pos, data, m.start(), &mut budget) {
                        return Some(sid);
                    }
                }
            }
        }
        for &(sid, pos) in &self.slow {
            let sig = &self.sigs[sid as usize];
            if !usable(sig) {
                continue;
            }
            if pos.len == 1 {
                let Tok::Byte(b) = sig.segs[pos.seg][pos.tok] else { unreachable!() };
                for q in memchr::memchr_iter(b, data) {
                    if sig.verify_at(pos, data, q, &mut budget) {
                        return Some(sid);
                    }
                    if budget.0 == 0 {
                        break;
                    }
                }
            } else {
                let (lo, hi) = match sig.offset {
                    Offset::Any => (0, data.len()),
                    Offset::Abs { start, shift } => (start, start.saturating_add(shift)),
                    Offset::Eof { back, shift } => match data.len().checked_sub(back) {
                        Some(s) => (s, s.saturating_add(shift)),
                        None => continue,
                    },
                };
                for q in lo..=hi.min(data.len()) {
                    if sig.verify_at(pos, data, q, &mut budget) {
                        return Some(sid);
                    }
                    if budget.0 == 0 || !budget_take(&mut budget) {
                        break;
                    }
                }
            }
        }
        None
    }

    /// Number of signatures on the slow path (for diagnostics).
    pub fn slow_count(&self) -> usize {
        self.slow.len()
    }
}

fn budget_take(b: &mut Budget) -> bool {
    if b.0 == 0 {
        return false;
    }
    b.0 -= 1;
    true
}
