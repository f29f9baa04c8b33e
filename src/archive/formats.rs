//! zip, tar, compressed streams (gzip, bzip2, xz) and 7z, on top of pure-Rust crates.

use std::io::Cursor;

use super::{join_path, stream_content_name, Ctx, Flow, Format, Ratio, Stop, DECODER_MEMORY_LIMIT};

// ---------------------------------------------------------------------------------------------
// zip

pub(crate) fn walk_zip(ctx: &mut Ctx<'_>, data: &[u8], path: &str, depth: u32) -> Flow {
    let mut archive = match zip::ZipArchive::new(Cursor::new(data)) {
        Ok(a) => a,
        Err(e) => {
            // No usable central directory (truncated, or a damaged end record): read the local
            // headers one after the other instead, as far as they go.
            ctx.error(path, format_args!("zip: {e}; reading local headers"));
            return walk_zip_stream(ctx, data, path, depth);
        }
    };
    // The central directory tells the number of entries up front.
    ctx.count_entries(archive.len() as u64, path)?;
    let mut buf = ctx.take_buf(depth);
    let mut unpacked: u64 = 0;
    for i in 0..archive.len() {
        let name = archive.name_for_index(i).and_then(|n| n.ok()).map(|n| n.into_owned());
        let member = join_path(path, name.as_deref().unwrap_or("").as_bytes());
        let mut file = match archive.by_index(i) {
            Ok(f) => f,
            Err(e) => {
                // Encrypted or unsupported method: skip the member, keep walking.
                ctx.error(&member, format_args!("zip: {e}"));
                continue;
            }
        };
        if file.is_dir() || !file.is_file() {
            continue;
        }
        let size = file.size();
        let ratios = [
            Ratio { packed: file.compressed_size(), already: 0 },
            Ratio { packed: data.len() as u64, already: unpacked },
        ];
        ctx.check_declared(size, &ratios, &member)?;
        let res = ctx.read_member(&mut file, Some(size), &ratios, &member, &mut buf)?;
        drop(file);
        unpacked = unpacked.saturating_add(buf.len() as u64);
        if let Err(e) = res {
            // Unsupported method, bad CRC, truncated data: what was read is still scanned.
            ctx.error(&member, format_args!("zip: {e}"));
            if buf.is_empty() {
                continue;
            }
        }
        ctx.entry(&member, &buf, depth)?;
    }
    ctx.put_buf(depth, buf);
    Ok(())
}

