//! `concur run`: the parallel job runner, with GNU parallel's interface.

use std::collections::HashSet;
use std::ffi::OsString;
use std::io::{self, IsTerminal, Write};
use std::num::NonZeroUsize;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::Args;
use indicatif::ProgressBar;

use super::signals::SignalCancel;
use super::value::{parse_bytes_max, parse_count_max, parse_duration};
use super::{Outcome, UsageError};
use crate::process::Spool;
use crate::remote;
use crate::runner::{
    self, Blocks, Gate, Grouping, Halt, Hosts, Input, InputOptions, JobCount, JobSource, Jobs,
    JobsFile, Live, LiveOutput, LocalWorkdir, LoginFile, PartSize, Parts, PipeOptions, Reporter,
    Results, RunError, RunOptions, Source, SshLogin, Streams, Tag, Template, TemplateOptions,
    Timeout, Workdir, read_joblog,
};

const RUN_ABOUT: &str =
    "Run a command for each input, in parallel, with GNU parallel's interface (item 52)";

const RUN_AFTER: &str = "\
Inputs, as in GNU parallel: lines of standard input; `::: a b c` lists and `:::: FILE`
files after the command (several give every combination; `:::+`/`::::+` pair a source
with the one before, --link pairs them all); -a FILE; -0 / -d for other delimiters;
--colsep to split records into {1} {2} ...

The command's words are joined into one shell command line, with every replacement
string replaced by its argument, quoted for where it sits (bare, '{}', \"{}\", $( ),
backquotes, the script of sh -c) so that input is data, byte for byte. A command that
evaluates its argument again (eval, xargs sh -c, ssh) cannot be protected: pass it as
an argument instead, as in  concur run sh -c 'echo \"$1\"' _ {}
Jobs run in $PARALLEL_SHELL, else the shell that started concur, else $SHELL (Bourne-like
only; else /bin/sh). Commands with no shell syntax in their words run without a shell.
With no command, each input is a command line. With no replacement string, the
arguments are appended.

Replacement strings: {} {.} {/} {//} {/.} {#} {%} {1} {1.} {1/} {1//} {1/.}, {-1}
(the last argument) and its forms, with --header :, the column names, and
{= perl =} / {=N perl =}: the argument as Perl's $_ after the expression ran
($job->seq(), $job->slot(), @arg, Q(), uq(), skip(); needs perl). -I STR renames {}.

Each job runs in its own process group. Its stdout and stderr are printed whole when it
finishes, never mixed with another job's (with -k: in input order, as soon as every
earlier job is done). A timeout, --halt now, Ctrl-C or SIGTERM stops a job's whole group:
SIGTERM, then SIGKILL after --grace. A job ends when its process exits: output from
processes it left behind is collected for 100 ms more, then they are stopped too.
SIGHUP starts no new job and lets the running ones finish.

Exit status:
  0       every job succeeded
  1-100   that many jobs failed (a job that timed out failed)
  101     more than 100 jobs failed
  127     a program run directly vanished before it started (one not on PATH goes to
          the shell, and its 127 is a failure)
  129     SIGHUP: jobs were left unstarted (the running ones finished)
  130/143 interrupted by Ctrl-C / SIGTERM (running jobs were stopped)
  141     standard output was closed before every job's output was written
  255     concur run itself failed: bad arguments, unreadable input, unwritable joblog;
          or with -S, no host could be reached, or every host was lost
When several apply, the first in this order wins: 130/143, --halt, 129, 127, the count.
After --halt, the run exits as the job that halted it did (0 for --halt ...,success=N),
as GNU parallel does.

Examples:
  concur run echo ::: a b c ::: 1 2
  ls *.log | concur run -k --joblog run.log gzip -k {}
  concur run --tag -j 4 'sleep 1; echo {.}' ::: x.txt y.txt
  concur run --resume-failed --joblog run.log ./process {} :::: inputs.txt";

/// Arguments of `concur run`.
#[derive(Debug, Args)]
#[command(about = RUN_ABOUT, after_help = RUN_AFTER, args_override_self = true)]
pub struct RunArgs {
    /// Jobs at once: N, +N / -N (cores plus or minus N), N% (of the cores), 0 (1024),
    /// or a FILE holding one of these, read again when it changes [default: the number
    /// of cores].
    #[arg(short, long, short_alias = 'P', aliases = ["max-procs", "maxprocs"], value_parser = parse_jobs, value_name = "N", allow_hyphen_values = true)]
    jobs: Option<JobsArg>,

    /// Stop any job running longer than this: seconds (30, 1.5) or with a unit (30s,
    /// 2m), or P% of the median runtime of the jobs that succeeded so far.
    #[arg(long, value_parser = parse_timeout, value_name = "D")]
    timeout: Option<Timeout>,

    /// Wait this long after SIGTERM before SIGKILL when stopping a job.
    #[arg(long, value_parser = parse_duration, value_name = "D", default_value = "2s")]
    grace: Duration,

    /// Wait this long between job starts (seconds or with a unit); `Dauto` (e.g.
    /// `0.1auto`) lengthens it by 30% after a failed job and shortens it by 10% after a
    /// success.
    #[arg(long, value_parser = parse_delay, value_name = "D")]
    delay: Option<(Duration, bool)>,

    /// Print outputs in input order (still streaming, with bounded memory).
    #[arg(short, long, alias = "keeporder")]
    keep_order: bool,

    /// When to stop: never, soon,fail=N, now,fail=N, soon,fail=P%, now,success=N, ...
    /// `soon` starts no new job; `now` also stops the running ones.
    #[arg(long, value_parser = parse_halt, value_name = "WHEN", allow_negative_numbers = true)]
    halt: Option<HaltSpec>,

    /// Same as --halt soon,fail=1.
    #[arg(long, conflicts_with = "halt")]
    halt_on_error: bool,

    /// Try a failing job up to N times in all, as GNU parallel counts (1: once; 0: until
    /// it succeeds); only the last attempt's output is printed. N may be a replacement
    /// string ({2}): each job's own count.
    #[arg(long, value_name = "N")]
    retries: Option<String>,

    /// Write GNU parallel's joblog (Seq, Host, Starttime, JobRuntime, Send, Receive,
    /// Exitval, Signal, Command) to FILE.
    #[arg(long, alias = "jl", value_name = "FILE")]
    joblog: Option<PathBuf>,

    /// Skip the jobs the --joblog already holds, and add to it.
    #[arg(long, requires = "joblog")]
    resume: bool,

