//! Logging: `tracing` to stderr (the journal under systemd) and to
//! `/var/log/microsoft/mdatp/microsoft_defender_core.log`, rotated by size into `rotated/`.
//! The level changes live (`mdatp log level set`).

#![forbid(unsafe_code)]

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use tracing_subscriber::filter::LevelFilter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::reload;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::Layer;

use crate::config::LogLevel;

/// Bytes after which the log is rotated.
pub const ROTATE_BYTES: u64 = 10 << 20;
/// Rotated files kept.
pub const ROTATE_KEEP: usize = 5;
pub const LOG_NAME: &str = "microsoft_defender_core.log";

pub fn level_filter(l: LogLevel) -> LevelFilter {
    match l {
        LogLevel::Error => LevelFilter::ERROR,
        LogLevel::Warning => LevelFilter::WARN,
        LogLevel::Info => LevelFilter::INFO,
        LogLevel::Verbose => LevelFilter::DEBUG,
        LogLevel::Debug => LevelFilter::TRACE,
    }
}

/// A log file that moves itself to `rotated/NAME.N` when it grows past a size.
pub struct RotatingFile {
    dir: PathBuf,
    state: Mutex<Option<(File, u64)>>,
}

impl RotatingFile {
    pub fn new(dir: PathBuf) -> RotatingFile {
        RotatingFile { dir, state: Mutex::new(None) }
    }

    fn open(&self) -> io::Result<(File, u64)> {
        fs::create_dir_all(&self.dir)?;
        let f = OpenOptions::new().create(true).append(true).open(self.dir.join(LOG_NAME))?;
        let len = f.metadata()?.len();
        Ok((f, len))
    }

    fn rotate(&self) -> io::Result<()> {
        let rot = self.dir.join("rotated");
        fs::create_dir_all(&rot)?;
        let _ = fs::remove_file(rot.join(format!("{LOG_NAME}.{ROTATE_KEEP}")));
        for i in (1..ROTATE_KEEP).rev() {
            let _ = fs::rename(rot.join(format!("{LOG_NAME}.{i}")), rot.join(format!("{LOG_NAME}.{}", i + 1)));
        }
        fs::rename(self.dir.join(LOG_NAME), rot.join(format!("{LOG_NAME}.1")))
    }
}

impl Write for &RotatingFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if st.as_ref().is_some_and(|(_, n)| *n >= ROTATE_BYTES) {
            *st = None;
            let _ = self.rotate();
        }
        if st.is_none() {
            *st = Some(self.open()?);
        }
        let (f, n) = st.as_mut().expect("opened above");
        f.write_all(buf)?;
        *n += buf.len() as u64;
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Changes the level of a running logger.
#[derive(Clone)]
pub struct LevelHandle(reload::Handle<LevelFilter, tracing_subscriber::Registry>);

impl LevelHandle {
    pub fn set(&self, l: LogLevel) {
        let _ = self.0.modify(|f| *f = level_filter(l));
    }
}

/// Installs the daemon's logger. `log_dir` is created if needed.
pub fn init(log_dir: PathBuf, level: LogLevel) -> LevelHandle {
    let (filter, handle) = reload::Layer::new(level_filter(level));
    let file = Arc::new(RotatingFile::new(log_dir));
    let stderr = tracing_subscriber::fmt::layer().with_writer(io::stderr).with_target(false);
    let file_layer = tracing_subscriber::fmt::layer().with_writer(file).with_ansi(false).with_target(false);
    let _ = tracing_subscriber::registry()
        .with(filter)
        .with(stderr.boxed())
        .with(file_layer.boxed())
        .try_init();
    LevelHandle(handle)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rotates_past_the_limit() {
        let d = tempfile::tempdir().unwrap();
        let rf = RotatingFile::new(d.path().to_path_buf());
        let line = vec![b'x'; 1 << 20];
        for _ in 0..(ROTATE_BYTES / (1 << 20) + 2) {
            (&rf).write_all(&line).unwrap();
        }
        assert!(d.path().join("rotated").join(format!("{LOG_NAME}.1")).exists());
        assert!(fs::metadata(d.path().join(LOG_NAME)).unwrap().len() < ROTATE_BYTES);
    }
}
