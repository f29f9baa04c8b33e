//! Data-driven tests of the engine: every syntax element positive and negative, malformed
//! lines, hash sizes, threat types, YARA, version, EICAR.

use std::path::Path;

use super::*;

fn ndb(lines: &str) -> Definitions {
    parse_definitions_text("ndb", lines).unwrap_or_else(|e| panic!("{lines}: {e}"))
}

fn name_of(defs: &Definitions, data: &[u8]) -> Option<String> {
    defs.scan_bytes(data).map(|d| d.threat_name)
}

/// `(offset:hex signature, [(content, matches?)])`.
type SyntaxCase<'a> = (&'a str, &'a [(&'a [u8], bool)]);

/// Each signature alone in a set, checked on its contents.
#[test]
fn ndb_syntax_elements() {
    let cases: &[SyntaxCase] = &[
        // literal bytes, hex digits in both cases
        ("*:41424344", &[(b"xxABCDxx", true), (b"ABCD", true), (b"ABCE", false), (b"ABC", false)]),
        ("*:6162634A", &[(b"abcJ", true), (b"abcj", false)]),
        // ?? any byte
        ("*:41??4344", &[(b"AzCD", true), (b"A\0CD", true), (b"AzCE", false), (b"ACD", false)]),
        // high nibble fixed: 4?
        ("*:41424?44", &[(b"AB@D", true), (b"ABOD", true), (b"ABPD", false)]),
        // low nibble fixed: ?1
        ("*:4142?144", &[(b"ABAD", true), (b"ABQD", true), (b"ABBD", false)]),
        // * unbounded gap, order matters
        ("*:41424344*45464748", &[
            (b"ABCDEFGH", true), (b"ABCD......EFGH", true), (b"EFGH..ABCD", false), (b"ABCD", false),
        ]),
        // {n} exact gap
        ("*:41424344{2}45464748", &[
            (b"ABCDxxEFGH", true), (b"ABCDxEFGH", false), (b"ABCDxxxEFGH", false),
        ]),
        // {n-m}
        ("*:41424344{1-2}45464748", &[
            (b"ABCDxEFGH", true), (b"ABCDxxEFGH", true), (b"ABCDEFGH", false), (b"ABCDxxxEFGH", false),
        ]),
        // {-n}
        ("*:41424344{-2}45464748", &[
            (b"ABCDEFGH", true), (b"ABCDxxEFGH", true), (b"ABCDxxxEFGH", false),
        ]),
        // {n-}
        ("*:41424344{2-}45464748", &[
            (b"ABCDxxEFGH", true), (b"ABCD..........EFGH", true), (b"ABCDxEFGH", false),
        ]),
        // single-byte alternatives
        ("*:4142(43|44)4546", &[(b"ABCEF", true), (b"ABDEF", true), (b"ABEEF", false)]),
        // multi-byte alternatives of unequal length
        ("*:41424344(4546|47)4849", &[
            (b"ABCDEFHI", true), (b"ABCDGHI", true), (b"ABCDEHI", false), (b"ABCDEGHI", false),
        ]),
        // alternative with wildcards inside a branch, before the anchor
        ("*:(3?|4142)41424344", &[(b"5ABCD", true), (b"ABABCD", true), (b"xABCD", false)]),
        // negated alternatives
        ("*:41424344!(45|46)4748", &[(b"ABCDXGH", true), (b"ABCDEGH", false), (b"ABCDFGH", false)]),
        // absolute offset
        ("4:41424344", &[(b"xxxxABCD", true), (b"xxxABCD", false), (b"xxxxxABCD", false)]),
        ("0:41424344", &[(b"ABCDxx", true), (b"xABCD", false)]),
        // absolute offset with shift n,m
        ("4,2:41424344", &[
            (b"xxxxABCD", true), (b"xxxxxxABCD", true), (b"xxxABCD", false), (b"xxxxxxxABCD", false),
        ]),
        // EOF-n
        ("EOF-4:41424344", &[(b"xxABCD", true), (b"xxABCDx", false), (b"ABCD", true)]),
        ("EOF-6,2:41424344", &[(b"xxABCDxx", true), (b"xxABCD", true), (b"xxABCDxxx", false)]),
        // offset applies to the start of the whole signature, not the anchor
        ("2:31*41424344", &[(b"xx1yyyABCD", true), (b"x1yyyABCD", false)]),
        // anchor in a later segment: earlier segments verified backwards
        ("*:3132*41424344", &[(b"12...ABCD", true), (b"ABCD...12", false), (b"1.2ABCD", false)]),
        // anchor in the middle with bounded gaps on both sides
        ("*:31{2}41424344{1-3}32", &[
            (b"1xxABCDy2", true), (b"1xxABCDyyy2", true), (b"1xABCDy2", false), (b"1xxABCD2", false),
        ]),
        // bounded gaps need backtracking: the first "DE" is followed by the wrong gap
        ("*:414243{0-20}4445{5}464748", &[
            (b"ABCDExxxxxxDExxxxxFGH", true), (b"ABCDExxxxxxDExxxxFGH", false),
        ]),
        ("*:464748{5}4445{0-20}414243", &[(b"FGHxxxxxDExxxxxxxxDEABC", true), (b"FGHxxxxDEABC", false)]),
        // slow path: no two consecutive literal bytes
        ("*:41??42", &[(b"..AxB..", true), (b"AxxB", false)]),
        ("*:4?5?", &[(b"..AQ", true), (b"AA", false)]),
        ("*:(4142|4344)", &[(b"..CD", true), (b"AC", false)]),
        ("3:4?5?", &[(b"...AQ", true), (b"AQ", false)]),
    ];
    for (sig, contents) in cases {
        let defs = ndb(&format!("Test.Sig:0:{sig}"));
        for (content, want) in contents.iter() {
            let got = name_of(&defs, content);
            assert_eq!(
                got.is_some(),
                *want,
                "signature {sig:?} on {:?}: got {got:?}",
                String::from_utf8_lossy(content)
            );
        }
    }
}

