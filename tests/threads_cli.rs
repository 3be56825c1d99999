//! `concur factorize`, `slow-io`, `race` and `pipeline` through the real binary.

use serde_json::Value;

use crate::util::Dir;

fn json_lines(text: &str) -> Vec<Value> {
    text.lines()
        .map(|l| serde_json::from_str(l).expect("JSON line"))
        .collect()
}

#[test]
fn factorize_prints_both_times_and_the_books_python_figures() {
    let dir = Dir::new();
    let run = dir
        .concur(["factorize", "--repeat", "1"])
        .run()
        .expect_success();
    let out = run.stdout();
    assert!(
        out.contains("Factorizing 2139079 1214759 1516637 1852285"),
        "{out}"
    );
    assert!(
        out.contains("serial:  took") && out.contains("threads: took"),
        "{out}"
    );
    assert!(out.contains("0.756 s vs 1.16 s"), "{out}");
}

#[test]
fn factorize_json_has_correct_factors_for_both_modes() {
    let dir = Dir::new();
    let run = dir
        .concur([
            "factorize",
            "--json",
            "--repeat",
            "1",
            "12",
            "97",
            "1852285",
        ])
        .run()
        .expect_success();
    let report: Value = serde_json::from_str(run.stdout().trim()).unwrap();
    let expected = serde_json::json!([
        [1, 2, 3, 4, 6, 12],
        [1, 97],
        [1, 5, 271, 1355, 1367, 6835, 370457, 1852285]
    ]);
    for run in report["runs"].as_array().unwrap() {
        assert_eq!(run["factors"], expected, "{}", run["mode"]);
    }
    assert!(report["speedup"].as_f64().unwrap() > 0.0);
    dir.concur(["factorize", "0"])
        .run()
        .expect_code(2)
        .expect_stderr("0 has no factors");
}

#[test]
fn slow_io_reports_each_mode_and_the_helicopter() {
    let dir = Dir::new();
    let run = dir
        .concur(["slow-io", "--count", "3", "--timeout", "20ms", "--json"])
        .run()
        .expect_success();
    let reports = json_lines(&run.stdout());
    assert_eq!(reports.len(), 2);
    assert_eq!(reports[0]["mode"], "serial");
    assert_eq!(reports[0]["helicopter_moves"], 0);
    assert!(
        reports[0]["seconds"].as_f64().unwrap() >= 0.06,
        "3 calls of 20 ms in turn"
    );
    assert_eq!(reports[1]["mode"], "threads");
    assert!(reports[1]["helicopter_moves"].as_u64().unwrap() > 0);
}

#[test]
fn race_prints_the_books_line() {
    let dir = Dir::new();
    for mode in ["mutex", "atomic"] {
        let run = dir.concur(["race", "--mode", mode]).run().expect_success();
        assert_eq!(run.stdout(), "Counter should be 500000, got 500000\n");
    }
    let run = dir
        .concur([
            "race",
            "--mode",
            "unsynchronized",
            "--threads", // the old spelling, kept as an alias
            "3",
            "--increments",
            "1000",
            "--json",
        ])
        .run()
        .expect_success();
    let result = &json_lines(&run.stdout())[0];
    assert_eq!(result["expected"], 3000);
    assert!(result["got"].as_u64().unwrap() <= 3000);
    let all = dir
        .concur(["race", "--increments", "10"])
        .run()
        .expect_success()
        .stdout();
    assert_eq!(all.lines().count(), 3, "{all}");
}

#[test]
fn pipeline_finishes_every_item_with_stage_figures() {
    let dir = Dir::new();
    let run = dir
        .concur([
            "pipeline",
            "--items",
            "60",
            "--latency",
            "1ms",
            "--capacity",
            "4",
        ])
        .run()
        .expect_success();
    let out = run.stdout();
    assert!(out.starts_with("60 items finished\n"), "{out}");
    for stage in ["download", "resize", "upload"] {
        assert!(out.contains(stage), "{out}");
    }
    let run = dir
        .concur([
            "pipeline",
            "--items",
            "40",
            "--jobs",
            "1,2,3",
            "--latency",
            "0,1ms,0",
            "--capacity",
            "3",
            "--json",
        ])
        .run()
        .expect_success();
    let report: Value = serde_json::from_str(run.stdout().trim()).unwrap();
    assert_eq!(report["finished"], 40);
    let stages = report["stages"].as_array().unwrap();
    let workers: Vec<u64> = stages
        .iter()
        .map(|s| s["workers"].as_u64().unwrap())
        .collect();
    assert_eq!(workers, [1, 2, 3]);
    for stage in stages {
        assert_eq!(stage["items"], 40);
        assert!(
            stage["peak_queue"].as_u64().unwrap() <= 3,
            "bounded: {stage}"
        );
    }
    // 40 items over the 2 resize workers at 1 ms: at least 20 ms.
    assert_eq!(report["bound_seconds"], 0.02);
}

