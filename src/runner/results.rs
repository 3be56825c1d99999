//! Saving each job's output instead of printing it: `--results DIR` (GNU parallel's
//! tree: `DIR/1/ARG1/2/ARG2/stdout`, `stderr`, `seq`), `--results` with replacement
//! strings (`FILE`, `FILE.err`, `FILE.seq`), `--results X.csv` / `X.tsv` (one table),
//! and `--files` (stdout to a temporary file whose name is printed).

use std::fs::{self, File};
use std::io::{self, BufWriter, Write};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::time::UNIX_EPOCH;

use super::input::JobArgs;
use super::joblog::JobRecord;
use super::template::{Template, TemplateOptions};
use crate::process::Spool;

/// Where results go.
#[derive(Clone, Debug)]
pub enum Results {
    /// GNU parallel's directory tree, one level pair per argument; with `--header :`
    /// each level is named by its column's name, and the levels are in name order.
    Tree(PathBuf, Vec<String>),
    /// A path with replacement strings: stdout to it, stderr to `.err`, seq to `.seq`.
    Named(Template),
    /// One table, with this separator (`,` for `.csv`, tab for `.tsv`).
    Table(PathBuf, u8),
    /// JSON Lines, one object per job (`.json`, as GNU parallel's `--results X.json`);
    /// `None` prints them instead of the jobs' output (`concur run --json`).
    Json(Option<PathBuf>),
    /// `--files`: each job's stdout in a temporary file in this directory; its name
    /// is printed instead.
    Files(PathBuf),
}

impl Results {
    /// What `--results ARG` means: a table for `.csv`/`.tsv`, a named path if it holds
    /// replacement strings, else the tree.
    pub fn parse(arg: &str) -> Result<Self, super::TemplateError> {
        Self::parse_with(arg, &[])
    }

    /// [`parse`](Self::parse), with the column names of `--header :`.
    pub fn parse_with(arg: &str, names: &[String]) -> Result<Self, super::TemplateError> {
        if arg.ends_with(".csv") {
            return Ok(Results::Table(arg.into(), b','));
        }
        if arg.ends_with(".tsv") {
            return Ok(Results::Table(arg.into(), b'\t'));
        }
        if arg.ends_with(".json") {
            return Ok(Results::Json(Some(arg.into())));
        }
        let options = TemplateOptions {
            names: names.to_vec(),
            ..TemplateOptions::default()
        };
        let named = Template::text(arg, &options)?;
        if named.has_replacements() {
            Ok(Results::Named(named))
        } else {
            Ok(Results::Tree(arg.into(), names.to_vec()))
        }
    }

    /// The file or directory, for messages.
    pub fn path(&self) -> PathBuf {
        match self {
            Results::Tree(p, _) | Results::Table(p, _) | Results::Files(p) => p.clone(),
            Results::Json(Some(p)) => p.clone(),
            Results::Json(None) => PathBuf::from("standard output"),
            Results::Named(_) => PathBuf::from("--results"),
        }
    }
}

/// Writes results as jobs are printed.
pub struct ResultWriter {
    results: Results,
    table: Option<BufWriter<File>>,
    header_written: bool,
}

/// A results write that failed, and where.
#[derive(Debug)]
pub struct ResultError {
    /// The file.
    pub path: PathBuf,
    /// What failed.
    pub source: io::Error,
}

fn at(path: &Path) -> impl FnOnce(io::Error) -> ResultError + '_ {
    move |source| ResultError {
        path: path.to_owned(),
        source,
    }
}

/// One job's part of the results.
pub struct JobResult<'a> {
    /// Its sequence number.
    pub seq: usize,
    /// Its job slot.
    pub slot: usize,
    /// Its arguments.
    pub args: &'a JobArgs,
    /// Its joblog record, if it ran.
    pub record: Option<&'a JobRecord>,
    /// Its command line.
    pub command: &'a str,
}

