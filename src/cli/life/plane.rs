//! `concur life` on the unbounded plane: HashLife's tree, or any other strategy
//! stepping the pattern's bounding box (grown and cropped every generation).

use std::io::Write;
use std::num::NonZeroUsize;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};

use super::{PrintMode, RunArgs};
use crate::cli::output::progress_bar;
use crate::cli::{Outcome, UsageError};
use crate::life::hashlife::{Bounds, NODE_BYTES, Universe};
use crate::life::plane::Plane;
use crate::life::report::{PlaneRecord, PlaneSummary, StepTimes};
use crate::life::rule::Rule;
use crate::life::save;
use crate::life::view::{Animation, GifWriter, PlaneView, ViewAction};
use crate::life::{ColumnPrinter, Grid, Simulation, Strategy};
use crate::measure::peak_rss_bytes;

/// The state of a plane run.
pub(super) enum World {
    /// HashLife's quadtree.
    Tree(Box<Universe>),
    /// The bounding box, stepped by a grid strategy.
    Boxed {
        plane: Plane,
        /// Taken at the end, to shut its workers down.
        sim: Option<Simulation>,
        generation: u64,
        rule: Rule,
    },
}

impl World {
    fn generation(&self) -> u64 {
        match self {
            World::Tree(u) => u.generation(),
            World::Boxed { generation, .. } => *generation,
        }
    }

    fn population(&self) -> u128 {
        match self {
            World::Tree(u) => u.population(),
            World::Boxed { plane, .. } => plane.grid().alive() as u128,
        }
    }

    fn rule(&self) -> Rule {
        match self {
            World::Tree(u) => u.rule(),
            World::Boxed { rule, .. } => *rule,
        }
    }

    fn advance(&mut self, generations: u64) -> Result<()> {
        match self {
            World::Tree(u) => u.advance(generations)?,
            World::Boxed {
                plane,
                sim,
                generation,
                ..
            } => {
                let sim = sim.as_mut().context("the simulation has been shut down")?;
                for _ in 0..generations {
                    plane.step(sim)?;
                    *generation += 1;
                }
            }
        }
        Ok(())
    }

    /// The pattern's bounding box and position, as a grid.
    fn snapshot(&self) -> Result<Plane> {
        match self {
            World::Tree(u) => {
                let (grid, origin) = u.to_grid()?;
                Ok(Plane::new(grid, origin))
            }
            World::Boxed { plane, .. } => Ok(plane.clone()),
        }
    }

    fn bounds(&self) -> Option<Bounds> {
        match self {
            World::Tree(u) => u.bounds(),
            World::Boxed { plane, .. } => {
                let grid = plane.grid();
                (grid.alive() > 0).then(|| {
                    let (x, y) = plane.origin();
                    Bounds {
                        left: i128::from(x),
                        top: i128::from(y),
                        right: i128::from(x) + grid.width() as i128 - 1,
                        bottom: i128::from(y) + grid.height() as i128 - 1,
                    }
                })
            }
        }
    }

    /// Calls `f(x, y)` for the living cells in `window`, or, at a scale of 8 or more
    /// cells a character, for the top-left cell of each square of that side that holds
    /// one (HashLife: a visit per square, not per cell).
    fn cells_in(&self, window: Bounds, scale: u64, f: &mut dyn FnMut(i128, i128)) {
        match self {
            World::Tree(u) if scale >= 8 => u.for_each_block(window, scale.ilog2(), f),
            World::Tree(u) => u.for_each_cell(Some(window), f),
            World::Boxed { plane, .. } => {
                let (ox, oy) = plane.origin();
                for (y, row) in plane.grid().rows().enumerate() {
                    for (x, cell) in row.iter().enumerate() {
                        let (px, py) = (i128::from(ox) + x as i128, i128::from(oy) + y as i128);
                        if cell.is_alive()
                            && (window.left..=window.right).contains(&px)
                            && (window.top..=window.bottom).contains(&py)
                        {
                            f(px, py);
                        }
                    }
                }
            }
        }
    }

