//! The grid packed 64 cells to a word, and Conway's rule applied 64 cells at a time.
//!
//! This is what `--mode parallel` computes with. It is the other end of the
//! chapter's trade-off: no per-cell I/O at all, so the only question is how fast the
//! hardware can apply the rule.
//!
//! **Layout.** Row `y` is `words_per_row = ceil(width / 64)` words; column `x` is bit
//! `x % 64` of word `x / 64`. Bits past the width (the padding of the last word) are
//! always zero, so [`PackedGrid::alive`] is a plain popcount.
//!
//! **The rule, bit-parallel.** For one word of output, each of its 64 bits needs the sum
//! of the 3×3 block around it (the cell itself included). That sum is built with
//! full adders over whole words, so one `&`, `|` or `^` does 64 cells' arithmetic:
//!
//! 1. per row, `W + C + E` (the cell and its west and east neighbours, wrapped around
//!    the torus) as a 2-bit number `(lo, hi)`: one full adder;
//! 2. per output row, the three rows' 2-bit sums added: two more full adders and a
//!    half adder, giving the 3×3 total in 0..=9 as `s0 + 2·(k0 + 2·(t1 + c))`;
//! 3. Conway's B3/S23 in that form: a cell lives next if the total is 3, or if it is 4
//!    and the cell is alive (the total counts the cell itself).
//!
//! Step 1 is done once per row and reused by the three output rows that need it, so a
//! word of output costs about 30 word operations: about half an operation per cell.
//!
//! Because the 3×3 block is taken with wrapped coordinates, a grid narrower or shorter
//! than 3 counts a wrapped cell more than once, exactly as [`count_neighbors`] does, and
//! the result is bit-identical to the serial strategy on every grid.
//!
//! [`count_neighbors`]: super::count_neighbors

use rayon::prelude::*;

use super::grid::{Cell, Grid};
use super::rule::Rule;

/// A grid packed 64 cells to a `u64`, with the same torus topology as [`Grid`].
///
/// ```
/// use concur::life::Grid;
/// use concur::life::packed::PackedGrid;
///
/// let grid = Grid::glider();
/// let mut packed = PackedGrid::from_grid(&grid);
/// for _ in 0..4 {
///     packed = packed.step();
/// }
/// assert_eq!(packed.alive(), 5);
/// assert_eq!(packed.to_grid().alive(), 5);
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PackedGrid {
    height: usize,
    width: usize,
    words_per_row: usize,
    words: Vec<u64>,
}

impl PackedGrid {
    /// Packs `grid`.
    pub fn from_grid(grid: &Grid) -> Self {
        let mut packed = Self::empty(grid.height(), grid.width());
        let wpr = packed.words_per_row;
        for (row, words) in grid.rows().zip(packed.words.chunks_mut(wpr)) {
            for (chunk, word) in row.chunks(64).zip(words.iter_mut()) {
                *word = chunk
                    .iter()
                    .enumerate()
                    .filter(|(_, c)| c.is_alive())
                    .fold(0, |w, (bit, _)| w | 1 << bit);
            }
        }
        packed
    }

    /// An all-empty packed grid of the same shape as a valid [`Grid`].
    fn empty(height: usize, width: usize) -> Self {
        let words_per_row = width.div_ceil(64);
        Self {
            height,
            width,
            words_per_row,
            words: vec![0; height * words_per_row],
        }
    }

    /// Unpacks into a plain grid.
    pub fn to_grid(&self) -> Grid {
        let cells = self.words.chunks(self.words_per_row).flat_map(|words| {
            (0..self.width).map(move |x| {
                if words[x / 64] >> (x % 64) & 1 == 1 {
                    Cell::Alive
                } else {
                    Cell::Empty
                }
            })
        });
        Grid::from_cells(self.height, self.width, cells.collect())
    }

    /// Number of rows.
    pub fn height(&self) -> usize {
        self.height
    }

    /// Number of columns.
    pub fn width(&self) -> usize {
        self.width
    }

    /// How many cells are alive.
    pub fn alive(&self) -> usize {
        self.words.iter().map(|w| w.count_ones() as usize).sum()
    }

    /// The next generation under Conway's rule, computed on every core (rayon).
    pub fn step(&self) -> Self {
        self.step_with(Rule::CONWAY)
    }

    /// The next generation under `rule`, computed on every core (rayon).
    pub fn step_with(&self, rule: Rule) -> Self {
        let mut next = Self::empty(self.height, self.width);
        self.step_into_with(&mut next, rule);
        next
    }

    /// Writes the next generation under Conway's rule into `next`, which must have the
    /// same shape.
    pub fn step_into(&self, next: &mut Self) {
        self.step_into_with(next, Rule::CONWAY);
    }

