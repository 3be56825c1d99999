//! `concur life` and `concur life bench`.

mod plane;

use std::io::IsTerminal;
use std::io::Write;
use std::net::{SocketAddr, ToSocketAddrs};
use std::num::NonZeroUsize;
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::{Args, Subcommand, ValueEnum};

use super::output::{progress_bar, seconds};
use super::signals::{SecondSignal, SignalCancel};
use super::value::{
    off_if_zero, parse_bytes_max, parse_density, parse_duration, parse_generations, parse_position,
    parse_positive, parse_positive_max, parse_size,
};
use super::{Outcome, UsageError};
use crate::life::bench::{self, Case, CaseResult};
use crate::life::hashlife::Universe;
use crate::life::remote::{self, RulesClient, RulesServerConfig};
use crate::life::report::{GenerationRecord, RunSummary, StepTimes};
use crate::life::rule::Rule;
use crate::life::view::{Animation, GifWriter, Status};
use crate::life::{
    ColumnPrinter, Grid, SimulatedIo, Simulation, Strategy, footprint, pattern, save,
};
use crate::measure::{PeakThreads, peak_rss_bytes};
use crate::sink::{Printer, Sink};

const LIFE_ABOUT: &str = "Game of Life whose cells do slow I/O, run with any of the book's fan-out strategies (items 56-60)";

const LIFE_AFTER: &str = "\
With no options, prints the book's 5x9 glider over generations 0 to 4 in columns.

Strategies (all give identical grids):
  serial            item 56: one thread, one cell after another
  thread-per-cell   item 57: a new OS thread per cell per generation
  pipeline          item 58: --jobs threads fed by a closable queue (default 5)
  phased-pipeline   item 58: count_neighbors workers, then game_logic workers (5 each)
  pool              item 59: a thread pool with submit/result futures (default 10)
  async             item 60: a coroutine per cell, driven by one task per core, then gather
  parallel          no I/O: the grid packed 64 cells to a word, rows split across cores
  hashlife          no I/O: Gosper's HashLife, jumping 2^k generations; its sub-results
                    on every core

A pattern file without --size runs on the unbounded plane, as in Golly (--plane for a
--random soup); --size HxW makes a torus. --rule takes any B/S rule (B36/S23, 23/36).

Exit status:
  0  the simulation ran
  1  it failed: a cell's I/O failed (SimulationError at (Y, X): ...) or threads could not start
  2  bad arguments, a bad pattern file, or a run estimated to need more memory than is
     available (refused before it starts, with the estimate)

Examples:
  concur life --mode async --latency 100ms --size 100x100 --random 0.3 --json
  concur life --pattern glider.rle --size 20x20 --generations 80 --print final
  concur life --mode thread-per-cell --fail-at 2,3
  concur life --pattern gun.rle --mode hashlife -g 2^30 --json
  concur life --pattern gun.rle --mode hashlife -g 2^40 --print mc -o gun.mc";

/// Arguments of `concur life`.
#[derive(Debug, Args)]
#[command(about = LIFE_ABOUT, after_help = LIFE_AFTER, args_conflicts_with_subcommands = true)]
pub struct LifeArgs {
    #[command(subcommand)]
    command: Option<LifeCommand>,
    #[command(flatten)]
    run: RunArgs,
}

#[derive(Debug, Subcommand)]
enum LifeCommand {
    /// Measure seconds per generation, peak threads and peak RSS of every strategy (or,
    /// with --hashlife, HashLife against Golly).
    Bench(BenchArgs),
    /// Serve the game's rules over TCP, for `concur life --rules`: the book's network I/O.
    #[command(after_help = RULES_SERVER_AFTER)]
    RulesServer(RulesServerArgs),
}

const RULES_SERVER_AFTER: &str = "\
Each request carries a cell's position, state and neighbour count; the reply, its next
state, is sent --latency after the request arrived. Requests carry ids, so many share
one connection (the protocol is in the README and in concur::life::remote::protocol).
The address it listens on is printed on stderr (useful with port 0).

Exit status: 130 after SIGINT, 143 after SIGTERM, 1 if the server failed, 2 for bad
arguments (an address that cannot be bound).

Example:
  concur life rules-server --addr 127.0.0.1:7000 --latency 100ms &
  concur life --rules 127.0.0.1:7000 --mode async --size 100x100 --random 0.3 --json";

#[derive(Debug, Args)]
struct RulesServerArgs {
    /// Address to listen on (port 0 picks a free one).
    #[arg(long, default_value = "127.0.0.1:7000", value_name = "HOST:PORT")]
    addr: SocketAddr,

    /// Delay between a request's arrival and its reply.
    #[arg(long, value_parser = parse_duration, default_value = "100ms", value_name = "D")]
    latency: Duration,

    /// Fail every request for the cell at row Y, column X with "Problem with I/O".
    #[arg(long, value_parser = parse_position, value_name = "Y,X")]
    fail_at: Option<(usize, usize)>,

    /// The rule to answer with: any B/S rule, as B36/S23, 23/36 or Life.
    #[arg(long, default_value = "B3/S23", value_name = "RULE")]
    rule: Rule,

    /// Bytes of replies one connection may have queued (at most 1G); past them its
    /// requests are not read until replies go out (TCP then slows the client down).
    #[arg(long, value_parser = |t: &str| parse_bytes_max(t, 1 << 30), default_value = "1M", value_name = "SIZE")]
    max_queued_bytes: u64,

    /// Serve at most N connections at once; more are refused with a reason [default:
    /// 1024, or the descriptor limit less 64 if that is lower].
    #[arg(long, value_parser = parse_positive, value_name = "N")]
    max_connections: Option<NonZeroUsize>,

    /// Close a connection that sends no whole request, and has no reply pending, for D
    /// (0: never).
    #[arg(long, value_parser = parse_duration, default_value = "60s", value_name = "D")]
    idle_timeout: Duration,

