//! The I/O thread's only wait: poll(2) on its socket and on a self-pipe that other threads write
//! to (a send queued, a destroy). Waking through the pipe instead of polling the socket with a
//! read timeout keeps the latency of a send to one context switch.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// A self-pipe: `wake` from any thread, `wait` on the I/O thread.
pub(super) struct Waker {
    read: OwnedFd,
    write: OwnedFd,
    /// A wake is pending (written, not drained yet): a burst of sends costs one write(2).
    pending: AtomicBool,
}

fn cvt(r: libc::c_int) -> io::Result<libc::c_int> {
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r)
    }
}

fn set_flags(fd: RawFd) -> io::Result<()> {
    // SAFETY: fcntl on a descriptor this module owns.
    unsafe {
        let fl = cvt(libc::fcntl(fd, libc::F_GETFL))?;
        cvt(libc::fcntl(fd, libc::F_SETFL, fl | libc::O_NONBLOCK))?;
        let fd_flags = cvt(libc::fcntl(fd, libc::F_GETFD))?;
        cvt(libc::fcntl(fd, libc::F_SETFD, fd_flags | libc::FD_CLOEXEC))?;
    }
    Ok(())
}

impl Waker {
    /// A new pipe, both ends nonblocking and close-on-exec (pipe + fcntl rather than pipe2, which
    /// Apple platforms lack).
    pub(super) fn new() -> io::Result<Waker> {
        let mut fds = [0 as libc::c_int; 2];
        // SAFETY: `fds` has room for the two descriptors pipe(2) writes.
        cvt(unsafe { libc::pipe(fds.as_mut_ptr()) })?;
        // SAFETY: pipe(2) succeeded: both descriptors are open and owned by nobody else.
        let (read, write) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
        set_flags(read.as_raw_fd())?;
        set_flags(write.as_raw_fd())?;
        Ok(Waker { read, write, pending: AtomicBool::new(false) })
    }

    /// Makes the next (or current) `wait` return. A full pipe already means "wake up".
    pub(super) fn wake(&self) {
        if self.pending.swap(true, Ordering::AcqRel) {
            return;
        }
        // SAFETY: writes one byte from a valid buffer to a descriptor we own.
        let _ = unsafe { libc::write(self.write.as_raw_fd(), [1u8].as_ptr().cast(), 1) };
    }

    /// Empties the pipe (before looking at what changed, so no wake is lost: a wake after the
    /// flag is cleared writes again).
    pub(super) fn drain(&self) {
        self.pending.store(false, Ordering::Release);
        let mut buf = [0u8; 64];
        // SAFETY: reads into a valid buffer of the given length from a descriptor we own.
        while unsafe { libc::read(self.read.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) } > 0 {}
    }

    /// Waits until the socket is ready (for reading; for writing too when `want_write`), the
    /// pipe is written to, or `timeout` passes (None: no limit). No socket: waits on the pipe.
    /// The caller then tries everything (reads until WouldBlock, flushes), so which one fired
    /// does not matter.
    pub(super) fn wait(&self, socket: Option<RawFd>, want_write: bool, timeout: Option<Duration>) -> io::Result<()> {
        let mut fds = [
            libc::pollfd { fd: self.read.as_raw_fd(), events: libc::POLLIN, revents: 0 },
            libc::pollfd {
                fd: socket.unwrap_or(-1),
                events: libc::POLLIN | if want_write { libc::POLLOUT } else { 0 },
                revents: 0,
            },
        ];
        let count = if socket.is_some() { 2 } else { 1 };
        // Rounded up, so that a timer due in 0.3 ms is not polled for in a busy loop.
        let ms = timeout.map_or(-1, |t| t.as_micros().div_ceil(1000).min(i32::MAX as u128) as libc::c_int);
        // SAFETY: `fds` holds `count` initialized pollfd structures.
        let r = unsafe { libc::poll(fds.as_mut_ptr(), count as libc::nfds_t, ms) };
        if r < 0 {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::Interrupted {
                return Ok(());
            }
            return Err(e);
        }
        Ok(())
    }
}
