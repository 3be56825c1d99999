//! Turning a job's arguments into a command, as GNU parallel does.
//!
//! The command's words are joined by spaces into one shell command line, and every
//! replacement string in it is replaced by its argument, quoted for where it sits in
//! that line (bare, in `'…'`, in `"…"`, in `$( )` or backquotes, in the script of an
//! `sh -c`), so that the shell reads the argument as data, byte for byte: see
//! [`shell`](super::shell). The line runs with `sh -c`. When the words hold nothing the
//! shell would interpret (no spaces, quotes, `;`, `|`, `$`, globs, …), the same words
//! are run directly instead, sparing a shell per job: the result is what the shell
//! would have run.
//!
//! Replacement strings: `{}` (the argument), `{.}` (without extension), `{/}`
//! (basename), `{//}` (dirname), `{/.}` (basename without extension), `{#}` (job
//! sequence number), `{%}` (job slot), `{N}` and `{N.}`, `{N/}`, `{N//}`, `{N/.}` (the
//! Nth argument), and `{name}` for a `--header` column. A command with none of the
//! argument strings gets the arguments appended. A `{…}` made of replacement-string
//! characters that is none of these (`{..}`, `{1x}` is not, `{=perl=}` is) is an error.

use std::cell::Cell;
use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use thiserror::Error;

use std::sync::Arc;

use super::input::JobArgs;
use super::perl::Perl;
use super::shell::{Contexts, Piece, quote_word};
use crate::process::Cmd;

/// What a replacement string does to its argument.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Modifier {
    /// As it is.
    Whole,
    /// `.`: without its extension.
    NoExtension,
    /// `/`: the part after the last `/`.
    Basename,
    /// `//`: the directory part.
    Dirname,
    /// `/.`: the basename without its extension.
    BasenameNoExtension,
}

impl Modifier {
    fn parse(text: &str) -> Option<Self> {
        Some(match text {
            "" => Modifier::Whole,
            "." => Modifier::NoExtension,
            "/" => Modifier::Basename,
            "//" => Modifier::Dirname,
            "/." => Modifier::BasenameNoExtension,
            _ => return None,
        })
    }

    /// Applies the modifier, with GNU parallel's rules (`dirname` as Perl's
    /// `File::Basename` has it).
    fn apply<'a>(self, value: &'a [u8]) -> std::borrow::Cow<'a, [u8]> {
        use std::borrow::Cow;
        let basename = |v: &'a [u8]| match v.iter().rposition(|&b| b == b'/') {
            Some(i) => &v[i + 1..],
            None => v,
        };
        let no_extension = |v: &'a [u8]| match v.iter().rposition(|&b| b == b'.') {
            Some(i) if !v[i..].contains(&b'/') => &v[..i],
            _ => v,
        };
        match self {
            Modifier::Whole => Cow::Borrowed(value),
            Modifier::NoExtension => Cow::Borrowed(no_extension(value)),
            Modifier::Basename => Cow::Borrowed(basename(value)),
            Modifier::BasenameNoExtension => Cow::Borrowed(no_extension(basename(value))),
            Modifier::Dirname => {
                let trimmed = trim_slashes(value);
                if value.is_empty() {
                    return Cow::Borrowed(b".");
                }
                if trimmed.is_empty() {
                    return Cow::Borrowed(b"/");
                }
                match trimmed.iter().rposition(|&b| b == b'/') {
                    None => Cow::Borrowed(b"."),
                    Some(i) => match trim_slashes(&trimmed[..i]) {
                        [] => Cow::Borrowed(b"/"),
                        dir => Cow::Owned(dir.to_vec()),
                    },
                }
            }
        }
    }
}

fn trim_slashes(v: &[u8]) -> &[u8] {
    let end = v.iter().rposition(|&b| b != b'/').map_or(0, |i| i + 1);
    &v[..end]
}

/// A replacement string.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Replacement {
    /// `{}` and its modified forms: every argument of the job.
    All(Modifier),
    /// `{N}` and its modified forms (1-based); also `{name}` with `--header`.
    Nth(usize, Modifier),
    /// `{-N}` and its modified forms: the Nth argument from the end (`{-1}` the last).
    FromEnd(usize, Modifier),
    /// `{#}`: the job's sequence number.
    Seq,
    /// `{%}`: the job slot, 1 to `-j`.
    Slot,
    /// `{= perl =}` (expression number `expr` in the run's perl), or `{=N perl =}`
    /// (over argument N only; `{=-N perl =}` counts from the last).
    Perl {
        expr: usize,
        position: Option<isize>,
    },
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Token {
    Text(Vec<u8>),
    /// A replacement string, and its hole's number in the command (the key of its
    /// quoting in [`Contexts`]).
    Replace(Replacement, usize),
}

/// A command word: text and replacement strings.
type Word = Vec<Token>;

/// How the command runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    /// No command given: each job's arguments, joined by spaces, are the shell command.
    Lines,
    /// The words, joined into one shell command line.
    Shell,
    /// The words as the program and its arguments: nothing in them is shell syntax,
    /// or `-q` asked for them to be taken literally.
    Direct,
}

