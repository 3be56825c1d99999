//! The injection corpus: command shapes × hostile inputs × input channels. In no
//! shape does any input run as code, and wherever the shape hands the value to one
//! command as one argument, it comes out byte for byte.

use crate::util::Dir;

/// A command shape: the words given to `concur run`, and whether the value reaches
/// `printf` as exactly one argument (its output can then be checked byte for byte).
struct Shape {
    words: &'static [&'static str],
    /// What the value is printed between, when the output is checked.
    exact: Option<(&'static str, &'static str)>,
}

const fn exact(words: &'static [&'static str]) -> Shape {
    Shape {
        words,
        exact: Some(("[", "]")),
    }
}

const SHAPES: &[Shape] = &[
    exact(&["printf '[%s]\\n' {}"]),
    exact(&["printf '[%s]\\n' '{}'"]),
    exact(&["printf '[%s]\\n' \"{}\""]),
    Shape {
        words: &["printf '[%s]\\n' x{}y"],
        exact: Some(("[x", "y]")),
    },
    Shape {
        words: &["printf '[%s]\\n' \"x{}y\""],
        exact: Some(("[x", "y]")),
    },
    Shape {
        words: &["printf '[%s]\\n' 'x{}y'"],
        exact: Some(("[x", "y]")),
    },
    exact(&["printf '[%s]\\n' \"$(printf %s {})\""]),
    exact(&["printf '[%s]\\n' \"$(printf %s '{}')\""]),
    exact(&["printf '[%s]\\n' \"`printf %s {}`\""]),
    exact(&["printf '[%s]\\n' \"`printf %s \\\"{}\\\"`\""]),
    exact(&["sh -c 'printf \"[%s]\\n\" {}'"]),
    exact(&["sh -c \"printf '[%s]\\n' {}\""]),
    exact(&["sh -c 'printf \"[%s]\\n\" \"{}\"'"]),
    exact(&["bash -c 'printf \"[%s]\\n\" {}'"]),
    exact(&["sh -ec 'printf \"[%s]\\n\" '\\''{}'\\'"]),
    exact(&["sh -c 'sh -c \"printf [%s]\\\\\\\\n {}\"'"]),
    exact(&["env A=1 sh -c 'printf \"[%s]\\n\" {}'"]),
    exact(&["-q", "sh", "-c", "printf '[%s]\\n' {}"]),
    exact(&["-q", "printf", "[%s]\\n", "{}"]),
    exact(&["printf", "'[%s]\\n'", "{}"]),
    exact(&["printf '[%s]\\n' {} | cat"]),
    exact(&["x={}; printf '[%s]\\n' \"$x\""]),
    exact(&["sh -c 'printf \"[%s]\\n\" \"$1\"' _ {}"]),
    exact(&["for v in {}; do printf '[%s]\\n' \"$v\"; done"]),
    // Field-split and globbed by the shell, as the command asks: data, but not whole.
    Shape {
        words: &["printf '[%s]\\n' $(printf %s {})"],
        exact: None,
    },
    Shape {
        words: &["echo {} {.} {/} {//} {/.} > /dev/null"],
        exact: None,
    },
];

/// Inputs that run `touch RANnn` if they are ever read as code. The last ones hold
/// a newline, which only `-0` carries in one record (`:::` splits it, as GNU parallel
/// does).
const HOSTILE: &[&[u8]] = &[
    b"$(touch RAN01)",
    b"`touch RAN02`",
    b"; touch RAN03",
    b"| touch RAN04",
    b"& touch RAN05",
    b"' ; touch RAN06 ; '",
    b"\" ; touch RAN07 ; \"",
    b"\\' ; touch RAN08 #",
    b"$(touch RAN10)'",
    b"\"$(touch RAN11)\"",
    b"'$(touch RAN12)'",
    b"\\`touch RAN13\\`",
    b"&& touch RAN14",
    b") ; touch RAN15 ; (",
    b"$HOME ~ * !! #x {}",
    b"a  b\tc",
    b"-n",
    b"back\\slash\\",
    b"caf\xe9",
    b"",
    b"x\ntouch RAN09",
    b"'\n touch RAN16 \n'",
];