impl ResultWriter {
    /// Starts writing (creates the table, if it is one).
    pub fn open(results: Results) -> Result<Self, ResultError> {
        let table = match &results {
            Results::Table(path, _) | Results::Json(Some(path)) => {
                if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                    fs::create_dir_all(dir).map_err(at(dir))?;
                }
                Some(BufWriter::new(File::create(path).map_err(at(path))?))
            }
            _ => None,
        };
        Ok(Self {
            results,
            table,
            header_written: false,
        })
    }

    /// Saves one job's output; for `--files`, returns the line to print instead.
    pub fn save(
        &mut self,
        job: &JobResult<'_>,
        stdout: &mut Spool,
        stderr: &mut Spool,
    ) -> Result<Option<Vec<u8>>, ResultError> {
        match &self.results {
            Results::Tree(dir, names) => {
                let mut path = dir.clone();
                for record in job.args.records() {
                    // Each column's level: its name (or number), in the order GNU
                    // parallel sorts them: numerically, then by text.
                    let mut levels: Vec<(String, &Vec<u8>)> = record
                        .iter()
                        .enumerate()
                        .map(|(i, v)| {
                            (
                                // A column without a name (or past the header's)
                                // goes by its number.
                                names
                                    .get(i)
                                    .filter(|name| !name.is_empty())
                                    .cloned()
                                    .unwrap_or_else(|| (i + 1).to_string()),
                                v,
                            )
                        })
                        .collect();
                    levels.sort_by(|(a, _), (b, _)| {
                        let number = |s: &str| s.parse::<f64>().unwrap_or(0.0);
                        number(a).total_cmp(&number(b)).then_with(|| a.cmp(b))
                    });
                    for (name, value) in levels {
                        path.push(name);
                        path.push(std::ffi::OsStr::from_bytes(&escape_component(value)));
                    }
                }
                fs::create_dir_all(&path).map_err(at(&path))?;
                save_to(&path.join("stdout"), stdout)?;
                save_to(&path.join("stderr"), stderr)?;
                let seq = path.join("seq");
                fs::write(&seq, job.seq.to_string()).map_err(at(&seq))?;
                Ok(None)
            }
            Results::Named(template) => {
                let name = template.render_text(job.args, job.seq, job.slot);
                let path = PathBuf::from(std::ffi::OsStr::from_bytes(&name));
                // A name ending in `/` is a directory, filled as the tree's leaves are.
                if name.ends_with(b"/") {
                    fs::create_dir_all(&path).map_err(at(&path))?;
                    save_to(&path.join("stdout"), stdout)?;
                    save_to(&path.join("stderr"), stderr)?;
                    let seq = path.join("seq");
                    fs::write(&seq, job.seq.to_string()).map_err(at(&seq))?;
                    return Ok(None);
                }
                if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                    fs::create_dir_all(dir).map_err(at(dir))?;
                }
                let with = |suffix: &str| {
                    let mut p = path.clone().into_os_string();
                    p.push(suffix);
                    PathBuf::from(p)
                };
                save_to(&path, stdout)?;
                save_to(&with(".err"), stderr)?;
                let seq = with(".seq");
                fs::write(&seq, job.seq.to_string()).map_err(at(&seq))?;
                Ok(None)
            }
            Results::Files(dir) => {
                let file = tempfile::Builder::new()
                    .prefix("par")
                    // As GNU parallel names them: parXXXXX.par.
                    .rand_bytes(5)
                    .suffix(".par")
                    .tempfile_in(dir)
                    .map_err(at(dir))?;
                let (mut file, path) = file.keep().map_err(|e| ResultError {
                    path: dir.clone(),
                    source: e.error,
                })?;
                stdout.copy_stored_to(&mut file).map_err(at(&path))?;
                // tempfile makes the path absolute; the name is printed under the
                // directory as it was given, as GNU parallel prints it.
                let shown = path.file_name().map_or(path.clone(), |name| dir.join(name));
                let mut line = shown.as_os_str().as_bytes().to_vec();
                line.push(b'\n');
                Ok(Some(line))
            }
            Results::Json(path) => {
                let line = json_row(job, stdout, stderr).map_err(|source| ResultError {
                    path: self.results.path(),
                    source,
                })?;
                let Some(path) = path else {
                    return Ok(Some(line)); // printed in the job's place
                };
                let path = path.clone();
                let Some(table) = self.table.as_mut() else {
                    return Ok(None);
                };
                table
                    .write_all(&line)
                    .and_then(|()| table.flush())
                    .map_err(at(&path))?;
                Ok(None)
            }
            Results::Table(path, sep) => {
                let (path, sep) = (path.clone(), *sep);
                let Some(table) = self.table.as_mut() else {
                    return Ok(None);
                };
                let columns = job.args.columns.max(1);
                if !self.header_written {
                    self.header_written = true;
                    let mut header = String::from(
                        "Seq,Host,Starttime,JobRuntime,Send,Receive,Exitval,Signal,Command",
                    );
                    for i in 1..=columns {
                        header.push_str(&format!(",V{i}"));
                    }
                    header.push_str(",Stdout,Stderr\n");
                    table
                        .write_all(
                            &header
                                .replace(',', &char::from(sep).to_string())
                                .into_bytes(),
                        )
                        .map_err(at(&path))?;
                }
                let row = table_row(job, stdout, stderr, sep).map_err(at(&path))?;
                table
                    .write_all(&row)
                    .and_then(|()| table.flush())
                    .map_err(at(&path))?;
                Ok(None)
            }
        }
    }
}

