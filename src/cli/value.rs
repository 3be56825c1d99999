//! Parsers for argument values, shared by every command so that durations, sizes and
//! coordinates are written the same way everywhere.

use std::num::NonZeroUsize;
use std::time::Duration;

/// A duration: a bare number is seconds, as GNU tools take it (`1`, `0.1`), or a
/// number with a unit (`100ms`, `1.5s`, `2m`).
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let value: f64 = number
        .parse()
        .map_err(|_| format!("{text:?} does not start with a number (try 1, 100ms, 1.5s or 2m)"))?;
    let scale = match unit.trim() {
        "" | "s" => 1.0,
        "ns" => 1e-9,
        "us" | "µs" => 1e-6,
        "ms" => 1e-3,
        "m" | "min" => 60.0,
        "h" => 3600.0,
        other => {
            return Err(format!(
                "unknown unit {other:?} in {text:?}; use ns, us, ms, s (or none), m or h"
            ));
        }
    };
    Duration::try_from_secs_f64(value * scale).map_err(|_| format!("{text:?} is too long"))
}

/// A duration option where 0 means "off".
pub fn off_if_zero(d: Duration) -> Option<Duration> {
    (!d.is_zero()).then_some(d)
}

/// Parses a grid size `HxW`, both at least 1.
pub fn parse_size(text: &str) -> Result<(usize, usize), String> {
    let (h, w) = text
        .split_once(['x', 'X'])
        .ok_or_else(|| format!("{text:?} is not HEIGHTxWIDTH, as in 5x9"))?;
    let parse = |part: &str, what: &str| -> Result<usize, String> {
        let n: usize = part
            .trim()
            .parse()
            .map_err(|_| format!("{what} {part:?} in {text:?} is not a whole number"))?;
        if n == 0 {
            return Err(format!("{what} must be at least 1 in {text:?}"));
        }
        Ok(n)
    };
    Ok((parse(h, "height")?, parse(w, "width")?))
}

/// Parses a cell position `Y,X`.
pub fn parse_position(text: &str) -> Result<(usize, usize), String> {
    let (y, x) = text
        .split_once(',')
        .ok_or_else(|| format!("{text:?} is not Y,X, as in 2,3"))?;
    let parse = |part: &str| -> Result<usize, String> {
        part.trim()
            .parse()
            .map_err(|_| format!("{part:?} in {text:?} is not a row or column number (0 or more)"))
    };
    Ok((parse(y)?, parse(x)?))
}

/// Parses a probability between 0 and 1.
pub fn parse_density(text: &str) -> Result<f64, String> {
    let p: f64 = text
        .trim()
        .parse()
        .map_err(|_| format!("{text:?} is not a number between 0 and 1"))?;
    if (0.0..=1.0).contains(&p) {
        Ok(p)
    } else {
        Err(format!("{text} is outside 0..=1"))
    }
}

/// Parses a number of seconds above 0 and at most a day.
pub fn parse_seconds(text: &str) -> Result<f64, String> {
    let s: f64 = text
        .trim()
        .parse()
        .map_err(|_| format!("{text:?} is not a number of seconds"))?;
    if s > 0.0 && s <= 86_400.0 {
        Ok(s)
    } else {
        Err(format!(
            "{text} is not between 0 (exclusive) and 86400 seconds"
        ))
    }
}

/// Parses a count that must be at least 1.
pub fn parse_positive(text: &str) -> Result<NonZeroUsize, String> {
    let n: usize = text
        .trim()
        .parse()
        .map_err(|_| format!("{text:?} is not a whole number"))?;
    NonZeroUsize::new(n).ok_or_else(|| "must be at least 1".to_owned())
}

/// A value past `max` for an option: the error every bounded option gives.
pub fn too_large(shown: impl std::fmt::Display, max: impl std::fmt::Display) -> String {
    format!("{shown} is more than {max}, the most concur takes here")
}

/// Refuses `count` threads (asked for by `what`, as in `--count 20000`) when the OS
/// would not give them: past the thread budget, Rust aborts the whole process.
pub fn ensure_threads(what: &str, count: usize) -> Result<(), super::UsageError> {
    crate::limits::ensure_threads(count, crate::limits::DEFAULT_STACK)
        .map_err(|e| super::UsageError(format!("{what}: {e}")))
}

/// Parses a count from 1 to `max`.
pub fn parse_positive_max(text: &str, max: usize) -> Result<NonZeroUsize, String> {
    let n = parse_positive(text)?;
    if n.get() > max {
        return Err(too_large(n, max));
    }
    Ok(n)
}

/// Parses a whole number from 0 to `max`.
pub fn parse_count_max(text: &str, max: u64) -> Result<u64, String> {
    let n: u64 = text
        .trim()
        .parse()
        .map_err(|_| format!("{text:?} is not a whole number"))?;
    if n > max {
        return Err(too_large(n, max));
    }
    Ok(n)
}

/// Parses a byte count (as [`parse_bytes`]) of at most `max` bytes.
pub fn parse_bytes_max(text: &str, max: u64) -> Result<u64, String> {
    let n = parse_bytes(text)?;
    if n > max {
        return Err(too_large(
            crate::limits::format_bytes(n),
            crate::limits::format_bytes(max),
        ));
    }
    Ok(n)
}

