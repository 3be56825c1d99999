//! Where a replacement string sits in a shell command line, and how to put a value
//! there so that the shell reads it as data, byte for byte.
//!
//! A value is quoted for its *context*, the quoting layers around its position:
//!
//! | context | the value becomes | e.g. `it's` |
//! |---|---|---|
//! | bare, or inside `$( )` | GNU parallel's single quotes: `'…'`, a `'` as `'"'"'`; plain words (`[-_.+a-zA-Z0-9/]`) as they are | `'it'"'"'s'` |
//! | inside the command's own `'…'` | the quote closed, the value quoted as above, the quote reopened | `''"'"'it'"'"'s'"'"''` |
//! | inside `"…"` | `\` before `$`, `` ` ``, `"` and `\` only | `it's` |
//! | inside `` `…` `` | as its inner context, then `\` before `\`, `` ` `` and `$` (and `"` within `"…"`) | |
//!
//! Each form is read by the shell as exactly the value, so the lexer's state after a
//! value is the state before it: the contexts depend only on the command's own text,
//! and are worked out once ([`Contexts::of`]).
//!
//! **Scripts run again.** A word that is the script of `sh -c`, `bash -c` (any
//! Bourne-like shell; also after `env`, `exec`, `command`, `nohup`, `nice`, `setsid`,
//! `time`, `timeout D`) is parsed twice: once by the shell that runs the line, once by
//! the shell it starts. A value inside it is quoted for its context in the script, and
//! that text again for the script word's context in the line; scripts within scripts
//! likewise. No runner can protect a value from a command that evaluates it in a way it
//! cannot see (`eval`, `xargs sh -c`, `ssh host`, a script that runs `$1` as code).

/// Bourne-like shells: the quoting here is theirs.
const BOURNE: &[&str] = &[
    "sh", "bash", "dash", "zsh", "ksh", "ksh93", "mksh", "lksh", "pdksh", "ash", "yash", "posh",
    "rbash",
];

/// Every shell GNU parallel recognises as a parent (Bourne or not).
const SHELLS: &[&str] = &[
    "sh",
    "bash",
    "dash",
    "zsh",
    "ksh",
    "ksh93",
    "mksh",
    "lksh",
    "pdksh",
    "ash",
    "yash",
    "posh",
    "rbash",
    "csh",
    "tcsh",
    "bsd-csh",
    "fish",
    "rc",
    "rush",
    "rzsh",
    "sash",
    "static-sh",
    "fdsh",
    "fizsh",
];

/// The shell jobs run in, as GNU parallel chooses it: `$PARALLEL_SHELL`; else the
/// nearest ancestor process that is a shell (so that functions a bash exported with
/// `export -f` are there); else `$SHELL`; else `/bin/sh`. A shell that is not
/// Bourne-like (csh, fish, rc) is not used, since values are quoted for Bourne shells:
/// `/bin/sh` is, and the second value says why. A shell that cannot be found is an
/// error that says where its name came from.
pub fn job_shell() -> Result<(std::path::PathBuf, Option<String>), String> {
    use std::path::PathBuf;
    let named = |s: std::ffi::OsString| (!s.is_empty()).then(|| PathBuf::from(s));
    let (shell, whence) = if let Some(shell) = std::env::var_os("PARALLEL_SHELL").and_then(named) {
        (shell, "PARALLEL_SHELL")
    } else if let Some(shell) = parent_shell() {
        (shell, "the shell that started concur")
    } else if let Some(shell) = std::env::var_os("SHELL").and_then(named) {
        (shell, "SHELL")
    } else {
        return Ok((PathBuf::from("/bin/sh"), None));
    };
    if !runnable(&shell) {
        return Err(format!("shell {} ({whence}) not found", shell.display()));
    }
    let name = shell
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    if BOURNE.contains(&name.as_str()) {
        Ok((shell, None))
    } else {
        let why = format!(
            "{} ({whence}) is not a Bourne-like shell, and concur quotes arguments for one: \
             jobs run in /bin/sh",
            shell.display()
        );
        Ok((PathBuf::from("/bin/sh"), Some(why)))
    }
}