/// A spool's bytes into a new file at `path` (compressed, with `--compress`).
fn save_to(path: &Path, spool: &mut Spool) -> Result<(), ResultError> {
    let mut file = File::create(path).map_err(at(path))?;
    spool.copy_stored_to(&mut file).map_err(at(path))
}

/// An argument as one path component, as GNU parallel 20221122 writes it: `\` doubled,
/// `/` as `\_`, and an empty argument as `''`. `.` would name the numbered level itself
/// and `..` the one above it, where their `stdout` would overwrite the tree's own
/// files or another job's; they are written `\.` and `\.\.`, which no argument can
/// produce otherwise since every `\` of an argument is doubled. (GNU parallel
/// 20221122 writes them as they are; later releases escape them as `+_` and `+__`, in
/// a scheme of their own.)
fn escape_component(value: &[u8]) -> Vec<u8> {
    match value {
        b"" => return b"''".to_vec(),
        b"." => return b"\\.".to_vec(),
        b".." => return b"\\.\\.".to_vec(),
        _ => {}
    }
    let mut out = Vec::with_capacity(value.len());
    for &b in value {
        match b {
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'/' => out.extend_from_slice(b"\\_"),
            _ => out.push(b),
        }
    }
    // A file name holds at most 255 bytes (NAME_MAX): a longer argument is cut there,
    // as GNU parallel cuts it when the full name is refused.
    out.truncate(NAME_MAX);
    out
}

/// The longest file name Linux file systems take, in bytes.
const NAME_MAX: usize = 255;

/// One table row: the joblog's columns, the arguments, stdout and stderr; fields
/// quoted as GNU parallel quotes them (the command and non-empty outputs always,
/// other fields when they hold the separator, a quote or a line break).
fn table_row(
    job: &JobResult<'_>,
    stdout: &mut Spool,
    stderr: &mut Spool,
    sep: u8,
) -> io::Result<Vec<u8>> {
    let quote = |field: &[u8], always: bool| -> Vec<u8> {
        let needs = always
            || field
                .iter()
                .any(|&b| b == sep || b == b'"' || b == b'\n' || b == b'\r');
        if !needs {
            return field.to_vec();
        }
        let mut q = vec![b'"'];
        for &b in field {
            if b == b'"' {
                q.push(b'"');
            }
            q.push(b);
        }
        q.push(b'"');
        q
    };
    let mut fields: Vec<Vec<u8>> = Vec::new();
    let record = job.record;
    let start = record.map_or(0.0, |r| {
        r.start
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs_f64()
    });
    fields.push(job.seq.to_string().into_bytes());
    fields.push(b":".to_vec());
    fields.push(format!("{start:.3}").into_bytes());
    fields.push(format!("{:.3}", record.map_or(0.0, |r| r.runtime.as_secs_f64())).into_bytes());
    fields.push(record.map_or(0, |r| r.send).to_string().into_bytes());
    fields.push(record.map_or(0, |r| r.receive).to_string().into_bytes());
    fields.push(record.map_or(-1, |r| r.exitval).to_string().into_bytes());
    fields.push(record.map_or(0, |r| r.signal).to_string().into_bytes());
    fields.push(quote(job.command.as_bytes(), true));
    for value in &job.args.values {
        fields.push(quote(value, false));
    }
    for spool in [stdout, stderr] {
        let mut bytes = Vec::new();
        spool.copy_to(&mut bytes)?;
        fields.push(if bytes.is_empty() {
            bytes
        } else {
            quote(&bytes, true)
        });
    }
    let mut row = fields.join(&sep);
    row.push(b'\n');
    Ok(row)
}

