//! Threads for blocking I/O, and, in Rust, for parallelism too (item 53).
//!
//! The book's two experiments:
//!
//! * [`factorize`]: a naive factor loop over four numbers. In CPython, one thread per
//!   number is *slower* than serial (0.756 s serial, 1.16 s threaded on the seeds' run),
//!   because the GIL lets one thread run Python at a time.
//! * [`slow_io`]: five blocking `select` calls of 0.1 s. Serially they take 0.5 s; in
//!   threads 0.1 s, because Python releases the GIL around system calls, and the main
//!   thread stays free to compute (the book's helicopter).
//!
//! **What Rust changes.** There is no GIL: the threaded factorization runs on every core
//! and is faster than serial. Blocking I/O in threads works just as the book says.

pub mod factorize;
pub mod slow_io;