/// Whether `shell` is a file, or a bare name found on `PATH`.
fn runnable(shell: &std::path::Path) -> bool {
    shell.is_file()
        || (!shell.as_os_str().as_encoded_bytes().contains(&b'/')
            && shell.to_str().and_then(which).is_some())
}

/// The nearest ancestor of this process that is a shell, by its `/proc` entry (Linux).
fn parent_shell() -> Option<std::path::PathBuf> {
    let mut pid = rustix::process::getppid()?.as_raw_nonzero().get();
    while pid > 1 {
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
        let first = cmdline.split(|&b| b == 0).next().unwrap_or_default();
        let first = String::from_utf8_lossy(first);
        // `-bash` for a login shell, `/bin/sh`, `bash`.
        let name = first.trim_start_matches('-');
        let base = name.rsplit('/').next().unwrap_or(name);
        if SHELLS.contains(&base) {
            return std::fs::read_link(format!("/proc/{pid}/exe"))
                .ok()
                .filter(|exe| {
                    // A shell started as `sh` may be dash or bash underneath: the name
                    // it was called by decides how it behaves, so keep that name when
                    // it is on PATH.
                    exe.file_name().is_some_and(|n| n.to_string_lossy() == base)
                })
                .or_else(|| which(base));
        }
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        // After the ")" closing the command name: state, then the parent pid.
        pid = stat
            .rsplit(')')
            .next()?
            .split_whitespace()
            .nth(1)?
            .parse()
            .ok()?;
    }
    None
}

/// `program` found on `PATH`.
fn which(program: &str) -> Option<std::path::PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(program))
        .find(|p| p.is_file())
}

/// One quoting layer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Layer {
    /// `'…'`: nothing is special but the closing quote.
    Single,
    /// `"…"`: `$`, `` ` ``, `"` and `\` are special.
    Double,
    /// `$( … )`: a command of its own; the count is of `(` opened inside it.
    Paren(u32),
    /// `` `…` ``: a command of its own, whose text is unescaped once before it runs.
    Backtick,
}

/// The quoting layers at one point of a command line, outermost first.
pub(crate) type Context = Vec<Layer>;

/// Quotes `value` as GNU parallel does for a bare word: unchanged if it is made of
/// `[-_.+a-zA-Z0-9/]` only, `''` if empty, else in single quotes with each `'` as
/// `'"'"'` (and no `''` left at either end).
///
/// ```
/// use concur::runner::quote_word;
///
/// assert_eq!(quote_word(b"file.txt"), b"file.txt");
/// assert_eq!(quote_word(b"a b"), b"'a b'");
/// assert_eq!(quote_word(b"it's"), br#"'it'"'"'s'"#);
/// assert_eq!(quote_word(b"'"), br#""'""#);
/// assert_eq!(quote_word(b""), b"''");
/// ```
pub fn quote_word(value: &[u8]) -> Vec<u8> {
    let plain = |b: &u8| b.is_ascii_alphanumeric() || b"-_.+/".contains(b);
    if value.is_empty() {
        return b"''".to_vec();
    }
    if value.iter().all(plain) {
        return value.to_vec();
    }
    let mut quoted = vec![b'\''];
    for &b in value {
        if b == b'\'' {
            quoted.extend_from_slice(b"'\"'\"'");
        } else {
            quoted.push(b);
        }
    }
    quoted.push(b'\'');
    let start = if quoted.starts_with(b"''") { 2 } else { 0 };
    let end = if quoted.len() - start >= 2 && quoted.ends_with(b"''") {
        quoted.len() - 2
    } else {
        quoted.len()
    };
    quoted[start..end].to_vec()
}

/// `value` with `\` before each byte of `special`.
fn escape(value: &[u8], special: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(value.len() + 8);
    for &b in value {
        if special.contains(&b) {
            out.push(b'\\');
        }
        out.push(b);
    }
    out
}

