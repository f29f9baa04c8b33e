//! Exclusions: what scans and real-time protection leave alone.
//!
//! # Semantics (REFERENCE.md "Exclusion semantics")
//!
//! * **Scopes.** [`Scope::Epp`] applies to on-demand scans, real-time protection and behaviour
//!   monitoring; [`Scope::Global`] mutes the sensor (real-time protection and EDR) but does **not**
//!   apply to on-demand scans. An on-demand scan therefore asks
//!   `is_path_excluded(path, is_dir, Scope::Epp)`; real-time protection asks for both scopes. An
//!   exclusion with an empty `scopes` list is treated as `epp` (the CLI default, and the meaning
//!   of the legacy `antivirusEngine.exclusions[]` entries of the managed configuration, which
//!   carry no scopes).
//! * **Paths** must be absolute. A folder exclusion excludes the folder and everything below it;
//!   a file exclusion only that file (never a directory of the same name).
//! * **Wildcards** (epp only; global exclusions take none):
//!   - `*` as the **last** path component (`/var/log/*`, also `/var/log/*/`) matches everything
//!     below the parent (`/var/log/a`, `/var/log/a/b/c`), but not the parent itself;
//!   - `*` anywhere else stands for exactly one folder level: `/var/*/tmp` matches `/var/abc/tmp`
//!     and (as a folder exclusion) everything below it, but neither `/var/abc/log` nor
//!     `/var/a/b/tmp`. Inside a component it matches any run of characters of that one component
//!     (`/var/log/*.log` matches `/var/log/x.log`, not `/var/log/sub/x.log`);
//!   - `?` matches exactly one character, never `/`.
//! * **Extensions**: `.log` and `log` both mean "file names ending in `.log`" (case-sensitive, as
//!   file names on Linux are; `a.tar.gz` is matched by `.gz` and by `.tar.gz`). Extension
//!   exclusions apply to files only and cannot be global.
//! * **Processes**: by name (matched against the caller's `comm`-like name *and* the base name of
//!   the executable, since `comm` is truncated to 15 bytes; `?`/`*` allowed in epp scope), or by
//!   the full executable path (wildcards as for paths, epp only). A global process exclusion
//!   needs the full path.
//! * **Symlinks do not match.** The matcher compares the path *as given*, lexically (repeated
//!   `/`, a trailing `/` and `.` components are ignored); it never touches the filesystem.
//!   Callers must pass resolved, real paths (the on-demand walker does: it never follows
//!   symlinks and resolves its roots once). An exclusion written through a symlinked directory
//!   never matches; admins must exclude the real path.
//!
//! # Speed
//!
//! [`ExclusionMatcher::new`] compiles the list once per scope into hash sets of exact folder and
//! file paths (each ancestor of a queried path is one hash lookup), a set of extensions (one
//! lookup per `.` in the file name) and a short list of wildcard patterns matched component by
//! component. Invalid exclusions (see [`validate`]) are left out of the compiled form.

#![forbid(unsafe_code)]

use std::collections::HashSet;
use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};

/// Where an exclusion applies (REFERENCE.md "Exclusion semantics").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Scope {
    /// On-demand, real-time and behaviour monitoring.
    Epp,
    /// Muted at the sensor for real-time protection and EDR; not for on-demand scans.
    Global,
}

/// What is excluded.
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ExclusionKind {
    /// A file (`is_directory = false`) or a folder and everything below it.
    Path { path: String, is_directory: bool },
    /// A file name extension, with its dot (`.log`).
    Extension { extension: String },
    /// A process, by its executable's name.
    ProcessName { name: String },
    /// A process, by its executable's full path.
    ProcessPath { path: String },
}

/// One exclusion with its scopes and origin.
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct Exclusion {
    #[serde(flatten)]
    pub kind: ExclusionKind,
    pub scopes: Vec<Scope>,
    /// Set by the managed configuration; the CLI cannot remove it.
    #[serde(default)]
    pub managed: bool,
}

impl Exclusion {
    /// The scopes this exclusion applies to: its `scopes`, or `[Epp]` when the list is empty.
    pub fn effective_scopes(&self) -> Vec<Scope> {
        if self.scopes.is_empty() {
            vec![Scope::Epp]
        } else {
            self.scopes.clone()
        }
    }
}

/// Exclusions compiled for fast matching.
#[derive(Debug, Clone, Default)]
pub struct ExclusionMatcher {
    list: Vec<Exclusion>,
    epp: Compiled,
    global: Compiled,
}

