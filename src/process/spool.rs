//! Output held for later: in memory up to a limit, then in an unnamed temporary file;
//! or, with a [`Codec`], compressed into that file from the first byte.

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::PathBuf;
use std::process::{ChildStdin, Command, Stdio};
use std::sync::Arc;

use super::compress::{Codec, CodecError, Side, failure};

/// Bytes a [`Spool`] keeps in memory before it moves to a temporary file.
const DEFAULT_MEMORY_LIMIT: usize = 64 * 1024;

/// A write buffer that keeps memory bounded: the first `limit` bytes stay in memory,
/// the rest go to an unnamed temporary file (deleted by the OS when dropped). The job
/// runner collects each job's output in spools, so a job that prints gigabytes costs
/// disk, not RAM, while it waits its turn to be printed.
///
/// A spool made [`compressed`](Spool::compressed) keeps nothing in memory: its first
/// write starts the codec's compressor, writing to the temporary file, and the bytes
/// are decompressed again as they are copied out.
#[derive(Debug)]
pub struct Spool {
    memory: Vec<u8>,
    file: Option<File>,
    limit: usize,
    len: u64,
    compressing: Option<Compressing>,
    /// Parked in a [`Backlog`]: the file and where its bytes start there (the spool
    /// then holds neither memory nor a descriptor of its own).
    parked: Option<(Arc<File>, u64)>,
}

/// One unnamed temporary file that many finished spools are parked in while they wait
/// their turn (`concur run -k` behind a slow job): each waiting job then costs neither
/// memory for its output nor a descriptor, however many wait. Parked bytes are read
/// back at their place with `pread`; [`Backlog::reset`] empties the file once nothing
/// parked is left.
#[derive(Debug)]
pub struct Backlog {
    dir: PathBuf,
    file: Option<Arc<File>>,
    end: u64,
}

impl Backlog {
    /// A backlog whose file will be made in `dir` when first needed.
    pub fn new(dir: PathBuf) -> Self {
        Self {
            dir,
            file: None,
            end: 0,
        }
    }

    /// Bytes parked since the last reset.
    pub fn len(&self) -> u64 {
        self.end
    }

    /// Whether nothing was parked since the last reset.
    pub fn is_empty(&self) -> bool {
        self.end == 0
    }

    /// Empties the file. Call it only when no parked spool is left to read.
    pub fn reset(&mut self) -> io::Result<()> {
        if let Some(file) = &self.file
            && self.end > 0
        {
            file.set_len(0)?;
        }
        self.end = 0;
        Ok(())
    }

    fn file(&mut self) -> io::Result<Arc<File>> {
        if let Some(file) = &self.file {
            return Ok(Arc::clone(file));
        }
        let file = Arc::new(tempfile::tempfile_in(&self.dir)?);
        self.file = Some(Arc::clone(&file));
        Ok(file)
    }
}

/// Appends to a backlog's file at its end, with `pwrite`.
struct Appender<'a> {
    file: &'a File,
    at: &'a mut u64,
}

impl Write for Appender<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        use std::os::unix::fs::FileExt;
        let n = self.file.write_at(buf, *self.at)?;
        *self.at += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// A spool's compressor and what became of it.
#[derive(Debug)]
struct Compressing {
    codec: Arc<Codec>,
    /// Where its temporary file goes.
    dir: PathBuf,
    /// Running: its stdin (`None` once closed) and the process.
    child: Option<(Option<ChildStdin>, std::process::Child)>,
    /// Set once it failed (to start, to take input, or by its exit status).
    failed: Option<CodecError>,
}

