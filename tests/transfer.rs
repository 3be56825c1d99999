//! `--transferfile` and `--return` by tar through a fake `ssh` (`--ssh PROGRAM`), with no
//! real host: the fake runs each remote command here, in a directory standing for the
//! host's run directory, and answers a fetch with whatever archive the test crafted.
//! A hostile host's archive must write nothing but the requested path.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use crate::util::Dir;

/// A fake host: a program that behaves as `ssh` does for concur (master, check,
/// probe), runs remote commands with `sh -c` in `remote`, and answers `tar -chf`
/// with `FAKE_ARCHIVE` when that is set.
struct FakeHost {
    dir: Dir,
}

impl FakeHost {
    fn new() -> Self {
        let dir = Dir::new();
        std::fs::create_dir(dir.path().join("remote")).unwrap();
        let script = format!(
            r#"#!/bin/sh
# Options up to --, then the host, then the remote command.
for a in "$@"; do case "$a" in -O|-N) exit 0;; esac; done
while [ $# -gt 0 ] && [ "$1" != -- ]; do shift; done
shift 2
case "$1" in
  nproc*) printf '2\n%s\ntar\n' '{remote}'; exit 0;;
  'tar -chf'*) if [ -n "$FAKE_ARCHIVE" ]; then exec cat "$FAKE_ARCHIVE"; fi;;
  'rm -rf'*) exit 0;;
esac
cd '{remote}' && exec sh -c "$1"
"#,
            remote = dir.path().join("remote").display()
        );
        let ssh = dir.create("fake-ssh", script);
        std::fs::set_permissions(&ssh, std::fs::Permissions::from_mode(0o755)).unwrap();
        Self { dir }
    }

    fn ssh(&self) -> String {
        self.dir.path().join("fake-ssh").display().to_string()
    }

    fn remote(&self) -> PathBuf {
        self.dir.path().join("remote")
    }
}

/// One member of a crafted archive, its header written by hand so that any name and
/// any type can be put in it (the tar crate's builder refuses `..`, as it should).
enum Member<'a> {
    File(&'a [u8], &'a [u8]),
    Dir(&'a [u8]),
    Symlink(&'a [u8], &'a [u8]),
}

fn archive(members: &[Member<'_>]) -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    for member in members {
        let mut header = tar::Header::new_old();
        let (name, data, kind, link): (&[u8], &[u8], _, &[u8]) = match member {
            Member::File(name, data) => (name, data, tar::EntryType::Regular, b""),
            Member::Dir(name) => (name, b"", tar::EntryType::Directory, b""),
            Member::Symlink(name, target) => (name, b"", tar::EntryType::Symlink, target),
        };
        let old = header.as_old_mut();
        old.name[..name.len()].copy_from_slice(name);
        old.linkname[..link.len()].copy_from_slice(link);
        header.set_entry_type(kind);
        header.set_size(data.len() as u64);
        header.set_mode(if matches!(kind, tar::EntryType::Directory) {
            0o755
        } else {
            0o644
        });
        header.set_cksum();
        builder.append(&header, data).unwrap();
    }
    builder.into_inner().unwrap()
}

/// Every path under `dir`, links not followed, relative to it.
fn tree(dir: &Path) -> Vec<String> {
    let mut found = Vec::new();
    let mut pending = vec![dir.to_owned()];
    while let Some(at) = pending.pop() {
        for entry in std::fs::read_dir(&at).unwrap().flatten() {
            let path = entry.path();
            found.push(path.strip_prefix(dir).unwrap().display().to_string());
            if entry.file_type().unwrap().is_dir() {
                pending.push(path);
            }
        }
    }
    found.sort();
    found
}