/// The exclusions of one scope, compiled.
#[derive(Debug, Clone, Default)]
struct Compiled {
    /// Folders without wildcards: a path is excluded when it or one of its ancestors is here.
    dirs: HashSet<PathBuf>,
    /// Files without wildcards: a non-directory path is excluded when it is here.
    files: HashSet<PathBuf>,
    /// Extensions, stored with their leading dot (`.log`).
    extensions: HashSet<Vec<u8>>,
    /// Folder and file exclusions with wildcards.
    patterns: Vec<PathPattern>,
    /// Process names without wildcards.
    proc_names: HashSet<OsString>,
    /// Process names with wildcards (one glob component).
    proc_name_globs: Vec<Glob>,
    /// Process paths without wildcards.
    proc_paths: HashSet<PathBuf>,
    /// Process paths with wildcards (file semantics).
    proc_path_patterns: Vec<PathPattern>,
}

impl Compiled {
    fn is_empty_for_paths(&self) -> bool {
        self.dirs.is_empty() && self.files.is_empty() && self.extensions.is_empty() && self.patterns.is_empty()
    }
}

/// One path component of a pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Glob {
    /// No wildcard: compared byte for byte.
    Literal(Vec<u8>),
    /// Contains `*` (any run of bytes, within the component) and/or `?` (one character).
    Wild(Vec<u8>),
}

impl Glob {
    fn new(c: &[u8]) -> Glob {
        if has_wildcard(c) {
            Glob::Wild(c.to_vec())
        } else {
            Glob::Literal(c.to_vec())
        }
    }

    fn matches(&self, s: &[u8]) -> bool {
        match self {
            Glob::Literal(l) => l.as_slice() == s,
            Glob::Wild(p) => glob_match(p, s),
        }
    }
}

/// A compiled path pattern with wildcards.
#[derive(Debug, Clone)]
struct PathPattern {
    /// Components below `/`, without a trailing lone `*`.
    comps: Vec<Glob>,
    /// The pattern ended in a lone `*` component: matches everything strictly below `comps`.
    below: bool,
    /// Folder exclusion: matches `comps` itself and everything below it.
    directory: bool,
}

impl PathPattern {
    fn compile(path: &str, directory: bool) -> PathPattern {
        let mut comps: Vec<Glob> = normal_components(Path::new(path)).map(|c| Glob::new(c.as_bytes())).collect();
        let mut below = false;
        if let Some(Glob::Wild(last)) = comps.last() {
            if last.as_slice() == b"*" {
                comps.pop();
                below = true;
            }
        }
        PathPattern { comps, below, directory }
    }

    /// `parts` are the normal components of an absolute path.
    fn matches(&self, parts: &[&[u8]], is_dir: bool) -> bool {
        let n = self.comps.len();
        let len_ok = if self.below {
            parts.len() > n
        } else if self.directory {
            parts.len() >= n
        } else {
            parts.len() == n && !is_dir
        };
        len_ok && self.comps.iter().zip(parts).all(|(g, p)| g.matches(p))
    }
}

/// The `Normal` components of a path (root, `.` dropped; `..` kept as a literal `..`).
fn normal_components(p: &Path) -> impl Iterator<Item = &OsStr> {
    p.components().filter_map(|c| match c {
        Component::Normal(s) => Some(s),
        Component::ParentDir => Some(OsStr::new("..")),
        _ => None,
    })
}

fn has_wildcard(s: &[u8]) -> bool {
    s.iter().any(|&b| b == b'*' || b == b'?')
}

/// Length of the UTF-8 sequence starting with `b` (1 for invalid lead bytes).
fn utf8_len(b: u8) -> usize {
    match b {
        0xC2..=0xDF => 2,
        0xE0..=0xEF => 3,
        0xF0..=0xF4 => 4,
        _ => 1,
    }
}

/// Length of the character at the start of `s`: a whole UTF-8 sequence when it is a valid one,
/// else one byte.
fn char_len(s: &[u8]) -> usize {
    let n = utf8_len(s[0]);
    if n > 1 && s.len() >= n && std::str::from_utf8(&s[..n]).is_ok() {
        n
    } else {
        1
    }
}

/// Glob match of one component: `*` any run of bytes, `?` exactly one character.
/// Iterative with single backtracking point (linear-ish, no recursion).
fn glob_match(p: &[u8], s: &[u8]) -> bool {
    let (mut pi, mut si) = (0usize, 0usize);
    let mut star: Option<(usize, usize)> = None;
    while si < s.len() {
        if pi < p.len() && p[pi] == b'*' {
            star = Some((pi, si));
            pi += 1;
        } else if pi < p.len() && p[pi] == b'?' {
            pi += 1;
            si += char_len(&s[si..]);
        } else if pi < p.len() && p[pi] == s[si] {
            pi += 1;
            si += 1;
        } else if let Some((sp, ss)) = star {
            // Let the last `*` swallow one more character and retry.
            let next = ss + char_len(&s[ss..]);
            star = Some((sp, next));
            pi = sp + 1;
            si = next;
        } else {
            return false;
        }
    }
    while pi < p.len() && p[pi] == b'*' {
        pi += 1;
    }
    pi == p.len()
}

