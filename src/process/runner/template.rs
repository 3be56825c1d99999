//! Turning an input line into a command: `{}` substitution, or a shell command.

use std::ffi::OsString;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use crate::process::{Cmd, quote_backslash, quote_command};

/// How each input line becomes a command.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Template {
    /// Run a program: every `{}` in the words is replaced by the line; with no `{}`
    /// anywhere, the line is appended as the last argument (as `xargs -n1` does).
    Args(Vec<String>),
    /// Run through `sh -c`. Without a script, the line *is* the shell command. With
    /// one, `{}` in the script is replaced by the line, backslash-quoted as GNU parallel
    /// does (or the quoted line is appended), so input cannot inject shell syntax, even
    /// where the script puts `{}` in quotes of its own.
    Shell(Option<String>),
}

/// A template with no command to run.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "no command given: put it after --, e.g. `concur run -- gzip {{}}`, or use --shell to run each input line as a command"
)]
pub struct EmptyTemplate;

impl Template {
    /// Builds a template from the words after `--`.
    pub fn new(words: Vec<String>, shell: bool) -> Result<Self, EmptyTemplate> {
        match (shell, words.is_empty()) {
            (true, true) => Ok(Template::Shell(None)),
            (true, false) => Ok(Template::Shell(Some(words.join(" ")))),
            (false, true) => Err(EmptyTemplate),
            (false, false) => Ok(Template::Args(words)),
        }
    }

    /// Looks the program up in `PATH` once, for templates whose program does not depend
    /// on the input. Every job then runs it by path, instead of every spawn searching
    /// `PATH` again (one failed `execve` per directory before the right one). Returns
    /// `None` when there is nothing to resolve or the program is not found (each job
    /// then reports "command not found" itself).
    pub fn resolve_program(&self) -> Option<PathBuf> {
        let Template::Args(words) = self else {
            return None;
        };
        let program = words.first()?;
        if program.contains("{}") || program.contains('/') {
            return None;
        }
        let path = std::env::var_os("PATH").unwrap_or_else(|| OsString::from("/usr/bin:/bin"));
        std::env::split_paths(&path)
            .map(|dir| dir.join(program))
            .find(|candidate| is_executable(candidate))
    }

    /// The command for one input line, and how to show it in logs.
    ///
    /// ```
    /// use concur::process::runner::Template;
    ///
    /// let t = Template::new(vec!["gzip".into(), "-k".into(), "{}".into()], false).unwrap();
    /// assert_eq!(t.command("my file.txt").1, "gzip -k 'my file.txt'");
    /// let t = Template::new(vec!["echo".into()], false).unwrap();
    /// assert_eq!(t.command("appended").1, "echo appended");
    /// let t = Template::new(vec!["wc -l < {}".into()], true).unwrap();
    /// assert_eq!(t.command("a;b").1, r"wc -l < a\;b");
    /// ```
    pub fn command(&self, line: &str) -> (Cmd, String) {
        self.command_with(line, None)
    }

    /// [`command`](Self::command), running `program` (from
    /// [`resolve_program`](Self::resolve_program)) in place of the first word.
    pub fn command_with(&self, line: &str, program: Option<&Path>) -> (Cmd, String) {
        match self {
            Template::Args(words) => {
                let mut argv: Vec<String> = words.iter().map(|w| w.replace("{}", line)).collect();
                if !words.iter().any(|w| w.contains("{}")) {
                    argv.push(line.to_owned());
                }
                let shown = quote_command(&argv);
                let cmd = match program {
                    Some(path) => Cmd::new(path),
                    None => Cmd::new(&argv[0]),
                };
                (cmd.args(&argv[1..]), shown)
            }
            Template::Shell(None) => (Cmd::shell(line), line.to_owned()),
            Template::Shell(Some(script)) => {
                // Backslashes, not single quotes: a user's own quotes around `{}`
                // ("{}" or '{}') cannot turn the input back into code.
                let quoted = quote_backslash(line);
                let script = if script.contains("{}") {
                    script.replace("{}", &quoted)
                } else {
                    format!("{script} {quoted}")
                };
                (Cmd::shell(&script), script)
            }
        }
    }

    /// Whether commands run through `sh -c` (where exit status 127 means "not found").
    pub fn is_shell(&self) -> bool {
        matches!(self, Template::Shell(_))
    }
}

fn is_executable(path: &Path) -> bool {
    path.metadata()
        .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolves_fixed_programs_only() {
        let args = |words: &[&str]| Template::Args(words.iter().map(|w| (*w).to_owned()).collect());
        let sh = args(&["sh", "-c", "true"])
            .resolve_program()
            .expect("sh is on PATH");
        assert!(sh.is_absolute() && sh.ends_with("sh"), "{}", sh.display());
        assert_eq!(args(&["{}"]).resolve_program(), None);
        assert_eq!(args(&["./local-script"]).resolve_program(), None);
        assert_eq!(args(&["concur-no-such-program"]).resolve_program(), None);
        assert_eq!(Template::Shell(None).resolve_program(), None);
    }
}
