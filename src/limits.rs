//! How many more threads the OS will let this process start, before it says no in a way
//! that cannot be handled.
//!
//! `pthread_create` fails cleanly (`EAGAIN`) when the kernel runs out of tasks or the
//! stack cannot be mapped, and concur reports that. But each new Rust thread also maps an
//! alternate signal stack *from inside the new thread*, and if that `mmap` fails the
//! process aborts. Two limits make that happen long before the task limits do:
//!
//! * `vm.max_map_count` (65,530 by default): every thread takes about 4 memory maps
//!   (stack, its guard page, the signal stack and its guard), so about 16,000 threads;
//! * the address-space limit (`ulimit -v`), when one is set.
//!
//! [`thread_budget`] reads both from `/proc` so a strategy that starts threads on demand
//! can stop at the budget with a clear error. Elsewhere than Linux it returns `None`.
//!
//! Memory is the other limit a run can hit only after a long start: [`memory_budget`]
//! says how much more this process can use (the kernel's `MemAvailable`, a cgroup's
//! limit, `ulimit -v`), so that a run estimated to need more is refused before it
//! starts instead of aborting half-way.

use std::fs;

/// Memory maps a Rust thread adds (measured: 15,001 threads, 60,066 maps).
pub const MAPS_PER_THREAD: usize = 4;

/// Maps kept in reserve for everything else the process maps meanwhile.
const MAP_RESERVE: usize = 512;

/// Address space glibc's allocator may reserve per arena (64 MiB on 64-bit systems).
const ARENA_SIZE: u64 = 64 << 20;

/// Address space kept in reserve for the allocator's arenas, which glibc creates on
/// demand for new threads, up to 8 per core, plus 64 MiB for everything else (bytes).
/// Measured: 5,000 threads with 128 KiB stacks took 1.71 GB of address space, 1 GiB of
/// it arenas.
fn address_reserve() -> u64 {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get()) as u64;
    8 * cores * ARENA_SIZE + (64 << 20)
}

/// Signal stack and guard pages per thread, beyond its own stack (bytes, generous).
const THREAD_OVERHEAD: u64 = 64 << 10;

/// How many more threads can safely start, and which limit says so.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ThreadBudget {
    /// Threads that can still start.
    pub threads: usize,
    /// The limit that sets the budget, in words.
    pub limit: String,
}

fn read_number(path: &str) -> Option<u64> {
    fs::read_to_string(path).ok()?.trim().parse().ok()
}

fn map_budget() -> Option<ThreadBudget> {
    let max = usize::try_from(read_number("/proc/sys/vm/max_map_count")?).ok()?;
    let used = fs::read_to_string("/proc/self/maps").ok()?.lines().count();
    Some(ThreadBudget {
        threads: max.saturating_sub(used + MAP_RESERVE) / MAPS_PER_THREAD,
        limit: format!(
            "vm.max_map_count is {max} and each thread takes {MAPS_PER_THREAD} memory maps"
        ),
    })
}

/// The soft `ulimit -v`, in bytes, or `None` when there is none.
fn address_space_limit() -> Option<u64> {
    let limits = fs::read_to_string("/proc/self/limits").ok()?;
    // "Max address space   <soft>   <hard>   bytes"; the soft limit applies.
    limits
        .lines()
        .find_map(|l| l.strip_prefix("Max address space"))?
        .split_whitespace()
        .next()?
        .parse()
        .ok() // "unlimited" does not parse: no limit
}

/// Address space left under `ulimit -v`, or `None` when there is no such limit.
fn address_space_free() -> Option<u64> {
    let limit = address_space_limit()?;
    let vm_kib = status_kib("VmSize:")?;
    Some(limit.saturating_sub(vm_kib * 1024))
}