    /// Calls `write` with the tree (made from the bounding box for a grid strategy).
    fn with_tree(&self, write: impl FnOnce(&Universe) -> std::io::Result<()>) -> Result<()> {
        match self {
            World::Tree(u) => write(u)?,
            World::Boxed {
                plane,
                rule,
                generation,
                ..
            } => {
                let mut u = Universe::from_grid(plane.grid(), plane.origin(), *rule, false)?;
                u.set_generation(*generation);
                write(&u)?;
            }
        }
        Ok(())
    }
}

/// Runs `world` for `args`' generations and prints what was asked for.
pub(super) fn run(args: &RunArgs, mut world: World, out: &mut dyn Write) -> Result<Outcome> {
    let total = args.steps();
    let step = match (args.strategy, args.step) {
        (Strategy::Hashlife, Some(step)) => step,
        (Strategy::Hashlife, None) if args.animate => 1,
        (Strategy::Hashlife, None) => total.max(1),
        (_, Some(_)) => {
            return Err(UsageError(
                "--step jumps generations with --mode hashlife; the other strategies compute \
                 every generation"
                    .to_owned(),
            )
            .into());
        }
        (_, None) => 1,
    };
    let print = args.print_mode();
    let max_memory = args.max_memory.unwrap_or_else(default_max_memory);
    let frame = Duration::from_secs(1) / u32::try_from(args.fps.get()).unwrap_or(u32::MAX);
    let mut animation = match args.animate {
        true => Some((
            Animation::start(u32::try_from(args.fps.get()).unwrap_or(u32::MAX))?,
            PlaneView::default(),
        )),
        false => None,
    };
    let bar = if animation.is_some() {
        indicatif::ProgressBar::hidden()
    } else {
        progress_bar(total.div_ceil(step), "steps")
    };
    bar.set_message(format!("{} on the plane", args.strategy));
    let mut snapshots: Vec<Plane> = Vec::new();
    let mut frames: Vec<Plane> = Vec::new();
    let mut times = StepTimes::default();
    let mut collections = 0usize;
    let mut peak_nodes = 0usize;
    let mut observe =
        |world: &World, elapsed: Option<Duration>, out: &mut dyn Write| -> Result<bool> {
            let generation = world.generation();
            if let Some(elapsed) = elapsed {
                bar.inc(1);
                times.push(elapsed);
                if args.json {
                    let record = PlaneRecord {
                        generation,
                        alive: world.population(),
                        seconds: elapsed.as_secs_f64(),
                    };
                    writeln!(out, "{}", serde_json::to_string(&record)?)?;
                    out.flush()?;
                }
            }
            if !args.json && print == PrintMode::Columns {
                snapshots.push(world.snapshot()?);
            }
            if args.gif.is_some() && (generation / step).is_multiple_of(args.every.get() as u64) {
                frames.push(world.snapshot()?);
            }
            if let Some((animation, view)) = animation.as_mut() {
                let status = format!(
                    "generation {generation}  population {}  {:.3} s/step  {}  {}",
                    world.population(),
                    elapsed.unwrap_or_default().as_secs_f64(),
                    args.strategy,
                    world.rule(),
                );
                let draw = |window: Bounds, scale: u64, rows: usize, cols: usize| {
                    let (rows, cols) = (rows.max(1), cols.max(1));
                    let mut grid =
                        Grid::from_cells(rows, cols, vec![crate::life::Cell::Empty; rows * cols]);
                    world.cells_in(window, scale, &mut |x, y| {
                        // A square may start above or left of the window.
                        let (x, y) = (x.max(window.left), y.max(window.top));
                        let (gy, gx) = (
                            ((y - window.top) / i128::from(scale)) as isize,
                            ((x - window.left) / i128::from(scale)) as isize,
                        );
                        grid.set(gy, gx, crate::life::Cell::Alive);
                    });
                    grid
                };
                match view.show(animation, world.bounds(), &draw, &status)? {
                    ViewAction::Quit => return Ok(false),
                    ViewAction::Advance => {}
                }
            }
            if args.fault_panic_after == Some(generation as usize) {
                panic!("--fault-panic-after {generation}: a panic injected for testing");
            }
            Ok(true)
        };

    let start = Instant::now();
    let mut going = observe(&world, None, out)?;
    let mut done = 0u64;
    while going && done < total {
        let n = step.min(total - done);
        let began = Instant::now();
        world.advance(n)?;
        let elapsed = began.elapsed();
        done += n;
        if let World::Tree(u) = &mut world {
            peak_nodes = peak_nodes.max(u.nodes());
            if u.nodes().saturating_mul(NODE_BYTES) as u64 > max_memory {
                collections += 1;
                let kept = u.collect_garbage(true);
                if kept.saturating_mul(NODE_BYTES) as u64 > max_memory / 2 {
                    u.collect_garbage(false);
                }
            }
        }
        going = observe(&world, Some(elapsed), out)?;
    }
    let total_seconds = start.elapsed().as_secs_f64();
    if let Some((animation, _)) = animation {
        animation.finish();
    }
    bar.finish_and_clear();
    if let World::Boxed { sim, .. } = &mut world
        && let Some(sim) = sim.take()
    {
        sim.shutdown()?;
    }
    if let Some(path) = &args.gif {
        write_gif(path, &frames, args.cell_px.get(), frame)?;
    }
    if args.json {
        let summary = PlaneSummary {
            strategy: args.strategy.name().to_owned(),
            rule: world.rule().to_string(),
            plane: true,
            generations: world.generation(),
            step,
            alive: world.population(),
            bounds: world
                .bounds()
                .map(|b| (b.left, b.top, b.width(), b.height())),
            seconds_per_step: times.median(),
            total_seconds,
            nodes: match &world {
                World::Tree(u) => Some(u.nodes()),
                World::Boxed { .. } => None,
            },
            peak_nodes: matches!(world, World::Tree(_)).then_some(peak_nodes),
            garbage_collections: collections,
            max_memory_mb: max_memory as f64 / (1024.0 * 1024.0),
            threads: args
                .threads()
                .map_or_else(rayon::current_num_threads, NonZeroUsize::get),
            peak_rss_mb: peak_rss_bytes().map(|b| b as f64 / (1024.0 * 1024.0)),
        };
        writeln!(out, "{}", serde_json::to_string(&summary)?)?;
        return Ok(Outcome::Success);
    }
    let generation = world.generation();
    match print {
        PrintMode::Columns => {
            let window = Plane::union(&snapshots).unwrap_or((0, 0, 1, 1));
            let shown = window
                .2
                .saturating_mul(window.3)
                .saturating_mul(snapshots.len());
            if shown > super::MAX_COLUMN_CELLS {
                return Err(UsageError(format!(
                    "--print columns (the default) shows every generation in one window, here \
                     {}x{} cells for {} generations: more than {} cells in all; use --print \
                     final, rle or none",
                    window.2,
                    window.3,
                    snapshots.len(),
                    super::MAX_COLUMN_CELLS
                ))
                .into());
            }
            let mut columns = ColumnPrinter::default();
            for snapshot in &snapshots {
                columns.push(&snapshot.in_window(window)?);
            }
            writeln!(out, "{columns}")?;
        }
        PrintMode::Final => writeln!(out, "{}", world.snapshot()?.grid())?,
        PrintMode::Rle => world.with_tree(|u| u.write_rle(out))?,
        PrintMode::Cells => write!(
            out,
            "{}",
            save::to_cells(
                world.snapshot()?.grid(),
                usize::try_from(generation).unwrap_or(usize::MAX)
            )
        )?,
        PrintMode::Mc => world.with_tree(|u| u.write_macrocell(out))?,
        PrintMode::None => {}
    }
    Ok(Outcome::Success)
}

/// HashLife's node store is collected past this: half the memory available, at
/// most 4 GiB.
fn default_max_memory() -> u64 {
    let available = crate::limits::memory_budget().map_or(8 << 30, |b| b.bytes);
    (available / 2).min(4 << 30)
}

/// The GIF of the frames, each cropped to the window that holds them all.
fn write_gif(
    path: &std::path::Path,
    frames: &[Plane],
    cell_px: usize,
    frame: Duration,
) -> Result<()> {
    let window = Plane::union(frames).unwrap_or((0, 0, 1, 1));
    let mut gif = GifWriter::create(path, window.2, window.3, cell_px, frame)
        .map_err(|err| UsageError(format!("--gif: {err}")))?;
    for plane in frames {
        gif.add(&plane.in_window(window)?)
            .with_context(|| format!("--gif {}", path.display()))?;
    }
    Ok(())
}