    /// Writes the next generation under `rule` into `next`, which must have the same
    /// shape.
    ///
    /// Rows are split into bands, one rayon job each; a band computes the horizontal
    /// sums of its rows and of the one row above and below it.
    pub fn step_into_with(&self, next: &mut Self, rule: Rule) {
        debug_assert_eq!((self.height, self.width), (next.height, next.width));
        let wpr = self.words_per_row;
        // Enough bands to balance the cores, each still thousands of words long.
        let bands = rayon::current_num_threads() * 4;
        let rows_per_band = self.height.div_ceil(bands).max(16_384usize.div_ceil(wpr));
        next.words
            .par_chunks_mut(rows_per_band * wpr)
            .enumerate()
            .for_each(|(band, out)| self.step_band(band * rows_per_band, out, rule));
    }

    /// The bits of a row's last word that are columns of the grid.
    fn last_mask(&self) -> u64 {
        match self.width % 64 {
            0 => u64::MAX,
            bits => (1 << bits) - 1,
        }
    }

    /// Computes the output rows starting at `first` into `out` (whole rows).
    fn step_band(&self, first: usize, out: &mut [u64], rule: Rule) {
        let wpr = self.words_per_row;
        let row = |y: usize| &self.words[y * wpr..(y + 1) * wpr];
        let wrap = |y: isize| y.rem_euclid(self.height as isize) as usize;
        // Horizontal sums of rows y-1, y and y+1, rotated as the band moves down.
        let mut above = RowSum::new(wpr);
        let mut here = RowSum::new(wpr);
        let mut below = RowSum::new(wpr);
        above.compute(row(wrap(first as isize - 1)), self.width);
        here.compute(row(first), self.width);
        for (i, out) in out.chunks_mut(wpr).enumerate() {
            let y = first + i;
            below.compute(row(wrap(y as isize + 1)), self.width);
            apply(rule, row(y), &above, &here, &below, out);
            // Past the width, bits stay zero (a B0 rule would set them).
            out[wpr - 1] &= self.last_mask();
            // above <- here <- below; the old `above` is overwritten next time round.
            std::mem::swap(&mut above, &mut here);
            std::mem::swap(&mut here, &mut below);
        }
    }
}

/// One row's `W + C + E` per bit, as a 2-bit number: `lo` and `hi` words.
struct RowSum {
    lo: Vec<u64>,
    hi: Vec<u64>,
}

impl RowSum {
    fn new(words: usize) -> Self {
        Self {
            lo: vec![0; words],
            hi: vec![0; words],
        }
    }

    /// Sums each cell of `row` with its west and east neighbours, wrapping at the edges.
    fn compute(&mut self, row: &[u64], width: usize) {
        let n = row.len();
        let last = n - 1;
        let top = (width - 1) % 64; // the bit of column width-1 in the last word
        let mask = if width.is_multiple_of(64) {
            u64::MAX
        } else {
            (1 << (width % 64)) - 1
        };
        let first_col = row[0] & 1;
        let last_col = (row[last] >> top) & 1;
        let mut put = |i: usize, w: u64, c: u64, e: u64| {
            self.lo[i] = w ^ c ^ e;
            self.hi[i] = (w & c) | (e & (w ^ c));
        };
        if n == 1 {
            let c = row[0];
            put(
                0,
                ((c << 1) | last_col) & mask,
                c,
                (c >> 1) | (first_col << top),
            );
            return;
        }
        // West of column x is column x-1: shift towards higher bits, carrying in the
        // previous word's top bit. East is the mirror image.
        put(
            0,
            (row[0] << 1) | last_col,
            row[0],
            (row[0] >> 1) | (row[1] << 63),
        );
        for i in 1..last {
            let c = row[i];
            put(
                i,
                (c << 1) | (row[i - 1] >> 63),
                c,
                (c >> 1) | (row[i + 1] << 63),
            );
        }
        let c = row[last];
        put(
            last,
            ((c << 1) | (row[last - 1] >> 63)) & mask,
            c,
            (c >> 1) | (first_col << top),
        );
    }
}

/// Applies `rule` to one row from the horizontal sums of it and its two neighbours.
fn apply(
    rule: Rule,
    alive: &[u64],
    above: &RowSum,
    here: &RowSum,
    below: &RowSum,
    out: &mut [u64],
) {
    let words = alive
        .iter()
        .zip(&above.lo)
        .zip(&above.hi)
        .zip(&here.lo)
        .zip(&here.hi)
        .zip(&below.lo)
        .zip(&below.hi);
    for (o, ((((((&c, &a0), &a1), &b0), &b1), &c0), &c1)) in out.iter_mut().zip(words) {
        *o = rule.apply_total(c, block_total([a0, a1], [b0, b1], [c0, c1]));
    }
}

