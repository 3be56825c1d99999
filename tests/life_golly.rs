//! `concur life` beyond the torus: the unbounded plane, HashLife, any B/S rule, Golly's
//! formats, checked against each other and against Golly's own `bgolly` where it is
//! installed (a failure under CI=true, where `.ci/run` installs it).

use std::collections::BTreeSet;
use std::process::Command;

use crate::util::Dir;

/// The Gosper glider gun.
const GUN: &str = "x = 36, y = 9, rule = B3/S23\n24bo$22bobo$12b2o6b2o12b2o$11bo3bo4b2o12b2o$2o8bo5bo3b2o$2o8bo3bob2o4bobo$10bo5bo7bo$11bo3bo$12b2o!\n";
/// The R-pentomino.
const R_PENTOMINO: &str = "x = 3, y = 3\nb2o$2o$bo!\n";
/// Acorn, as Golly ships it (Patterns/Life/Methuselahs/acorn.lif): a bare `#P`.
const ACORN_LIF: &str = "#Life 1.05\n#D Acorn\n#D A methuselah\n#N\n#P\n.*\n...*\n**..***\n";
/// Gosper's breeder in Golly's pattern folder.
const BREEDER: &str = "/usr/share/golly/Patterns/Life/Breeders/breeder.lif";
/// A glider.
const GLIDER: &str = "x = 3, y = 3\nbo$2bo$3o!\n";

/// `bgolly`, or a one-line reason to skip (a failure under CI=true).
fn bgolly() -> Option<&'static str> {
    if Command::new("bgolly")
        .arg("-h")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).contains("bgolly"))
    {
        return Some("bgolly");
    }
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "bgolly is required under CI=true (.ci/run installs golly)"
    );
    eprintln!("skipped: bgolly is not installed (apt-get install golly)");
    None
}

/// The living cells of an RLE text, moved so the top-left of their box is (0, 0): the
/// test's own reader, so that concur's parser is not its own oracle.
fn shape(rle: &str) -> BTreeSet<(i64, i64)> {
    let mut cells = BTreeSet::new();
    let (mut x, mut y, mut n) = (0i64, 0i64, 0i64);
    let body = rle
        .lines()
        .skip_while(|l| l.starts_with('#') || !l.starts_with('x'))
        .skip(1);
    'lines: for line in body {
        for c in line.chars() {
            match c {
                '0'..='9' => n = n * 10 + i64::from(c as u8 - b'0'),
                'b' | 'o' => {
                    let run = n.max(1);
                    if c == 'o' {
                        for i in 0..run {
                            cells.insert((x + i, y));
                        }
                    }
                    x += run;
                    n = 0;
                }
                '$' => {
                    y += n.max(1);
                    x = 0;
                    n = 0;
                }
                '!' => break 'lines,
                _ => {}
            }
        }
    }
    let left = cells.iter().map(|c| c.0).min().unwrap_or(0);
    let top = cells.iter().map(|c| c.1).min().unwrap_or(0);
    cells
        .into_iter()
        .map(|(x, y)| (x - left, y - top))
        .collect()
}

/// `concur life ARGS` in `dir`, its stdout.
fn life(dir: &Dir, args: &[&str]) -> String {
    dir.concur(["life"])
        .args(args)
        .run()
        .expect_success()
        .stdout()
}

/// Golly's RLE of `pattern` after `generations` under `rule`.
fn golly(golly: &str, dir: &Dir, pattern: &str, rule: &str, generations: u64) -> String {
    let out = dir.path().join("golly-out.rle");
    let _ = std::fs::remove_file(&out);
    let status = Command::new(golly)
        .current_dir(dir.path())
        .args([
            "-a",
            "QuickLife",
            "-r",
            rule,
            "-m",
            &generations.to_string(),
            "-o",
        ])
        .arg(&out)
        .arg(pattern)
        .output()
        .unwrap();
    assert!(status.status.success(), "{status:?}");
    std::fs::read_to_string(out).unwrap()
}

