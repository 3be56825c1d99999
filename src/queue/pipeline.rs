//! `Pipeline`: stages of worker threads connected by bounded `ClosableQueue`s.

use std::error::Error;
use std::fmt;
use std::io;
use std::marker::PhantomData;
use std::num::NonZeroUsize;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use serde::Serialize;
use thiserror::Error;

use super::closable::{ClosableQueue, Closed};
use crate::executor::panic_message;
#[cfg(feature = "cli")]
use crate::report::{Bar, BarChart, BarGroup, Provenance};

/// One item in this many has its stage-function time measured (see `StageReport`).
const BUSY_SAMPLE: u32 = 8;

/// A boxed error from a stage function.
pub type BoxError = Box<dyn Error + Send + Sync + 'static>;

/// The first failure in a pipeline: which stage, on which input item, and why. Its
/// message says all three (`stage "parse" failed on item 2: invalid digit`), so that
/// `{err}` alone tells the whole story; the cause is therefore not also its
/// `source()`, which would print it twice in an error chain.
#[derive(Debug, Error)]
#[error("stage {stage:?} failed on item {index}: {cause}")]
pub struct PipelineError {
    /// The stage's name.
    pub stage: String,
    /// The 0-based position of the item in the input.
    pub index: usize,
    /// What the stage function returned (or how it panicked).
    pub cause: BoxError,
}

/// One stage's numbers after a run.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct StageReport {
    /// The stage's name.
    pub name: String,
    /// Its worker threads.
    pub workers: usize,
    /// Items it finished.
    pub items: usize,
    /// Time its workers spent inside the stage function, summed over workers. Estimated
    /// from every 8th item (timing every item would cost as much as the hand-offs).
    pub busy_seconds: f64,
    /// The most items that waited in its input queue at once.
    pub peak_queue: usize,
}

impl StageReport {
    /// The share of the stage's worker time spent working, over `elapsed`.
    /// The busy time is estimated from a sample of the items, so it is capped at 1: a
    /// worker cannot be busy for longer than it existed.
    pub fn utilization(&self, elapsed: Duration) -> f64 {
        let available = self.workers as f64 * elapsed.as_secs_f64();
        if available > 0.0 {
            (self.busy_seconds / available).min(1.0)
        } else {
            0.0
        }
    }
}

#[cfg(feature = "cli")]
/// The stages' utilisation as a chart: a bar per stage, the share of its workers'
/// time spent working over `elapsed`, with its worker count and peak queue written on
/// it. The slowest stage is the one near 100%; the others wait on it.
pub(crate) fn utilization_chart(
    stages: &[StageReport],
    elapsed: Duration,
    title: &str,
    provenance: Provenance,
) -> BarChart {
    let groups = stages
        .iter()
        .map(|s| {
            let share = 100.0 * s.utilization(elapsed);
            BarGroup {
                label: s.name.clone(),
                bars: vec![Bar {
                    series: "busy share of its workers' time".into(),
                    median: share,
                    min: share,
                    max: share,
                    note: format!(
                        "{} workers: {share:.0}%, peak queue {}",
                        s.workers, s.peak_queue
                    ),
                }],
            }
        })
        .collect();
    BarChart {
        title: title.to_owned(),
        y_label: "utilisation (%)".into(),
        groups,
        provenance,
    }
}

/// What a finished pipeline produced.
#[derive(Debug)]
pub struct Report<T> {
    /// The last stage's outputs, in input order.
    pub outputs: Vec<T>,
    /// Per-stage numbers, first stage first.
    pub stages: Vec<StageReport>,
    /// Wall time from `build` to the end.
    pub elapsed: Duration,
}

/// Stops a queue whatever its item type.
trait Abort: Send + Sync {
    fn abort(&self);
    fn peak(&self) -> usize;
}

impl<T: Send> Abort for ClosableQueue<T> {
    fn abort(&self) {
        drop(self.shutdown_now());
    }

    fn peak(&self) -> usize {
        self.peak_len()
    }
}

/// State shared by every worker of every stage.
#[derive(Default)]
struct Shared {
    first_error: Mutex<Option<PipelineError>>,
    /// Every queue, so that the first error can stop all of them.
    queues: Mutex<Vec<Arc<dyn Abort>>>,
}