/// The text that, at a point with `context`, the shell reads as exactly `value`.
pub(crate) fn embed(context: &[Layer], value: &[u8]) -> Vec<u8> {
    let mut out = match context.last() {
        None | Some(Layer::Paren(_) | Layer::Backtick) => quote_word(value),
        Some(Layer::Single) => [&b"'"[..], &quote_word(value), b"'"].concat(),
        Some(Layer::Double) => escape(value, b"\\$`\""),
    };
    // The text of a backquoted command is unescaped once (`\\`, `` \` ``, `\$`, and
    // `\"` within double quotes) before it is parsed: escape for that, layer by layer.
    for (i, layer) in context.iter().enumerate().rev() {
        if *layer == Layer::Backtick {
            let special: &[u8] = if i > 0 && context[i - 1] == Layer::Double {
                b"\\`$\""
            } else {
                b"\\`$"
            };
            out = escape(&out, special);
        }
    }
    out
}

/// A piece of a command line: its own text, or a hole for a value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Piece<'a> {
    /// Text of the command.
    Text(&'a [u8]),
    /// Where a value goes.
    Hole,
}

/// How each hole of a command line is quoted: for each, its contexts from the
/// innermost script out to the line itself.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Contexts(pub(crate) Vec<Vec<Context>>);

impl Contexts {
    /// Works out the context of every hole in `pieces`, a shell command line.
    pub(crate) fn of(pieces: &[Piece<'_>]) -> Self {
        let mut lexer = Lexer::default();
        let mut holes = Vec::new();
        for piece in pieces {
            match piece {
                Piece::Text(text) => text.iter().for_each(|&b| lexer.feed(b)),
                Piece::Hole => holes.push(lexer.hole()),
            }
        }
        lexer.end_word();
        // Each script's holes, analysed as command lines of their own: their contexts
        // there come first, then the script word's own in this line.
        let mut levels: Vec<Vec<Context>> = holes.iter().map(|h| vec![h.context.clone()]).collect();
        for script in lexer.scripts {
            let inner = Contexts::of(&script.pieces());
            for (hole, inner_levels) in script.holes.iter().zip(inner.0) {
                let outer = std::mem::take(&mut levels[*hole]);
                levels[*hole] = inner_levels.into_iter().chain(outer).collect();
            }
        }
        Contexts(levels)
    }

    /// The holes of a command run without a shell (`-q`, or words with nothing for a
    /// shell to read): `words` are the program and its arguments. A value is passed as
    /// it is, except inside a word that is an `sh -c` script, where it is quoted for the
    /// script (and for scripts within it).
    pub(crate) fn of_argv(words: &[Vec<Piece<'_>>]) -> Self {
        // Each word's text fed escaped, so that the lexer takes it literally.
        let mut escaped: Vec<Vec<u8>> = Vec::new();
        for word in words {
            for piece in word {
                if let Piece::Text(text) = piece {
                    let mut out = Vec::with_capacity(text.len() * 2);
                    for &b in *text {
                        match b {
                            b'\n' => out.extend_from_slice(b"'\n'"),
                            _ => out.extend_from_slice(&[b'\\', b]),
                        }
                    }
                    escaped.push(out);
                }
            }
        }
        let mut texts = escaped.iter();
        let mut pieces = Vec::new();
        for (i, word) in words.iter().enumerate() {
            if i > 0 {
                pieces.push(Piece::Text(b" "));
            }
            for piece in word {
                match piece {
                    Piece::Text(_) => pieces.push(Piece::Text(texts.next().map_or(&[][..], |t| t))),
                    Piece::Hole => pieces.push(Piece::Hole),
                }
            }
        }
        let mut contexts = Contexts::of(&pieces);
        // The line's own level is no shell's: the words are passed as they are.
        for levels in &mut contexts.0 {
            levels.pop();
        }
        contexts
    }

    /// Quotes `value` for hole `index`.
    pub(crate) fn quote(&self, index: usize, value: &[u8]) -> Vec<u8> {
        let mut out = value.to_vec();
        for context in self.0.get(index).into_iter().flatten() {
            out = embed(context, &out);
        }
        out
    }
}

/// A hole, as the lexer saw it.
struct Hole {
    context: Context,
}

/// A script word (of `sh -c`) as its shell will read it: its text after quote removal,
/// and where the holes are in it.
#[derive(Default)]
struct Script {
    text: Vec<u8>,
    /// Positions in `text`, with the hole's index in the whole line.
    marks: Vec<usize>,
    holes: Vec<usize>,
}

impl Script {
    fn pieces(&self) -> Vec<Piece<'_>> {
        let mut pieces = Vec::new();
        let mut from = 0;
        for &at in &self.marks {
            pieces.push(Piece::Text(&self.text[from..at]));
            pieces.push(Piece::Hole);
            from = at;
        }
        pieces.push(Piece::Text(&self.text[from..]));
        pieces
    }
}

/// What the words of the current simple command say so far about a script to come.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
enum Expect {
    /// The command name (or an assignment, or a wrapper's next word).
    #[default]
    Command,
    /// Options of a wrapper (`env -i`, `nice -n 5`); then the command.
    Wrapper,
    /// `timeout`'s duration, then the command.
    Duration,
    /// A shell's options, before `-c`.
    ShellOptions,
    /// A shell's options after `-c`: the first operand is the script.
    Script,
    /// Nothing of interest in this command.
    Other,
}

/// A byte-at-a-time lexer of a POSIX shell command line: enough to know the quoting
/// layers at each point, where top-level words begin and end, and which words are
/// `sh -c` scripts.
#[derive(Default)]
struct Lexer {
    stack: Context,
    escaped: bool,
    /// A backslash inside backquotes, waiting for the byte that says what it is.
    bt_escape: bool,
    prev: u8,
    comment: bool,
    /// The current top-level word, quote-removed, and whether one is under way.
    word: Vec<u8>,
    in_word: bool,
    /// Whether the current word is a script, and the script being collected.
    script: Option<Script>,
    expect: Expect,
    scripts: Vec<Script>,
    holes: usize,
}

/// Bourne-like shells whose `-c` runs a script.
fn is_shell(name: &[u8]) -> bool {
    let base = name.rsplit(|&b| b == b'/').next().unwrap_or(name);
    BOURNE.iter().any(|shell| shell.as_bytes() == base)
}

impl Lexer {
    /// Whether the point is in the text of the current top-level word (inside its
    /// quotes at most), not in a command substitution the line's shell runs itself.
    fn literal(&self) -> bool {
        self.stack
            .iter()
            .all(|l| matches!(l, Layer::Single | Layer::Double))
    }

