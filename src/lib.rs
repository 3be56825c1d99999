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
//! | 54 locks against data races | [`sync`] (counters, [`sync::BankAccount`], [`sync::ResourcePool`]), [`semaphore`] (a counting semaphore across processes) | `concur race`, `concur sem` |
//! | 55 queues and pipelines | [`queue`] ([`queue::ClosableQueue`], [`queue::Pipeline`], [`queue::naive`]) | `concur pipeline` |
//! | 56 when concurrency is necessary | [`life`], [`life::strategy::serial`] | `concur life --mode serial` |
//! | 57 thread per cell | [`life::strategy::thread_per_cell`] | `concur life --mode thread-per-cell` |
//! | 58 queue pipelines | [`life::strategy::pipeline`], [`life::strategy::phased_pipeline`] | `concur life --mode pipeline` / `phased-pipeline` |
//! | 59 ThreadPoolExecutor | [`executor`], [`life::strategy::pool`] | `concur life --mode pool` |
//! | 60 coroutines | [`life::strategy::tasks`] | `concur life --mode async` |
//! | 61 porting threaded I/O to asyncio | [`guess`] ([`guess::Session`], [`guess::serve_threads`], [`guess::serve_async`], [`guess::load`]) | `concur guess serve`, `play`, `load` |
//! | 62–63 mixing threads and coroutines, not blocking the loop | [`tail`] ([`tail::Source`], [`tail::merge_threads`], [`tail::merge_mixed`], [`tail::merge_async`], [`tail::debug`]) | `concur tail` |
//! | 64 true parallelism | [`parallel`] ([`parallel::run`], [`parallel::pool::map`] over any [`parallel::pool::Task`]) | `concur gcd`, `concur gcd bench` |
//! | 52 and 64 past one machine | [`remote`] ([`remote::Hosts`], [`remote::Ssh`], [`remote::transfer`]), used by [`runner`] and [`parallel::pool`] | `concur run -S`, `concur gcd --hosts` |
//! | the whole chapter | `tour` (the binary's; not part of the library's API) | `concur tour` |
//!
//! # The stable surface
//!
//! What a program should start from, and what later versions keep compatible (concur
//! is pre-1.0: a change to these is a minor-version bump and a line in the README):
//!
//! * [`process`]: [`Cmd`](process::Cmd), [`Pipeline`](process::Pipeline),
//!   [`ProcessManager`](process::ProcessManager), [`CancelToken`](process::CancelToken);
//! * [`runner::run`] with [`runner::RunOptions`] (GNU parallel's engine);
//! * [`threads`], [`sync`] and [`executor`] ([`ThreadPool`](executor::ThreadPool):
//!   `submit`, `map`, [`as_completed`](executor::as_completed));
//! * [`queue`]: [`ClosableQueue`](queue::ClosableQueue), `AsyncClosableQueue`
//!   (feature `async`), [`Pipeline`](queue::Pipeline);
//! * [`parallel::pool`]: [`Task`](parallel::pool::Task), [`map`](parallel::pool::map),
//!   [`worker_main`](parallel::pool::worker_main);
//! * [`life`]: [`Simulation`](life::Simulation), [`Strategy`](life::Strategy),
//!   [`Grid`](life::Grid), [`CellLogic`](life::CellLogic), the pattern readers;
//! * `guess` (feature `guess`): `bind`, `serve_threads`, `serve_async`, the players;
//! * `tail` (feature `tail`): `run` and its options.
//!
//! Everything else that is public is so for the command line, the benchmarks or the
//! test suite: usable, but it may change in any release. The helpers below are hidden
//! from these docs for that reason.
//!
//! # Features
//!
//! | feature | brings | default |
//! |---|---|---|
//! | `cli` | the `concur` binary: clap, indicatif, crossterm, image, plotters (its charts), and `guess`, `tail` | yes |
//! | `async` | tokio: `AsyncClosableQueue`, `CancelToken::cancelled`, Life's async strategy and rules server | with `guess`, `tail` |
//! | `guess` | item 61's server, players and load generator | with `cli` |
//! | `tail` | items 62-63's merging tailer | with `cli` |
//!
//! Without default features, [`life::Strategy::Async`] is refused with an error naming
//! the `async` feature; the other strategies are all there.
//!
//! Shared pieces, hidden: `measure` (peak RSS and threads for benchmarks, durations
//! sampled in bounded memory), `limits` (how many threads, descriptors and how much
//! memory the OS allows, and reading a file with a size bound), [`lines`] (bounded line
//! reading and bounded quoting of untrusted input), `sink` (output that never stalls or
//! grows its writer), `stdio` (closed standard streams). The command line (`cli`) and
//! the tour are the binary's, not part of the library's API: `cli` is public (and
//! hidden) only because `main.rs`, a crate of its own, calls it.

// The `concur` command line: public only so that `main.rs` (the binary, a crate of
// its own) can call `cli::main`; hidden, as it is not part of the library's API.
#[cfg(feature = "cli")]
#[doc(hidden)]
pub mod cli;
pub mod executor;
#[cfg(feature = "guess")]
pub mod guess;
pub mod life;
// Helpers of the binary and the test suite, not part of the API (see above).
#[doc(hidden)]
pub mod limits;
pub mod lines;
#[doc(hidden)]
pub mod measure;
pub mod parallel;
pub mod process;
pub mod queue;
pub mod remote;
#[cfg(feature = "cli")]
mod report;
pub mod runner;
pub mod semaphore;
mod shim;
#[doc(hidden)]
pub mod sink;
#[doc(hidden)]
pub mod stdio;
pub mod sync;
#[cfg(feature = "tail")]
pub mod tail;
#[cfg(test)]
mod testing;
pub mod threads;
#[cfg(feature = "cli")]
mod thumbnails;
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