impl Shared {
    fn fail(&self, err: PipelineError) {
        let mut slot = self
            .first_error
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if slot.is_some() {
            return;
        }
        *slot = Some(err);
        drop(slot);
        let queues = self
            .queues
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        for queue in queues {
            queue.abort();
        }
    }

    fn register(&self, queue: Arc<dyn Abort>) {
        self.queues
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(queue);
    }
}

struct Stage {
    name: String,
    workers: usize,
    handles: Vec<JoinHandle<()>>,
    items: Arc<AtomicUsize>,
    busy_nanos: Arc<AtomicU64>,
    input: Arc<dyn Abort>,
}

/// The threads and queues of a pipeline under construction or running. Dropping it
/// without finishing stops everything and joins every thread.
struct Core {
    shared: Arc<Shared>,
    stages: Vec<Stage>,
    started: Instant,
}

impl Core {
    fn join(&mut self) {
        for stage in &mut self.stages {
            for handle in stage.handles.drain(..) {
                // Stage functions run under catch_unwind, so workers do not panic.
                let _ = handle.join();
            }
        }
    }

    fn reports(&self) -> Vec<StageReport> {
        self.stages
            .iter()
            .map(|s| StageReport {
                name: s.name.clone(),
                workers: s.workers,
                items: s.items.load(Ordering::Relaxed),
                busy_seconds: Duration::from_nanos(s.busy_nanos.load(Ordering::Relaxed))
                    .as_secs_f64(),
                peak_queue: s.input.peak(),
            })
            .collect()
    }
}

impl Drop for Core {
    fn drop(&mut self) {
        if self.stages.iter().any(|s| !s.handles.is_empty()) {
            let queues = self
                .shared
                .queues
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .clone();
            for queue in queues {
                queue.abort();
            }
            self.join();
        }
    }
}

/// A pipeline being assembled: items of type `In` go in, items of type `Out` come out
/// of the stages added so far. See [`Pipeline`].
pub struct PipelineBuilder<In, Out> {
    core: Core,
    capacity: usize,
    input: Arc<ClosableQueue<(usize, In)>>,
    tail: Arc<ClosableQueue<(usize, Out)>>,
    /// The first stage that could not start, reported by `build`; later stages are
    /// then only typed, not started.
    error: Option<io::Error>,
}

impl<In, Out> fmt::Debug for PipelineBuilder<In, Out> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PipelineBuilder")
            .field(
                "stages",
                &self.core.stages.iter().map(|s| &s.name).collect::<Vec<_>>(),
            )
            .field("capacity", &self.capacity)
            .finish()
    }
}

/// Decrements a stage's live-worker count when a worker exits (even by panic); the last
/// one out closes the stage's output, which is how closing the input cascades through
/// every stage in order.
struct LastOut<T> {
    live: Arc<AtomicUsize>,
    output: Arc<ClosableQueue<T>>,
}

impl<T> Drop for LastOut<T> {
    fn drop(&mut self) {
        if self.live.fetch_sub(1, Ordering::SeqCst) == 1 {
            self.output.close();
        }
    }
}