#[test]
fn ndb_target_types() {
    let defs = ndb("Pe.Sig:1:*:41424344\nElf.Sig:6:*:45464748\nMacho.Sig:9:*:494a4b4c");
    assert_eq!(name_of(&defs, b"MZ..ABCD").as_deref(), Some("Pe.Sig"));
    assert_eq!(name_of(&defs, b"ZM..ABCD"), None);
    assert_eq!(name_of(&defs, b"\x7fELF..EFGH").as_deref(), Some("Elf.Sig"));
    assert_eq!(name_of(&defs, b"MZ..EFGH"), None);
    assert_eq!(name_of(&defs, b"\xcf\xfa\xed\xfe..IJKL").as_deref(), Some("Macho.Sig"));
    assert_eq!(name_of(&defs, b"\x7fELF..IJKL"), None);
}

#[test]
fn many_signatures_share_one_automaton() {
    // 2,000 signatures, some sharing anchors; each found only in its own content.
    let mut text = String::from("# comment\n\n");
    for i in 0..2000u32 {
        text.push_str(&format!("Sig.{i}:0:*:{:08x}{{-4}}{:08x}\n", i * 7919 + 0x10203040, i));
    }
    let defs = ndb(&text);
    assert_eq!(defs.counts().body, 2000);
    assert_eq!(defs.counts().body_slow_path, 0);
    for i in [0u32, 1, 999, 1999] {
        let mut c = b"lead-in ".to_vec();
        c.extend_from_slice(&(i * 7919 + 0x10203040).to_be_bytes());
        c.extend_from_slice(b"..");
        c.extend_from_slice(&i.to_be_bytes());
        assert_eq!(name_of(&defs, &c), Some(format!("Sig.{i}")));
        c.truncate(c.len() - 1);
        assert_eq!(name_of(&defs, &c), None);
    }
}

#[test]
fn overlapping_anchors_are_all_seen() {
    // "BCDE" overlaps "ABCD": a leftmost-non-overlapping search would miss it.
    let defs = ndb("One:0:*:41424344{1}5a\nTwo:0:*:42434445");
    assert_eq!(name_of(&defs, b"ABCDE").as_deref(), Some("Two"));
    assert_eq!(name_of(&defs, b"ABCDxZ").as_deref(), Some("One"));
}

