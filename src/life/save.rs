//! Keeping a run: the grid written back out as RLE or plaintext `.cells`.
//!
//! Both writers crop the grid to its living cells and note the generation in a
//! comment, and what they write reads back through [`pattern`](super::pattern) to the
//! same cells.

use std::fmt::Write as _;

use super::grid::{Cell, Grid};
use super::rule::Rule;

/// The smallest rectangle holding every living cell, as `(top, left, height, width)`;
/// `None` when nothing lives.
pub fn bounding_box(grid: &Grid) -> Option<(usize, usize, usize, usize)> {
    let (mut top, mut left, mut bottom, mut right) = (usize::MAX, usize::MAX, 0, 0);
    for (y, row) in grid.rows().enumerate() {
        let Some(first) = row.iter().position(|c| c.is_alive()) else {
            continue;
        };
        let last = row.iter().rposition(|c| c.is_alive()).unwrap_or(first);
        top = top.min(y);
        bottom = y;
        left = left.min(first);
        right = right.max(last);
    }
    (top != usize::MAX).then(|| (top, left, bottom - top + 1, right - left + 1))
}

/// The rows of the cropped grid (one empty cell when nothing lives).
fn cropped(grid: &Grid) -> Vec<&[Cell]> {
    match bounding_box(grid) {
        Some((top, left, height, width)) => grid
            .rows()
            .skip(top)
            .take(height)
            .map(|row| &row[left..left + width])
            .collect(),
        None => vec![&[Cell::Empty]],
    }
}

/// The grid as RLE, cropped to its living cells, lines at most 70 characters.
///
/// ```
/// use concur::life::{save, Grid};
///
/// let rle = save::to_rle(&Grid::glider(), 0);
/// assert_eq!(rle, "#C generation 0, written by concur\nx = 3, y = 3, rule = B3/S23\nbo$2bo$3o!\n");
/// ```
pub fn to_rle(grid: &Grid, generation: usize) -> String {
    let rows = cropped(grid);
    let width = rows.first().map_or(1, |r| r.len());
    let header = format!(
        "#C generation {generation}, written by concur\nx = {width}, y = {}, rule = B3/S23\n",
        rows.len()
    );
    rle_text(header, rows.iter().map(|r| &r[..]))
}

/// The header, then the rows' runs.
fn rle_text<'a>(header: String, rows: impl Iterator<Item = &'a [Cell]>) -> String {
    let mut out = header.into_bytes();
    let mut rle = RleWriter::new(&mut out);
    let mut blank_rows = 0;
    // Writing into a Vec cannot fail.
    let _ = (|| -> std::io::Result<()> {
        for (y, row) in rows.enumerate() {
            let end = row.iter().rposition(|c| c.is_alive()).map_or(0, |i| i + 1);
            if end == 0 && y > 0 {
                blank_rows += 1;
                continue;
            }
            if y > 0 {
                rle.run(blank_rows + 1, '$')?;
                blank_rows = 0;
            }
            let mut x = 0;
            while x < end {
                let state = row[x];
                let n = row[x..end].iter().take_while(|&&c| c == state).count();
                rle.run(n as u128, if state.is_alive() { 'o' } else { 'b' })?;
                x += n;
            }
        }
        rle.finish()
    })();
    String::from_utf8(out).unwrap_or_default()
}

/// The torus as RLE with Golly's `:T<width>,<height>` suffix, so it reloads on the same
/// torus, cropped to the smallest window that holds every living cell *across the
/// edges* (a pattern straddling an edge is not written as the whole torus).
///
/// ```
/// use concur::life::{save, Cell, Grid, rule::Rule};
///
/// let mut grid = Grid::new(10, 10).unwrap();
/// grid.set(0, 0, Cell::Alive);
/// grid.set(9, 9, Cell::Alive); // its neighbour across both edges
/// let rle = save::torus_to_rle(&grid, 5, Rule::CONWAY);
/// assert!(rle.contains("x = 2, y = 2, rule = B3/S23:T10,10\n"), "{rle}");
/// assert!(rle.ends_with("o$bo!\n"), "{rle}");
/// ```
pub fn torus_to_rle(grid: &Grid, generation: usize, rule: Rule) -> String {
    let (h, w) = (grid.height(), grid.width());
    let mut rows_used = vec![false; h];
    let mut cols_used = vec![false; w];
    for (y, row) in grid.rows().enumerate() {
        for (x, cell) in row.iter().enumerate() {
            if cell.is_alive() {
                rows_used[y] = true;
                cols_used[x] = true;
            }
        }
    }
    let (top, height) = circular_window(&rows_used);
    let (left, width) = circular_window(&cols_used);
    let rows: Vec<Vec<Cell>> = (0..height)
        .map(|dy| {
            (0..width)
                .map(|dx| grid.cell_at((top + dy) % h, (left + dx) % w))
                .collect()
        })
        .collect();
    let header = format!(
        "#C generation {generation}, written by concur\nx = {width}, y = {height}, rule = {rule}:T{w},{h}\n"
    );
    rle_text(header, rows.iter().map(Vec::as_slice))
}

