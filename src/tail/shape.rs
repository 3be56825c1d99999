//! `-n`/`-c` on input that cannot be read from its end: pipes, standard input, FIFOs,
//! and files whose size reads 0 (`/proc/version`). Such input is read forward, keeping
//! only what `Start` asks for: the last N lines or bytes (in memory bounded by about
//! twice what is kept), or everything from line or byte K.

use super::source::Start;

/// What to do with input read forward.
#[derive(Debug)]
pub(crate) enum Shape {
    /// Pass everything on.
    Pass,
    /// Drop this many more lines, then pass the rest.
    SkipLines(u64),
    /// Drop this many more bytes, then pass the rest.
    SkipBytes(u64),
    /// Keep the last N lines until the end of input.
    KeepLines {
        n: u64,
        kept: Vec<u8>,
        trim_at: usize,
    },
    /// Keep the last N bytes until the end of input.
    KeepBytes { n: usize, kept: Vec<u8> },
}

/// Below this, kept input is not trimmed (trimming is a scan).
const TRIM_FLOOR: usize = 64 * 1024;

impl Shape {
    pub(crate) fn new(start: Start) -> Self {
        match start {
            Start::Beginning => Shape::Pass,
            Start::FromLine(k) => Shape::SkipLines(k.saturating_sub(1)),
            Start::FromByte(k) => Shape::SkipBytes(k.saturating_sub(1)),
            Start::LastLines(n) => Shape::KeepLines {
                n,
                kept: Vec::new(),
                trim_at: TRIM_FLOOR,
            },
            Start::LastBytes(n) => Shape::KeepBytes {
                n: usize::try_from(n).unwrap_or(usize::MAX),
                kept: Vec::new(),
            },
        }
    }

    /// Takes `data`, the next bytes of the input; returns what passes on now.
    pub(crate) fn push<'a>(&mut self, data: &'a [u8]) -> &'a [u8] {
        match self {
            Shape::Pass => data,
            Shape::SkipBytes(left) => {
                let skip = usize::try_from(*left).unwrap_or(usize::MAX).min(data.len());
                *left -= skip as u64;
                if *left == 0 {
                    *self = Shape::Pass;
                }
                &data[skip..]
            }
            Shape::SkipLines(left) => {
                if *left == 0 {
                    *self = Shape::Pass;
                    return data;
                }
                for (i, &b) in data.iter().enumerate() {
                    if b == b'\n' {
                        *left -= 1;
                        if *left == 0 {
                            *self = Shape::Pass;
                            return &data[i + 1..];
                        }
                    }
                }
                &[]
            }
            Shape::KeepBytes { n, kept } => {
                kept.extend_from_slice(data);
                if kept.len() > (*n).max(TRIM_FLOOR / 2) * 2 {
                    let cut = kept.len() - *n;
                    kept.drain(..cut);
                }
                &[]
            }
            Shape::KeepLines { n, kept, trim_at } => {
                kept.extend_from_slice(data);
                if kept.len() > *trim_at {
                    let cut = last_lines_start(kept, *n);
                    kept.drain(..cut);
                    *trim_at = (kept.len() * 2).max(TRIM_FLOOR);
                }
                &[]
            }
        }
    }

    /// The end of input: what was kept (the last N lines or bytes).
    pub(crate) fn finish(&mut self) -> Vec<u8> {
        match std::mem::replace(self, Shape::Pass) {
            Shape::KeepBytes { n, mut kept } => {
                let cut = kept.len().saturating_sub(n);
                kept.drain(..cut);
                kept
            }
            Shape::KeepLines { n, mut kept, .. } => {
                let cut = last_lines_start(&kept, n);
                kept.drain(..cut);
                kept
            }
            _ => Vec::new(),
        }
    }
}

/// Where the last `n` lines of `bytes` begin (0 if it has fewer). An unfinished last
/// line counts as a line; the newline that ends the last line does not start one.
pub(crate) fn last_lines_start(bytes: &[u8], n: u64) -> usize {
    if n == 0 {
        return bytes.len();
    }
    let mut need = n;
    for (i, &b) in bytes.iter().enumerate().rev() {
        if b == b'\n' && i + 1 != bytes.len() {
            need -= 1;
            if need == 0 {
                return i + 1;
            }
        }
    }
    0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shaped(start: Start, chunks: &[&[u8]]) -> Vec<u8> {
        let mut shape = Shape::new(start);
        let mut out = Vec::new();
        for chunk in chunks {
            out.extend_from_slice(shape.push(chunk));
        }
        out.extend(shape.finish());
        out
    }

    #[test]
    fn keeps_the_last_lines_across_chunks() {
        let seq: Vec<u8> = (1..=20)
            .map(|i| format!("{i}\n"))
            .collect::<String>()
            .into();
        let chunks: Vec<&[u8]> = seq.chunks(3).collect();
        assert_eq!(shaped(Start::LastLines(2), &chunks), b"19\n20\n");
        assert_eq!(shaped(Start::LastLines(0), &chunks), b"");
        assert_eq!(shaped(Start::LastLines(99), &chunks), seq);
        // An unfinished last line is a line.
        assert_eq!(shaped(Start::LastLines(2), &[b"a\nb\nc"]), b"b\nc");
    }

    #[test]
    fn keeps_the_last_bytes_and_skips_the_first() {
        assert_eq!(shaped(Start::LastBytes(3), &[b"12", b"3456"]), b"456");
        assert_eq!(shaped(Start::FromByte(3), &[b"12", b"3456"]), b"3456");
        assert_eq!(shaped(Start::FromLine(2), &[b"a\nb", b"\nc\n"]), b"b\nc\n");
        assert_eq!(shaped(Start::FromLine(1), &[b"a\n"]), b"a\n");
        assert_eq!(shaped(Start::Beginning, &[b"a", b"b"]), b"ab");
    }

    #[test]
    fn memory_stays_bounded_on_endless_input() {
        let mut shape = Shape::new(Start::LastBytes(4096));
        let zeros = vec![0u8; 64 * 1024];
        for _ in 0..1000 {
            let _ = shape.push(&zeros);
            let Shape::KeepBytes { kept, .. } = &shape else {
                panic!("still keeping")
            };
            assert!(kept.len() <= 2 * TRIM_FLOOR + zeros.len());
        }
        assert_eq!(shape.finish().len(), 4096);
        let mut shape = Shape::new(Start::LastLines(2));
        let lines = b"line\n".repeat(20_000);
        for _ in 0..200 {
            let _ = shape.push(&lines);
            let Shape::KeepLines { kept, .. } = &shape else {
                panic!("still keeping")
            };
            assert!(kept.len() <= 2 * TRIM_FLOOR + lines.len());
        }
        assert_eq!(shape.finish(), b"line\nline\n");
    }
}
