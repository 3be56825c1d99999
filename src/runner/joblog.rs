//! The joblog: GNU parallel's `--joblog` format, one line per finished job.

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// One joblog line.
#[derive(Clone, Debug, PartialEq)]
pub struct JobRecord {
    /// 1-based input line number.
    pub seq: usize,
    /// Where it ran: `:` for this machine, else the `--sshlogin`.
    pub host: String,
    /// When the (last) attempt started.
    pub start: SystemTime,
    /// How long it ran.
    pub runtime: Duration,
    /// Bytes written to its stdin.
    pub send: u64,
    /// Bytes read from its stdout.
    pub receive: u64,
    /// Its exit code; 0 if a signal killed it (as GNU parallel logs it), -1 if it never ran.
    pub exitval: i32,
    /// The signal that killed it, or 0.
    pub signal: i32,
    /// The command as run.
    pub command: String,
}

/// The column header, tab-separated, as GNU parallel writes it.
pub const HEADER: &str =
    "Seq\tHost\tStarttime\tJobRuntime\tSend\tReceive\tExitval\tSignal\tCommand";

impl JobRecord {
    /// The record of a job that never ran (its command was missing, or its input line
    /// unusable): started now, for no time, with `exitval` (127 for "not found", else -1).
    pub fn not_run(seq: usize, exitval: i32, command: &str) -> Self {
        Self {
            seq,
            host: ":".into(),
            start: SystemTime::now(),
            runtime: Duration::ZERO,
            send: 0,
            receive: 0,
            exitval,
            signal: 0,
            command: command.to_owned(),
        }
    }

    /// The record as a joblog line (no newline): tab-separated, `:` for the local host,
    /// start as epoch seconds with 3 decimals, runtime right-aligned in 10 columns.
    ///
    /// ```
    /// use concur::runner::JobRecord;
    /// use std::time::{Duration, UNIX_EPOCH};
    ///
    /// let record = JobRecord {
    ///     seq: 1,
    ///     host: ":".into(),
    ///     start: UNIX_EPOCH + Duration::from_millis(1_700_000_000_123),
    ///     runtime: Duration::from_millis(8),
    ///     send: 0,
    ///     receive: 2,
    ///     exitval: 0,
    ///     signal: 0,
    ///     command: "echo 1".into(),
    /// };
    /// assert_eq!(record.line(), "1\t:\t1700000000.123\t     0.008\t0\t2\t0\t0\techo 1");
    /// ```
    pub fn line(&self) -> String {
        let start = self
            .start
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs_f64();
        // One job's command is one line: newlines inside it would break the format.
        let command = self.command.replace('\n', " ");
        format!(
            "{}\t{}\t{:.3}\t{:>10.3}\t{}\t{}\t{}\t{}\t{}",
            self.seq,
            self.host,
            start,
            self.runtime.as_secs_f64(),
            self.send,
            self.receive,
            self.exitval,
            self.signal,
            command
        )
    }
}

/// A joblog file, written and flushed one line at a time so a crash loses nothing.
pub struct JobLog {
    out: BufWriter<Box<dyn Write + Send>>,
}

impl std::fmt::Debug for JobLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("JobLog")
    }
}

impl JobLog {
    /// Creates (or truncates) `path` and writes the header; `-` is standard output,
    /// as in GNU parallel.
    pub fn create(path: &Path) -> io::Result<Self> {
        let out: Box<dyn Write + Send> = if path.as_os_str() == "-" {
            Box::new(io::stdout())
        } else {
            Box::new(File::create(path)?)
        };
        let mut log = Self {
            out: BufWriter::new(out),
        };
        writeln!(log.out, "{HEADER}")?;
        log.out.flush()?;
        Ok(log)
    }

    /// Opens `path` to add records after those it holds (for `--resume`); a missing
    /// or empty file is started with the header.
    pub fn append(path: &Path) -> io::Result<Self> {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)?;
        let empty = file.metadata()?.len() == 0;
        let mut log = Self {
            out: BufWriter::new(Box::new(file)),
        };
        if empty {
            writeln!(log.out, "{HEADER}")?;
            log.out.flush()?;
        }
        Ok(log)
    }

    /// Appends one record.
    pub fn write(&mut self, record: &JobRecord) -> io::Result<()> {
        writeln!(self.out, "{}", record.line())?;
        self.out.flush()
    }
}

/// What a joblog says about one job: its sequence number, exit value and signal.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Logged {
    /// The job's sequence number.
    pub seq: usize,
    /// Its exit value.
    pub exitval: i32,
    /// The signal that killed it, or 0.
    pub signal: i32,
}

impl Logged {
    /// Whether the job succeeded.
    pub fn succeeded(&self) -> bool {
        self.exitval == 0 && self.signal == 0
    }
}

/// The longest joblog line `--resume` reads: 1 MiB (a line holds the command).
pub const MAX_JOBLOG_LINE: usize = 1 << 20;

/// The most records `--resume` reads from a joblog: 10 million.
pub const MAX_JOBLOG_RECORDS: usize = 10_000_000;

/// Reads a joblog written by concur or GNU parallel (the same columns). A missing file
/// holds no jobs; a line that is not a record is an error naming its line number, and
/// so are a line longer than [`MAX_JOBLOG_LINE`] and more than [`MAX_JOBLOG_RECORDS`]
/// records: the file is read line by line, so `/dev/zero` fails at once.
///
/// ```
/// use concur::runner::read_joblog;
///
/// let dir = tempfile::tempdir().unwrap();
/// let path = dir.path().join("log");
/// std::fs::write(&path, "Seq\tHost\tStarttime\tJobRuntime\tSend\tReceive\tExitval\tSignal\tCommand\n\
///     2\t:\t1.000\t0.1\t0\t0\t1\t0\tfalse\n").unwrap();
/// let jobs = read_joblog(&path).unwrap();
/// assert_eq!((jobs[0].seq, jobs[0].succeeded()), (2, false));
/// ```
pub fn read_joblog(path: &Path) -> io::Result<Vec<Logged>> {
    let file = match File::open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let mut reader = io::BufReader::new(file);
    let mut jobs = Vec::new();
    let mut number = 0;
    loop {
        number += 1;
        let line = match crate::lines::read_line(&mut reader, MAX_JOBLOG_LINE) {
            Ok(Some(line)) => line,
            Ok(None) => break,
            Err(crate::lines::LineError::Io(e)) => return Err(e),
            Err(too_long) => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("line {number}: {too_long}"),
                ));
            }
        };
        if line.is_empty() || line.starts_with(b"Seq\t") {
            continue;
        }
        if jobs.len() == MAX_JOBLOG_RECORDS {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "line {number}: more than {MAX_JOBLOG_RECORDS} records, the most --resume reads"
                ),
            ));
        }
        let fields: Vec<&[u8]> = line.splitn(9, |&b| b == b'\t').collect();
        let field = |k: usize| {
            fields
                .get(k)
                .and_then(|f| std::str::from_utf8(f).ok())
                .and_then(|f| f.trim().parse::<i64>().ok())
        };
        match (field(0), field(6), field(7)) {
            (Some(seq), Some(exitval), Some(signal)) if seq > 0 => jobs.push(Logged {
                seq: usize::try_from(seq).unwrap_or(usize::MAX),
                exitval: i32::try_from(exitval).unwrap_or(-1),
                signal: i32::try_from(signal).unwrap_or(-1),
            }),
            _ => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!(
                        "line {number} is not a joblog record: {}",
                        crate::lines::excerpt(&String::from_utf8_lossy(&line), 80)
                    ),
                ));
            }
        }
    }
    Ok(jobs)
}