    /// Like --resume, but run the jobs the joblog shows failed again.
    #[arg(
        long,
        alias = "resumefailed",
        requires = "joblog",
        conflicts_with = "resume"
    )]
    resume_failed: bool,

    /// Read arguments from FILE (repeatable; `-` is standard input).
    #[arg(short = 'a', long = "arg-file", alias = "argfile", value_name = "FILE")]
    arg_file: Vec<PathBuf>,

    /// Records end with NUL, not newline (for find -print0).
    #[arg(short = '0', long)]
    null: bool,

    /// Records end with DELIM, one byte or more (\n, \t, \r, \0 and \\ are
    /// understood); `:::` values holding it are split too, as in GNU parallel.
    #[arg(short = 'd', long, value_name = "DELIM", conflicts_with = "null")]
    delimiter: Option<String>,

    /// Split each record into columns {1} {2} ... at matches of REGEX.
    #[arg(long, short = 'C', alias = "col-sep", value_name = "REGEX")]
    colsep: Option<String>,

    /// Read each record as a CSV row: fields split at --colsep (one byte, default ,),
    /// a field in double quotes may hold the separator, "" and newlines.
    #[arg(long)]
    csv: bool,

    /// `--header :` (or any REGEX): the first record of each input names its columns
    /// ({name}). With --pipe: what REGEX matches at the start of the input (`:`: the
    /// first line) is the header, given at the start of every block.
    #[arg(long, value_name = "REGEX")]
    header: Option<String>,

    /// Pair the inputs instead of combining them; shorter ones wrap around.
    #[arg(long, visible_alias = "xapply")]
    link: bool,

    /// N records per job, as {1} .. {N} (at most 1048576); 0: one record per job, with
    /// none of it in the command.
    #[arg(short = 'N', long = "max-replace-args", alias = "maxreplaceargs", value_name = "N", value_parser = |t: &str| parse_count_max(t, runner::MAX_RECORDS_PER_JOB as u64).map(|n| n as usize))]
    max_replace_args: Option<usize>,

    /// N input lines per job, as -N (with -N too, -N wins). With --pipe: a record is N
    /// lines, so a block holds whole N-line records (with -N M: M of them).
    #[arg(short = 'L', long = "max-lines", value_name = "N", value_parser = |t: &str| parse_count_max(t, runner::MAX_RECORDS_PER_JOB as u64).map(|n| n as usize))]
    max_lines: Option<usize>,

    /// Skip input records that are empty or only white space (GNU's
    /// --no-run-if-empty).
    #[arg(short = 'r', long = "no-run-if-empty")]
    no_run_if_empty: bool,

    /// A record equal to STR ends its input source: it and the rest are not read.
    #[arg(short = 'E', long = "eof", value_name = "STR")]
    eof: Option<String>,

    /// Use SEP instead of `:::` (and SEP+ instead of `:::+`) after the command.
    #[arg(long = "arg-sep", alias = "argsep", value_name = "SEP")]
    arg_sep: Option<String>,

    /// Use SEP instead of `::::` (and SEP+ instead of `::::+`) after the command.
    #[arg(long = "arg-file-sep", alias = "argfilesep", value_name = "SEP")]
    arg_file_sep: Option<String>,

    /// With -X or -m: command lines of at most N bytes (GNU parallel's count: the
    /// command, the quoted arguments, a space each) [default: 63664].
    #[arg(short = 's', long = "max-chars", value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    max_chars: Option<u32>,

    /// At most N arguments per job (as xargs -n; at most 1048576); 0 is -N 0.
    #[arg(short = 'n', long = "max-args", alias = "maxargs", value_name = "N", value_parser = |t: &str| parse_count_max(t, runner::MAX_RECORDS_PER_JOB as u64).map(|n| n as usize))]
    max_args: Option<usize>,

    /// As many arguments per job as fit, each word holding {} repeated per argument.
    #[arg(short = 'X', conflicts_with = "multiple")]
    context: bool,

    /// As many arguments per job as fit, {} standing for all of them.
    #[arg(short = 'm')]
    multiple: bool,

    /// Use STR instead of {} for the argument.
    #[arg(short = 'I', value_name = "STR")]
    replace: Option<String>,

    /// Run the command's words as they are (program and arguments), with no shell.
    #[arg(short, long)]
    quote: bool,

    /// Prefix each output line with the job's arguments and a tab.
    #[arg(long)]
    tag: bool,

    /// Prefix each output line with STR (replacement strings allowed; {host} is the
    /// machine the job ran on, : for this one) and a tab. Overrides --tag.
    #[arg(long, alias = "tag-string", value_name = "STR")]
    tagstring: Option<String>,

    /// GNU parallel's extra replacement strings: {..} {...} {+/} {+.} {+..} {/..}
    /// {##} (the number of jobs) {0#} {0%} (zero-padded), {:-default} {:N} {:N:M}
    /// {#pat} {##pat} {%pat} {%%pat} {/a/b} {//a/b} {^x} {,x} (as bash's ${…}),
    /// {choose_k} {uniq}. Needs perl.
    #[arg(long)]
    plus: bool,

    /// Define a replacement string: 'TAG perl-code' ('{..} s:\.[^.]+$::'); a (group)
    /// in TAG is $$1 in the code. Repeatable. Needs perl.
    #[arg(long, value_name = "'TAG PERL'")]
    rpl: Vec<String>,

    /// Run a job only if EXPR, with its replacement strings filled in, is true as Perl
    /// (e.g. '{1} < {2}'); a job filtered out counts as failed, as in GNU parallel.
    /// Repeatable: every filter must hold. Needs perl.
    #[arg(long, value_name = "EXPR")]
    filter: Vec<String>,

    /// Print output lines as jobs print them (whole lines, never a half line mixed
    /// with another), instead of each job's output whole at its end. With -k, output
    /// stays grouped in order.
    #[arg(long, visible_alias = "lb", aliases = ["linebuffer", "line-buffered", "linebuffered"], conflicts_with = "ungroup")]
    line_buffer: bool,

    /// Print output as it comes, bytes from different jobs mixed (fastest). With -k,
    /// output stays grouped in order.
    #[arg(short = 'u', long)]
    ungroup: bool,

    /// Save each job's output instead of printing it: DIR/1/ARG/stdout, stderr, seq
    /// (one level pair per input source); a name with replacement strings (NAME,
    /// NAME.err, NAME.seq); one table for a name ending in .csv or .tsv; JSON Lines,
    /// one object per job, for a name ending in .json.
    #[arg(long, visible_alias = "res", alias = "result", value_name = "DIR", conflicts_with_all = ["line_buffer", "ungroup"])]
    results: Option<String>,

    /// Print one JSON object per job instead of its output, on one line: GNU parallel's
    /// --results X.json fields (Seq, Host, Starttime, JobRuntime, Send, Receive,
    /// Exitval, Signal, Command, V, Stdout, Stderr).
    #[arg(long, conflicts_with_all = ["results", "files", "line_buffer", "ungroup"])]
    json: bool,

    /// Save each job's stdout in a temporary file and print the file's name.
    /// (--line-buffer is then ignored, as GNU parallel ignores it.)
    #[arg(long, aliases = ["output-as-files", "outputasfiles"], conflicts_with_all = ["results", "ungroup"])]
    files: bool,

    /// Where --files puts its files [default: $TMPDIR or /tmp].
    #[arg(long, alias = "tempdir", value_name = "DIR")]
    tmpdir: Option<PathBuf>,

    /// Keep each job's output compressed in --tmpdir while it waits to be printed, and
    /// leave --files and --results files compressed. The compressor is the first of
    /// pzstd, lbzip2, pbzip2, zstd, pixz, lz4, pigz, lzop, plzip, lzip, gzip, lrz, pxz,
    /// bzip2, lzma, xz and clzip on PATH (as `PRG -c -1`; `cat` if none is). A
    /// compressor that fails fails its job. Output held by --line-buffer is not
    /// compressed.
    #[arg(long)]
    compress: bool,

    /// Compress with PRG, a shell command from stdin to stdout (implies --compress).
    #[arg(long = "compress-program", aliases = ["use-compress-program", "usecompressprogram", "compressprogram"], value_name = "PRG")]
    compress_program: Option<String>,

    /// Decompress with PRG [default: the compressor with -dc]; used only with
    /// --compress.
    #[arg(long = "decompress-program", aliases = ["use-decompress-program", "usedecompressprogram", "decompressprogram"], value_name = "PRG")]
    decompress_program: Option<String>,

    /// Print each command instead of running it.
    #[arg(long, aliases = ["dryrun", "dr"])]
    dry_run: bool,

    /// Run each job N steps nicer (lower priority) than concur, as `nice -n N`
    /// (jobs on this machine; -S jobs are not reniced).
    #[arg(long, value_name = "N", allow_negative_numbers = true, value_parser = clap::value_parser!(i32).range(-40..=40))]
    nice: Option<i32>,

    /// Print each command quoted for a shell, instead of running it (as --dry-run,
    /// then quoted once more: for composing commands).
    #[arg(long)]
    shellquote: bool,

    /// Print each command before its output.
    #[arg(short, long)]
    verbose: bool,

    /// Run the jobs in a random order (reads all input first).
    #[arg(long)]
    shuf: bool,

    /// Show the progress bar (it shows on a terminal anyway; never when not one).
    #[arg(long, visible_aliases = ["eta", "progress"])]
    bar: bool,

    /// Inputs longer than this are not run (reported, at most 80 bytes quoted); at most 1G.
    #[arg(long, value_parser = |t: &str| parse_bytes_max(t, runner::MAX_RECORD_BYTES), value_name = "BYTES", default_value = "1M")]
    max_line_bytes: u64,

    /// Cut standard input into blocks of whole records and give each job one block
    /// on its stdin (instead of reading arguments).
    #[arg(long, alias = "spreadstdin", conflicts_with_all = ["arg_file", "shuf"])]
    pipe: bool,

    /// With --pipe: start at most -j jobs (one per block as blocks come) and give each
    /// later block, whole, to whichever job has taken its last; jobs run until the input
    /// ends. With --pipepart: one part per job slot.
    #[arg(long, visible_alias = "round", alias = "roundrobin")]
    round_robin: bool,

    /// With --pipe: every block to every job, one job per ::: argument (all run at
    /// once; -j defaults to 0).
    #[arg(long, requires = "pipe")]
    tee: bool,

    /// With --pipe: a record is a run of lines whose column N (split at --colsep,
    /// default a tab) is the same, so no block splits such a group (with -N M: M groups
    /// per block).
    #[arg(long, alias = "groupby", value_name = "N", value_parser = parse_column)]
    group_by: Option<usize>,

    /// With --pipe or --pipepart: give each job its block as a temporary file named by
    /// {} (appended if absent), instead of on stdin; removed after the job.
    #[arg(long, conflicts_with = "fifo")]
    cat: bool,

    /// With --pipe or --pipepart: give each job its block through a named pipe named by
    /// {}, instead of on stdin.
    #[arg(long)]
    fifo: bool,

    /// Like --pipe, but cut the -a/:::: files (regular files or block devices) into
    /// parts: each job reads its own byte range from the file, and no data passes
    /// through concur.
    #[arg(long, alias = "pipe-part", conflicts_with = "shuf")]
    pipepart: bool,

    /// With --pipe: bytes per block, about (cut at the last record end before it), at
    /// most 1G [default: 1M]. With --pipepart: parts of at least SIZE (cut at the next
    /// record end), or -N for N parts per job slot [default: -10].
    #[arg(long, visible_alias = "bs", aliases = ["block-size", "blocksize"], value_parser = parse_block_arg, value_name = "SIZE", allow_hyphen_values = true)]
    block: Option<PartSize>,

    /// With --pipe: the string that ends a record [default: \n].
    #[arg(long, value_name = "STR")]
    recend: Option<String>,

    /// With --pipe: --recend and --recstart are regular expressions.
    #[arg(long, alias = "regex")]
    regexp: bool,

    /// With --pipe: the string that starts a record.
    #[arg(long, value_name = "STR")]
    recstart: Option<String>,

    /// Start a job only while the 1-minute load average is below N. As -j: N, +N or -N
    /// (the cores plus or minus N), N% of the cores, or a file holding one of these;
    /// 0 is 0.01. Running jobs are not stopped.
    #[arg(long, value_name = "N", value_parser = parse_load, allow_negative_numbers = true)]
    load: Option<LoadLimit>,

    /// Start a job only while at least SIZE of memory is available (MemAvailable;
    /// K, M, G as in --block). Running jobs are not stopped.
    #[arg(long, value_name = "SIZE", value_parser = parse_block)]
    memfree: Option<u64>,

    /// Run jobs on these machines over SSH: [N/][user@]host[:port], or : for this
    /// one (repeatable, or comma-separated). N/ caps the jobs there; without it, -j or
    /// the machine's core count (asked once, with nproc).
    #[arg(short = 'S', long = "sshlogin", value_name = "SPEC")]
    sshlogin: Vec<String>,

    /// Read --sshlogin SPECs from FILE, one per line (# starts a comment). The file
    /// is read again when it changes: new hosts join the run.
    #[arg(long = "slf", alias = "sshloginfile", value_name = "FILE")]
    slf: Vec<PathBuf>,

    /// The ssh command and its options, as in GNU parallel (e.g. "ssh -i key").
    #[arg(long, value_name = "CMD", default_value = "ssh")]
    ssh: String,

    /// With -S: one SSH session per host runs `concur agent` there, which starts the
    /// host's jobs itself and streams their output back, so a job does not pay for an
    /// SSH session and the login shell (a slow ~/.bashrc runs once per host, not once
    /// per job). Needs concur on the hosts (see --remote-concur). Timeouts, Ctrl-C and
    /// lost hosts behave as without it. Not with --round-robin or --tee.
    #[arg(long, conflicts_with_all = ["round_robin", "tee"])]
    remote_agent: bool,

    /// The concur executable on the -S hosts, for --remote-agent.
    #[arg(long, value_name = "PATH", default_value = "concur")]
    remote_concur: String,

    /// With -S: where jobs run on each host (made if missing). "." is this
    /// directory's path. Default: a directory made for the run, removed at the end.
    #[arg(long = "workdir", aliases = ["wd", "work-dir"], value_name = "DIR")]
    workdir: Option<PathBuf>,

    /// With -S: send FILE (replacement strings allowed, e.g. {}) to the job's host
    /// before it runs, at the same path under the work directory (absolute paths
    /// stay absolute). Over rsync, or tar through ssh where rsync is missing.
    #[arg(long = "transferfile", aliases = ["tf", "transfer-file", "transfer-files", "transferfiles"], value_name = "FILE")]
    transferfile: Vec<String>,

    /// With -S: fetch FILE (replacement strings allowed, e.g. {.}.out) from the
    /// job's host after it ran, to the same relative path here.
    #[arg(long = "return", value_name = "FILE")]
    return_file: Vec<String>,

    /// With -S: remove the sent and fetched files on the host after the job.
    #[arg(long)]
    cleanup: bool,

    /// With -S: run every job on every host (one at a time on each, the hosts at
    /// once); each host's output is printed whole, in host order.
    #[arg(long, conflicts_with_all = ["pipe", "pipepart", "nonall"])]
    onall: bool,

    /// With -S: run the command once on every host, with no arguments (--onall
    /// without input).
    #[arg(long, conflicts_with_all = ["pipe", "pipepart"])]
    nonall: bool,

    /// With -S: send FILE to each host before its first job (into the work
    /// directory; with --cleanup and a --workdir, removed at the end). Repeatable.
    #[arg(long, alias = "bf", value_name = "FILE")]
    basefile: Vec<String>,

    /// With -S: set VAR (as it is here) in every remote job; VAR1,VAR2 for several; an
    /// exported bash function is defined there too. `_` is every variable not named
    /// in $PARALLEL_HOME/ignored_vars (see --record-env). Local jobs inherit the
    /// environment anyway.
    #[arg(long, value_name = "VAR")]
    env: Vec<String>,

    /// Write the names of the variables set now to $PARALLEL_HOME/ignored_vars (or
    /// ~/.parallel/ignored_vars), for --env _ to leave out; run nothing.
    #[arg(long)]
    record_env: bool,

    /// With -S: --transferfile {} --cleanup, plus --return FILE.
    #[arg(long, value_name = "FILE")]
    trc: Vec<String>,

    /// Run as a script's interpreter: the last word is the script, whose lines after
    /// its `#!` line are the input (`#!/usr/bin/env -S concur run --shebang CMD`, or
    /// `#!/path/to/concur run --shebang CMD`).
    #[arg(long, alias = "hashbang")]
    shebang: bool,

    /// Read options from the profile NAME first: the file NAME in $PARALLEL_HOME
    /// (default ~/.parallel), or NAME itself if it holds a `/`; options separated by
    /// white space, `#` lines comments (repeatable). Without -J, ~/.parallel/config is read if it exists. $PARALLEL's
    /// options come after the profiles, before the command line's.
    #[arg(short = 'J', long = "profile", value_name = "NAME")]
    profile: Vec<String>,

    /// Accepted for GNU parallel scripts; does nothing.
    #[arg(long, alias = "willcite", hide = true)]
    will_cite: bool,

    /// Kept for older concur scripts: commands already go through sh when they need to.
    #[arg(long, hide = true)]
    shell: bool,

    /// The command, then `::: ARGS`, `:::+ ARGS`, `:::: FILES`, `::::+ FILES`.
    #[arg(trailing_var_arg = true, value_name = "CMD")]
    command: Vec<OsString>,
}