/// How the command's words are read.
#[derive(Clone, Debug, Default)]
pub struct TemplateOptions {
    /// `-I STR`: the string that stands for the argument, instead of `{}`.
    pub replace: Option<String>,
    /// `-q`: run the words as they are (the program and its arguments), with no shell.
    pub quote: bool,
    /// `-X`: a word holding `{}` is repeated for each argument (context replacement).
    pub context: bool,
    /// Column names from `--header :`.
    pub names: Vec<String>,
    /// `--pipe`: jobs take their input on stdin; nothing is appended.
    pub no_append: bool,
    /// The shell that runs command lines (`-c`); `None`: `/bin/sh`. See
    /// [`job_shell`](super::job_shell) for GNU parallel's choice.
    pub shell: Option<PathBuf>,
    /// The run's `perl`, for `{= perl expression =}` (without it they are refused).
    pub perl: Option<Arc<Perl>>,
}

/// The run's perl, compared by identity (a template equals another with the same one).
#[derive(Clone, Debug)]
struct SharedPerl(Arc<Perl>);

impl PartialEq for SharedPerl {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

impl Eq for SharedPerl {}

/// A command with replacement strings: how each job's arguments become a command.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Template {
    words: Vec<Word>,
    kind: Kind,
    context: bool,
    /// `-q`: the words are the program and its arguments, shown quoted.
    literal: bool,
    /// `-q` with a program not on PATH (a shell function, say): the words, each
    /// quoted, run in the shell, as GNU parallel runs them.
    via_shell: bool,
    /// How each hole's value is quoted where it sits.
    quoting: Contexts,
    /// The shell that runs command lines.
    shell: PathBuf,
    /// The perl that evaluates `{= … =}`.
    perl: Option<SharedPerl>,
}

/// A command that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum TemplateError {
    /// A `{…}` that looks like a replacement string but is not one.
    #[error(
        "unknown replacement string {0} in the command (known: {{}} {{.}} {{/}} {{//}} {{/.}} {{#}} {{%}} {{N}} {{N.}} {{N/}} {{N//}} {{N/.}}, and --header names)"
    )]
    Unknown(String),
    /// `{0}`: positions start at 1.
    #[error("replacement string {{0}} in the command: positions start at {{1}}")]
    Zero,
    /// A `{= perl =}` that cannot be used: no perl, or not valid Perl.
    #[error("{0}")]
    Perl(String),
}

/// A command rendered for one job.
#[derive(Debug)]
pub struct Rendered {
    /// What to run.
    pub cmd: Cmd,
    /// The command line as the shell would read it: for the joblog, `--dry-run`, `-v`.
    pub line: Vec<u8>,
    /// A `{= … =}` called `skip()`: the job is not to run.
    pub skip: bool,
}

/// Bytes that mean nothing to the shell in a command word: a word made only of these
/// runs the same with or without `sh -c`.
fn shell_plain(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"_@%+:,./-".contains(&b) || b >= 0x80
}

impl Template {
    /// Reads the command's words. No words means each job's arguments are the command.
    pub fn parse<W: AsRef<[u8]>>(
        words: &[W],
        options: &TemplateOptions,
    ) -> Result<Self, TemplateError> {
        if words.is_empty() {
            return Ok(Template {
                words: Vec::new(),
                kind: Kind::Lines,
                context: false,
                // -q: each input is one quoted word, as in GNU parallel.
                literal: options.quote,
                via_shell: false,
                quoting: Contexts::default(),
                shell: shell_of(options),
                perl: None,
            });
        }
        let mut parsed = words
            .iter()
            .map(|w| parse_word(w.as_ref(), options))
            .collect::<Result<Vec<_>, _>>()?;
        // Any replacement string, {#} included, keeps the arguments from being appended.
        let takes_arguments = parsed
            .iter()
            .flatten()
            .any(|t| matches!(t, Token::Replace(..)));
        if !takes_arguments && !options.no_append {
            parsed.push(vec![Token::Replace(Replacement::All(Modifier::Whole), 0)]);
        }
        // Number the holes in order.
        for (hole, token) in parsed
            .iter_mut()
            .flatten()
            .filter(|t| matches!(t, Token::Replace(..)))
            .enumerate()
        {
            if let Token::Replace(_, number) = token {
                *number = hole;
            }
        }
        let plain = parsed.iter().enumerate().all(|(i, word)| {
            !word.is_empty()
                && word.iter().all(|t| match t {
                    // `A=b cmd` would set a variable in the shell.
                    Token::Text(text) => {
                        text.iter().all(|&b| shell_plain(b) || (b == b'=' && i > 0))
                    }
                    Token::Replace(..) => true,
                })
        });
        // A program that is not on PATH may be a shell function (bash's `export -f`)
        // or builtin: the shell runs it, as in GNU parallel. So may a program named
        // by a replacement string (`{}_doit`), which cannot be looked up before.
        let found = || match parsed.first().map(Vec::as_slice) {
            Some([Token::Text(program)]) if !program.contains(&b'/') => {
                on_path(OsStr::from_bytes(program)).is_some()
            }
            Some(word) => !word.iter().any(|t| matches!(t, Token::Replace(..))),
            None => true,
        };
        let program_found = found();
        let kind = if options.quote || (plain && program_found) {
            Kind::Direct
        } else {
            Kind::Shell
        };
        let quoting = match kind {
            Kind::Shell => Contexts::of(&pieces(&parsed)),
            _ => Contexts::of_argv(&parsed.iter().map(word_pieces).collect::<Vec<_>>()),
        };
        Ok(Template {
            words: parsed,
            kind,
            context: options.context,
            literal: options.quote,
            via_shell: options.quote && !program_found,
            quoting,
            shell: shell_of(options),
            perl: options.perl.clone().map(SharedPerl),
        })
    }

