//! The client's side of a game, without any I/O: the book's `report_outcome`.

use super::protocol::Decision;

/// The book's two games: (lowest, highest, secret, most numbers to ask for).
pub const BOOK_GAMES: [(i64, i64, i64, usize); 2] = [(1, 5, 3, 5), (10, 15, 12, 5)];

/// A player who knows the secret and judges each guess, as the book's client does:
/// `Correct` at distance 0, `Unsure` for the first guess, then `Warmer` or `Colder` as
/// the distance shrinks or grows.
///
/// ```
/// use concur::guess::{Decision, Player};
///
/// let mut player = Player::new(3);
/// assert_eq!(player.judge(5), Decision::Unsure);
/// assert_eq!(player.judge(4), Decision::Warmer);
/// assert_eq!(player.judge(1), Decision::Colder);
/// assert_eq!(player.judge(3), Decision::Correct);
/// assert!(player.found());
/// ```
#[derive(Clone, Copy, Debug)]
pub struct Player {
    secret: i64,
    last_distance: Option<u64>,
}

impl Player {
    /// A player whose secret is `secret`.
    pub fn new(secret: i64) -> Self {
        Self {
            secret,
            last_distance: None,
        }
    }

    /// The verdict on `guess`.
    pub fn judge(&mut self, guess: i64) -> Decision {
        let distance = guess.abs_diff(self.secret);
        let decision = match self.last_distance {
            _ if distance == 0 => Decision::Correct,
            None => Decision::Unsure,
            Some(last) if distance < last => Decision::Warmer,
            Some(last) if distance > last => Decision::Colder,
            // The book leaves it Unsure when the distance is the same.
            Some(_) => Decision::Unsure,
        };
        self.last_distance = Some(distance);
        decision
    }

    /// Whether the last guess was the secret: then the book's client stops asking.
    pub fn found(&self) -> bool {
        self.last_distance == Some(0)
    }
}
