//! Watching and keeping a run: `--animate` in a real terminal (tmux), `--gif`, and
//! `--print rle|cells` read back through `--pattern`; `--mode parallel` against
//! `serial` from the command line.

use std::path::Path;
use std::process::Command;

use crate::util::{Dir, eventually};

/// The Gosper glider gun, as golly writes it.
const GUN: &str = "#N Gosper glider gun\n#O Bill Gosper\nx = 36, y = 9, rule = B3/S23\n\
24bo$22bobo$12b2o6b2o12b2o$11bo3bo4b2o12b2o$2o8bo5bo3b2o$2o8bo3bob2o4b\nobo$10bo5bo7bo$11bo3bo$12b2o!\n";

/// A lightweight spaceship as plaintext.
const LWSS: &str = "!Name: LWSS\n.O..O\nO....\nO...O\nOOOO.\n";

/// tmux, or a one-line reason to skip (a failure under CI=true).
fn tmux() -> Option<()> {
    if Command::new("tmux")
        .arg("-V")
        .output()
        .is_ok_and(|o| o.status.success())
    {
        return Some(());
    }
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "tmux is required under CI=true (.ci/run installs it)"
    );
    eprintln!("skipped: tmux is not installed (apt-get install tmux)");
    None
}

/// A private tmux server, killed when dropped.
struct Tmux {
    socket: String,
}

impl Tmux {
    fn new(name: &str) -> Self {
        Self {
            socket: format!("concur-{name}-{}", std::process::id()),
        }
    }

    fn run(&self, args: &[&str]) -> String {
        let output = Command::new("tmux")
            .arg("-L")
            .arg(&self.socket)
            .args(args)
            .output()
            .expect("run tmux");
        String::from_utf8_lossy(&output.stdout).into_owned()
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        self.run(&["kill-server"]);
    }
}

/// Starts `concur life ARGS --animate` in an 80x24 tmux pane, waits for a frame, does
/// `quit` (keys to send, or nothing), and checks the exit status and that the terminal
/// is back: main screen, cursor shown.
fn animate_and_quit(name: &str, extra: &str, quit: Option<&str>, expected_status: &str) {
    let dir = Dir::new();
    dir.create("gun.rle", GUN);
    let exe = env!("CARGO_BIN_EXE_concur");
    let status = dir.path().join("status");
    let script = format!(
        "cd '{}' && '{exe}' life --pattern gun.rle --animate --fps 20 {extra}; echo $? > '{}'; sleep 30",
        dir.path().display(),
        status.display()
    );
    let tmux = Tmux::new(name);
    tmux.run(&["new-session", "-d", "-x", "80", "-y", "24", &script]);
    let mut screen = String::new();
    eventually("a frame of the gun", || {
        screen = tmux.run(&["capture-pane", "-p"]);
        screen.contains("generation") && screen.contains('▀')
    });
    assert!(screen.contains("population"), "{screen}");
    if extra.contains("--size") {
        assert!(
            screen.contains("27x80 of 27x108"),
            "the torus is shown as far as it fits\n{screen}"
        );
    } else {
        assert!(
            screen.contains("x -") && screen.contains("1:1"),
            "the plane is shown around the pattern, one cell a character\n{screen}"
        );
    }
    if let Some(keys) = quit {
        tmux.run(&["send-keys", keys]);
    }
    eventually("concur to exit", || {
        status.exists() && std::fs::read_to_string(&status).is_ok_and(|s| !s.is_empty())
    });
    assert_eq!(
        std::fs::read_to_string(&status).unwrap().trim(),
        expected_status
    );
    let state = tmux.run(&["display-message", "-p", "#{alternate_on} #{cursor_flag}"]);
    assert_eq!(state.trim(), "0 1", "alternate screen off, cursor visible");
    let screen = tmux.run(&["capture-pane", "-p"]);
    assert!(
        !screen.contains("q quits)") && screen.contains("\n"),
        "the animation is gone\n{screen}"
    );
}

#[test]
fn animate_draws_frames_and_q_restores_the_terminal() {
    if tmux().is_some() {
        animate_and_quit("q", "", Some("q"), "0");
        animate_and_quit("q-torus", "--size 27x108", Some("q"), "0");
    }
}