impl<In, Out> PipelineBuilder<In, Out>
where
    In: Send + 'static,
    Out: Send + 'static,
{
    /// Adds a stage of `workers` threads running `f` on every item. An `Err` (or a
    /// panic) from `f` stops the whole pipeline, and [`Pipeline::finish`] returns it with
    /// this stage's name and the item's index.
    ///
    /// A stage that cannot start (0 workers, or threads the OS refuses) is reported by
    /// [`build`](Self::build), so that stages chain without a `?` each.
    pub fn stage<Next, E, F>(
        mut self,
        name: &str,
        workers: usize,
        f: F,
    ) -> PipelineBuilder<In, Next>
    where
        Next: Send + 'static,
        E: Into<BoxError>,
        F: Fn(Out) -> Result<Next, E> + Send + Sync + 'static,
    {
        let output = Arc::new(ClosableQueue::bounded(self.capacity).without_join());
        self.core
            .shared
            .register(Arc::clone(&output) as Arc<dyn Abort>);
        if self.error.is_none() {
            self.error = self
                .start_stage(name, workers, f, &output)
                .err()
                .map(|err| io::Error::new(err.kind(), format!("stage \"{name}\": {err}")));
        }
        PipelineBuilder {
            core: self.core,
            capacity: self.capacity,
            input: self.input,
            tail: output,
            error: self.error,
        }
    }

    /// Starts `workers` threads of stage `name`, reading the current tail and writing
    /// `output`.
    fn start_stage<Next, E, F>(
        &mut self,
        name: &str,
        workers: usize,
        f: F,
        output: &Arc<ClosableQueue<(usize, Next)>>,
    ) -> io::Result<()>
    where
        Next: Send + 'static,
        E: Into<BoxError>,
        F: Fn(Out) -> Result<Next, E> + Send + Sync + 'static,
    {
        let workers = NonZeroUsize::new(workers).ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                "a stage needs at least one worker",
            )
        })?;
        crate::limits::ensure_threads(workers.get(), crate::limits::DEFAULT_STACK)?;
        let f = Arc::new(f);
        let live = Arc::new(AtomicUsize::new(workers.get()));
        let items = Arc::new(AtomicUsize::new(0));
        let busy_nanos = Arc::new(AtomicU64::new(0));
        let mut handles = Vec::with_capacity(workers.get());
        let mut spawn_error = None;
        for i in 0..workers.get() {
            let input = Arc::clone(&self.tail);
            let last_out = LastOut {
                live: Arc::clone(&live),
                output: Arc::clone(output),
            };
            let (f, shared, stage) = (
                Arc::clone(&f),
                Arc::clone(&self.core.shared),
                name.to_owned(),
            );
            let (stage_items, stage_busy) = (Arc::clone(&items), Arc::clone(&busy_nanos));
            let spawned = thread::Builder::new()
                .name(format!("{name}-{i}"))
                .spawn(move || {
                    let _last_out = last_out;
                    // Counted locally and added once at the end: no shared cache line
                    // is touched per item. Busy time is sampled: one item in
                    // BUSY_SAMPLE is timed (two clock reads cost as much as a queue
                    // hand-off) and counts for BUSY_SAMPLE.
                    let (mut done, mut timed) = (0usize, Duration::ZERO);
                    let (mut seen, mut timed_items) = (0u32, 0u32);
                    // Plain `get`, not `iter`: nothing joins the pipeline's internal
                    // queues, so the task_done bookkeeping (a second lock per item) is
                    // skipped; shutdown is by closing.
                    while let Some((index, item)) = input.get() {
                        let start = seen.is_multiple_of(BUSY_SAMPLE).then(Instant::now);
                        seen = seen.wrapping_add(1);
                        let result = catch_unwind(AssertUnwindSafe(|| f(item)));
                        if let Some(start) = start {
                            timed += start.elapsed();
                            timed_items += 1;
                        }
                        let failure: BoxError = match result {
                            Ok(Ok(next)) => {
                                done += 1;
                                if _last_out.output.put((index, next)).is_err() {
                                    break; // stopped by an error elsewhere
                                }
                                continue;
                            }
                            Ok(Err(err)) => err.into(),
                            Err(payload) => {
                                format!("panicked: {}", panic_message(payload.as_ref())).into()
                            }
                        };
                        shared.fail(PipelineError {
                            stage,
                            index,
                            cause: failure,
                        });
                        break;
                    }
                    stage_items.fetch_add(done, Ordering::Relaxed);
                    // The timed items' mean, times every item this worker ran: close to
                    // its real busy time however few items it saw (counting each timed
                    // item for BUSY_SAMPLE items overshot, up to 103% of its time).
                    let busy = if timed_items == 0 {
                        Duration::ZERO
                    } else {
                        timed.mul_f64(f64::from(seen) / f64::from(timed_items))
                    };
                    stage_busy.fetch_add(
                        busy.as_nanos().try_into().unwrap_or(u64::MAX),
                        Ordering::Relaxed,
                    );
                });
            match spawned {
                Ok(handle) => handles.push(handle),
                Err(err) => {
                    spawn_error = Some(err);
                    break;
                }
            }
        }
        // Recorded even when a spawn failed: the workers already started exit once the
        // queues are aborted, and Core's drop joins them.
        self.core.stages.push(Stage {
            name: name.to_owned(),
            workers: workers.get(),
            handles,
            items,
            busy_nanos,
            input: Arc::clone(&self.tail) as Arc<dyn Abort>,
        });
        spawn_error.map_or(Ok(()), Err)
    }

    /// Finishes assembly; items can now be put. Fails with the first stage that could
    /// not start, naming it (the stages already started are stopped and joined).
    pub fn build(self) -> io::Result<Pipeline<In, Out>> {
        if let Some(err) = self.error {
            // Dropping `core` aborts the queues and joins the workers that did start.
            return Err(err);
        }
        Ok(Pipeline {
            core: self.core,
            input: self.input,
            output: self.tail,
            next_index: AtomicUsize::new(0),
            _types: PhantomData,
        })
    }
}

