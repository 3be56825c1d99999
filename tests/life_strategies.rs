//! Every strategy against `serial`, on random and known grids, plus error propagation.

use std::collections::HashSet;
use std::io;
use std::num::NonZeroUsize;
use std::sync::Arc;
use std::time::Duration;

use concur::life::strategy::tasks;
use concur::life::{
    AsyncCellLogic, Cell, CellLogic, CellQuery, Grid, LifeError, SimulatedIo, Simulation, Strategy,
    game_logic,
};

/// Every generation of `grid` under `strategy`, 0 through `generations`.
fn history<L: CellLogic + AsyncCellLogic>(
    strategy: Strategy,
    workers: Option<NonZeroUsize>,
    logic: Arc<L>,
    grid: &Grid,
    generations: usize,
) -> Result<Vec<Grid>, LifeError> {
    let mut sim = Simulation::new(strategy, workers, logic)?;
    let mut grids = Vec::new();
    sim.run(grid.clone(), generations, |g| {
        grids.push(g.grid().into_owned())
    })?;
    sim.shutdown()?;
    Ok(grids)
}

fn instant() -> Arc<SimulatedIo> {
    Arc::new(SimulatedIo::new(Duration::ZERO))
}

fn grid_from(text: &str) -> Grid {
    let rows: Vec<Vec<Cell>> = text
        .lines()
        .map(|l| {
            l.chars()
                .map(|c| if c == '*' { Cell::Alive } else { Cell::Empty })
                .collect()
        })
        .collect();
    Grid::from_rows(&rows).unwrap()
}

#[test]
fn every_strategy_equals_serial_on_random_grids() {
    let shapes = [(1, 1), (1, 9), (9, 1), (2, 2), (3, 5), (8, 13), (17, 11)];
    for (h, w) in shapes {
        for seed in 0..3 {
            let grid = Grid::random(h, w, 0.35, seed).unwrap();
            let expected = history(Strategy::Serial, None, instant(), &grid, 12).unwrap();
            for strategy in &Strategy::ALL[1..] {
                let got = history(*strategy, None, instant(), &grid, 12).unwrap();
                for (g, (a, b)) in expected.iter().zip(&got).enumerate() {
                    assert_eq!(
                        a, b,
                        "{strategy} differs from serial on {h}x{w} seed {seed} at generation {g}"
                    );
                }
            }
        }
    }
}

#[test]
fn odd_worker_counts_agree_too() {
    let grid = Grid::random(7, 9, 0.4, 11).unwrap();
    let expected = history(Strategy::Serial, None, instant(), &grid, 6).unwrap();
    for workers in [1, 2, 7, 63, 200] {
        let w = NonZeroUsize::new(workers);
        for strategy in [Strategy::Pipeline, Strategy::PhasedPipeline, Strategy::Pool] {
            let got = history(strategy, w, instant(), &grid, 6).unwrap();
            assert_eq!(got, expected, "{strategy} with {workers} workers");
        }
    }
}

#[test]
fn the_blinker_has_period_two() {
    let vertical = grid_from("-----\n--*--\n--*--\n--*--\n-----");
    let horizontal = grid_from("-----\n-----\n-***-\n-----\n-----");
    for strategy in Strategy::ALL {
        let grids = history(strategy, None, instant(), &vertical, 4).unwrap();
        assert_eq!(grids[1], horizontal, "{strategy}");
        assert_eq!(grids[2], vertical, "{strategy}");
        assert_eq!(grids[4], vertical, "{strategy}");
    }
}

#[test]
fn the_block_is_still() {
    let block = grid_from("----\n-**-\n-**-\n----");
    for strategy in Strategy::ALL {
        let grids = history(strategy, None, instant(), &block, 3).unwrap();
        assert!(grids.iter().all(|g| *g == block), "{strategy}");
    }
}

/// The glider's cells, shifted by (d, d), on an 8x8 torus.
fn glider_at(d: isize) -> Grid {
    let mut grid = Grid::new(8, 8).unwrap();
    for (y, x) in [(0, 1), (1, 2), (2, 0), (2, 1), (2, 2)] {
        grid.set(y + d, x + d, Cell::Alive);
    }
    grid
}

#[test]
fn the_glider_moves_one_diagonal_step_every_four_generations_around_the_torus() {
    for strategy in Strategy::ALL {
        let grids = history(strategy, None, instant(), &glider_at(0), 32).unwrap();
        for k in 0..=8 {
            assert_eq!(
                grids[4 * k],
                glider_at(k as isize),
                "{strategy} after {} generations",
                4 * k
            );
        }
        // Around the 8x8 torus in 32 generations, wrapping through every edge.
        assert_eq!(grids[32], grids[0], "{strategy}");
    }
}

