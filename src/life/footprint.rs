//! How much memory a run needs, and whether this machine has it.
//!
//! A grid of 100 million cells is only 100 MB, but some strategies keep much more per
//! cell while a generation runs: a submitted job and its result handle, a thread, a
//! cell's future and its answer. At 100 million cells `pool` needs about 83 GB, so such
//! a run would start, fill the memory, and abort. [`check`] refuses it before it
//! starts, with the estimate.
//!
//! The figures per cell are measured, not derived: peak RSS of `concur life --json`
//! (one generation, no latency; thread-per-cell with 1 s of latency so that its threads
//! all live at once) at two grid sizes, the difference divided by the cells between
//! them. Re-measure them when a strategy's data structures change.

use super::error::LifeError;
use super::strategy::Strategy;
use crate::limits::MemoryBudget;

/// What a run needs beyond its cells: the process, its runtime, its threads.
pub const BASE_BYTES: u64 = 16 << 20;

impl Strategy {
    /// Resident memory this strategy uses per cell while a generation runs, in bytes.
    ///
    /// Measured on 2026-11-23 (release build): serial 6.98 → 8.93 MB from 1M to 2M
    /// cells; pipeline and phased-pipeline 45.9 → 86.8 MB; pool 831 → 1,656 MB;
    /// thread-per-cell 52.1 → 99.3 MB from 5,000 to 10,000 cells. Async, since it
    /// drives batches of cells' futures from one task per core: 39.0 → 344.8 MiB from
    /// 1M to 10M cells with 100 ms of latency (36 bytes per cell; it was 580 with a
    /// task per cell). Parallel (packed): 7.7 → 9.0 MiB from 1M to 2M cells.
    pub const fn bytes_per_cell(self) -> u64 {
        match self {
            Strategy::Serial | Strategy::Parallel => 2,
            // The grid and its bordered copy; the node store is capped at 1 GiB apart.
            Strategy::Hashlife => 4,
            Strategy::Pipeline | Strategy::PhasedPipeline => 41,
            Strategy::Pool => 830,
            Strategy::Async => 36,
            Strategy::ThreadPerCell => 9_500,
        }
    }
}

/// The memory a run of `cells` cells with `strategy` needs, in bytes.
///
/// ```
/// use concur::life::{Strategy, footprint};
///
/// // 100 million cells of the pool need tens of gigabytes; packed, a few hundred MB.
/// assert!(footprint::estimate(Strategy::Pool, 100_000_000) > 80_000_000_000);
/// assert!(footprint::estimate(Strategy::Parallel, 100_000_000) < 300_000_000);
/// ```
pub fn estimate(strategy: Strategy, cells: usize) -> u64 {
    BASE_BYTES.saturating_add((cells as u64).saturating_mul(strategy.bytes_per_cell()))
}

/// Refuses a run whose estimate is more than `budget` (no budget: nothing to check).
pub fn check(
    strategy: Strategy,
    cells: usize,
    budget: Option<&MemoryBudget>,
) -> Result<(), LifeError> {
    let needed = estimate(strategy, cells);
    match budget {
        Some(budget) if needed > budget.bytes => Err(LifeError::NotEnoughMemory {
            strategy,
            cells,
            needed,
            available: budget.bytes,
            limit: budget.limit.clone(),
        }),
        _ => Ok(()),
    }
}

/// Bytes as people read them: `57.9 GB`, `850 MB`.
pub fn human(bytes: u64) -> String {
    let gb = bytes as f64 / 1e9;
    if gb >= 1.0 {
        format!("{gb:.1} GB")
    } else {
        format!("{:.0} MB", bytes as f64 / 1e6)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn budget(bytes: u64) -> MemoryBudget {
        MemoryBudget {
            bytes,
            limit: "a test".into(),
        }
    }

    #[test]
    fn runs_that_cannot_fit_are_refused_with_the_estimate() {
        let err = check(Strategy::Pool, 100_000_000, Some(&budget(24 << 30))).unwrap_err();
        let message = err.to_string();
        assert!(
            message.contains("100000000 cells with --mode pool need about 83.0 GB"),
            "{message}"
        );
        assert!(
            message.contains("only 25.8 GB is available (a test)"),
            "{message}"
        );
        // The same grid fits serially, and anything fits when no limit is known.
        assert!(check(Strategy::Serial, 100_000_000, Some(&budget(24 << 30))).is_ok());
        assert!(check(Strategy::Pool, usize::MAX, None).is_ok());
    }

    #[test]
    fn every_strategy_needs_more_than_its_two_grids() {
        for strategy in Strategy::ALL {
            assert!(
                estimate(strategy, 1_000_000) >= BASE_BYTES + 2_000_000,
                "{strategy}"
            );
        }
    }
}
