//! A small, bounded cpio reader: newc ("070701"), crc ("070702"), odc ("070707") and the old
//! binary format (magic 070707 as a 16-bit word in either byte order). Every length read from a
//! header is checked against the input before use; members are slices of the input.

use super::{join_path, Ctx, Flow};

const NEWC_LEN: usize = 110;
const ODC_LEN: usize = 76;
const BIN_LEN: usize = 26;
const BIN_MAGIC: u16 = 0o070707;
const S_IFMT: u64 = 0o170000;
const S_IFREG: u64 = 0o100000;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Newc,
    Odc,
    BinLe,
    BinBe,
}

fn kind_at(d: &[u8]) -> Option<Kind> {
    if d.len() >= 6 && (d.starts_with(b"070701") || d.starts_with(b"070702")) {
        return Some(Kind::Newc);
    }
    if d.len() >= 6 && d.starts_with(b"070707") {
        return Some(Kind::Odc);
    }
    if d.len() >= 2 {
        if u16::from_le_bytes([d[0], d[1]]) == BIN_MAGIC {
            return Some(Kind::BinLe);
        }
        if u16::from_be_bytes([d[0], d[1]]) == BIN_MAGIC {
            return Some(Kind::BinBe);
        }
    }
    None
}

/// True for the start of a cpio archive. The binary format's two-byte magic is confirmed by a
/// sane name length and the name's terminating NUL, so random data rarely passes.
pub(crate) fn detect(d: &[u8]) -> bool {
    match kind_at(d) {
        Some(Kind::Newc) => d.len() >= NEWC_LEN,
        Some(Kind::Odc) => d.len() >= ODC_LEN,
        Some(k @ (Kind::BinLe | Kind::BinBe)) => {
            if d.len() < BIN_LEN {
                return false;
            }
            let namesize = word(d, 20, k) as usize;
            (1..=4096).contains(&namesize) && d.get(BIN_LEN + namesize - 1) == Some(&0)
        }
        None => false,
    }
}

fn word(d: &[u8], at: usize, k: Kind) -> u16 {
    let b = [d[at], d[at + 1]];
    if k == Kind::BinLe {
        u16::from_le_bytes(b)
    } else {
        u16::from_be_bytes(b)
    }
}

fn num(field: &[u8], radix: u32) -> Option<u64> {
    if field.is_empty() {
        return None;
    }
    let mut v: u64 = 0;
    for &c in field {
        let digit = (c as char).to_digit(radix)?;
        v = v.checked_mul(u64::from(radix))?.checked_add(u64::from(digit))?;
    }
    Some(v)
}

struct Header {
    mode: u64,
    name_start: usize,
    namesize: usize,
    data_start: usize,
    filesize: usize,
    next: usize,
}

fn align(v: usize, to: usize) -> Option<usize> {
    v.checked_add(to - 1).map(|x| x / to * to)
}

/// Parses the header at `pos`; `None` when it is corrupt or the input is too short for the
/// header and its name (member data may be truncated: `next` then lies past the end).
fn header(d: &[u8], pos: usize) -> Option<Header> {
    let h = d.get(pos..)?;
    let kind = kind_at(h)?;
    let (mode, namesize, filesize, name_start, name_end, data_start, data_end) = match kind {
        Kind::Newc => {
            let h = h.get(..NEWC_LEN)?;
            let mode = num(&h[14..22], 16)?;
            let filesize = usize::try_from(num(&h[54..62], 16)?).ok()?;
            let namesize = usize::try_from(num(&h[94..102], 16)?).ok()?;
            let name_start = pos + NEWC_LEN;
            let name_end = name_start.checked_add(namesize)?;
            let data_start = align(name_end, 4)?;
            let data_end = data_start.checked_add(filesize)?;
            (mode, namesize, filesize, name_start, name_end, data_start, align(data_end, 4)?)
        }
        Kind::Odc => {
            let h = h.get(..ODC_LEN)?;
            let mode = num(&h[18..24], 8)?;
            let namesize = usize::try_from(num(&h[59..65], 8)?).ok()?;
            let filesize = usize::try_from(num(&h[65..76], 8)?).ok()?;
            let name_start = pos + ODC_LEN;
            let name_end = name_start.checked_add(namesize)?;
            let data_end = name_end.checked_add(filesize)?;
            (mode, namesize, filesize, name_start, name_end, name_end, data_end)
        }
        Kind::BinLe | Kind::BinBe => {
            if h.len() < BIN_LEN {
                return None;
            }
            let mode = u64::from(word(h, 6, kind));
            let namesize = word(h, 20, kind) as usize;
            let filesize = ((word(h, 22, kind) as usize) << 16) | word(h, 24, kind) as usize;
            let name_start = pos + BIN_LEN;
            let name_end = name_start + namesize;
            let data_start = align(name_end, 2)?;
            let data_end = data_start.checked_add(filesize)?;
            (mode, namesize, filesize, name_start, name_end, data_start, align(data_end, 2)?)
        }
    };
    if namesize == 0 || name_end > d.len() {
        return None;
    }
    Some(Header { mode, name_start, namesize, data_start, filesize, next: data_end })
}

pub(crate) fn walk(ctx: &mut Ctx<'_>, data: &[u8], path: &str, depth: u32) -> Flow {
    let mut pos = 0usize;
    loop {
        let Some(h) = header(data, pos) else {
            if pos < data.len() {
                ctx.error(path, "cpio: corrupt or truncated header");
            } else {
                ctx.error(path, "cpio: no trailer");
            }
            return Ok(());
        };
        // The name is NUL-terminated inside `namesize`.
        let raw = &data[h.name_start..h.name_start + h.namesize];
        let name = raw.split(|&b| b == 0).next().unwrap_or(raw);
        if name == b"TRAILER!!!" {
            return Ok(());
        }
        let member = join_path(path, name);
        ctx.count_entries(1, &member)?;
        if h.mode & S_IFMT == S_IFREG {
            let end = h.data_start.saturating_add(h.filesize);
            let content = data.get(h.data_start..end.min(data.len())).unwrap_or(&[]);
            ctx.entry(&member, content, depth)?;
            if end > data.len() {
                ctx.error(&member, "cpio: truncated member");
                return Ok(());
            }
        }
        if h.next <= pos {
            ctx.error(path, "cpio: corrupt header");
            return Ok(());
        }
        pos = h.next;
    }
}