#[test]
fn hashlife_equals_parallel_and_serial_on_the_plane() {
    let dir = Dir::new();
    dir.create("gun.rle", GUN);
    dir.create("r.rle", R_PENTOMINO);
    dir.create("acorn.lif", ACORN_LIF);
    dir.create("glider.rle", GLIDER);
    let soup = life(
        &dir,
        &[
            "--plane", "--random", "0.3", "--size", "40x40", "--seed", "5", "-g", "0", "--print",
            "rle",
        ],
    );
    dir.create("soup.rle", &soup);
    for (pattern, generations) in [
        ("glider.rle", "97"),
        ("gun.rle", "211"),
        ("r.rle", "300"),
        ("acorn.lif", "250"),
        ("soup.rle", "150"),
    ] {
        let rle = |mode: &str, extra: &[&str]| {
            let mut args = vec![
                "--pattern",
                pattern,
                "-g",
                generations,
                "--print",
                "rle",
                "--mode",
                mode,
            ];
            args.extend_from_slice(extra);
            life(&dir, &args)
        };
        let parallel = rle("parallel", &[]);
        assert!(parallel.starts_with("#CXRLE Pos="), "{parallel}");
        assert_eq!(
            rle("hashlife", &[]),
            parallel,
            "{pattern}: hashlife in one jump"
        );
        assert_eq!(
            rle("hashlife", &["--step", "7"]),
            parallel,
            "{pattern}: jumps of 7"
        );
        assert_eq!(
            rle("hashlife", &["--jobs", "1"]),
            parallel,
            "{pattern}: one thread"
        );
        if pattern != "soup.rle" {
            assert_eq!(rle("serial", &[]), parallel, "{pattern}: serial");
        }
    }
}

#[test]
fn hashlife_equals_parallel_on_tori() {
    let dir = Dir::new();
    dir.create("gun.rle", GUN);
    dir.create("r.rle", R_PENTOMINO);
    dir.create("acorn.lif", ACORN_LIF);
    for board in [
        vec!["--size", "12x14"],
        vec!["--pattern", "acorn.lif", "--size", "30x40"],
        vec!["--pattern", "gun.rle", "--size", "40x60"],
        vec!["--pattern", "r.rle", "--size", "31x33"],
        vec!["--random", "0.35", "--size", "50x70", "--seed", "3"],
        vec!["--random", "0.5", "--size", "3x130"],
        vec!["--random", "0.35", "--size", "64x64", "--rule", "B36/S23"],
        vec!["--random", "0.35", "--size", "20x20", "--rule", "B0/S8"],
    ] {
        let run = |mode: &str| {
            let mut args = board.clone();
            args.extend(["-g", "60", "--print", "final", "--mode", mode]);
            life(&dir, &args)
        };
        assert_eq!(run("hashlife"), run("parallel"), "{board:?}");
    }
}

#[test]
fn the_gun_and_the_breeder_jump_as_far_as_golly_counts() {
    let dir = Dir::new();
    dir.create("gun.rle", GUN);
    // Gosper's breeder, from Golly's pattern folder (installed with golly).
    let breeder = std::path::Path::new(BREEDER);
    let mut cases = vec![("gun.rle".to_owned(), "2^30", "178957021")];
    if bgolly().is_some() && breeder.exists() {
        cases.push((BREEDER.to_owned(), "2^20", "1432547841"));
    }
    // Populations bgolly 3.3 prints for `-h -m 2^30` (gun) and `-h -m 2^20` (breeder).
    for (pattern, generations, alive) in cases {
        let pattern = pattern.as_str();
        let run = life(
            &dir,
            &[
                "--pattern",
                pattern,
                "--mode",
                "hashlife",
                "-g",
                generations,
                "--json",
            ],
        );
        let summary: serde_json::Value = serde_json::from_str(run.lines().last().unwrap()).unwrap();
        assert_eq!(summary["alive"].to_string(), alive, "{pattern}: {summary}");
        if let Some(golly) = bgolly() {
            let n = if generations == "2^30" {
                1u64 << 30
            } else {
                1 << 20
            };
            let out = Command::new(golly)
                .current_dir(dir.path())
                .args(["-h", "-m", &n.to_string(), "-i", &n.to_string(), pattern])
                .output()
                .unwrap();
            let text = String::from_utf8_lossy(&out.stdout).replace(',', "");
            assert!(text.contains(&format!("{n}: {alive}")), "{text}");
        }
    }
}