    /// What a job's command line costs, counted as GNU parallel counts it when it
    /// packs arguments for `-X` and `-m`: the command's own text and the spaces between
    /// its words, then for each record its values as GNU parallel quotes them, once per
    /// replacement string, with a space each. With `-X` a word holding a replacement
    /// string is repeated per record, its own text included.
    pub fn fill_cost(&self) -> super::FillCost {
        let text_len = |word: &Word| -> usize {
            word.iter()
                .map(|t| match t {
                    Token::Text(text) => text.len(),
                    Token::Replace(Replacement::Seq | Replacement::Slot, _) => 1,
                    Token::Replace(..) => 0,
                })
                .sum()
        };
        let takes_values = |word: &Word| {
            word.iter().any(|t| {
                matches!(
                    t,
                    Token::Replace(
                        Replacement::All(_) | Replacement::Nth(..) | Replacement::FromEnd(..),
                        _
                    )
                )
            })
        };
        let replacements: Vec<Replacement> = self
            .words
            .iter()
            .flatten()
            .filter_map(|t| match t {
                Token::Replace(
                    r @ (Replacement::All(_) | Replacement::Nth(..) | Replacement::FromEnd(..)),
                    _,
                ) => Some(*r),
                _ => None,
            })
            .collect();
        let gaps = self.words.len().saturating_sub(1);
        let value_len = |modifier: Modifier, value: &[u8]| quote_word(&modifier.apply(value)).len();
        let values = move |r: &Replacement, record: &[Vec<u8>]| -> (usize, usize) {
            match r {
                Replacement::All(m) => {
                    (record.iter().map(|v| value_len(*m, v)).sum(), record.len())
                }
                Replacement::Nth(n, m) => (record.get(n - 1).map_or(0, |v| value_len(*m, v)), 1),
                Replacement::FromEnd(n, m) => {
                    let value = record.len().checked_sub(*n).and_then(|i| record.get(i));
                    (value.map_or(0, |v| value_len(*m, v)), 1)
                }
                _ => (0, 0),
            }
        };
        if self.context {
            let (context, other): (Vec<&Word>, Vec<&Word>) =
                self.words.iter().partition(|w| takes_values(w));
            let context_text: usize = context.iter().map(|w| text_len(w)).sum();
            let groups = context.len();
            let base = other.iter().map(|w| text_len(w)).sum::<usize>() + gaps;
            super::FillCost {
                base: base.saturating_sub(groups),
                per_record: std::sync::Arc::new(move |record| {
                    context_text
                        + groups
                        + replacements
                            .iter()
                            .map(|r| values(r, record).0)
                            .sum::<usize>()
                }),
            }
        } else {
            let text: usize = self.words.iter().map(text_len).sum();
            super::FillCost {
                base: (text + gaps).saturating_sub(replacements.len()),
                per_record: std::sync::Arc::new(move |record| {
                    replacements
                        .iter()
                        .map(|r| {
                            let (len, count) = values(r, record);
                            len + count
                        })
                        .sum()
                }),
            }
        }
    }

    /// Whether any replacement string is in it.
    pub fn has_replacements(&self) -> bool {
        self.words
            .iter()
            .flatten()
            .any(|t| matches!(t, Token::Replace(..)))
    }

    /// Whether commands run through `sh -c`.
    pub fn is_shell(&self) -> bool {
        self.kind != Kind::Direct
    }

    /// Looks the program up in `PATH` once, when every job runs the same program
    /// directly: each job then runs it by path, instead of every spawn searching `PATH`
    /// again (one failed `execve` per directory before the right one). `None` when
    /// there is nothing to resolve or the program is not found (each job then reports
    /// "command not found" itself).
    pub fn resolve_program(&self) -> Option<PathBuf> {
        if self.kind != Kind::Direct {
            return None;
        }
        let [Token::Text(program)] = self.words.first()?.as_slice() else {
            return None;
        };
        if program.contains(&b'/') {
            return None;
        }
        on_path(OsStr::from_bytes(program))
    }