/// Normalizes an extension to its dotted form (`log` and `.log` give `.log`).
fn dotted_extension(e: &str) -> Vec<u8> {
    if e.starts_with('.') {
        e.as_bytes().to_vec()
    } else {
        let mut v = Vec::with_capacity(e.len() + 1);
        v.push(b'.');
        v.extend_from_slice(e.as_bytes());
        v
    }
}

/// A path with `//`, `.` and a trailing `/` removed (for the exact-path sets; `Path`'s `Eq` and
/// `Hash` already compare components, this keeps the stored form tidy).
fn tidy(p: &str) -> PathBuf {
    let mut out = PathBuf::from("/");
    for c in normal_components(Path::new(p)) {
        out.push(c);
    }
    out
}

impl ExclusionMatcher {
    /// Compiles `list`. Exclusions that fail [`validate`] are kept in [`Self::exclusions`] but
    /// never match (the configuration layer is expected to reject them with `validate`'s message).
    pub fn new(list: &[Exclusion]) -> ExclusionMatcher {
        let mut m = ExclusionMatcher { list: list.to_vec(), epp: Compiled::default(), global: Compiled::default() };
        for e in list {
            if let Err(msg) = validate(e) {
                tracing::warn!("ignoring invalid exclusion {:?}: {}", e.kind, msg);
                continue;
            }
            for scope in e.effective_scopes() {
                let c = match scope {
                    Scope::Epp => &mut m.epp,
                    Scope::Global => &mut m.global,
                };
                match &e.kind {
                    ExclusionKind::Path { path, is_directory } => {
                        if has_wildcard(path.as_bytes()) {
                            c.patterns.push(PathPattern::compile(path, *is_directory));
                        } else if *is_directory {
                            c.dirs.insert(tidy(path));
                        } else {
                            c.files.insert(tidy(path));
                        }
                    }
                    ExclusionKind::Extension { extension } => {
                        c.extensions.insert(dotted_extension(extension));
                    }
                    ExclusionKind::ProcessName { name } => {
                        if has_wildcard(name.as_bytes()) {
                            c.proc_name_globs.push(Glob::new(name.as_bytes()));
                        } else {
                            c.proc_names.insert(OsString::from(name));
                        }
                    }
                    ExclusionKind::ProcessPath { path } => {
                        if has_wildcard(path.as_bytes()) {
                            c.proc_path_patterns.push(PathPattern::compile(path, false));
                        } else {
                            c.proc_paths.insert(tidy(path));
                        }
                    }
                }
            }
        }
        m
    }

    /// The exclusions this matcher was built from (including invalid ones, which never match).
    pub fn exclusions(&self) -> &[Exclusion] {
        &self.list
    }

    /// True when no exclusion at all is configured.
    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    fn compiled(&self, scope: Scope) -> &Compiled {
        match scope {
            Scope::Epp => &self.epp,
            Scope::Global => &self.global,
        }
    }

    /// True when `path` (absolute, as found by the walker; not resolved) is excluded in `scope`.
    ///
    /// `is_dir` tells whether `path` is a directory: file and extension exclusions never match
    /// directories. The comparison is lexical: callers must pass the real (symlink-free) path.
    pub fn is_path_excluded(&self, path: &Path, is_dir: bool, scope: Scope) -> bool {
        let c = self.compiled(scope);
        if c.is_empty_for_paths() {
            return false;
        }
        if !is_dir {
            if c.files.contains(path) {
                return true;
            }
            if !c.extensions.is_empty() {
                if let Some(name) = path.file_name() {
                    let b = name.as_bytes();
                    for i in 0..b.len() {
                        if b[i] == b'.' && c.extensions.contains(&b[i..]) {
                            return true;
                        }
                    }
                }
            }
        }
        if !c.dirs.is_empty() && path.ancestors().any(|a| c.dirs.contains(a)) {
            return true;
        }
        if !c.patterns.is_empty() {
            let parts: Vec<&[u8]> = normal_components(path).map(|s| s.as_bytes()).collect();
            if c.patterns.iter().any(|p| p.matches(&parts, is_dir)) {
                return true;
            }
        }
        false
    }