#[test]
fn every_rule_matches_golly() {
    let Some(golly_bin) = bgolly() else {
        return;
    };
    let dir = Dir::new();
    dir.create("r.rle", R_PENTOMINO);
    let soup = life(
        &dir,
        &[
            "--plane", "--random", "0.4", "--size", "24x24", "--seed", "8", "-g", "0", "--print",
            "rle",
        ],
    );
    dir.create("soup.rle", &soup);
    let rules = [
        ("B36/S23", 200),      // HighLife
        ("B3678/S34678", 120), // Day & Night
        ("B2/S", 12),          // Seeds: explodes, so few generations
        ("B34/S34", 60),
        ("B35678/S5678", 80), // Diamoeba
        ("B3/S12345", 40),    // Maze-like
        ("B1357/S1357", 20),  // Replicator
    ];
    for (rule, generations) in rules {
        for pattern in ["r.rle", "soup.rle"] {
            let expected = shape(&golly(golly_bin, &dir, pattern, rule, generations));
            let g = generations.to_string();
            for mode in ["hashlife", "parallel", "serial"] {
                if mode == "serial" && pattern == "soup.rle" {
                    continue;
                }
                let ours = life(
                    &dir,
                    &[
                        "--pattern",
                        pattern,
                        "--rule",
                        rule,
                        "-g",
                        &g,
                        "--print",
                        "rle",
                        "--mode",
                        mode,
                    ],
                );
                assert_eq!(shape(&ours), expected, "{rule} {pattern} {mode}");
            }
        }
    }
    // The rule line of a file is used when --rule is not given.
    dir.create("highlife.rle", "x = 3, y = 3, rule = 23/36\nb2o$2o$bo!\n");
    let ours = life(
        &dir,
        &[
            "--pattern",
            "highlife.rle",
            "-g",
            "200",
            "--print",
            "rle",
            "--mode",
            "hashlife",
        ],
    );
    assert!(ours.contains("rule = B36/S23"), "{ours}");
    assert_eq!(
        shape(&ours),
        shape(&golly(golly_bin, &dir, "r.rle", "B36/S23", 200))
    );
}

#[test]
fn acorn_from_golly_s_own_file_runs_to_its_633_cells() {
    let dir = Dir::new();
    dir.create("acorn.lif", ACORN_LIF);
    // Acorn settles at generation 5206 with 633 cells (and some gliders gone away).
    let run = life(
        &dir,
        &[
            "--pattern",
            "acorn.lif",
            "--mode",
            "hashlife",
            "-g",
            "5206",
            "--json",
        ],
    );
    let summary: serde_json::Value = serde_json::from_str(run.lines().last().unwrap()).unwrap();
    assert_eq!(summary["alive"], 633, "{summary}");
    if let Some(golly) = bgolly() {
        let ours = life(
            &dir,
            &[
                "--pattern",
                "acorn.lif",
                "--mode",
                "hashlife",
                "-g",
                "5206",
                "--print",
                "rle",
            ],
        );
        assert_eq!(
            shape(&ours),
            shape(&self::golly(golly, &dir, "acorn.lif", "B3/S23", 5206))
        );
    }
}

#[test]
fn macrocell_round_trips_and_golly_reads_it() {
    let dir = Dir::new();
    dir.create("gun.rle", GUN);
    let direct = life(
        &dir,
        &[
            "--pattern",
            "gun.rle",
            "--mode",
            "hashlife",
            "-g",
            "1000",
            "--print",
            "rle",
        ],
    );
    life(
        &dir,
        &[
            "--pattern",
            "gun.rle",
            "--mode",
            "hashlife",
            "-g",
            "1000",
            "--print",
            "mc",
            "-o",
            "gun.mc",
        ],
    );
    let mc = std::fs::read_to_string(dir.path().join("gun.mc")).unwrap();
    assert!(
        mc.starts_with("[M2] (concur") && mc.contains("#G 1000\n"),
        "{mc}"
    );
    // Reloaded, it is the same pattern at the same place and generation.
    assert_eq!(
        life(
            &dir,
            &[
                "--pattern",
                "gun.mc",
                "--mode",
                "hashlife",
                "-g",
                "0",
                "--print",
                "rle"
            ]
        ),
        direct
    );
    // Gzip'd, too; and any strategy can start from it.
    let gz = dir.sh("gzip -c gun.mc > gun.mc.gz && echo ok");
    assert!(gz.status.success());
    assert_eq!(
        life(
            &dir,
            &[
                "--pattern",
                "gun.mc.gz",
                "--mode",
                "parallel",
                "-g",
                "0",
                "--print",
                "rle"
            ]
        ),
        direct
    );
    // Running on from the file equals running straight through.
    assert_eq!(
        life(
            &dir,
            &[
                "--pattern",
                "gun.mc",
                "--mode",
                "hashlife",
                "-g",
                "500",
                "--print",
                "rle"
            ]
        ),
        life(
            &dir,
            &[
                "--pattern",
                "gun.rle",
                "--mode",
                "hashlife",
                "-g",
                "1500",
                "--print",
                "rle"
            ]
        )
    );
    if let Some(golly) = bgolly() {
        let out = dir.path().join("from-mc.rle");
        let run = Command::new(golly)
            .current_dir(dir.path())
            .args(["-h", "-m", "0", "-o"])
            .arg(&out)
            .arg("gun.mc")
            .output()
            .unwrap();
        assert!(run.status.success(), "{run:?}");
        assert_eq!(
            shape(&std::fs::read_to_string(out).unwrap()),
            shape(&direct)
        );
    }
    dir.create("bad.mc", "[M2] (x)\n#R B3/S23\n4 0 0 0 7\n");
    dir.concur(["life", "--pattern", "bad.mc", "--mode", "hashlife"])
        .run()
        .expect_code(2)
        .expect_stderr("bad.mc:line 3: node 7 is not defined before this line");
}