#[test]
fn pua_typing() {
    let defs = ndb("PUA.Linux.Miner:0:*:41424344\nLinux.Trojan:0:*:45464748");
    let d = defs.scan_bytes(b"ABCD").unwrap();
    assert_eq!(d.threat_type, ThreatType::PotentiallyUnwantedApplication);
    let d = defs.scan_bytes(b"EFGH").unwrap();
    assert_eq!(d.threat_type, ThreatType::Virus);
    let md5 = "5eb63bbbe01eeed093cb22bb8f5acdc3"; // "hello world"
    let defs = parse_definitions_text("hdb", &format!("{md5}:11:PUA.Hash.Tool")).unwrap();
    assert_eq!(
        defs.scan_bytes(b"hello world").unwrap().threat_type,
        ThreatType::PotentiallyUnwantedApplication
    );
}

#[test]
fn hash_signatures() {
    let md5 = "5eb63bbbe01eeed093cb22bb8f5acdc3";
    let sha1 = "2aae6c35c94fcfb415dbe95f408b9ce91ee846ed";
    let sha256 = "b94d27b9934d3e08a52e52d7da7dabfac484efe37a5380ee9088f7ace2efcde9";
    let cases: &[(&str, String, Option<&str>)] = &[
        ("hdb", format!("{md5}:11:Md5.Sized"), Some("Md5.Sized")),
        ("hdb", format!("{md5}:12:Md5.WrongSize"), None),
        ("hdb", format!("{md5}:*:Md5.AnySize"), Some("Md5.AnySize")),
        ("hdb", format!("{}:11:Md5.Upper", md5.to_uppercase()), Some("Md5.Upper")),
        ("hdb", format!("{}:11:Md5.Other", "0".repeat(32)), None),
        ("hsb", format!("{sha256}:11:Sha256.Sized"), Some("Sha256.Sized")),
        ("hsb", format!("{sha256}:10:Sha256.WrongSize"), None),
        ("hsb", format!("{sha256}:*:Sha256.AnySize:73"), Some("Sha256.AnySize")),
        ("hsb", format!("{sha1}:11:Sha1.Sized"), Some("Sha1.Sized")),
        ("hsb", format!("{sha1}:*:Sha1.AnySize"), Some("Sha1.AnySize")),
    ];
    for (kind, line, want) in cases {
        let defs = parse_definitions_text(kind, line).unwrap();
        assert_eq!(name_of(&defs, b"hello world").as_deref(), *want, "{line}");
        assert_eq!(name_of(&defs, b"hello worle"), None, "{line}");
    }
    let defs = parse_definitions_text("hdb", &format!("{md5}:11:A\n{md5}:99:B")).unwrap();
    assert!(defs.wants_hash(11) && defs.wants_hash(99) && !defs.wants_hash(12));
    let defs = parse_definitions_text("hdb", &format!("{md5}:*:A")).unwrap();
    assert!(defs.wants_hash(12));
    assert!(!Definitions::builtin().wants_hash(11));
}

fn write(dir: &Path, name: &str, content: &str) {
    std::fs::write(dir.join(name), content).unwrap();
}

#[test]
fn malformed_lines_name_file_and_line() {
    let md5 = "5eb63bbbe01eeed093cb22bb8f5acdc3";
    let cases: &[(&str, String, usize, &str)] = &[
        ("bad.hdb", format!("# c\n\n{md5}:11:Good\n{md5}:x:Bad\n"), 4, "invalid file size"),
        ("bad.hsb", format!("{md5}:11:Good\r\nzz:1:Bad\r\n"), 2, "invalid hash length"),
        ("bad.ndb", "Good:0:*:41424344\n#\nBad:0:*:4142434\n".into(), 3, "odd number of hex digits"),
        ("bad.ndb", "Bad:0:*:41424344:1:2:3\n".into(), 1, "too many fields"),
        ("bad.yar", "rule ok { condition: true }\n\nrule bad {\n  condition: $a\n}\n".into(), 4, "unknown"),
        ("bad.yara", "rule {\n".into(), 1, ""),
    ];
    for (file, content, line, reason) in cases {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), file, content);
        let err = Definitions::load(&[dir.path()]).err().unwrap_or_else(|| panic!("{file} loaded"));
        assert_eq!(err.file, dir.path().join(file));
        assert_eq!(err.line, *line, "{file}: {err}");
        assert!(err.reason.to_lowercase().contains(reason), "{file}: {err}");
        let shown = err.to_string();
        assert!(shown.starts_with(&format!("{}:{line}: ", dir.path().join(file).display())), "{shown}");
    }
}