    /// True when a process is excluded in `scope`: `exe` is its executable's full (real) path,
    /// `name` its `comm`-like name. A name exclusion matches `name` or the base name of `exe`.
    ///
    /// Callers should derive `name` from the executable (or pass `""`), not from
    /// `/proc/<pid>/comm` alone: a process can rename its `comm` with `prctl(PR_SET_NAME)` and
    /// would then be excluded by an admin's name exclusion.
    pub fn is_process_excluded(&self, exe: &Path, name: &str, scope: Scope) -> bool {
        let c = self.compiled(scope);
        let base = exe.file_name();
        let name_os = OsStr::new(name);
        if !c.proc_names.is_empty()
            && ((!name.is_empty() && c.proc_names.contains(name_os)) || base.is_some_and(|b| c.proc_names.contains(b)))
        {
            return true;
        }
        if c.proc_name_globs.iter().any(|g| {
            (!name.is_empty() && g.matches(name.as_bytes())) || base.is_some_and(|b| g.matches(b.as_bytes()))
        }) {
            return true;
        }
        if c.proc_paths.contains(exe) {
            return true;
        }
        if !c.proc_path_patterns.is_empty() {
            let parts: Vec<&[u8]> = normal_components(exe).map(|s| s.as_bytes()).collect();
            if c.proc_path_patterns.iter().any(|p| p.matches(&parts, false)) {
                return true;
            }
        }
        false
    }
}

/// Checks the rules shared by path-like values; `what` names the kind in messages.
fn validate_path(path: &str, what: &str, global: bool) -> Result<(), String> {
    if path.is_empty() {
        return Err(format!("{what} exclusions need a path"));
    }
    if path.contains('\0') {
        return Err(format!("{what} exclusion paths cannot contain a NUL character: {path:?}"));
    }
    if global && has_wildcard(path.as_bytes()) {
        return Err(format!("global exclusions cannot use wildcards: {path}"));
    }
    if !path.starts_with('/') {
        return Err(format!("{what} exclusions need a full (absolute) path: {path}"));
    }
    if Path::new(path).components().any(|c| c == Component::ParentDir) {
        return Err(format!("{what} exclusion paths cannot contain '..': {path}"));
    }
    if path.split('/').any(|c| c.contains("**")) {
        return Err(format!("'**' is not a supported wildcard (use a folder exclusion or a trailing '*'): {path}"));
    }
    Ok(())
}