    /// Close a connection that takes no reply for D: a client that stopped reading
    /// (0: wait for ever).
    #[arg(long, value_parser = parse_duration, default_value = "10s", value_name = "D")]
    write_timeout: Duration,

    /// Do not log connections on stderr.
    #[arg(long)]
    quiet: bool,

    /// On exit, print what the server did as one JSON object on stdout.
    #[arg(long)]
    json: bool,
}

/// What to print on stdout.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum PrintMode {
    /// Every generation side by side, as in the book.
    Columns,
    /// Only the last grid, one row per line.
    Final,
    /// The last grid as RLE, cropped to its living cells (reads back with --pattern):
    /// on a torus with Golly's :T suffix, on the plane with its position (#CXRLE Pos).
    Rle,
    /// The last grid as plaintext .cells, cropped to its living cells.
    Cells,
    /// The last generation as Golly's macrocell (.mc): HashLife's tree, any size.
    Mc,
    /// Nothing (for timing runs).
    None,
}

#[derive(Debug, Args)]
struct RunArgs {
    /// How to fan out the per-cell I/O.
    #[arg(
        long = "mode",
        short = 'm',
        alias = "strategy",
        alias = "algo",
        short_alias = 's',
        value_enum,
        default_value_t = Strategy::Serial,
        value_name = "MODE"
    )]
    strategy: Strategy,

    /// Number of generations (a number or 2^k); the columns show generations 0 to N
    /// [default: 4, or until `q` with --animate].
    #[arg(long, short, value_parser = parse_generations, value_name = "N")]
    generations: Option<u64>,

    /// Torus size as HEIGHTxWIDTH [default: 5x9 for the book's glider and --random; a
    /// pattern file runs on the unbounded plane without it].
    #[arg(long, value_parser = parse_size, value_name = "HxW")]
    size: Option<(usize, usize)>,

    /// Run on the unbounded plane, as Golly does (the default for a pattern file
    /// without --size); with --random, the soup is --size and the plane is unbounded.
    #[arg(long)]
    plane: bool,

    /// The rule: any outer-totalistic B/S rule, as B36/S23, 23/36 (S/B) or Life
    /// [default: the pattern file's, else B3/S23].
    #[arg(long, value_name = "RULE")]
    rule: Option<Rule>,

    /// With --mode hashlife on the plane: generations per step (a number or 2^k), each
    /// one HashLife jump [default: all of --generations at once; 1 with --animate].
    #[arg(long, value_parser = parse_generations_positive, value_name = "N")]
    step: Option<u64>,

    /// With --mode hashlife: collect the node store's garbage when it passes SIZE
    /// (64 bytes a node) [default: half the memory available, at most 4G].
    #[arg(long, value_parser = |t: &str| parse_bytes_max(t, 1 << 40), value_name = "SIZE")]
    max_memory: Option<u64>,

    /// Start from a random grid where each cell is alive with this probability.
    #[arg(long, value_parser = parse_density, value_name = "DENSITY", conflicts_with = "pattern")]
    random: Option<f64>,

    /// Seed for --random; the same seed gives the same grid.
    #[arg(long, default_value_t = 0, value_name = "N", requires = "random")]
    seed: u64,

    /// Start from a pattern file: rows of * and - (the book's), plaintext .cells, .rle,
    /// Life 1.05/1.06, or Golly's macrocell .mc (gzip'd or not).
    #[arg(long, value_name = "FILE")]
    pattern: Option<PathBuf>,

    /// Simulated I/O round trip per cell, e.g. 100ms.
    #[arg(long, value_parser = parse_duration, default_value = "0", value_name = "D")]
    latency: Duration,

    /// Ask a rules server (`concur life rules-server`) for every cell's next state
    /// instead of simulating the I/O.
    #[arg(long, value_name = "HOST:PORT", conflicts_with_all = ["latency", "fail_at", "rule"])]
    rules: Option<String>,

    /// With --rules: fail a cell whose reply has not come after this long.
    #[arg(long, value_parser = parse_duration, default_value = "10s", value_name = "D", requires = "rules")]
    io_timeout: Duration,

    /// Worker threads for pipeline, phased-pipeline (per stage) and pool; for hashlife
    /// and parallel, the threads computing [default: one per core] (1 computes as Golly
    /// does, on one core).
    #[arg(
        long = "jobs",
        short = 'j',
        alias = "workers",
        short_alias = 'w',
        value_parser = parse_positive,
        value_name = "N"
    )]
    workers: Option<NonZeroUsize>,

    /// Make the I/O of the cell at row Y, column X fail with "Problem with I/O".
    #[arg(long, value_parser = parse_position, value_name = "Y,X")]
    fail_at: Option<(usize, usize)>,

    /// What to print on stdout [default: columns, or none with --animate or --gif].
    #[arg(long, value_enum, value_name = "WHAT")]
    print: Option<PrintMode>,

    /// Write what would go to stdout into FILE instead (replaced only when the run
    /// succeeds).
    #[arg(long, short, value_name = "FILE")]
    output: Option<PathBuf>,

    /// Watch the run full-screen in the terminal (half blocks, two rows of cells per
    /// line); q, Esc or Ctrl-C quits.
    #[arg(long)]
    animate: bool,

    /// Frames per second for --animate (it waits so as not to go faster) and --gif.
    #[arg(long, value_parser = parse_positive, default_value = "10", value_name = "N")]
    fps: NonZeroUsize,

    /// Write the run as an animated GIF (the whole grid, at most 1,000,000 pixels a frame).
    #[arg(long, value_name = "FILE")]
    gif: Option<PathBuf>,

    /// Pixels per cell in the GIF.
    #[arg(long, value_parser = parse_positive, default_value = "4", value_name = "N", requires = "gif")]
    cell_px: NonZeroUsize,

    /// Put every Kth generation in the GIF (generation 0 always).
    #[arg(long, value_parser = parse_positive, default_value = "1", value_name = "K", requires = "gif")]
    every: NonZeroUsize,

    /// Print one JSON object per step ({"generation":g,"alive":n,"seconds":s} for g = 1..N),
    /// then a summary object (median seconds per generation, peak threads, peak RSS).
    #[arg(long, conflicts_with = "animate")]
    json: bool,

    /// Testing aid: panic after showing generation N, to check that every way out of
    /// --animate restores the terminal.
    #[arg(long, hide = true, value_name = "N")]
    fault_panic_after: Option<usize>,
}