#[test]
fn not_utf8_is_rejected_with_line() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("x.ndb"), b"A:0:*:4142\nB\xff:0:*:4142\n").unwrap();
    let err = Definitions::load(&[dir.path()]).err().unwrap();
    assert_eq!((err.line, err.reason.as_str()), (2, "not valid UTF-8"));
}

#[test]
fn yara_rules() {
    let defs = parse_definitions_text(
        "yar",
        r#"
rule Linux_Backdoor { strings: $a = { 41 42 ?? 44 } condition: $a }
rule Adware_Thing : pua { strings: $a = "adware-payload" condition: $a }
rule Miner { meta: threat_type = "potentially_unwanted_application" strings: $a = "xmrig" condition: $a }
rule Named { meta: threat_name = "Trojan:Linux/Named" strings: $a = "named-payload" condition: $a }
private rule Helper { strings: $a = "helper" condition: $a }
"#,
    )
    .unwrap();
    assert_eq!(defs.counts().yara, 4);
    let det = |d: &[u8]| defs.scan_bytes(d).map(|d| (d.threat_name, d.threat_type));
    assert_eq!(det(b"..ABzD.."), Some(("Linux_Backdoor".into(), ThreatType::Virus)));
    assert_eq!(det(b"AB"), None);
    assert_eq!(
        det(b"x adware-payload"),
        Some(("Adware_Thing".into(), ThreatType::PotentiallyUnwantedApplication))
    );
    assert_eq!(det(b"xmrig"), Some(("Miner".into(), ThreatType::PotentiallyUnwantedApplication)));
    assert_eq!(det(b"named-payload"), Some(("Trojan:Linux/Named".into(), ThreatType::Virus)));
    assert_eq!(det(b"helper"), None);
    // EICAR still found when YARA rules are loaded.
    assert_eq!(det(EICAR).map(|d| d.0), Some(EICAR_THREAT_NAME.into()));
}

#[test]
fn yara_includes_are_refused() {
    let err = parse_definitions_text("yar", "include \"/etc/passwd\"\nrule a { condition: true }")
        .err()
        .unwrap();
    assert_eq!(err.line, 1, "{err}");
}

#[test]
fn load_directories_and_version() {
    let packaged = tempfile::tempdir().unwrap();
    let updates = tempfile::tempdir().unwrap();
    let missing = packaged.path().join("does-not-exist");
    let dirs = [packaged.path(), updates.path(), missing.as_path()];
    let v0 = Definitions::load(&dirs).unwrap();
    assert_eq!(v0.version(), "builtin");
    assert_eq!(v0.signature_count(), 1);

    write(packaged.path(), "main.ndb", "Body.One:0:*:41424344\n");
    write(packaged.path(), "README.txt", "not definitions");
    write(packaged.path(), ".hidden.ndb", "garbage");
    write(updates.path(), "rules.yar", "rule Yara_One { strings: $a = \"yara-one\" condition: $a }");
    let v1 = Definitions::load(&dirs).unwrap();
    assert!(v1.version().starts_with("1.0.") && v1.version().len() == 16, "{}", v1.version());
    assert_eq!(
        v1.counts(),
        SignatureCounts { builtin: 1, hash: 0, body: 1, body_slow_path: 0, yara: 1 }
    );
    assert_eq!(v1.signature_count(), 3);
    assert_eq!(name_of(&v1, b"ABCD").as_deref(), Some("Body.One"));
    assert_eq!(name_of(&v1, b"yara-one").as_deref(), Some("Yara_One"));

    // Same files: same version.
    assert_eq!(Definitions::load(&dirs).unwrap().version(), v1.version());
    // Ignored files do not count.
    write(packaged.path(), "README.txt", "changed");
    assert_eq!(Definitions::load(&dirs).unwrap().version(), v1.version());
    // A changed file changes the version.
    write(packaged.path(), "main.ndb", "Body.One:0:*:41424345\n");
    let v2 = Definitions::load(&dirs).unwrap();
    assert_ne!(v2.version(), v1.version());
    assert_eq!(name_of(&v2, b"ABCD"), None);
    // A file of the same name in a later directory replaces the earlier one.
    write(updates.path(), "main.ndb", "Body.Two:0:*:45464748\n");
    let v3 = Definitions::load(&dirs).unwrap();
    assert_ne!(v3.version(), v2.version());
    assert_eq!(name_of(&v3, b"ABCE"), None);
    assert_eq!(name_of(&v3, b"EFGH").as_deref(), Some("Body.Two"));
    // A broken file fails the whole load.
    write(updates.path(), "extra.hdb", "nonsense\n");
    let err = Definitions::load(&dirs).err().unwrap();
    assert_eq!((err.file, err.line), (updates.path().join("extra.hdb"), 1));
}