#[test]
fn golly_s_rle_quirks_are_read_as_golly_reads_them() {
    let dir = Dir::new();
    // A row wider than the header's x (Golly reads it as written).
    dir.create("wide.rle", "x = 2, y = 1, rule = B3/S23\n3o!\n");
    assert_eq!(
        life(
            &dir,
            &["--pattern", "wide.rle", "-g", "0", "--print", "final"]
        ),
        "***\n"
    );
    // Golly's position line places the pattern.
    dir.create(
        "pos.rle",
        "#CXRLE Pos=-7,12 Gen=3\nx = 3, y = 3, rule = B3/S23\nbo$2bo$3o!\n",
    );
    let out = life(&dir, &["--pattern", "pos.rle", "-g", "4", "--print", "rle"]);
    assert!(out.starts_with("#CXRLE Pos=-6,13 Gen=4\n"), "{out}");
}

#[test]
fn a_torus_exported_as_rle_reloads_on_the_same_torus() {
    let dir = Dir::new();
    // A soup on a 64x48 torus, run long enough to cross its edges.
    let args = [
        "--random", "0.3", "--size", "48x64", "--seed", "2", "--mode", "parallel",
    ];
    let mut first = args.to_vec();
    first.extend(["-g", "80", "--print", "rle"]);
    let rle = life(&dir, &first);
    assert!(rle.contains(":T64,48\n"), "{rle}");
    dir.create("torus.rle", &rle);
    let mut straight = args.to_vec();
    straight.extend(["-g", "120", "--print", "final"]);
    let straight = life(&dir, &straight);
    // 40 more from the export: the same cells, wherever the export placed the window.
    let resumed = life(
        &dir,
        &["--pattern", "torus.rle", "-g", "40", "--print", "rle"],
    );
    let direct = life(&dir, &{
        let mut a = args.to_vec();
        a.extend(["-g", "120", "--print", "rle"]);
        a
    });
    assert_eq!(shape(&resumed), shape(&direct));
    assert!(straight.contains('*'));
    // A pattern straddling the corner is written as its small window, not the torus.
    dir.create(
        "corner.rle",
        "x = 10, y = 10, rule = B3/S23:T10,10\no8bo$10b$10b$10b$10b$10b$10b$10b$10b$o8bo!\n",
    );
    let out = life(
        &dir,
        &["--pattern", "corner.rle", "-g", "0", "--print", "rle"],
    );
    assert!(
        out.contains("x = 2, y = 2, rule = B3/S23:T10,10\n2o$2o!"),
        "{out}"
    );
}

#[test]
fn output_files_get_the_umask_s_permissions_or_keep_their_own() {
    use std::os::unix::fs::PermissionsExt;
    let dir = Dir::new();
    let exe = env!("CARGO_BIN_EXE_concur");
    let run = dir.sh(&format!(
        "umask 022 && '{exe}' life -g 1 --print rle -o new.rle"
    ));
    assert!(run.status.success(), "{run:?}");
    let mode = |name: &str| {
        std::fs::metadata(dir.path().join(name))
            .unwrap()
            .permissions()
            .mode()
            & 0o777
    };
    assert_eq!(mode("new.rle"), 0o644);
    let kept = dir.create("kept.rle", "old\n");
    std::fs::set_permissions(&kept, std::fs::Permissions::from_mode(0o600)).unwrap();
    let run = dir.sh(&format!(
        "umask 022 && '{exe}' life -g 1 --print rle -o kept.rle"
    ));
    assert!(run.status.success(), "{run:?}");
    assert_eq!(mode("kept.rle"), 0o600);
    assert!(
        std::fs::read_to_string(&kept)
            .unwrap()
            .contains("rule = B3/S23:T9,5\n")
    );
}