impl RunArgs {
    /// The steps to run: --generations, else 4, else (animating) until the user quits.
    fn steps(&self) -> u64 {
        self.generations
            .unwrap_or(if self.animate { u64::MAX } else { 4 })
    }

    /// The threads hashlife and parallel compute on (`--jobs`), if given.
    fn threads(&self) -> Option<NonZeroUsize> {
        self.workers.filter(|_| !self.strategy.does_io())
    }

    /// The worker count for the book's strategies (`--jobs`).
    fn book_workers(&self) -> Option<NonZeroUsize> {
        self.workers.filter(|_| self.strategy.does_io())
    }

    /// What goes to stdout at the end.
    fn print_mode(&self) -> PrintMode {
        self.print.unwrap_or(if self.animate || self.gif.is_some() {
            PrintMode::None
        } else {
            PrintMode::Columns
        })
    }
}

#[derive(Debug, Args)]
struct BenchArgs {
    /// Simulated I/O per cell.
    #[arg(long, value_parser = parse_duration, default_value = "100ms", value_name = "D")]
    latency: Duration,

    /// Steps per case (default: 2 for serial, 3 to 5 for the others; at most 10000).
    #[arg(long, value_parser = |t: &str| parse_positive_max(t, 10_000), value_name = "N")]
    generations: Option<NonZeroUsize>,

    /// Skip cases with more cells than this.
    #[arg(long, value_name = "N")]
    max_cells: Option<usize>,

    /// Also run the book's Python programs with this interpreter, as a baseline.
    #[arg(long, value_name = "PYTHON")]
    python: Option<PathBuf>,

    /// Run the cases against a real rules server (started by the bench, adding
    /// --latency per request): every strategy at 45 cells, async at 10k, 100k and 1M,
    /// with the client's and the server's CPU time per cell.
    #[arg(long, conflicts_with = "python")]
    rules: bool,

    /// Print one JSON object with every case instead of a table.
    #[arg(long)]
    json: bool,

    /// Also draw the results as an SVG chart in FILE: seconds per generation and
    /// peak RSS against cells (log-log), a line per strategy, the Python baseline
    /// dashed beside it, the I/O floors drawn.
    #[arg(long, value_name = "FILE")]
    svg: Option<PathBuf>,

    /// Measure HashLife instead: the Gosper gun and breeder jumping 2^k generations
    /// (k = 10, 15, 20, 25, 30) and a 30% 1024x1024 soup run 10,000, each a child
    /// process on every core and on one thread, beside `bgolly -h` on the same file
    /// when golly is installed. The breeder is Golly's own file and needs golly.
    #[arg(long, conflicts_with_all = ["python", "rules", "svg", "max_cells", "generations"])]
    hashlife: bool,

    /// With --hashlife: runs per case (the median is reported).
    #[arg(long, value_parser = parse_positive, default_value = "3", value_name = "N", requires = "hashlife")]
    runs: NonZeroUsize,

    /// With --hashlife: skip the soup (about 10 s a run for Golly).
    #[arg(long, requires = "hashlife")]
    no_soup: bool,
}

/// Runs `concur life`.
pub fn run(args: LifeArgs, out: &mut dyn Write) -> Result<Outcome> {
    match args.command {
        Some(LifeCommand::Bench(bench)) => run_bench(bench, out),
        Some(LifeCommand::RulesServer(server)) => rules_server(server, out),
        None => run_life(args.run, out),
    }
}

/// The starting torus from --pattern, --random, --size, or the book's glider.
fn initial_grid(args: &RunArgs, loaded: Option<pattern::Loaded>) -> Result<Grid> {
    let grid = match (loaded, args.random, args.size) {
        (Some(loaded), _, size) => {
            let cannot = || {
                format!(
                    "cannot use pattern {}",
                    args.pattern.as_deref().unwrap_or(Path::new("")).display()
                )
            };
            match size {
                Some((h, w)) => Grid::embed(&loaded.grid, h, w).with_context(cannot)?,
                None => loaded.grid,
            }
        }
        (None, Some(density), size) => {
            let (h, w) = size.unwrap_or((5, 9));
            Grid::random(h, w, density, args.seed)?
        }
        (None, None, None) => Grid::glider(),
        (None, None, Some((h, w))) => {
            let mut grid = Grid::new(h, w)?;
            grid.add_glider();
            grid
        }
    };
    Ok(grid)
}

/// Whether `path` is Golly's macrocell format: `.mc` or `.mc.gz`, or a file starting
/// with `[M2]` or gzip's magic bytes.
fn is_macrocell(path: &Path) -> bool {
    let name = path.to_string_lossy().to_ascii_lowercase();
    if name.ends_with(".mc") || name.ends_with(".mc.gz") {
        return true;
    }
    let mut head = [0u8; 4];
    std::fs::File::open(path)
        .and_then(|mut f| std::io::Read::read(&mut f, &mut head))
        .is_ok_and(|n| head[..n].starts_with(b"[M2]") || head[..n].starts_with(&[0x1f, 0x8b]))
}