#[test]
fn eicar() {
    let defs = Definitions::builtin();
    assert_eq!(defs.version(), "builtin");
    for content in [EICAR.to_vec(), [b"prefix ".as_slice(), EICAR, b"\r\n"].concat()] {
        let d = defs.scan_bytes(&content).unwrap();
        assert_eq!(d.threat_name, EICAR_THREAT_NAME);
        assert_eq!(d.threat_type, ThreatType::Virus);
    }
    let mut broken = EICAR.to_vec();
    broken[10] ^= 1;
    assert_eq!(defs.scan_bytes(&broken), None);
    assert_eq!(defs.scan_bytes(&EICAR[..EICAR.len() - 1]), None);
    assert_eq!(defs.scan_bytes(b""), None);
}

#[test]
fn scan_reader_window_and_hashes() {
    use md5::Digest as _;
    // A content longer than the window: body signatures only in the window, hashes over all.
    let mut big = vec![b'.'; SCAN_WINDOW as usize + 1000];
    big[100..104].copy_from_slice(b"ABCD");
    let tail = big.len() - 10;
    big[tail..tail + 4].copy_from_slice(b"EFGH");
    let md5: String = md5::Md5::digest(&big).iter().map(|b| format!("{b:02x}")).collect();
    let defs = ndb("Head:0:*:41424344\n");
    assert_eq!(defs.scan_reader(&big[..], big.len() as u64).unwrap().unwrap().threat_name, "Head");
    let defs = ndb("Tail:0:*:45464748\n");
    assert_eq!(defs.scan_reader(&big[..], big.len() as u64).unwrap(), None);
    let defs = parse_definitions_text("hdb", &format!("{md5}:{}:Big.Hash", big.len())).unwrap();
    assert_eq!(defs.scan_reader(&big[..], big.len() as u64).unwrap().unwrap().threat_name, "Big.Hash");
    // Small contents are scanned exactly like scan_bytes.
    let defs = ndb("Tail:0:EOF-4:45464748\n");
    assert_eq!(defs.scan_reader(&b"xxEFGH"[..], 6).unwrap().unwrap().threat_name, "Tail");
}

#[test]
fn unknown_kind_for_text() {
    assert!(parse_definitions_text("exe", "").is_err());
}

#[test]
fn pathological_signature_is_bounded() {
    // Many bounded gaps over content made of the signature's bytes: the verifier must not
    // backtrack exponentially (a regression shows as a hang here; speed itself is measured by
    // `cargo xtask bench scan`, not asserted).
    let defs = ndb("Slow:0:*:4141{0-200}41{0-200}41{0-200}41{0-200}42");
    let data = vec![b'A'; 1 << 19];
    assert_eq!(defs.scan_bytes(&data), None);
    // Single-segment signatures are still verified once the budget is spent.
    let defs = ndb("Slow:0:*:4141{0-200}41{0-200}41{0-200}41{0-200}42\nLate:0:*:4142434445");
    let mut data = data;
    data.extend_from_slice(b"ABCDE");
    assert_eq!(name_of(&defs, &data).as_deref(), Some("Late"));
}