/// `-j` as written: a count, or a file holding one (read again when it changes).
#[derive(Clone, Debug)]
enum JobsArg {
    Count(JobCount),
    File(PathBuf),
}

fn parse_jobs(text: &str) -> Result<JobsArg, String> {
    match text.parse::<JobCount>() {
        Ok(count) => Ok(JobsArg::Count(count)),
        Err(_) if std::path::Path::new(text).is_file() => Ok(JobsArg::File(text.into())),
        Err(err) => Err(err),
    }
}

/// `--delay D` or `--delay Dauto`.
fn parse_delay(text: &str) -> Result<(Duration, bool), String> {
    match text.trim().strip_suffix("auto") {
        Some(d) => parse_duration(d).map(|d| (d, true)),
        None => parse_duration(text).map(|d| (d, false)),
    }
}

fn parse_timeout(text: &str) -> Result<Timeout, String> {
    if let Some(p) = text.strip_suffix('%') {
        return match p.parse::<f64>() {
            Ok(p) if p > 0.0 => Ok(Timeout::PercentOfMedian(p)),
            _ => Err(format!(
                "invalid --timeout {text:?}: a percentage must be above 0"
            )),
        };
    }
    let d = parse_duration(text)?;
    if d.is_zero() {
        return Err(
            "--timeout 0 would stop every job at once; leave --timeout out for none".into(),
        );
    }
    Ok(Timeout::Fixed(d))
}

/// `--load` as written.
#[derive(Clone, Copy, Debug)]
enum LoadLimit {
    Absolute(f64),
    PercentOfCores(f64),
    /// `+N` / `-N`: the cores plus N (N may be negative).
    CoresPlus(f64),
}

impl LoadLimit {
    /// The highest load average at which a job starts, on a machine of `cores`.
    fn resolve(self, cores: usize) -> f64 {
        match self {
            LoadLimit::Absolute(n) => n,
            LoadLimit::PercentOfCores(p) => cores as f64 * p / 100.0,
            LoadLimit::CoresPlus(n) => (cores as f64 + n).max(0.01),
        }
    }
}

/// `--load`: GNU parallel's syntax of `-j` (N, +N, -N, N%, a file holding one), where
/// 0 means 0.01.
fn parse_load(text: &str) -> Result<LoadLimit, String> {
    let path = std::path::Path::new(text.trim());
    if path.is_file() {
        let held = crate::limits::read_bounded(path, 4096, "a --load file")
            .map_err(|e| format!("cannot read --load {}: {e}", path.display()))?;
        let held = String::from_utf8_lossy(&held);
        return load_value(held.trim()).map_err(|e| format!("{e} (read from {})", path.display()));
    }
    load_value(text.trim())
}

fn load_value(text: &str) -> Result<LoadLimit, String> {
    let bad =
        || format!("invalid --load {text:?}: expected N, +N, -N, N% (as -j) or a file holding one");
    let number = |t: &str| t.parse::<f64>().ok().filter(|n| n.is_finite() && *n >= 0.0);
    if let Some(p) = text.strip_suffix('%') {
        return number(p)
            .filter(|p| *p > 0.0)
            .map(LoadLimit::PercentOfCores)
            .ok_or_else(bad);
    }
    match text.as_bytes().first() {
        Some(b'+') => number(&text[1..]).map(LoadLimit::CoresPlus),
        Some(b'-') => number(&text[1..]).map(|n| LoadLimit::CoresPlus(-n)),
        _ => number(text).map(|n| LoadLimit::Absolute(if n == 0.0 { 0.01 } else { n })),
    }
    .ok_or_else(bad)
}

/// `--halt never` is a value of its own.
#[derive(Clone, Copy, Debug)]
enum HaltSpec {
    Never,
    When(Halt),
}

/// GNU parallel's spellings that clap cannot read as they are, rewritten: `--halt-on-error
/// VALUE` (GNU parallel's alias of `--halt`; concur's own `--halt-on-error` takes no
/// value, so it is rewritten only when a halt value follows). Only the options before
/// the command are looked at. `args` are `concur run`'s, after `run`.
/// `$PARALLEL_HOME`, else `~/.parallel`.
fn parallel_home() -> Option<PathBuf> {
    std::env::var_os("PARALLEL_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".parallel")))
}

/// The variables `--env` names, with their values here (names of unset ones are
/// left out); an exported bash function comes as its `BASH_FUNC_name%%` variable.
/// `_` is every variable not in `ignored_vars` (an error without that file, as in GNU
/// parallel).
fn remote_env(names: &[String]) -> Result<Vec<(String, Vec<u8>)>, UsageError> {
    use std::os::unix::ffi::OsStringExt;
    let mut wanted: Vec<String> = names
        .iter()
        .flat_map(|n| n.split(','))
        .filter(|n| !n.is_empty())
        .map(str::to_owned)
        .collect();
    if wanted.iter().any(|n| n == "_") {
        let path = parallel_home().map(|d| d.join("ignored_vars"));
        let ignored = path
            .as_ref()
            .and_then(|p| std::fs::read_to_string(p).ok())
            .ok_or_else(|| {
                UsageError(
                    "--env _ needs the list of variables to leave out: run \
                     'concur run --record-env' in a clean environment first"
                        .into(),
                )
            })?;
        let ignored: HashSet<&str> = ignored.lines().collect();
        wanted.retain(|n| n != "_");
        for (name, _) in std::env::vars_os() {
            let name = name.to_string_lossy().into_owned();
            if !ignored.contains(name.as_str()) && !wanted.contains(&name) {
                wanted.push(name);
            }
        }
    }
    let mut env = Vec::new();
    for name in wanted {
        for candidate in [
            name.clone(),
            format!("BASH_FUNC_{name}%%"),
            format!("BASH_FUNC_{name}()"),
        ] {
            if let Some(value) = std::env::var_os(&candidate) {
                // Names the shell cannot set (a `.` in them) are passed over.
                if candidate.starts_with("BASH_FUNC_")
                    || candidate
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'_')
                {
                    env.push((candidate, value.into_vec()));
                }
            }
        }
    }
    Ok(env)
}