impl Drop for Compressing {
    fn drop(&mut self) {
        if let Some((stdin, mut child)) = self.child.take() {
            drop(stdin);
            let _ = child.wait();
        }
    }
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
            compressing: None,
            parked: None,
        }
    }

    /// A spool whose bytes go through `codec`'s compressor into a temporary file in
    /// `dir`, started by the first write (an empty spool starts nothing).
    pub fn compressed(codec: Arc<Codec>, dir: PathBuf) -> Self {
        Self {
            compressing: Some(Compressing {
                codec,
                dir,
                child: None,
                failed: None,
            }),
            ..Self::with_limit(0)
        }
    }

    /// Ends the compressor, if one runs: closes its input and waits for it. Its
    /// failure is returned now and by every later call: what the job printed is then
    /// lost, or partly. Without a codec, always `Ok`.
    pub fn finish(&mut self) -> Result<(), CodecError> {
        let Some(c) = &mut self.compressing else {
            return Ok(());
        };
        if let Some((stdin, mut child)) = c.child.take() {
            drop(stdin);
            let how = match child.wait() {
                Ok(status) => failure(status),
                Err(err) => Some(format!("could not be waited for: {err}")),
            };
            if let Some(how) = how
                && c.failed.is_none()
            {
                c.failed = Some(CodecError::new(Side::Compress, &c.codec.compress, how));
            }
        }
        c.failed.clone().map_or(Ok(()), Err)
    }

    /// Bytes written so far.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Whether nothing was written.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Whether the spool moved to disk (a file of its own, or a [`Backlog`]).
    pub fn spilled(&self) -> bool {
        self.file.is_some() || self.parked.is_some()
    }

    /// Bytes held in memory.
    pub fn in_memory(&self) -> usize {
        self.memory.len()
    }

    /// Whether the spool holds a descriptor of its own (it spilled, or compresses).
    pub fn holds_file(&self) -> bool {
        self.file.is_some()
    }

    /// Moves what the spool holds (memory and its own file) to the end of `backlog`,
    /// freeing both; its bytes read back the same afterwards. A compressing spool
    /// stays as it is (its file is the compressor's output), and so does an empty
    /// or already parked one.
    pub fn park(&mut self, backlog: &mut Backlog) -> io::Result<()> {
        if self.compressing.is_some() || self.parked.is_some() || self.len == 0 {
            return Ok(());
        }
        let file = backlog.file()?;
        let start = backlog.end;
        let mut at = start;
        let copied = self.copy_stored_to(&mut Appender {
            file: &file,
            at: &mut at,
        });
        // On an error the backlog's end stays where it was (a partial copy is
        // overwritten by the next), and this spool keeps its own bytes.
        copied?;
        backlog.end = at;
        self.memory = Vec::new();
        self.file = None;
        self.parked = Some((file, start));
        Ok(())
    }

    /// Writes everything spooled to `out`, in order (decompressed, if compressed).
    ///
    /// A decompressor that fails is an error carrying a [`CodecError`] (see
    /// [`CodecError::within`]); what it wrote before failing has been written to
    /// `out`. A compressor that failed (see [`finish`](Spool::finish)) is not an
    /// error here: what it stored is decompressed all the same.
    pub fn copy_to(&mut self, out: &mut dyn Write) -> io::Result<()> {
        if self.compressing.is_some() {
            return self.decompress_to(out);
        }
        self.copy_stored_to(out)
    }

    /// Writes the bytes as stored to `out`: compressed, if the spool compresses
    /// (`--files` and `--results` keep them so, as GNU parallel does). The compressor
    /// is finished first; if it failed, what it stored is copied all the same.
    pub fn copy_stored_to(&mut self, out: &mut dyn Write) -> io::Result<()> {
        let _ = self.finish();
        if let Some((file, start)) = &self.parked {
            return copy_range(file, *start, self.len, out);
        }
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

    /// Runs the decompressor over the stored file, its output to `out`.
    fn decompress_to(&mut self, out: &mut dyn Write) -> io::Result<()> {
        let _ = self.finish();
        let (Some(file), Some(c)) = (&mut self.file, &self.compressing) else {
            return Ok(()); // nothing was written
        };
        let program = &c.codec.decompress;
        let failed =
            |how: String| io::Error::other(CodecError::new(Side::Decompress, program, how));
        file.seek(SeekFrom::Start(0))?;
        let mut child = Command::new("/bin/sh")
            .args(["-c", program])
            .stdin(file.try_clone()?)
            .stdout(Stdio::piped())
            .spawn()
            .map_err(|err| failed(format!("could not start: {err}")))?;
        let copied = match child.stdout.take() {
            Some(mut from) => io::copy(&mut from, out).map(drop),
            None => Ok(()),
        };
        if copied.is_err() {
            // The output is closed: the decompressor's work is not wanted.
            let _ = child.kill();
        }
        let status = child.wait();
        copied?;
        match failure(status?) {
            Some(how) => Err(failed(how)),
            None => Ok(()),
        }
    }

    /// The last `max` bytes, for error messages (reads back from disk if spilled).
    /// Only those bytes are read back: a job that printed gigabytes to stderr costs
    /// its error message `max` bytes of memory (a compressed spool is decompressed
    /// through, keeping the last `max`).
    pub fn tail(&mut self, max: usize) -> Vec<u8> {
        if self.compressing.is_some() {
            let mut last = Last {
                max,
                bytes: Vec::new(),
            };
            let _ = self.decompress_to(&mut last);
            let from = last.bytes.len().saturating_sub(max);
            return last.bytes.split_off(from);
        }
        if let Some((file, start)) = &self.parked {
            let from = self.len.saturating_sub(max as u64);
            let mut tail = Vec::new();
            let _ = copy_range(file, start + from, self.len - from, &mut tail);
            return tail;
        }
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

/// Copies `len` bytes of `file` from `start` to `out`, with `pread` (the file is shared).
fn copy_range(file: &File, start: u64, len: u64, out: &mut dyn Write) -> io::Result<()> {
    use std::os::unix::fs::FileExt;
    let mut buf = vec![0; (64 * 1024).min(len as usize)];
    let (mut at, end) = (start, start + len);
    while at < end {
        let want = buf.len().min((end - at) as usize);
        match file.read_at(&mut buf[..want], at) {
            Ok(0) => {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "a parked output is shorter than it was",
                ));
            }
            Ok(n) => {
                out.write_all(&buf[..n])?;
                at += n as u64;
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Keeps the last `max` bytes written to it.
struct Last {
    max: usize,
    bytes: Vec<u8>,
}

impl Write for Last {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.bytes.extend_from_slice(buf);
        if self.bytes.len() > 2 * self.max.max(4096) {
            self.bytes.drain(..self.bytes.len() - self.max);
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Spool {
    /// A write to a compressing spool. A compressor that cannot start or stops
    /// taking input is recorded (see [`finish`](Spool::finish)), and the bytes are
    /// dropped: the job is not stopped for it.
    fn compress(&mut self, buf: &[u8]) -> io::Result<()> {
        let Some(c) = &mut self.compressing else {
            return Ok(());
        };
        if c.failed.is_some() {
            return Ok(());
        }
        if self.file.is_none() {
            let file = tempfile::tempfile_in(&c.dir)?;
            let spawned = Command::new("/bin/sh")
                .args(["-c", &c.codec.compress])
                .stdin(Stdio::piped())
                .stdout(file.try_clone()?)
                .spawn();
            self.file = Some(file);
            match spawned {
                Ok(mut child) => c.child = Some((child.stdin.take(), child)),
                Err(err) => {
                    let how = format!("could not start: {err}");
                    c.failed = Some(CodecError::new(Side::Compress, &c.codec.compress, how));
                    return Ok(());
                }
            }
        }
        if let Some((Some(stdin), _)) = &mut c.child
            && let Err(err) = stdin.write_all(buf)
        {
            let how = format!("stopped taking input: {err}");
            c.failed = Some(CodecError::new(Side::Compress, &c.codec.compress, how));
            if let Some((stdin, _)) = &mut c.child {
                *stdin = None;
            }
        }
        Ok(())
    }
}

impl Write for Spool {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.parked.is_some() {
            return Err(io::Error::other("a parked spool takes no more output"));
        }
        if self.compressing.is_some() {
            self.compress(buf)?;
            self.len += buf.len() as u64;
            return Ok(buf.len());
        }
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
    fn parked_spools_share_one_file_and_read_back_the_same() {
        let mut backlog = Backlog::new(std::env::temp_dir());
        let mut small = Spool::with_limit(16);
        small.write_all(b"first\n").unwrap();
        let mut big = Spool::with_limit(16);
        let data: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
        big.write_all(&data).unwrap();
        assert!(big.holds_file());
        let mut empty = Spool::with_limit(16);
        for spool in [&mut small, &mut big, &mut empty] {
            spool.park(&mut backlog).unwrap();
            assert!(!spool.holds_file());
            assert_eq!(spool.in_memory(), 0);
        }
        assert_eq!(backlog.len(), 6 + 100_000);
        // Read back in any order, twice.
        for _ in 0..2 {
            let mut out = Vec::new();
            big.copy_to(&mut out).unwrap();
            assert_eq!(out, data);
            let mut out = Vec::new();
            small.copy_to(&mut out).unwrap();
            assert_eq!(out, b"first\n");
            let mut out = Vec::new();
            empty.copy_to(&mut out).unwrap();
            assert!(out.is_empty());
        }
        assert_eq!(big.tail(3), data[data.len() - 3..]);
        assert!(big.write_all(b"more").is_err(), "a parked spool is closed");
        // Parking again is a no-op; resetting the backlog empties its file.
        big.park(&mut backlog).unwrap();
        assert_eq!(backlog.len(), 100_006);
        drop((small, big));
        backlog.reset().unwrap();
        assert!(backlog.is_empty());
    }

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

    fn gzip() -> Arc<Codec> {
        Arc::new(Codec::choose(Some("gzip -c"), None, None))
    }

    #[test]
    fn compressed_spool_round_trips_and_stores_the_compressors_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let mut empty = Spool::compressed(gzip(), dir.path().into());
        let mut out = Vec::new();
        empty.copy_to(&mut out).unwrap();
        assert!(
            out.is_empty() && empty.file.is_none(),
            "nothing written, nothing run"
        );

        let mut spool = Spool::compressed(gzip(), dir.path().into());
        let data: Vec<u8> = (0..300_000u32).map(|i| b"ab\n"[i as usize % 3]).collect();
        for chunk in data.chunks(1000) {
            spool.write_all(chunk).unwrap();
        }
        assert_eq!(spool.len(), 300_000);
        spool.finish().unwrap();
        let mut stored = Vec::new();
        spool.copy_stored_to(&mut stored).unwrap();
        assert_eq!(&stored[..2], [0x1f, 0x8b], "gzip's magic number");
        assert!(stored.len() < 10_000, "{} bytes stored", stored.len());
        let mut out = Vec::new();
        spool.copy_to(&mut out).unwrap();
        assert!(out == data, "decompressed bytes differ");
        assert_eq!(spool.tail(5), b"b\nab\n"[..], "the last 5 bytes");
        // Copied twice: the file is read from its start each time.
        let mut again = Vec::new();
        spool.copy_to(&mut again).unwrap();
        assert!(again == data);
    }

    #[test]
    fn failing_compressor_or_decompressor_is_reported_not_fatal_to_writes() {
        let dir = tempfile::tempdir().unwrap();
        // Exits at once: the writes hit a closed pipe, and still succeed.
        let codec = Arc::new(Codec::choose(Some("exit 3"), Some("cat"), None));
        let mut spool = Spool::compressed(codec, dir.path().into());
        for _ in 0..100 {
            spool.write_all(&[b'x'; 4096]).unwrap();
        }
        let err = spool.finish().unwrap_err();
        assert_eq!((err.side, err.program.as_str()), (Side::Compress, "exit 3"));
        assert!(spool.finish().is_err(), "still failed");
        let mut out = Vec::new();
        spool.copy_to(&mut out).unwrap();
        assert!(
            out.is_empty(),
            "it stored nothing, and that is what comes back"
        );

        // Compresses (as cat), then fails decompressing after its output.
        let codec = Arc::new(Codec::choose(Some("cat"), Some("cat; exit 4"), None));
        let mut spool = Spool::compressed(codec, dir.path().into());
        spool.write_all(b"kept\n").unwrap();
        spool.finish().unwrap();
        let mut out = Vec::new();
        let err = spool.copy_to(&mut out).unwrap_err();
        let err = CodecError::within(&err).unwrap();
        assert_eq!(err.side, Side::Decompress);
        assert_eq!(err.how, "exited with status 4");
        assert_eq!(out, b"kept\n", "what came before the failure is written");
        // A plain closed output is not a codec error.
        let plain = io::Error::new(io::ErrorKind::BrokenPipe, "closed");
        assert!(CodecError::within(&plain).is_none());
    }
}
