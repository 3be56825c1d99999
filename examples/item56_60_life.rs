//! Items 56 to 60: the Game of Life whose cells each do slow I/O, fanned out every way
//! the book compares; every strategy computes the same grid.
//!
//! `cargo run --release --example item56_60_life`

use std::sync::Arc;
use std::time::{Duration, Instant};

use concur::life::{Grid, SimulatedIo, Simulation, Strategy};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let io = Arc::new(SimulatedIo::new(Duration::from_millis(10)));
    for strategy in [
        Strategy::Serial,
        Strategy::ThreadPerCell,
        Strategy::Pool,
        Strategy::Async,
    ] {
        let mut simulation = Simulation::new(strategy, None, Arc::clone(&io) as _)?;
        let start = Instant::now();
        let last = simulation.run(Grid::glider(), 4, |_| {})?;
        simulation.shutdown()?;
        println!(
            "{strategy:?}: 4 generations of the glider in {:.2} s, {} cells alive",
            start.elapsed().as_secs_f64(),
            last.alive()
        );
    }
    Ok(())
}
