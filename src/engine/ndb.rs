//! ClamAV body signatures (`.ndb`): parsing and the verifier that checks a whole signature
//! around an anchor hit.
//!
//! Line format: `Name:TargetType:Offset:HexSignature[:MinFL[:MaxFL]]`.
//!
//! Supported, and deliberately not supported:
//! - target type `0` (any file), `1` (PE: content starts with `MZ`), `6` (ELF: starts with
//!   `\x7fELF`) and `9` (Mach-O: starts with a Mach-O or fat magic). Those three are checked with
//!   the file's magic bytes; ClamAV's other types (OLE2, HTML, mail, graphics, ASCII, PDF, ...)
//!   need format normalisation that this engine does not do, so a line using one is rejected
//!   with a clear reason rather than silently matched against raw bytes.
//! - offset `*` (anywhere), `n` (the match starts at byte n), `n,m` (starts in n..=n+m),
//!   `EOF-n` and `EOF-n,m` (starts n bytes before the end, or up to m bytes after that).
//!   `EP+n`, `Sx+n`, `SL+n`, `SE...` and `VI` need an executable parser: rejected.
//! - hex: byte pairs, `??`, nibble wildcards `a?` and `?a`, gaps `*`, `{n}`, `{-n}`, `{n-}`,
//!   `{n-m}`, alternatives `(aa|bb)` whose branches may be multi-byte and of unequal length
//!   (branches may use `??` and nibbles, not gaps), negated alternatives `!(aa|bb)` with
//!   branches of equal length. ClamAV's `(B)`, `(L)` and `[n-m]` markers are rejected.
//! - MinFL/MaxFL (functionality levels) are validated as numbers and otherwise ignored: every
//!   signature is active.
//!
//! Difference from clamscan: ClamAV also matches target-0 signatures against a normalised copy
//! of text files (lower-cased, whitespace runs collapsed to one space, control and non-ASCII
//! bytes dropped), so a pattern cut from text with upper case or line breaks can match there
//! and not here. This engine matches raw bytes only, as YARA does.

use super::Target;

/// Largest value accepted for a number inside a signature (gap bounds, offsets).
pub(crate) const MAX_NUMBER: usize = 1 << 30;

/// One byte-level element of a signature.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Tok {
    Byte(u8),
    /// `data & mask == val` (nibble wildcards).
    Mask { mask: u8, val: u8 },
    /// `??`
    Any,
    /// `(a|b|...)` or `!(a|b|...)`; branches hold only `Byte`, `Mask` and `Any`.
    Alt { neg: bool, alts: Vec<Vec<Tok>> },
}

/// A gap between two segments: from `min` to `max` (None: unbounded) arbitrary bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Gap {
    pub min: usize,
    pub max: Option<usize>,
}

/// Where the match must start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Offset {
    Any,
    /// Start in `start..=start+shift`.
    Abs { start: usize, shift: usize },
    /// Start in `len-back..=len-back+shift`.
    Eof { back: usize, shift: usize },
}

/// A parsed body signature.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct BodySig {
    pub name: String,
    pub target: Target,
    pub offset: Offset,
    /// Segments of fixed-position tokens, separated by `gaps` (`gaps.len() == segs.len() - 1`).
    pub segs: Vec<Vec<Tok>>,
    pub gaps: Vec<Gap>,
}

/// Parses one non-comment `.ndb` line.
pub(crate) fn parse_line(line: &str) -> Result<BodySig, String> {
    let fields: Vec<&str> = line.split(':').collect();
    if fields.len() < 4 {
        return Err(format!(
            "expected Name:TargetType:Offset:HexSignature[:MinFL[:MaxFL]], found {} field(s)",
            fields.len()
        ));
    }
    if fields.len() > 6 {
        return Err(format!("too many fields ({}): at most 6 are allowed", fields.len()));
    }
    let name = super::check_name(fields[0])?;
    let target = match fields[1].trim() {
        "0" => Target::Any,
        "1" => Target::Pe,
        "6" => Target::Elf,
        "9" => Target::MachO,
        t if !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit()) => {
            return Err(format!(
                "target type {t} is not supported (supported: 0 any, 1 PE, 6 ELF, 9 Mach-O)"
            ))
        }
        t => return Err(format!("invalid target type {t:?}: expected a number")),
    };
    let offset = parse_offset(fields[2].trim())?;
    let (segs, gaps) = parse_hex(fields[3].trim())?;
    for (i, fl) in fields[4..].iter().enumerate() {
        let fl = fl.trim();
        if !(fl.is_empty() || fl.bytes().all(|b| b.is_ascii_digit()) && fl.len() <= 9) {
            let what = if i == 0 { "MinFL" } else { "MaxFL" };
            return Err(format!("invalid {what} {fl:?}: expected a number"));
        }
    }
    Ok(BodySig { name: name.to_string(), target, offset, segs, gaps })
}