/// Stages of worker threads connected by bounded [`ClosableQueue`]s: the book's
/// download → resize → upload pipeline as a library type (item 55).
///
/// * Each stage has its own worker count, and every queue between stages holds at most
///   `capacity` items, so a fast stage waits for a slow one instead of exhausting memory.
/// * Idle workers block in `get`; nothing ever spins.
/// * Shutdown is clean and ordered: [`finish`](Self::finish) closes the input; each
///   stage drains it, and its last worker to exit closes the next queue, and so on down
///   the line (the book's `stop_threads` per stage, done by the stages themselves).
/// * The first error anywhere stops every queue at once and is returned with the stage
///   name and the item's index.
///
/// ```
/// use concur::queue::Pipeline;
///
/// let pipeline = Pipeline::builder(10)
///     .stage("download", 3, |url: u32| Ok::<_, std::io::Error>(url * 10))
///     .stage("resize", 4, |bytes: u32| Ok::<_, std::io::Error>(bytes + 1))
///     .stage("upload", 5, |thumb: u32| Ok::<_, std::io::Error>(format!("#{thumb}")))
///     .build()
///     .unwrap(); // fails only if a stage's threads cannot start
/// // A stage with no workers is refused, by name.
/// let none = Pipeline::builder(10).stage("idle", 0, |x: u32| Ok::<_, std::io::Error>(x)).build();
/// assert_eq!(none.unwrap_err().to_string(), "stage \"idle\": a stage needs at least one worker");
/// let report = pipeline.run(0..1000).unwrap();
/// assert_eq!(report.outputs.len(), 1000);
/// assert_eq!(report.outputs[7], "#71"); // outputs come back in input order
/// ```
pub struct Pipeline<In, Out> {
    core: Core,
    input: Arc<ClosableQueue<(usize, In)>>,
    output: Arc<ClosableQueue<(usize, Out)>>,
    next_index: AtomicUsize,
    _types: PhantomData<fn(In) -> Out>,
}

impl<In, Out> fmt::Debug for Pipeline<In, Out> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pipeline")
            .field(
                "stages",
                &self.core.stages.iter().map(|s| &s.name).collect::<Vec<_>>(),
            )
            .finish()
    }
}

impl<In: Send + 'static> Pipeline<In, In> {
    /// Starts assembling a pipeline whose queues each hold at most `capacity` items.
    pub fn builder(capacity: usize) -> PipelineBuilder<In, In> {
        let input = Arc::new(ClosableQueue::bounded(capacity).without_join());
        let shared = Arc::new(Shared::default());
        shared.register(Arc::clone(&input) as Arc<dyn Abort>);
        PipelineBuilder {
            core: Core {
                shared,
                stages: Vec::new(),
                started: Instant::now(),
            },
            capacity,
            tail: Arc::clone(&input),
            input,
            error: None,
        }
    }
}

impl<In: Send + 'static, Out: Send + 'static> Pipeline<In, Out> {
    /// Puts an item in, blocking while the first queue is full. Fails, handing the
    /// item back, once the input is closed or the pipeline stopped on an error.
    pub fn put(&self, item: In) -> Result<(), Closed<In>> {
        let index = self.next_index.fetch_add(1, Ordering::Relaxed);
        self.input
            .put((index, item))
            .map_err(|Closed((_, item))| Closed(item))
    }

    /// Closes the input: the stages finish what is queued, then stop in order.
    pub fn close_input(&self) {
        self.input.close();
    }

