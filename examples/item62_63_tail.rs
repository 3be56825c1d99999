//! Items 62 and 63: following several growing files into one merged output, with
//! concur's one-thread inotify design (the book's threads and asyncio designs are
//! `Mode::Threads`, `Mode::Mixed` and `Mode::Async`).
//!
//! `cargo run --example item62_63_tail`

use std::sync::Arc;
use std::time::Duration;

use concur::process::CancelToken;
use concur::tail::{self, TailOptions, writer::Output};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = std::env::temp_dir().join(format!("concur-example-tail-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let files = [dir.join("a.log"), dir.join("b.log")];
    std::fs::write(&files[0], "a1\na2\n")?;
    std::fs::write(&files[1], "b1\n")?;
    let merged = dir.join("merged.log");
    let options = TailOptions {
        prefix: true,
        idle_exit: Some(Duration::from_millis(300)),
        ..TailOptions::default()
    };
    let log: tail::Log = Arc::new(|line| eprintln!("tail: {line}"));
    let summary = tail::run(
        &files,
        &options,
        Output::open(Some(&merged), false)?,
        log,
        &CancelToken::new()?,
    )?;
    print!("{}", std::fs::read_to_string(&merged)?);
    println!("{} files, {} bytes merged", summary.files, summary.bytes);
    std::fs::remove_dir_all(&dir)?;
    Ok(())
}
