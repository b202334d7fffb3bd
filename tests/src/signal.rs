//! Signals to the processes a test started: SIGTERM as `docker stop` or Ctrl-C would send it, and
//! SIGKILL to a whole process group (a browser and its children) when a test is done.

/// Sends `signal` to the process `pid`; false when it is gone.
pub fn process(pid: u32, signal: libc::c_int) -> bool {
    // SAFETY: kill(2) only sends a signal, to a process this test started.
    unsafe { libc::kill(pid as libc::pid_t, signal) == 0 }
}

/// Sends `signal` to every process of the group `pgid`; false when there is none.
pub fn group(pgid: u32, signal: libc::c_int) -> bool {
    // SAFETY: as above, to a process group this test started.
    unsafe { libc::kill(-(pgid as libc::pid_t), signal) == 0 }
}

pub use libc::{SIGINT, SIGKILL, SIGTERM};
