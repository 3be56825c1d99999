//! The book's rule, `count_neighbors` and `game_logic` (Conway's B3/S23), and [`Rule`]:
//! any outer-totalistic B/S rule, in Golly's notations.
//!
//! These are pure functions. The slow I/O the chapter adds to `game_logic` lives behind
//! the seam in [`cell_io`](super::cell_io), so every strategy shares this one rule.

use std::fmt;
use std::str::FromStr;

use thiserror::Error;

use super::grid::{Cell, Grid};

/// An outer-totalistic rule: the neighbour counts (0 to 8) at which an empty cell is
/// born, and those at which a living cell survives. Conway's Life is `B3/S23`.
///
/// It reads Golly's notations: `B36/S23`, `b36s23`, the older S/B order `23/36`,
/// `S23/B36`, and the names `Life` and `HighLife`.
///
/// ```
/// use concur::life::Cell;
/// use concur::life::rule::Rule;
///
/// let highlife: Rule = "23/36".parse().unwrap();
/// assert_eq!(highlife.to_string(), "B36/S23");
/// assert_eq!(highlife.next(Cell::Empty, 6), Cell::Alive);
/// assert_eq!(Rule::CONWAY.next(Cell::Empty, 6), Cell::Empty);
/// assert!("B2n3/S23".parse::<Rule>().is_err()); // not outer-totalistic
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Rule {
    /// Bit n set: an empty cell with n living neighbours is born.
    birth: u16,
    /// Bit n set: a living cell with n living neighbours survives.
    survival: u16,
}

/// Why a rule could not be read.
#[derive(Debug, Error, PartialEq, Eq)]
#[error("rule {rule:?}: {reason}")]
pub struct RuleError {
    /// The rule as given.
    pub rule: String,
    /// What is wrong with it.
    pub reason: String,
}

impl Rule {
    /// Conway's Life, B3/S23: the book's [`game_logic`].
    pub const CONWAY: Rule = Rule {
        birth: 1 << 3,
        survival: 1 << 2 | 1 << 3,
    };

    /// The rule born at the counts in `birth` and surviving at those in `survival`.
    /// Counts above 8 are ignored.
    pub fn new(birth: &[u8], survival: &[u8]) -> Self {
        let mask = |counts: &[u8]| {
            counts
                .iter()
                .filter(|&&n| n <= 8)
                .fold(0u16, |m, &n| m | 1 << n)
        };
        Self {
            birth: mask(birth),
            survival: mask(survival),
        }
    }

    /// The next state of a cell in `state` with `neighbors` living neighbours.
    pub const fn next(self, state: Cell, neighbors: u8) -> Cell {
        let set = match state {
            Cell::Alive => self.survival,
            Cell::Empty => self.birth,
        };
        if neighbors <= 8 && set >> neighbors & 1 == 1 {
            Cell::Alive
        } else {
            Cell::Empty
        }
    }

    /// Whether empty space comes alive (`B0`): on an unbounded plane every cell would.
    pub const fn births_from_nothing(self) -> bool {
        self.birth & 1 == 1
    }

    /// Whether this is Conway's B3/S23.
    pub fn is_conway(self) -> bool {
        self == Self::CONWAY
    }

    /// Applies the rule to 64 cells at once. `alive` holds their states, one per bit;
    /// `total` holds, bit-sliced (`total[i]` is bit i of each count), the living cells
    /// in each one's 3×3 block, the cell itself included (0 to 9).
    #[inline]
    pub fn apply_total(self, alive: u64, total: [u64; 4]) -> u64 {
        if self.is_conway() {
            // A cell lives next if its block holds 3, or 4 and it is alive.
            let [b0, b1, b2, b3] = total;
            let three = b0 & b1 & !b2 & !b3;
            let four = !b0 & !b1 & b2 & !b3;
            return three | (alive & four);
        }
        let (mut born, mut stays) = (0u64, 0u64);
        for t in 0..=9u16 {
            let equal = (0..4).fold(u64::MAX, |m, bit| {
                m & if t >> bit & 1 == 1 {
                    total[bit]
                } else {
                    !total[bit]
                }
            });
            if self.birth >> t & 1 == 1 {
                born |= equal;
            }
            if t >= 1 && self.survival >> (t - 1) & 1 == 1 {
                stays |= equal;
            }
        }
        (born & !alive) | (stays & alive)
    }
}

impl Default for Rule {
    fn default() -> Self {
        Self::CONWAY
    }
}

impl fmt::Display for Rule {
    /// B/S notation: `B3/S23`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let digits = |mask: u16| -> String {
            (0..=8u8)
                .filter(|n| mask >> n & 1 == 1)
                .map(|n| char::from(b'0' + n))
                .collect()
        };
        write!(f, "B{}/S{}", digits(self.birth), digits(self.survival))
    }
}

