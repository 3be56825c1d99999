//! The book's line protocol: `PARAMS lo hi`, `NUMBER`, `REPORT decision`.

use std::fmt;
use std::str::FromStr;

use thiserror::Error;

use crate::lines::excerpt;

/// The most bytes of a client's input an error reply (and its log line) quotes, so that
/// a long or escape-heavy line cannot make the reply larger than itself.
pub const ECHO_MAX: usize = 80;

/// Client input as an error message quotes it: escaped, at most [`ECHO_MAX`] bytes.
fn echo(text: &str) -> String {
    excerpt(text, ECHO_MAX)
}

/// The client's verdict on a guess.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Decision {
    /// Closer to the secret than the last guess.
    Warmer,
    /// Further from the secret than the last guess.
    Colder,
    /// The first guess: nothing to compare with.
    Unsure,
    /// The secret itself.
    Correct,
}

impl Decision {
    /// The word on the wire.
    pub const fn as_str(self) -> &'static str {
        match self {
            Decision::Warmer => "Warmer",
            Decision::Colder => "Colder",
            Decision::Unsure => "Unsure",
            Decision::Correct => "Correct",
        }
    }
}

impl fmt::Display for Decision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Decision {
    type Err = ProtocolError;

    fn from_str(word: &str) -> Result<Self, ProtocolError> {
        match word {
            "Warmer" => Ok(Decision::Warmer),
            "Colder" => Ok(Decision::Colder),
            "Unsure" => Ok(Decision::Unsure),
            "Correct" => Ok(Decision::Correct),
            other => Err(ProtocolError::Malformed(format!(
                "REPORT takes Warmer, Colder, Unsure or Correct, not {}",
                echo(other)
            ))),
        }
    }
}

/// One line from a client.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Command {
    /// `PARAMS lo hi`: a new game over `[lo, hi]` (`PARAMS 0 -1` ends one).
    Params {
        /// Lowest number.
        lo: i64,
        /// Highest number.
        hi: i64,
    },
    /// `NUMBER`: ask for a guess.
    Number,
    /// `REPORT decision`: the verdict on the last guess.
    Report(Decision),
}

impl fmt::Display for Command {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Command::Params { lo, hi } => write!(f, "PARAMS {lo} {hi}"),
            Command::Number => f.write_str("NUMBER"),
            Command::Report(decision) => write!(f, "REPORT {decision}"),
        }
    }
}

/// Why a line or a request could not be served. Sent back as `ERROR <message>`.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum ProtocolError {
    /// Not one of the three commands (the book's `UnknownCommandError`). Holds the line
    /// as quoted in the reply: escaped, and cut at [`ECHO_MAX`] bytes.
    #[error("unknown command {0}")]
    Unknown(String),
    /// A command with bad arguments.
    #[error("{0}")]
    Malformed(String),
    /// `NUMBER` before any `PARAMS`.
    #[error("NUMBER before PARAMS: there is no range to guess in")]
    NoRange,
    /// `REPORT` before any `NUMBER` in this game.
    #[error("REPORT before any NUMBER: there is no guess to report on")]
    ReportBeforeNumber,
    /// Every number in the range was guessed (the book's loop would spin forever).
    #[error("no numbers left to guess in [{lo}, {hi}]")]
    Exhausted {
        /// Lowest number.
        lo: i64,
        /// Highest number.
        hi: i64,
    },
    /// A line longer than the server allows.
    #[error("line longer than {max} bytes")]
    LineTooLong {
        /// The limit.
        max: usize,
    },
    /// A line that is not UTF-8.
    #[error("line is not valid UTF-8")]
    NotUtf8,
    /// No complete line came within the server's idle timeout.
    #[error("no complete line for {after:?}: closing the connection")]
    Idle {
        /// The idle timeout.
        after: std::time::Duration,
    },
}