    /// The command for one job: its arguments, sequence number and slot.
    ///
    /// ```
    /// use concur::runner::{JobArgs, Template, TemplateOptions};
    ///
    /// let words = |w: &[&str]| w.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    /// let arg = |a: &str| JobArgs::single(vec![a.as_bytes().to_vec()]);
    /// let t = Template::parse(&words(&["gzip", "-k", "{}"]), &TemplateOptions::default()).unwrap();
    /// assert_eq!(t.render(&arg("my file.txt"), 1, 1, None).line, b"gzip -k 'my file.txt'");
    /// let t = Template::parse(&words(&["echo"]), &TemplateOptions::default()).unwrap();
    /// assert_eq!(t.render(&arg("appended"), 1, 1, None).line, b"echo appended");
    /// let t = Template::parse(&words(&["wc -l < {.}.txt"]), &TemplateOptions::default()).unwrap();
    /// assert_eq!(t.render(&arg("a;b.csv"), 1, 1, None).line, b"wc -l < 'a;b'.txt");
    /// ```
    pub fn render(
        &self,
        args: &JobArgs,
        seq: usize,
        slot: usize,
        program: Option<&Path>,
    ) -> Rendered {
        if self.kind == Kind::Lines {
            let script = if self.literal {
                let quoted: Vec<Vec<u8>> = args.values.iter().map(|v| quote_word(v)).collect();
                quoted.join(&b' ')
            } else {
                args.joined(b" ")
            };
            return Rendered {
                cmd: self.shell_cmd(&script),
                line: script,
                skip: false,
            };
        }
        let skip = Cell::new(false);
        let job = self.job(args, seq, slot, &skip);
        if self.kind == Kind::Shell {
            let mut line = ShellLine {
                line: Vec::new(),
                quoting: &self.quoting,
                display: false,
            };
            self.render_words(&job, &mut line);
            return Rendered {
                cmd: self.shell_cmd(&line.line),
                line: line.line,
                skip: skip.get(),
            };
        }
        let mut argv = Argv {
            words: Vec::new(),
            current: Vec::new(),
            started: false,
            quoting: &self.quoting,
        };
        for word in &self.words {
            self.render_word(word, &job, &mut argv);
            argv.end_word();
        }
        // Shown as GNU parallel shows it: with -q every word quoted; else the words'
        // own text (plain, nothing the shell reads) and each value quoted.
        let line = if self.literal {
            let quoted: Vec<Vec<u8>> = argv.words.iter().map(|w| quote_word(w)).collect();
            quoted.join(&b' ')
        } else {
            let mut line = ShellLine {
                line: Vec::new(),
                quoting: &self.quoting,
                display: true,
            };
            self.render_words(&job, &mut line);
            line.line
        };
        if self.via_shell {
            return Rendered {
                cmd: self.shell_cmd(&line),
                line,
                skip: skip.get(),
            };
        }
        let mut words = argv.words.into_iter().map(OsString::from_vec);
        let first = words.next().unwrap_or_default();
        let cmd = match program {
            // Found on PATH once for every job; the program is still told the name it
            // was called by (its messages say `ls:`, not `/usr/bin/ls:`).
            Some(path) => Cmd::new(path).arg0(first),
            None => Cmd::new(first),
        };
        Rendered {
            cmd: cmd.args(words),
            line,
            skip: skip.get(),
        }
    }

    /// `SHELL -c line`.
    fn shell_cmd(&self, line: &[u8]) -> Cmd {
        Cmd::new(&self.shell).arg("-c").arg(OsStr::from_bytes(line))
    }

    fn render_words(&self, job: &Job<'_>, sink: &mut dyn Sink) {
        for (i, word) in self.words.iter().enumerate() {
            if i > 0 {
                sink.text(b" ");
            }
            self.render_word(word, job, sink);
        }
    }

    /// One job's view of the template: its arguments, numbers, the run's perl, and
    /// where a `skip()` is recorded.
    fn job<'a>(
        &'a self,
        args: &'a JobArgs,
        seq: usize,
        slot: usize,
        skip: &'a Cell<bool>,
    ) -> Job<'a> {
        Job {
            args,
            seq,
            slot,
            perl: self.perl.as_ref().map(|p| &*p.0),
            skip,
        }
    }

    /// Renders `{}`-style replacement strings with their arguments as they are (no
    /// quoting): for `--tagstring` and `--results` paths.
    pub fn render_text(&self, args: &JobArgs, seq: usize, slot: usize) -> Vec<u8> {
        let mut text = RawText(Vec::new());
        let skip = Cell::new(false);
        let job = self.job(args, seq, slot, &skip);
        for (i, word) in self.words.iter().enumerate() {
            if i > 0 {
                text.0.push(b' ');
            }
            self.render_word(word, &job, &mut text);
        }
        text.0
    }

    /// Parses a `--tagstring`-like text: the words are not joined to arguments.
    pub fn text(text: &str, options: &TemplateOptions) -> Result<Self, TemplateError> {
        Ok(Template {
            words: vec![parse_word(text.as_bytes(), options)?],
            kind: Kind::Shell,
            context: false,
            literal: false,
            via_shell: false,
            quoting: Contexts::default(),
            shell: shell_of(options),
            perl: options.perl.clone().map(SharedPerl),
        })
    }

    fn render_word(&self, word: &Word, job: &Job<'_>, sink: &mut dyn Sink) {
        let repeats = self.context
            && word.iter().any(|t| {
                matches!(
                    t,
                    Token::Replace(
                        Replacement::All(_) | Replacement::Perl { position: None, .. },
                        _
                    )
                )
            });
        if repeats {
            // -X: the whole word once per record, the record's values in place of {}.
            for (i, record) in job.args.records().enumerate() {
                if i > 0 {
                    sink.split();
                }
                let one = JobArgs {
                    values: record.to_vec(),
                    columns: job.args.columns,
                };
                let job = Job { args: &one, ..*job };
                render_tokens(word, &job, sink);
            }
        } else {
            render_tokens(word, job, sink);
        }
    }
}