impl fmt::Debug for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Rule({self})")
    }
}

impl FromStr for Rule {
    type Err = RuleError;

    fn from_str(text: &str) -> Result<Self, RuleError> {
        let fail = |reason: &str| RuleError {
            rule: text.to_owned(),
            reason: reason.to_owned(),
        };
        let upper = text.trim().to_ascii_uppercase();
        match upper.as_str() {
            "LIFE" | "CONWAY" => return Ok(Self::CONWAY),
            "HIGHLIFE" => return Ok(Self::new(&[3, 6], &[2, 3])),
            "" => return Err(fail("the rule is empty")),
            _ => {}
        }
        let digits = |part: &str| -> Result<Vec<u8>, RuleError> {
            part.chars()
                .map(|c| match c.to_digit(10) {
                    Some(d) if d <= 8 => Ok(d as u8),
                    Some(_) => Err(fail("neighbour counts run from 0 to 8")),
                    None if c.is_ascii_alphabetic() => Err(fail(
                        "non-totalistic rules (letters after the counts) are not supported;                          concur runs outer-totalistic B/S rules such as B36/S23",
                    )),
                    None => Err(fail(&format!(
                        "unexpected {c:?}; write the rule as B3/S23 or 23/3"
                    ))),
                })
                .collect()
        };
        let parts: Vec<&str> = upper.split('/').collect();
        if upper.contains(['B', 'S']) {
            // B3/S23, S23/B3, B3S23.
            let (mut birth, mut survival) = (None, None);
            let tokens: Vec<&str> = if parts.len() == 1 {
                match (upper.find('B'), upper.find('S')) {
                    (Some(b), Some(s)) if b < s => vec![&upper[b..s], &upper[s..]],
                    (Some(b), Some(s)) => vec![&upper[s..b], &upper[b..]],
                    _ => vec![upper.as_str()],
                }
            } else {
                parts.clone()
            };
            if tokens.len() > 2 {
                return Err(fail(
                    "Generations rules (three parts) are not supported; concur runs two-state                      B/S rules",
                ));
            }
            for token in tokens {
                let token = token.trim();
                if let Some(rest) = token.strip_prefix('B') {
                    birth.get_or_insert(digits(rest)?);
                } else if let Some(rest) = token.strip_prefix('S') {
                    survival.get_or_insert(digits(rest)?);
                } else {
                    return Err(fail("expected B and S parts, as in B3/S23"));
                }
            }
            match (birth, survival) {
                (Some(b), Some(s)) => Ok(Self::new(&b, &s)),
                _ => Err(fail("expected both a B part and an S part, as in B3/S23")),
            }
        } else {
            match parts.as_slice() {
                [survival, birth] => Ok(Self::new(&digits(birth)?, &digits(survival)?)),
                [_, _, _] => Err(fail(
                    "Generations rules (three parts) are not supported; concur runs two-state                      B/S rules",
                )),
                _ => Err(fail(
                    "not a rule concur knows; write it as B3/S23 (birth/survival) or 23/3                      (survival/birth)",
                )),
            }
        }
    }
}

/// Counts the living cells among the eight neighbours of (y, x), wrapping at the edges.
///
/// On a grid narrower or shorter than 3 the same wrapped cell can be counted more than
/// once, exactly as the book's `count_neighbors` does.
pub fn count_neighbors(grid: &Grid, y: usize, x: usize) -> u8 {
    // The wrapped rows and columns once, by comparison rather than a division per
    // neighbour: a million-cell generation builds a million of these counts.
    let (height, width) = (grid.height(), grid.width());
    let (y, x) = (y % height, x % width);
    let before = |i: usize, n: usize| if i == 0 { n - 1 } else { i - 1 };
    let after = |i: usize, n: usize| if i + 1 == n { 0 } else { i + 1 };
    let rows = [before(y, height), y, after(y, height)];
    let columns = [before(x, width), x, after(x, width)];
    let mut alive = 0;
    for row in rows {
        for column in columns {
            alive += u8::from(grid.cell_at(row, column).is_alive());
        }
    }
    // The cell itself is not its own neighbour.
    alive - u8::from(grid.cell_at(y, x).is_alive())
}

