//! The protocol between `mdatp` and `wdavdaemon`: one JSON request line per connection on a
//! Unix socket, answered by zero or more progress lines and one final reply line.

#![forbid(unsafe_code)]

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::exclusions::Exclusion;

/// Longest request line the daemon reads.
pub const MAX_REQUEST: u64 = 1 << 20;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ScanKind {
    Quick,
    Full,
    Custom,
}

impl ScanKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ScanKind::Quick => "quick",
            ScanKind::Full => "full",
            ScanKind::Custom => "custom",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "cmd", rename_all = "snake_case")]
pub enum Request {
    Health,
    /// `mdatp config SETTING --value VALUE` (`value: None` clears, for `proxy clear`).
    SetConfig { setting: String, value: Option<String> },
    Scan { kind: ScanKind, paths: Vec<String>, ignore_exclusions: bool },
    ScanCancel,
    ScanList,
    ThreatList,
    ThreatGet { id: String },
    AllowedAdd { name: String },
    AllowedRemove { name: String },
    AllowedList,
    ThreatPolicySet { threat_type: String, action: String },
    QuarantineList,
    QuarantineAdd { id: String },
    QuarantineRemove { id: String },
    QuarantineRemoveAll,
    RestoreById { id: String, destination: Option<String> },
    RestoreByPath { path: String, destination: Option<String> },
    ExclusionAdd { exclusion: Exclusion },
    ExclusionRemove { exclusion: Exclusion },
    ExclusionList,
    DefinitionsUpdate,
    DefinitionsRestore,
    LogLevelSet { level: String },
    EdrTagSet { name: String, value: String },
    EdrTagRemove { name: String },
    EdrGroupIds { group_id: String },
}

impl Request {
    /// Commands members of group `mdatp` may run; everything else needs root.
    pub fn read_only(&self) -> bool {
        matches!(
            self,
            Request::Health | Request::ScanList | Request::ThreatList | Request::ThreatGet { .. }
                | Request::AllowedList | Request::QuarantineList | Request::ExclusionList
        )
    }
}

/// Progress of a running scan.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScanProgress {
    pub files_scanned: u64,
    pub threats_detected: u64,
    pub current: Option<String>,
}

/// One line the daemon sends.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Reply {
    Progress { progress: ScanProgress },
    Ok { ok: bool, message: Option<String>, data: serde_json::Value },
    Err { ok: bool, error: String },
}

impl Reply {
    pub fn ok(message: Option<String>, data: serde_json::Value) -> Reply {
        Reply::Ok { ok: true, message, data }
    }
    pub fn err(error: impl Into<String>) -> Reply {
        Reply::Err { ok: false, error: error.into() }
    }
}

pub fn write_line<T: Serialize>(w: &mut impl Write, v: &T) -> std::io::Result<()> {
    let mut s = serde_json::to_vec(v).map_err(std::io::Error::other)?;
    s.push(b'\n');
    w.write_all(&s)?;
    w.flush()
}

/// Sends a request and returns the final reply, calling `on_progress` for progress lines.
pub fn call(socket: &Path, req: &Request, on_progress: &mut dyn FnMut(&ScanProgress)) -> std::io::Result<Reply> {
    let mut s = UnixStream::connect(socket)?;
    write_line(&mut s, req)?;
    let mut r = BufReader::new(s);
    let mut line = String::new();
    loop {
        line.clear();
        if r.read_line(&mut line)? == 0 {
            return Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "the daemon closed the connection without answering",
            ));
        }
        let reply: Reply = serde_json::from_str(&line).map_err(std::io::Error::other)?;
        match reply {
            Reply::Progress { progress } => on_progress(&progress),
            other => return Ok(other),
        }
    }
}
