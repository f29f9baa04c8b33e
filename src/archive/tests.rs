//! Archive walker tests: real archives built in memory with the crates' writers (cpio by hand).

use std::io::{Cursor, Write};
use std::ops::ControlFlow;

use super::*;

pub(crate) const EICAR: &[u8] = br"X5O!P%@AP[4\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*";

// ---- writers ------------------------------------------------------------------------------

pub(crate) fn zip_with(entries: &[(&str, &[u8])], method: zip::CompressionMethod) -> Vec<u8> {
    let mut w = zip::ZipWriter::new(Cursor::new(Vec::new()));
    let opts = zip::write::SimpleFileOptions::default().compression_method(method).large_file(false);
    for (name, data) in entries {
        if name.ends_with('/') {
            w.add_directory(*name, opts).unwrap();
        } else {
            w.start_file(*name, opts).unwrap();
            w.write_all(data).unwrap();
        }
    }
    w.finish().unwrap().into_inner()
}

pub(crate) fn zip(entries: &[(&str, &[u8])]) -> Vec<u8> {
    zip_with(entries, zip::CompressionMethod::Deflated)
}

pub(crate) fn tar(entries: &[(&str, &[u8])]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for (name, data) in entries {
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_entry_type(tar::EntryType::Regular);
        b.append_data(&mut h, name, *data).unwrap();
    }
    b.into_inner().unwrap()
}