#[derive(Clone, Copy)]
struct Job<'a> {
    args: &'a JobArgs,
    seq: usize,
    slot: usize,
    /// The run's perl, for `{= … =}`.
    perl: Option<&'a Perl>,
    /// Set when a `{= … =}` called `skip()`.
    skip: &'a Cell<bool>,
}

fn render_tokens(word: &Word, job: &Job<'_>, sink: &mut dyn Sink) {
    for token in word {
        match token {
            Token::Text(text) => sink.text(text),
            Token::Replace(Replacement::Seq, _) => sink.text(job.seq.to_string().as_bytes()),
            Token::Replace(Replacement::Slot, _) => sink.text(job.slot.to_string().as_bytes()),
            Token::Replace(Replacement::Nth(n, modifier), hole) => {
                // A position past the job's arguments (the last job of -N 3 may
                // have fewer) is left out altogether, as in GNU parallel.
                if let Some(value) = job.args.values.get(n - 1) {
                    sink.value(*hole, &modifier.apply(value));
                }
            }
            Token::Replace(Replacement::FromEnd(n, modifier), hole) => {
                // Before the first argument: left out, as a position past the last is.
                let values = &job.args.values;
                if let Some(value) = values.len().checked_sub(*n).and_then(|i| values.get(i)) {
                    sink.value(*hole, &modifier.apply(value));
                }
            }
            Token::Replace(Replacement::Perl { expr, position }, hole) => {
                let values: Vec<&Vec<u8>> = match position {
                    Some(n) => {
                        let count = job.args.values.len() as isize;
                        let at = if *n > 0 { n - 1 } else { count + n };
                        usize::try_from(at)
                            .ok()
                            .and_then(|at| job.args.values.get(at))
                            .into_iter()
                            .collect()
                    }
                    None => job.args.values.iter().collect(),
                };
                for (i, value) in values.into_iter().enumerate() {
                    if i > 0 {
                        sink.split();
                    }
                    let Some(perl) = job.perl else { continue };
                    match perl.evaluate(*expr, job.seq, job.slot, value, &job.args.values) {
                        Ok(done) => {
                            if done.skip {
                                job.skip.set(true);
                            }
                            if done.unquoted {
                                sink.text(&done.value);
                            } else {
                                sink.value(*hole, &done.value);
                            }
                        }
                        // As GNU parallel: perl's complaint on stderr, and no value.
                        Err(error) => eprintln!("concur run: job {}: {error}", job.seq),
                    }
                }
            }
            Token::Replace(Replacement::All(modifier), hole) => {
                for (i, value) in job.args.values.iter().enumerate() {
                    if i > 0 {
                        sink.split();
                    }
                    sink.value(*hole, &modifier.apply(value));
                }
                // No values (`-N0`): the replacement string is replaced by nothing,
                // as in GNU parallel.
            }
        }
    }
}

/// Where a rendered word goes: a shell line (values quoted where they sit) or an argv
/// (values as they are, several values making several words; quoted only inside an
/// `sh -c` script).
trait Sink {
    fn text(&mut self, text: &[u8]);
    /// The value of hole `hole`.
    fn value(&mut self, hole: usize, value: &[u8]);
    /// Between two values of one replacement string.
    fn split(&mut self);
}

/// A shell command line: each value quoted for its hole's context. With `display`, a
/// line to show for a command run without a shell: each value, as passed, quoted.
struct ShellLine<'a> {
    line: Vec<u8>,
    quoting: &'a Contexts,
    display: bool,
}

impl Sink for ShellLine<'_> {
    fn text(&mut self, text: &[u8]) {
        self.line.extend_from_slice(text);
    }
    fn value(&mut self, hole: usize, value: &[u8]) {
        let quoted = self.quoting.quote(hole, value);
        if self.display {
            self.line.extend(quote_word(&quoted));
        } else {
            self.line.extend(quoted);
        }
    }
    fn split(&mut self) {
        self.line.push(b' ');
    }
}

struct RawText(Vec<u8>);

impl Sink for RawText {
    fn text(&mut self, text: &[u8]) {
        self.0.extend_from_slice(text);
    }
    fn value(&mut self, _hole: usize, value: &[u8]) {
        self.0.extend_from_slice(value);
    }
    fn split(&mut self) {
        self.0.push(b' ');
    }
}

struct Argv<'a> {
    words: Vec<Vec<u8>>,
    current: Vec<u8>,
    /// Whether the current word got anything, even an empty value: a word made only
    /// of missing positions is no word (the shell would see nothing there).
    started: bool,
    quoting: &'a Contexts,
}