#[test]
fn animate_restores_the_terminal_on_ctrl_c_and_on_a_panic() {
    if tmux().is_some() {
        animate_and_quit("ctrl-c", "", Some("C-c"), "0");
        animate_and_quit("panic", "--fault-panic-after 5", None, "101");
    }
}

#[test]
fn animate_on_the_plane_pans_zooms_pauses_and_steps() {
    if tmux().is_none() {
        return;
    }
    let dir = Dir::new();
    dir.create("gun.rle", GUN);
    let exe = env!("CARGO_BIN_EXE_concur");
    let script = format!(
        "cd '{}' && '{exe}' life --pattern gun.rle --animate --fps 20 --mode hashlife; sleep 30",
        dir.path().display(),
    );
    let tmux = Tmux::new("plane-keys");
    tmux.run(&["new-session", "-d", "-x", "100", "-y", "30", &script]);
    let status = |tmux: &Tmux| {
        let screen = tmux.run(&["capture-pane", "-p"]);
        screen
            .lines()
            .rfind(|l| l.contains("generation"))
            .unwrap_or("")
            .to_owned()
    };
    let field = |line: &str, name: &str| -> i64 {
        let mut words = line.split_whitespace();
        words.by_ref().find(|w| *w == name);
        words
            .next()
            .and_then(|w| w.parse().ok())
            .unwrap_or(i64::MIN)
    };
    eventually("a frame", || status(&tmux).contains("1:1"));
    // Space pauses: the generation stops moving.
    tmux.run(&["send-keys", "Space"]);
    eventually("the pause", || status(&tmux).contains("PAUSED"));
    let paused = field(&status(&tmux), "generation");
    std::thread::sleep(std::time::Duration::from_millis(300));
    assert_eq!(field(&status(&tmux), "generation"), paused, "paused");
    // `.` steps one generation and stays paused.
    tmux.run(&["send-keys", "."]);
    eventually("one step", || {
        field(&status(&tmux), "generation") == paused + 1
    });
    assert!(status(&tmux).contains("PAUSED"));
    // `-` zooms out to 2 cells a character; `+` back in.
    tmux.run(&["send-keys", "-"]);
    eventually("zoomed out", || status(&tmux).contains("1:2"));
    let x = field(&status(&tmux), "x");
    // An arrow pans: the window's left edge moves right by an eighth of its width.
    tmux.run(&["send-keys", "Right"]);
    eventually("panned", || field(&status(&tmux), "x") == x + 100 * 2 / 8);
    // At 8 cells a character, HashLife draws a square per character from its tree:
    // the gun is still there.
    tmux.run(&["send-keys", "-", "-"]);
    eventually("zoomed out to 1:8", || status(&tmux).contains("1:8"));
    eventually("the gun drawn at 1:8", || {
        tmux.run(&["capture-pane", "-p"]).contains(['▀', '▄', '█'])
    });
    tmux.run(&["send-keys", "+", "+", "+"]);
    eventually("zoomed in", || status(&tmux).contains("1:1"));
    tmux.run(&["send-keys", "q"]);
    eventually("the animation to end", || {
        !tmux.run(&["capture-pane", "-p"]).contains("q quits)")
    });
}

#[test]
fn animate_refuses_a_pipe() {
    Dir::new()
        .concur(["life", "--animate"])
        .run()
        .expect_code(2)
        .expect_stderr("--animate draws full-screen and needs a terminal on stdout");
}

/// Reads a GIF's frames: (count, width, height).
fn gif_frames(path: &Path) -> (usize, u32, u32) {
    use image::AnimationDecoder;
    let file = std::io::BufReader::new(std::fs::File::open(path).unwrap());
    let decoder = image::codecs::gif::GifDecoder::new(file).unwrap();
    let frames = decoder.into_frames().collect_frames().unwrap();
    let first = frames[0].buffer();
    (frames.len(), first.width(), first.height())
}