    /// The next output as soon as the last stage has made it, with its item's 0-based
    /// position in the input (outputs come in the order they finish, not the input's);
    /// blocks until one comes. `None` once the input is closed and every output has
    /// been taken. An output taken here is not in [`finish`](Self::finish)'s report,
    /// which still gives the stages' numbers and the first error.
    ///
    /// ```
    /// use concur::queue::{BoxError, Pipeline};
    ///
    /// let pipeline = Pipeline::builder(4)
    ///     .stage("double", 2, |x: u32| Ok::<_, BoxError>(x * 2))
    ///     .build()
    ///     .unwrap();
    /// std::thread::scope(|s| {
    ///     s.spawn(|| {
    ///         for x in 0..10 {
    ///             pipeline.put(x).unwrap();
    ///         }
    ///         pipeline.close_input();
    ///     });
    ///     let mut streamed: Vec<(usize, u32)> = pipeline.outputs().collect();
    ///     streamed.sort();
    ///     assert_eq!(streamed[3], (3, 6));
    ///     assert_eq!(streamed.len(), 10);
    /// });
    /// assert!(pipeline.finish().unwrap().outputs.is_empty()); // all were streamed
    /// ```
    pub fn next_output(&self) -> Option<(usize, Out)> {
        self.output.get()
    }

    /// [`next_output`](Self::next_output) as an iterator, until the last output.
    pub fn outputs(&self) -> impl Iterator<Item = (usize, Out)> + '_ {
        std::iter::from_fn(|| self.next_output())
    }

    /// Closes the input (if not yet closed), collects every output, joins every worker,
    /// and returns the outputs in input order with per-stage numbers, or the first error.
    ///
    /// Outputs are drained while the stages finish, so a full output queue can never
    /// block the shutdown.
    pub fn finish(self) -> Result<Report<Out>, PipelineError> {
        self.input.close();
        let outputs = self.drain_outputs();
        self.complete(outputs)
    }

    /// Feeds `items` from a helper thread while this thread collects the outputs, then
    /// finishes: the whole run in one call.
    pub fn run<I>(self, items: I) -> Result<Report<Out>, PipelineError>
    where
        I: IntoIterator<Item = In>,
        I::IntoIter: Send,
    {
        let items = items.into_iter();
        let outputs = thread::scope(|s| {
            s.spawn(|| {
                for item in items {
                    if self.put(item).is_err() {
                        break; // stopped by an error, which complete() reports
                    }
                }
                self.close_input();
            });
            self.drain_outputs()
        });
        self.complete(outputs)
    }

    /// Takes every output until the last stage closes its queue. Plain `get`: nothing
    /// joins the output queue, so no task_done bookkeeping.
    fn drain_outputs(&self) -> Vec<(usize, Out)> {
        let mut outputs = Vec::new();
        while let Some(output) = self.output.get() {
            outputs.push(output);
        }
        outputs
    }

    /// Joins every worker (the last queue has ended, so they are exiting) and reports.
    fn complete(mut self, mut outputs: Vec<(usize, Out)>) -> Result<Report<Out>, PipelineError> {
        self.core.join();
        let elapsed = self.core.started.elapsed();
        let failure = self
            .core
            .shared
            .first_error
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(err) = failure {
            return Err(err);
        }
        outputs.sort_unstable_by_key(|(index, _)| *index);
        Ok(Report {
            outputs: outputs.into_iter().map(|(_, out)| out).collect(),
            stages: self.core.reports(),
            elapsed,
        })
    }
}

#[cfg(all(test, not(concur_loom)))]
mod tests {
    use super::*;

    #[test]
    fn items_flow_through_every_stage_in_input_order() {
        let pipeline = Pipeline::builder(4)
            .stage("double", 3, |x: u64| Ok::<_, BoxError>(x * 2))
            .stage("square", 2, |x: u64| Ok::<_, BoxError>(x * x))
            .build()
            .unwrap();
        let report = pipeline.run(0..500).unwrap();
        let expected: Vec<u64> = (0..500).map(|x| (x * 2) * (x * 2)).collect();
        assert_eq!(report.outputs, expected);
        assert_eq!(report.stages.len(), 2);
        assert!(report.stages.iter().all(|s| s.items == 500));
        assert_eq!(
            report.stages.iter().map(|s| s.workers).collect::<Vec<_>>(),
            [3, 2]
        );
        assert!(
            report.stages.iter().all(|s| s.peak_queue <= 4),
            "{:?}",
            report.stages
        );
    }

