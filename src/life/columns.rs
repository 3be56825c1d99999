//! The book's `ColumnPrinter`: generations side by side.

use std::fmt;

use super::grid::Grid;

/// Lays grids out left to right, each under its generation number, joined by ` | `.
///
/// The header pads each index with `width / 2` spaces on both sides, as the book does.
/// Where that label is wider than the grid (even widths, or indexes of two digits and
/// more) the column's rows are padded to match, so the columns stay aligned.
///
/// ```
/// use concur::life::{ColumnPrinter, Grid};
///
/// let mut columns = ColumnPrinter::default();
/// columns.push(&Grid::new(2, 3).unwrap());
/// columns.push(&Grid::new(2, 3).unwrap());
/// assert_eq!(columns.to_string(), " 0  |  1 \n--- | ---\n--- | ---");
/// ```
#[derive(Clone, Debug, Default)]
pub struct ColumnPrinter {
    columns: Vec<Vec<String>>,
}

impl ColumnPrinter {
    /// Adds the next generation's grid as a column.
    pub fn push(&mut self, grid: &Grid) {
        self.columns
            .push(grid.to_string().lines().map(str::to_owned).collect());
    }

    /// Number of columns so far.
    pub fn len(&self) -> usize {
        self.columns.len()
    }

    /// Whether no column was added yet.
    pub fn is_empty(&self) -> bool {
        self.columns.is_empty()
    }
}

impl fmt::Display for ColumnPrinter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let rows = self.columns.iter().map(Vec::len).max().unwrap_or(0);
        let headers: Vec<String> = self
            .columns
            .iter()
            .enumerate()
            .map(|(i, lines)| {
                let width = lines.first().map_or(0, String::len);
                let pad = " ".repeat(width / 2);
                format!("{pad}{i}{pad}")
            })
            .collect();
        let widths: Vec<usize> = self
            .columns
            .iter()
            .zip(&headers)
            .map(|(lines, header)| header.len().max(lines.first().map_or(0, String::len)))
            .collect();
        let mut line = String::new();
        for (j, header) in headers.iter().enumerate() {
            if j > 0 {
                line.push_str(" | ");
            }
            line.push_str(&format!("{header:<w$}", w = widths[j]));
        }
        f.write_str(&line)?;
        for row in 0..rows {
            line.clear();
            for (j, lines) in self.columns.iter().enumerate() {
                if j > 0 {
                    line.push_str(" | ");
                }
                let cell = lines.get(row).map_or("", String::as_str);
                line.push_str(&format!("{cell:<w$}", w = widths[j]));
            }
            write!(f, "\n{line}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn even_width_and_two_digit_labels_stay_aligned() {
        let grid = Grid::new(1, 4).unwrap();
        let mut columns = ColumnPrinter::default();
        for _ in 0..11 {
            columns.push(&grid);
        }
        let text = columns.to_string();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[0].len(), lines[1].len());
        assert!(lines[0].starts_with("  0   |   1   |"));
        assert!(lines[0].ends_with("|   10  "));
        assert!(lines[1].starts_with("----  | ----  |"));
    }
}