/// The words `concur run` reads before its command line, as GNU parallel does: each
/// profile's (`-J NAME`/`--profile NAME`, repeatable, from `$PARALLEL_HOME` or
/// `~/.parallel`; without one, `config` there if it exists), then `$PARALLEL`'s.
/// Fails when a named profile cannot be read.
pub(crate) fn with_defaults(args: Vec<OsString>) -> Result<Vec<OsString>, String> {
    let named = profiles_named(&args);
    let dir = std::env::var_os("PARALLEL_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".parallel")));
    let mut words = Vec::new();
    let mut read = |path: PathBuf, required: bool| -> Result<(), String> {
        match crate::limits::read_bounded(&path, 1 << 20, "a profile") {
            Ok(text) => {
                let text = String::from_utf8_lossy(&text);
                for line in text.lines().filter(|l| !l.trim_start().starts_with('#')) {
                    words.extend(option_words(line).into_iter().map(OsString::from));
                }
                Ok(())
            }
            Err(_) if !required && !path.exists() => Ok(()),
            Err(err) => Err(format!("cannot read the profile {}: {err}", path.display())),
        }
    };
    // A name with a `/` is a path (`-J ./p`, `-J /etc/p`); else it is in the dir.
    for name in &named {
        let path = match &dir {
            _ if name.contains('/') => PathBuf::from(name),
            Some(dir) => dir.join(name),
            None => return Err("--profile: neither $PARALLEL_HOME nor $HOME is set".into()),
        };
        read(path, true)?;
    }
    if let (Some(dir), true) = (&dir, named.is_empty()) {
        read(dir.join("config"), false)?;
    }
    if let Some(env) = std::env::var_os("PARALLEL") {
        words.extend(
            option_words(&env.to_string_lossy())
                .into_iter()
                .map(OsString::from),
        );
    }
    words.extend(args);
    Ok(words)
}

/// The profiles the command line names with -J/--profile, as clap reads it (none if it
/// does not parse: the real parse reports that).
fn profiles_named(args: &[OsString]) -> Vec<String> {
    use clap::Parser;
    let line = ["concur".into(), "run".into()]
        .into_iter()
        .chain(gnu_spellings(args.to_vec()));
    match super::Cli::try_parse_from(line) {
        Ok(super::Cli {
            command: super::Command::Run(run),
            ..
        }) => run.profile,
        _ => Vec::new(),
    }
}

/// Options written in `$PARALLEL` or a profile line: words split at white space, a
/// backslash taking the next character as it is (`\ ` is a space inside a word).
fn option_words(text: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut word: Option<String> = None;
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => word
                .get_or_insert_default()
                .extend(chars.next().or(Some('\\'))),
            c if c.is_whitespace() => words.extend(word.take()),
            c => word.get_or_insert_default().push(c),
        }
    }
    words.extend(word);
    words
}

pub(crate) fn gnu_spellings(args: Vec<OsString>) -> Vec<OsString> {
    use clap::CommandFactory;
    let command = super::Cli::command();
    let Some(run) = command.find_subcommand("run") else {
        return args;
    };
    // Which options take a value, under every name and alias.
    let mut long_values = std::collections::HashSet::new();
    let mut short_values = std::collections::HashSet::new();
    for arg in run.get_arguments() {
        if !arg.get_action().takes_values() || arg.is_positional() {
            continue;
        }
        long_values.extend(arg.get_long_and_visible_aliases().into_iter().flatten());
        long_values.extend(arg.get_all_aliases().into_iter().flatten());
        short_values.extend(arg.get_short_and_visible_aliases().into_iter().flatten());
        short_values.extend(arg.get_all_short_aliases().into_iter().flatten());
    }
    let mut out = Vec::with_capacity(args.len());
    let mut words = args.into_iter().peekable();
    while let Some(word) = words.next() {
        let Some(text) = word.to_str().map(str::to_owned) else {
            out.push(word);
            out.extend(words);
            break;
        };
        if text == "--halt-on-error" {
            let value = words
                .peek()
                .and_then(|v| v.to_str())
                .filter(|v| parse_halt(v).is_ok());
            if let Some(value) = value.map(str::to_owned) {
                words.next();
                // One word, so that a value like -1 is not read as a flag.
                out.push(format!("--halt={value}").into());
                continue;
            }
        } else if let Some(value) = text.strip_prefix("--halt-on-error=") {
            out.push(format!("--halt={value}").into());
            continue;
        }
        let takes_value = if let Some(long) = text.strip_prefix("--") {
            !long.is_empty() && !long.contains('=') && long_values.contains(long)
        } else if let Some(short) = text.strip_prefix('-') {
            // `-j 4`, but not `-j4` or `-kj4`: the value's last letter is the option.
            let mut letters = short.chars();
            letters.next().is_some_and(|c| short_values.contains(&c)) && letters.next().is_none()
        } else {
            // The command begins: nothing after it is concur's.
            out.push(word);
            out.extend(words);
            break;
        };
        out.push(word);
        if takes_value && let Some(value) = words.next() {
            out.push(value);
        }
        if text == "--" {
            out.extend(words);
            break;
        }
    }
    out
}

fn parse_halt(text: &str) -> Result<HaltSpec, String> {
    match text {
        "never" | "0" => Ok(HaltSpec::Never),
        _ => text.parse().map(HaltSpec::When),
    }
}

fn parse_delimiter(text: &str) -> Result<Vec<u8>, UsageError> {
    let bytes = unescape(text);
    if bytes.is_empty() {
        return Err(UsageError("-d: the delimiter is empty".into()));
    }
    Ok(bytes)
}

/// A `--block` size as GNU parallel reads it: `K`, `M`, `G`, `T` multiply by powers of
/// 1024, `k`, `m`, `g`, `t` by powers of 1000.
fn parse_block(text: &str) -> Result<u64, String> {
    let t = text.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (number, unit) = t.split_at(split);
    let n: f64 = number
        .parse()
        .map_err(|_| format!("{text:?} is not a size, as in 1M or 100k"))?;
    let scale: f64 = match unit {
        "" => 1.0,
        "K" => 1024.0,
        "M" => 1024.0 * 1024.0,
        "G" => 1024.0 * 1024.0 * 1024.0,
        "T" => 1024f64.powi(4),
        "k" => 1e3,
        "m" => 1e6,
        "g" => 1e9,
        "t" => 1e12,
        other => {
            return Err(format!(
                "unknown unit {other:?} in {text:?} (K M G T, or k m g t for 1000s)"
            ));
        }
    };
    let bytes = (n * scale).round();
    if bytes < 1.0 {
        return Err(format!("{text:?} must be at least 1 byte"));
    }
    Ok(bytes.min(u64::MAX as f64) as u64)
}

/// A `--block` size as [`parse_block`], or `-N` (N parts per job slot, for
/// `--pipepart`).
fn parse_block_arg(text: &str) -> Result<PartSize, String> {
    match text.trim().strip_prefix('-') {
        Some(n) => Ok(PartSize::PerSlot(parse_block(n)?)),
        None => Ok(PartSize::Bytes(parse_block(text)?)),
    }
}

/// The `--pipe` block: at most [`runner::MAX_BLOCK`] (up to 2 × j + 2 blocks are held
/// at once), and not per slot.
fn pipe_block(block: Option<PartSize>) -> Result<usize, UsageError> {
    match block {
        None => Ok(1 << 20),
        Some(PartSize::PerSlot(_)) => Err(UsageError(
            "--block -N (parts per job slot) needs --pipepart: --pipe cannot know the \
             input's size"
                .into(),
        )),
        Some(PartSize::Bytes(bytes)) if bytes > runner::MAX_BLOCK => Err(UsageError(format!(
            "--block {}",
            super::value::too_large(
                crate::limits::format_bytes(bytes),
                crate::limits::format_bytes(runner::MAX_BLOCK),
            )
        ))),
        Some(PartSize::Bytes(bytes)) => Ok(usize::try_from(bytes).unwrap_or(usize::MAX)),
    }
}

/// A column number, from 1.
fn parse_column(text: &str) -> Result<usize, String> {
    match text.trim().parse::<usize>() {
        Ok(n) if n > 0 => Ok(n),
        _ => Err(format!(
            "{text:?} is not a column number (1 is the first); names and perl expressions \
             are not supported"
        )),
    }
}

/// The files `--pipepart` cuts: every -a and :::: file, in order.
fn part_files(inputs: &[Input], per_job: Option<usize>) -> Result<Vec<PathBuf>, UsageError> {
    if per_job.is_some_and(|n| n > 0) {
        return Err(UsageError(
            "--pipepart cuts by size (--block), not by record count (-N/-L)".into(),
        ));
    }
    let mut files = Vec::new();
    for input in inputs {
        match &input.source {
            Source::File(path) => files.push(path.clone()),
            Source::Stdin => {
                return Err(UsageError(
                    "--pipepart cannot cut standard input (it cannot seek): use --pipe, or \
                     -a FILE"
                        .into(),
                ));
            }
            // ::: values have no file to cut: GNU parallel passes over them.
            Source::List(_) => {}
        }
    }
    if files.is_empty() {
        return Err(UsageError(
            "--pipepart needs a file to cut: give it with -a FILE".into(),
        ));
    }
    Ok(files)
}