/// Reads a macrocell file (gzip'd or not) into a universe.
fn load_macrocell(path: &Path, rule: Option<Rule>, parallel: bool) -> Result<Universe> {
    use std::io::Read;
    let cannot = || format!("cannot read pattern file {}", path.display());
    let mut raw = Vec::new();
    std::fs::File::open(path)
        .and_then(|f| f.take(pattern::MAX_FILE_BYTES + 1).read_to_end(&mut raw))
        .with_context(cannot)?;
    let mut text = String::new();
    if raw.starts_with(&[0x1f, 0x8b]) {
        flate2::read::GzDecoder::new(&raw[..])
            .take(pattern::MAX_FILE_BYTES + 1)
            .read_to_string(&mut text)
            .with_context(|| format!("{}: not a gzip'd macrocell file", path.display()))?;
    } else {
        text = String::from_utf8(raw)
            .map_err(|_| UsageError(format!("{}: not a text file", path.display())))?;
    }
    if text.len() as u64 > pattern::MAX_FILE_BYTES {
        return Err(UsageError(format!(
            "{} is larger than {} MiB: not a pattern file",
            path.display(),
            pattern::MAX_FILE_BYTES >> 20
        ))
        .into());
    }
    Universe::read_macrocell(&text, rule, parallel)
        .map_err(|err| UsageError(format!("{}:{err}", path.display())).into())
}

/// Parses `--step`: a generation count of at least 1.
fn parse_generations_positive(text: &str) -> Result<u64, String> {
    match parse_generations(text)? {
        0 => Err("a step is at least 1 generation".to_owned()),
        n => Ok(n),
    }
}

/// `--print columns` keeps every generation to lay them side by side: it is for the
/// book's short runs, so it takes at most this many generations...
const MAX_COLUMN_GENERATIONS: usize = 1000;

/// ...and at most this many cells over all of them.
const MAX_COLUMN_CELLS: usize = 10_000_000;

/// Refuses `--print columns` for a run whose every generation would not fit on a page.
fn check_columns(args: &RunArgs, cells: usize) -> Result<(), UsageError> {
    if args.json || args.print_mode() != PrintMode::Columns {
        return Ok(());
    }
    let steps = usize::try_from(args.steps()).unwrap_or(usize::MAX);
    let shown = steps.checked_add(1).and_then(|g| g.checked_mul(cells));
    if steps > MAX_COLUMN_GENERATIONS || shown.is_none_or(|n| n > MAX_COLUMN_CELLS) {
        return Err(UsageError(format!(
            "--print columns (the default) keeps every generation to print them side by side: \
             at most {MAX_COLUMN_GENERATIONS} generations and {MAX_COLUMN_CELLS} cells in all, \
             not {steps} generations of {cells} cells; use --print final, --print none or --json"
        )));
    }
    Ok(())
}

fn run_life(args: RunArgs, out: &mut dyn Write) -> Result<Outcome> {
    let Some(path) = args.output.clone() else {
        return run_life_to(args, out);
    };
    // Written beside its destination and renamed over it at the end, so a run that
    // fails (or is stopped) leaves any earlier file whole.
    let cannot = || format!("cannot write {}", path.display());
    let mut file = super::output::replacement_file(&path).with_context(cannot)?;
    let mut writer = std::io::BufWriter::new(&mut file);
    let outcome = run_life_to(args, &mut writer)?;
    writer.flush().with_context(cannot)?;
    drop(writer);
    file.persist(&path).with_context(cannot)?;
    Ok(outcome)
}

fn run_life_to(args: RunArgs, out: &mut dyn Write) -> Result<Outcome> {
    if args.json && args.print.is_some_and(|p| p != PrintMode::None) {
        return Err(UsageError(
            "--json prints the generations and a summary on stdout, so it takes no --print \
             but --print none"
                .to_owned(),
        )
        .into());
    }
    if args.animate && !std::io::stdout().is_terminal() {
        return Err(UsageError(
            "--animate draws full-screen and needs a terminal on stdout; use --gif FILE to \
             keep an animation, or --print final"
                .to_owned(),
        )
        .into());
    }
    if let Some(n) = args.threads() {
        // The command runs once per process, so the global pool is still unbuilt.
        let _ = rayon::ThreadPoolBuilder::new()
            .num_threads(n.get())
            .build_global();
    }
    let parallel = args.threads().is_none_or(|n| n.get() > 1);
    if let Some(path) = args.pattern.as_deref().filter(|p| is_macrocell(p)) {
        if args.size.is_some() {
            return Err(UsageError(format!(
                "{} is a macrocell file, a pattern on the unbounded plane: --size does not apply",
                path.display()
            ))
            .into());
        }
        let universe = load_macrocell(path, args.rule, parallel)?;
        return run_on_plane(&args, PlaneStart::Tree(Box::new(universe)), out);
    }
    let loaded = match &args.pattern {
        Some(path) => Some(pattern::load_pattern(path)?),
        None => None,
    };
    let file_gives_size = loaded
        .as_ref()
        .is_some_and(|l| l.torus || l.format == pattern::PatternFormat::Rows);
    let on_plane = args.plane || (loaded.is_some() && args.size.is_none() && !file_gives_size);
    if on_plane {
        let rule = args
            .rule
            .or(loaded.as_ref().map(|l| l.rule))
            .unwrap_or_default();
        let (grid, origin) = match (loaded, args.random) {
            (Some(loaded), _) => {
                if args.size.is_some() {
                    return Err(UsageError(
                        "--plane runs a pattern file at its own size and position; --size \
                         is for --random (the soup's size) or a torus (without --plane)"
                            .to_owned(),
                    )
                    .into());
                }
                (loaded.grid, loaded.origin)
            }
            (None, Some(density)) => {
                let (h, w) = args.size.unwrap_or((5, 9));
                (Grid::random(h, w, density, args.seed)?, (0, 0))
            }
            (None, None) => (Grid::glider(), (0, 0)),
        };
        return run_on_plane(&args, PlaneStart::Grid { grid, origin, rule }, out);
    }
    if args.step.is_some() {
        return Err(UsageError(
            "--step jumps generations on the unbounded plane (--mode hashlife without \
             --size); on a torus every generation is computed"
                .to_owned(),
        )
        .into());
    }
    let rule = args
        .rule
        .or(loaded.as_ref().map(|l| l.rule))
        .unwrap_or_default();
    let grid = initial_grid(&args, loaded)?;
    check_columns(&args, grid.len())?;
    footprint::check(
        args.strategy,
        grid.len(),
        crate::limits::memory_budget().as_ref(),
    )?;
    if !args.strategy.does_io() {
        let given = [
            (!args.latency.is_zero()).then_some("--latency"),
            args.fail_at.is_some().then_some("--fail-at"),
            args.rules.is_some().then_some("--rules"),
        ];
        if let Some(flag) = given.into_iter().flatten().next() {
            return Err(UsageError(format!(
                "{flag} does not apply to --mode parallel: it computes the rule on packed \
                 words and does no per-cell I/O; use one of the book's strategies \
                 (serial, thread-per-cell, pipeline, phased-pipeline, pool, async) for I/O"
            ))
            .into());
        }
    }
    let mut io = SimulatedIo::new(args.latency).with_rule(rule);
    if let Some((y, x)) = args.fail_at {
        if y >= grid.height() || x >= grid.width() {
            return Err(UsageError(format!(
                "--fail-at {y},{x} is outside the {}x{} grid (rows 0-{}, columns 0-{})",
                grid.height(),
                grid.width(),
                grid.height() - 1,
                grid.width() - 1
            ))
            .into());
        }
        io = io.failing_at(y, x);
    }
    let sim = match &args.rules {
        Some(server) => {
            let addr = resolve(server)?;
            let client = RulesClient::new(addr, server.clone(), args.io_timeout);
            Simulation::with_rule(args.strategy, args.book_workers(), Arc::new(client), rule)?
        }
        None => Simulation::with_rule(args.strategy, args.book_workers(), Arc::new(io), rule)?,
    };
    simulate(&args, grid, sim, rule, out)
}