    fn hole(&mut self) -> Hole {
        let index = self.holes;
        self.holes += 1;
        if self.stack.is_empty() {
            self.start_word_if_needed();
        }
        if self.literal()
            && let Some(script) = &mut self.script
        {
            script.marks.push(script.text.len());
            script.holes.push(index);
        }
        // A value in the command word makes the command unknowable.
        if self.stack.is_empty() && self.expect == Expect::Command {
            self.word.extend_from_slice(b"\0hole");
        }
        Hole {
            context: self.stack.clone(),
        }
    }

    /// Adds `b` to the current top-level word's quote-removed text.
    fn keep(&mut self, b: u8) {
        self.start_word_if_needed();
        self.word.push(b);
        if let Some(script) = &mut self.script {
            script.text.push(b);
        }
    }

    fn start_word_if_needed(&mut self) {
        if !self.in_word {
            self.in_word = true;
            if self.expect == Expect::Script {
                self.script = Some(Script::default());
            }
        }
    }

    /// The top-level word ended: what it tells about the command.
    fn end_word(&mut self) {
        if !self.in_word {
            return;
        }
        self.in_word = false;
        let word = std::mem::take(&mut self.word);
        if let Some(script) = self.script.take() {
            self.scripts.push(script);
            self.expect = Expect::Other;
            return;
        }
        let option = word.first().is_some_and(|&b| b == b'-' || b == b'+');
        self.expect = match self.expect {
            Expect::Command if word.contains(&b'=') && !option => Expect::Command,
            Expect::Command | Expect::Wrapper if is_shell(&word) => Expect::ShellOptions,
            Expect::Command | Expect::Wrapper => match word.as_slice() {
                b"env" | b"exec" | b"command" | b"nohup" | b"nice" | b"setsid" | b"time" => {
                    Expect::Wrapper
                }
                b"timeout" => Expect::Duration,
                _ if self.expect == Expect::Wrapper && (option || word.contains(&b'=')) => {
                    Expect::Wrapper
                }
                _ => Expect::Other,
            },
            Expect::Duration if option => Expect::Duration,
            Expect::Duration => Expect::Wrapper,
            Expect::ShellOptions if option && word[1..].contains(&b'c') => Expect::Script,
            Expect::ShellOptions if option => Expect::ShellOptions,
            Expect::Script if option => Expect::Script,
            _ => Expect::Other,
        };
    }

