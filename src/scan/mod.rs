//! On-demand scanning: one file (`file`), and trees of files (`walk`).

pub mod file;
pub mod walk;
