//! Queues that coordinate threads: the book's `ClosableQueue` and `StoppableWorker` (item 55).
//!
//! Item 55 builds a pipeline from threads and queues and runs into three problems: busy
//! waiting, telling workers to stop, and memory explosion when one stage outruns the next.
//! [`ClosableQueue`] answers all three: `get` blocks, `close` ends the stream for every
//! consumer, and a bounded capacity makes `put` wait. [`Workers`] is the book's
//! `StoppableWorker` thread group, and [`Pipeline`] assembles whole multi-stage
//! pipelines from them. [`naive`] keeps the book's busy-waiting first attempt, to count
//! its wasted polls.
//!
//! **What Rust changes.** The queue is generic and typed, so a stage cannot be handed the
//! wrong item; a `put` on a closed queue gives the item back ([`Closed`]) instead of losing
//! it; and a worker that panics is reported when it is joined instead of printing a
//! traceback and vanishing.

#[cfg(feature = "async")]
mod awaitable;
mod closable;
pub mod naive;
mod pipeline;
pub mod simulated;
mod worker;

#[cfg(feature = "async")]
pub use awaitable::{AsyncClosableQueue, TryPut};
pub use closable::{ClosableQueue, Closed, Iter, TooManyTaskDone, TryGet};
#[cfg(feature = "cli")]
pub(crate) use pipeline::utilization_chart;
pub use pipeline::{BoxError, Pipeline, PipelineBuilder, PipelineError, Report, StageReport};
pub use worker::{WorkerPanicked, Workers};