impl Argv<'_> {
    fn end_word(&mut self) {
        if std::mem::take(&mut self.started) {
            self.words.push(std::mem::take(&mut self.current));
        }
    }
}

impl Sink for Argv<'_> {
    fn text(&mut self, text: &[u8]) {
        self.started = true;
        self.current.extend_from_slice(text);
    }
    fn value(&mut self, hole: usize, value: &[u8]) {
        self.started = true;
        self.current.extend(self.quoting.quote(hole, value));
    }
    fn split(&mut self) {
        self.end_word();
    }
}

/// The command's words as a shell line's pieces: text, a space between words, and a
/// hole for each replacement string.
fn pieces(words: &[Word]) -> Vec<Piece<'_>> {
    let mut pieces = Vec::new();
    for (i, word) in words.iter().enumerate() {
        if i > 0 {
            pieces.push(Piece::Text(b" "));
        }
        pieces.extend(word_pieces(word));
    }
    pieces
}

fn word_pieces(word: &Word) -> Vec<Piece<'_>> {
    word.iter()
        .map(|t| match t {
            Token::Text(text) => Piece::Text(text),
            Token::Replace(..) => Piece::Hole,
        })
        .collect()
}

fn shell_of(options: &TemplateOptions) -> PathBuf {
    options
        .shell
        .clone()
        .unwrap_or_else(|| PathBuf::from("/bin/sh"))
}

/// Splits one word into text and replacement strings.
/// A word is bytes: a program or argument need not be UTF-8; the replacement strings
/// are ASCII.
fn parse_word(word: &[u8], options: &TemplateOptions) -> Result<Word, TemplateError> {
    let mut tokens = Vec::new();
    let mut text = Vec::new();
    let mut rest = word;
    let flush = |text: &mut Vec<u8>, tokens: &mut Vec<Token>| {
        if !text.is_empty() {
            tokens.push(Token::Text(std::mem::take(text)));
        }
    };
    while !rest.is_empty() {
        if let Some(custom) = options.replace.as_deref().filter(|r| !r.is_empty())
            && let Some(after) = rest.strip_prefix(custom.as_bytes())
        {
            flush(&mut text, &mut tokens);
            tokens.push(Token::Replace(Replacement::All(Modifier::Whole), 0));
            rest = after;
            continue;
        }
        // `{= perl =}` and `{=N perl =}`: up to the first `=}` (the code may hold `}`).
        if let Some(body) = rest.strip_prefix(b"{=")
            && let Some(end) = memchr::memmem::find(body, b"=}")
        {
            flush(&mut text, &mut tokens);
            tokens.push(Token::Replace(perl_replacement(&body[..end], options)?, 0));
            rest = &body[end + 2..];
            continue;
        }
        if rest.starts_with(b"{")
            && let Some(end) = rest.iter().position(|&b| b == b'}')
            && let Ok(inner) = std::str::from_utf8(&rest[1..end])
            && let Some(replacement) = parse_replacement(inner, options)?
        {
            flush(&mut text, &mut tokens);
            tokens.push(Token::Replace(replacement, 0));
            rest = &rest[end + 1..];
            continue;
        }
        text.push(rest[0]);
        rest = &rest[1..];
    }
    flush(&mut text, &mut tokens);
    Ok(tokens)
}

/// `{=N code=}`'s inside: the code compiled in the run's perl, over argument N or all.
fn perl_replacement(body: &[u8], options: &TemplateOptions) -> Result<Replacement, TemplateError> {
    let text = String::from_utf8_lossy(body);
    // `{=N code=}`, or `{=-N code=}` counted from the last argument.
    let sign =
        usize::from(text.starts_with('-') && text[1..].starts_with(|c: char| c.is_ascii_digit()));
    let digits = sign + text[sign..].bytes().take_while(u8::is_ascii_digit).count();
    let position = match text[..digits].parse::<isize>() {
        Ok(0) => return Err(TemplateError::Zero),
        Ok(n) => Some(n),
        Err(_) => None,
    };
    let Some(perl) = &options.perl else {
        return Err(TemplateError::Perl(format!(
            "{{={text}=}} needs perl to evaluate it (none was started)"
        )));
    };
    let expr = perl.compile(&text[digits..]).map_err(TemplateError::Perl)?;
    Ok(Replacement::Perl { expr, position })
}