    /// A new simple command begins (after `;`, `|`, `&`, a newline, `(`).
    fn end_command(&mut self) {
        self.end_word();
        self.expect = Expect::Command;
    }

    /// Feeds one byte of the line. Inside backquotes the text is unescaped once
    /// before the shell parses it (`\\`, `` \` ``, `\$`, and `\"` within double
    /// quotes lose their backslash): that happens here, before [`step`](Self::step).
    fn feed(&mut self, b: u8) {
        let backquoted = self.stack.contains(&Layer::Backtick);
        if self.bt_escape {
            self.bt_escape = false;
            let innermost = self.stack.iter().rposition(|l| *l == Layer::Backtick);
            let in_double = innermost.is_some_and(|i| i > 0 && self.stack[i - 1] == Layer::Double);
            if b"\\`$".contains(&b) || (in_double && b == b'"') {
                self.step(b);
            } else {
                self.step(b'\\');
                self.step(b);
            }
            return;
        }
        if backquoted && b == b'\\' && !self.comment {
            self.bt_escape = true;
            return;
        }
        self.step(b);
    }

    fn step(&mut self, b: u8) {
        let prev = std::mem::replace(&mut self.prev, b);
        if self.comment {
            if b == b'\n' {
                self.comment = false;
                self.end_command();
            }
            return;
        }
        let top = self.stack.last().copied();
        let at_top = self.stack.is_empty();
        if self.escaped {
            self.escaped = false;
            self.prev = 0;
            if at_top && b != b'\n' {
                self.keep(b);
            } else if top == Some(Layer::Double) && self.stack.len() == 1 {
                // Inside top-level double quotes `\x` stays `\x` unless x is special.
                if !b"$`\"\\\n".contains(&b) {
                    self.keep(b'\\');
                }
                if b != b'\n' {
                    self.keep(b);
                }
            }
            return;
        }
        match top {
            Some(Layer::Single) => {
                if b == b'\'' {
                    self.stack.pop();
                } else if self.stack.len() == 1 {
                    self.keep(b);
                }
            }
            Some(Layer::Double) => match b {
                b'\\' => self.escaped = true,
                b'"' => {
                    self.stack.pop();
                }
                b'`' => self.stack.push(Layer::Backtick),
                b'(' if prev == b'$' => self.stack.push(Layer::Paren(0)),
                _ if self.stack.len() == 1 => self.keep(b),
                _ => {}
            },
            None | Some(Layer::Paren(_) | Layer::Backtick) => self.code(b, prev, top),
        }
    }

