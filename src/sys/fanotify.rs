//! fanotify: the permission-event group real-time protection listens on.
//!
//! A thin layer over `nix::sys::fanotify` (group creation and marks) plus the two things nix
//! does not offer in the shape real-time protection needs:
//! - events whose descriptor is an owned [`File`] (so a worker can read the file and the
//!   descriptor closes exactly once, after the answer), parsed from the bytes `read(2)` returns;
//! - a response that borrows the event's `File` (so the descriptor number cannot have been
//!   closed and reused by another event when the answer is written).
//!
//! The only `unsafe` is taking ownership of the descriptors the kernel opens for each event.

use std::fs::File;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::path::Path;
use std::time::Duration;

use nix::errno::Errno;
use nix::fcntl::AT_FDCWD;
use nix::poll::{PollFd, PollFlags, PollTimeout};
use nix::sys::fanotify::{EventFFlags, Fanotify, InitFlags, MarkFlags, MaskFlags};

/// The permission events real-time protection asks for.
pub fn perm_mask() -> MaskFlags {
    MaskFlags::FAN_OPEN_PERM | MaskFlags::FAN_OPEN_EXEC_PERM
}

/// Size of `struct fanotify_event_metadata` (version 3: `event_len` u32, `vers` u8,
/// `reserved` u8, `metadata_len` u16, `mask` u64, `fd` i32, `pid` i32).
pub const EVENT_METADATA_LEN: usize = std::mem::size_of::<libc::fanotify_event_metadata>();

/// One event read from a group.
#[derive(Debug)]
pub struct Event {
    /// The event's mask (`FAN_OPEN_PERM`, `FAN_OPEN_EXEC_PERM`, `FAN_Q_OVERFLOW`, ...).
    pub mask: u64,
    /// The process (thread group) that caused it.
    pub pid: i32,
    /// The file, opened by the kernel for us (read-only, no fanotify events of its own);
    /// `None` for a queue overflow.
    pub file: Option<File>,
}

impl Event {
    pub fn is_overflow(&self) -> bool {
        self.mask & libc::FAN_Q_OVERFLOW != 0
    }
    pub fn is_perm(&self) -> bool {
        self.mask & (libc::FAN_OPEN_PERM | libc::FAN_OPEN_EXEC_PERM | libc::FAN_ACCESS_PERM) != 0
    }
    pub fn is_exec(&self) -> bool {
        self.mask & libc::FAN_OPEN_EXEC_PERM != 0
    }
}

/// A fanotify group in the content class (permission events after the file has its data).
#[derive(Debug)]
pub struct Group {
    fan: Fanotify,
}

fn io_err(e: Errno) -> io::Error {
    io::Error::from(e)
}

impl Group {
    /// `fanotify_init(FAN_CLASS_CONTENT | FAN_CLOEXEC | FAN_NONBLOCK, O_RDONLY | O_LARGEFILE |
    /// O_CLOEXEC | O_NOATIME)`. The queue keeps the kernel's bound
    /// (`/proc/sys/fs/fanotify/max_queued_events`, 16384 by default): no `FAN_UNLIMITED_QUEUE`.
    pub fn new_content() -> io::Result<Group> {
        let flags = InitFlags::FAN_CLASS_CONTENT | InitFlags::FAN_CLOEXEC | InitFlags::FAN_NONBLOCK;
        let ev = EventFFlags::O_RDONLY | EventFFlags::O_LARGEFILE | EventFFlags::O_CLOEXEC | EventFFlags::O_NOATIME;
        match Fanotify::init(flags, ev) {
            Ok(fan) => Ok(Group { fan }),
            // Older kernels refuse O_NOATIME in the event flags.
            Err(Errno::EINVAL) => Fanotify::init(flags, ev - EventFFlags::O_NOATIME).map(|fan| Group { fan }).map_err(io_err),
            Err(e) => Err(io_err(e)),
        }
    }

    /// Adds (or removes) the permission events on the whole filesystem `path` lies on
    /// (`FAN_MARK_FILESYSTEM`: every mount of it, bind mounts and other namespaces included).
    pub fn mark_filesystem(&self, path: &Path, add: bool) -> io::Result<()> {
        let cmd = if add { MarkFlags::FAN_MARK_ADD } else { MarkFlags::FAN_MARK_REMOVE };
        self.fan.mark(cmd | MarkFlags::FAN_MARK_FILESYSTEM, perm_mask(), AT_FDCWD, Some(path)).map_err(io_err)
    }

    /// Removes every filesystem mark of the group.
    pub fn flush_filesystems(&self) -> io::Result<()> {
        self.fan
            .mark(MarkFlags::FAN_MARK_FLUSH | MarkFlags::FAN_MARK_FILESYSTEM, MaskFlags::empty(), AT_FDCWD, None::<&Path>)
            .map_err(io_err)
    }

    /// Removes every inode mark of the group: all the ignore marks of the verdict cache.
    pub fn flush_inodes(&self) -> io::Result<()> {
        self.fan.mark(MarkFlags::FAN_MARK_FLUSH, MaskFlags::empty(), AT_FDCWD, None::<&Path>).map_err(io_err)
    }

    /// Puts the permission events in the ignore mask of the inode `file` is open on. Without
    /// `FAN_MARK_IGNORED_SURV_MODIFY`, the kernel clears the mask when the file is modified.
    /// `evictable` adds `FAN_MARK_EVICTABLE` (Linux 5.19): the mark does not pin the inode.
    pub fn ignore_inode(&self, file: &File, evictable: bool) -> io::Result<()> {
        let mut flags = MarkFlags::FAN_MARK_ADD | MarkFlags::FAN_MARK_IGNORED_MASK;
        if evictable {
            flags |= MarkFlags::FAN_MARK_EVICTABLE;
        }
        self.fan.mark(flags, perm_mask(), file.as_fd(), None::<&Path>).map_err(io_err)
    }