fn status_kib(field: &str) -> Option<u64> {
    fs::read_to_string("/proc/self/status")
        .ok()?
        .lines()
        .find_map(|l| l.strip_prefix(field))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

fn address_budget(stack_size: usize) -> Option<ThreadBudget> {
    let limit = address_space_limit()?;
    let free = limit.saturating_sub(status_kib("VmSize:")? * 1024);
    let per_thread = stack_size as u64 + THREAD_OVERHEAD;
    Some(ThreadBudget {
        threads: usize::try_from(free.saturating_sub(address_reserve()) / per_thread)
            .unwrap_or(usize::MAX),
        limit: format!("the address-space limit (ulimit -v) is {} MiB", limit >> 20),
    })
}

/// The number of threads with `stack_size`-byte stacks that can still start, under the
/// tightest limit that can abort the process; `None` if no such limit is known.
pub fn thread_budget(stack_size: usize) -> Option<ThreadBudget> {
    [map_budget(), address_budget(stack_size)]
        .into_iter()
        .flatten()
        .min_by_key(|b| b.threads)
}

/// How many more things that each hold `per_item` descriptors this process can open,
/// under its soft `ulimit -n` less the descriptors open now and 64 kept in reserve.
pub fn descriptor_budget(per_item: usize) -> Option<ThreadBudget> {
    descriptor_budget_keeping(per_item, 64)
}

/// [`descriptor_budget`], keeping `reserve` descriptors instead of 64.
pub fn descriptor_budget_keeping(per_item: usize, reserve: u64) -> Option<ThreadBudget> {
    let limit = rustix::process::getrlimit(rustix::process::Resource::Nofile).current?;
    let open = fs::read_dir("/proc/self/fd").ok()?.count() as u64;
    let free = limit.saturating_sub(open + reserve);
    Some(ThreadBudget {
        threads: usize::try_from(free / per_item.max(1) as u64).unwrap_or(usize::MAX),
        limit: format!(
            "the descriptor limit (ulimit -n) is {limit}, {open} are open, and each takes {per_item}"
        ),
    })
}

/// How many workers can start, each a thread with a `stack_size`-byte stack holding
/// `descriptors` descriptors: the tightest of the thread and descriptor budgets.
pub fn worker_budget(stack_size: usize, descriptors: usize) -> Option<ThreadBudget> {
    let descriptors = (descriptors > 0)
        .then(|| descriptor_budget(descriptors))
        .flatten();
    [thread_budget(stack_size), descriptors]
        .into_iter()
        .flatten()
        .min_by_key(|b| b.threads)
}

/// Rust's default stack for spawned threads (unless `RUST_MIN_STACK` says otherwise).
pub const DEFAULT_STACK: usize = 2 << 20;

/// Fails, saying which limit, if `count` more threads with `stack_size`-byte stacks
/// would exceed the budget.
pub fn ensure_threads(count: usize, stack_size: usize) -> std::io::Result<()> {
    match thread_budget(stack_size) {
        Some(budget) if count > budget.threads => Err(std::io::Error::other(format!(
            "{count} threads asked for, but the OS allows about {} more here ({})",
            budget.threads, budget.limit
        ))),
        _ => Ok(()),
    }
}

/// How much more memory this process can use, and which limit says so.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MemoryBudget {
    /// Bytes still available.
    pub bytes: u64,
    /// The limit that sets the budget, in words.
    pub limit: String,
}

/// Values at or above this mean "no limit" in cgroup files (v1 writes 2^63 rounded
/// down to a page).
const NO_LIMIT: u64 = 1 << 62;

fn meminfo_budget() -> Option<MemoryBudget> {
    let meminfo = fs::read_to_string("/proc/meminfo").ok()?;
    let kib: u64 = meminfo
        .lines()
        .find_map(|l| l.strip_prefix("MemAvailable:"))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()?;
    Some(MemoryBudget {
        bytes: kib * 1024,
        limit: "MemAvailable in /proc/meminfo".to_owned(),
    })
}

fn cgroup_budget() -> Option<MemoryBudget> {
    // cgroup v2, then v1, as seen from inside this process's cgroup namespace.
    for (max, current) in [
        ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory.current"),
        (
            "/sys/fs/cgroup/memory/memory.limit_in_bytes",
            "/sys/fs/cgroup/memory/memory.usage_in_bytes",
        ),
    ] {
        // "max" (v2's "no limit") does not parse, which is right.
        let Some(limit) = read_number(max).filter(|&l| l < NO_LIMIT) else {
            continue;
        };
        let used = read_number(current).unwrap_or(0);
        return Some(MemoryBudget {
            bytes: limit.saturating_sub(used),
            limit: format!("the cgroup's memory limit ({max})"),
        });
    }
    None
}