/// `--recend`/`--recstart` text with `\n`, `\t`, `\r`, `\0` and `\\` understood.
fn unescape(text: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(text.len());
    let mut bytes = text.bytes();
    while let Some(b) = bytes.next() {
        if b != b'\\' {
            out.push(b);
            continue;
        }
        match bytes.next() {
            Some(b'n') => out.push(b'\n'),
            Some(b't') => out.push(b'\t'),
            Some(b'r') => out.push(b'\r'),
            Some(b'0') => out.push(0),
            Some(other) => out.push(other),
            None => out.push(b'\\'),
        }
    }
    out
}

/// Whether a `{= perl =}` string is anywhere a template is read: the command, the
/// --tagstring, --retries and the files of -S.
fn perl_needed(
    words: &[Vec<u8>],
    tagstring: &Option<String>,
    retries: &Option<String>,
    files: &[String],
) -> bool {
    let has = |text: &[u8]| memchr::memmem::find(text, b"{=").is_some();
    words.iter().any(|w| has(w))
        || [tagstring, retries]
            .into_iter()
            .flatten()
            .chain(files)
            .any(|t| has(t.as_bytes()))
}

/// The largest script `--shebang` reads (it is held in memory).
const MAX_SHEBANG_SCRIPT: u64 = 256 << 20;

/// `--shebang`: the command's last word is the script that ran concur; its lines after
/// the first (the `#!` line) are the input, as GNU parallel reads them.
fn shebang_script(words: &mut Vec<Vec<u8>>) -> Result<Input, UsageError> {
    let Some(script) = words.pop().map(|w| PathBuf::from(OsString::from_vec(w))) else {
        return Err(UsageError(
            "--shebang: no script named (it comes last: #!/usr/bin/env -S concur run --shebang CMD)"
                .into(),
        ));
    };
    let text = crate::limits::read_bounded(&script, MAX_SHEBANG_SCRIPT, "a --shebang script")
        .map_err(|e| UsageError(format!("--shebang: cannot read {}: {e}", script.display())))?;
    // The first line is the `#!` line; GNU parallel skips it whatever it holds.
    let body = text
        .iter()
        .position(|&b| b == b'\n')
        .map_or(&[][..], |end| &text[end + 1..]);
    Ok(Input {
        source: Source::List(vec![body.to_vec()]),
        linked: false,
    })
}

/// The words that start input sources after the command: `:::` and `::::`, or what
/// --arg-sep and --arg-file-sep name instead.
struct Separators {
    list: String,
    files: String,
}

impl Default for Separators {
    fn default() -> Self {
        Self {
            list: ":::".into(),
            files: "::::".into(),
        }
    }
}

impl Separators {
    /// For a separator word: (files, linked).
    fn marker(&self, word: &str) -> Option<(bool, bool)> {
        let linked = |sep: &str| word.strip_suffix('+') == Some(sep);
        if word == self.list {
            Some((false, false))
        } else if linked(&self.list) {
            Some((false, true))
        } else if word == self.files {
            Some((true, false))
        } else if linked(&self.files) {
            Some((true, true))
        } else {
            None
        }
    }
}

/// The command words and the input sources after them.
fn split_command(
    words: Vec<OsString>,
    separators: &Separators,
) -> Result<(Vec<Vec<u8>>, Vec<Input>), UsageError> {
    let mut command = Vec::new();
    let mut inputs: Vec<Input> = Vec::new();
    // Where the words now go: the command, a ::: list, or :::: files.
    let (mut in_files, mut in_sources, mut link_next) = (false, false, false);
    for word in words {
        let marker = word.to_str().and_then(|w| separators.marker(w));
        if let Some((files, linked)) = marker {
            (in_files, in_sources) = (files, true);
            if files {
                link_next = linked;
            } else {
                // A leading `:::+` has nothing to pair with: it is a plain `:::`.
                let linked = linked && !inputs.is_empty();
                inputs.push(Input {
                    source: Source::List(Vec::new()),
                    linked,
                });
            }
            continue;
        }
        if !in_sources {
            // Bytes: a word need not be UTF-8 (a file name in another encoding).
            command.push(word.into_encoded_bytes());
        } else if in_files {
            let path = PathBuf::from(word);
            let source = if path.as_os_str() == "-" {
                Source::Stdin
            } else {
                Source::File(path)
            };
            // Each file after :::: is a source of its own; after ::::+ each is paired
            // with the source before it (a leading ::::+ pairs the files with each
            // other), as in GNU parallel.
            let linked = link_next && !inputs.is_empty();
            inputs.push(Input { source, linked });
        } else if let Some(Input {
            source: Source::List(values),
            ..
        }) = inputs.last_mut()
        {
            values.push(word.into_vec());
        }
    }
    Ok((command, inputs))
}

/// The logins of `-S` (repeatable, comma-separated).
fn logins(specs: &[String]) -> Result<Vec<SshLogin>> {
    let mut logins = Vec::new();
    for spec in specs
        .iter()
        .flat_map(|s| s.split(','))
        .filter(|s| !s.trim().is_empty())
    {
        logins.push(spec.parse::<SshLogin>().map_err(UsageError)?);
    }
    Ok(logins)
}

/// Writes with the progress bar out of the way, from any thread.
struct AroundBar<W> {
    bar: ProgressBar,
    inner: W,
}

impl<W: Write> Write for AroundBar<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let inner = &mut self.inner;
        self.bar.suspend(|| inner.write(buf))
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// Prints job output with the progress bar out of the way. Stderr is locked per write,
/// never for the whole run: the bar's ticker thread draws to stderr too.
struct BarReporter<'a> {
    streams: Streams<&'a mut dyn Write, io::Stderr>,
    bar: ProgressBar,
    total_known: bool,
}

impl Reporter for BarReporter<'_> {
    fn job_output(
        &mut self,
        stdout: &mut Spool,
        stderr: &mut Spool,
        tag: Option<&[u8]>,
    ) -> io::Result<()> {
        let streams = &mut self.streams;
        self.bar.suspend(|| streams.job_output(stdout, stderr, tag))
    }

    fn note(&mut self, message: &str) -> io::Result<()> {
        let streams = &mut self.streams;
        self.bar.suspend(|| streams.note(message))
    }

    fn progress(&mut self, done: usize, _started: usize, total: Option<usize>) {
        match total {
            Some(total) if !self.total_known => {
                self.total_known = true;
                super::output::set_bar_style(&self.bar, "jobs");
                self.bar.set_length(total as u64);
            }
            Some(total) => self.bar.set_length(total as u64),
            None => {}
        }
        self.bar.set_position(done as u64);
    }
}