/// The shortest circular window `(start, length)` holding every `true`: the complement
/// of the longest circular run of `false`. `(0, 1)` when there is none.
fn circular_window(used: &[bool]) -> (usize, usize) {
    let n = used.len();
    if !used.contains(&true) {
        return (0, 1);
    }
    // The longest run of unused entries, going round: start after the first used one.
    let first = used.iter().position(|&u| u).unwrap_or(0);
    let (mut best_start, mut best_len) = (0, 0);
    let mut run = 0;
    for i in 1..=n {
        let at = (first + i) % n;
        if used[at] {
            if run > best_len {
                best_len = run;
                best_start = (at + n - run) % n;
            }
            run = 0;
        } else {
            run += 1;
        }
    }
    ((best_start + best_len) % n, n - best_len)
}

/// Writes RLE runs, breaking lines before 70 characters, as Golly does.
pub(crate) struct RleWriter<'a> {
    out: &'a mut dyn std::io::Write,
    line: String,
}

impl<'a> RleWriter<'a> {
    pub(crate) fn new(out: &'a mut dyn std::io::Write) -> Self {
        Self {
            out,
            line: String::new(),
        }
    }

    /// `n` cells (or row ends) of `tag`: `b`, `o` or `$`.
    pub(crate) fn run(&mut self, n: u128, tag: char) -> std::io::Result<()> {
        let token = if n == 1 {
            tag.to_string()
        } else {
            format!("{n}{tag}")
        };
        if self.line.len() + token.len() > 70 {
            writeln!(self.out, "{}", self.line)?;
            self.line.clear();
        }
        self.line.push_str(&token);
        Ok(())
    }

    /// The closing `!`.
    pub(crate) fn finish(mut self) -> std::io::Result<()> {
        self.run(1, '!')?;
        writeln!(self.out, "{}", self.line)
    }
}

/// The grid as plaintext `.cells` (`O` alive, `.` empty), cropped to its living cells.
///
/// ```
/// use concur::life::{save, Grid};
///
/// let cells = save::to_cells(&Grid::glider(), 4);
/// assert!(cells.starts_with("!Name: generation 4, written by concur\n"));
/// assert!(cells.ends_with(".O.\n..O\nOOO\n"));
/// ```
pub fn to_cells(grid: &Grid, generation: usize) -> String {
    let mut out = format!("!Name: generation {generation}, written by concur\n");
    for row in cropped(grid) {
        for cell in row {
            out.push(if cell.is_alive() { 'O' } else { '.' });
        }
        let _ = writeln!(out);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::life::pattern::{PatternFormat, parse};

    #[test]
    fn long_rows_wrap_and_blank_rows_collapse() {
        let mut grid = Grid::new(6, 200).unwrap();
        for x in (0..200).step_by(2) {
            grid.set(0, x, Cell::Alive);
        }
        grid.set(5, 0, Cell::Alive);
        let rle = to_rle(&grid, 9);
        assert!(rle.lines().all(|l| l.len() <= 70), "{rle}");
        assert!(rle.contains("5$o!"), "{rle}");
        let back = parse(&rle, PatternFormat::Rle).unwrap();
        assert_eq!(back.to_string(), {
            let (t, l, h, w) = bounding_box(&grid).unwrap();
            let mut crop = Grid::new(h, w).unwrap();
            for y in 0..h {
                for x in 0..w {
                    crop.set_at(y, x, grid.cell_at(t + y, l + x));
                }
            }
            crop.to_string()
        });
    }

    #[test]
    fn torus_windows_wrap_around() {
        assert_eq!(circular_window(&[true, false, false, false, true]), (4, 2));
        assert_eq!(circular_window(&[false, true, true, false]), (1, 2));
        assert_eq!(circular_window(&[true, true, true]), (0, 3));
        assert_eq!(circular_window(&[false, false]), (0, 1));
        // A glider across the corner of a 20x30 torus reloads on that torus, the same.
        let mut grid = Grid::new(20, 30).unwrap();
        for (y, x) in [(19, 29), (0, 0), (1, 28), (1, 29), (1, 0)] {
            grid.set(y, x, Cell::Alive);
        }
        let rle = torus_to_rle(&grid, 0, Rule::CONWAY);
        assert!(rle.contains("x = 3, y = 3, rule = B3/S23:T30,20"), "{rle}");
        let back = parse(&rle, PatternFormat::Rle).unwrap();
        assert_eq!((back.height(), back.width(), back.alive()), (20, 30, 5));
    }

    #[test]
    fn an_empty_grid_is_one_empty_cell() {
        let grid = Grid::new(4, 4).unwrap();
        assert_eq!(bounding_box(&grid), None);
        let back = parse(&to_rle(&grid, 1), PatternFormat::Rle).unwrap();
        assert_eq!((back.height(), back.width(), back.alive()), (1, 1, 0));
        let back = parse(&to_cells(&grid, 1), PatternFormat::Plaintext).unwrap();
        assert_eq!(back.alive(), 0);
    }
}