    #[test]
    fn the_first_error_stops_the_pipeline_with_stage_and_index() {
        let pipeline = Pipeline::builder(2)
            .stage("parse", 2, |s: String| s.parse::<u32>())
            .stage("invert", 2, |x: u32| {
                100u32
                    .checked_div(x)
                    .ok_or_else(|| BoxError::from("division by zero"))
            })
            .build()
            .unwrap();
        let input = ["5", "4", "0", "2", "1"].map(String::from);
        let err = pipeline.run(input).unwrap_err();
        assert_eq!((err.stage.as_str(), err.index), ("invert", 2));
        assert_eq!(
            err.to_string(),
            "stage \"invert\" failed on item 2: division by zero"
        );
        assert_eq!(err.cause.to_string(), "division by zero");
        assert!(std::error::Error::source(&err).is_none(), "said once");
    }

    #[test]
    fn an_error_while_the_feeder_is_blocked_still_ends_the_run() {
        // Capacity 1 and a long input: the feeder is blocked in put when the error hits.
        let pipeline = Pipeline::builder(1)
            .stage("fail-early", 1, |x: u32| {
                if x == 3 {
                    Err::<u32, BoxError>("boom".into())
                } else {
                    Ok(x)
                }
            })
            .build()
            .unwrap();
        let err = pipeline.run(0..1_000_000).unwrap_err();
        assert_eq!(err.index, 3);
    }

    #[test]
    fn a_panicking_stage_is_reported_not_hung() {
        let pipeline = Pipeline::builder(2)
            .stage("explode", 3, |x: u32| -> Result<u32, BoxError> {
                assert!(x != 7, "item seven");
                Ok(x)
            })
            .build()
            .unwrap();
        let err = pipeline.run(0..20).unwrap_err();
        assert_eq!((err.stage.as_str(), err.index), ("explode", 7));
        assert!(err.cause.to_string().contains("panicked: item seven"));
    }

    /// CPU time (user + system, in clock ticks) of this process's threads named `name*`.
    #[cfg(target_os = "linux")]
    fn cpu_ticks_of_threads(name: &str) -> u64 {
        let mut ticks = 0;
        let tasks = std::fs::read_dir("/proc/self/task").expect("Linux lists threads in /proc");
        for task in tasks.flatten() {
            let comm = std::fs::read_to_string(task.path().join("comm")).unwrap_or_default();
            if !comm.starts_with(name) {
                continue;
            }
            let stat = std::fs::read_to_string(task.path().join("stat")).unwrap_or_default();
            // Fields after the ")" that closes the command name: utime is 12th, stime 13th.
            let fields: Vec<&str> = stat
                .rsplit(')')
                .next()
                .unwrap_or("")
                .split_whitespace()
                .collect();
            let field = |i: usize| fields[i].parse::<u64>().expect("a number of ticks");
            ticks += field(11) + field(12);
        }
        ticks
    }

    #[test]
    #[cfg(target_os = "linux")]
    fn idle_workers_sleep_instead_of_spinning() {
        let pipeline = Pipeline::builder(4)
            .stage("idlecheck", 6, Ok::<u8, BoxError>)
            .build()
            .unwrap();
        std::thread::sleep(Duration::from_millis(50)); // let them reach their wait
        let before = cpu_ticks_of_threads("idlecheck");
        std::thread::sleep(Duration::from_millis(500));
        let used = cpu_ticks_of_threads("idlecheck") - before;
        // Six spinning threads would burn about 100 ticks (1 s of CPU) in 500 ms.
        assert!(used <= 2, "idle workers used {used} ticks of CPU");
        pipeline.put(1).unwrap();
        assert_eq!(pipeline.finish().unwrap().outputs, [1]);
    }

    #[test]
    fn finish_without_run_drains_outputs_and_dropping_a_pipeline_joins_it() {
        let pipeline = Pipeline::builder(1)
            .stage("id", 1, Ok::<u8, BoxError>)
            .build()
            .unwrap();
        for i in 0..1 {
            pipeline.put(i).unwrap();
        }
        let report = pipeline.finish().unwrap();
        assert_eq!(report.outputs, [0]);

        let dropped = Pipeline::builder(1)
            .stage("id", 4, Ok::<u8, BoxError>)
            .build()
            .unwrap();
        dropped.put(1).unwrap();
        drop(dropped); // aborts the queues and joins the four workers
    }
}
