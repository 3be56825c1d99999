//! Item 52 in the tour: the book's child-process demonstrations, measured.

use std::io::Write;
use std::thread;
use std::time::{Duration, Instant};

use rand::RngExt;

use super::{TourCharts, TourError, TourOptions, chain, heading};
use crate::process::{Cmd, Pipeline, ProcessError, ProcessManager, ProcessResult, returncode};
use crate::report::{Bar, BarChart, BarGroup, Provenance};

/// The book's password for `openssl enc`, passed through the environment.
const PASSWORD: &str = "zf7ShyBhZOraQDdE/FiZpm/m/8f9X+M1";

/// The section's heading.
const TITLE: &str = "Item 52: use child processes to glue tools together and use every core";

/// The book's time for 10 `sleep 1` children run in parallel, in seconds.
const BOOK_TEN_SLEEPS: f64 = 1.05;

/// Runs the item 52 part of the tour, with its chart.
pub(super) fn run(
    out: &mut dyn Write,
    options: TourOptions,
    charts: &mut TourCharts,
) -> Result<(), TourError> {
    heading(out, TITLE)?;

    // subprocess.run + check_returncode.
    let hello = Cmd::new("echo").arg("Hello from the child!").run()?;
    write!(
        out,
        "run, checked:        {}",
        String::from_utf8_lossy(&hello.stdout)
    )?;

    // Popen + poll while the parent works.
    let start = Instant::now();
    let mut child = Cmd::new("sleep").arg("1").spawn()?;
    let mut polls = 0;
    let status = loop {
        if let Some(status) = child.poll().map_err(|source| ProcessError::Io {
            command: "sleep 1".into(),
            source,
        })? {
            break status;
        }
        polls += 1;
        thread::sleep(Duration::from_millis(100)); // "some time-consuming work here"
    };
    writeln!(
        out,
        "poll a `sleep 1`:    Working... x{polls}, then exit status {} after {:.2} s",
        returncode(status),
        start.elapsed().as_secs_f64()
    )?;

    // Ten children in parallel.
    let start = Instant::now();
    let mut manager = ProcessManager::new();
    for _ in 0..10 {
        manager.start(&Cmd::new("sleep").arg("1"))?;
    }
    let results = manager.wait_all(None);
    let ok = results
        .iter()
        .filter(|r| matches!(r, ProcessResult::Finished(o) if o.status.success()))
        .count();
    let ten = start.elapsed().as_secs_f64();
    writeln!(
        out,
        "10 x `sleep 1`:      finished in {ten:.2} s ({ok} of 10 ok); the book: {BOOK_TEN_SLEEPS} s, not 10 s"
    )?;
    let bar = |series: &str, seconds: f64| Bar {
        series: series.into(),
        median: seconds,
        min: seconds,
        max: seconds,
        note: format!("{seconds:.2} s"),
    };
    charts.add(
        TITLE,
        BarChart {
            title: "Item 52: 10 children sleeping 1 s each, started at once".into(),
            y_label: "seconds until all 10 finished".into(),
            groups: vec![BarGroup {
                label: "10 x sleep 1".into(),
                bars: vec![
                    bar("concur (measured)", ten),
                    bar("the book (Python)", BOOK_TEN_SLEEPS),
                    bar("one after another (10 x 1 s, not run)", 10.0),
                ],
            }],
            provenance: Provenance::here(
                "one run; the book's figure from its text; one after another is arithmetic",
                options.command(),
            ),
        },
    );

    openssl(out)?;

    // A hanging child stopped by a timeout.
    let start = Instant::now();
    let child = Cmd::new("sleep").arg("10").spawn()?;
    match child.communicate(b"", Some(Duration::from_millis(100))) {
        Err(ProcessError::TimedOut { output, .. }) => writeln!(
            out,
            "`sleep 10`, 0.1 s timeout: stopped after {:.2} s, exit status {} (the book: -15)",
            start.elapsed().as_secs_f64(),
            returncode(output.status)
        )?,
        Ok(output) => writeln!(out, "`sleep 10` was not stopped: {:?}", output.status)?,
        Err(err) => return Err(err.into()),
    }
    gnu_parallel(out)?;
    writeln!(
        out,
        "\nRust: a pipe end that moves into the next stage is gone from the parent (the book\n\
         must close encrypt_proc.stdout by hand for SIGPIPE to work), and Drop kills and reaps\n\
         a child's whole process group. `concur run` builds a job runner on this: see\n\
         benches/run_vs_xargs.sh for its speed against xargs and GNU parallel."
    )?;
    Ok(())
}

