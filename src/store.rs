//! The embedded database: threat history, quarantine index and scan history.
//!
//! SQLite (rusqlite, bundled) in WAL mode with `synchronous=FULL`: every committed change
//! survives a kill or a power cut, and a half-written transaction is rolled back on open.
//! Quarantine uses it as its journal (see `quarantine.rs`).

#![forbid(unsafe_code)]

use std::path::Path;

use rusqlite::{params, Connection, OptionalExtension, Row};
use serde::Serialize;

/// Threat states, as stored and shown.
pub mod state {
    /// Detected and left in place (passive or audit, allowed action off, or failed remediation).
    pub const DETECTED: &str = "detected";
    /// Being moved into quarantine; a crash here is repaired on the next start.
    pub const QUARANTINING: &str = "quarantining";
    pub const QUARANTINED: &str = "quarantined";
    /// Quarantined content deleted for good (`quarantine remove`).
    pub const REMOVED: &str = "removed";
    pub const RESTORED: &str = "restored";
    /// The file vanished before it could be quarantined.
    pub const VANISHED: &str = "vanished";
}

/// One detection.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Threat {
    pub id: String,
    pub name: String,
    #[serde(rename = "type")]
    pub threat_type: String,
    pub path: String,
    /// Path inside an archive, when the detection is in one.
    pub inner: Option<String>,
    pub sha256: Option<String>,
    pub size: Option<u64>,
    pub mode: Option<u32>,
    pub uid: Option<u32>,
    pub gid: Option<u32>,
    /// Unix seconds.
    pub detected_at: i64,
    /// Scan id, or `real_time`.
    pub source: String,
    pub state: String,
    pub updated_at: i64,
}

/// One scan in the history.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct ScanRecord {
    pub id: String,
    #[serde(rename = "type")]
    pub scan_type: String,
    pub paths: Vec<String>,
    pub started_at: i64,
    pub finished_at: Option<i64>,
    /// running, completed, cancelled, failed, interrupted.
    pub state: String,
    pub files_scanned: u64,
    pub threats_detected: u64,
}

pub struct Store {
    conn: Connection,
}

pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS threats (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    type TEXT NOT NULL,
    path TEXT NOT NULL,
    inner TEXT,
    sha256 TEXT,
    size INTEGER,
    mode INTEGER,
    uid INTEGER,
    gid INTEGER,
    detected_at INTEGER NOT NULL,
    source TEXT NOT NULL,
    state TEXT NOT NULL,
    updated_at INTEGER NOT NULL,
    restore_tmp TEXT
);
CREATE INDEX IF NOT EXISTS threats_path ON threats(path);
CREATE INDEX IF NOT EXISTS threats_state ON threats(state);
CREATE TABLE IF NOT EXISTS scans (
    id TEXT PRIMARY KEY,
    type TEXT NOT NULL,
    paths TEXT NOT NULL,
    started_at INTEGER NOT NULL,
    finished_at INTEGER,
    state TEXT NOT NULL,
    files_scanned INTEGER NOT NULL DEFAULT 0,
    threats_detected INTEGER NOT NULL DEFAULT 0
);
";

fn threat_from_row(r: &Row<'_>) -> rusqlite::Result<Threat> {
    Ok(Threat {
        id: r.get(0)?,
        name: r.get(1)?,
        threat_type: r.get(2)?,
        path: r.get(3)?,
        inner: r.get(4)?,
        sha256: r.get(5)?,
        size: r.get::<_, Option<i64>>(6)?.map(|v| v as u64),
        mode: r.get(7)?,
        uid: r.get(8)?,
        gid: r.get(9)?,
        detected_at: r.get(10)?,
        source: r.get(11)?,
        state: r.get(12)?,
        updated_at: r.get(13)?,
    })
}

const THREAT_COLS: &str =
    "id, name, type, path, inner, sha256, size, mode, uid, gid, detected_at, source, state, updated_at";