/// Differential test: random signatures over a tiny alphabet, each checked against a
/// `regex::bytes` translation on random contents.
#[test]
fn verifier_agrees_with_regex() {
    use super::ndb::{parse_line, Offset, Tok};
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    let mut rnd = |n: u64| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed % n
    };
    fn class(t: &Tok) -> String {
        match *t {
            Tok::Byte(b) => format!("\\x{b:02x}"),
            Tok::Any => "(?s:.)".into(),
            Tok::Mask { mask, val } => {
                let bytes: String =
                    (0..=255u8).filter(|b| b & mask == val).map(|b| format!("\\x{b:02x}")).collect();
                format!("[{bytes}]")
            }
            Tok::Alt { neg: false, ref alts } => {
                let a: Vec<String> = alts.iter().map(|a| a.iter().map(class).collect()).collect();
                format!("(?:{})", a.join("|"))
            }
            Tok::Alt { neg: true, .. } => unreachable!(),
        }
    }
    let alphabet = ["41", "42", "43", "4?", "??", "(41|4243)", "(42|43)"];
    let mut checked = 0;
    for _ in 0..400 {
        // Build a signature text.
        let mut hex = String::new();
        let nseg = 1 + rnd(3);
        for s in 0..nseg {
            if s > 0 {
                hex.push_str(match rnd(5) {
                    0 => "*".into(),
                    1 => format!("{{{}}}", rnd(4)),
                    2 => format!("{{{}-{}}}", rnd(3), 3 + rnd(3)),
                    3 => format!("{{-{}}}", rnd(4)),
                    _ => format!("{{{}-}}", rnd(4)),
                }
                .as_str());
            }
            for _ in 0..1 + rnd(4) {
                hex.push_str(alphabet[rnd(alphabet.len() as u64) as usize]);
            }
        }
        let offset = match rnd(4) {
            0 => format!("{}", rnd(4)),
            1 => format!("{},{}", rnd(4), rnd(4)),
            _ => "*".into(),
        };
        let line = format!("R:0:{offset}:{hex}");
        let Ok(sig) = parse_line(&line) else { continue };
        // Regex translation.
        let mut re = String::from("(?-u)");
        re.push_str(&match sig.offset {
            Offset::Any => String::new(),
            Offset::Abs { start, shift } => format!("\\A(?s:.){{{start},{}}}", start + shift),
            Offset::Eof { .. } => unreachable!(),
        });
        for (i, seg) in sig.segs.iter().enumerate() {
            if i > 0 {
                let g = sig.gaps[i - 1];
                re.push_str(&match g.max {
                    Some(m) => format!("(?s:.){{{},{m}}}", g.min),
                    None => format!("(?s:.){{{},}}", g.min),
                });
            }
            re.extend(seg.iter().map(class));
        }
        let re = regex::bytes::Regex::new(&re).unwrap();
        let defs = parse_definitions_text("ndb", &line).unwrap();
        for _ in 0..40 {
            let len = rnd(24) as usize;
            let data: Vec<u8> = (0..len).map(|_| [b'A', b'B', b'C', b'D', b'Q'][rnd(5) as usize]).collect();
            let want = re.is_match(&data);
            let got = defs.scan_bytes(&data).is_some();
            assert_eq!(got, want, "{line} on {:?} (regex {re})", String::from_utf8_lossy(&data));
            checked += 1;
        }
    }
    assert!(checked > 5000, "{checked}");
}

/// Anchors at every position relative to the 8-byte blocks of the 4-gram filter, with enough
/// distinct anchors that the bitmap path (not memmem) runs.
#[test]
fn anchors_at_every_block_position() {
    let defs = ndb("A:0:*:41424344\nB:0:*:45464748\nC:0:*:494a4b4c\nD:0:*:4d4e4f50\nE:0:*:51525354");
    for lead in 0..20 {
        for trail in 0..10 {
            for (sig, pat) in [("A", b"ABCD"), ("E", b"QRST")] {
                let mut c = vec![b'.'; lead];
                c.extend_from_slice(pat);
                c.extend(std::iter::repeat(b'.').take(trail));
                assert_eq!(name_of(&defs, &c).as_deref(), Some(sig), "{lead} {trail}");
                c[lead + 3] = b'x';
                assert_eq!(name_of(&defs, &c), None, "{lead} {trail}");
            }
        }
    }
}
