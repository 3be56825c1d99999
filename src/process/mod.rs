//! Child processes: running them, feeding them, chaining them, and never letting one
//! hang you (item 52).
//!
//! The book's advice: use `subprocess` to glue tools together and to use every core;
//! run children in parallel, pipe data into them, chain one child's output into
//! another, and use timeouts. This module is that toolkit, and [`crate::runner`] builds a
//! parallel job runner (`concur run`) on it.
//!
//! * [`Cmd`]: what to run; [`Cmd::run`] is `subprocess.run(check=True)`,
//!   [`Cmd::output`] collects without checking, [`Cmd::spawn`] is `Popen`.
//! * [`Child`]: `poll`, `communicate` (feed stdin while draining stdout and stderr) with
//!   a timeout, `terminate`.
//! * [`Pipeline`]: `A | B | C`, with no parent copy of the pipes in between.
//! * [`ProcessManager`]: start many, wait for all with one timeout.
//!
//! **How it works.** Each child runs in its own process group. One thread per child
//! drives all of its I/O with `poll(2)`: the stdin pipe, the stdout and stderr pipes, a
//! pidfd that becomes readable when the child exits, and a [`CancelToken`]. So output
//! is never left to fill a pipe (the classic `communicate` deadlock), waiting never
//! spins, and a timeout or cancel stops the *group*: SIGTERM, a grace period, SIGKILL,
//! then a reap. Dropping a [`Child`] kills and reaps it too, so no zombie outlives it.
//!
//! **What Rust changes.** Not much about processes: they were always parallel, GIL or
//! not. What changes is that the OS resources are owned values. A pipe end that moves
//! into the next stage of a pipeline is gone from the parent (the book has to remember
//! `encrypt_proc.stdout.close()` to let SIGPIPE through), and cleanup runs in `Drop`.

mod cancel;
mod child;
mod command;
mod compress;
mod error;
mod group;
mod manager;
mod pipeline;
mod quote;
mod spool;

use std::time::Duration;

pub use cancel::CancelToken;
pub use child::Child;
pub use command::{
    Cmd, DEFAULT_GRACE, Ending, Execution, FileRange, Input, Output, ReadEnd, Stream, returncode,
};
pub use compress::{Codec, CodecError, Side};
pub use error::ProcessError;
pub use manager::{ProcessManager, ProcessResult};
pub use pipeline::{Pipeline, PipelineOutput};
pub use quote::{quote, quote_backslash, quote_backslash_bytes, quote_command};
pub use spool::{Backlog, Spool};

/// A duration the way concur prints them: `100ms`, `1.5s`, `2s`.
pub fn format_duration(d: Duration) -> String {
    let secs = d.as_secs_f64();
    if secs < 1.0 {
        format!("{}ms", d.as_millis())
    } else if d.subsec_millis() == 0 {
        format!("{}s", d.as_secs())
    } else {
        format!("{secs:.3}")
            .trim_end_matches('0')
            .trim_end_matches('.')
            .to_owned()
            + "s"
    }
}
