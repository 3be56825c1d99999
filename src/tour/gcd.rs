//! Item 64 in the tour: CPU-bound work serially, on threads, and on a process pool.

use std::io::Write;
use std::num::NonZeroUsize;

use super::{TourError, TourOptions, heading};
use crate::parallel::bench::{
    book_workload, modes_chart, modes_group, pool_overhead, time_repeats,
};
use crate::parallel::pool::PoolOptions;
use crate::parallel::{Mode, default_workers};
use crate::process::CancelToken;
use crate::report::BarChart;

/// The section's heading.
pub(super) const TITLE: &str = "Item 64: consider concurrent.futures for true parallelism";

/// Runs the item 64 part of the tour, and returns its chart.
pub(super) fn run(out: &mut dyn Write, options: TourOptions) -> Result<BarChart, TourError> {
    heading(out, TITLE)?;
    let (scale, repeats, trivial) = if options.quick {
        (3, 1, 2_000)
    } else {
        (32, 3, 20_000)
    };
    // The workers are this program, re-run as `concur worker`.
    let pool = PoolOptions::new(
        default_workers(),
        std::env::current_exe().map_err(TourError::Demo)?,
    );
    let workers = pool.workers.get();
    let cancel = CancelToken::new().map_err(TourError::Demo)?;
    let pairs = book_workload(scale);
    writeln!(
        out,
        "The book's deliberately slow gcd (count down from min(a, b)) on its 10 pairs x {scale}\n\
         = {} tasks, {workers} workers, median of {repeats}. Each mode's gcds are checked\n\
         against the serial run's.\n",
        pairs.len()
    )?;
    let (serial_t, expected) = time_repeats(Mode::Serial, &pairs, &pool, repeats, None, &cancel)?;
    let (threads_t, _) = time_repeats(
        Mode::Threads,
        &pairs,
        &pool,
        repeats,
        Some(&expected),
        &cancel,
    )?;
    let (processes_t, _) = time_repeats(
        Mode::Processes,
        &pairs,
        &pool,
        repeats,
        Some(&expected),
        &cancel,
    )?;
    let (serial, threads, processes) = (serial_t.median, threads_t.median, processes_t.median);
    let chart = modes_chart(
        vec![modes_group(
            format!("concur (Rust), {workers} workers"),
            [serial_t, threads_t, processes_t],
            10.0 / pairs.len() as f64 * 1e3,
        )],
        format!(
            "{} tasks x {repeats} repeats; each bar's label is its speed-up over serial",
            pairs.len()
        ),
        options.command(),
    );
    writeln!(
        out,
        "  {:<10} {:>9} {:>9}   book (CPython, 2 cores)",
        "", "time", "speed-up"
    )?;
    for (name, seconds, book) in [
        ("serial", serial, "1x"),
        (
            "threads",
            threads,
            "none: the GIL runs one thread at a time",
        ),
        ("processes", processes, "about 2x"),
    ] {
        writeln!(
            out,
            "  {name:<10} {:>7.3} s {:>8.2}x   {book}",
            seconds,
            serial / seconds
        )?;
    }
    let gcds: Vec<u64> = expected.iter().take(10).flatten().copied().collect();
    writeln!(out, "\n  All three agree; the ten gcds: {gcds:?}")?;
    let auto = pool_overhead(&pool, None, trivial, repeats, &cancel)?;
    let one = pool_overhead(&pool, NonZeroUsize::new(1), trivial, repeats, &cancel)?;
    writeln!(
        out,
        "  The pool's own cost per task ({trivial} trivial tasks): {auto:.1} us in automatic chunks,\n  \
         {one:.1} us with one task per request (Python's map default, chunksize=1).\n"
    )?;
    writeln!(
        out,
        "{}",
        super::wrap(&gcd_conclusion(serial, threads, processes, workers), 88)
    )?;
    Ok(chart)
}

/// What item 64's figures say, in words computed from them: every comparison follows
/// the medians it sits beside.
fn gcd_conclusion(serial: f64, threads: f64, processes: f64, workers: usize) -> String {
    let threads_x = serial / threads;
    let on_threads = if threads_x >= 1.2 {
        format!(
            "Rust has no GIL: threads ran the CPU work {threads_x:.2}x as fast as serial on \
             {workers} workers, where the book's threads gained nothing."
        )
    } else {
        format!(
            "Threads ran the CPU work {threads_x:.2}x as fast as serial this time, so this run \
             does not show them scaling (Rust has no GIL; nothing but free cores limits them: \
             `concur gcd bench` measures it with repeats)."
        )
    };
    let vs = processes / threads;
    let on_processes = if (0.9..=1.1).contains(&vs) {
        "The process pool matched the threads (within 10%)".to_owned()
    } else if vs > 1.0 {
        format!("The process pool took {vs:.2}x the threads' time")
    } else {
        format!("The process pool took {vs:.2}x the threads' time (less)")
    };
    format!(
        "{on_threads}\n{on_processes}; what it buys is isolation: a task that crashes its \
         worker fails alone, the worker is replaced, and the rest complete. The book's \
         pickle-over-a-pipe is explicit here: length-prefixed postcard frames over each \
         worker's stdin and stdout."
    )
}

#[cfg(test)]
mod conclusion_tests {
    use super::gcd_conclusion;

    #[test]
    fn the_words_follow_the_figures() {
        let scaled = gcd_conclusion(2.0, 1.0, 1.02, 2);
        assert!(
            scaled.contains("2.00x as fast as serial on 2 workers"),
            "{scaled}"
        );
        assert!(scaled.contains("matched the threads"), "{scaled}");
        let flat = gcd_conclusion(1.0, 1.03, 1.5, 2);
        assert!(flat.contains("does not show them scaling"), "{flat}");
        assert!(
            !flat.contains("where the book's threads gained nothing"),
            "{flat}"
        );
        assert!(flat.contains("took 1.46x the threads' time"), "{flat}");
    }
}