/// The book's three rules: a living cell with fewer than two or more than three
/// neighbours dies; an empty cell with exactly three comes alive; otherwise nothing changes.
///
/// ```
/// use concur::life::{game_logic, Cell};
///
/// assert_eq!(game_logic(Cell::Alive, 1), Cell::Empty); // too few
/// assert_eq!(game_logic(Cell::Alive, 4), Cell::Empty); // too many
/// assert_eq!(game_logic(Cell::Empty, 3), Cell::Alive); // regenerate
/// assert_eq!(game_logic(Cell::Alive, 2), Cell::Alive);
/// ```
pub const fn game_logic(state: Cell, neighbors: u8) -> Cell {
    match (state, neighbors) {
        (Cell::Alive, n) if n < 2 || n > 3 => Cell::Empty,
        (Cell::Empty, 3) => Cell::Alive,
        (state, _) => state,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_in_golly_notations() {
        let day_and_night = Rule::new(&[3, 6, 7, 8], &[3, 4, 6, 7, 8]);
        for text in [
            "B3678/S34678",
            "b3678/s34678",
            "B3678S34678",
            "S34678/B3678",
            "34678/3678",
        ] {
            assert_eq!(text.parse::<Rule>(), Ok(day_and_night), "{text}");
        }
        for text in ["B3/S23", "23/3", "Life", "life", "S23/B3"] {
            assert_eq!(text.parse::<Rule>(), Ok(Rule::CONWAY), "{text}");
        }
        assert_eq!("B2/S".parse::<Rule>().unwrap().to_string(), "B2/S");
        assert_eq!("/2".parse::<Rule>().unwrap().to_string(), "B2/S");
        assert!("B0/S8".parse::<Rule>().unwrap().births_from_nothing());
        for bad in [
            "", "B9/S23", "B3/S23/4", "23/3/2", "B2e3/S23", "B3", "x/y", "3",
        ] {
            let err = bad.parse::<Rule>().unwrap_err();
            assert!(!err.reason.is_empty(), "{bad}");
        }
    }

    #[test]
    fn rule_next_matches_the_book_for_conway() {
        for n in 0..=8u8 {
            for state in [Cell::Alive, Cell::Empty] {
                assert_eq!(Rule::CONWAY.next(state, n), game_logic(state, n));
            }
        }
    }

    #[test]
    fn bit_sliced_rule_matches_the_cell_rule() {
        // Every (state, total) pair, one per bit: bit i has total i % 10, alive if i >= 32.
        let rules = [
            "B3/S23",
            "B36/S23",
            "B3678/S34678",
            "B2/S",
            "B0/S8",
            "B012345678/S012345678",
        ];
        for text in rules {
            let rule: Rule = text.parse().unwrap();
            let mut total = [0u64; 4];
            let mut alive = 0u64;
            for i in 0..64u64 {
                let t = i % 10;
                for (bit, word) in total.iter_mut().enumerate() {
                    *word |= (t >> bit & 1) << i;
                }
                alive |= u64::from(i >= 32 && t >= 1) << i;
            }
            let next = rule.apply_total(alive, total);
            for i in 0..64u64 {
                let state = if alive >> i & 1 == 1 {
                    Cell::Alive
                } else {
                    Cell::Empty
                };
                let neighbours = (i % 10) as u8 - u8::from(state.is_alive());
                if neighbours > 8 {
                    continue;
                }
                let expected = rule.next(state, neighbours).is_alive();
                assert_eq!(next >> i & 1 == 1, expected, "{text} bit {i}");
            }
        }
    }

    #[test]
    fn rule_table() {
        let expected_alive = [false, false, true, true, false, false, false, false, false];
        let expected_empty = [false, false, false, true, false, false, false, false, false];
        for n in 0..=8u8 {
            assert_eq!(
                game_logic(Cell::Alive, n).is_alive(),
                expected_alive[n as usize],
                "alive with {n}"
            );
            assert_eq!(
                game_logic(Cell::Empty, n).is_alive(),
                expected_empty[n as usize],
                "empty with {n}"
            );
        }
    }

    #[test]
    fn neighbors_wrap_around_the_torus() {
        // Corner cell (0, 0) of a 4x4 grid touches (3, 3), (3, 0), (0, 3) ... through the edges.
        let mut grid = Grid::new(4, 4).unwrap();
        for (y, x) in [(3, 3), (3, 0), (0, 3), (1, 1)] {
            grid.set(y, x, Cell::Alive);
        }
        assert_eq!(count_neighbors(&grid, 0, 0), 4);
        assert_eq!(count_neighbors(&grid, 2, 2), 2); // (1, 1) and (3, 3)
    }

    #[test]
    fn single_cell_grid_sees_itself_eight_times() {
        let mut grid = Grid::new(1, 1).unwrap();
        grid.set(0, 0, Cell::Alive);
        assert_eq!(count_neighbors(&grid, 0, 0), 8);
    }
}