/// One job as a JSON object on one line, with GNU parallel's field names: `Seq`,
/// `Host`, `Starttime`, `JobRuntime`, `Send`, `Receive`, `Exitval`, `Signal`,
/// `Command`, `V` (its arguments), `Stdout`, `Stderr`. An argument or output that is
/// not UTF-8 is given as hex under the same name with `_hex` added (`Stdout_hex`), so
/// nothing is altered.
fn json_row(job: &JobResult<'_>, stdout: &mut Spool, stderr: &mut Spool) -> io::Result<Vec<u8>> {
    use serde_json::{Map, Value};
    let record = job.record;
    let mut object = Map::new();
    let text = |object: &mut Map<String, Value>, name: &str, bytes: &[u8]| {
        match std::str::from_utf8(bytes) {
            Ok(text) => object.insert(name.to_owned(), Value::from(text)),
            Err(_) => object.insert(
                format!("{name}_hex"),
                Value::from(bytes.iter().map(|b| format!("{b:02x}")).collect::<String>()),
            ),
        };
    };
    object.insert("Seq".into(), job.seq.into());
    object.insert(
        "Host".into(),
        record.map_or(":", |r| r.host.as_str()).into(),
    );
    let start = record.map_or(0.0, |r| {
        r.start
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs_f64()
    });
    object.insert("Starttime".into(), start.into());
    object.insert(
        "JobRuntime".into(),
        record.map_or(0.0, |r| r.runtime.as_secs_f64()).into(),
    );
    object.insert("Send".into(), record.map_or(0, |r| r.send).into());
    object.insert("Receive".into(), record.map_or(0, |r| r.receive).into());
    object.insert("Exitval".into(), record.map_or(-1, |r| r.exitval).into());
    object.insert("Signal".into(), record.map_or(0, |r| r.signal).into());
    object.insert("Command".into(), job.command.into());
    let values: Vec<Value> = job
        .args
        .values
        .iter()
        .map(|v| match std::str::from_utf8(v) {
            Ok(text) => Value::from(text),
            Err(_) => Value::from(format!(
                "hex:{}",
                v.iter().map(|b| format!("{b:02x}")).collect::<String>()
            )),
        })
        .collect();
    object.insert("V".into(), values.into());
    for (name, spool) in [("Stdout", stdout), ("Stderr", stderr)] {
        let mut bytes = Vec::new();
        spool.copy_to(&mut bytes)?;
        text(&mut object, name, &bytes);
    }
    let mut line = serde_json::to_vec(&Value::Object(object)).map_err(io::Error::other)?;
    line.push(b'\n');
    Ok(line)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn components_are_escaped_as_gnu_parallel_does() {
        assert_eq!(escape_component(b"b/c"), b"b\\_c");
        assert_eq!(escape_component(b"a\\b"), b"a\\\\b");
        assert_eq!(escape_component(b""), b"''");
        assert_eq!(escape_component(b"."), b"\\.");
        assert_eq!(escape_component(b".."), b"\\.\\.");
        assert_eq!(escape_component(b"..."), b"...", "a name like any other");
    }
}