fn walk_zip_stream(ctx: &mut Ctx<'_>, data: &[u8], path: &str, depth: u32) -> Flow {
    let mut cursor = Cursor::new(data);
    let mut buf = ctx.take_buf(depth);
    let mut unpacked: u64 = 0;
    loop {
        let before = cursor.position();
        let mut file = match zip::read::read_zipfile_from_stream(&mut cursor) {
            Ok(Some(f)) => f,
            Ok(None) => break,
            Err(e) => {
                ctx.error(path, format_args!("zip: {e}"));
                break;
            }
        };
        let member = join_path(path, file.name_raw());
        ctx.count_entries(1, &member)?;
        if file.is_file() {
            let size = file.size();
            let ratios = [
                Ratio { packed: file.compressed_size(), already: 0 },
                Ratio { packed: data.len() as u64, already: unpacked },
            ];
            ctx.check_declared(size, &ratios, &member)?;
            let res = ctx.read_member(&mut file, Some(size), &ratios, &member, &mut buf)?;
            drop(file);
            unpacked = unpacked.saturating_add(buf.len() as u64);
            if let Err(e) = res {
                ctx.error(&member, format_args!("zip: {e}"));
                ctx.entry(&member, &buf, depth)?;
                break;
            }
            ctx.entry(&member, &buf, depth)?;
        } else {
            drop(file);
        }
        if cursor.position() <= before {
            break;
        }
    }
    ctx.put_buf(depth, buf);
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// tar

/// ustar/GNU magic at 257, or an old (v7) header whose checksum is right.
pub(crate) fn tar_detect(d: &[u8]) -> bool {
    if d.len() < 512 {
        return false;
    }
    if &d[257..262] == b"ustar" {
        return true;
    }
    // v7: a name, and the checksum field (octal, 148..156) equal to the header's byte sum
    // with the field itself counted as spaces.
    if d[0] == 0 {
        return false;
    }
    // Leading spaces, octal digits, then NUL or space; parsed without allocating (this runs for
    // every file scanned).
    let mut stored: u32 = 0;
    let mut digits = 0;
    for &c in d[148..156].iter().skip_while(|&&c| c == b' ') {
        match c {
            b'0'..=b'7' => {
                stored = stored * 8 + u32::from(c - b'0');
                digits += 1;
            }
            0 | b' ' => break,
            _ => return false,
        }
    }
    if digits == 0 {
        return false;
    }
    let sum: u32 = d[..512].iter().enumerate().map(|(i, &b)| if (148..156).contains(&i) { 32 } else { u32::from(b) }).sum();
    sum == stored
}

pub(crate) fn walk_tar(ctx: &mut Ctx<'_>, data: &[u8], path: &str, depth: u32) -> Flow {
    let mut archive = tar::Archive::new(Cursor::new(data));
    let entries = match archive.entries_with_seek() {
        Ok(e) => e,
        Err(e) => {
            ctx.error(path, format_args!("tar: {e}"));
            return Ok(());
        }
    };
    for entry in entries {
        let entry = match entry {
            Ok(e) => e,
            Err(e) => {
                ctx.error(path, format_args!("tar: {e}"));
                return Ok(());
            }
        };
        let member = join_path(path, &entry.path_bytes());
        ctx.count_entries(1, &member)?;
        let kind = entry.header().entry_type();
        if !(kind.is_file() || kind.is_contiguous() || kind.is_gnu_sparse()) {
            continue;
        }
        // Members are scanned in place: a slice of the archive (the raw stored bytes).
        let start = usize::try_from(entry.raw_file_position()).unwrap_or(usize::MAX);
        let size = entry.header().entry_size().ok().and_then(|s| usize::try_from(s).ok()).unwrap_or(usize::MAX);
        let end = start.saturating_add(size);
        let content = data.get(start.min(data.len())..end.min(data.len())).unwrap_or(&[]);
        ctx.entry(&member, content, depth)?;
        if end > data.len() {
            ctx.error(&member, "tar: truncated member");
            return Ok(());
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// gzip, bzip2, xz: one entry, the decompressed stream

/// A decoder of one gzip member, bzip2 stream or xz stream, owning the rest of the input.
#[allow(clippy::large_enum_variant)] // one per stream, on the stack of one call
enum Decoder<'a> {
    Gz(flate2::bufread::GzDecoder<&'a [u8]>),
    Bz(bzip2::bufread::BzDecoder<&'a [u8]>),
    Xz(lzma_rust2::XzReader<&'a [u8]>),
}

impl<'a> Decoder<'a> {
    fn new(format: Format, input: &'a [u8]) -> Decoder<'a> {
        match format {
            Format::Gzip => Decoder::Gz(flate2::bufread::GzDecoder::new(input)),
            Format::Bzip2 => Decoder::Bz(bzip2::bufread::BzDecoder::new(input)),
            _ => {
                let kib = u32::try_from(DECODER_MEMORY_LIMIT / 1024).unwrap_or(u32::MAX);
                Decoder::Xz(lzma_rust2::XzReader::new_mem_limit(input, false, kib))
            }
        }
    }

    /// The input after this member (the decoders read exactly up to its end).
    fn into_rest(self) -> &'a [u8] {
        match self {
            Decoder::Gz(d) => d.into_inner(),
            Decoder::Bz(d) => d.into_inner(),
            Decoder::Xz(d) => d.into_inner(),
        }
    }
}

/// Concatenated members (gzip members, bzip2 or xz streams) read as one stream, as gzip(1),
/// bzip2(1) and xz(1) do. Every member costs a decoder set-up, so members are counted and the
/// reader stops after `max_members` (the caller turns that into the entry limit).
struct Members<'a> {
    format: Format,
    dec: Option<Decoder<'a>>,
    members: u64,
    max_members: u64,
    /// Stopped at `max_members`.
    capped: bool,
    /// Bytes after the last member that are neither another member nor zero padding.
    trailing: usize,
    /// The first gzip member's original file name.
    name: Option<Vec<u8>>,
}

impl<'a> Members<'a> {
    fn new(format: Format, data: &'a [u8], max_members: u64) -> Members<'a> {
        Members { format, dec: Some(Decoder::new(format, data)), members: 1, max_members, capped: false, trailing: 0, name: None }
    }

    fn starts_member(&self, d: &[u8]) -> bool {
        super::detect(d) == Some(self.format)
    }
}

impl std::io::Read for Members<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        loop {
            let Some(dec) = self.dec.as_mut() else { return Ok(0) };
            let n = match dec {
                Decoder::Gz(d) => {
                    let n = d.read(buf)?;
                    if self.name.is_none() && self.members == 1 {
                        self.name = d.header().and_then(|h| h.filename()).map(<[u8]>::to_vec);
                    }
                    n
                }
                Decoder::Bz(d) => d.read(buf)?,
                Decoder::Xz(d) => d.read(buf)?,
            };
            if n > 0 || buf.is_empty() {
                return Ok(n);
            }
            // This member is done: is another one next?
            let mut rest = self.dec.take().map(Decoder::into_rest).unwrap_or(&[]);
            if self.format == Format::Xz {
                // Stream padding: zero bytes in groups of four.
                while rest.len() >= 4 && rest[..4] == [0; 4] {
                    rest = &rest[4..];
                }
            }
            if !self.starts_member(rest) {
                // Tape-blocked archives end in zeros; anything else is trailing garbage, which
                // the tools ignore too (the container's own scan still sees it).
                self.trailing = if rest.iter().any(|&b| b != 0) { rest.len() } else { 0 };
                return Ok(0);
            }
            if self.members >= self.max_members {
                self.capped = true;
                self.members += 1;
                return Ok(0);
            }
            self.members += 1;
            self.dec = Some(Decoder::new(self.format, rest));
        }
    }
}

pub(crate) fn walk_stream(ctx: &mut Ctx<'_>, format: Format, data: &[u8], path: &str, depth: u32) -> Flow {
    ctx.count_entries(1, path)?;
    let mut buf = ctx.take_buf(depth);
    let ratio = &[Ratio { packed: data.len() as u64, already: 0 }];
    let default_name = stream_content_name(path);
    let default_member = join_path(path, default_name.as_bytes());
    // Members beyond the first count as entries: at most what the entry limit has left, plus
    // one to trip it.
    let budget = ctx.limits.max_entries.saturating_sub(ctx.stats.entries).saturating_add(1);
    let mut members = Members::new(format, data, budget);
    let res = ctx.read_member(&mut members, None, ratio, &default_member, &mut buf)?;
    ctx.count_entries(members.members - 1, path)?;
    if members.trailing > 0 {
        ctx.error(path, format_args!("{format}: {} bytes of trailing data ignored", members.trailing));
    }
    // The original name, when a gzip header has one (only its last component).
    let name = members
        .name
        .as_deref()
        .map(|f| f.rsplit(|&b| b == b'/').next().unwrap_or(f))
        .filter(|f| !f.is_empty())
        .map(|f| join_path(path, f))
        .unwrap_or(default_member);
    // Free the decoder (its dictionary) before descending into the content.
    drop(members);
    match res {
        Ok(()) => ctx.entry(&name, &buf, depth)?,
        Err(e) => {
            ctx.error(path, format_args!("{format}: {e}"));
            if !buf.is_empty() {
                ctx.entry(&name, &buf, depth)?;
            }
        }
    }
    ctx.put_buf(depth, buf);
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// 7z

pub(crate) fn walk_7z(ctx: &mut Ctx<'_>, data: &[u8], path: &str, depth: u32) -> Flow {
    let kib = usize::try_from(DECODER_MEMORY_LIMIT / 1024).unwrap_or(usize::MAX);
    let mut reader =
        match sevenz_rust2::ArchiveReader::new_with_memory_limit(Cursor::new(data), sevenz_rust2::Password::empty(), kib) {
            Ok(r) => r,
            Err(e) => {
                ctx.error(path, format_args!("7z: {e}"));
                return Ok(());
            }
        };
    // One scan thread decodes one archive.
    reader.set_thread_count(1);
    ctx.count_entries(reader.archive().files.len() as u64, path)?;
    let packed = data.len() as u64;
    let mut unpacked: u64 = 0;
    let mut buf = ctx.take_buf(depth);
    let mut stop: Option<Stop> = None;
    let res = reader.for_each_entries_with_decision(|entry, rd| {
        use sevenz_rust2::EntryDecision;
        if entry.is_directory() || entry.is_anti_item() || !entry.has_stream() {
            return Ok(EntryDecision::Continue);
        }
        let member = join_path(path, entry.name().as_bytes());
        let ratio = Ratio { packed, already: unpacked };
        let mut step = || -> Result<EntryDecision, Stop> {
            ctx.check_declared(entry.size(), &[ratio], &member)?;
            let res = ctx.read_member(rd, Some(entry.size()), &[ratio], &member, &mut buf)?;
            unpacked = unpacked.saturating_add(buf.len() as u64);
            match res {
                Ok(()) => {
                    ctx.entry(&member, &buf, depth)?;
                    Ok(EntryDecision::Continue)
                }
                Err(e) => {
                    ctx.error(&member, format_args!("7z: {e}"));
                    ctx.entry(&member, &buf, depth)?;
                    // The rest of a broken block cannot be trusted.
                    Ok(EntryDecision::SkipBlock)
                }
            }
        };
        match step() {
            Ok(d) => Ok(d),
            Err(s) => {
                stop = Some(s);
                Ok(EntryDecision::Stop)
            }
        }
    });
    if let Some(s) = stop {
        return Err(s);
    }
    if let Err(e) = res {
        ctx.error(path, format_args!("7z: {e}"));
    }
    ctx.put_buf(depth, buf);
    Ok(())
}