/// A hostile host answers `--return` with archives that reach past the requested
/// name: nothing but the requested path ever appears, each job fails naming the host
/// and the member, and a well-formed archive is still taken.
#[test]
fn a_hostile_archive_writes_nothing_but_the_requested_path() {
    let host = FakeHost::new();
    let outside = Dir::new(); // where an escape would land
    let outside_abs = format!("{}/abs.txt", outside.path().display());
    let outside_link = outside.path().display().to_string();
    let cases: Vec<(&str, &str, Vec<Member<'_>>, &str)> = vec![
        (
            "an extra file",
            "out.txt",
            vec![
                Member::File(b"out.txt", b"ok\n"),
                Member::File(b"extra.txt", b"x\n"),
            ],
            "\"extra.txt\" was not asked for",
        ),
        (
            "a ../ name",
            "out.txt",
            vec![Member::File(b"../escape.txt", b"x\n")],
            "\"../escape.txt\" is not a plain relative name",
        ),
        (
            "an absolute name",
            "out.txt",
            vec![Member::File(outside_abs.as_bytes(), b"x\n")],
            "is not a plain relative name",
        ),
        (
            "the requested name as a link",
            "out.txt",
            vec![Member::Symlink(b"out.txt", outside_link.as_bytes())],
            "\"out.txt\" is a symbolic link",
        ),
        (
            "a link, then a file through it",
            "d",
            vec![
                Member::Dir(b"d/"),
                Member::Symlink(b"d/link", outside_link.as_bytes()),
                Member::File(b"d/link/pwned", b"x\n"),
            ],
            "\"d/link\" is a symbolic link",
        ),
        (
            "a file through a link made earlier",
            "d",
            vec![Member::Dir(b"d/"), Member::File(b"d/../../pwned", b"x\n")],
            "is not a plain relative name",
        ),
        (
            "the same name twice",
            "out.txt",
            vec![
                Member::File(b"out.txt", b"one\n"),
                Member::File(b"out.txt", b"two\n"),
            ],
            "\"out.txt\" comes twice",
        ),
        ("nothing at all", "out.txt", vec![], "it holds no out.txt"),
    ];
    for (what, wanted, members, said) in cases {
        let work = Dir::new();
        let crafted = host.dir.create("crafted.tar", archive(&members));
        let run = work
            .concur(["run", "--ssh", &host.ssh(), "-S", "fakehost", "--return"])
            .arg(wanted)
            .args(["true", ":::", "1"])
            .env("CONCUR_RSYNC", "0")
            .env("FAKE_ARCHIVE", &crafted)
            .run()
            .expect_code(1)
            .expect_stderr(&format!("cannot fetch {wanted} from fakehost"))
            .expect_stderr(said);
        assert_eq!(tree(work.path()), Vec::<String>::new(), "{what}\n{run}");
        assert_eq!(tree(outside.path()), Vec::<String>::new(), "{what}\n{run}");
        assert!(
            !host.dir.path().join("escape.txt").exists() && !host.dir.path().join("pwned").exists(),
            "{what}"
        );
    }

    // What was asked for, and only that, is taken: a file, and a directory merged into
    // one that is already here.
    let work = Dir::new();
    std::fs::create_dir(work.path().join("d")).unwrap();
    work.create("d/kept.txt", "mine\n");
    let good = host.dir.create(
        "good.tar",
        archive(&[
            Member::Dir(b"d/"),
            Member::Dir(b"d/sub/"),
            Member::File(b"d/sub/a.txt", b"a\n"),
            Member::File(b"./d/b.txt", b"b\n"),
        ]),
    );
    work.concur([
        "run",
        "--ssh",
        &host.ssh(),
        "-S",
        "fakehost",
        "--return",
        "d",
    ])
    .args(["true", ":::", "1"])
    .env("CONCUR_RSYNC", "0")
    .env("FAKE_ARCHIVE", &good)
    .run()
    .expect_success();
    assert_eq!(
        tree(work.path()),
        ["d", "d/b.txt", "d/kept.txt", "d/sub", "d/sub/a.txt"]
    );
    assert_eq!(
        std::fs::read_to_string(work.path().join("d/sub/a.txt")).unwrap(),
        "a\n"
    );
}

/// Without rsync, a file that cannot be sent, a --return file the job did not make and
/// a path with `..` each fail the job (255 in the joblog) naming the file and the host,
/// and the job does not run without its file. (`tests/ssh.rs` checks the same against
/// a real sshd, by rsync and by tar.)
#[test]
fn files_that_cannot_move_fail_their_job_by_tar_too() {
    let host = FakeHost::new();
    let work = Dir::new();
    let marker = work.path().join("ran");
    let run = work
        .concur([
            "run",
            "--joblog",
            "log",
            "--ssh",
            &host.ssh(),
            "-S",
            "fakehost",
        ])
        .args(["--transferfile", "{}"])
        .arg(format!("touch {}", marker.display()))
        .args([":::", "missing.txt"])
        .env("CONCUR_RSYNC", "0")
        .run()
        .expect_code(1)
        .expect_stderr("job 1: cannot send missing.txt to fakehost");
    assert!(!marker.exists(), "the job ran without its file\n{run}");
    let log = std::fs::read_to_string(work.path().join("log")).unwrap();
    assert_eq!(
        log.lines().nth(1).unwrap().split('\t').nth(6),
        Some("255"),
        "{log}"
    );

    work.concur([
        "run",
        "--ssh",
        &host.ssh(),
        "-S",
        "fakehost",
        "--return",
        "never-made.txt",
    ])
    .args(["true", ":::", "1"])
    .env("CONCUR_RSYNC", "0")
    .run()
    .expect_code(1)
    .expect_stderr("cannot fetch never-made.txt from fakehost");

    for flag in ["--transferfile", "--return"] {
        work.create("x", "x\n");
        work.concur(["run", "--ssh", &host.ssh(), "-S", "fakehost", flag, "../x"])
            .args(["true", ":::", "1"])
            .env("CONCUR_RSYNC", "0")
            .run()
            .expect_code(1)
            .expect_stderr("../x")
            .expect_stderr("a path with a .. component is refused");
    }

    // And a file that can move does, both ways.
    work.create("in.txt", "hello\n");
    work.concur(["run", "--ssh", &host.ssh(), "-S", "fakehost"])
        .args([
            "--transferfile",
            "{}",
            "--return",
            "{}.out",
            "wc -c < {} > {}.out",
            ":::",
        ])
        .arg("in.txt")
        .env("CONCUR_RSYNC", "0")
        .run()
        .expect_success();
    assert_eq!(
        std::fs::read_to_string(host.remote().join("in.txt")).unwrap(),
        "hello\n"
    );
    assert_eq!(
        std::fs::read_to_string(work.path().join("in.txt.out"))
            .unwrap()
            .trim(),
        "6"
    );
}