fn scan_from_row(r: &Row<'_>) -> rusqlite::Result<ScanRecord> {
    let paths: String = r.get(2)?;
    Ok(ScanRecord {
        id: r.get(0)?,
        scan_type: r.get(1)?,
        paths: serde_json::from_str(&paths).unwrap_or_default(),
        started_at: r.get(3)?,
        finished_at: r.get(4)?,
        state: r.get(5)?,
        files_scanned: r.get::<_, i64>(6)? as u64,
        threats_detected: r.get::<_, i64>(7)? as u64,
    })
}

impl Store {
    pub fn open(path: &Path) -> rusqlite::Result<Store> {
        let conn = Connection::open(path)?;
        conn.busy_timeout(std::time::Duration::from_secs(10))?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.execute_batch(SCHEMA)?;
        Ok(Store { conn })
    }

    pub fn insert_threat(&self, t: &Threat) -> rusqlite::Result<()> {
        self.conn.execute(
            &format!("INSERT INTO threats ({THREAT_COLS}) VALUES (?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11,?12,?13,?14)"),
            params![
                t.id, t.name, t.threat_type, t.path, t.inner, t.sha256, t.size.map(|v| v as i64), t.mode, t.uid, t.gid,
                t.detected_at, t.source, t.state, t.updated_at
            ],
        )?;
        Ok(())
    }

    /// Records what quarantine learned of the file (hash, size, owner) with the state.
    pub fn update_file_facts(&self, id: &str, sha256: &str, size: u64, mode: u32, uid: u32, gid: u32) -> rusqlite::Result<()> {
        self.conn.execute(
            "UPDATE threats SET sha256=?2, size=?3, mode=?4, uid=?5, gid=?6, updated_at=?7 WHERE id=?1",
            params![id, sha256, size as i64, mode, uid, gid, now()],
        )?;
        Ok(())
    }

    pub fn set_state(&self, id: &str, state: &str) -> rusqlite::Result<bool> {
        let n = self
            .conn
            .execute("UPDATE threats SET state=?2, updated_at=?3 WHERE id=?1", params![id, state, now()])?;
        Ok(n == 1)
    }

    /// Journals (or clears) the temporary file a restore is writing.
    pub fn set_restore_tmp(&self, id: &str, tmp: Option<&str>) -> rusqlite::Result<()> {
        self.conn.execute("UPDATE threats SET restore_tmp=?2 WHERE id=?1", params![id, tmp])?;
        Ok(())
    }

    /// Restores that were writing when the daemon stopped: `(id, temporary file)`.
    pub fn restore_tmps(&self) -> rusqlite::Result<Vec<(String, String)>> {
        let mut st = self.conn.prepare("SELECT id, restore_tmp FROM threats WHERE restore_tmp IS NOT NULL")?;
        let rows = st.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
        rows.collect()
    }

    pub fn threat(&self, id: &str) -> rusqlite::Result<Option<Threat>> {
        self.conn
            .query_row(&format!("SELECT {THREAT_COLS} FROM threats WHERE id=?1"), [id], threat_from_row)
            .optional()
    }

    pub fn threats(&self) -> rusqlite::Result<Vec<Threat>> {
        let mut st = self
            .conn
            .prepare(&format!("SELECT {THREAT_COLS} FROM threats ORDER BY detected_at, rowid"))?;
        let rows = st.query_map([], threat_from_row)?;
        rows.collect()
    }

    pub fn threats_in_state(&self, state: &str) -> rusqlite::Result<Vec<Threat>> {
        let mut st = self
            .conn
            .prepare(&format!("SELECT {THREAT_COLS} FROM threats WHERE state=?1 ORDER BY detected_at, rowid"))?;
        let rows = st.query_map([state], threat_from_row)?;
        rows.collect()
    }

    pub fn insert_scan(&self, s: &ScanRecord) -> rusqlite::Result<()> {
        self.conn.execute(
            "INSERT INTO scans (id, type, paths, started_at, finished_at, state, files_scanned, threats_detected)
             VALUES (?1,?2,?3,?4,?5,?6,?7,?8)",
            params![
                s.id, s.scan_type, serde_json::to_string(&s.paths).unwrap_or_default(), s.started_at, s.finished_at,
                s.state, s.files_scanned as i64, s.threats_detected as i64
            ],
        )?;
        Ok(())
    }

