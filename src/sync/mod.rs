//! Locks against data races (item 54): the counter race, a bank account and a resource
//! pool.
//!
//! The book's warning: the GIL does not make `counter.count += 1` atomic. It is a
//! read, an add and a write, and a thread switch between them loses updates (the book
//! counts 246,760 of 500,000). The fix is a `Lock` around the read-modify-write.
//!
//! **What Rust changes.** The book's racy program does not compile. Sharing a plain
//! counter between threads that all mutate it is a borrow error:
//!
//! ```compile_fail,E0499
//! struct Counter {
//!     count: u64,
//! }
//! let mut counter = Counter { count: 0 };
//! std::thread::scope(|s| {
//!     for _ in 0..5 {
//!         s.spawn(|| {
//!             for _ in 0..100_000 {
//!                 counter.count += 1; // error[E0499]: `counter.count` borrowed mutably by every thread
//!             }
//!         });
//!     }
//! });
//! ```
//!
//! and neither does handing threads a type that is not thread-safe:
//!
//! ```compile_fail,E0277
//! use std::cell::Cell;
//! use std::sync::Arc;
//! let counter = Arc::new(Cell::new(0u64)); // Cell is not Sync
//! let c = Arc::clone(&counter);
//! std::thread::spawn(move || c.set(c.get() + 1)); // error[E0277]: `Cell<u64>` cannot be shared between threads
//! ```
//!
//! So a lost update in Rust has to be written on purpose. [`UnsyncCounter`] does it in
//! safe code, with an atomic whose load and store are separate steps: exactly the book's
//! `getattr` / `setattr` decomposition. There is no undefined behaviour, only the wrong
//! answer. [`LockingCounter`] (a `Mutex`) and [`AtomicCounter`] (`fetch_add`) are exact;
//! `tests/loom.rs` model-checks the locking one.

mod bank;
mod counter;
mod pool;

pub use bank::{BankAccount, InsufficientFunds};
pub use counter::{
    AtomicCounter, Counter, CounterMode, LockingCounter, RaceResult, SWITCH_EVERY, UnsyncCounter,
    race,
};
pub use pool::{Lease, PoolStats, ResourcePool};