/// Checks an exclusion for the rules of its kind and scope; the error names what is wrong.
pub fn validate(e: &Exclusion) -> Result<(), String> {
    let global = e.scopes.contains(&Scope::Global);
    match &e.kind {
        ExclusionKind::Path { path, is_directory } => {
            let what = if *is_directory { "folder" } else { "file" };
            validate_path(path, what, global)?;
            if !*is_directory && path.ends_with('/') {
                return Err(format!("file exclusion paths cannot end in '/': {path} (use a folder exclusion)"));
            }
            if tidy(path) == Path::new("/") && !has_wildcard(path.as_bytes()) {
                return Err(format!("{what} exclusion cannot be the root directory: {path}"));
            }
            Ok(())
        }
        ExclusionKind::Extension { extension } => {
            if global {
                return Err(format!("extension exclusions cannot be global: {extension}"));
            }
            let bare = extension.strip_prefix('.').unwrap_or(extension);
            if bare.is_empty() {
                return Err(format!("extension exclusions need an extension: {extension:?}"));
            }
            if bare.contains('/') || bare.contains('\0') {
                return Err(format!("extensions cannot contain '/' or NUL: {extension:?}"));
            }
            if has_wildcard(bare.as_bytes()) {
                return Err(format!("extension exclusions cannot use wildcards: {extension}"));
            }
            Ok(())
        }
        ExclusionKind::ProcessName { name } => {
            if name.is_empty() {
                return Err("process exclusions need a name or a path".to_string());
            }
            if name.contains('/') {
                return Err(format!("process names cannot contain '/' (use a process path exclusion): {name}"));
            }
            if name.contains('\0') {
                return Err(format!("process names cannot contain a NUL character: {name:?}"));
            }
            if global {
                if has_wildcard(name.as_bytes()) {
                    return Err(format!("global exclusions cannot use wildcards: {name}"));
                }
                return Err(format!("global process exclusions need the full executable path, not a name: {name}"));
            }
            Ok(())
        }
        ExclusionKind::ProcessPath { path } => {
            validate_path(path, "process", global)?;
            if path.ends_with('/') {
                return Err(format!("process exclusion paths name an executable and cannot end in '/': {path}"));
            }
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::ffi::OsStringExt;

    /// A path from raw bytes (for non-UTF-8 names).
    fn os(b: &[u8]) -> PathBuf {
        PathBuf::from(OsString::from_vec(b.to_vec()))
    }

    fn folder(p: &str, scopes: &[Scope]) -> Exclusion {
        Exclusion {
            kind: ExclusionKind::Path { path: p.into(), is_directory: true },
            scopes: scopes.to_vec(),
            managed: false,
        }
    }
    fn file(p: &str, scopes: &[Scope]) -> Exclusion {
        Exclusion {
            kind: ExclusionKind::Path { path: p.into(), is_directory: false },
            scopes: scopes.to_vec(),
            managed: false,
        }
    }
    fn ext(e: &str, scopes: &[Scope]) -> Exclusion {
        Exclusion { kind: ExclusionKind::Extension { extension: e.into() }, scopes: scopes.to_vec(), managed: false }
    }
    fn pname(n: &str, scopes: &[Scope]) -> Exclusion {
        Exclusion { kind: ExclusionKind::ProcessName { name: n.into() }, scopes: scopes.to_vec(), managed: false }
    }
    fn ppath(p: &str, scopes: &[Scope]) -> Exclusion {
        Exclusion { kind: ExclusionKind::ProcessPath { path: p.into() }, scopes: scopes.to_vec(), managed: false }
    }

    const E: &[Scope] = &[Scope::Epp];
    const G: &[Scope] = &[Scope::Global];
    const EG: &[Scope] = &[Scope::Epp, Scope::Global];

    /// (exclusion, query path, query is_dir, expected in epp)
    type PathCase = (fn(&str, &[Scope]) -> Exclusion, &'static str, &'static str, bool, bool);

    #[test]
    fn path_rules_table() {
        let cases: &[PathCase] = &[
            // Folder without wildcards: the folder and everything below it.
            (folder, "/var/log", "/var/log", true, true),
            (folder, "/var/log", "/var/log/syslog", false, true),
            (folder, "/var/log", "/var/log/a/b/c.txt", false, true),
            (folder, "/var/log", "/var/log/a/b", true, true),
            (folder, "/var/log", "/var/logs/x", false, false),
            (folder, "/var/log", "/var/lo", true, false),
            (folder, "/var/log", "/var", true, false),
            (folder, "/var/log/", "/var/log/x", false, true),
            (folder, "/var//log", "/var/log/x", false, true),
            (folder, "/var/log", "/var//log/./x", false, true),
            // File without wildcards: only that file.
            (file, "/etc/passwd", "/etc/passwd", false, true),
            (file, "/etc/passwd", "/etc/passwd/x", false, false),
            (file, "/etc/passwd", "/etc/passwd", true, false),
            (file, "/etc/passwd", "/etc/passwd2", false, false),
            (file, "/etc/passwd", "/etc", true, false),
            // `*` inside a path: exactly one folder level, and (folder) everything below.
            (folder, "/var/*/tmp", "/var/abc/tmp", true, true),
            (folder, "/var/*/tmp", "/var/abc/tmp/x", false, true),
            (folder, "/var/*/tmp", "/var/abc/tmp/x/y/z", false, true),
            (folder, "/var/*/tmp", "/var/def/tmp/f", false, true),
            (folder, "/var/*/tmp", "/var/abc/log", true, false),
            (folder, "/var/*/tmp", "/var/abc/log/f", false, false),
            (folder, "/var/*/tmp", "/var/a/b/tmp", true, false),
            (folder, "/var/*/tmp", "/var/a/b/tmp/f", false, false),
            (folder, "/var/*/tmp", "/var/tmp", true, false),
            (folder, "/var/*/tmp", "/var/abc", true, false),
            (folder, "/var/*/tmp", "/usr/abc/tmp/f", false, false),
            // `*` within a component: any run of characters of that component only.
            (folder, "/var/ab*/tmp", "/var/abc/tmp/f", false, true),
            (folder, "/var/ab*/tmp", "/var/ab/tmp/f", false, true),
            (folder, "/var/ab*/tmp", "/var/xabc/tmp/f", false, false),
            (file, "/var/log/*.log", "/var/log/x.log", false, true),
            (file, "/var/log/*.log", "/var/log/.log", false, true),
            (file, "/var/log/*.log", "/var/log/x.txt", false, false),
            (file, "/var/log/*.log", "/var/log/sub/x.log", false, false),
            (file, "/var/log/*.log", "/var/log/x.log", true, false),
            (file, "/var/*/x.log", "/var/a/x.log", false, true),
            (file, "/var/*/x.log", "/var/a/b/x.log", false, false),
            // Trailing `*`: everything below the parent, not the parent itself.
            (folder, "/var/log/*", "/var/log/a", false, true),
            (folder, "/var/log/*", "/var/log/a", true, true),
            (folder, "/var/log/*", "/var/log/a/b/c", false, true),
            (folder, "/var/log/*", "/var/log", true, false),
            (folder, "/var/log/*", "/var/logx/a", false, false),
            (folder, "/var/*/", "/var/a/b", false, true),
            (file, "/var/log/*", "/var/log/a/b/c", false, true),
            (file, "/var/log/*", "/var/log/d", true, true),
            (folder, "/var/*/log/*", "/var/a/log/x/y", false, true),
            (folder, "/var/*/log/*", "/var/a/log", true, false),
            (folder, "/var/*/log/*", "/var/a/b/log/x", false, false),
            // `?`: exactly one character, never `/`, never zero.
            (file, "/var/log/install.?.log", "/var/log/install.1.log", false, true),
            (file, "/var/log/install.?.log", "/var/log/install.12.log", false, false),
            (file, "/var/log/install.?.log", "/var/log/install..log", false, false),
            (file, "/tmp/file?.log", "/tmp/file1.log", false, true),
            (file, "/tmp/file?.log", "/tmp/file123.log", false, false),
            (file, "/tmp/file?.log", "/tmp/file/.log", false, false),
            (file, "/tmp/file?.log", "/tmp/fileé.log", false, true),
            (folder, "/v?r/log", "/var/log/x", false, true),
            (folder, "/v?r/log", "/vr/log/x", false, false),
            (folder, "/v?r/log", "/vaar/log/x", false, false),
            // Mixed wildcards.
            (folder, "/home/*/.cache/?ip", "/home/al/.cache/pip/wheels/x", false, true),
            (folder, "/home/*/.cache/?ip", "/home/al/.cache/pipx/x", false, false),
        ];
        for (i, (mk, excl, path, is_dir, want)) in cases.iter().enumerate() {
            let e = mk(excl, E);
            assert_eq!(validate(&e), Ok(()), "case {i}: {excl} should be valid");
            let m = ExclusionMatcher::new(&[e]);
            assert_eq!(
                m.is_path_excluded(Path::new(path), *is_dir, Scope::Epp),
                *want,
                "case {i}: exclusion {excl:?} vs {path:?} (dir={is_dir})"
            );
            // An epp-only exclusion never matches in the global scope.
            assert!(!m.is_path_excluded(Path::new(path), *is_dir, Scope::Global), "case {i}: global");
        }
    }

    #[test]
    fn scopes() {
        let m = ExclusionMatcher::new(&[
            folder("/g", G),
            folder("/e", E),
            folder("/both", EG),
            folder("/default", &[]),
            file("/gf", G),
        ]);
        let q = |p: &str, s| m.is_path_excluded(Path::new(p), false, s);
        // Global exclusions are not for on-demand scans (which ask Epp).
        assert!(!q("/g/x", Scope::Epp));
        assert!(q("/g/x", Scope::Global));
        assert!(q("/gf", Scope::Global));
        assert!(!q("/gf", Scope::Epp));
        assert!(q("/e/x", Scope::Epp));
        assert!(!q("/e/x", Scope::Global));
        assert!(q("/both/x", Scope::Epp));
        assert!(q("/both/x", Scope::Global));
        // No scopes = epp (the CLI default, legacy managed entries).
        assert!(q("/default/x", Scope::Epp));
        assert!(!q("/default/x", Scope::Global));
    }

    #[test]
    fn extensions() {
        let m = ExclusionMatcher::new(&[ext(".log", E), ext("tmp", E), ext(".tar.gz", E)]);
        let cases: &[(&str, bool, bool)] = &[
            ("/var/a.log", false, true),
            ("/var/a.b.log", false, true),
            ("/var/.log", false, true),
            ("/a.tmp", false, true),
            ("/x/y.tar.gz", false, true),
            ("/x/y.gz", false, false),
            ("/var/a.LOG", false, false),
            ("/var/alog", false, false),
            ("/var/a.logx", false, false),
            ("/var/a.log.1", false, false),
            ("/var/dir.log", true, false),
            ("/var/dir.log/inner", false, false),
        ];
        for (p, d, want) in cases {
            assert_eq!(m.is_path_excluded(Path::new(p), *d, Scope::Epp), *want, "{p} dir={d}");
            assert!(!m.is_path_excluded(Path::new(p), *d, Scope::Global));
        }
        // Non-UTF-8 names.
        assert!(m.is_path_excluded(&os(b"/x/\xff\xfe.log"), false, Scope::Epp));
        assert!(!m.is_path_excluded(&os(b"/x/\xff\xfe.lo"), false, Scope::Epp));
    }

    #[test]
    fn non_utf8_and_newline_paths() {
        let m = ExclusionMatcher::new(&[folder("/data/*/cache", E), file("/tmp/a?b", E)]);
        assert!(m.is_path_excluded(&os(b"/data/\xff\x01/cache/f"), false, Scope::Epp));
        assert!(m.is_path_excluded(Path::new("/data/x\ny/cache"), true, Scope::Epp));
        assert!(m.is_path_excluded(Path::new("/tmp/a\nb"), false, Scope::Epp));
        // `?` is one (invalid) byte when the name is not UTF-8.
        assert!(m.is_path_excluded(&os(b"/tmp/a\xffb"), false, Scope::Epp));
        assert!(!m.is_path_excluded(&os(b"/tmp/a\xff\xffb"), false, Scope::Epp));
    }

    #[test]
    fn processes() {
        let m = ExclusionMatcher::new(&[
            pname("cat", E),
            pname("c?t", E),
            pname("java*", E),
            ppath("/usr/bin/dd", E),
            ppath("/opt/*/bin/run", E),
            ppath("/srv/tools/*", E),
            ppath("/usr/sbin/sshd", G),
        ]);
        let q = |exe: &str, name: &str, s| m.is_process_excluded(Path::new(exe), name, s);
        assert!(q("/bin/cat", "cat", Scope::Epp));
        assert!(q("/usr/local/bin/cat", "", Scope::Epp)); // by the executable's base name
        assert!(q("/bin/cut", "cut", Scope::Epp)); // c?t
        assert!(!q("/bin/chat", "chat", Scope::Epp));
        assert!(q("/usr/lib/jvm/bin/java", "java", Scope::Epp));
        assert!(q("/x/javac", "javac", Scope::Epp));
        // comm truncated to 15 bytes still matches through the executable's base name.
        let m2 = ExclusionMatcher::new(&[pname("averyveryverylongname", E)]);
        assert!(m2.is_process_excluded(Path::new("/opt/averyveryverylongname"), "averyveryveryl", Scope::Epp));
        assert!(q("/usr/bin/dd", "dd", Scope::Epp));
        assert!(!q("/bin/dd", "ddx", Scope::Epp));
        assert!(q("/opt/app/bin/run", "run", Scope::Epp));
        assert!(!q("/opt/a/b/bin/run", "run", Scope::Epp));
        assert!(q("/srv/tools/a/b/c", "c", Scope::Epp));
        assert!(!q("/srv/tools", "tools", Scope::Epp));
        assert!(!q("/bin/ls", "ls", Scope::Epp));
        // Scopes.
        assert!(q("/usr/sbin/sshd", "sshd", Scope::Global));
        assert!(!q("/usr/sbin/sshd", "sshd", Scope::Epp));
        assert!(!q("/bin/cat", "cat", Scope::Global));
        // Process exclusions do not exclude paths and vice versa.
        assert!(!m.is_path_excluded(Path::new("/usr/bin/dd"), false, Scope::Epp));
        let m3 = ExclusionMatcher::new(&[file("/usr/bin/dd", E)]);
        assert!(!m3.is_process_excluded(Path::new("/usr/bin/dd"), "dd", Scope::Epp));
    }

    #[test]
    fn validation_table() {
        let ok: Vec<Exclusion> = vec![
            folder("/var/log", EG),
            folder("/var/*/tmp", E),
            folder("/var/log/*", E),
            file("/tmp/file?.log", E),
            file("/etc/shadow", G),
            ext(".log", E),
            ext("log", &[]),
            pname("cat", E),
            pname("c?t", E),
            ppath("/usr/bin/cat", EG),
            ppath("/opt/*/bin/run", E),
        ];
        for e in &ok {
            assert_eq!(validate(e), Ok(()), "{e:?}");
        }
        let bad: Vec<(Exclusion, &str)> = vec![
            (folder("/var/*/tmp", G), "global exclusions cannot use wildcards: /var/*/tmp"),
            (folder("/var/*/tmp", EG), "global exclusions cannot use wildcards: /var/*/tmp"),
            (file("/tmp/file?.log", G), "global exclusions cannot use wildcards: /tmp/file?.log"),
            (folder("/var/log/*", G), "global exclusions cannot use wildcards"),
            (folder("var/log", E), "need a full (absolute) path: var/log"),
            (folder("var/log", G), "need a full (absolute) path"),
            (file("file.log", E), "file exclusions need a full (absolute) path: file.log"),
            (folder("", E), "folder exclusions need a path"),
            (folder("/var/../etc", E), "cannot contain '..'"),
            (folder("/", E), "cannot be the root directory"),
            (folder("/var/**/x", E), "'**' is not a supported wildcard"),
            (file("/tmp/dir/", E), "file exclusion paths cannot end in '/'"),
            (ext(".log", G), "extension exclusions cannot be global: .log"),
            (ext(".log", EG), "extension exclusions cannot be global"),
            (ext(".", E), "need an extension"),
            (ext("", E), "need an extension"),
            (ext("a/b", E), "cannot contain '/'"),
            (ext("*.log", E), "extension exclusions cannot use wildcards"),
            (pname("", E), "need a name or a path"),
            (pname("/bin/cat", E), "use a process path exclusion"),
            (pname("cat", G), "global process exclusions need the full executable path"),
            (pname("c?t", G), "global exclusions cannot use wildcards: c?t"),
            (ppath("bin/cat", E), "process exclusions need a full (absolute) path: bin/cat"),
            (ppath("/opt/*/run", G), "global exclusions cannot use wildcards: /opt/*/run"),
            (ppath("/usr/bin/", E), "cannot end in '/'"),
        ];
        for (e, want) in &bad {
            let err = validate(e).expect_err(&format!("{e:?} should be invalid"));
            assert!(err.contains(want), "{e:?}: got {err:?}, want {want:?}");
            // Invalid exclusions never match anything.
            let m = ExclusionMatcher::new(std::slice::from_ref(e));
            for s in [Scope::Epp, Scope::Global] {
                assert!(!m.is_path_excluded(Path::new("/var/x/tmp/y"), false, s));
                assert!(!m.is_path_excluded(Path::new("/var/log/x.log"), false, s));
                assert!(!m.is_process_excluded(Path::new("/bin/cat"), "cat", s));
            }
        }
    }

    #[test]
    fn global_exact_rules() {
        let m = ExclusionMatcher::new(&[folder("/srv/data", G), file("/etc/shadow", G)]);
        assert!(m.is_path_excluded(Path::new("/srv/data/a/b"), false, Scope::Global));
        assert!(m.is_path_excluded(Path::new("/srv/data"), true, Scope::Global));
        assert!(!m.is_path_excluded(Path::new("/srv/database"), true, Scope::Global));
        assert!(m.is_path_excluded(Path::new("/etc/shadow"), false, Scope::Global));
        assert!(!m.is_path_excluded(Path::new("/etc/shadow-"), false, Scope::Global));
        assert!(!m.is_path_excluded(Path::new("/srv/data/a"), false, Scope::Epp));
    }

    #[test]
    fn many_exclusions_and_empty() {
        let m = ExclusionMatcher::default();
        assert!(m.is_empty());
        assert!(!m.is_path_excluded(Path::new("/x"), false, Scope::Epp));
        assert!(!m.is_process_excluded(Path::new("/x"), "x", Scope::Epp));
        let list: Vec<Exclusion> = (0..1000).map(|i| folder(&format!("/data/d{i}"), E)).collect();
        let m = ExclusionMatcher::new(&list);
        assert_eq!(m.exclusions().len(), 1000);
        assert!(m.is_path_excluded(Path::new("/data/d999/x/y"), false, Scope::Epp));
        assert!(!m.is_path_excluded(Path::new("/data/d1000/x"), false, Scope::Epp));
    }

    #[test]
    fn glob_matcher() {
        let cases: &[(&str, &str, bool)] = &[
            ("*", "", true),
            ("*", "abc", true),
            ("a*", "a", true),
            ("a*c", "abbbc", true),
            ("a*c", "abbb", false),
            ("*b*", "abc", true),
            ("*b*", "ac", false),
            ("a?c", "abc", true),
            ("a?c", "ac", false),
            ("??", "é", false),
            ("?", "é", true),
            ("*.log", "a.b.log", true),
            ("*a*a*a*a*b", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", false),
        ];
        for (p, s, want) in cases {
            assert_eq!(glob_match(p.as_bytes(), s.as_bytes()), *want, "{p} vs {s}");
        }
    }

    #[test]
    fn serde_roundtrip() {
        let e = folder("/var/*/tmp", E);
        let j = serde_json::to_string(&e).unwrap();
        let back: Exclusion = serde_json::from_str(&j).unwrap();
        assert_eq!(back, e);
    }
}