#[test]
fn plane_runs_refuse_what_they_cannot_do() {
    let dir = Dir::new();
    dir.create("glider.rle", GLIDER);
    for (args, message) in [
        (vec!["--rule", "B0/S8"], "gives birth on 0 neighbours (B0)"),
        (
            vec!["--fail-at", "1,1"],
            "--fail-at names a cell of a torus",
        ),
        (
            vec!["--step", "4"],
            "--step jumps generations with --mode hashlife",
        ),
        (vec!["--rule", "B3/S23/2"], "Generations rules"),
        (vec!["-g", "2^64"], "2^64 is more than"),
    ] {
        let mut all = vec!["life", "--pattern", "glider.rle"];
        all.extend(args);
        dir.concur(all).run().expect_code(2).expect_stderr(message);
    }
    dir.concur(["life", "--size", "9x9", "--step", "4", "--mode", "hashlife"])
        .run()
        .expect_code(2)
        .expect_stderr("--step jumps generations on the unbounded plane");
}

#[test]
fn a_gif_of_the_plane_is_cropped_to_the_pattern_over_the_run() {
    let dir = Dir::new();
    dir.create("gun.rle", GUN);
    life(
        &dir,
        &[
            "--pattern",
            "gun.rle",
            "-g",
            "60",
            "--gif",
            "gun.gif",
            "--cell-px",
            "2",
        ],
    );
    let gif = std::fs::read(dir.path().join("gun.gif")).unwrap();
    assert!(gif.starts_with(b"GIF89a"));
    let (width, height) = (
        u16::from_le_bytes([gif[6], gif[7]]),
        u16::from_le_bytes([gif[8], gif[9]]),
    );
    // The gun's box over 60 generations is its box at 60 (it only grows down): 36 x 20
    // cells, as Golly 3.3 writes it, at 2 pixels a cell.
    assert_eq!((width, height), (72, 40));
}

#[test]
fn a_small_memory_budget_collects_garbage_and_changes_nothing() {
    let dir = Dir::new();
    let soup = life(
        &dir,
        &[
            "--plane", "--random", "0.35", "--size", "40x40", "--seed", "12", "-g", "0", "--print",
            "rle",
        ],
    );
    dir.create("soup.rle", &soup);
    let budgeted = |last: &[&str]| {
        let mut args = vec![
            "--pattern",
            "soup.rle",
            "--mode",
            "hashlife",
            "-g",
            "400",
            "--step",
            "50",
            "--max-memory",
            "64K",
        ];
        args.extend_from_slice(last);
        life(&dir, &args)
    };
    let run = budgeted(&["--json"]);
    let summary: serde_json::Value = serde_json::from_str(run.lines().last().unwrap()).unwrap();
    assert!(
        summary["garbage_collections"].as_u64() >= Some(1),
        "{summary}"
    );
    assert_eq!(
        run.lines().count(),
        400 / 50 + 1,
        "a line per step and the summary"
    );
    let with_budget = budgeted(&["--print", "rle"]);
    let parallel = life(
        &dir,
        &[
            "--pattern",
            "soup.rle",
            "--mode",
            "parallel",
            "-g",
            "400",
            "--print",
            "rle",
        ],
    );
    assert_eq!(with_budget, parallel);
}

#[test]
fn the_last_generation_a_u64_can_count() {
    let dir = Dir::new();
    dir.create("glider.rle", GLIDER);
    // A glider moves one cell down and right every 4 generations, and 2^64 - 1 is
    // 4 * (2^62 - 1) + 3: the shape of generation 3, moved 2^62 - 1 cells.
    let three = life(
        &dir,
        &[
            "--pattern",
            "glider.rle",
            "--mode",
            "hashlife",
            "-g",
            "3",
            "--print",
            "rle",
        ],
    );
    let last = life(
        &dir,
        &[
            "--pattern",
            "glider.rle",
            "--mode",
            "hashlife",
            "-g",
            "18446744073709551615",
            "--print",
            "rle",
        ],
    );
    let pos = |rle: &str| -> (i128, i128) {
        let pos = rle
            .lines()
            .next()
            .unwrap()
            .split_whitespace()
            .nth(1)
            .unwrap();
        let (x, y) = pos.trim_start_matches("Pos=").split_once(',').unwrap();
        (x.parse().unwrap(), y.parse().unwrap())
    };
    let shift = (1i128 << 62) - 1;
    assert_eq!(
        pos(&last),
        (pos(&three).0 + shift, pos(&three).1 + shift),
        "{last}"
    );
    assert_eq!(shape(&last), shape(&three));
    assert!(last.contains("Gen=18446744073709551615"), "{last}");
}