fn with_newline(value: &[u8]) -> bool {
    value.contains(&b'\n')
}

#[derive(Clone, Copy, Debug)]
enum Channel {
    List,
    ArgFile,
    DashA,
    Stdin,
    NullStdin,
}

#[test]
fn no_input_runs_as_code_in_any_shape_or_channel() {
    let dir = Dir::new();
    let mut failures = Vec::new();
    for shape in SHAPES {
        for channel in [
            Channel::List,
            Channel::ArgFile,
            Channel::DashA,
            Channel::Stdin,
            Channel::NullStdin,
        ] {
            let inputs: Vec<&[u8]> = HOSTILE
                .iter()
                .copied()
                .filter(|v| {
                    matches!(channel, Channel::List | Channel::NullStdin) || !with_newline(v)
                })
                // An empty line is no argument for a line-based source.
                .filter(|v| matches!(channel, Channel::List | Channel::NullStdin) || !v.is_empty())
                .collect();
            let mut cmd = dir.concur(["run", "-k"]);
            let mut lines = Vec::new();
            for value in &inputs {
                lines.extend_from_slice(value);
                lines.push(if matches!(channel, Channel::NullStdin) {
                    0
                } else {
                    b'\n'
                });
            }
            match channel {
                Channel::DashA => {
                    std::fs::write(dir.path().join("inputs"), &lines).unwrap();
                    cmd = cmd.args(["-a", "inputs"]);
                }
                Channel::NullStdin => cmd = cmd.arg("-0").stdin(lines.clone()),
                Channel::Stdin => cmd = cmd.stdin(lines.clone()),
                _ => {}
            }
            cmd = cmd.args(shape.words);
            match channel {
                Channel::List => {
                    cmd = cmd.arg(":::");
                    for value in &inputs {
                        cmd = cmd.arg(
                            <std::ffi::OsStr as std::os::unix::ffi::OsStrExt>::from_bytes(value),
                        );
                    }
                }
                Channel::ArgFile => {
                    std::fs::write(dir.path().join("inputs"), &lines).unwrap();
                    cmd = cmd.args(["::::", "inputs"]);
                }
                _ => {}
            }
            let run = cmd.run();
            let ran: Vec<String> = std::fs::read_dir(dir.path())
                .unwrap()
                .flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.starts_with("RAN"))
                .collect();
            if !ran.is_empty() {
                failures.push(format!(
                    "{:?} via {channel:?} ran {ran:?}\n{run}",
                    shape.words
                ));
                for name in ran {
                    let _ = std::fs::remove_file(dir.path().join(name));
                }
            }
            if let Some((before, after)) = shape.exact {
                // A `:::` value holding a newline is several records, as in GNU parallel.
                let records: Vec<&[u8]> = match channel {
                    Channel::List => inputs
                        .iter()
                        .flat_map(|v| {
                            let mut parts: Vec<&[u8]> = v.split(|&b| b == b'\n').collect();
                            if parts.len() > 1 && parts.last() == Some(&&b""[..]) {
                                parts.pop();
                            }
                            parts
                        })
                        .collect(),
                    _ => inputs.clone(),
                };
                let mut expected = Vec::new();
                for value in &records {
                    expected.extend_from_slice(before.as_bytes());
                    expected.extend_from_slice(value);
                    expected.extend_from_slice(after.as_bytes());
                    expected.push(b'\n');
                }
                if run.output.stdout != expected || run.code() != Some(0) {
                    failures.push(format!(
                        "{:?} via {channel:?} printed\n{:?}\nnot\n{:?}\n{run}",
                        shape.words,
                        String::from_utf8_lossy(&run.output.stdout),
                        String::from_utf8_lossy(&expected)
                    ));
                }
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}
