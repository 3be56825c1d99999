//! Keeping a run: the grid written back out as RLE or plaintext `.cells`.
//!
//! Both writers crop the grid to its living cells and note the generation in a
//! comment, and what they write reads back through [`pattern`](super::pattern) to the
//! same cells.

use std::fmt::Write as _;

use super::grid::{Cell, Grid};

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
    let mut out = format!(
        "#C generation {generation}, written by concur\nx = {width}, y = {}, rule = B3/S23\n",
        rows.len()
    );
    let mut line = String::new();
    let push = |token: String, line: &mut String, out: &mut String| {
        if line.len() + token.len() > 70 {
            out.push_str(line);
            out.push('\n');
            line.clear();
        }
        line.push_str(&token);
    };
    let run = |n: usize, tag: char| {
        if n == 1 {
            tag.to_string()
        } else {
            format!("{n}{tag}")
        }
    };
    let mut blank_rows = 0;
    for (y, row) in rows.iter().enumerate() {
        let end = row.iter().rposition(|c| c.is_alive()).map_or(0, |i| i + 1);
        if end == 0 && y > 0 {
            blank_rows += 1;
            continue;
        }
        if y > 0 {
            push(run(blank_rows + 1, '$'), &mut line, &mut out);
            blank_rows = 0;
        }
        let mut x = 0;
        while x < end {
            let state = row[x];
            let n = row[x..end].iter().take_while(|&&c| c == state).count();
            push(
                run(n, if state.is_alive() { 'o' } else { 'b' }),
                &mut line,
                &mut out,
            );
            x += n;
        }
    }
    push("!".to_owned(), &mut line, &mut out);
    out.push_str(&line);
    out.push('\n');
    out
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
    fn an_empty_grid_is_one_empty_cell() {
        let grid = Grid::new(4, 4).unwrap();
        assert_eq!(bounding_box(&grid), None);
        let back = parse(&to_rle(&grid, 1), PatternFormat::Rle).unwrap();
        assert_eq!((back.height(), back.width(), back.alive()), (1, 1, 0));
        let back = parse(&to_cells(&grid, 1), PatternFormat::Plaintext).unwrap();
        assert_eq!(back.alive(), 0);
    }
}
