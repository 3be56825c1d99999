//! Output held for later: in memory up to a limit, then in an unnamed temporary file.

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom, Write};

/// Bytes a [`Spool`] keeps in memory before it moves to a temporary file.
const DEFAULT_MEMORY_LIMIT: usize = 64 * 1024;

/// A write buffer that keeps memory bounded: the first `limit` bytes stay in memory,
/// the rest go to an unnamed temporary file (deleted by the OS when dropped). The job
/// runner collects each job's output in spools, so a job that prints gigabytes costs
/// disk, not RAM, while it waits its turn to be printed.
#[derive(Debug)]
pub struct Spool {
    memory: Vec<u8>,
    file: Option<File>,
    limit: usize,
    len: u64,
}

impl Default for Spool {
    fn default() -> Self {
        Self::with_limit(DEFAULT_MEMORY_LIMIT)
    }
}

impl Spool {
    /// A spool that keeps up to `limit` bytes in memory.
    pub fn with_limit(limit: usize) -> Self {
        Self {
            memory: Vec::new(),
            file: None,
            limit,
            len: 0,
        }
    }

    /// Bytes written so far.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Whether nothing was written.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Whether the spool moved to disk.
    pub fn spilled(&self) -> bool {
        self.file.is_some()
    }

    /// Writes everything spooled to `out`, in order.
    pub fn copy_to(&mut self, out: &mut dyn Write) -> io::Result<()> {
        out.write_all(&self.memory)?;
        if let Some(file) = &mut self.file {
            file.seek(SeekFrom::Start(0))?;
            let mut buf = vec![0; 64 * 1024];
            loop {
                match file.read(&mut buf) {
                    Ok(0) => break,
                    Ok(n) => out.write_all(&buf[..n])?,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => return Err(e),
                }
            }
        }
        Ok(())
    }

    /// The last `max` bytes, for error messages (reads back from disk if spilled).
    /// Only those bytes are read back: a job that printed gigabytes to stderr costs
    /// its error message `max` bytes of memory.
    pub fn tail(&mut self, max: usize) -> Vec<u8> {
        let in_memory =
            |memory: &[u8], max: usize| memory[memory.len().saturating_sub(max)..].to_vec();
        let Some(file) = &mut self.file else {
            return in_memory(&self.memory, max);
        };
        let on_disk = self.len - self.memory.len() as u64;
        let from_disk = on_disk.min(max as u64);
        let mut tail = in_memory(&self.memory, max - from_disk as usize);
        let mut read = Vec::new();
        let got = file
            .seek(SeekFrom::Start(on_disk - from_disk))
            .and_then(|_| file.take(from_disk).read_to_end(&mut read));
        if got.is_err() {
            return in_memory(&self.memory, max);
        }
        tail.extend_from_slice(&read);
        tail
    }
}

impl Write for Spool {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.file.is_none() && self.memory.len() + buf.len() > self.limit {
            self.file = Some(tempfile::tempfile()?);
        }
        match &mut self.file {
            Some(file) => file.write_all(buf)?,
            None => self.memory.extend_from_slice(buf),
        }
        self.len += buf.len() as u64;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_output_stays_in_memory_large_output_spills_and_round_trips() {
        let mut small = Spool::with_limit(16);
        small.write_all(b"hello").unwrap();
        assert!(!small.spilled());
        let mut out = Vec::new();
        small.copy_to(&mut out).unwrap();
        assert_eq!(out, b"hello");

        let mut big = Spool::with_limit(16);
        let data: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
        for chunk in data.chunks(7) {
            big.write_all(chunk).unwrap();
        }
        assert!(big.spilled());
        assert_eq!(big.len(), 100_000);
        let mut out = Vec::new();
        big.copy_to(&mut out).unwrap();
        assert_eq!(out, data);
        assert_eq!(big.tail(3), data[data.len() - 3..]);
        assert_eq!(big.tail(20), data[data.len() - 20..], "memory and disk");
        assert_eq!(big.tail(200_000), data, "more than there is");
    }
}