/// What `{inner}` means: a replacement string, literal text (`None`: `{print $1}`,
/// `{a,b}`), or an error for something that looks like a replacement string but is
/// none.
fn parse_replacement(
    inner: &str,
    options: &TemplateOptions,
) -> Result<Option<Replacement>, TemplateError> {
    let custom = options.replace.is_some();
    // With -I, only the custom string stands for the argument; {.} and the rest stay.
    if let Some(modifier) = Modifier::parse(inner).filter(|_| !(custom && inner.is_empty())) {
        return Ok(Some(Replacement::All(modifier)));
    }
    match inner {
        "#" => return Ok(Some(Replacement::Seq)),
        "%" => return Ok(Some(Replacement::Slot)),
        _ => {}
    }
    // `{-N}`: counted from the last argument.
    if let Some(from_end) = inner.strip_prefix('-') {
        let digits = from_end.bytes().take_while(u8::is_ascii_digit).count();
        if digits > 0
            && let Some(modifier) = Modifier::parse(&from_end[digits..])
        {
            return match from_end[..digits].parse::<usize>() {
                Ok(0) => Err(TemplateError::Zero),
                Ok(n) => Ok(Some(Replacement::FromEnd(n, modifier))),
                Err(_) => Err(TemplateError::Unknown(format!("{{{inner}}}"))),
            };
        }
    }
    let digits = inner.bytes().take_while(u8::is_ascii_digit).count();
    // `{1 }`, `{1⏎}`: white space after the number is allowed, as in GNU parallel.
    let after = match &inner[digits..] {
        blank if blank.trim().is_empty() => "",
        after => after,
    };
    if digits > 0
        && let Some(modifier) = Modifier::parse(after)
    {
        return match inner[..digits].parse::<usize>() {
            Ok(0) => Err(TemplateError::Zero),
            Ok(n) => Ok(Some(Replacement::Nth(n, modifier))),
            Err(_) => Err(TemplateError::Unknown(format!("{{{inner}}}"))),
        };
    }
    if let Some(i) = options.names.iter().position(|name| name == inner) {
        return Ok(Some(Replacement::Nth(i + 1, Modifier::Whole)));
    }
    let looks_like_one = !inner.is_empty() && inner.bytes().all(|b| b"0123456789./#%".contains(&b));
    let perl = inner.len() >= 2 && inner.starts_with('=') && inner.ends_with('=');
    if looks_like_one || perl {
        return Err(TemplateError::Unknown(format!("{{{inner}}}")));
    }
    Ok(None)
}

/// `program` found on `PATH` (`/usr/bin:/bin` without one), executable.
fn on_path(program: &OsStr) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_else(|| OsString::from("/usr/bin:/bin"));
    std::env::split_paths(&path)
        .map(|dir| dir.join(program))
        .find(|candidate| is_executable(candidate))
}

