//! concur's integration tests: one crate, one file per command, helpers in `util`.

// Tests may unwrap: a panic with the value is the failure report.
#![allow(clippy::unwrap_used)]

mod examples;
mod gcd_cli;
mod guess;
mod injection;
mod life_cli;
mod life_golly;
mod life_rules;
mod life_strategies;
mod life_view;
mod limits;
mod process;
mod report;
mod run_cli;
mod run_compat;
mod run_gnu;
mod sem;
mod ssh;
mod tail;
mod tail_gnu;
mod tail_sre;
mod threads_cli;
mod transfer;
mod util;