    pub fn finish_scan(&self, id: &str, state: &str, files: u64, threats: u64) -> rusqlite::Result<()> {
        self.conn.execute(
            "UPDATE scans SET finished_at=?2, state=?3, files_scanned=?4, threats_detected=?5 WHERE id=?1",
            params![id, now(), state, files as i64, threats as i64],
        )?;
        Ok(())
    }

    /// Scans that were running when the daemon stopped are marked interrupted.
    pub fn mark_interrupted_scans(&self) -> rusqlite::Result<usize> {
        self.conn
            .execute("UPDATE scans SET state='interrupted', finished_at=?1 WHERE state='running'", [now()])
    }

    pub fn scans(&self) -> rusqlite::Result<Vec<ScanRecord>> {
        let mut st = self.conn.prepare(
            "SELECT id, type, paths, started_at, finished_at, state, files_scanned, threats_detected
             FROM scans ORDER BY started_at, rowid",
        )?;
        let rows = st.query_map([], scan_from_row)?;
        rows.collect()
    }

    /// Applies `scanResultsRetentionDays` and `scanHistoryMaximumItems`. Threats still in
    /// quarantine are never pruned (their content would be orphaned).
    pub fn prune(&self, retention_days: u32, max_items: u32) -> rusqlite::Result<()> {
        let cutoff = now() - i64::from(retention_days) * 86400;
        let keep_q = "state NOT IN ('quarantined', 'quarantining')";
        self.conn.execute(&format!("DELETE FROM threats WHERE detected_at < ?1 AND {keep_q}"), [cutoff])?;
        self.conn.execute("DELETE FROM scans WHERE started_at < ?1 AND state != 'running'", [cutoff])?;
        self.conn.execute(
            &format!(
                "DELETE FROM threats WHERE {keep_q} AND rowid NOT IN
                 (SELECT rowid FROM threats ORDER BY detected_at DESC, rowid DESC LIMIT ?1)"
            ),
            [i64::from(max_items)],
        )?;
        self.conn.execute(
            "DELETE FROM scans WHERE state != 'running' AND rowid NOT IN
             (SELECT rowid FROM scans ORDER BY started_at DESC, rowid DESC LIMIT ?1)",
            [i64::from(max_items)],
        )?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn threat(id: &str, at: i64, state: &str) -> Threat {
        Threat {
            id: id.into(),
            name: "X".into(),
            threat_type: "virus".into(),
            path: format!("/tmp/{id}"),
            inner: None,
            sha256: None,
            size: None,
            mode: None,
            uid: None,
            gid: None,
            detected_at: at,
            source: "s".into(),
            state: state.into(),
            updated_at: at,
        }
    }

    #[test]
    fn prune_keeps_quarantined_and_newest() {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open(&dir.path().join("db")).unwrap();
        let old = now() - 100 * 86400;
        s.insert_threat(&threat("old", old, state::DETECTED)).unwrap();
        s.insert_threat(&threat("oldq", old, state::QUARANTINED)).unwrap();
        for i in 0..5 {
            s.insert_threat(&threat(&format!("n{i}"), now() - 10 + i, state::DETECTED)).unwrap();
        }
        s.prune(90, 3).unwrap();
        let ids: Vec<String> = s.threats().unwrap().into_iter().map(|t| t.id).collect();
        assert_eq!(ids, vec!["oldq", "n2", "n3", "n4"]);
    }

    #[test]
    fn state_survives_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("db");
        {
            let s = Store::open(&p).unwrap();
            s.insert_threat(&threat("a", now(), state::QUARANTINING)).unwrap();
            assert!(s.set_state("a", state::QUARANTINED).unwrap());
            assert!(!s.set_state("missing", state::QUARANTINED).unwrap());
        }
        let s = Store::open(&p).unwrap();
        assert_eq!(s.threat("a").unwrap().unwrap().state, state::QUARANTINED);
    }
}
