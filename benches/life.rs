//! Criterion: what each strategy costs per generation when the I/O is free.
//!
//! `concur life bench` measures the book's latency claims (100 ms per cell). This bench
//! measures the other side: the pure coordination overhead of each strategy (threads
//! started, queue hops, task spawns) on a 100x100 grid with zero latency, against the
//! serial baseline in the same run; and what pure compute costs, serial against the
//! packed bit-parallel rule (`--strategy parallel`).

use std::hint::black_box;
use std::sync::Arc;
use std::time::Duration;

use concur::life::packed::PackedGrid;
use concur::life::{Grid, SimulatedIo, Simulation, Strategy};
use criterion::{Criterion, criterion_group, criterion_main};

fn overhead(c: &mut Criterion) {
    let grid = Arc::new(Grid::random(100, 100, 0.3, 1).expect("valid size"));
    let mut group = c.benchmark_group("life_10k_cells_zero_latency");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(3));
    for strategy in Strategy::ALL {
        let io = Arc::new(SimulatedIo::new(Duration::ZERO));
        let mut sim = Simulation::new(strategy, None, io).expect("strategy starts");
        group.bench_function(strategy.name(), |b| {
            b.iter(|| black_box(sim.step(&grid).expect("no I/O errors")))
        });
        sim.shutdown().expect("clean shutdown");
    }
    group.finish();
}

/// The compute side: serial against the packed, bit-parallel rule on every core, on a
/// 1024x1024 random grid (one generation), and the packed rule alone on the issue's
/// 4096x4096 grid. Cell updates per second = cells / time.
fn compute(c: &mut Criterion) {
    let grid = Arc::new(Grid::random(1024, 1024, 0.3, 1).expect("valid size"));
    let mut group = c.benchmark_group("life_1m_cells_compute");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(5));
    let io = Arc::new(SimulatedIo::new(Duration::ZERO));
    let mut serial = Simulation::new(Strategy::Serial, None, io).expect("serial starts");
    group.bench_function("serial", |b| {
        b.iter(|| black_box(serial.step(&grid).expect("no I/O errors")))
    });
    let packed = PackedGrid::from_grid(&grid);
    let mut next = packed.clone();
    group.bench_function("parallel", |b| {
        b.iter(|| packed.step_into(black_box(&mut next)))
    });
    group.finish();

    let big = PackedGrid::from_grid(&Grid::random(4096, 4096, 0.3, 1).expect("valid size"));
    let mut next = big.clone();
    let mut group = c.benchmark_group("life_16m_cells_compute");
    group.sample_size(20);
    group.bench_function("parallel", |b| {
        b.iter(|| big.step_into(black_box(&mut next)))
    });
    group.finish();
}

criterion_group!(benches, overhead, compute);
criterion_main!(benches);