/// `concur run`'s GNU parallel interface, in-process: a `:::` product, replacement
/// strings, and an input that would run code in `"{}"` under GNU parallel 20221122's
/// quoting, kept as data.
fn gnu_parallel(out: &mut dyn Write) -> Result<(), TourError> {
    use crate::runner::{
        self, Input, JobSource, Jobs, RunOptions, Source, Streams, Template, TemplateOptions,
    };
    let dir = tempfile::tempdir()?;
    let marker = dir.path().join("ran-as-code");
    let hostile = format!("$(touch {})", marker.display());
    let words: Vec<String> = ["echo", "{#}", "{1/.}", "\"{2}\""]
        .map(String::from)
        .to_vec();
    let template = Template::parse(&words, &TemplateOptions::default())
        .map_err(|e| TourError::Demo(std::io::Error::other(e)))?;
    let mut options = RunOptions::new(template);
    options.keep_order = true;
    options.input.inputs = vec![
        Input {
            source: Source::List(vec![b"/data/a.tar.gz".to_vec(), b"/data/b.txt".to_vec()]),
            linked: false,
        },
        Input {
            source: Source::List(vec![b"x".to_vec(), hostile.into_bytes()]),
            linked: false,
        },
    ];
    let jobs =
        Jobs::open(&options.input, None).map_err(|e| TourError::Demo(std::io::Error::other(e)))?;
    let mut streams = Streams {
        out: Vec::new(),
        err: Vec::new(),
    };
    let cancel = crate::process::CancelToken::new()?;
    let summary = runner::run_jobs(&options, JobSource::Args(jobs), &mut streams, &cancel)?;
    writeln!(
        out,
        "\n`concur run echo {{#}} {{1/.}} '\"{{2}}\"' ::: /data/a.tar.gz /data/b.txt ::: x '$(touch …)'`\n\
         (GNU parallel's interface; {} jobs, the product in GNU parallel's order):",
        summary.jobs
    )?;
    for line in String::from_utf8_lossy(&streams.out).lines() {
        writeln!(out, "  {line}")?;
    }
    writeln!(
        out,
        "input `$(touch …)` inside \"{{}}\": {} (GNU parallel 20221122 quotes with single\n\
         quotes, which the command's own double quotes undo: it runs it; concur quotes for the\n\
         context, so inside \"…\" the value arrives byte for byte)",
        if marker.exists() {
            "RAN AS CODE"
        } else {
            "stayed data, nothing ran"
        }
    )?;
    Ok(())
}

fn encrypt() -> Cmd {
    Cmd::new("openssl")
        .args(["enc", "-des3", "-pbkdf2", "-pass", "env:password"])
        .env("password", PASSWORD)
}

fn last_ten_hex(bytes: &[u8]) -> String {
    bytes[bytes.len().saturating_sub(10)..]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The book's openssl demonstrations: three encryptions fed from the parent, then three
/// encrypt → hash pipelines. Skipped, with a note, when openssl is not installed.
fn openssl(out: &mut dyn Write) -> Result<(), TourError> {
    match Cmd::new("openssl").arg("version").run() {
        Ok(_) => {}
        Err(err) if err.is_not_found() => {
            writeln!(
                out,
                "openssl:             not installed here; its two demonstrations are skipped"
            )?;
            return Ok(());
        }
        Err(err) => {
            writeln!(
                out,
                "openssl:             unusable ({}); skipped",
                chain(&err)
            )?;
            return Ok(());
        }
    }
    let mut rng = rand::rng();

    let mut manager = ProcessManager::new();
    for _ in 0..3 {
        let data: [u8; 10] = rng.random();
        manager.start(&encrypt().stdin_bytes(data))?;
    }
    let tails: Vec<String> = manager
        .wait_all(Some(Duration::from_secs(30)))
        .iter()
        .map(|r| match r {
            ProcessResult::Finished(o) if o.status.success() => last_ten_hex(&o.stdout),
            other => format!("failed: {other:?}"),
        })
        .collect();
    writeln!(out, "3 encryptions:       ...{}", tails.join(" ..."))?;

    // openssl 3's default provider has no whirlpool: fall back to SHA-256 and say so.
    let whirlpool = Cmd::new("openssl")
        .args(["dgst", "-whirlpool", "-binary"])
        .run()
        .is_ok();
    let digest = if whirlpool { "-whirlpool" } else { "-sha256" };
    let hash = Cmd::new("openssl").args(["dgst", digest, "-binary"]);
    let pipelines: Vec<Pipeline> = (0..3)
        .map(|_| {
            let data: [u8; 100] = rng.random();
            Pipeline::new([encrypt(), hash.clone()])
                .input(data)
                .timeout(Duration::from_secs(30))
        })
        .collect();
    let hashes = thread::scope(|scope| {
        let running: Vec<_> = pipelines.iter().map(|p| scope.spawn(|| p.run())).collect();
        running
            .into_iter()
            .map(|h| match h.join() {
                Ok(Ok(o)) => last_ten_hex(&o.stdout),
                Ok(Err(err)) => format!("failed: {}", chain(&err)),
                Err(_) => "failed: panicked".to_owned(),
            })
            .collect::<Vec<_>>()
    });
    writeln!(out, "3 encrypt | hash:    ...{}", hashes.join(" ..."))?;
    if !whirlpool {
        writeln!(
            out,
            "                     (hashed with SHA-256: this openssl has no whirlpool in its default provider)"
        )?;
    }
    Ok(())
}