#[test]
fn the_book_glider_matches_the_books_columns() {
    let expected_gen4 = grid_from("---------\n----*----\n-----*---\n---***---\n---------");
    for strategy in Strategy::ALL {
        let grids = history(strategy, None, instant(), &Grid::glider(), 4).unwrap();
        assert_eq!(grids[4], expected_gen4, "{strategy}");
    }
}

#[test]
fn a_failing_cell_stops_every_strategy_with_its_position() {
    for strategy in Strategy::ALL {
        let io = Arc::new(SimulatedIo::new(Duration::from_millis(1)).failing_at(2, 3));
        let err = history(strategy, None, io, &Grid::glider(), 4).unwrap_err();
        assert_eq!(err.cell(), Some((2, 3)), "{strategy}: {err:?}");
        assert_eq!(err.to_string(), "SimulationError at (2, 3)");
        let source = std::error::Error::source(&err).map(ToString::to_string);
        assert_eq!(source.as_deref(), Some("Problem with I/O"), "{strategy}");
    }
}

/// Fails at several cells, or panics at one: logic the CLI cannot express.
struct Faulty {
    failing: HashSet<(usize, usize)>,
    panic_at: Option<(usize, usize)>,
}

impl Faulty {
    fn answer(&self, q: CellQuery) -> io::Result<Cell> {
        if self.panic_at == Some((q.y, q.x)) {
            panic!("bug in the rules at ({}, {})", q.y, q.x);
        }
        if self.failing.contains(&(q.y, q.x)) {
            return Err(io::Error::other(format!("no route to ({}, {})", q.y, q.x)));
        }
        Ok(game_logic(q.state, q.neighbors))
    }
}

impl CellLogic for Faulty {
    fn next_state(&self, q: CellQuery) -> io::Result<Cell> {
        self.answer(q)
    }
}

impl AsyncCellLogic for Faulty {
    async fn next_state_async(&self, q: CellQuery) -> io::Result<Cell> {
        tokio::task::yield_now().await;
        self.answer(q)
    }
}

#[test]
fn with_many_failures_every_strategy_reports_the_first_in_row_major_order() {
    let faulty = Arc::new(Faulty {
        failing: [(4, 0), (1, 7), (3, 3), (1, 8)].into(),
        panic_at: None,
    });
    for strategy in Strategy::ALL {
        let err = history(strategy, None, Arc::clone(&faulty), &Grid::glider(), 1).unwrap_err();
        assert_eq!(err.cell(), Some((1, 7)), "{strategy}: {err:?}");
    }
}

#[test]
fn a_panic_in_cell_logic_becomes_that_cells_error_not_a_hang() {
    let faulty = Arc::new(Faulty {
        failing: HashSet::new(),
        panic_at: Some((3, 1)),
    });
    for strategy in Strategy::ALL {
        let err = history(strategy, None, Arc::clone(&faulty), &Grid::glider(), 2).unwrap_err();
        assert_eq!(err.cell(), Some((3, 1)), "{strategy}: {err:?}");
        let cause = std::error::Error::source(&err).unwrap().to_string();
        assert!(
            cause.contains("cell logic panicked: bug in the rules at (3, 1)"),
            "{strategy}: {cause}"
        );
    }
}

#[test]
fn workers_only_apply_to_strategies_that_have_them() {
    for strategy in [Strategy::Serial, Strategy::ThreadPerCell, Strategy::Async] {
        let err = Simulation::new(strategy, NonZeroUsize::new(3), instant()).unwrap_err();
        assert!(
            matches!(err, LifeError::WorkersNotApplicable { .. }),
            "{err:?}"
        );
    }
}

#[tokio::test(start_paused = true)]
async fn async_fan_out_overlaps_every_cells_io() {
    // 100 cells with 100 ms each: serial would need 10 s of (virtual) time.
    let grid = Arc::new(Grid::random(10, 10, 0.3, 5).unwrap());
    let io = Arc::new(SimulatedIo::new(Duration::from_millis(100)));
    let start = tokio::time::Instant::now();
    let next = tasks::simulate(Arc::clone(&grid), io).await.unwrap();
    let elapsed = start.elapsed();
    assert!(
        elapsed >= Duration::from_millis(100) && elapsed < Duration::from_millis(110),
        "one generation took {elapsed:?} of virtual time"
    );
    let expected = history(Strategy::Serial, None, instant(), &grid, 1).unwrap();
    assert_eq!(next, expected[1]);
}
