//! `concur run` against GNU parallel: every case in `run_compat/cases.txt` must print,
//! byte for byte, what GNU parallel 20221122 printed for it (recorded in
//! `run_compat/expected/` by `run_compat/record.sh`), and exit with the same status.

use std::path::Path;
use std::process::Command;

use crate::util::Dir;

/// The cases: (name, shell command).
fn cases() -> Vec<(String, String)> {
    let text = std::fs::read_to_string(compat_dir().join("cases.txt")).unwrap();
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| {
            let (name, cmd) = l.split_once(" | ").expect("NAME | COMMAND");
            (name.to_owned(), cmd.to_owned())
        })
        .collect()
}

fn compat_dir() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/run_compat"))
}

/// Runs one case's command with `parallel` standing for `concur run`.
fn run_case(cmd: &str) -> (Vec<u8>, i32) {
    let dir = Dir::new();
    let script = format!("parallel() {{ \"$CONCUR\" run \"$@\"; }}; {cmd}");
    let out = Command::new("sh")
        .args(["-c", &script])
        .env("CONCUR", env!("CARGO_BIN_EXE_concur"))
        .current_dir(dir.path())
        .output()
        .unwrap();
    (out.stdout, out.status.code().unwrap_or(-1))
}

#[test]
fn concur_run_answers_as_gnu_parallel_does() {
    let expected_dir = compat_dir().join("expected");
    let cases = cases();
    assert!(cases.len() >= 60, "the suite has {} cases", cases.len());
    let mut failures = Vec::new();
    for (name, cmd) in &cases {
        let expected = std::fs::read(expected_dir.join(format!("{name}.out")))
            .unwrap_or_else(|e| panic!("{name}: no recording ({e}); run record.sh"));
        let status: i32 = std::fs::read_to_string(expected_dir.join(format!("{name}.status")))
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        let (got, code) = run_case(cmd);
        if got != expected || code != status {
            failures.push(format!(
                "{name}: {cmd}\n  GNU parallel (exit {status}): {:?}\n  concur run   (exit {code}): {:?}",
                String::from_utf8_lossy(&expected),
                String::from_utf8_lossy(&got)
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases differ from GNU parallel:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}