fn is_executable(path: &Path) -> bool {
    path.metadata()
        .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// `--tag`/`--tagstring`: a text with replacement strings, and `{host}` (a concur
/// addition) for the machine the job runs on (`:` here).
#[derive(Clone, Debug)]
pub struct Tag {
    /// The text's pieces around each `{host}`.
    parts: Vec<Template>,
}

impl Tag {
    /// Parses a `--tagstring` text.
    pub fn parse(text: &str, options: &TemplateOptions) -> Result<Self, TemplateError> {
        let parts = text
            .split("{host}")
            .map(|part| Template::text(part, options))
            .collect::<Result<_, _>>()?;
        Ok(Tag { parts })
    }

    /// The tag of one job, run on `host`.
    pub fn render(&self, args: &JobArgs, seq: usize, slot: usize, host: &str) -> Vec<u8> {
        let mut text = Vec::new();
        for (i, part) in self.parts.iter().enumerate() {
            if i > 0 {
                text.extend_from_slice(host.as_bytes());
            }
            text.extend_from_slice(&part.render_text(args, seq, slot));
        }
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(w: &[&str]) -> Vec<String> {
        w.iter().map(|s| (*s).to_owned()).collect()
    }

    fn line(template: &[&str], options: &TemplateOptions, args: &[&str]) -> String {
        let t = Template::parse(&words(template), options).unwrap();
        let job = JobArgs::single(args.iter().map(|a| a.as_bytes().to_vec()).collect());
        String::from_utf8(t.render(&job, 7, 2, None).line).unwrap()
    }

    #[test]
    fn modifiers_follow_gnu_parallel() {
        // Expected values printed by GNU parallel 20221122 for
        // `parallel -k echo '{.}:{/}:{//}:{/.}' ::: …`.
        let cases = [
            ("a.b/c", "a.b/c:c:a.b:c"),
            (".bashrc", ":.bashrc:.:"),
            ("a.", "a:a.:.:a"),
            ("/x", "/x:x:/:x"),
            ("/", "/::/:"),
            ("x/", "x/::.:"),
            ("a.tar.gz", "a.tar:a.tar.gz:.:a.tar"),
            ("dir/.hid", "dir/:.hid:dir:"),
            ("", "::.:"),
            ("x/y/", "x/y/::x:"),
        ];
        let t =
            Template::parse(&words(&["{.}:{/}:{//}:{/.}"]), &TemplateOptions::default()).unwrap();
        for (input, expected) in cases {
            let job = JobArgs::single(vec![input.as_bytes().to_vec()]);
            assert_eq!(
                String::from_utf8(t.render_text(&job, 1, 1)).unwrap(),
                expected,
                "{input:?}"
            );
        }
    }

    #[test]
    fn positions_from_the_end() {
        let o = TemplateOptions::default();
        assert_eq!(line(&["echo", "{-1}", "{-2}"], &o, &["a", "b"]), "echo b a");
        assert_eq!(
            line(&["echo", "{-1.}", "{-2/}"], &o, &["d/x.y", "e/f.g"]),
            "echo e/f x.y"
        );
        // Before the first argument: left out, as a position past the last.
        assert_eq!(line(&["echo", "[{-3}]"], &o, &["a", "b"]), "echo []");
        assert!(Template::parse(&words(&["echo", "{-0}"]), &o).is_err());
    }

    #[test]
    fn replacement_strings_and_appending() {
        let o = TemplateOptions::default();
        assert_eq!(
            line(&["echo", "{#}", "{%}", "{2}", "{1/.}"], &o, &["d/a.x", "b"]),
            "echo 7 2 b a"
        );
        assert_eq!(line(&["echo"], &o, &["a b", "c"]), "echo 'a b' c");
        assert_eq!(line(&["echo", "{#}"], &o, &["a"]), "echo 7");
        assert_eq!(line(&["echo", "{3}", "{1}"], &o, &["a"]), "echo  a");
        let custom = TemplateOptions {
            replace: Some("XX".into()),
            ..TemplateOptions::default()
        };
        assert_eq!(
            line(&["mv", "XX", "XX.bak", "{}"], &custom, &["f"]),
            "mv f f.bak {}"
        );
        let named = TemplateOptions {
            names: vec!["x".into(), "y".into()],
            ..TemplateOptions::default()
        };
        assert_eq!(line(&["echo", "{y}{x}"], &named, &["1", "2"]), "echo 21");
    }

    #[test]
    fn literal_braces_stay_and_lookalikes_are_errors() {
        let o = TemplateOptions::default();
        assert_eq!(
            line(&["awk '{print $1}'"], &o, &["f"]),
            "awk '{print $1}' f"
        );
        assert_eq!(line(&["echo", "{a,b}"], &o, &["f"]), "echo {a,b} f");
        for bad in ["{..}", "{1..}", "{./}", "{#.}"] {
            let err = Template::parse(&words(&["echo", bad]), &o).unwrap_err();
            assert_eq!(err, TemplateError::Unknown(bad.into()));
            assert!(err.to_string().contains(bad), "{err}");
        }
        // Perl strings need the run's perl; without one they are refused by name.
        let err = Template::parse(&words(&["echo", "{=s/a/b/=}"]), &o).unwrap_err();
        assert!(
            matches!(&err, TemplateError::Perl(m) if m.contains("{=s/a/b/=} needs perl")),
            "{err}"
        );
        assert_eq!(
            Template::parse(&words(&["{0}"]), &o).unwrap_err(),
            TemplateError::Zero
        );
    }

    #[test]
    fn plain_words_run_directly_and_the_rest_through_sh() {
        let o = TemplateOptions::default();
        let kind = |w: &[&str]| Template::parse(&words(w), &o).unwrap().kind;
        assert_eq!(kind(&["gzip", "-k", "{}"]), Kind::Direct);
        assert_eq!(kind(&["sh", "-c", "sleep 1; echo {}"]), Kind::Shell);
        assert_eq!(kind(&["A=1", "env"]), Kind::Shell);
        assert_eq!(kind(&["env", "A=1"]), Kind::Direct);
        assert_eq!(kind(&["echo", ""]), Kind::Shell);
        // A program named by its argument may be a function: the shell finds it.
        assert_eq!(kind(&["{}_doit", "a"]), Kind::Shell);
        assert_eq!(kind(&[]), Kind::Lines);
        let quoted = TemplateOptions {
            quote: true,
            ..TemplateOptions::default()
        };
        assert_eq!(
            Template::parse(&words(&["a b", "{}"]), &quoted)
                .unwrap()
                .kind,
            Kind::Direct
        );
    }

    #[test]
    fn context_replacement_repeats_the_word_per_argument() {
        let x = TemplateOptions {
            context: true,
            ..TemplateOptions::default()
        };
        let t = Template::parse(&words(&["echo", "pre{}post"]), &x).unwrap();
        let job = JobArgs {
            values: vec![b"a".to_vec(), b"b c".to_vec()],
            columns: 1,
        };
        assert_eq!(
            t.render(&job, 1, 1, None).line,
            b"echo preapost pre'b c'post"
        );
        let m =
            Template::parse(&words(&["echo", "pre{}post"]), &TemplateOptions::default()).unwrap();
        assert_eq!(m.render(&job, 1, 1, None).line, b"echo prea 'b c'post");
    }

    #[test]
    fn resolves_fixed_programs_only() {
        let o = TemplateOptions::default();
        let t = |w: &[&str]| Template::parse(&words(w), &o).unwrap();
        let sh = t(&["sh", "-c", "sleep 1; true"]);
        assert_eq!(
            sh.resolve_program(),
            None,
            "runs through sh: nothing to resolve"
        );
        let echo = t(&["echo", "{}"])
            .resolve_program()
            .expect("echo is on PATH");
        assert!(
            echo.is_absolute() && echo.ends_with("echo"),
            "{}",
            echo.display()
        );
        assert_eq!(t(&["{}"]).resolve_program(), None);
        assert_eq!(t(&["./local-script"]).resolve_program(), None);
        assert_eq!(t(&["concur-no-such-program"]).resolve_program(), None);
    }
}