fn address_space_budget() -> Option<MemoryBudget> {
    let free = address_space_free()?;
    Some(MemoryBudget {
        bytes: free,
        limit: "the address-space limit (ulimit -v)".to_owned(),
    })
}

/// How much more memory this process can use: the least of the kernel's estimate of
/// available memory, the cgroup's limit, and the address-space limit. `None` where
/// none is known (not Linux).
pub fn memory_budget() -> Option<MemoryBudget> {
    [meminfo_budget(), cgroup_budget(), address_space_budget()]
        .into_iter()
        .flatten()
        .min_by_key(|b| b.bytes)
}

/// Raises this process's soft limit on open files to its hard limit (servers and load
/// generators need thousands of sockets); returns the limit now in force.
pub fn raise_fd_limit() -> std::io::Result<u64> {
    use rustix::process::{Resource, getrlimit, setrlimit};
    let limit = getrlimit(Resource::Nofile);
    if let (Some(current), Some(maximum)) = (limit.current, limit.maximum)
        && current < maximum
    {
        setrlimit(
            Resource::Nofile,
            rustix::process::Rlimit {
                current: Some(maximum),
                maximum: Some(maximum),
            },
        )?;
        return Ok(maximum);
    }
    Ok(limit.current.unwrap_or(u64::MAX))
}

/// Reads the whole of `path`, but at most `max` bytes: a file past them (or a device
/// that never ends, as `/dev/zero`) is an error naming the file and the limit, after
/// reading `max + 1` bytes at most. `what` names the kind of file in the error
/// (`a --slf file`); the caller names the file itself.
pub fn read_bounded(path: &std::path::Path, max: u64, what: &str) -> std::io::Result<Vec<u8>> {
    use std::io::Read;
    let file = fs::File::open(path)?;
    let mut bytes = Vec::new();
    file.take(max.saturating_add(1)).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > max {
        return Err(std::io::Error::new(
            std::io::ErrorKind::FileTooLarge,
            format!(
                "larger than {}, the most concur reads of {what}",
                format_bytes(max)
            ),
        ));
    }
    Ok(bytes)
}

/// A byte count the way concur prints limits: `4096 bytes`, `64 KiB`, `1 MiB`, `1.5 GiB`.
pub fn format_bytes(n: u64) -> String {
    const UNITS: [(&str, u64); 3] = [("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)];
    for (unit, size) in UNITS {
        if n >= size {
            return if n.is_multiple_of(size) {
                format!("{} {unit}", n / size)
            } else {
                format!("{:.1} {unit}", n as f64 / size as f64)
            };
        }
    }
    format!("{n} bytes")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[cfg(target_os = "linux")]
    fn the_map_limit_gives_a_positive_budget_here() {
        let budget = thread_budget(128 * 1024).expect("Linux has /proc/sys/vm/max_map_count");
        assert!(budget.threads > 0, "{budget:?}");
        assert!(budget.limit.contains("max_map_count") || budget.limit.contains("ulimit -v"));
        let err = ensure_threads(budget.threads + 1000, 128 * 1024).unwrap_err();
        assert!(err.to_string().contains("but the OS allows about"), "{err}");
        assert!(ensure_threads(1, 128 * 1024).is_ok());
    }

    #[test]
    fn bounded_reads_stop_at_the_limit_even_on_an_endless_device() {
        let err =
            read_bounded(std::path::Path::new("/dev/zero"), 1 << 20, "a state file").unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::FileTooLarge);
        assert_eq!(
            err.to_string(),
            "larger than 1 MiB, the most concur reads of a state file"
        );
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        std::fs::write(&path, b"12345").unwrap();
        assert_eq!(read_bounded(&path, 5, "f").unwrap(), b"12345");
        assert!(read_bounded(&path, 4, "f").is_err());
    }

    #[test]
    fn byte_counts_read_as_written_in_the_docs() {
        assert_eq!(format_bytes(4096), "4 KiB");
        assert_eq!(format_bytes(1 << 20), "1 MiB");
        assert_eq!(format_bytes(1536 << 20), "1.5 GiB");
        assert_eq!(format_bytes(100), "100 bytes");
    }

    #[test]
    #[cfg(target_os = "linux")]
    fn linux_always_knows_how_much_memory_is_available() {
        let budget = memory_budget().expect("Linux has /proc/meminfo");
        assert!(budget.bytes > 0, "{budget:?}");
    }
}