/// Parses a byte count: `4096`, `64K` / `64KiB` (×1024), `1M` / `1MiB`, `1G` / `1GiB`,
/// and `KB`, `MB`, `GB` for powers of 1000.
pub fn parse_bytes(text: &str) -> Result<u64, String> {
    let t = text.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (digits, unit) = t.split_at(split);
    let n: u64 = digits
        .parse()
        .map_err(|_| format!("{text:?} is not a byte count, as in 4096, 64K or 1M"))?;
    let scale: u64 = match unit.trim() {
        "" | "B" | "b" => 1,
        "k" | "K" | "KiB" => 1 << 10,
        "M" | "MiB" => 1 << 20,
        "G" | "GiB" => 1 << 30,
        "KB" | "kB" => 1_000,
        "MB" => 1_000_000,
        "GB" => 1_000_000_000,
        other => {
            return Err(format!(
                "unknown unit {other:?} in {text:?} (K, M, G, KB, MB, GB)"
            ));
        }
    };
    n.checked_mul(scale)
        .ok_or_else(|| format!("{text:?} is too large"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seconds() {
        assert_eq!(parse_seconds("2"), Ok(2.0));
        assert_eq!(parse_seconds("0.05"), Ok(0.05));
        for bad in ["0", "-1", "NaN", "inf", "1e9", "two"] {
            assert!(parse_seconds(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("100ms"), Ok(Duration::from_millis(100)));
        assert_eq!(parse_duration("1.5s"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_duration("2s"), Ok(Duration::from_secs(2)));
        assert_eq!(parse_duration("250us"), Ok(Duration::from_micros(250)));
        assert_eq!(parse_duration("0"), Ok(Duration::ZERO));
        assert_eq!(parse_duration("1m"), Ok(Duration::from_secs(60)));
        // A bare number is seconds, as GNU tools take it.
        assert_eq!(parse_duration("100"), Ok(Duration::from_secs(100)));
        assert_eq!(parse_duration(".1"), Ok(Duration::from_millis(100)));
        assert!(
            parse_duration("10 parsecs")
                .unwrap_err()
                .contains("unknown unit")
        );
        assert!(
            parse_duration("ms")
                .unwrap_err()
                .contains("does not start with a number")
        );
        assert!(parse_duration("1e400s").is_err());
    }

    #[test]
    fn sizes_and_positions() {
        assert_eq!(parse_size("5x9"), Ok((5, 9)));
        assert_eq!(parse_size("1X1"), Ok((1, 1)));
        assert!(
            parse_size("0x5")
                .unwrap_err()
                .contains("height must be at least 1")
        );
        assert!(parse_size("5").unwrap_err().contains("HEIGHTxWIDTH"));
        assert!(
            parse_size("5x-1")
                .unwrap_err()
                .contains("not a whole number")
        );
        assert_eq!(parse_position("2,3"), Ok((2, 3)));
        assert!(parse_position("2;3").is_err());
        assert!(parse_position("-1,3").is_err());
    }

    #[test]
    fn densities_and_counts() {
        assert_eq!(parse_density("0.25"), Ok(0.25));
        assert!(parse_density("1.5").is_err());
        assert!(parse_density("NaN").is_err());
        assert_eq!(parse_positive("3").map(NonZeroUsize::get), Ok(3));
        assert_eq!(parse_positive("0"), Err("must be at least 1".to_owned()));
    }

    #[test]
    fn byte_counts_take_binary_and_decimal_units() {
        assert_eq!(parse_bytes("4096"), Ok(4096));
        assert_eq!(parse_bytes("64K"), Ok(65_536));
        assert_eq!(parse_bytes("1MiB"), Ok(1_048_576));
        assert_eq!(parse_bytes("2MB"), Ok(2_000_000));
        assert!(parse_bytes("1Q").unwrap_err().contains("unknown unit"));
        assert!(parse_bytes("lots").is_err());
    }
}

/// Parses a generation count: a whole number, or a power of two as `2^k` (k at most 63).
pub fn parse_generations(text: &str) -> Result<u64, String> {
    let text = text.trim();
    if let Some(exponent) = text.strip_prefix("2^") {
        let k: u32 = exponent
            .parse()
            .map_err(|_| format!("2^{exponent}: the exponent must be a whole number"))?;
        return 1u64
            .checked_shl(k)
            .filter(|_| k < 64)
            .ok_or_else(|| format!("2^{k} is more than 2^64 - 1 generations; the most is 2^63"));
    }
    text.parse()
        .map_err(|_| format!("{text:?} is not a whole number (or 2^k)"))
}

#[cfg(test)]
mod generation_tests {
    use super::parse_generations;

    #[test]
    fn counts_and_powers_of_two() {
        assert_eq!(parse_generations("2^30"), Ok(1 << 30));
        assert_eq!(parse_generations("2^0"), Ok(1));
        assert_eq!(parse_generations("18446744073709551615"), Ok(u64::MAX));
        assert!(parse_generations("2^64").is_err());
        assert!(parse_generations("2^x").is_err());
        assert!(parse_generations("-1").is_err());
    }
}