    /// `b` where it is code: at the top level, or inside `$( )` or backquotes.
    fn code(&mut self, b: u8, prev: u8, top: Option<Layer>) {
        let at_top = top.is_none();
        match b {
            b'\\' => {
                if at_top {
                    self.start_word_if_needed();
                }
                self.escaped = true;
            }
            b'\'' => {
                if at_top {
                    self.start_word_if_needed();
                }
                self.stack.push(Layer::Single);
            }
            b'"' => {
                if at_top {
                    self.start_word_if_needed();
                }
                self.stack.push(Layer::Double);
            }
            b'`' if top == Some(Layer::Backtick) => {
                self.stack.pop();
            }
            b'`' => {
                if at_top {
                    self.start_word_if_needed();
                }
                self.stack.push(Layer::Backtick);
            }
            b'(' if prev == b'$' => {
                self.stack.push(Layer::Paren(0));
            }
            b'(' => match self.stack.last_mut() {
                Some(Layer::Paren(depth)) => *depth += 1,
                _ if at_top => self.end_command(),
                _ => {}
            },
            b')' => match self.stack.last_mut() {
                Some(Layer::Paren(0)) => {
                    self.stack.pop();
                }
                Some(Layer::Paren(depth)) => *depth -= 1,
                _ if at_top => self.end_command(),
                _ => {}
            },
            b'#' if at_top && !self.in_word => self.comment = true,
            b' ' | b'\t' if at_top => self.end_word(),
            b';' | b'|' | b'&' | b'\n' if at_top => self.end_command(),
            b'<' | b'>' if at_top => self.end_word(),
            _ if at_top => self.keep(b),
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs `line` with `sh -c` and returns its stdout.
    fn sh(line: &[u8]) -> Vec<u8> {
        use std::os::unix::ffi::OsStrExt;
        let out = std::process::Command::new("sh")
            .arg("-c")
            .arg(std::ffi::OsStr::from_bytes(line))
            .current_dir(std::env::temp_dir())
            .output()
            .unwrap();
        out.stdout
    }

    /// `template` with `{}` as the hole, rendered for `value`.
    fn render(template: &str, value: &[u8]) -> Vec<u8> {
        let parts: Vec<&str> = template.split("{}").collect();
        let mut pieces = Vec::new();
        for (i, part) in parts.iter().enumerate() {
            if i > 0 {
                pieces.push(Piece::Hole);
            }
            pieces.push(Piece::Text(part.as_bytes()));
        }
        let contexts = Contexts::of(&pieces);
        let mut line = Vec::new();
        let mut hole = 0;
        for piece in &pieces {
            match piece {
                Piece::Text(t) => line.extend_from_slice(t),
                Piece::Hole => {
                    line.extend(contexts.quote(hole, value));
                    hole += 1;
                }
            }
        }
        line
    }

    const HOSTILE: [&[u8]; 14] = [
        b"plain",
        b"a b",
        b"it's",
        b"\"q\"",
        b"$(echo RAN)",
        b"`echo RAN`",
        b"; echo RAN",
        b"' ; echo RAN ; '",
        b"\" ; echo RAN ; \"",
        b"x\necho RAN",
        b"back\\slash \\' \\\"",
        b"$HOME *",
        b"",
        b"caf\xc3\xa9 \x01",
    ];

    /// Every shape prints the value exactly, and nothing in it runs.
    #[test]
    fn values_come_out_exactly_in_every_context() {
        let shapes = [
            "printf '[%s]' {}",
            "printf '[%s]' '{}'",
            "printf '[%s]' \"{}\"",
            "printf '[%s]' x{}y",
            "printf '[%s]' \"x{}y\"",
            "printf '[%s]' 'x{}y'",
            "printf '[%s]' \"$(printf '%s' {})\"",
            "printf '[%s]' \"$(printf '%s' '{}')\"",
            "printf '[%s]' \"`printf '%s' {}`\"",
            "printf '[%s]' \"`printf '%s' \\\"{}\\\"`\"",
            "sh -c 'printf \"[%s]\" {}'",
            "sh -c \"printf '[%s]' {}\"",
            "sh -c 'printf \"[%s]\" \"{}\"'",
            "bash -ec 'printf \"[%s]\" '\\''{}'\\'",
            "env LC_ALL=C sh -c 'printf \"[%s]\" {}'",
            "timeout 5 sh -c 'sh -c \"printf [%s] {}\"'",
        ];
        for shape in shapes {
            for value in HOSTILE {
                let line = render(shape, value);
                let (before, after): (&[u8], &[u8]) = match shape.contains("x{}y") {
                    true => (b"[x", b"y]"),
                    false => (b"[", b"]"),
                };
                let expected = [before, value, after].concat();
                assert_eq!(
                    String::from_utf8_lossy(&sh(&line)),
                    String::from_utf8_lossy(&expected),
                    "shape {shape}, value {:?}: line {:?}",
                    String::from_utf8_lossy(value),
                    String::from_utf8_lossy(&line)
                );
            }
        }
    }

    #[test]
    fn contexts_are_found_through_quotes_and_substitutions() {
        let of = |t: &str| render(t, b"a b");
        assert_eq!(of("echo {}"), b"echo 'a b'");
        assert_eq!(of("echo '{}'"), b"echo '''a b'''");
        assert_eq!(of("echo \"{}\""), b"echo \"a b\"");
        assert_eq!(of("echo $(cat {})"), b"echo $(cat 'a b')");
        // A comment hides nothing from the quoting: its hole is still quoted.
        assert_eq!(of("echo {} # {}"), b"echo 'a b' # 'a b'");
    }
}
