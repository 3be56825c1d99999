//! The synchronization primitives of hand-built types: std's normally, loom's when the
//! crate is built with `RUSTFLAGS="--cfg concur_loom"` for model checking.
//!
//! A crate-specific cfg (not plain `loom`) keeps dependencies such as tokio, which react
//! to `cfg(loom)` themselves, out of it.

#[cfg(concur_loom)]
pub(crate) use loom::sync::atomic::{AtomicU64, AtomicUsize, Ordering, fence};
#[cfg(concur_loom)]
pub(crate) use loom::sync::{Condvar, Mutex, MutexGuard};
#[cfg(not(concur_loom))]
pub(crate) use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering, fence};
#[cfg(not(concur_loom))]
pub(crate) use std::sync::{Condvar, Mutex, MutexGuard};