#[test]
fn pipeline_naive_counts_polls() {
    let dir = Dir::new();
    let run = dir
        .concur([
            "pipeline",
            "--naive",
            "--items",
            "100",
            "--latency",
            "0",
            "--json",
        ])
        .run()
        .expect_success();
    let report: Value = serde_json::from_str(run.stdout().trim()).unwrap();
    assert_eq!(report["processed"], 100);
    assert!(
        report["polled"].as_u64().unwrap() >= 300,
        "one successful poll per item per stage"
    );
}

#[test]
fn pipeline_rejects_bad_stage_lists() {
    let dir = Dir::new();
    dir.concur(["pipeline", "--jobs", "1,2"])
        .run()
        .expect_code(2)
        .expect_stderr(
            "--jobs takes one value per stage (download,resize,upload) or one for all, not 2",
        );
    dir.concur(["pipeline", "--jobs", "0"])
        .run()
        .expect_code(2)
        .expect_stderr("must be at least 1");
    dir.concur(["pipeline", "--images", "nowhere", "--out", "o"])
        .run()
        .expect_code(2)
        .expect_stderr("--images nowhere: not a directory");
}

#[test]
fn image_pipeline_writes_thumbnails_and_reports_bad_files_by_path() {
    let dir = Dir::new();
    let input = dir.path().join("photos");
    std::fs::create_dir(&input).unwrap();
    for i in 0..6 {
        image::RgbImage::from_fn(300 + 10 * i, 200, |x, y| {
            image::Rgb([x as u8, y as u8, i as u8])
        })
        .save(input.join(format!("photo{i}.png")))
        .unwrap();
    }
    image::RgbImage::new(900, 450)
        .save(input.join("wide.jpg"))
        .unwrap();
    std::fs::write(input.join("corrupt.png"), b"this is not a PNG").unwrap();
    std::os::unix::fs::symlink("/nonexistent/concur-test.png", input.join("dangling.png")).unwrap();
    std::fs::write(input.join("notes.txt"), b"not an image at all").unwrap();

    let run = dir
        .concur([
            "pipeline",
            "--images",
            "photos",
            "--out",
            "thumbs",
            "--max-size",
            "100",
            "--jobs",
            "2",
        ])
        .run()
        .expect_code(1)
        .expect_stderr("photos/corrupt.png: resize:")
        .expect_stderr("photos/dangling.png: read:");
    assert!(
        run.stdout().starts_with(
            "7 thumbnails written to thumbs (at most 100 px), 2 failed, 1 other files skipped"
        ),
        "{run}"
    );
    let thumbs = dir.path().join("thumbs");
    for i in 0..6 {
        let (w, h) = image::image_dimensions(thumbs.join(format!("photo{i}.png"))).unwrap();
        assert_eq!(w, 100, "photo{i}");
        assert!(h < 100 && h > 50, "photo{i}: aspect kept, {w}x{h}");
    }
    assert_eq!(
        image::image_dimensions(thumbs.join("wide.jpg")).unwrap(),
        (100, 50)
    );
    assert!(!thumbs.join("corrupt.png").exists());
    let leftovers: Vec<_> = std::fs::read_dir(&thumbs)
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().ends_with(".partial"))
        .collect();
    assert!(leftovers.is_empty(), "no partial files left");
}

/// The spellings used before -j/--jobs and --mode became the one name for each idea
/// still work, unlisted in --help.
#[test]
fn old_flag_spellings_still_work_unlisted() {
    let dir = Dir::new();
    let runs: [&[&str]; 5] = [
        &[
            "race",
            "--threads",
            "2",
            "--increments",
            "10",
            "--mode",
            "atomic",
        ],
        &["pipeline", "--workers", "1", "--items", "3", "--json"],
        &[
            "life",
            "--strategy",
            "pool",
            "--workers",
            "2",
            "--generations",
            "1",
        ],
        &["life", "-s", "pool", "-w", "2", "--generations", "1"],
        &[
            "guess",
            "load",
            "--server",
            "async",
            "--concurrency",
            "2",
            "--clients",
            "2",
        ],
    ];
    for args in runs {
        dir.concur(args).run().expect_success();
    }
    for (command, old) in [
        (&["life", "--help"][..], "--strategy"),
        (&["life", "--help"], "--workers"),
        (&["pipeline", "--help"], "--workers <"),
        (&["race", "--help"], "--threads"),
        (&["guess", "load", "--help"], "--concurrency"),
    ] {
        let help = dir.concur(command).run().expect_success().stdout();
        assert!(!help.contains(old), "{command:?} lists {old}");
        assert!(help.contains("--jobs") || help.contains("--mode"), "{help}");
    }
}
