//! # concur
//!
//! *Effective Python* (2nd ed.), chapter 7, "Concurrency and Parallelism", items 52–64,
//! rebuilt in Rust: a library, plus one command-line tool, `concur`.
//!
//! Every program of the chapter becomes a working tool, the book's claims become
//! measurements, and each module's documentation says what Rust changes about the
//! book's trade-off (no GIL, data races that do not compile, tasks that cost bytes).
//!
//! | book item | module | command |
//! |---|---|---|
//! | 52 child processes | [`process`] ([`process::Cmd`], [`process::Pipeline`], [`process::ProcessManager`]), [`runner`] | `concur run` |
//! | 53 threads for blocking I/O | [`threads`] ([`threads::factorize`], [`threads::slow_io`]) | `concur factorize`, `concur slow-io` |
//! | 54 locks against data races | [`sync`] (counters, [`sync::BankAccount`], [`sync::ResourcePool`]) | `concur race` |
//! | 55 queues and pipelines | [`queue`] ([`queue::ClosableQueue`], [`queue::Pipeline`], [`queue::naive`]), [`thumbnails`] | `concur pipeline` |
//! | 56 when concurrency is necessary | [`life`], [`life::strategy::serial`] | `concur life --mode serial` |
//! | 57 thread per cell | [`life::strategy::thread_per_cell`] | `concur life --mode thread-per-cell` |
//! | 58 queue pipelines | [`life::strategy::pipeline`], [`life::strategy::phased_pipeline`] | `concur life --mode pipeline` / `phased-pipeline` |
//! | 59 ThreadPoolExecutor | [`executor`], [`life::strategy::pool`] | `concur life --mode pool` |
//! | 60 coroutines | [`life::strategy::tasks`] | `concur life --mode async` |
//! | 61 porting threaded I/O to asyncio | [`guess`] ([`guess::Session`], [`guess::serve_threads`], [`guess::serve_async`], [`guess::load`]) | `concur guess serve`, `play`, `load` |
//! | 62–63 mixing threads and coroutines, not blocking the loop | [`tail`] ([`tail::Source`], [`tail::merge_threads`], [`tail::merge_mixed`], [`tail::merge_async`], [`tail::debug`]) | `concur tail` |
//! | 64 true parallelism | [`parallel`] ([`parallel::run`], [`parallel::pool::map`] over any [`parallel::pool::Task`], [`parallel::bench`]) | `concur gcd`, `concur gcd bench` |
//! | 52 and 64 past one machine | [`remote`] ([`remote::Hosts`], [`remote::Ssh`], [`remote::transfer`]), used by [`runner`] and [`parallel::pool`] | `concur run -S`, `concur gcd --hosts` |
//! | the whole chapter | `tour` (the binary's; not part of the library's API) | `concur tour` |
//!
//! Shared pieces: [`measure`] (peak RSS and threads for benchmarks, durations sampled in
//! bounded memory), [`limits`] (how many threads, descriptors and how much memory the OS
//! allows, and reading a file with a size bound), [`lines`] (bounded line reading and
//! bounded quoting of untrusted input), [`sink`] (output that never stalls or grows
//! its writer). The command line (`cli`) and the tour are the binary's, not part of the
//! library's API: `cli` is public (and hidden) only because `main.rs`, a crate of its
//! own, calls it.

// The `concur` command line: public only so that `main.rs` (the binary, a crate of
// its own) can call `cli::main`; hidden, as it is not part of the library's API.
#[cfg(feature = "cli")]
#[doc(hidden)]
pub mod cli;
pub mod executor;
#[cfg(feature = "guess")]
pub mod guess;
pub mod life;
pub mod limits;
pub mod lines;
pub mod measure;
pub mod parallel;
pub mod process;
pub mod queue;
pub mod remote;
#[cfg(feature = "charts")]
pub mod report;
pub mod runner;
mod shim;
pub mod sink;
pub mod stdio;
pub mod sync;
#[cfg(feature = "tail")]
pub mod tail;
#[cfg(test)]
mod testing;
pub mod threads;
#[cfg(feature = "cli")]
pub mod thumbnails;
// The tour: the binary's, called by `cli`; hidden, as it is not part of the library's
// API (public only so that its items need no crate-private visibility of their own).
#[cfg(feature = "cli")]
#[doc(hidden)]
pub mod tour;

/// An error and its causes on one line, `outer: inner: ...`, as the CLI prints them.
pub(crate) fn error_chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