#[test]
fn gif_has_one_frame_per_kept_generation_and_refuses_huge_frames() {
    let dir = Dir::new();
    dir.concur([
        "life",
        "--generations",
        "8",
        "--gif",
        "glider.gif",
        "--cell-px",
        "5",
    ])
    .run()
    .expect_success();
    assert_eq!(gif_frames(&dir.path().join("glider.gif")), (9, 45, 25));
    dir.concur([
        "life",
        "--generations",
        "8",
        "--gif",
        "every.gif",
        "--every",
        "4",
        "--cell-px",
        "1",
    ])
    .run()
    .expect_success();
    assert_eq!(gif_frames(&dir.path().join("every.gif")), (3, 9, 5));
    dir.concur([
        "life",
        "--size",
        "1001x1000",
        "--gif",
        "big.gif",
        "--cell-px",
        "1",
    ])
    .run()
    .expect_code(2)
    .expect_stderr("is larger than the limit of 1000000 pixels");
    assert!(!dir.path().join("big.gif").exists());
}

/// The living cells of a `--print final` grid, relative to the top-left living cell.
fn shape(grid: &str) -> Vec<(usize, usize)> {
    let cells: Vec<(usize, usize)> = grid
        .lines()
        .enumerate()
        .flat_map(|(y, row)| {
            row.char_indices()
                .filter(|(_, c)| *c == '*')
                .map(move |(x, _)| (y, x))
        })
        .collect();
    let top = cells.iter().map(|c| c.0).min().unwrap_or(0);
    let left = cells.iter().map(|c| c.1).min().unwrap_or(0);
    cells
        .into_iter()
        .map(|(y, x)| (y - top, x - left))
        .collect()
}

#[test]
fn rle_and_cells_output_read_back_to_the_same_cells() {
    let dir = Dir::new();
    dir.create("gun.rle", GUN);
    dir.create("lwss.cells", LWSS);
    for (pattern, generations) in [("gun.rle", "45"), ("lwss.cells", "7"), ("gun.rle", "0")] {
        let expected = dir
            .concur([
                "life",
                "--pattern",
                pattern,
                "--generations",
                generations,
                "--print",
                "final",
            ])
            .run()
            .expect_success()
            .stdout();
        for (format, file) in [("rle", "out.rle"), ("cells", "out.cells")] {
            let run = dir
                .concur(["life", "--pattern", pattern, "--generations", generations])
                .args(["--print", format, "-o", file])
                .run()
                .expect_success();
            assert_eq!(run.stdout(), "", "-o takes the output");
            let saved = std::fs::read_to_string(dir.path().join(file)).unwrap();
            let comment = match format {
                "rle" => "#CXRLE Pos=".to_owned(),
                _ => format!("generation {generations}, written by concur"),
            };
            assert!(saved.contains(&comment), "{saved}");
            if format == "rle" {
                assert!(saved.contains(&format!(" Gen={generations}\n")), "{saved}");
            }
            let back = dir
                .concur([
                    "life",
                    "--pattern",
                    file,
                    "--generations",
                    "0",
                    "--print",
                    "final",
                ])
                .run()
                .expect_success()
                .stdout();
            assert_eq!(
                shape(&back),
                shape(&expected),
                "{pattern} via {format}:\n{saved}"
            );
            assert!(!shape(&expected).is_empty());
        }
    }
}

#[test]
fn a_gun_on_the_plane_keeps_firing_and_the_books_format_keeps_its_size() {
    let dir = Dir::new();
    dir.create("gun.rle", GUN);
    // The gun has 36 cells; every 30 generations it adds a 5-cell glider. On its own
    // 9x36 box as a torus it would wreck itself at once; on the plane it fires.
    let run = dir
        .concur([
            "life",
            "--pattern",
            "gun.rle",
            "--generations",
            "60",
            "--json",
        ])
        .run()
        .expect_success();
    let summary: serde_json::Value =
        serde_json::from_str(run.stdout().lines().last().unwrap()).unwrap();
    assert_eq!(summary["plane"], true, "{summary}");
    assert_eq!(summary["alive"], 36 + 2 * 5, "{summary}");
    // Its bounding box starts where the file put it and has grown down with the gliders
    // (Golly 3.3 writes `x = 36, y = 20` for generation 60).
    let bounds = summary["bounds"].as_array().unwrap();
    assert_eq!(
        (bounds[0].as_i64(), bounds[1].as_i64()),
        (Some(0), Some(0)),
        "{summary}"
    );
    assert_eq!(
        (bounds[2].as_u64(), bounds[3].as_u64()),
        (Some(36), Some(20)),
        "{summary}"
    );
    dir.create("book.txt", "-*-\n--*\n***\n");
    let run = dir
        .concur([
            "life",
            "--pattern",
            "book.txt",
            "--generations",
            "0",
            "--print",
            "final",
        ])
        .run()
        .expect_success();
    assert_eq!(run.stdout(), "-*-\n--*\n***\n");
}

