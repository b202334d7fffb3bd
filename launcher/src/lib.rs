//! `dice-lab`, the library behind the command: the lab's processes and how they start.
//!
//! Layout: [`component`] is one process of the lab as it is started (program, arguments,
//! environment); [`backends`] writes the project's configuration of each observability backend
//! into a state directory and makes its component, exactly as `dice-lab up` runs it (the
//! real-backends test suite starts Tempo, Loki and Prometheus through the same function, so the
//! two cannot drift); [`stack`] starts, watches and stops them (`up`, `status`); [`load`] sends
//! mixed traffic; [`trace`] prints a click's trace and log lines. `main.rs` only parses the
//! command line.

/// `eprintln!` that survives a closed stderr: the launcher must go on stopping its children even
/// when whoever read its output has gone.
macro_rules! say {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr(), $($arg)*);
    }};
}

/// `println!` that survives a closed stdout, as in `dice-lab status | head -n 3`.
macro_rules! show {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout(), $($arg)*);
    }};
}

pub mod backends;
pub mod component;
pub mod load;
pub mod stack;
pub mod trace;
