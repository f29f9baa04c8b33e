//! The few operating-system facts the agent asks for that std does not cover.
//!
//! Every raw syscall and every `unsafe` block of the agent lives in this module (and its
//! submodules); each `unsafe` carries a `SAFETY:` comment and sits in an item that says
//! `#[allow(unsafe_code)]`, so every other item stays under the `deny`.

#![deny(unsafe_code)]

pub mod fanotify;

use std::os::unix::net::UnixStream;

/// Credentials of the process at the other end of a Unix socket (SO_PEERCRED).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PeerCred {
    pub pid: i32,
    pub uid: u32,
    pub gid: u32,
}

pub fn peer_cred(s: &UnixStream) -> std::io::Result<PeerCred> {
    let c = nix::sys::socket::getsockopt(s, nix::sys::socket::sockopt::PeerCredentials)
        .map_err(std::io::Error::from)?;
    Ok(PeerCred { pid: c.pid(), uid: c.uid(), gid: c.gid() })
}

/// The supplementary groups of a running process, from `/proc/PID/status`.
pub fn process_groups(pid: i32) -> Vec<u32> {
    let Ok(status) = std::fs::read_to_string(format!("/proc/{pid}/status")) else { return Vec::new() };
    status
        .lines()
        .find_map(|l| l.strip_prefix("Groups:"))
        .map(|g| g.split_whitespace().filter_map(|x| x.parse().ok()).collect())
        .unwrap_or_default()
}

/// The gid of a group by name, from the system's group database.
pub fn group_id(name: &str) -> Option<u32> {
    nix::unistd::Group::from_name(name).ok().flatten().map(|g| g.gid.as_raw())
}

pub fn euid() -> u32 {
    nix::unistd::geteuid().as_raw()
}