/// Adds three rows' 2-bit horizontal sums (`[lo, hi]` each) into the 3×3 block's total,
/// 0 to 9, bit-sliced: bit i of every cell's total in word i.
#[inline]
pub(crate) fn block_total(above: [u64; 2], here: [u64; 2], below: [u64; 2]) -> [u64; 4] {
    let ([a0, a1], [b0, b1], [c0, c1]) = (above, here, below);
    // Low bits: a full adder gives s0 and a carry of weight 2.
    let s0 = a0 ^ b0 ^ c0;
    let carry0 = (a0 & b0) | (c0 & (a0 ^ b0));
    // Weight-2 bits: the three high bits and that carry, summed to k0 + 2·(t1 + d).
    let t0 = a1 ^ b1 ^ c1;
    let t1 = (a1 & b1) | (c1 & (a1 ^ b1));
    let k0 = t0 ^ carry0;
    let d = t0 & carry0;
    // t1 and d have weight 4 each: both set is 8.
    [s0, k0, t1 ^ d, t1 & d]
}

/// One row's `W + C + E` per bit (no wrapping: bits shifted out are lost), as `[lo, hi]`.
#[inline]
pub(crate) fn row_sum(row: u64) -> [u64; 2] {
    let (w, c, e) = (row << 1, row, row >> 1);
    [w ^ c ^ e, (w & c) | (e & (w ^ c))]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::life::{count_neighbors, game_logic};

    /// The plain rule, cell by cell: the oracle for the packed one.
    fn plain_step(grid: &Grid) -> Grid {
        let mut next = Grid::new(grid.height(), grid.width()).unwrap();
        for (y, x) in grid.positions() {
            next.set_at(
                y,
                x,
                game_logic(grid.cell_at(y, x), count_neighbors(grid, y, x)),
            );
        }
        next
    }

    #[test]
    fn packing_round_trips_and_keeps_padding_zero() {
        for (h, w) in [(1, 1), (3, 63), (2, 64), (5, 65), (4, 130)] {
            let grid = Grid::random(h, w, 0.5, 3).unwrap();
            let packed = PackedGrid::from_grid(&grid);
            assert_eq!(packed.to_grid(), grid, "{h}x{w}");
            assert_eq!(packed.alive(), grid.alive(), "{h}x{w}");
        }
    }

    #[test]
    fn matches_the_plain_rule_on_awkward_shapes() {
        let shapes = [
            (1, 1),
            (1, 7),
            (7, 1),
            (2, 2),
            (1, 64),
            (64, 1),
            (3, 63),
            (3, 64),
            (3, 65),
            (17, 127),
            (9, 128),
            (40, 200),
        ];
        for (h, w) in shapes {
            for seed in 0..4 {
                let mut grid = Grid::random(h, w, 0.4, seed).unwrap();
                let mut packed = PackedGrid::from_grid(&grid);
                for generation in 1..=6 {
                    grid = plain_step(&grid);
                    packed = packed.step();
                    assert_eq!(
                        packed.to_grid(),
                        grid,
                        "{h}x{w} seed {seed} gen {generation}"
                    );
                }
            }
        }
    }

    #[test]
    fn other_rules_match_the_plain_rule() {
        for text in ["B36/S23", "B3678/S34678", "B2/S", "B0/S8", "B1357/S1357"] {
            let rule: Rule = text.parse().unwrap();
            for (h, w) in [(1, 1), (3, 65), (17, 127), (2, 2)] {
                let mut grid = Grid::random(h, w, 0.4, 7).unwrap();
                let mut packed = PackedGrid::from_grid(&grid);
                for generation in 1..=5 {
                    let mut next = Grid::new(h, w).unwrap();
                    for (y, x) in grid.positions() {
                        next.set_at(
                            y,
                            x,
                            rule.next(grid.cell_at(y, x), count_neighbors(&grid, y, x)),
                        );
                    }
                    grid = next;
                    packed = packed.step_with(rule);
                    assert_eq!(packed.to_grid(), grid, "{text} {h}x{w} gen {generation}");
                }
            }
        }
    }

    #[test]
    fn glider_wraps_across_the_word_boundary_and_the_torus_edge() {
        // A 6x70 torus: the glider walks right across bit 63/64 and wraps at column 69.
        let mut grid = Grid::new(6, 70).unwrap();
        for (y, x) in [(0, 61), (1, 62), (2, 60), (2, 61), (2, 62)] {
            grid.set(y, x, Cell::Alive);
        }
        let mut packed = PackedGrid::from_grid(&grid);
        for _ in 0..48 {
            grid = plain_step(&grid);
            packed = packed.step();
        }
        assert_eq!(packed.to_grid(), grid);
        assert_eq!(grid.alive(), 5);
    }
}