/// Where a run on the unbounded plane starts.
enum PlaneStart {
    /// A pattern (or soup) and the plane position of its top-left cell.
    Grid {
        grid: Grid,
        origin: (i64, i64),
        rule: Rule,
    },
    /// A macrocell file's tree.
    Tree(Box<Universe>),
}

/// Checks the options a plane run cannot take, sets it up and runs it.
fn run_on_plane(args: &RunArgs, start: PlaneStart, out: &mut dyn Write) -> Result<Outcome> {
    let refuse = |flag: &str, why: &str| -> Result<Outcome> {
        Err(UsageError(format!("{flag} {why}")).into())
    };
    if args.fail_at.is_some() {
        return refuse(
            "--fail-at",
            "names a cell of a torus; on the unbounded plane cells have no fixed place \
             (give --size HxW)",
        );
    }
    if !args.strategy.does_io() && (!args.latency.is_zero() || args.rules.is_some()) {
        return refuse(
            "--latency and --rules",
            "do not apply: this strategy does no per-cell I/O",
        );
    }
    if args.print_mode() == PrintMode::Columns
        && !args.json
        && args.steps() > MAX_COLUMN_GENERATIONS as u64
    {
        return refuse(
            "--print columns",
            &format!(
                "(the default) keeps every generation: at most {MAX_COLUMN_GENERATIONS}; use \
                 --print final, rle, mc or none, or --json"
            ),
        );
    }
    let rule = match &start {
        PlaneStart::Grid { rule, .. } => *rule,
        PlaneStart::Tree(universe) => universe.rule(),
    };
    if rule.births_from_nothing() {
        return Err(UsageError(
            crate::life::hashlife::HashLifeError::BirthFromNothing(rule).to_string(),
        )
        .into());
    }
    let parallel = args.threads().is_none_or(|n| n.get() > 1);
    let world = match start {
        PlaneStart::Tree(universe) if args.strategy == Strategy::Hashlife => {
            plane::World::Tree(universe)
        }
        PlaneStart::Tree(universe) => {
            let (grid, origin) = universe.to_grid()?;
            let rule = universe.rule();
            let generation = universe.generation();
            drop(universe);
            plane_world(args, grid, origin, rule, generation)?
        }
        PlaneStart::Grid { grid, origin, rule } if args.strategy == Strategy::Hashlife => {
            plane::World::Tree(Box::new(Universe::from_grid(
                &grid, origin, rule, parallel,
            )?))
        }
        PlaneStart::Grid { grid, origin, rule } => plane_world(args, grid, origin, rule, 0)?,
    };
    plane::run(args, world, out)
}

/// A grid strategy stepping the bounding box on the plane.
fn plane_world(
    args: &RunArgs,
    grid: Grid,
    origin: (i64, i64),
    rule: Rule,
    generation: u64,
) -> Result<plane::World> {
    let sim = match &args.rules {
        Some(server) => {
            let addr = resolve(server)?;
            let client = RulesClient::new(addr, server.clone(), args.io_timeout);
            Simulation::with_rule(args.strategy, args.book_workers(), Arc::new(client), rule)?
        }
        None => {
            let io = SimulatedIo::new(args.latency).with_rule(rule);
            Simulation::with_rule(args.strategy, args.book_workers(), Arc::new(io), rule)?
        }
    };
    Ok(plane::World::Boxed {
        plane: crate::life::plane::Plane::new(grid, origin),
        sim: Some(sim),
        generation,
        rule,
    })
}

/// The first address `server` (HOST:PORT) resolves to.
fn resolve(server: &str) -> Result<SocketAddr, UsageError> {
    let bad = |why: String| UsageError(format!("--rules {server}: {why}"));
    server
        .to_socket_addrs()
        .map_err(|err| bad(err.to_string()))?
        .next()
        .ok_or_else(|| bad("the name has no address".to_owned()))
}