fn parse_number(s: &str, what: &str) -> Result<usize, String> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("invalid {what} {s:?}: expected a decimal number"));
    }
    match s.parse::<usize>() {
        Ok(n) if n <= MAX_NUMBER => Ok(n),
        _ => Err(format!("{what} {s} is too large (at most {MAX_NUMBER})")),
    }
}

fn parse_offset(s: &str) -> Result<Offset, String> {
    if s == "*" {
        return Ok(Offset::Any);
    }
    let (base, shift) = match s.split_once(',') {
        Some((b, m)) => (b, parse_number(m, "offset shift")?),
        None => (s, 0),
    };
    if let Some(back) = base.strip_prefix("EOF-") {
        return Ok(Offset::Eof { back: parse_number(back, "EOF offset")?, shift });
    }
    if base.bytes().next().is_some_and(|b| b.is_ascii_digit()) {
        return Ok(Offset::Abs { start: parse_number(base, "offset")?, shift });
    }
    if base.starts_with("EP") || base.starts_with('S') || base.starts_with("VI") {
        return Err(format!(
            "offset {s:?} needs an executable-format parser and is not supported \
             (supported: *, n, n,m, EOF-n)"
        ));
    }
    Err(format!("invalid offset {s:?} (supported: *, n, n,m, EOF-n)"))
}