/// Runs `concur run`.
pub fn run(mut args: RunArgs, out: &mut dyn Write) -> Result<Outcome> {
    let mut separators = Separators::default();
    for (given, sep, flag) in [
        (&args.arg_sep, &mut separators.list, "--arg-sep"),
        (&args.arg_file_sep, &mut separators.files, "--arg-file-sep"),
    ] {
        match given.as_deref() {
            Some("") => return Err(UsageError(format!("{flag} must not be empty")).into()),
            Some(text) => *sep = text.to_owned(),
            None => {}
        }
    }
    if separators.list == separators.files {
        return Err(UsageError(format!(
            "--arg-sep and --arg-file-sep are both {:?}: they must differ",
            separators.list
        ))
        .into());
    }
    // --plus and --rpl strings become {= perl =} wherever replacement strings go.
    let rpl = runner::Rpl::new(args.plus, &args.rpl).map_err(UsageError)?;
    if !rpl.is_empty() {
        let expand = |text: &mut String| {
            *text = String::from_utf8_lossy(&rpl.expand(text.as_bytes())).into_owned();
        };
        args.tagstring.iter_mut().for_each(expand);
        args.retries.iter_mut().for_each(expand);
        args.filter.iter_mut().for_each(expand);
        args.transferfile.iter_mut().for_each(expand);
        args.return_file.iter_mut().for_each(expand);
        args.trc.iter_mut().for_each(expand);
    }
    let file_templates: Vec<String> = (args.transferfile.iter())
        .chain(&args.return_file)
        .chain(&args.trc)
        .cloned()
        .collect();
    let (mut words, mut inputs) = split_command(args.command, &separators)?;
    if args.shebang {
        inputs.push(shebang_script(&mut words)?);
    }
    let words: Vec<Vec<u8>> = words.iter().map(|word| rpl.expand(word)).collect();
    // -a files come before the ::: sources, as in GNU parallel.
    let arg_files = args.arg_file.iter().map(|path| Input {
        source: if path.as_os_str() == "-" {
            Source::Stdin
        } else {
            Source::File(path.clone())
        },
        linked: false,
    });
    inputs = arg_files.chain(inputs).collect();
    let cores = std::thread::available_parallelism().map_or(1, NonZeroUsize::get);
    let jobs_file = match &args.jobs {
        Some(JobsArg::File(path)) => Some(JobsFile { path: path.clone() }),
        _ => None,
    };
    let jobs = match (&args.jobs, &jobs_file) {
        (_, Some(file)) => file.read(cores).map_err(UsageError)?,
        (Some(JobsArg::Count(count)), None) => count.resolve(cores),
        // --tee runs every job at once: without -j, as many as -j 0, as in GNU parallel.
        (_, None) if args.tee => JobCount::Exactly(0).resolve(cores),
        (_, None) => NonZeroUsize::new(cores).unwrap_or(NonZeroUsize::MIN),
    };

    let mut input = InputOptions::new();
    input.inputs = inputs;
    input.link_all = args.link;
    input.max_record = usize::try_from(args.max_line_bytes.max(1)).unwrap_or(usize::MAX);
    input.slots = jobs.get();
    if args.null {
        input.delimiter = vec![0];
    }
    if let Some(d) = &args.delimiter {
        input.delimiter = parse_delimiter(d)?;
    }
    // --header alone splits at tabs; an explicit --colsep also trims each column.
    input.trim = args.colsep.is_some();
    let colsep = args
        .colsep
        .clone()
        .or_else(|| args.header.as_ref().map(|_| "\t".to_owned()));
    if let Some(colsep) = &colsep {
        input.colsep = Some(
            regex::bytes::Regex::new(colsep)
                .map_err(|e| UsageError(format!("--colsep {colsep:?} is not a regex: {e}")))?,
        );
    }
    if args.csv {
        let separator = args.colsep.as_deref().unwrap_or(",");
        let [byte] = separator.as_bytes() else {
            return Err(UsageError(format!(
                "--csv takes a one-byte --colsep (the field separator), not {separator:?}"
            ))
            .into());
        };
        if *byte == b'"' || input.delimiter.contains(byte) {
            return Err(UsageError(format!(
                "--csv cannot use {separator:?} as its field separator"
            ))
            .into());
        }
        input.csv = Some(*byte);
    }
    // Without --pipe, any --header names the columns by the first record, as in GNU
    // parallel; with --pipe, its regex (`:` is the first line) picks out the header.
    let pipe_header = match args.header.as_deref() {
        None => None,
        Some(text) => {
            input.header = true;
            let pattern = if text == ":" { ".*\n" } else { text };
            Some(
                regex::bytes::Regex::new(pattern)
                    .map_err(|e| UsageError(format!("--header {text:?} is not a regex: {e}")))?,
            )
        }
    };
    input.skip_blank = args.no_run_if_empty;
    if let Some(n) = args.max_chars {
        input.fill_bytes = n as usize;
    }
    input.eof = args.eof.as_ref().map(|s| s.as_bytes().to_vec());
    // -L N outside --pipe is -N N, as in GNU parallel.
    // -n 0 is -N 0, as in GNU parallel.
    let max_replace_args =
        (args.max_replace_args.or(args.max_lines)).or(args.max_args.filter(|&n| n == 0));
    let max_args = args.max_args.filter(|&n| n > 0);
    input.grouping = match (max_replace_args, max_args) {
        // With -X/-m, -N or -n caps the records per job (-X still repeats its words).
        (Some(n), _) | (None, Some(n)) => Grouping::Records(n),
        (None, None) if args.context || args.multiple => Grouping::Fill,
        (None, None) => Grouping::One,
    };

    if args.record_env {
        let path = parallel_home()
            .ok_or_else(|| {
                UsageError("--record-env: neither $PARALLEL_HOME nor $HOME is set".into())
            })?
            .join("ignored_vars");
        let mut names: Vec<String> = std::env::vars_os()
            .map(|(name, _)| name.to_string_lossy().into_owned())
            .collect();
        names.sort();
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("cannot make {}", dir.display()))?;
        }
        std::fs::write(&path, names.join("\n") + "\n")
            .with_context(|| format!("cannot write {}", path.display()))?;
        return Ok(Outcome::Code(0));
    }
    let remote_env = remote_env(&args.env)?;
    let signals = SignalCancel::install_with_hangup("run-signals")?;
    // With -S: one master connection per reachable host, closed when this returns.
    let remote_only = !args.transferfile.is_empty()
        || !args.basefile.is_empty()
        || !args.return_file.is_empty()
        || !args.trc.is_empty()
        || args.cleanup;
    let local = args.sshlogin.is_empty() && args.slf.is_empty();
    if remote_only && local {
        return Err(UsageError(
            "--transferfile, --basefile, --return, --trc and --cleanup need -S or --slf".into(),
        )
        .into());
    }
    let fixed_logins = logins(&args.sshlogin)?;
    let hosts = match args.sshlogin.is_empty() && args.slf.is_empty() {
        true => None,
        false => {
            let mut logins = fixed_logins.clone();
            for file in &args.slf {
                // A FIFO waits for a writer; Ctrl-C must still end the run.
                let path = file.clone();
                let Some(read) = signals
                    .token()
                    .unless_cancelled(move || runner::read_login_file(&path))
                else {
                    return Ok(Outcome::Code(signals.exit_status()));
                };
                logins.extend(read.map_err(UsageError)?);
            }
            let workdir = match &args.workdir {
                None => Workdir::RunDir,
                Some(dir) if dir.as_os_str() == "..." => Workdir::PerJob,
                Some(dir) if dir.as_os_str() == "." => Workdir::Path(
                    std::env::current_dir()
                        .context("cannot read the current directory for --workdir .")?
                        .into_os_string()
                        .into_vec(),
                ),
                Some(dir) => Workdir::Path(dir.clone().into_os_string().into_vec()),
            };
            let count: Option<remote::SlotRule> = match &args.jobs {
                Some(JobsArg::Count(count)) => {
                    let count = *count;
                    Some(Arc::new(move |cores| count.resolve(cores)))
                }
                _ => None,
            };
            let command = args.ssh.split_whitespace().map(String::from).collect();
            let connected = Hosts::connect(
                logins,
                command,
                count,
                workdir,
                args.remote_agent.then(|| args.remote_concur.clone()),
                &mut |note| eprintln!("concur: {note}"),
                Some(signals.token()),
            );
            // No host at all: the run cannot start, as when every host is lost.
            match connected {
                Ok(mut hosts) => {
                    hosts.basefiles = args
                        .basefile
                        .iter()
                        .map(|f| f.as_bytes().to_vec())
                        .collect();
                    hosts.cleanup_basefiles = args.cleanup;
                    hosts.env = remote_env;
                    Some(Arc::new(hosts))
                }
                Err(_) if signals.token().is_cancelled() => {
                    return Ok(Outcome::Code(signals.exit_status()));
                }
                Err(err) => {
                    eprintln!("concur: {err}");
                    return Ok(Outcome::Code(255));
                }
            }
        }
    };
    let jobs = hosts
        .as_ref()
        .and_then(|h| NonZeroUsize::new(h.slots()))
        .unwrap_or(jobs);
    // Each running job holds a few descriptors (its pipes, its pidfd, a spool file):
    // past what the limit leaves, fewer jobs run, as in GNU parallel, rather than
    // failing with "Too many open files".
    let _ = crate::limits::raise_fd_limit();
    let jobs = match crate::limits::descriptor_budget_keeping(runner::DESCRIPTORS_PER_JOB, 4) {
        Some(budget) if budget.threads < jobs.get() => {
            let fit = NonZeroUsize::new(budget.threads).unwrap_or(NonZeroUsize::MIN);
            eprintln!(
                "concur: only enough file descriptors to run {fit} jobs at once ({}); running \
                 {fit} (raise `ulimit -n` for more)",
                budget.limit
            );
            fit
        }
        _ => jobs,
    };
    input.slots = jobs.get();
    if (args.pipe || args.pipepart) && words.is_empty() {
        let flag = if args.pipepart {
            "--pipepart"
        } else {
            "--pipe"
        };
        return Err(UsageError(format!(
            "{flag} must have a command to pipe into (e.g. 'cat')"
        ))
        .into());
    }
    // --pipepart cuts the files named by -a and ::::.
    let part_files = match args.pipepart {
        false => Vec::new(),
        true => part_files(&input.inputs, max_replace_args)?,
    };
    let regex = match args.regexp {
        true => Some(
            PipeOptions::regexp(
                args.recend.as_deref().unwrap_or("\n"),
                args.recstart.as_deref().unwrap_or(""),
            )
            .map_err(UsageError)?,
        ),
        false => None,
    };
    // --group-by N: runs of lines with the same column N are never split.
    let group_by = match args.group_by {
        None => None,
        Some(_) if !args.pipe || args.pipepart => {
            return Err(UsageError("--group-by needs --pipe (not --pipepart)".into()).into());
        }
        Some(column) => {
            let colsep = args.colsep.as_deref().unwrap_or("\t");
            let regex = regex::bytes::Regex::new(colsep)
                .map_err(|e| UsageError(format!("--colsep {colsep:?} is not a regex: {e}")))?;
            Some((column - 1, regex))
        }
    };
    let block = match args.pipepart {
        true => 1,
        false => pipe_block(args.block)?,
    };
    let pipe = (args.pipe || args.pipepart).then(|| PipeOptions {
        block,
        recend: args
            .recend
            .as_deref()
            .map_or_else(|| b"\n".to_vec(), unescape),
        recstart: args.recstart.as_deref().map(unescape).unwrap_or_default(),
        // With --pipe, -L N makes a record N lines, and -N M then means M such records.
        // -n is -N here, as in GNU parallel.
        records: args
            .max_replace_args
            .or(args.max_args)
            .filter(|&n| n > 0)
            .map(|n| n.saturating_mul(args.max_lines.unwrap_or(1).max(1))),
        regex,
        header: pipe_header,
        skip_blank: args.no_run_if_empty,
        lines: args.max_lines,
        group_by: group_by.clone(),
    });
    // Open the inputs first: --header names are needed to read the command.
    let source = match &pipe {
        Some(pipe) if args.pipepart => JobSource::Parts(
            Parts::new(
                part_files,
                pipe.clone(),
                // --round-robin: one part per slot, as in GNU parallel.
                match args.round_robin {
                    true => PartSize::PerSlot(1),
                    false => args.block.unwrap_or(runner::DEFAULT_PART_SIZE),
                },
                jobs.get(),
            )
            .context("cannot cut the --pipepart input")?,
        ),
        Some(pipe) if args.tee => {
            if input.inputs.is_empty() {
                return Err(UsageError(
                    "--tee needs arguments: one job per ::: value, each given all of stdin \
                     (e.g. --tee wc {} ::: -l -w)"
                        .into(),
                )
                .into());
            }
            let jobs_list = Jobs::open(&input, None).context("cannot read the job list")?;
            JobSource::Shared(
                runner::Shared::tee(
                    Blocks::new(Box::new(io::stdin()), pipe.clone()),
                    jobs_list,
                    jobs.get(),
                )
                .map_err(|e| UsageError(e.to_string()))?,
            )
        }
        Some(pipe) if args.round_robin => JobSource::Shared(
            runner::Shared::round_robin(
                Blocks::new(Box::new(io::stdin()), pipe.clone()),
                jobs.get(),
            )
            .context("cannot start --round-robin")?,
        ),
        Some(pipe) => JobSource::Pipe(Blocks::new(Box::new(io::stdin()), pipe.clone())),
        None => {
            // Sources after the first are read whole here, and a FIFO waits for its
            // writer: beside the signals, so Ctrl-C still ends the run.
            let opening = input.clone();
            let Some(opened) = signals
                .token()
                .unless_cancelled(move || Jobs::open(&opening, None))
            else {
                return Ok(Outcome::Code(signals.exit_status()));
            };
            JobSource::Args(opened.context("cannot read the job list")?)
        }
    };
    let names = match &source {
        JobSource::Args(jobs) => jobs.names().to_vec(),
        JobSource::Shared(shared) => shared.names().to_vec(),
        JobSource::Pipe(_) | JobSource::Parts(_) | JobSource::List(_) => Vec::new(),
    };
    // GNU parallel's shell: $PARALLEL_SHELL, the shell that started us, $SHELL.
    let (shell, note) = runner::job_shell().map_err(UsageError)?;
    if let Some(note) = note {
        eprintln!("concur: {note}");
    }
    let template_options = TemplateOptions {
        replace: args.replace.clone(),
        quote: args.quote,
        // -m with a count per job repeats its words as -X does, as in GNU parallel.
        context: args.context || (args.multiple && max_replace_args.is_some()),
        names,
        // With --cat/--fifo the block's file name is the argument, appended if no {}.
        no_append: (pipe.is_some() && !(args.cat || args.fifo)) || max_replace_args == Some(0),
        shell: Some(shell),
        perl: perl_needed(&words, &args.tagstring, &args.retries, &file_templates)
            .then(runner::Perl::start)
            .transpose()
            .map_err(UsageError)?,
    };
    let template =
        Template::parse(&words, &template_options).map_err(|e| UsageError(e.to_string()))?;
    let mut source = source;
    if let JobSource::Args(jobs) = &mut source {
        jobs.set_fill_cost(template.fill_cost());
    }
    let tag = match (&args.tagstring, args.tag) {
        (Some(text), _) => Some(Tag::parse(text, &template_options)),
        (None, true) => Some(Tag::parse("{}", &TemplateOptions::default())),
        (None, false) => None,
    }
    .transpose()
    .map_err(|e| UsageError(format!("--tagstring: {e}")))?;

    let filter = match args.filter.is_empty() {
        true => None,
        false => {
            let texts = args
                .filter
                .iter()
                .map(|text| Template::text(text, &template_options))
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| UsageError(format!("--filter: {e}")))?;
            let perl = match &template_options.perl {
                Some(perl) => Arc::clone(perl),
                None => runner::Perl::start().map_err(|e| UsageError(format!("--filter: {e}")))?,
            };
            Some(runner::Filter::new(perl, texts).map_err(UsageError)?)
        }
    };
    if (args.cat || args.fifo) && pipe.is_none() {
        let flag = if args.cat { "--cat" } else { "--fifo" };
        return Err(UsageError(format!("{flag} needs --pipe or --pipepart")).into());
    }
    let mut options = RunOptions::new(template);
    options.filter = filter;
    options.block_as = match (args.cat, args.fifo) {
        (true, _) => Some(runner::BlockAs::File),
        (_, true) => Some(runner::BlockAs::Fifo),
        _ => None,
    };
    if args.compress || args.compress_program.is_some() {
        let path = std::env::var("PATH").ok();
        options.compress = Some(std::sync::Arc::new(crate::process::Codec::choose(
            args.compress_program.as_deref(),
            args.decompress_program.as_deref(),
            path.as_deref(),
        )));
    }
    if let Some(dir) = &args.tmpdir {
        options.tmpdir = dir.clone();
    }
    if let Some(perl) = &template_options.perl {
        perl.set_slots(jobs.get());
        // total_jobs() ({##}, {0#}) needs every input read before the first job.
        let all_text = words
            .iter()
            .map(|w| String::from_utf8_lossy(w).into_owned())
            .chain(args.tagstring.iter().cloned())
            .chain(args.filter.iter().cloned());
        if all_text.into_iter().any(|t| t.contains("total_jobs")) {
            options.count_jobs = Some(Arc::clone(perl));
        }
    }
    options.jobs = jobs;
    options.timeout = args.timeout;
    options.grace = args.grace;
    options.delay = args.delay.map(|(d, _)| d);
    options.delay_auto = args.delay.is_some_and(|(_, auto)| auto);
    options.hangup = signals.hangup().cloned();
    options.keep_order = args.keep_order;
    options.halt = match (args.halt, args.halt_on_error) {
        (Some(HaltSpec::When(halt)), _) => Some(halt),
        (_, true) => Some(Halt::ON_ERROR),
        _ => None,
    };
    // GNU parallel's N counts every attempt; the library's, the ones after the first.
    match args.retries.as_deref().map(str::trim) {
        None => {}
        Some(text) => match text.parse::<u32>() {
            Ok(n) => options.retries = runner::retries_after_first(n),
            Err(_) if text.contains('{') => {
                options.retries_per_job = Some(
                    Template::text(text, &template_options)
                        .map_err(|e| UsageError(format!("--retries: {e}")))?,
                );
            }
            Err(_) => {
                return Err(UsageError(format!(
                    "invalid --retries {text:?}: expected a whole number or a replacement string"
                ))
                .into());
            }
        },
    }
    options.input = input;
    // --shellquote is a dry run whose lines are quoted once more.
    let dry_run = args.dry_run || args.shellquote;
    options.dry_run = dry_run;
    options.shell_quote = args.shellquote;
    options.nice = args.nice;
    options.verbose = args.verbose;
    options.tag = tag;
    options.shuffle = args.shuf;
    options.pipe = pipe;
    options.jobs_file = jobs_file;
    options.jobs = jobs;
    let files = |texts: &[String], what: &str| -> Result<Vec<Template>> {
        texts
            .iter()
            .map(|t| {
                Template::text(t, &template_options)
                    .map_err(|e| UsageError(format!("{what}: {e}")).into())
            })
            .collect()
    };
    options.transfer = files(&args.transferfile, "--transferfile")?;
    options.returns = files(&args.return_file, "--return")?;
    options.cleanup = args.cleanup;
    if !args.trc.is_empty() {
        options
            .transfer
            .push(Template::text("{}", &template_options)?);
        options.returns.extend(files(&args.trc, "--trc")?);
        options.cleanup = true;
    }
    // --workdir here: a directory (`.` is where concur runs), or `...`, a directory
    // of each job's own.
    options.local_workdir = match args.workdir.as_deref() {
        Some(dir) if local && dir.as_os_str() == "..." => Some(LocalWorkdir::Private),
        Some(dir) if local => Some(LocalWorkdir::Dir(dir.to_owned())),
        _ => None,
    };
    options.hosts = hosts;
    options.fixed_logins = fixed_logins;
    options.login_files = args
        .slf
        .iter()
        .map(|path| LoginFile { path: path.clone() })
        .collect();
    options.gate = Gate {
        max_load: args.load.map(|load| load.resolve(cores)),
        min_free: args.memfree,
    };
    // As GNU parallel: a --tmpdir that cannot hold a file is an error before any job
    // runs, whether or not a file is put there.
    if let Some(dir) = &args.tmpdir
        && let Err(err) = tempfile::tempfile_in(dir)
    {
        return Err(UsageError(format!(
            "--tmpdir {}: cannot write there: {err}",
            dir.display()
        ))
        .into());
    }
    // A dry run prints its commands and makes no file.
    options.results = match (&args.results, args.files && !dry_run) {
        _ if dry_run => None,
        (Some(results), _) => Some(
            Results::parse_with(results, &template_options.names)
                .map_err(|e| UsageError(format!("--results: {e}")))?,
        ),
        (None, _) if args.json => Some(Results::Json(None)),
        (None, true) => Some(Results::Files(
            args.tmpdir.clone().unwrap_or_else(std::env::temp_dir),
        )),
        (None, false) => None,
    };
    // GNU parallel's `--joblog +FILE` appends to FILE.
    let (joblog, append) = match args
        .joblog
        .as_deref()
        .map(|p| p.as_os_str().as_encoded_bytes())
    {
        Some([b'+', rest @ ..]) if !rest.is_empty() => {
            (Some(PathBuf::from(std::ffi::OsStr::from_bytes(rest))), true)
        }
        _ => (args.joblog.clone(), false),
    };
    options.joblog_append = append;
    if args.resume || args.resume_failed {
        let path = joblog.clone().unwrap_or_default();
        let reading = path.clone();
        let Some(logged) = signals
            .token()
            .unless_cancelled(move || read_joblog(&reading))
        else {
            return Ok(Outcome::Code(signals.exit_status()));
        };
        let logged = logged
            .with_context(|| format!("cannot read the joblog {} for --resume", path.display()))?;
        options.skip = logged
            .iter()
            .filter(|job| args.resume || job.succeeded())
            .map(|job| job.seq)
            .collect::<HashSet<_>>();
        options.joblog_append = true;
    }
    // A dry run runs nothing, so it logs nothing, as in GNU parallel.
    options.joblog = joblog.filter(|_| !dry_run);
    if args.onall || args.nonall {
        return on_every_host(&options, source, args.nonall, out, signals);
    }

    let bar = super::output::spinner("jobs");
    // As in GNU parallel: -u prints bytes as they come even with -k; -k with
    // --line-buffer prints the oldest job live and the others in order after it.
    let live = match (args.line_buffer, args.ungroup) {
        (true, _) if args.files => None,
        (true, _) => Some(Live::Lines),
        (_, true) => Some(Live::Ungrouped),
        _ => None,
    };
    if let Some(mode) = live {
        out.flush()?;
        let output = LiveOutput::new(
            mode,
            Box::new(AroundBar {
                bar: bar.clone(),
                inner: io::stdout(),
            }),
            Box::new(AroundBar {
                bar: bar.clone(),
                inner: io::stderr(),
            }),
        );
        options.live = Some(Arc::new(if args.keep_order && mode == Live::Lines {
            output.in_order()
        } else {
            output
        }));
    }
    let mut reporter = BarReporter {
        streams: Streams {
            out,
            err: io::stderr(),
        },
        bar: bar.clone(),
        total_known: false,
    };
    let result = runner::run_jobs(&options, source, &mut reporter, signals.token());
    bar.finish_and_clear();
    drop(signals);
    if options
        .input
        .nul_replaced
        .load(std::sync::atomic::Ordering::Relaxed)
    {
        reporter.note(
            "a NUL character in the input was replaced with \\0: NUL cannot be passed \
             through in the argument list (did you mean to use the --null option?)",
        )?;
    }

    let summary = match result {
        Ok(summary) => summary,
        // Standard output went away (`| head -1`): jobs' output was lost, so this is
        // no success; 141 is what a shell shows for a pipeline writer killed by SIGPIPE.
        Err(RunError::Output(err)) if err.kind() == io::ErrorKind::BrokenPipe => {
            return Ok(Outcome::Code(141));
        }
        // Every host was lost: 255, as GNU parallel exits when ssh fails.
        Err(err @ RunError::NoHosts { .. }) => {
            reporter.note(&err.to_string())?;
            return Ok(Outcome::Code(255));
        }
        Err(err) => return Err(err.into()),
    };
    if summary.failed > 0 && summary.interrupted_by.is_none() {
        // Jobs that `--halt now` stopped did not fail of their own: they are named
        // apart.
        let stopped = summary.cancelled.min(summary.failed);
        let halted = match (summary.halted, options.halt) {
            (true, Some(halt)) if stopped > 0 => format!(
                "; stopped starting jobs and {stopped} running {} (--halt {halt})",
                if stopped == 1 { "job" } else { "jobs" }
            ),
            (true, Some(halt)) => format!("; stopped starting jobs (--halt {halt})"),
            _ => String::new(),
        };
        // Stderr piped or in a file holds the jobs' own stderr only, as with GNU
        // parallel (the exit status carries the count); a person at a terminal is
        // told. A halt is always said.
        if !halted.is_empty() || io::stderr().is_terminal() {
            reporter.note(&format!(
                "{} of {} jobs failed{halted}",
                summary.failed - stopped,
                summary.jobs
            ))?;
        }
    }
    Ok(Outcome::Code(summary.exit_code()))
}

