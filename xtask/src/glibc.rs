//! What an ELF file needs from the C library, read from the file itself (never `ldd`, which
//! cannot load a foreign-architecture binary), and the glibc-floor check.
//!
//! Reads the section headers, `.dynamic` (DT_NEEDED), `.gnu.version_r` (the version-needed
//! section: which versions of which library) and `.dynsym` + `.gnu.version` (which undefined
//! symbol asks for which version, so that a failure names the symbol). This is what
//! `objdump -T` shows and what rpm's `elfdeps` reads; doing it here needs no tool and works for
//! every architecture. Only 64-bit little-endian ELF is supported: both of our targets
//! (x86_64, aarch64) are; anything else is an error, not a silent pass.

use std::{collections::BTreeSet, fmt, path::Path};

use anyhow::{bail, Context, Result};

/// The oldest glibc the packages support: Rust's `*-linux-gnu` std needs 2.17 (EL7).
pub const FLOOR: Version = Version(2, 17, 0);

/// A `GLIBC_x.y[.z]` version, compared numerically (2.17 > 2.2.5 > 2.2).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Version(pub u32, pub u32, pub u32);

impl Version {
    /// `GLIBC_2.17` -> 2.17, `GLIBC_2.2.5` -> 2.2.5; not a glibc version -> None.
    pub fn parse_glibc(tag: &str) -> Option<Version> {
        let mut it = tag.strip_prefix("GLIBC_")?.split('.');
        let major = it.next()?.parse().ok()?;
        let minor = it.next()?.parse().ok()?;
        let patch = match it.next() {
            Some(p) => p.parse().ok()?,
            None => 0,
        };
        Some(Version(major, minor, patch))
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.2 {
            0 => write!(f, "{}.{}", self.0, self.1),
            p => write!(f, "{}.{}.{p}", self.0, self.1),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Machine {
    X86_64,
    Aarch64,
}

/// One `(library, version)` pair from the version-needed section, e.g. `libc.so.6`, `GLIBC_2.17`.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Needed {
    pub file: String,
    pub version: String,
}

/// What one ELF file needs at run time.
#[derive(Debug)]
pub struct Needs {
    pub machine: Machine,
    /// DT_NEEDED sonames, in file order.
    pub libraries: Vec<String>,
    /// Every versioned dependency, sorted.
    pub versions: BTreeSet<Needed>,
    /// Undefined dynamic symbols with the version each asks for: (symbol, file, version).
    pub symbols: Vec<(String, String, String)>,
    /// DT_GNU_HASH without DT_HASH: the dynamic linker must understand GNU hash tables (rpm
    /// expresses this as `rtld(GNU_HASH)`).
    pub gnu_hash_only: bool,
}

impl Needs {
    /// The highest `GLIBC_x.y` this file needs (None for a file that needs no glibc version).
    pub fn max_glibc(&self) -> Option<Version> {
        self.versions
            .iter()
            .filter_map(|n| Version::parse_glibc(&n.version))
            .max()
    }

    /// Symbols that need a glibc newer than `floor`, as `symbol@GLIBC_x.y (file)`.
    pub fn above(&self, floor: Version) -> Vec<String> {
        let mut v: Vec<String> = self
            .symbols
            .iter()
            .filter(|(_, _, ver)| Version::parse_glibc(ver).is_some_and(|x| x > floor))
            .map(|(sym, file, ver)| format!("{sym}@{ver} ({file})"))
            .collect();
        // A version can be needed without a symbol using it (rare, but then name the version).
        for n in &self.versions {
            if Version::parse_glibc(&n.version).is_some_and(|x| x > floor)
                && !v.iter().any(|s| s.contains(&n.version))
            {
                v.push(format!("{} ({})", n.version, n.file));
            }
        }
        v
    }

    /// The versions each library is needed at, e.g. `libgcc_s.so.1` -> {`GCC_3.0`, `GCC_4.2.0`}.
    pub fn versions_of(&self, file: &str) -> Vec<&str> {
        self.versions
            .iter()
            .filter(|n| n.file == file)
            .map(|n| n.version.as_str())
            .collect()
    }
}

/// Reads `path` and fails when it is not a dynamically linked 64-bit little-endian ELF file.
pub fn read(path: &Path) -> Result<Needs> {
    let data = std::fs::read(path).with_context(|| path.display().to_string())?;
    parse(&data).with_context(|| format!("{}: cannot read its ELF dependencies", path.display()))
}

/// True when `path` starts with the ELF magic (the files of a package that the check covers).
pub fn is_elf(path: &Path) -> bool {
    use std::io::Read;
    let mut magic = [0u8; 4];
    std::fs::File::open(path)
        .and_then(|mut f| f.read_exact(&mut magic))
        .is_ok()
        && &magic == b"\x7fELF"
}

/// Fails when any of `files` needs a glibc symbol version above [`FLOOR`], naming each
/// offending symbol; returns the highest version found over all of them.
pub fn check_floor(files: &[&Path]) -> Result<Version> {
    let mut worst = Version(0, 0, 0);
    let mut errors = Vec::new();
    for f in files {
        let needs = read(f)?;
        let max = needs.max_glibc().with_context(|| {
            format!(
                "{}: needs no GLIBC_ version at all: not a glibc-linked binary?",
                f.display()
            )
        })?;
        worst = worst.max(max);
        let above = needs.above(FLOOR);
        if !above.is_empty() {
            errors.push(format!(
                "{} needs glibc {max} > the floor {FLOOR}: {}",
                f.display(),
                above.join(", ")
            ));
        } else {
            eprintln!(
                "glibc: {} needs at most GLIBC_{max} (floor {FLOOR}): ok",
                f.display()
            );
        }
    }
    if !errors.is_empty() {
        bail!("glibc floor check failed:\n  {}", errors.join("\n  "));
    }
    Ok(worst)
}

// ---- ELF parsing ---------------------------------------------------------------------------

const SHT_DYNSYM: u32 = 11;
const SHT_DYNAMIC: u32 = 6;
const SHT_GNU_VERNEED: u32 = 0x6fff_fffe;
const SHT_GNU_VERSYM: u32 = 0x6fff_ffff;
const DT_NEEDED: u64 = 1;
const DT_HASH: u64 = 4;
const DT_GNU_HASH: u64 = 0x6fff_fef5;

struct Section {
    kind: u32,
    offset: usize,
    size: usize,
    link: usize,
}

fn u16_at(d: &[u8], off: usize) -> Result<u16> {
    d.get(off..off + 2)
        .map(|b| u16::from_le_bytes([b[0], b[1]]))
        .context("truncated ELF")
}
fn u32_at(d: &[u8], off: usize) -> Result<u32> {
    d.get(off..off + 4)
        .map(|b| u32::from_le_bytes(b.try_into().unwrap()))
        .context("truncated ELF")
}
fn u64_at(d: &[u8], off: usize) -> Result<u64> {
    d.get(off..off + 8)
        .map(|b| u64::from_le_bytes(b.try_into().unwrap()))
        .context("truncated ELF")
}
fn cstr(d: &[u8], off: usize) -> Result<String> {
    let rest = d.get(off..).context("string offset outside the file")?;
    let end = rest
        .iter()
        .position(|&b| b == 0)
        .context("unterminated string")?;
    Ok(String::from_utf8_lossy(&rest[..end]).into_owned())
}

pub fn parse(d: &[u8]) -> Result<Needs> {
    if d.len() < 64 || &d[..4] != b"\x7fELF" {
        bail!("not an ELF file");
    }
    if d[4] != 2 || d[5] != 1 {
        bail!(
            "not a 64-bit little-endian ELF file (class {}, data {})",
            d[4],
            d[5]
        );
    }
    let machine = match u16_at(d, 18)? {
        62 => Machine::X86_64,
        183 => Machine::Aarch64,
        m => bail!("unsupported ELF machine {m}"),
    };
    let shoff = u64_at(d, 0x28)? as usize;
    let shentsize = u16_at(d, 0x3a)? as usize;
    let shnum = u16_at(d, 0x3c)? as usize;
    if shoff == 0 || shnum == 0 || shentsize < 64 {
        bail!("no section headers (stripped with --strip-sections?)");
    }
    let mut sections = Vec::with_capacity(shnum);
    for i in 0..shnum {
        let h = shoff + i * shentsize;
        sections.push(Section {
            kind: u32_at(d, h + 4)?,
            offset: u64_at(d, h + 0x18)? as usize,
            size: u64_at(d, h + 0x20)? as usize,
            link: u32_at(d, h + 0x28)? as usize,
        });
    }
    let find = |kind| sections.iter().find(|s| s.kind == kind);
    let strtab_of = |s: &Section| -> Result<usize> {
        Ok(sections
            .get(s.link)
            .context("section link out of range")?
            .offset)
    };

    // DT_NEEDED from the dynamic section.
    let dynamic = find(SHT_DYNAMIC).context("no dynamic section: a static binary?")?;
    let dynstr = strtab_of(dynamic)?;
    let mut libraries = Vec::new();
    let (mut hash, mut gnu_hash) = (false, false);
    for e in (0..dynamic.size / 16).map(|i| dynamic.offset + i * 16) {
        match u64_at(d, e)? {
            0 => break,
            DT_NEEDED => libraries.push(cstr(d, dynstr + u64_at(d, e + 8)? as usize)?),
            DT_HASH => hash = true,
            DT_GNU_HASH => gnu_hash = true,
            _ => {}
        }
    }

    // Version-needed entries: index -> (file, version).
    let mut by_index = std::collections::HashMap::new();
    let mut versions = BTreeSet::new();
    if let Some(vn) = find(SHT_GNU_VERNEED) {
        let str_off = strtab_of(vn)?;
        let mut at = vn.offset;
        for _ in 0..1024 {
            let cnt = u16_at(d, at + 2)?;
            let file = cstr(d, str_off + u32_at(d, at + 4)? as usize)?;
            let mut aux = at + u32_at(d, at + 8)? as usize;
            for _ in 0..cnt {
                let other = u16_at(d, aux + 6)?;
                let version = cstr(d, str_off + u32_at(d, aux + 8)? as usize)?;
                by_index.insert(other, (file.clone(), version.clone()));
                versions.insert(Needed {
                    file: file.clone(),
                    version,
                });
                let next = u32_at(d, aux + 12)? as usize;
                if next == 0 {
                    break;
                }
                aux += next;
            }
            let next = u32_at(d, at + 12)? as usize;
            if next == 0 {
                break;
            }
            at += next;
        }
    }

    // Undefined symbols and the version index each carries.
    let mut symbols = Vec::new();
    if let (Some(dynsym), Some(versym)) = (find(SHT_DYNSYM), find(SHT_GNU_VERSYM)) {
        let names = strtab_of(dynsym)?;
        for i in 0..dynsym.size / 24 {
            let s = dynsym.offset + i * 24;
            let shndx = u16_at(d, s + 6)?;
            let idx = u16_at(d, versym.offset + i * 2)? & 0x7fff;
            if shndx != 0 || idx < 2 {
                continue;
            }
            if let Some((file, version)) = by_index.get(&idx) {
                let name = cstr(d, names + u32_at(d, s)? as usize)?;
                symbols.push((name, file.clone(), version.clone()));
            }
        }
    }
    Ok(Needs {
        machine,
        libraries,
        versions,
        symbols,
        gnu_hash_only: gnu_hash && !hash,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_compare_numerically() {
        let v = |s| Version::parse_glibc(s).unwrap();
        assert!(v("GLIBC_2.17") > v("GLIBC_2.2.5"));
        assert!(v("GLIBC_2.34") > v("GLIBC_2.17"));
        assert_eq!(v("GLIBC_2.2.5"), Version(2, 2, 5));
        assert!(v("GLIBC_2.2.5") > v("GLIBC_2.2"));
        assert_eq!(v("GLIBC_2.2.5").to_string(), "2.2.5");
        assert_eq!(v("GLIBC_2.17").to_string(), "2.17");
        assert_eq!(Version::parse_glibc("GCC_3.0"), None);
        assert_eq!(Version::parse_glibc("GLIBC_PRIVATE"), None);
    }

    /// The xtask itself is a host binary linked against this machine's glibc: the parser must
    /// find libc.so.6 and its versions in it, and name symbols above a floor set below them.
    #[test]
    fn reads_a_real_binary() {
        let exe = std::env::current_exe().unwrap();
        let needs = read(&exe).unwrap();
        assert_eq!(needs.machine, Machine::X86_64);
        assert!(
            needs.libraries.iter().any(|l| l == "libc.so.6"),
            "{:?}",
            needs.libraries
        );
        let max = needs.max_glibc().unwrap();
        assert!(max >= Version(2, 2, 5), "{max}");
        let above = needs.above(Version(2, 1, 0));
        assert!(
            !above.is_empty() && above.iter().all(|s| s.contains("@GLIBC_")),
            "{above:?}"
        );
        assert!(needs.above(max).is_empty());
    }

    /// The xtask is linked against the build machine's glibc (2.36 on Debian 12), far above
    /// the floor: the check must fail and name a symbol with its version and library.
    #[test]
    fn floor_check_names_the_offending_symbols() {
        let exe = std::env::current_exe().unwrap();
        let max = read(&exe).unwrap().max_glibc().unwrap();
        assert!(
            max > FLOOR,
            "this test needs a build machine with glibc > {FLOOR} (has {max})"
        );
        let err = format!("{:#}", check_floor(&[exe.as_path()]).unwrap_err());
        assert!(
            err.contains(&format!("needs glibc {max} > the floor 2.17")),
            "{err}"
        );
        assert!(err.contains(&format!("@GLIBC_{max} (libc.so.6)")), "{err}");
    }

    #[test]
    fn rejects_what_it_cannot_read() {
        assert!(parse(b"not an elf").is_err());
        let mut elf32 = vec![0u8; 64];
        elf32[..4].copy_from_slice(b"\x7fELF");
        elf32[4] = 1;
        elf32[5] = 1;
        assert!(parse(&elf32).is_err());
    }
}