impl ProtocolError {
    /// Whether the session can go on after this error. Only an exhausted range is
    /// recoverable (the client can start a new game); everything else is a client that
    /// does not speak the protocol, and its session ends.
    pub fn ends_session(&self) -> bool {
        !matches!(self, ProtocolError::Exhausted { .. })
    }
}

fn number(word: Option<&str>, what: &str) -> Result<i64, ProtocolError> {
    let word = word.ok_or_else(|| ProtocolError::Malformed(format!("PARAMS needs {what}")))?;
    word.parse().map_err(|_| {
        ProtocolError::Malformed(format!(
            "PARAMS {what} {} is not a whole number",
            echo(word)
        ))
    })
}

/// Parses one line (without its newline; a trailing `\r` is ignored).
///
/// ```
/// use concur::guess::{Command, Decision, parse};
///
/// assert_eq!(parse("PARAMS 1 5"), Ok(Command::Params { lo: 1, hi: 5 }));
/// assert_eq!(parse("REPORT Warmer"), Ok(Command::Report(Decision::Warmer)));
/// assert!(parse("GUESS").is_err());
/// ```
pub fn parse(line: &str) -> Result<Command, ProtocolError> {
    let line = line.strip_suffix('\r').unwrap_or(line);
    let mut words = line.split(' ');
    let command = match words.next().unwrap_or("") {
        "PARAMS" => Command::Params {
            lo: number(words.next(), "a lowest number")?,
            hi: number(words.next(), "a highest number")?,
        },
        "NUMBER" => Command::Number,
        "REPORT" => Command::Report(
            words
                .next()
                .ok_or_else(|| ProtocolError::Malformed("REPORT needs a decision".into()))?
                .parse()?,
        ),
        _ => return Err(ProtocolError::Unknown(echo(line))),
    };
    match words.next() {
        None => Ok(command),
        Some(extra) => Err(ProtocolError::Malformed(format!(
            "unexpected {} after {command}",
            echo(extra)
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_books_lines_and_rejects_the_rest() {
        assert_eq!(parse("PARAMS 0 -1"), Ok(Command::Params { lo: 0, hi: -1 }));
        assert_eq!(parse("NUMBER\r"), Ok(Command::Number));
        for (line, fragment) in [
            ("PARAMS 1", "needs a highest number"),
            ("PARAMS one 5", "\"one\" is not a whole number"),
            ("PARAMS 1 99999999999999999999", "is not a whole number"),
            ("REPORT", "needs a decision"),
            ("REPORT Hotter", "not \"Hotter\""),
            ("NUMBER 3", "unexpected \"3\" after NUMBER"),
            ("number", "unknown command"),
        ] {
            let err = parse(line).unwrap_err().to_string();
            assert!(err.contains(fragment), "{line:?}: {err}");
        }
    }

    #[test]
    fn error_messages_quote_at_most_80_bytes_of_input() {
        // 1,000 control bytes would escape to 5 KB; a huge word would be echoed whole.
        let controls = "\u{1}".repeat(1000);
        let huge = "x".repeat(10 << 20);
        for line in [
            controls.clone(),
            huge.clone(),
            format!("PARAMS {huge} 5"),
            format!("REPORT {controls}"),
            format!("NUMBER {huge}"),
        ] {
            let message = parse(&line).unwrap_err().to_string();
            assert!(
                message.len() <= 6 * ECHO_MAX + 100,
                "{} bytes for a {}-byte line",
                message.len(),
                line.len()
            );
            assert!(message.contains("…"), "the cut is marked: {message}");
        }
        assert_eq!(
            parse("HELLO").unwrap_err().to_string(),
            "unknown command \"HELLO\""
        );
    }

    #[test]
    fn commands_print_as_they_parse() {
        for command in [
            Command::Params { lo: 10, hi: 15 },
            Command::Number,
            Command::Report(Decision::Colder),
        ] {
            assert_eq!(parse(&command.to_string()), Ok(command));
        }
    }
}