fn nibble(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

/// Parses one byte-level element (`hh`, `??`, `h?`, `?h`) at `s[i..i+2]`.
fn parse_byte_tok(s: &[u8], i: usize) -> Result<Tok, String> {
    if i + 1 >= s.len() {
        return Err(format!("odd number of hex digits at position {}", i + 1));
    }
    let (a, b) = (s[i], s[i + 1]);
    Ok(match (a, b) {
        (b'?', b'?') => Tok::Any,
        (b'?', _) => match nibble(b) {
            Some(lo) => Tok::Mask { mask: 0x0f, val: lo },
            None => return Err(bad_char(s, i + 1)),
        },
        (_, b'?') => match nibble(a) {
            Some(hi) => Tok::Mask { mask: 0xf0, val: hi << 4 },
            None => return Err(bad_char(s, i)),
        },
        _ => match (nibble(a), nibble(b)) {
            (Some(hi), Some(lo)) => Tok::Byte(hi << 4 | lo),
            (None, _) => return Err(bad_char(s, i)),
            (_, None) => return Err(bad_char(s, i + 1)),
        },
    })
}

fn bad_char(s: &[u8], i: usize) -> String {
    let c = s[i];
    if c.is_ascii_graphic() {
        format!("unexpected character {:?} at position {} of the hex signature", c as char, i + 1)
    } else {
        format!("unexpected byte 0x{c:02x} at position {} of the hex signature", i + 1)
    }
}

fn tok_len(t: &Tok) -> Option<usize> {
    match t {
        Tok::Alt { alts, .. } => {
            let l = alts[0].len();
            alts.iter().all(|a| a.len() == l).then_some(l)
        }
        _ => Some(1),
    }
}

/// Parses the hex signature field into segments and gaps.
pub(crate) fn parse_hex(hex: &str) -> Result<(Vec<Vec<Tok>>, Vec<Gap>), String> {
    let s = hex.as_bytes();
    if s.is_empty() {
        return Err("empty hex signature".into());
    }
    let mut segs: Vec<Vec<Tok>> = vec![Vec::new()];
    let mut gaps: Vec<Gap> = Vec::new();
    let mut i = 0;
    while i < s.len() {
        match s[i] {
            b'*' | b'{' => {
                let gap = if s[i] == b'*' {
                    i += 1;
                    Gap { min: 0, max: None }
                } else {
                    let end = s[i..]
                        .iter()
                        .position(|&c| c == b'}')
                        .map(|p| i + p)
                        .ok_or_else(|| format!("unterminated '{{' at position {}", i + 1))?;
                    let body = &hex[i + 1..end];
                    i = end + 1;
                    parse_gap(body)?
                };
                if segs.last().is_some_and(|seg| seg.is_empty()) {
                    return Err(if gaps.is_empty() && segs.len() == 1 {
                        "a signature cannot start with a gap".to_string()
                    } else {
                        "two gaps in a row".to_string()
                    });
                }
                gaps.push(gap);
                segs.push(Vec::new());
            }
            b'!' | b'(' => {
                let neg = s[i] == b'!';
                if neg {
                    i += 1;
                    if s.get(i) != Some(&b'(') {
                        return Err(format!("'!' must be followed by '(' at position {}", i));
                    }
                }
                let start = i;
                let end = s[i..]
                    .iter()
                    .position(|&c| c == b')')
                    .map(|p| i + p)
                    .ok_or_else(|| format!("unterminated '(' at position {}", start + 1))?;
                let body = &s[i + 1..end];
                if body == b"B" || body == b"L" {
                    return Err(format!(
                        "the ({}) marker is not supported",
                        body[0] as char
                    ));
                }
                let mut alts: Vec<Vec<Tok>> = vec![Vec::new()];
                let mut j = 0;
                while j < body.len() {
                    match body[j] {
                        b'|' => {
                            alts.push(Vec::new());
                            j += 1;
                        }
                        b'(' | b'*' | b'{' | b'[' | b'!' => {
                            return Err(format!(
                                "{:?} is not allowed inside an alternative (position {})",
                                body[j] as char,
                                i + 2 + j
                            ))
                        }
                        _ => {
                            let t = parse_byte_tok(body, j).map_err(|_| {
                                format!(
                                    "invalid alternative at position {}: expected hex byte pairs \
                                     separated by '|'",
                                    start + 1
                                )
                            })?;
                            alts.last_mut().expect("nonempty").push(t);
                            j += 2;
                        }
                    }
                }
                if alts.iter().any(|a| a.is_empty()) {
                    return Err(format!("empty branch in the alternative at position {}", start + 1));
                }
                if neg && alts.iter().any(|a| a.len() != alts[0].len()) {
                    return Err(format!(
                        "branches of the negated alternative at position {} must have equal length",
                        start + 1
                    ));
                }
                segs.last_mut().expect("nonempty").push(Tok::Alt { neg, alts });
                i = end + 1;
            }
            b'[' => return Err("the [n-m] byte-range marker is not supported".into()),
            b')' | b'|' | b'}' => return Err(bad_char(s, i)),
            _ => {
                let t = parse_byte_tok(s, i)?;
                segs.last_mut().expect("nonempty").push(t);
                i += 2;
            }
        }
    }
    if segs.last().is_some_and(|seg| seg.is_empty()) {
        return Err("a signature cannot end with a gap".into());
    }
    // A signature must contain at least one byte that is not a full wildcard.
    let fixed = segs.iter().flatten().any(|t| !matches!(t, Tok::Any));
    if !fixed {
        return Err("the signature matches anything: it has no fixed byte".into());
    }
    Ok((segs, gaps))
}

fn parse_gap(body: &str) -> Result<Gap, String> {
    let bad = || format!("invalid gap {{{body}}}: expected {{n}}, {{-n}}, {{n-}} or {{n-m}}");
    match body.split_once('-') {
        None => {
            let n = parse_number(body, "gap").map_err(|_| bad())?;
            Ok(Gap { min: n, max: Some(n) })
        }
        Some(("", m)) => Ok(Gap { min: 0, max: Some(parse_number(m, "gap").map_err(|_| bad())?) }),
        Some((n, "")) => Ok(Gap { min: parse_number(n, "gap").map_err(|_| bad())?, max: None }),
        Some((n, m)) => {
            let n = parse_number(n, "gap").map_err(|_| bad())?;
            let m = parse_number(m, "gap").map_err(|_| bad())?;
            if n > m {
                return Err(format!("invalid gap {{{body}}}: lower bound above upper bound"));
            }
            Ok(Gap { min: n, max: Some(m) })
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Verifier
// ---------------------------------------------------------------------------------------------

/// Where a signature's anchor is: tokens `segs[seg][tok..tok+len]` (all `Tok::Byte`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct AnchorPos {
    pub seg: usize,
    pub tok: usize,
    pub len: usize,
}

/// Limits the work of the verifier for one scan, so that a hostile file cannot make a
/// pathological signature (many bounded gaps) take quadratic time.
pub(crate) struct Budget(pub u64);

impl Budget {
    #[inline]
    fn take(&mut self, n: u64) -> bool {
        if self.0 < n {
            self.0 = 0;
            false
        } else {
            self.0 -= n;
            true
        }
    }
}

#[inline]
fn byte_matches(t: &Tok, b: u8) -> bool {
    match *t {
        Tok::Byte(x) => b == x,
        Tok::Mask { mask, val } => b & mask == val,
        Tok::Any => true,
        Tok::Alt { .. } => unreachable!("alternatives are not byte tokens"),
    }
}

/// Matches a branch (byte tokens only) at `p`.
#[inline]
fn branch_at(branch: &[Tok], data: &[u8], p: usize) -> bool {
    data.len() >= p + branch.len()
        && branch.iter().zip(&data[p..p + branch.len()]).all(|(t, &b)| byte_matches(t, b))
}

/// All end positions of `toks` matched forward from `p`, appended to `out`.
fn fwd(toks: &[Tok], data: &[u8], mut p: usize, out: &mut Vec<usize>) {
    for (k, t) in toks.iter().enumerate() {
        match t {
            Tok::Alt { neg: true, alts } => {
                let l = alts[0].len();
                if p + l > data.len() || alts.iter().any(|a| branch_at(a, data, p)) {
                    return;
                }
                p += l;
            }
            Tok::Alt { neg: false, alts } => {
                if tok_len(t).is_some() {
                    if !alts.iter().any(|a| branch_at(a, data, p)) {
                        return;
                    }
                    p += alts[0].len();
                } else {
                    for a in alts {
                        if branch_at(a, data, p) {
                            fwd(&toks[k + 1..], data, p + a.len(), out);
                        }
                    }
                    return;
                }
            }
            _ => {
                match data.get(p) {
                    Some(&b) if byte_matches(t, b) => p += 1,
                    _ => return,
                }
            }
        }
    }
    out.push(p);
}

/// All start positions of `toks` matched backward so that they end at `e`, appended to `out`.
fn bwd(toks: &[Tok], data: &[u8], mut e: usize, out: &mut Vec<usize>) {
    for (k, t) in toks.iter().enumerate().rev() {
        match t {
            Tok::Alt { neg, alts } => {
                if *neg || tok_len(t).is_some() {
                    let l = alts[0].len();
                    if e < l {
                        return;
                    }
                    let hit = alts.iter().any(|a| branch_at(a, data, e - l));
                    if hit == *neg {
                        return;
                    }
                    e -= l;
                } else {
                    for a in alts {
                        if e >= a.len() && branch_at(a, data, e - a.len()) {
                            bwd(&toks[..k], data, e - a.len(), out);
                        }
                    }
                    return;
                }
            }
            _ => {
                if e == 0 || !byte_matches(t, data[e - 1]) {
                    return;
                }
                e -= 1;
            }
        }
    }
    out.push(e);
}

fn sort_dedup(v: &mut Vec<usize>) {
    v.sort_unstable();
    v.dedup();
}

impl BodySig {
    /// Start positions allowed by the offset, as an inclusive range.
    fn start_range(&self, len: usize) -> (usize, usize) {
        match self.offset {
            Offset::Any => (0, len),
            Offset::Abs { start, shift } => (start, start.saturating_add(shift)),
            Offset::Eof { back, shift } => match len.checked_sub(back) {
                Some(s) => (s, s.saturating_add(shift)),
                None => (1, 0), // empty range
            },
        }
    }

    /// True if the whole signature matches with its anchor tokens starting at `q`
    /// (the anchor's bytes themselves have already been compared by the caller).
    pub(crate) fn verify_at(&self, a: AnchorPos, data: &[u8], q: usize, budget: &mut Budget) -> bool {
        let (lo, hi) = self.start_range(data.len());
        if lo > hi || lo > data.len() {
            return false;
        }
        // Right side: rest of the anchor's segment, then the following segments.
        let mut ends = Vec::new();
        fwd(&self.segs[a.seg][a.tok + a.len..], data, q + a.len, &mut ends);
        for k in a.seg + 1..self.segs.len() {
            if ends.is_empty() {
                return false;
            }
            sort_dedup(&mut ends);
            let last = k + 1 == self.segs.len();
            let gap = self.gaps[k - 1];
            // With an unbounded gap after this segment (or none), the earliest end suffices.
            let first_only = last || self.gaps[k].max.is_none();
            ends = match self.extend_right(&self.segs[k], gap, &ends, data, first_only, budget) {
                Some(e) => e,
                None => return false,
            };
        }
        if ends.is_empty() {
            return false;
        }
        // Left side: head of the anchor's segment, then the preceding segments.
        let mut starts = Vec::new();
        bwd(&self.segs[a.seg][..a.tok], data, q, &mut starts);
        for k in (0..a.seg).rev() {
            if starts.is_empty() {
                return false;
            }
            sort_dedup(&mut starts);
            let gap = self.gaps[k];
            let first_only = k == 0 && self.offset == Offset::Any
                || k > 0 && self.gaps[k - 1].max.is_none();
            let (lim_lo, lim_hi) = if k == 0 { (lo, hi) } else { (0, data.len()) };
            starts = match self.extend_left(
                &self.segs[k], gap, &starts, data, first_only, (lim_lo, lim_hi), budget,
            ) {
                Some(s) => s,
                None => return false,
            };
        }
        starts.iter().any(|&s| s >= lo && s <= hi)
    }

    /// Ends of `seg` starting in one of the windows `[e+gap.min, e+gap.max]` for `e` in `ends`
    /// (sorted). When `first_only`, only the earliest end is needed.
    fn extend_right(
        &self,
        seg: &[Tok],
        gap: Gap,
        ends: &[usize],
        data: &[u8],
        first_only: bool,
        budget: &mut Budget,
    ) -> Option<Vec<usize>> {
        let mut out = Vec::new();
        let n = data.len();
        let mut covered = 0usize; // positions < covered were already tried
        for &e in ends {
            let wlo = e.saturating_add(gap.min).max(covered);
            let whi = match gap.max {
                Some(m) => e.saturating_add(m).min(n),
                None => n,
            };
            if wlo > whi {
                continue;
            }
            // A literal first byte is searched with memchr (cheap per byte); every position
            // actually tried costs one unit.
            if !budget.take((whi - wlo) as u64 / 64 + 1) {
                return None;
            }
            let mut p = wlo;
            let mut stop_at = usize::MAX;
            while p <= whi && p < stop_at {
                // Jump to the next occurrence of the first byte when it is a literal.
                if let Tok::Byte(b) = seg[0] {
                    let end = (whi + 1).min(n);
                    if p >= end {
                        break;
                    }
                    match memchr::memchr(b, &data[p..end]) {
                        Some(off) => p += off,
                        None => break,
                    }
                    if p >= stop_at {
                        break;
                    }
                }
                if !budget.take(1) {
                    return None;
                }
                fwd(seg, data, p, &mut out);
                if first_only && !out.is_empty() {
                    // A later start can only give an earlier end through a shorter branch.
                    stop_at = out.iter().copied().min().unwrap_or(0);
                }
                p += 1;
            }
            if first_only && !out.is_empty() {
                return Some(out);
            }
            covered = whi + 1;
            if gap.max.is_none() {
                break; // the first window already covers everything after it
            }
        }
        Some(out)
    }

    /// Starts of `seg` ending in one of the windows `[s-gap.max, s-gap.min]` for `s` in
    /// `starts` (sorted); when `first_only`, the latest start is enough. Starts must lie in
    /// `lim` (inclusive).
    #[allow(clippy::too_many_arguments)]
    fn extend_left(
        &self,
        seg: &[Tok],
        gap: Gap,
        starts: &[usize],
        data: &[u8],
        first_only: bool,
        lim: (usize, usize),
        budget: &mut Budget,
    ) -> Option<Vec<usize>> {
        let mut out = Vec::new();
        let mut tmp = Vec::new();
        let mut lowest_tried = usize::MAX; // ends >= lowest_tried were already tried
        for &s in starts.iter().rev() {
            let Some(whi) = s.checked_sub(gap.min) else { continue };
            let mut whi = whi.min(data.len());
            if lowest_tried != usize::MAX {
                if lowest_tried == 0 {
                    break;
                }
                whi = whi.min(lowest_tried - 1);
            }
            let wlo = gap.max.map_or(0, |m| s.saturating_sub(m));
            if wlo > whi {
                continue;
            }
            if !budget.take((whi - wlo) as u64 / 64 + 1) {
                return None;
            }
            let mut e = whi;
            let mut stop_at = 0usize; // with first_only: ends <= stop_at cannot do better
            loop {
                if let Some(Tok::Byte(b)) = seg.last() {
                    let slo = wlo.max(1) - 1;
                    if e == 0 || slo >= e {
                        break;
                    }
                    match memchr::memrchr(*b, &data[slo..e]) {
                        Some(i) => e = slo + i + 1,
                        None => break,
                    }
                }
                if first_only && !out.is_empty() && e <= stop_at {
                    break;
                }
                if !budget.take(1) {
                    return None;
                }
                tmp.clear();
                bwd(seg, data, e, &mut tmp);
                for &st in &tmp {
                    if st >= lim.0 && st <= lim.1 {
                        out.push(st);
                    }
                }
                if first_only && !out.is_empty() {
                    stop_at = out.iter().copied().max().unwrap_or(0);
                }
                if e == wlo {
                    break;
                }
                e -= 1;
            }
            if first_only && !out.is_empty() {
                return Some(out);
            }
            lowest_tried = wlo;
            if gap.max.is_none() {
                break;
            }
        }
        Some(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_tokens() {
        let (segs, gaps) = parse_hex("41??4?{2-3}?1(42|4344)*!(45|46)").unwrap();
        assert_eq!(
            segs,
            vec![
                vec![Tok::Byte(0x41), Tok::Any, Tok::Mask { mask: 0xf0, val: 0x40 }],
                vec![
                    Tok::Mask { mask: 0x0f, val: 1 },
                    Tok::Alt { neg: false, alts: vec![vec![Tok::Byte(0x42)], vec![Tok::Byte(0x43), Tok::Byte(0x44)]] }
                ],
                vec![Tok::Alt { neg: true, alts: vec![vec![Tok::Byte(0x45)], vec![Tok::Byte(0x46)]] }],
            ]
        );
        assert_eq!(gaps, vec![Gap { min: 2, max: Some(3) }, Gap { min: 0, max: None }]);
    }

    #[test]
    fn gaps() {
        let g = |s: &str| parse_hex(s).map(|(_, g)| g[0]);
        assert_eq!(g("41{5}42"), Ok(Gap { min: 5, max: Some(5) }));
        assert_eq!(g("41{-5}42"), Ok(Gap { min: 0, max: Some(5) }));
        assert_eq!(g("41{5-}42"), Ok(Gap { min: 5, max: None }));
        assert_eq!(g("41{2-5}42"), Ok(Gap { min: 2, max: Some(5) }));
        assert_eq!(g("41*42"), Ok(Gap { min: 0, max: None }));
    }

    #[test]
    fn rejects_malformed_hex() {
        for (hex, reason) in [
            ("", "empty"),
            ("414", "odd number"),
            ("41zz", "unexpected character 'z'"),
            ("*41", "start with a gap"),
            ("41*", "end with a gap"),
            ("41**42", "two gaps in a row"),
            ("41{2-1}42", "lower bound above"),
            ("41{x}42", "invalid gap"),
            ("41{2", "unterminated '{'"),
            ("41(42", "unterminated '('"),
            ("41(42|)", "empty branch"),
            ("41(42*43)", "not allowed inside an alternative"),
            ("41!(42|4344)", "equal length"),
            ("41(B)42", "(B) marker"),
            ("41[1-2]42", "byte-range marker"),
            ("????", "no fixed byte"),
            ("41)", "unexpected character ')'"),
            ("41!42", "must be followed by '('"),
            ("41{99999999999}42", "invalid gap"),
        ] {
            let err = parse_hex(hex).expect_err(hex);
            assert!(err.contains(reason), "{hex}: {err}");
        }
    }

    #[test]
    fn rejects_malformed_lines() {
        for (line, reason) in [
            ("Sig:0:*", "found 3 field(s)"),
            ("Sig:0:*:4142:1:2:3", "too many fields"),
            (":0:*:4142", "empty threat name"),
            ("Sig:3:*:4142", "target type 3 is not supported"),
            ("Sig:x:*:4142", "invalid target type"),
            ("Sig:0:EP+10:4142", "executable-format parser"),
            ("Sig:0:SL+1:4142", "executable-format parser"),
            ("Sig:0:abc:4142", "invalid offset"),
            ("Sig:0:EOF-x:4142", "invalid EOF offset"),
            ("Sig:0:10,x:4142", "invalid offset shift"),
            ("Sig:0:*:4142:x", "invalid MinFL"),
            ("Sig:0:*:4142:1:y", "invalid MaxFL"),
        ] {
            let err = parse_line(line).expect_err(line);
            assert!(err.contains(reason), "{line}: {err}");
        }
        assert!(parse_line("Sig:0:*:4142:51:255").is_ok());
        assert!(parse_line("Sig:1:EOF-10,4:4142").is_ok());
    }
}