/// Runs the simulation set up by [`run_life`] and prints what was asked for.
fn simulate(
    args: &RunArgs,
    grid: Grid,
    mut sim: Simulation,
    rule: Rule,
    out: &mut dyn Write,
) -> Result<Outcome> {
    let (height, width, cells) = (grid.height(), grid.width(), grid.len());
    let threads = args
        .json
        .then(|| PeakThreads::start(Duration::from_millis(2)));
    let steps = usize::try_from(args.steps()).unwrap_or(usize::MAX);
    let print = args.print_mode();
    let frame = Duration::from_secs(1) / u32::try_from(args.fps.get()).unwrap_or(u32::MAX);
    let mut gif = match &args.gif {
        Some(path) => Some(
            GifWriter::create(path, height, width, args.cell_px.get(), frame)
                .map_err(|err| UsageError(format!("--gif: {err}")))?,
        ),
        None => None,
    };
    let mut animation = if args.animate {
        Some(Animation::start(
            u32::try_from(args.fps.get()).unwrap_or(u32::MAX),
        )?)
    } else {
        None
    };

    let bar = if animation.is_some() {
        indicatif::ProgressBar::hidden()
    } else {
        progress_bar(steps as u64, "generations")
    };
    bar.set_message(format!("{} on {height}x{width}", args.strategy));
    let mut columns = ColumnPrinter::default();
    // Never sized from --generations: a trillion of them must not allocate up front.
    let mut times = StepTimes::default();
    let mut write_error = None;
    let mut view_error: Option<anyhow::Error> = None;
    let mut last_index = 0;
    let last = sim.run_until(grid, steps, |generation| {
        last_index = generation.index;
        if generation.index > 0 {
            bar.inc(1);
            times.push(generation.elapsed);
        }
        if args.json {
            if generation.index > 0 && write_error.is_none() {
                let record = GenerationRecord {
                    generation: generation.index,
                    alive: generation.alive(),
                    seconds: generation.elapsed.as_secs_f64(),
                };
                // Serializing these plain fields cannot fail.
                let line = serde_json::to_string(&record).unwrap_or_default();
                write_error = writeln!(out, "{line}").and_then(|()| out.flush()).err();
            }
        } else if print == PrintMode::Columns {
            columns.push(&generation.grid());
        }
        if let Some(gif) = gif.as_mut()
            && generation.index % args.every.get() == 0
            && let Err(err) = gif.add(&generation.grid())
        {
            view_error = Some(err.into());
            return ControlFlow::Break(());
        }
        if let Some(animation) = animation.as_mut() {
            let status = Status {
                generation: generation.index,
                population: generation.alive(),
                seconds_per_generation: generation.elapsed.as_secs_f64(),
                strategy: args.strategy.name(),
            };
            match animation.show(&generation.grid(), &status) {
                Ok(true) => {}
                Ok(false) => return ControlFlow::Break(()),
                Err(err) => {
                    view_error =
                        Some(anyhow::Error::new(err).context("cannot draw on the terminal"));
                    return ControlFlow::Break(());
                }
            }
        }
        if args.fault_panic_after == Some(generation.index) {
            panic!(
                "--fault-panic-after {}: a panic injected for testing",
                generation.index
            );
        }
        ControlFlow::Continue(())
    });
    if let Some(animation) = animation {
        animation.finish();
    }
    bar.finish_and_clear();
    let last = last?;
    sim.shutdown()?;
    if let Some(err) = write_error {
        return Err(err.into());
    }
    if let Some(err) = view_error {
        return Err(err);
    }

    if args.json {
        let summary = RunSummary {
            strategy: args.strategy.name().to_owned(),
            height,
            width,
            cells,
            generations: last_index,
            workers: args
                .workers
                .or(args.strategy.default_workers())
                .map(NonZeroUsize::get),
            latency_ms: args.latency.as_secs_f64() * 1000.0,
            seconds_per_generation: times.median(),
            total_seconds: times.total(),
            peak_threads: threads.and_then(PeakThreads::finish),
            peak_rss_mb: peak_rss_bytes().map(|b| b as f64 / (1024.0 * 1024.0)),
            alive: last.alive(),
            rules: args.rules.clone(),
            cpu_seconds: crate::measure::cpu_seconds(None),
            step_range: times.range(),
            cell_updates_per_second: if times.median() > 0.0 {
                cells as f64 / times.median()
            } else {
                0.0
            },
        };
        writeln!(out, "{}", serde_json::to_string(&summary)?)?;
    } else {
        match print {
            PrintMode::Columns => writeln!(out, "{columns}")?,
            PrintMode::Final => writeln!(out, "{last}")?,
            PrintMode::Rle => write!(out, "{}", save::torus_to_rle(&last, last_index, rule))?,
            PrintMode::Mc => {
                let mut universe = Universe::from_grid(&last, (0, 0), rule, false)
                    .map_err(|err| UsageError(format!("--print mc writes the plane: {err}")))?;
                universe.set_generation(last_index as u64);
                universe.write_macrocell(out)?;
            }
            PrintMode::Cells => write!(out, "{}", save::to_cells(&last, last_index))?,
            PrintMode::None => {}
        }
    }
    Ok(Outcome::Success)
}