    /// Takes the permission events out of the ignore mask of the inode `file` is open on.
    pub fn unignore_inode(&self, file: &File) -> io::Result<()> {
        let flags = MarkFlags::FAN_MARK_REMOVE | MarkFlags::FAN_MARK_IGNORED_MASK;
        self.fan.mark(flags, perm_mask(), file.as_fd(), None::<&Path>).map_err(io_err)
    }

    /// Waits until events can be read, at most `timeout`. Returns true when readable.
    pub fn wait_readable(&self, timeout: Duration) -> io::Result<bool> {
        let t = PollTimeout::try_from(timeout).unwrap_or(PollTimeout::MAX);
        let mut fds = [PollFd::new(self.fan.as_fd(), PollFlags::POLLIN)];
        match nix::poll::poll(&mut fds, t) {
            Ok(n) => Ok(n > 0),
            Err(Errno::EINTR) => Ok(false),
            Err(e) => Err(io_err(e)),
        }
    }

    /// Reads the events available now into `out`, at most `buf.len() / EVENT_METADATA_LEN` of
    /// them (each holds one open descriptor until dropped). Returns 0 when none is queued.
    pub fn read_events(&self, buf: &mut [u8], out: &mut Vec<Event>) -> io::Result<usize> {
        let n = match nix::unistd::read(self.fan.as_fd(), buf) {
            Ok(n) => n,
            Err(Errno::EAGAIN) | Err(Errno::EINTR) => return Ok(0),
            Err(e) => return Err(io_err(e)),
        };
        let before = out.len();
        let mut off = 0;
        while off + EVENT_METADATA_LEN <= n {
            let b = &buf[off..n];
            let event_len = u32::from_ne_bytes(b[0..4].try_into().unwrap()) as usize;
            // `vers` (b[4]) is 3 since Linux 4.20; mask, fd and pid have kept their offsets
            // since version 2, so they are read whatever the version says.
            let mask = u64::from_ne_bytes(b[8..16].try_into().unwrap());
            let fd = i32::from_ne_bytes(b[16..20].try_into().unwrap());
            let pid = i32::from_ne_bytes(b[20..24].try_into().unwrap());
            let file = (fd >= 0).then(|| own_event_fd(fd));
            out.push(Event { mask, pid, file });
            if event_len < EVENT_METADATA_LEN {
                break;
            }
            off += event_len;
        }
        Ok(out.len() - before)
    }

    /// Answers a permission event: `FAN_ALLOW` or `FAN_DENY` (the opener gets EPERM).
    /// Borrowing the event's open `File` guarantees that its descriptor number still names
    /// this event.
    pub fn respond(&self, file: &File, allow: bool) -> io::Result<()> {
        let mut b = [0u8; 8];
        b[0..4].copy_from_slice(&file.as_raw_fd().to_ne_bytes());
        let r = if allow { libc::FAN_ALLOW } else { libc::FAN_DENY };
        b[4..8].copy_from_slice(&r.to_ne_bytes());
        match nix::unistd::write(self.fan.as_fd(), &b) {
            Ok(8) => Ok(()),
            Ok(_) => Err(io::Error::new(io::ErrorKind::WriteZero, "short fanotify response")),
            Err(e) => Err(io_err(e)),
        }
    }

    pub fn as_fd(&self) -> BorrowedFd<'_> {
        self.fan.as_fd()
    }
}

/// Whether `FAN_MARK_EVICTABLE` is supported: tried on an inode mark of a throwaway
/// notification group (EINVAL before Linux 5.19).
pub fn evictable_supported() -> bool {
    let Ok(fan) = Fanotify::init(InitFlags::FAN_CLASS_NOTIF | InitFlags::FAN_CLOEXEC, EventFFlags::O_RDONLY) else {
        return false;
    };
    fan.mark(
        MarkFlags::FAN_MARK_ADD | MarkFlags::FAN_MARK_EVICTABLE,
        MaskFlags::FAN_OPEN,
        AT_FDCWD,
        Some(Path::new("/")),
    )
    .is_ok()
}

/// Takes ownership of a descriptor the kernel opened for an event.
#[allow(unsafe_code)]
fn own_event_fd(fd: i32) -> File {
    // SAFETY: only called by `read_events` with the `fd` field of an event the kernel has just
    // returned: a descriptor opened in this process for this event, whose number nothing else
    // knows. The `File` is therefore its only owner and closes it exactly once.
    File::from(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Waits until `file` (a `/proc/self/mountinfo` descriptor) reports a change of the mount
/// table (`POLLPRI`/`POLLERR`), at most `timeout`. Returns true on a change.
pub fn wait_mount_change(file: &File, timeout: Duration) -> bool {
    let t = PollTimeout::try_from(timeout).unwrap_or(PollTimeout::MAX);
    let mut fds = [PollFd::new(file.as_fd(), PollFlags::POLLPRI)];
    match nix::poll::poll(&mut fds, t) {
        Ok(n) if n > 0 => fds[0].revents().is_some_and(|r| r.intersects(PollFlags::POLLPRI | PollFlags::POLLERR)),
        _ => false,
    }
}

/// The mount flags of the mount `path` lies on contain `noexec`.
pub fn is_noexec_mount(path: &Path) -> bool {
    nix::sys::statvfs::statvfs(path).is_ok_and(|s| s.flags().contains(nix::sys::statvfs::FsFlags::ST_NOEXEC))
}