pub(crate) fn gz(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

pub(crate) fn bz2(data: &[u8]) -> Vec<u8> {
    let mut e = bzip2::write::BzEncoder::new(Vec::new(), bzip2::Compression::fast());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

pub(crate) fn xz(data: &[u8]) -> Vec<u8> {
    let mut e = lzma_rust2::XzWriter::new(Vec::new(), lzma_rust2::XzOptions::with_preset(1)).unwrap();
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

pub(crate) fn sevenz(entries: &[(&str, &[u8])]) -> Vec<u8> {
    let mut w = sevenz_rust2::ArchiveWriter::new(Cursor::new(Vec::new())).unwrap();
    for (name, data) in entries {
        w.push_archive_entry(sevenz_rust2::ArchiveEntry::new_file(name), Some(*data)).unwrap();
    }
    w.finish().unwrap().into_inner()
}

#[derive(Clone, Copy)]
pub(crate) enum CpioKind {
    Newc,
    Odc,
    BinLe,
    BinBe,
}

pub(crate) fn cpio(kind: CpioKind, entries: &[(&str, &[u8])]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut all: Vec<(&str, &[u8], u32)> = entries.iter().map(|(n, d)| (*n, *d, 0o100644)).collect();
    all.push(("TRAILER!!!", b"", 0));
    for (i, (name, data, mode)) in all.into_iter().enumerate() {
        let namesize = name.len() + 1;
        match kind {
            CpioKind::Newc => {
                let fields = [i as u32 + 1, mode, 0, 0, 1, 0, data.len() as u32, 0, 0, 0, 0, namesize as u32, 0];
                out.extend_from_slice(b"070701");
                for f in fields {
                    out.extend_from_slice(format!("{f:08X}").as_bytes());
                }
                out.extend_from_slice(name.as_bytes());
                out.push(0);
                while out.len() % 4 != 0 {
                    out.push(0);
                }
                out.extend_from_slice(data);
                while out.len() % 4 != 0 {
                    out.push(0);
                }
            }
            CpioKind::Odc => {
                out.extend_from_slice(b"070707");
                for (v, w) in [(0u64, 6), (i as u64 + 1, 6), (mode as u64, 6), (0, 6), (0, 6), (1, 6), (0, 6), (0, 11)] {
                    out.extend_from_slice(format!("{v:0w$o}").as_bytes());
                }
                out.extend_from_slice(format!("{namesize:06o}").as_bytes());
                out.extend_from_slice(format!("{:011o}", data.len()).as_bytes());
                out.extend_from_slice(name.as_bytes());
                out.push(0);
                out.extend_from_slice(data);
            }
            CpioKind::BinLe | CpioKind::BinBe => {
                let words: [u16; 13] = [
                    0o070707,
                    0,
                    i as u16 + 1,
                    mode as u16,
                    0,
                    0,
                    1,
                    0,
                    0,
                    0,
                    namesize as u16,
                    (data.len() >> 16) as u16,
                    data.len() as u16,
                ];
                for w in words {
                    out.extend_from_slice(&if matches!(kind, CpioKind::BinLe) { w.to_le_bytes() } else { w.to_be_bytes() });
                }
                out.extend_from_slice(name.as_bytes());
                out.push(0);
                if out.len() % 2 != 0 {
                    out.push(0);
                }
                out.extend_from_slice(data);
                if out.len() % 2 != 0 {
                    out.push(0);
                }
            }
        }
    }
    out
}

// ---- helpers ------------------------------------------------------------------------------

type Visited = Vec<(String, Vec<u8>)>;

fn walk_all(data: &[u8], name: &str, limits: &Limits) -> (Visited, Result<WalkStats, LimitExceeded>) {
    let mut seen = Vec::new();
    let res = walk(data, name, limits, &mut |p, c| {
        seen.push((p.to_string(), c.to_vec()));
        ControlFlow::Continue(())
    });
    (seen, res)
}

/// The path of the first member whose content contains EICAR (stops there).
fn find_eicar(data: &[u8], name: &str) -> Option<String> {
    let mut found = None;
    let res = walk(data, name, &Limits::default(), &mut |p, c| {
        if c.windows(EICAR.len()).any(|w| w == EICAR) {
            found = Some(p.to_string());
            return ControlFlow::Break(());
        }
        ControlFlow::Continue(())
    });
    let stats = res.expect("no limit");
    assert_eq!(stats.stopped, found.is_some());
    found
}

fn pseudo_random(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

// ---- detection ------------------------------------------------------------------------------

#[test]
fn detects_formats_from_content() {
    let e: &[(&str, &[u8])] = &[("a", b"hello")];
    assert_eq!(detect(&zip(e)), Some(Format::Zip));
    assert_eq!(detect(&zip(&[])), Some(Format::Zip));
    assert_eq!(detect(&tar(e)), Some(Format::Tar));
    assert_eq!(detect(&gz(b"x")), Some(Format::Gzip));
    assert_eq!(detect(&bz2(b"x")), Some(Format::Bzip2));
    assert_eq!(detect(&bz2(b"")), Some(Format::Bzip2));
    assert_eq!(detect(&xz(b"x")), Some(Format::Xz));
    assert_eq!(detect(&sevenz(e)), Some(Format::SevenZ));
    for k in [CpioKind::Newc, CpioKind::Odc, CpioKind::BinLe, CpioKind::BinBe] {
        assert_eq!(detect(&cpio(k, e)), Some(Format::Cpio));
    }
    assert_eq!(detect(b""), None);
    assert_eq!(detect(EICAR), None);
    assert_eq!(detect(b"BZh9 is not enough"), None);
    assert_eq!(detect(&[0u8; 4096]), None);
    assert_eq!(detect(&pseudo_random(4096, 7)), None);
}

#[test]
fn detects_v7_tar_by_checksum() {
    let mut t = tar(&[("a.txt", b"hello")]);
    // Turn the GNU header into a v7 one: clear the magic, recompute the checksum.
    t[257..265].fill(0);
    t[148..156].fill(b' ');
    let sum: u32 = t[..512].iter().map(|&b| u32::from(b)).sum();
    t[148..155].copy_from_slice(format!("{sum:06o}\0").as_bytes());
    assert_eq!(detect(&t), Some(Format::Tar));
    t[0] ^= 1;
    assert_eq!(detect(&t), None);
}

#[test]
fn non_archives_are_not_walked() {
    let (seen, res) = walk_all(EICAR, "eicar.com", &Limits::default());
    assert!(seen.is_empty());
    assert_eq!(res.unwrap(), WalkStats::default());
}

// ---- nested detections -----------------------------------------------------------------------

#[test]
fn eicar_in_zip_tar_gz_three_levels() {
    let inner = gz(&tar(&[("readme.txt", b"hi"), ("sub/eicar.com", EICAR)]));
    let outer = zip(&[("dir/", b""), ("dir/notes.txt", b"clean"), ("dir/inner.tar.gz", &inner)]);
    assert_eq!(find_eicar(&outer, "outer.zip").as_deref(), Some("outer.zip/dir/inner.tar.gz/inner.tar/sub/eicar.com"));
    let (seen, res) = walk_all(&outer, "outer.zip", &Limits::default());
    let stats = res.unwrap();
    let paths: Vec<&str> = seen.iter().map(|(p, _)| p.as_str()).collect();
    assert_eq!(
        paths,
        [
            "outer.zip/dir/notes.txt",
            "outer.zip/dir/inner.tar.gz/inner.tar/readme.txt",
            "outer.zip/dir/inner.tar.gz/inner.tar/sub/eicar.com",
            "outer.zip/dir/inner.tar.gz/inner.tar",
            "outer.zip/dir/inner.tar.gz",
        ]
    );
    assert_eq!(seen[2].1, EICAR);
    assert_eq!(stats.archives, 3);
    assert_eq!(stats.max_depth, 3);
    assert_eq!(stats.errors, 0, "{:?}", stats.first_error);
}

#[test]
fn eicar_in_7z_zip_and_tar_bz2_xz() {
    let z = zip_with(&[("e.txt", EICAR)], zip::CompressionMethod::Stored);
    let s = sevenz(&[("clean.bin", b"abc"), ("deep/x.zip", &z)]);
    assert_eq!(find_eicar(&s, "a.7z").as_deref(), Some("a.7z/deep/x.zip/e.txt"));

    let tb = bz2(&tar(&[("e", EICAR)]));
    let outer = tar(&[("pkg/data.tar.bz2", &tb)]);
    assert_eq!(find_eicar(&outer, "o.tar").as_deref(), Some("o.tar/pkg/data.tar.bz2/data.tar/e"));

    let tx = xz(&tar(&[("e", EICAR)]));
    assert_eq!(find_eicar(&tx, "b.txz").as_deref(), Some("b.txz/b.tar/e"));
    let s2 = sevenz(&[("in.tar.xz", &tx)]);
    assert_eq!(find_eicar(&s2, "").as_deref(), Some("in.tar.xz/in.tar/e"));
}

#[test]
fn eicar_in_every_cpio_variant() {
    for k in [CpioKind::Newc, CpioKind::Odc, CpioKind::BinLe, CpioKind::BinBe] {
        let inner = zip(&[("odd-length-name", EICAR)]);
        let c = cpio(k, &[("a", b"x"), ("bin/odd", b"abc"), ("lib/in.zip", &inner)]);
        assert_eq!(find_eicar(&c, "r.cpio").as_deref(), Some("r.cpio/lib/in.zip/odd-length-name"));
        let (seen, res) = walk_all(&c, "r.cpio", &Limits::default());
        assert_eq!(res.unwrap().errors, 0);
        assert_eq!(seen[0], ("r.cpio/a".to_string(), b"x".to_vec()));
        assert_eq!(seen[1], ("r.cpio/bin/odd".to_string(), b"abc".to_vec()));
    }
    // A gzip-compressed initramfs-style cpio.
    let c = gz(&cpio(CpioKind::Newc, &[("init", EICAR)]));
    assert_eq!(find_eicar(&c, "initrd.img").as_deref(), Some("initrd.img/data/init"));
}

#[test]
fn gzip_original_name_is_used() {
    let mut e = flate2::GzBuilder::new().filename("../../etc/eicar.com").write(Vec::new(), flate2::Compression::fast());
    e.write_all(EICAR).unwrap();
    let g = e.finish().unwrap();
    assert_eq!(find_eicar(&g, "x.gz").as_deref(), Some("x.gz/eicar.com"));
    assert_eq!(find_eicar(&gz(EICAR), "eicar.com.gz").as_deref(), Some("eicar.com.gz/eicar.com"));
    assert_eq!(find_eicar(&bz2(EICAR), "noext").as_deref(), Some("noext/data"));
    // Concatenated xz and bzip2 streams too, xz with stream padding.
    let mut x = xz(b"first ");
    x.extend([0u8; 8]);
    x.extend(xz(EICAR));
    assert_eq!(find_eicar(&x, "t.xz").as_deref(), Some("t.xz/t"));
    let (seen, res) = walk_all(&x, "t.xz", &Limits::default());
    let stats = res.unwrap();
    assert_eq!((stats.entries, stats.errors), (2, 0));
    assert_eq!(seen[0].1, [&b"first "[..], EICAR].concat());
    let mut b = bz2(b"first ");
    b.extend(bz2(EICAR));
    assert_eq!(find_eicar(&b, "t.bz2").as_deref(), Some("t.bz2/t"));
    // Trailing zeros (tape blocking) are fine; trailing garbage is an error, content still seen.
    let mut g = gz(EICAR);
    g.extend([0u8; 1000]);
    let (seen, res) = walk_all(&g, "g.gz", &Limits::default());
    assert_eq!((seen.len(), res.unwrap().errors), (1, 0));
    g.extend(b"garbage");
    let (seen, res) = walk_all(&g, "g.gz", &Limits::default());
    assert_eq!((seen.len(), res.unwrap().errors), (1, 1));
    assert_eq!(seen[0].1, EICAR);
    // Concatenated gzip members are one stream.
    let mut two = gz(b"first part ");
    two.extend(gz(EICAR));
    assert_eq!(find_eicar(&two, "t.gz").as_deref(), Some("t.gz/t"));
}

#[test]
fn clean_archives_visit_every_member_and_find_nothing() {
    let members: &[(&str, &[u8])] = &[("a.txt", b"alpha"), ("b/c.txt", b"gamma"), ("empty", b"")];
    let archives = [
        zip(members),
        tar(members),
        gz(&tar(members)),
        bz2(&tar(members)),
        xz(&tar(members)),
        sevenz(members),
        cpio(CpioKind::Newc, members),
    ];
    for a in &archives {
        assert_eq!(find_eicar(a, "x"), None);
        let (seen, res) = walk_all(a, "x", &Limits::default());
        let stats = res.unwrap();
        assert_eq!(stats.errors, 0, "{:?}", stats.first_error);
        let leaves: Vec<&(String, Vec<u8>)> = seen.iter().filter(|(_, c)| detect(c).is_none()).collect();
        assert_eq!(leaves.len(), 3, "{:?}", seen.iter().map(|s| &s.0).collect::<Vec<_>>());
        assert!(leaves.iter().any(|(p, c)| p.ends_with("b/c.txt") && c == b"gamma"));
    }
}

#[test]
fn visitor_break_stops_the_walk() {
    let t = tar(&[("1", b"a"), ("2", b"b"), ("3", b"c")]);
    let mut n = 0;
    let stats = walk(&t, "t", &Limits::default(), &mut |_, _| {
        n += 1;
        if n == 2 {
            ControlFlow::Break(())
        } else {
            ControlFlow::Continue(())
        }
    })
    .unwrap();
    assert_eq!(n, 2);
    assert!(stats.stopped);
}

#[test]
fn hostile_names_are_printable() {
    let t = tar(&[("evil\nname\u{1b}[2J.com", EICAR)]);
    assert_eq!(find_eicar(&t, "t.tar").as_deref(), Some("t.tar/evil\\nname\\u{1b}[2J.com"));
    assert_eq!(join_path("a", b"/abs/./x"), "a/abs/./x");
    assert_eq!(join_path("a", b"./rel"), "a/rel");
    assert_eq!(join_path("a", b"\xff\xfe"), "a/\u{fffd}\u{fffd}");
    assert_eq!(join_path("", b""), "[unnamed]");
    assert_eq!(stream_content_name("a/b.TGZ"), "b.tar");
    assert_eq!(stream_content_name("x"), "data");
    assert_eq!(stream_content_name(".gz"), "data");
}

// ---- limits -------------------------------------------------------------------------------------

fn limit_of(res: Result<WalkStats, LimitExceeded>) -> LimitExceeded {
    match res {
        Err(l) => l,
        Ok(s) => panic!("no limit tripped: {s:?}"),
    }
}

#[test]
fn ratio_limit_trips_on_100_mib_of_zeros() {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    let zeros = vec![0u8; 1 << 20];
    for _ in 0..100 {
        e.write_all(&zeros).unwrap();
    }
    let bomb = e.finish().unwrap();
    assert!(bomb.len() < 1 << 20);
    let (seen, res) = walk_all(&bomb, "zeros.gz", &Limits::default());
    let l = limit_of(res);
    assert_eq!(l.kind, LimitKind::Ratio);
    assert_eq!(l.kind.threat_name(), "ArchiveBomb.CompressionRatio");
    assert_eq!(l.limit, 250);
    assert!(l.actual > 250);
    assert_eq!(l.path, "zeros.gz/zeros");
    assert!(seen.is_empty());
    // Decompression stopped at the limit: nowhere near 100 MiB was produced. Checked through a
    // walk whose total limit would have tripped instead had it gone on.
    let small = Limits { max_total_bytes: (bomb.len() as u64) * 250 + 2, ..Limits::default() };
    assert_eq!(limit_of(walk_all(&bomb, "z", &small).1).kind, LimitKind::Ratio);
}

#[test]
fn ratio_limit_spares_small_files_and_checks_zip_declared_sizes() {
    // 512 KiB of zeros compresses ~1000:1 but is under the minimum size.
    let g = gz(&vec![0u8; 512 << 10]);
    assert!(walk_all(&g, "g", &Limits::default()).1.is_ok());
    // A zip member that declares 2 MiB from a few KiB trips before being inflated.
    let z = zip(&[("ok", b"fine"), ("zeros", &vec![0u8; 2 << 20])]);
    let (seen, res) = walk_all(&z, "z.zip", &Limits::default());
    let l = limit_of(res);
    assert_eq!((l.kind, l.path.as_str()), (LimitKind::Ratio, "z.zip/zeros"));
    assert_eq!(seen.len(), 1);
    // Same for 7z, whose ratio is over the whole archive.
    let s = sevenz(&[("zeros", &vec![0u8; 2 << 20])]);
    assert_eq!(limit_of(walk_all(&s, "s.7z", &Limits::default()).1).kind, LimitKind::Ratio);
    // And bzip2 / xz streams.
    for b in [bz2(&vec![0u8; 2 << 20]), xz(&vec![0u8; 2 << 20])] {
        assert_eq!(limit_of(walk_all(&b, "b", &Limits::default()).1).kind, LimitKind::Ratio);
    }
}

fn nest_zip(levels: usize) -> Vec<u8> {
    let mut cur = zip(&[("eicar.com", EICAR)]);
    for i in 1..levels {
        cur = zip(&[(&format!("l{i}.zip"), &cur)]);
    }
    cur
}

#[test]
fn depth_limit() {
    let limits = Limits::default();
    // 10 levels: allowed, EICAR found at the bottom.
    let ok = nest_zip(10);
    let found = find_eicar(&ok, "top.zip").unwrap();
    assert_eq!(found.matches('/').count(), 10);
    // 11 levels: the 11th archive is not opened.
    let deep = nest_zip(11);
    let (seen, res) = walk_all(&deep, "top.zip", &limits);
    let l = limit_of(res);
    assert_eq!((l.kind, l.limit, l.actual), (LimitKind::Depth, 10, 11));
    assert_eq!(l.kind.threat_name(), "ArchiveBomb.Depth");
    assert!(l.path.ends_with("/l1.zip"), "{}", l.path);
    assert!(seen.iter().all(|(_, c)| c != EICAR));
    // Depth also counts compressed streams: a .tar.gz is two levels.
    let tgz = gz(&tar(&[("e", EICAR)]));
    let one = Limits { max_depth: 1, ..Limits::default() };
    assert_eq!(limit_of(walk_all(&tgz, "a.tgz", &one).1).kind, LimitKind::Depth);
    let zero = Limits { max_depth: 0, ..Limits::default() };
    assert_eq!(limit_of(walk_all(&tgz, "a.tgz", &zero).1).kind, LimitKind::Depth);
}

#[test]
fn entry_limit() {
    let names: Vec<String> = (0..150).map(|i| format!("f{i}")).collect();
    let members: Vec<(&str, &[u8])> = names.iter().map(|n| (n.as_str(), &b"x"[..])).collect();
    let limits = Limits { max_entries: 100, ..Limits::default() };
    for a in [zip(&members), tar(&members), sevenz(&members), cpio(CpioKind::Newc, &members)] {
        let (seen, res) = walk_all(&a, "many", &limits);
        let l = limit_of(res);
        assert_eq!((l.kind, l.limit), (LimitKind::Entries, 100));
        assert!(l.actual > 100);
        assert_eq!(l.kind.threat_name(), "ArchiveBomb.EntryCount");
        assert!(seen.len() <= 100);
    }
    // Counted across levels: 60 in each of two nested tars.
    let m60 = &members[..60];
    let t = tar(&[("a.tar", &tar(m60)), ("b.tar", &tar(m60))]);
    assert_eq!(limit_of(walk_all(&t, "t", &limits).1).kind, LimitKind::Entries);
    assert!(walk_all(&tar(m60), "t", &limits).1.is_ok());
}

#[test]
fn total_bytes_limit() {
    // Incompressible members so that the ratio limit stays out of the way.
    let r1 = pseudo_random(1 << 20, 1);
    let r2 = pseudo_random(1 << 20, 2);
    let r3 = pseudo_random(1 << 20, 3);
    let limits = Limits { max_total_bytes: (2 << 20) + 1000, ..Limits::default() };
    let z = zip(&[("1", &r1), ("2", &r2), ("3", &r3)]);
    let (seen, res) = walk_all(&z, "z.zip", &limits);
    let l = limit_of(res);
    assert_eq!((l.kind, l.path.as_str()), (LimitKind::TotalBytes, "z.zip/3"));
    assert_eq!(l.kind.threat_name(), "ArchiveBomb.TotalSize");
    assert_eq!(seen.len(), 2);
    // A stream has no declared size: it is cut while decompressing.
    let g = gz(&[r1.as_slice(), &r2, &r3].concat());
    let (_, res) = walk_all(&g, "g.gz", &limits);
    let l = limit_of(res);
    assert_eq!(l.kind, LimitKind::TotalBytes);
    assert!(l.actual <= limits.max_total_bytes + 1);
    // Everything below the limit passes.
    assert!(walk_all(&zip(&[("1", &r1)]), "z", &limits).1.is_ok());
}

// ---- hostile input ------------------------------------------------------------------------

fn samples() -> Vec<(&'static str, Vec<u8>)> {
    let leaf: &[(&str, &[u8])] = &[("a.txt", b"some text here"), ("e.com", EICAR)];
    let t = tar(leaf);
    vec![
        ("zip", zip(&[("x.tar", &t), ("y", b"yy")])),
        ("zip-stored", zip_with(&[("x.tar", &t)], zip::CompressionMethod::Stored)),
        ("zip-bzip2", zip_with(&[("x.tar", &t)], zip::CompressionMethod::Bzip2)),
        ("tar", t.clone()),
        ("tar.gz", gz(&t)),
        ("tar.bz2", bz2(&t)),
        ("tar.xz", xz(&t)),
        ("7z", sevenz(&[("x.tar", &t), ("z", b"zz")])),
        ("cpio-newc", cpio(CpioKind::Newc, leaf)),
        ("cpio-odc", cpio(CpioKind::Odc, leaf)),
        ("cpio-bin", cpio(CpioKind::BinLe, leaf)),
        ("cpio-bin-be", cpio(CpioKind::BinBe, leaf)),
    ]
}

#[test]
fn samples_are_valid() {
    for (name, s) in samples() {
        assert!(find_eicar(&s, name).is_some(), "{name}");
        let (_, res) = walk_all(&s, name, &Limits::default());
        assert_eq!(res.unwrap().errors, 0, "{name}");
    }
}

#[test]
fn truncated_archives_never_panic() {
    for (name, s) in samples() {
        let step = (s.len() / 150).max(1);
        let mut cut = 0;
        while cut < s.len() {
            let _ = walk_all(&s[..cut], name, &Limits::default());
            cut += step;
        }
        // The last bytes one by one (end records live there).
        for cut in s.len().saturating_sub(64)..s.len() {
            let _ = walk_all(&s[..cut], name, &Limits::default());
        }
    }
}

#[test]
fn truncated_archives_are_scanned_as_far_as_they_go() {
    let pad = pseudo_random(4000, 9);
    let leaf: &[(&str, &[u8])] = &[("e.com", EICAR), ("pad", &pad)];
    for (name, a) in [
        ("tar", tar(leaf)),
        ("zip", zip(leaf)),
        ("gz", gz(&tar(leaf))),
        ("cpio", cpio(CpioKind::Newc, leaf)),
    ] {
        let cut = &a[..a.len() - 2000];
        assert!(find_eicar(cut, name).is_some(), "{name}");
        let (_, res) = walk_all(cut, name, &Limits::default());
        assert!(res.unwrap().errors > 0, "{name}");
    }
}

#[test]
fn corrupted_archives_never_panic() {
    for (name, s) in samples() {
        let step = (s.len() / 100).max(1);
        let mut at = 0;
        while at < s.len() {
            for v in [0x00u8, 0xff, 0x7f] {
                let mut c = s.clone();
                c[at] = v;
                let _ = walk_all(&c, name, &Limits::default());
            }
            at += step;
        }
        // Random garbage after each format's magic.
        for seed in 1..20 {
            let mut c = s[..s.len().min(16)].to_vec();
            c.extend(pseudo_random(600, seed));
            let _ = walk_all(&c, name, &Limits::default());
        }
    }
}

#[test]
fn hostile_header_lengths_are_bounded() {
    // cpio newc member claiming 4 GiB.
    let mut c = cpio(CpioKind::Newc, &[("big", b"tiny")]);
    c[54..62].copy_from_slice(b"FFFFFFFF");
    let (seen, res) = walk_all(&c, "c", &Limits::default());
    assert!(res.unwrap().errors > 0);
    assert!(seen.iter().all(|(_, d)| d.len() < 200));
    // ... and a name size of 4 GiB.
    let mut c = cpio(CpioKind::Newc, &[("big", b"tiny")]);
    c[94..102].copy_from_slice(b"FFFFFFFF");
    assert!(walk_all(&c, "c", &Limits::default()).1.unwrap().errors > 0);
    // odc with 11 octal digits of size.
    let mut c = cpio(CpioKind::Odc, &[("big", b"tiny")]);
    c[65..76].copy_from_slice(b"77777777777");
    assert!(walk_all(&c, "c", &Limits::default()).1.unwrap().errors > 0);
    // zip whose central directory claims a 4 GiB member: the declared size trips the limit.
    let mut z = zip_with(&[("m", b"abc")], zip::CompressionMethod::Stored);
    let cd = z.windows(4).rposition(|w| w == b"PK\x01\x02").unwrap();
    z[cd + 24..cd + 28].copy_from_slice(&u32::MAX.to_le_bytes());
    let _ = walk_all(&z, "z", &Limits::default());
    // tar with a huge size field.
    let mut t = tar(&[("m", b"abc")]);
    t[124..136].copy_from_slice(b"77777777777\0");
    t[148..156].fill(b' ');
    let sum: u32 = t[..512].iter().map(|&b| u32::from(b)).sum();
    t[148..155].copy_from_slice(format!("{sum:06o}\0").as_bytes());
    let (_, res) = walk_all(&t, "t", &Limits::default());
    assert!(res.unwrap().errors > 0);
    // A zip bomb whose members all point at the same data (overlapping entries) stays bounded
    // by the declared sizes and the entry limit: nothing to assert but termination.
}

#[test]
fn encrypted_zip_member_is_skipped_not_fatal() {
    let mut w = zip::ZipWriter::new(Cursor::new(Vec::new()));
    let plain = zip::write::SimpleFileOptions::default();
    w.start_file("clean.txt", plain).unwrap();
    w.write_all(b"hello").unwrap();
    w.start_file("e.com", plain).unwrap();
    w.write_all(EICAR).unwrap();
    let mut z = w.finish().unwrap().into_inner();
    // Set the "encrypted" flag on the first member in both headers (ZipCrypto without key).
    z[6] |= 1;
    let cd = z.windows(4).position(|w| w == b"PK\x01\x02").unwrap();
    z[cd + 8] |= 1;
    let (seen, res) = walk_all(&z, "z", &Limits::default());
    let stats = res.unwrap();
    assert_eq!(stats.errors, 1, "{:?}", stats.first_error);
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].1, EICAR);
}

// ---- Debian's clamav-testfiles --------------------------------------------------------------

/// Walks the archives of Debian's `clamav-testfiles` package when it is installed
/// (`apt-get install clamav-testfiles`): each of those that holds `clam.exe` must give it back
/// byte for byte. Without the package the test only says so.
#[test]
fn clamav_testfiles() {
    let dir = std::path::Path::new("/usr/share/clamav-testfiles");
    let Ok(clam_exe) = std::fs::read(dir.join("clam.exe")) else {
        // Under CI a missing real component fails (`cargo xtask deps` installs it).
        assert!(std::env::var("CI").as_deref() != Ok("true"), "CI=true: clamav-testfiles is not installed");
        eprintln!("NOT RUN: clamav-testfiles not installed (apt-get install clamav-testfiles)");
        return;
    };
    // Archive formats this walker handles, and what they hold.
    let expected = [
        ("clam.7z", Format::SevenZ),
        ("clam.bin-be.cpio", Format::Cpio),
        ("clam.bin-le.cpio", Format::Cpio),
        ("clam.newc.cpio", Format::Cpio),
        ("clam.odc.cpio", Format::Cpio),
        ("clam.bz2.zip", Format::Zip),
        ("clam.d64.zip", Format::Zip),
        ("clam.zip", Format::Zip),
        ("clam.tar.gz", Format::Gzip),
        ("clam.exe.bz2", Format::Bzip2),
        ("clam_cache_emax.tgz", Format::Gzip),
    ];
    let mut report = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let entry = entry.unwrap();
        let name = entry.file_name().to_string_lossy().into_owned();
        let data = std::fs::read(entry.path()).unwrap();
        let (seen, res) = walk_all(&data, &name, &Limits::default());
        let has_clam = seen.iter().any(|(_, c)| *c == clam_exe);
        let line = match &res {
            Ok(s) => format!(
                "{name}: {:?} entries={} visited={} errors={} clam.exe={has_clam} {:?}",
                detect(&data).map(Format::as_str),
                s.entries,
                s.visited,
                s.errors,
                s.first_error
            ),
            Err(l) => format!("{name}: {l}"),
        };
        report.push(line);
        if name == "clam_cache_emax.tgz" {
            // Made to test recursion limits: .tgz files nested deeper than 10 levels (each .tgz
            // is two: gzip, then tar).
            assert_eq!(res.as_ref().map_err(|l| l.kind), Err(LimitKind::Depth));
            continue;
        }
        if let Some((_, fmt)) = expected.iter().find(|(n, _)| *n == name) {
            assert_eq!(detect(&data), Some(*fmt), "{name}");
            let stats = res.unwrap_or_else(|l| panic!("{name}: {l}"));
            assert_eq!(stats.errors, 0, "{name}: {:?}", stats.first_error);
            assert!(has_clam, "{name}: clam.exe not found among {:?}", seen.iter().map(|s| &s.0).collect::<Vec<_>>());
        }
    }
    report.sort();
    eprintln!("{}", report.join("\n"));
}

/// A non-recursive zip bomb: many central directory entries share one compressed kernel.
/// Each member alone stays under the ratio, the archive as a whole does not.
#[test]
fn overlapping_zip_members_trip_the_archive_ratio() {
    let mut kernel = vec![0u8; 2 << 20];
    kernel.extend(pseudo_random(9000, 5));
    let z = zip(&[("k", &kernel)]);
    let cd = z.windows(4).position(|w| w == b"PK\x01\x02").unwrap();
    let eocd = z.windows(4).rposition(|w| w == b"PK\x05\x06").unwrap();
    let entry = &z[cd..eocd];
    assert_eq!(entry.len(), 46 + 1, "one central entry named k");
    let copies = 40u16;
    let mut bomb = z[..cd].to_vec();
    for i in 0..copies {
        bomb.extend_from_slice(entry);
        let at = bomb.len() - 1;
        bomb[at] = b'A' + i as u8; // distinct one-letter names
    }
    let mut end = z[eocd..].to_vec();
    end[8..10].copy_from_slice(&copies.to_le_bytes());
    end[10..12].copy_from_slice(&copies.to_le_bytes());
    end[12..16].copy_from_slice(&(u32::from(copies) * entry.len() as u32).to_le_bytes());
    bomb.extend(end);
    let member_ratio = kernel.len() as u64 / (cd as u64);
    assert!(member_ratio < 250, "{member_ratio}");
    let (seen, res) = walk_all(&bomb, "b.zip", &Limits::default());
    let l = limit_of(res);
    assert_eq!((l.kind, l.path.as_str()), (LimitKind::Ratio, "b.zip/B"));
    assert_eq!(seen.len(), 1);
}

#[test]
fn pathological_inputs_finish_quickly() {
    use std::time::{Duration, Instant};
    let mut cases: Vec<(&str, Vec<u8>)> = Vec::new();
    // Thousands of end-of-central-directory records, each a candidate for the zip reader.
    let mut z = b"PK\x03\x04".to_vec();
    let mut eocd = b"PK\x05\x06".to_vec();
    eocd.extend([0u8; 18]);
    for _ in 0..50_000 {
        z.extend_from_slice(&eocd);
    }
    cases.push(("many-eocd", z));
    // Same with zip64 locators.
    let mut z = b"PK\x03\x04".to_vec();
    for _ in 0..50_000 {
        z.extend_from_slice(b"PK\x06\x07\0\0\0\0\0\0\0\0\0\0\0\0\x01\0\0\0");
        z.extend_from_slice(&eocd);
    }
    cases.push(("many-zip64", z));
    // Local headers back to back, all empty members.
    let one = zip_with(&[("", b"")], zip::CompressionMethod::Stored);
    let cd = one.windows(4).position(|w| w == b"PK\x01\x02").unwrap();
    cases.push(("many-local", one[..cd].repeat(50_000)));
    // cpio headers of empty files, no trailer.
    let c = cpio(CpioKind::Newc, &[("e", b"")]);
    cases.push(("many-cpio", c[..c.len() - 124].repeat(50_000)));
    // gzip members of nothing.
    cases.push(("many-gzip", gz(b"").repeat(50_000)));
    cases.push(("many-gzip-1", gz(b"a").repeat(20_000)));
    cases.push(("many-bzip2", bz2(b"a").repeat(20_000)));
    cases.push(("many-xz", xz(b"a").repeat(20_000)));
    let limits = Limits { max_entries: 5000, ..Limits::default() };
    for (name, data) in cases {
        let t = Instant::now();
        let (_, res) = walk_all(&data, name, &limits);
        let took = t.elapsed();
        eprintln!("{name}: {} bytes, {took:?}, {:?}", data.len(), res.as_ref().map(|s| (s.entries, s.errors)));
        assert!(took < Duration::from_secs(20), "{name}: {took:?}");
        if name.starts_with("many-") && name != "many-eocd" && name != "many-zip64" {
            assert_eq!(res.map_err(|l| l.kind), Err(LimitKind::Entries), "{name}");
        }
    }
}

/// Found by fuzzing: a zip member with PPMd compression (method 98) whose header asks for a
/// large model took seconds per member. PPMd is not decoded: the member is an error.
#[test]
fn fuzz_regression_zip_ppmd_is_not_decoded() {
    const INPUT: &[u8] = b"\x50\x4b\x03\x04\x14\x00\x00\x00\x62\x00\xd2\x45\x56\x5d\xfd\x3c\x07\xef\x5c\x01\x00\x00\x20\x02\
      \x00\x00\x08\x00\x00\x00\x63\x6c\x09\xe9\xe9\x3e\x3e\x3e\x3e\x3e\x3e\x3e\x3e\x3e\x3e\x3e\x3e\x3e\
      \x3e\x3e\x3e\x3e\x3e\x3e\x3e\x3e\x3e\x3e\x3e\x3e\x3e\x3e\x3e\x3e\x3e\x3e\x3e\x3e\x3e\x3e\x3e\x3e\
      \x3e\x3e\x3e\x3e\x3e\x3e\x3e\x3e\x3e\x3e\x3e\x3e\x3e\x3e\x3e\x3e\x3e\x3e\x3e\x3e\x3e\x3e\x3e\x3e\
      \x3e\x3e\x3e\x3e\x3e\x3e\x3e\x3e\x3e\x3e\x3e\x3e\x3e\x3e\x3e\x3e\x3e\x3e\x3e\x3e\x3e\x3e\x3e\x3e\
      \x3e\x3e\x3e\x3e\x3e\x3e\x3e\x3e\x3e\x3e\x3e\x3e\x3e\x3e\x3e\x05\x3e\x3e\xe9\xe9\xe9\xe9\xe9\xe9\
      \xe9\xe9\xe9\xe9\xe9\xe9\xe9\xe9\xe9\xe9\xe9\xe9\xe9\xe9\xe9\xe9\xe9\xe9\xe9\xe9\xe9\xe9\xe9\xe9\
      \xe9\x2f\xe9\xe9\xe9\xe9\xe9\xe9\xe9\xe9\xe9\xe9\xe9\xe9\xe9\xe9\xe9\xe9\xe9\xe9\xe9\xe9\xe9\xe9\
      \xe9\xe9\xe9\xe9\xe9\xe9\xfe\xe9\xe9\xe9\xe9\x50\x4b\x03\x04\x15\x00\x02\x00\x09\x00\xd2\x4e\x56\
      \x5d\xfd\x3c\x07\xef\x10\x01\x00\x20\x02\x00\x00\x00\x08\x00\x00\x00\x63\x6c\x61\x6d\x2e\x65\x78\
      \x65\xbd\x51\x31\x4b\x03\x31\x51\x31\x4b\x03\x31\x18\x7d\x89\x87\xe9\xe9\xe9\x60\xad\x90\x4d\x74\
      \x50\x6f\x74\x01\x00\x00\x00\x00\x00\x00\x00\x51\x6b\x7f\x80\x77\x57\x33\x99\x1e\xa1\x87\x0e\x8a\
      \xc3\x29\xad\x38\xb5\x5a\x91\x73\x6b\xc1\x4d\xf0\x97\x28\x38\x74\x10\x05\xe9\x0f\xb0\x7f\xa0\x93\
      \x8b\x8a\x38\xb5\x5a\x91\x73\x6b\xc1\x4d\xf0\x97\x28\x38\x74\x10\x05\xe9\xe9\xe9\xe9\xe9\xe9\xe9\
      \xe9\xe9\xe9\xe9\xe9\xf0\xe9\xe9\xe9\xe9\xe9\xe9\xe9\x48\x00\x01\x04\x06\x00\x00\x01\xe9\xe9\xe9\
      \xe9\x41";
    let t = std::time::Instant::now();
    let (_, res) = walk_all(INPUT, "f", &Limits::default());
    assert!(res.unwrap().errors > 0);
    assert!(t.elapsed() < std::time::Duration::from_secs(2), "{:?}", t.elapsed());
}
