//! Item 52: child processes, from a library user's program. Ten children that each
//! sleep 0.2 s run at once and finish together; a two-stage pipe runs like a shell's.
//!
//! `cargo run --example item52_child_processes`

use std::time::{Duration, Instant};

use concur::process::{Cmd, Pipeline, ProcessManager, ProcessResult};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let start = Instant::now();
    let mut manager = ProcessManager::new();
    for _ in 0..10 {
        manager.start(&Cmd::new("sleep").arg("0.2"))?;
    }
    let results = manager.wait_all(Some(Duration::from_secs(10)));
    let ok = results
        .iter()
        .filter(|r| matches!(r, ProcessResult::Finished(o) if o.status.success()))
        .count();
    println!(
        "10 children sleeping 0.2 s: {ok} ok, all done in {:.2} s",
        start.elapsed().as_secs_f64()
    );

    let out = Pipeline::new([Cmd::new("printf").arg("b\\na\\nc\\n"), Cmd::new("sort")]).run()?;
    print!("printf | sort: {}", String::from_utf8_lossy(&out.stdout));
    Ok(())
}
