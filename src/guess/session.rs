//! The server's side of one connection, without any I/O: lines in, replies out.

use std::collections::HashSet;

use rand::rngs::SmallRng;
use rand::{RngExt, SeedableRng};

use super::protocol::{Command, Decision, ProtocolError, parse};

/// The most guesses one game keeps track of. Each costs memory, and a client could
/// otherwise send `NUMBER` forever over a huge range.
pub const MAX_GUESSES: usize = 100_000;

/// What the server does with one line.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Response {
    /// A line to send back (without the newline), if any.
    pub reply: Option<String>,
    /// A transcript line, `Server: N is DECISION`, when a report arrived.
    pub transcript: Option<String>,
}

/// One client's game state: the book's `Session`/`AsyncSession`, minus the socket, so
/// the threaded and async servers share it line for line.
///
/// ```
/// use concur::guess::Session;
///
/// let mut session = Session::new(7);
/// session.handle("PARAMS 1 1").unwrap();
/// assert_eq!(session.handle("NUMBER").unwrap().reply.as_deref(), Some("1"));
/// let report = session.handle("REPORT Correct").unwrap();
/// assert_eq!(report.transcript.as_deref(), Some("Server: 1 is Correct"));
/// ```
#[derive(Debug)]
pub struct Session {
    range: Option<(i64, i64)>,
    secret: Option<i64>,
    guesses: HashSet<i64>,
    last: Option<i64>,
    rng: SmallRng,
}

impl Session {
    /// A session whose random guesses come from `seed`.
    pub fn new(seed: u64) -> Self {
        Self {
            range: None,
            secret: None,
            guesses: HashSet::new(),
            last: None,
            rng: SmallRng::seed_from_u64(seed),
        }
    }

    /// Handles one line. An error is sent back as `ERROR <message>`; if
    /// [`ProtocolError::ends_session`] says so, the connection is then closed.
    pub fn handle(&mut self, line: &str) -> Result<Response, ProtocolError> {
        match parse(line)? {
            Command::Params { lo, hi } => {
                // The book's `_clear_state`.
                self.range = Some((lo, hi));
                self.secret = None;
                self.guesses.clear();
                self.last = None;
                Ok(Response::default())
            }
            Command::Number => {
                let guess = self.next_guess()?;
                self.guesses.insert(guess);
                self.last = Some(guess);
                Ok(Response {
                    reply: Some(guess.to_string()),
                    transcript: None,
                })
            }
            Command::Report(decision) => {
                let last = self.last.ok_or(ProtocolError::ReportBeforeNumber)?;
                if decision == Decision::Correct {
                    self.secret = Some(last);
                }
                Ok(Response {
                    reply: None,
                    transcript: Some(format!("Server: {last} is {decision}")),
                })
            }
        }
    }

    /// The secret once known; otherwise a random number of the range not guessed yet.
    fn next_guess(&mut self) -> Result<i64, ProtocolError> {
        if let Some(secret) = self.secret {
            return Ok(secret);
        }
        let (lo, hi) = self.range.ok_or(ProtocolError::NoRange)?;
        // Numbers in the range, as u128 so that [i64::MIN, i64::MAX] fits.
        let size = if hi < lo {
            0
        } else {
            (i128::from(hi) - i128::from(lo) + 1) as u128
        };
        let left = size.saturating_sub(self.guesses.len() as u128);
        if left == 0 {
            return Err(ProtocolError::Exhausted { lo, hi });
        }
        if self.guesses.len() >= MAX_GUESSES {
            return Err(ProtocolError::Malformed(format!(
                "more than {MAX_GUESSES} guesses in one game: start a new one with PARAMS"
            )));
        }
        if left <= 64 {
            // Few numbers left: pick among them directly instead of hoping a random
            // draw misses every guess (the book's loop, which never ends when none is left).
            let pick = self.rng.random_range(0..left as u64);
            let guess = (lo..=hi)
                .filter(|n| !self.guesses.contains(n))
                .nth(pick as usize)
                .ok_or(ProtocolError::Exhausted { lo, hi })?;
            return Ok(guess);
        }
        loop {
            let guess = self.rng.random_range(lo..=hi);
            if !self.guesses.contains(&guess) {
                return Ok(guess);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reply(session: &mut Session, line: &str) -> String {
        session.handle(line).unwrap().reply.unwrap()
    }

    #[test]
    fn every_number_once_then_an_error_instead_of_an_endless_loop() {
        let mut session = Session::new(1);
        session.handle("PARAMS 1 5").unwrap();
        let mut seen: Vec<i64> = (0..5)
            .map(|_| reply(&mut session, "NUMBER").parse().unwrap())
            .collect();
        seen.sort_unstable();
        assert_eq!(seen, [1, 2, 3, 4, 5]);
        let err = session.handle("NUMBER").unwrap_err();
        assert_eq!(err, ProtocolError::Exhausted { lo: 1, hi: 5 });
        assert!(!err.ends_session());
        // A new game starts afresh.
        session.handle("PARAMS 1 5").unwrap();
        assert!(session.handle("NUMBER").is_ok());
    }

    #[test]
    fn after_correct_the_secret_is_repeated() {
        let mut session = Session::new(2);
        session.handle("PARAMS 10 15").unwrap();
        let first = reply(&mut session, "NUMBER");
        session.handle("REPORT Correct").unwrap();
        assert_eq!(reply(&mut session, "NUMBER"), first);
        assert_eq!(reply(&mut session, "NUMBER"), first);
    }

    #[test]
    fn errors_that_end_a_session() {
        let mut session = Session::new(3);
        assert_eq!(
            session.handle("NUMBER").unwrap_err(),
            ProtocolError::NoRange
        );
        session.handle("PARAMS 1 3").unwrap();
        assert_eq!(
            session.handle("REPORT Unsure").unwrap_err(),
            ProtocolError::ReportBeforeNumber
        );
        assert!(session.handle("HELLO").unwrap_err().ends_session());
        // The book's end-of-game PARAMS 0 -1 is an empty range.
        session.handle("PARAMS 0 -1").unwrap();
        assert_eq!(
            session.handle("NUMBER").unwrap_err(),
            ProtocolError::Exhausted { lo: 0, hi: -1 }
        );
    }

    #[test]
    fn the_widest_range_works() {
        let mut session = Session::new(4);
        session
            .handle(&format!("PARAMS {} {}", i64::MIN, i64::MAX))
            .unwrap();
        assert!(reply(&mut session, "NUMBER").parse::<i64>().is_ok());
    }
}