fn rules_server(args: RulesServerArgs, out: &mut dyn Write) -> Result<Outcome> {
    let descriptors = crate::limits::raise_fd_limit().unwrap_or(1024);
    let max_connections = match args.max_connections {
        Some(n) if n.get() as u64 > descriptors => {
            return Err(UsageError(format!(
                "--max-connections {n}: a connection takes a descriptor, and the limit is \
                 {descriptors} (ulimit -n)"
            ))
            .into());
        }
        Some(n) => n.get(),
        None => remote::server::DEFAULT_MAX_CONNECTIONS
            .min(usize::try_from(descriptors.saturating_sub(64)).unwrap_or(usize::MAX))
            .max(1),
    };
    let listener = crate::guess::bind(args.addr)
        .map_err(|err| UsageError(format!("cannot listen on {}: {err}", args.addr)))?;
    let local = listener.local_addr()?;
    let signals = SignalCancel::install_with("rules-signals", SecondSignal::Exit)?;
    // Connection lines leave through a printer thread with a bounded queue: a stderr
    // that is slow, or a pipe nobody reads, drops lines instead of stalling the server.
    let printer =
        Printer::stderr("rules-log", 1024, "concur: ").context("cannot start the log printer")?;
    let log = if args.quiet {
        Sink::null()
    } else {
        printer.sink()
    };
    if args.max_queued_bytes == 0 {
        return Err(UsageError("--max-queued-bytes must be at least 1 byte".into()).into());
    }
    eprintln!(
        "concur: listening on {local} (rules server, {} per request)",
        humanize(args.latency)
    );
    log.send(|| {
        format!(
            "serving at most {max_connections} connections at once, each with at most {} of \
             replies queued",
            crate::limits::format_bytes(args.max_queued_bytes)
        )
    });
    let fail_at = args.fail_at.map(|(y, x)| {
        (
            u32::try_from(y).unwrap_or(u32::MAX),
            u32::try_from(x).unwrap_or(u32::MAX),
        )
    });
    let config = RulesServerConfig {
        latency: args.latency,
        fail_at,
        rule: args.rule,
        log,
        max_queued_bytes: usize::try_from(args.max_queued_bytes).unwrap_or(usize::MAX),
        max_connections,
        idle_timeout: off_if_zero(args.idle_timeout),
        write_timeout: off_if_zero(args.write_timeout),
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let stats = runtime.block_on(async {
        listener.set_nonblocking(true)?;
        let listener = tokio::net::TcpListener::from_std(listener)?;
        remote::serve(listener, config, signals.token().cancelled()).await
    });
    // Open connections end with the runtime; their clients see the server go.
    runtime.shutdown_background();
    let logged = printer.finish(std::time::Instant::now() + Duration::from_secs(1));
    let stats = stats.context("the rules server failed")?;
    eprintln!(
        "concur: served {} connections, {} requests answered, {} failed; refused {} \
         connections, closed {} idle and {} that stopped reading",
        stats.connections,
        stats.answered,
        stats.failed,
        stats.refused,
        stats.idle_closed,
        stats.write_timeouts
    );
    if logged.dropped > 0 {
        eprintln!(
            "concur: log: {} lines dropped (stderr did not keep up; at most 1024 wait)",
            logged.dropped
        );
    }
    if args.json {
        writeln!(out, "{}", serde_json::to_string(&stats)?)?;
    }
    Ok(Outcome::Code(signals.exit_status()))
}

fn run_bench(args: BenchArgs, out: &mut dyn Write) -> Result<Outcome> {
    let exe = std::env::current_exe().context("cannot find the concur executable to run cases")?;
    if args.hashlife {
        return run_hashlife_bench(&exe, &args, out);
    }
    let generations = args.generations.map(NonZeroUsize::get);
    let all = if args.rules {
        bench::rules_cases(generations)
    } else {
        bench::standard_cases(generations)
    };
    let smallest = all.iter().map(Case::cells).min().unwrap_or(0);
    let cases: Vec<Case> = all
        .into_iter()
        .filter(|c| args.max_cells.is_none_or(|max| c.cells() <= max))
        .collect();
    if cases.is_empty() {
        return Err(UsageError(format!(
            "no case has at most {} cells: the smallest has {smallest}",
            args.max_cells.unwrap_or(0)
        ))
        .into());
    }
    let latency = args.latency;
    let server = if args.rules {
        Some(bench::RulesServerProcess::start(&exe, latency)?)
    } else {
        None
    };
    let rules = server.as_ref().map(bench::RulesServerProcess::addr);
    if !args.json {
        match rules {
            Some(addr) => writeln!(
                out,
                "concur life bench --rules: a rules server at {addr} adding {} per request, median seconds per generation, each case in its own process",
                humanize(latency)
            )?,
            None => writeln!(
                out,
                "concur life bench: {} of I/O per cell, median seconds per generation, each case in its own process",
                humanize(latency)
            )?,
        }
        write_header(out, args.python.is_some(), args.rules)?;
    }
    let bar = progress_bar(cases.len() as u64, "cases");
    let mut results = Vec::with_capacity(cases.len());
    let mut failed = false;
    for case in &cases {
        bar.set_message(format!("{} at {} cells", case.strategy, case.cells()));
        let python = args.python.as_deref().map(|python| {
            bar.set_message(format!(
                "{} at {} cells (Python)",
                case.strategy,
                case.cells()
            ));
            bench::run_case(python, Some(bench::PYTHON_REFERENCE), case, latency, None)
        });
        bar.set_message(format!("{} at {} cells", case.strategy, case.cells()));
        let server_before = server
            .as_ref()
            .and_then(bench::RulesServerProcess::cpu_seconds);
        let ours = bench::run_case(&exe, None, case, latency, rules);
        let server_cpu = server
            .as_ref()
            .and_then(bench::RulesServerProcess::cpu_seconds)
            .zip(server_before)
            .map(|(after, before)| after - before);
        let result = match ours {
            Ok(ours) => bench::result(case, latency, &ours, python, server_cpu),
            Err(err) => {
                failed = true;
                bar.suspend(|| eprintln!("concur: {err}"));
                bar.inc(1);
                continue;
            }
        };
        bar.inc(1);
        if !args.json {
            bar.suspend(|| write_row(out, &result, args.python.is_some(), args.rules))?;
        }
        results.push(result);
    }
    bar.finish_and_clear();
    if let Some(path) = &args.svg {
        let chart = bench::chart(&results, latency, &super::output::typed_command());
        super::output::write_svg(path, chart)?;
    }
    if args.json {
        let report = serde_json::json!({
            "latency_ms": latency.as_secs_f64() * 1000.0,
            "rules_server": args.rules,
            "cases": results,
        });
        writeln!(out, "{report}")?;
    }
    Ok(if failed {
        Outcome::Failure
    } else {
        Outcome::Success
    })
}

/// `concur life bench --hashlife`.
fn run_hashlife_bench(exe: &Path, args: &BenchArgs, out: &mut dyn Write) -> Result<Outcome> {
    use crate::life::hashlife_bench::{self as hb, HashlifeCase};
    let golly = [
        "/usr/bin/bgolly",
        "/usr/games/bgolly",
        "/usr/local/bin/bgolly",
    ]
    .into_iter()
    .map(PathBuf::from)
    .find(|p| p.exists());
    let dir = tempfile::tempdir().context("cannot make a directory for the patterns")?;
    let gun = dir.path().join("gun.rle");
    std::fs::write(&gun, hb::GUN).context("cannot write the gun's pattern")?;
    let mut cases = Vec::new();
    let breeder = PathBuf::from(hb::GOLLY_BREEDER);
    for k in [10u32, 15, 20, 25, 30] {
        cases.push(HashlifeCase {
            name: "Gosper gun".to_owned(),
            file: gun.clone(),
            generations: 1 << k,
        });
    }
    if breeder.exists() {
        for k in [10u32, 15, 20, 25, 30] {
            cases.push(HashlifeCase {
                name: "Gosper breeder".to_owned(),
                file: breeder.clone(),
                generations: 1 << k,
            });
        }
    }
    if !args.no_soup {
        let soup = dir.path().join("soup.rle");
        let grid = Grid::random(1024, 1024, 0.3, 1)?;
        std::fs::write(&soup, save::to_rle(&grid, 0)).context("cannot write the soup")?;
        cases.push(HashlifeCase {
            name: "30% soup 1024x1024".to_owned(),
            file: soup,
            generations: 10_000,
        });
    }
    if !args.json {
        writeln!(
            out,
            "concur life bench --hashlife: median wall seconds of {} runs, each a process; {}",
            args.runs,
            match &golly {
                Some(g) => format!("Golly is {} -h", g.display()),
                None =>
                    "bgolly not found (apt-get install golly): concur only, no breeder".to_owned(),
            }
        )?;
        writeln!(
            out,
            "{:<20} {:>13} {:>26} {:>9} {:>9} {:>9} {:>9} {:>8} {:>8}",
            "pattern",
            "generations",
            "alive",
            "concur s",
            "1 thread",
            "golly s",
            "ratio",
            "MiB",
            "golly MiB"
        )?;
    }
    let bar = progress_bar(cases.len() as u64, "cases");
    let mut results = Vec::new();
    for case in &cases {
        bar.set_message(format!("{} at {}", case.name, case.generations));
        let result = hb::measure(exe, golly.as_deref(), case, args.runs.get())?;
        bar.inc(1);
        if !args.json {
            let opt = |v: Option<f64>, digits: usize| {
                v.map_or("-".to_owned(), |v| format!("{v:.digits$}"))
            };
            bar.suspend(|| {
                writeln!(
                    out,
                    "{:<20} {:>13} {:>26} {:>9.4} {:>9.4} {:>9} {:>9} {:>8} {:>8}",
                    result.pattern,
                    result.generations,
                    result.alive,
                    result.concur_seconds,
                    result.concur_one_thread_seconds,
                    opt(result.golly_seconds, 4),
                    opt(result.ratio_to_golly, 3),
                    opt(result.concur_rss_mb, 1),
                    opt(result.golly_rss_mb, 1),
                )
            })?;
        }
        results.push(result);
    }
    bar.finish_and_clear();
    if args.json {
        let report = serde_json::json!({
            "runs": args.runs.get(),
            "golly": golly.as_ref().map(|g| g.display().to_string()),
            "threads": rayon::current_num_threads(),
            "cases": results,
        });
        writeln!(out, "{report}")?;
    }
    Ok(Outcome::Success)
}

fn humanize(d: Duration) -> String {
    if d.as_secs_f64() >= 1.0 {
        format!("{} s", d.as_secs_f64())
    } else {
        format!("{} ms", d.as_secs_f64() * 1000.0)
    }
}

fn write_header(out: &mut dyn Write, python: bool, rules: bool) -> std::io::Result<()> {
    write!(
        out,
        "{:>7}  {:<16} {:>7}  {:>9}  {:>9}  {:>6}  {:>7}  {:>7}",
        "cells", "strategy", "workers", "I/O floor", "s/gen", "×floor", "threads", "RSS MB"
    )?;
    if rules {
        write!(out, "  {:>13}  {:>13}", "client µs/cell", "server µs/cell")?;
    }
    if python {
        write!(
            out,
            "  {:>10}  {:>9}  {:>8}",
            "Python s/gen", "Python MB", "speed-up"
        )?;
    }
    writeln!(out)
}

fn write_row(
    out: &mut dyn Write,
    r: &CaseResult,
    python: bool,
    rules: bool,
) -> std::io::Result<()> {
    let opt = |v: Option<String>| v.unwrap_or_else(|| "-".to_owned());
    write!(
        out,
        "{:>7}  {:<16} {:>7}  {:>9}  {:>9}  {:>5.2}x  {:>7}  {:>7}",
        r.cells,
        r.strategy,
        opt(r.workers.map(|w| w.to_string())),
        seconds(r.io_floor_seconds),
        seconds(r.seconds_per_generation),
        r.vs_floor,
        opt(r.peak_threads.map(|t| t.to_string())),
        opt(r.peak_rss_mb.map(|m| format!("{m:.1}"))),
    )?;
    if rules {
        write!(
            out,
            "  {:>14}  {:>14}",
            opt(r.client_cpu_us_per_cell.map(|c| format!("{c:.2}"))),
            opt(r.server_cpu_us_per_cell.map(|c| format!("{c:.2}"))),
        )?;
    }
    if python {
        match (r.python_seconds_per_generation, &r.python_error) {
            (Some(py), _) => write!(
                out,
                "  {:>12}  {:>9}  {:>7.2}x",
                seconds(py),
                opt(r.python_peak_rss_mb.map(|m| format!("{m:.1}"))),
                py / r.seconds_per_generation
            )?,
            (None, Some(err)) => write!(out, "  Python failed: {err}")?,
            (None, None) => {}
        }
    }
    writeln!(out)
}