/// `--onall`/`--nonall`: the same jobs (with `--nonall`, the command once) on every
/// host, one job at a time on each, the hosts at once; each host's output is printed
/// whole, in host order. The exit status counts the hosts where something failed
/// (capped at 101), as GNU parallel's outer run counts its per-host runs.
fn on_every_host(
    options: &RunOptions,
    source: JobSource,
    nonall: bool,
    out: &mut dyn Write,
    signals: SignalCancel,
) -> Result<Outcome> {
    let Some(hosts) = options.hosts.clone() else {
        return Err(UsageError("--onall and --nonall need hosts: give -S or --slf".into()).into());
    };
    let jobs = match nonall {
        true => vec![Ok(runner::JobArgs::default())],
        false => source.read_all().context("cannot read the job list")?,
    };
    let token = signals.token();
    let runs: Vec<_> = std::thread::scope(|scope| {
        let handles: Vec<_> = hosts
            .all()
            .into_iter()
            .map(|host| {
                let jobs = jobs.clone();
                let hosts = &hosts;
                scope.spawn(move || {
                    let mut one = options.clone();
                    one.hosts = Some(Arc::new(hosts.only(&host, 1)));
                    one.jobs = NonZeroUsize::MIN;
                    one.login_files = Vec::new();
                    // Each host's run would write the one joblog at once.
                    one.joblog = None;
                    let mut streams = Streams {
                        out: Vec::new(),
                        err: Vec::new(),
                    };
                    let result =
                        runner::run_jobs(&one, JobSource::List(jobs.into()), &mut streams, token);
                    (host.login.to_string(), result, streams)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join()).collect()
    });
    let mut failed_hosts = 0usize;
    for run in runs {
        let Ok((login, result, streams)) = run else {
            failed_hosts += 1;
            continue;
        };
        out.write_all(&streams.out)?;
        io::stderr().write_all(&streams.err)?;
        match result {
            Ok(summary) if summary.exit_code() == 0 => {}
            Ok(_) => failed_hosts += 1,
            Err(err) => {
                eprintln!("concur: {login}: {}", crate::error_chain(&err));
                failed_hosts += 1;
            }
        }
    }
    out.flush()?;
    if token.is_cancelled() {
        return Ok(Outcome::Code(signals.exit_status()));
    }
    Ok(Outcome::Code(failed_hosts.min(101) as u8))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn os(words: &[&str]) -> Vec<OsString> {
        words.iter().map(OsString::from).collect()
    }

    #[test]
    fn jobs_forms_resolve_against_the_cores() {
        let j = |t: &str| t.parse::<JobCount>().unwrap().resolve(4).get();
        assert_eq!(
            (j("3"), j("+1"), j("-1"), j("-9"), j("50%"), j("0")),
            (3, 5, 3, 1, 2, 1024)
        );
        assert!(parse_jobs("x").is_err() && parse_jobs("+").is_err() && parse_jobs("0%").is_err());
        let file = tempfile::NamedTempFile::new().unwrap();
        assert!(
            matches!(
                parse_jobs(file.path().to_str().unwrap()),
                Ok(JobsArg::File(_))
            ),
            "a file holds the count"
        );
    }

    #[test]
    fn option_words_split_at_blanks_and_keep_escaped_ones() {
        assert_eq!(option_words("  -k --tag "), ["-k", "--tag"]);
        assert_eq!(
            option_words(r"--tagstring a\ b -j\\"),
            ["--tagstring", "a b", r"-j\"]
        );
        assert_eq!(option_words(r"trailing\"), [r"trailing\"]);
        assert!(option_words("").is_empty());
    }

    #[test]
    fn other_separators_replace_the_colons() {
        let separators = Separators {
            list: ",,".into(),
            files: "//".into(),
        };
        let (command, inputs) = split_command(
            os(&["echo", ":::", ",,", "a", ",,+", "1", "//", "f"]),
            &separators,
        )
        .unwrap();
        assert_eq!(command, [b"echo".to_vec(), b":::".to_vec()]);
        let shape: Vec<_> = inputs
            .iter()
            .map(|i| (matches!(i.source, Source::File(_)), i.linked))
            .collect();
        assert_eq!(shape, [(false, false), (false, true), (true, false)]);
    }

    #[test]
    fn the_command_and_its_sources_are_split_at_the_markers() {
        let (command, inputs) = split_command(
            os(&["echo", "{}", ":::", "a", "b", ":::+", "1", "::::", "f", "g"]),
            &Separators::default(),
        )
        .unwrap();
        assert_eq!(command, [b"echo".to_vec(), b"{}".to_vec()]);
        let shape: Vec<_> = inputs
            .iter()
            .map(|i| match &i.source {
                Source::List(v) => (format!("list {}", v.len()), i.linked),
                Source::File(p) => (p.display().to_string(), i.linked),
                Source::Stdin => ("-".into(), i.linked),
            })
            .collect();
        assert_eq!(
            shape,
            [
                ("list 2".to_owned(), false),
                ("list 1".to_owned(), true),
                ("f".to_owned(), false),
                ("g".to_owned(), false)
            ]
        );
        // A leading :::+ has nothing to pair with; after ::::+ every file is paired.
        let (_, inputs) =
            split_command(os(&["echo", ":::+", "a"]), &Separators::default()).unwrap();
        assert!(!inputs[0].linked);
        let (_, inputs) = split_command(
            os(&["echo", "::::+", "f", "g", "h"]),
            &Separators::default(),
        )
        .unwrap();
        let linked: Vec<bool> = inputs.iter().map(|i| i.linked).collect();
        assert_eq!(linked, [false, true, true]);
    }

    #[test]
    fn timeouts_and_delimiters_are_checked() {
        assert!(parse_timeout("0").unwrap_err().contains("every job"));
        assert!(
            matches!(parse_timeout("1.5"), Ok(Timeout::Fixed(d)) if d == Duration::from_millis(1500))
        );
        assert!(matches!(parse_timeout("200%"), Ok(Timeout::PercentOfMedian(p)) if p == 200.0));
        assert_eq!(parse_delimiter("\\0").unwrap(), [0]);
        assert_eq!(parse_delimiter(",").unwrap(), b",");
        assert_eq!(parse_delimiter("\\r\\n").unwrap(), b"\r\n");
        assert!(parse_delimiter("").is_err());
        assert_eq!(parse_block("1M"), Ok(1 << 20));
        assert_eq!(parse_block("100k"), Ok(100_000));
        assert_eq!(parse_block("2K"), Ok(2048));
        assert!(parse_block("0").is_err() && parse_block("1x").is_err());
    }
}
