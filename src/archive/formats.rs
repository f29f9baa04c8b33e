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
        let (size, ratio) = (file.size(), Ratio { packed: file.compressed_size(), already: 0 });
        ctx.check_declared(size, Some(ratio), &member)?;
        let res = ctx.read_member(&mut file, Some(size), Some(ratio), &member, &mut buf)?;
        drop(file);
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
            let (size, ratio) = (file.size(), Ratio { packed: file.compressed_size(), already: 0 });
            ctx.check_declared(size, Some(ratio), &member)?;
            let res = ctx.read_member(&mut file, Some(size), Some(ratio), &member, &mut buf)?;
            drop(file);
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
    let field = &d[148..156];
    let digits: Vec<u8> = field.iter().copied().skip_while(|&c| c == b' ').take_while(|c| (b'0'..=b'7').contains(c)).collect();
    if digits.is_empty() {
        return false;
    }
    let Some(stored) = std::str::from_utf8(&digits).ok().and_then(|s| u32::from_str_radix(s, 8).ok()) else {
        return false;
    };
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

pub(crate) fn walk_stream(ctx: &mut Ctx<'_>, format: Format, data: &[u8], path: &str, depth: u32) -> Flow {
    ctx.count_entries(1, path)?;
    let mut buf = ctx.take_buf(depth);
    let ratio = Some(Ratio { packed: data.len() as u64, already: 0 });
    let default_name = stream_content_name(path);
    let (res, name) = match format {
        Format::Gzip => {
            let mut dec = flate2::read::MultiGzDecoder::new(data);
            let res = ctx.read_member(&mut dec, None, ratio, &join_path(path, default_name.as_bytes()), &mut buf);
            // The original name, when the header has one (only its last component).
            let name = dec
                .header()
                .and_then(|h| h.filename())
                .map(|f| f.rsplit(|&b| b == b'/').next().unwrap_or(f).to_vec())
                .filter(|f| !f.is_empty());
            (res, name)
        }
        Format::Bzip2 => {
            let mut dec = bzip2::read::MultiBzDecoder::new(data);
            (ctx.read_member(&mut dec, None, ratio, &join_path(path, default_name.as_bytes()), &mut buf), None)
        }
        _ => {
            let kib = u32::try_from(DECODER_MEMORY_LIMIT / 1024).unwrap_or(u32::MAX);
            let mut dec = lzma_rust2::XzReader::new_mem_limit(data, true, kib);
            (ctx.read_member(&mut dec, None, ratio, &join_path(path, default_name.as_bytes()), &mut buf), None)
        }
    };
    let member = join_path(path, name.as_deref().unwrap_or(default_name.as_bytes()));
    match res? {
        Ok(()) => ctx.entry(&member, &buf, depth)?,
        Err(e) => {
            ctx.error(path, format_args!("{format}: {e}"));
            if !buf.is_empty() {
                ctx.entry(&member, &buf, depth)?;
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
            ctx.check_declared(entry.size(), Some(ratio), &member)?;
            let res = ctx.read_member(rd, Some(entry.size()), Some(ratio), &member, &mut buf)?;
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