#[test]
fn a_failed_run_leaves_the_previous_output_file_whole() {
    let dir = Dir::new();
    let kept = dir.create("out.rle", "an earlier result\n");
    dir.concur([
        "life",
        "--fail-at",
        "1,1",
        "--print",
        "rle",
        "-o",
        "out.rle",
    ])
    .run()
    .expect_code(1);
    assert_eq!(
        std::fs::read_to_string(kept).unwrap(),
        "an earlier result\n"
    );
}

#[test]
fn parallel_matches_serial_on_awkward_shapes_from_the_command_line() {
    let dir = Dir::new();
    dir.create("gun.rle", GUN);
    let boards: [&[&str]; 6] = [
        &["--size", "1x70", "--random", "0.5"],
        &["--size", "70x1", "--random", "0.5"],
        &["--size", "33x127", "--random", "0.35"],
        &["--size", "64x64", "--random", "0.35"],
        &["--size", "3x200", "--random", "0.5", "--seed", "9"],
        &["--pattern", "gun.rle"],
    ];
    for board in boards {
        let run = |strategy: &str| {
            dir.concur([
                "life",
                "--mode",
                strategy,
                "--generations",
                "40",
                "--print",
                "final",
            ])
            .args(board)
            .run()
            .expect_success()
            .stdout()
        };
        assert_eq!(run("parallel"), run("serial"), "{board:?}");
    }
}

#[test]
fn parallel_refuses_io_options_and_reports_its_rate() {
    let dir = Dir::new();
    dir.concur(["life", "--mode", "parallel", "--latency", "1ms"])
        .run()
        .expect_code(2)
        .expect_stderr("--latency does not apply to --mode parallel");
    dir.concur(["life", "--mode", "parallel", "--fail-at", "0,0"])
        .run()
        .expect_code(2)
        .expect_stderr("--fail-at does not apply to --mode parallel");
    let run = dir
        .concur([
            "life", "--mode", "parallel", "--size", "256x256", "--random", "0.3",
        ])
        .args(["--generations", "3", "--json"])
        .run()
        .expect_success();
    let summary: serde_json::Value =
        serde_json::from_str(run.stdout().lines().last().unwrap()).unwrap();
    assert!(
        summary["cell_updates_per_second"].as_f64().unwrap() > 0.0,
        "{summary}"
    );
}

#[test]
fn animation_waits_at_most_its_frame_rate() {
    // Not a timing assertion on concur's speed: --fps 50 over 10 frames must take at
    // least the 0.2 s the frame rate asks for, proving it paces itself; skipped
    // without tmux (it needs a terminal).
    if tmux().is_none() {
        return;
    }
    let dir = Dir::new();
    let exe = env!("CARGO_BIN_EXE_concur");
    let status = dir.path().join("status");
    let script = format!(
        "start=$(date +%s%N); '{exe}' life --animate --fps 50 --generations 10; echo $? $(( ($(date +%s%N) - start) / 1000000 )) > '{}'; sleep 30",
        status.display()
    );
    let tmux = Tmux::new("fps");
    tmux.run(&["new-session", "-d", "-x", "80", "-y", "24", &script]);
    eventually("concur to exit", || {
        std::fs::read_to_string(&status).is_ok_and(|s| s.ends_with('\n'))
    });
    let line = std::fs::read_to_string(&status).unwrap();
    let mut fields = line.split_whitespace();
    assert_eq!(fields.next(), Some("0"), "{line}");
    let ms: u64 = fields.next().unwrap().parse().unwrap();
    assert!(ms >= 200, "11 frames at 50 fps took only {ms} ms");
}
