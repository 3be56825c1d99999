//! The server's side of one connection, without any I/O: lines in, replies out.

use rand::rngs::SmallRng;
use rand::{RngExt, SeedableRng};

use super::protocol::{Command, Decision, ProtocolError, parse};

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
/// The book remembers every guess in a set, so that it never guesses a number twice.
/// That set grows with every `NUMBER` a client sends, and a client may send millions.
/// Here the guesses are a `Shuffle` of the range instead: the same promise (every
/// number at most once, and an error once all were guessed) in a few words of memory,
/// whatever the client does. The whole session is `size_of::<Session>()` bytes.
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
    guesses: Shuffle,
    last: Option<i64>,
    rng: SmallRng,
}

impl Session {
    /// A session whose random guesses come from `seed`.
    pub fn new(seed: u64) -> Self {
        let mut rng = SmallRng::seed_from_u64(seed);
        Self {
            range: None,
            secret: None,
            guesses: Shuffle::new(0, &mut rng),
            last: None,
            rng,
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
                self.guesses = Shuffle::new(range_size(lo, hi), &mut self.rng);
                self.last = None;
                Ok(Response::default())
            }
            Command::Number => {
                let guess = self.next_guess()?;
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

    /// The secret once known; otherwise a number of the range not guessed yet.
    fn next_guess(&mut self) -> Result<i64, ProtocolError> {
        if let Some(secret) = self.secret {
            return Ok(secret);
        }
        let (lo, hi) = self.range.ok_or(ProtocolError::NoRange)?;
        let offset = self
            .guesses
            .next()
            .ok_or(ProtocolError::Exhausted { lo, hi })?;
        // lo + offset <= hi, so it fits in an i64.
        Ok((i128::from(lo) + i128::from(offset)) as i64)
    }
}

/// How many numbers `[lo, hi]` holds (0 when `hi < lo`); up to 2^64.
fn range_size(lo: i64, hi: i64) -> u128 {
    if hi < lo {
        0
    } else {
        (i128::from(hi) - i128::from(lo) + 1) as u128
    }
}

/// Feistel rounds; four already make a strong pseudorandom permutation (Luby-Rackoff).
const ROUNDS: usize = 6;

/// The numbers `0..size` in a pseudorandom order, each exactly once, in constant memory.
///
/// A keyed Feistel network permutes the `2^bits` numbers of the smallest even-bit domain
/// that holds `size`; values that fall outside `0..size` are permuted again (cycle
/// walking), which keeps the map a bijection of `0..size`. The domain is less than
/// `4 × size`, so a draw takes fewer than four rounds of the network on average.
#[derive(Clone, Debug)]
struct Shuffle {
    size: u128,
    drawn: u128,
    half: u32,
    keys: [u64; ROUNDS],
}

impl Shuffle {
    fn new(size: u128, rng: &mut SmallRng) -> Self {
        // The smallest even number of bits (at least 2) whose domain holds `size`.
        let bits = (128 - size.saturating_sub(1).leading_zeros()).max(2);
        let bits = bits + bits % 2;
        Self {
            size,
            drawn: 0,
            half: bits / 2,
            keys: std::array::from_fn(|_| rng.random()),
        }
    }

    /// The next number, or `None` once all `size` were drawn.
    fn next(&mut self) -> Option<u64> {
        if self.drawn >= self.size {
            return None;
        }
        // drawn < size <= 2^64, so it fits in a u64.
        let mut x = self.drawn as u64;
        self.drawn += 1;
        loop {
            x = self.permute(x);
            if u128::from(x) < self.size {
                return Some(x);
            }
        }
    }

    /// One pass of the Feistel network over the `2 × half`-bit domain.
    fn permute(&self, x: u64) -> u64 {
        // half <= 32: the domain is at most 2^64.
        let mask = (1u64 << self.half) - 1;
        let (mut left, mut right) = ((x >> self.half) & mask, x & mask);
        for key in self.keys {
            let mixed = mix(right ^ key) & mask;
            (left, right) = (right, left ^ mixed);
        }
        (left << self.half) | right
    }
}

/// SplitMix64's finalizer: every input bit affects every output bit.
fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
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
    fn shuffles_are_permutations_of_every_size() {
        let mut rng = SmallRng::seed_from_u64(9);
        for size in (0..=300u128).chain([1000, 1023, 1024, 1025, 4097]) {
            let mut shuffle = Shuffle::new(size, &mut rng);
            let mut seen = vec![false; size as usize];
            for _ in 0..size {
                let n = shuffle.next().expect("a number per draw") as usize;
                assert!(!seen[n], "size {size}: {n} drawn twice");
                seen[n] = true;
            }
            assert_eq!(shuffle.next(), None, "size {size}: exhausted");
        }
    }

    #[test]
    fn guesses_cost_no_memory_however_many_a_client_asks_for() {
        // The book's set (and concur's, until it was replaced) grew by every guess:
        // 100,000 of them held 1.26 MB per connection, and more were refused.
        let mut session = Session::new(5);
        session.handle("PARAMS 1 1000000000000").unwrap();
        let mut seen = std::collections::HashSet::new();
        for _ in 0..300_000 {
            let n: i64 = reply(&mut session, "NUMBER").parse().unwrap();
            assert!((1..=1_000_000_000_000).contains(&n));
            assert!(seen.insert(n), "{n} guessed twice");
        }
        // Everything the session holds is inline: a few dozen words.
        let size = std::mem::size_of::<Session>();
        assert!(size <= 256, "a session is {size} bytes");
    }

    #[test]
    fn guesses_look_random_not_sequential() {
        let mut session = Session::new(6);
        session.handle("PARAMS 1 1000000").unwrap();
        let guesses: Vec<i64> = (0..100)
            .map(|_| reply(&mut session, "NUMBER").parse().unwrap())
            .collect();
        let ascending = guesses.windows(2).filter(|w| w[1] > w[0]).count();
        // About half the steps go up in a random order; a counter would give 99.
        assert!((25..=75).contains(&ascending), "{ascending} of 99 steps up");
        let lower_half = guesses.iter().filter(|&&n| n <= 500_000).count();
        assert!(
            (25..=75).contains(&lower_half),
            "{lower_half} of 100 in the lower half"
        );
    }

    #[test]
    fn the_widest_range_works() {
        let mut session = Session::new(4);
        session
            .handle(&format!("PARAMS {} {}", i64::MIN, i64::MAX))
            .unwrap();
        let a: i64 = reply(&mut session, "NUMBER").parse().unwrap();
        let b: i64 = reply(&mut session, "NUMBER").parse().unwrap();
        assert_ne!(a, b);
        session
            .handle(&format!("PARAMS {} {}", i64::MAX, i64::MAX))
            .unwrap();
        assert_eq!(reply(&mut session, "NUMBER"), i64::MAX.to_string());
    }
}
