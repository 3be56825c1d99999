//! The board: a torus of cells, as in the book's `Grid` and `LockingGrid`.

use std::fmt;
use std::sync::{Mutex, PoisonError};

use rand::{RngExt, SeedableRng};
use rand_pcg::Pcg64Mcg;
use thiserror::Error;

/// The largest grid concur will allocate: 100 million cells (100 MB per generation).
///
/// Every strategy keeps at least two generations alive, and the column view keeps all
/// of them, so the cap turns a typo such as `--size 100000x100000` into a clear error
/// instead of an out-of-memory abort.
pub const MAX_CELLS: usize = 100_000_000;

/// The state of one cell: the book's `ALIVE = '*'` and `EMPTY = '-'`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Cell {
    /// `-`: nothing lives here.
    #[default]
    Empty,
    /// `*`: a living cell.
    Alive,
}

impl Cell {
    /// The character the book prints for this state.
    pub const fn symbol(self) -> char {
        match self {
            Cell::Alive => '*',
            Cell::Empty => '-',
        }
    }

    /// Whether the cell is alive.
    pub const fn is_alive(self) -> bool {
        matches!(self, Cell::Alive)
    }
}

/// Why a grid could not be made.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum GridError {
    /// A grid needs at least one row and one column.
    #[error("a grid needs at least 1 row and 1 column, not {height}x{width}")]
    Empty {
        /// Requested rows.
        height: usize,
        /// Requested columns.
        width: usize,
    },
    /// The grid would exceed [`MAX_CELLS`].
    #[error("a {height}x{width} grid is larger than the limit of {max} cells", max = MAX_CELLS)]
    TooLarge {
        /// Requested rows.
        height: usize,
        /// Requested columns.
        width: usize,
    },
    /// A pattern does not fit into the grid it was placed in.
    #[error("the {pattern_height}x{pattern_width} pattern does not fit in a {height}x{width} grid")]
    PatternTooLarge {
        /// Rows of the pattern.
        pattern_height: usize,
        /// Columns of the pattern.
        pattern_width: usize,
        /// Rows of the grid.
        height: usize,
        /// Columns of the grid.
        width: usize,
    },
}

/// A `height` × `width` board whose coordinates wrap around, so it acts like an
/// infinite looping space (a torus), exactly like the book's `Grid.get`/`Grid.set`.
///
/// ```
/// use concur::life::{Cell, Grid};
///
/// let mut grid = Grid::new(3, 4).unwrap();
/// grid.set(-1, -1, Cell::Alive); // wraps to the bottom-right corner
/// assert_eq!(grid.get(2, 3), Cell::Alive);
/// assert_eq!(grid.to_string(), "----\n----\n---*");
/// ```
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Grid {
    height: usize,
    width: usize,
    cells: Vec<Cell>,
}

impl Grid {
    /// An all-empty grid.
    pub fn new(height: usize, width: usize) -> Result<Self, GridError> {
        if height == 0 || width == 0 {
            return Err(GridError::Empty { height, width });
        }
        let len = height
            .checked_mul(width)
            .filter(|&n| n <= MAX_CELLS)
            .ok_or(GridError::TooLarge { height, width })?;
        Ok(Self {
            height,
            width,
            cells: vec![Cell::Empty; len],
        })
    }

    /// The book's starting position: a glider in a 5 × 9 grid, at cells
    /// (0, 3), (1, 4), (2, 2), (2, 3) and (2, 4).
    pub fn glider() -> Self {
        let mut grid = Self {
            height: 5,
            width: 9,
            cells: vec![Cell::Empty; 45],
        };
        grid.add_glider();
        grid
    }

    /// Sets the book's glider cells in this grid (they wrap on small grids).
    pub fn add_glider(&mut self) {
        for (y, x) in [(0, 3), (1, 4), (2, 2), (2, 3), (2, 4)] {
            self.set(y, x, Cell::Alive);
        }
    }

    /// A grid where each cell is alive with probability `density`, reproducible from
    /// `seed` (the generator is PCG64-MCG, whose output is fixed by its spec).
    ///
    /// `density` is clamped to `0.0..=1.0`.
    pub fn random(height: usize, width: usize, density: f64, seed: u64) -> Result<Self, GridError> {
        let mut grid = Self::new(height, width)?;
        let mut rng = Pcg64Mcg::seed_from_u64(seed);
        let density = if density.is_nan() {
            0.0
        } else {
            density.clamp(0.0, 1.0)
        };
        for cell in &mut grid.cells {
            if rng.random_bool(density) {
                *cell = Cell::Alive;
            }
        }
        Ok(grid)
    }

    /// Builds a grid from rows of cells; short rows are padded with empty cells.
    pub fn from_rows(rows: &[Vec<Cell>]) -> Result<Self, GridError> {
        let width = rows.iter().map(Vec::len).max().unwrap_or(0);
        let mut grid = Self::new(rows.len(), width)?;
        for (y, row) in rows.iter().enumerate() {
            grid.cells[y * width..y * width + row.len()].copy_from_slice(row);
        }
        Ok(grid)
    }

    /// A grid from its cells in row-major order; `cells.len()` must be `height × width`
    /// of a valid grid.
    pub(crate) fn from_cells(height: usize, width: usize, cells: Vec<Cell>) -> Self {
        debug_assert_eq!(cells.len(), height * width);
        Self {
            height,
            width,
            cells,
        }
    }

    /// Copies `pattern` into a new `height` × `width` grid with its top-left corner at (0, 0).
    pub fn embed(pattern: &Grid, height: usize, width: usize) -> Result<Self, GridError> {
        Self::embed_at(pattern, height, width, 0, 0)
    }

    /// Copies `pattern` into a new `height` × `width` grid with its top-left corner at
    /// row `top`, column `left`.
    pub fn embed_at(
        pattern: &Grid,
        height: usize,
        width: usize,
        top: usize,
        left: usize,
    ) -> Result<Self, GridError> {
        let mut grid = Self::new(height, width)?;
        if pattern.height + top > height || pattern.width + left > width {
            return Err(GridError::PatternTooLarge {
                pattern_height: pattern.height,
                pattern_width: pattern.width,
                height,
                width,
            });
        }
        for (y, row) in pattern.rows().enumerate() {
            let at = (top + y) * width + left;
            grid.cells[at..at + row.len()].copy_from_slice(row);
        }
        Ok(grid)
    }

    /// Number of rows.
    pub fn height(&self) -> usize {
        self.height
    }

    /// Number of columns.
    pub fn width(&self) -> usize {
        self.width
    }

    /// Number of cells, `height × width`.
    pub fn len(&self) -> usize {
        self.cells.len()
    }

    /// Always false: a grid has at least one cell.
    pub fn is_empty(&self) -> bool {
        self.cells.is_empty()
    }

    fn index(&self, y: isize, x: isize) -> usize {
        // Grid dimensions are at most MAX_CELLS, far below isize::MAX.
        let y = y.rem_euclid(self.height as isize) as usize;
        let x = x.rem_euclid(self.width as isize) as usize;
        y * self.width + x
    }

    /// The cell at (y, x); out-of-range coordinates wrap around.
    pub fn get(&self, y: isize, x: isize) -> Cell {
        self.cells[self.index(y, x)]
    }

    /// Sets the cell at (y, x); out-of-range coordinates wrap around.
    pub fn set(&mut self, y: isize, x: isize, state: Cell) {
        let i = self.index(y, x);
        self.cells[i] = state;
    }

    /// The cell at an in-range position, by row-major index.
    pub(crate) fn cell_at(&self, y: usize, x: usize) -> Cell {
        self.cells[y * self.width + x]
    }

    /// Sets an in-range position.
    pub(crate) fn set_at(&mut self, y: usize, x: usize, state: Cell) {
        self.cells[y * self.width + x] = state;
    }

    /// Sets an in-range position by row-major index.
    #[cfg(feature = "async")]
    pub(crate) fn set_index(&mut self, index: usize, state: Cell) {
        self.cells[index] = state;
    }

    /// Every (y, x) position in row-major order: the order the book's loops visit.
    pub fn positions(&self) -> impl Iterator<Item = (usize, usize)> + use<> {
        let width = self.width;
        (0..self.height).flat_map(move |y| (0..width).map(move |x| (y, x)))
    }

    /// The rows, top to bottom.
    pub fn rows(&self) -> impl Iterator<Item = &[Cell]> {
        self.cells.chunks(self.width)
    }

    /// How many cells are alive.
    pub fn alive(&self) -> usize {
        self.cells.iter().filter(|c| c.is_alive()).count()
    }
}

impl fmt::Display for Grid {
    /// The book's `__str__`: one line of `*` and `-` per row, without a trailing newline.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (y, row) in self.rows().enumerate() {
            if y > 0 {
                f.write_str("\n")?;
            }
            let line: String = row.iter().map(|c| c.symbol()).collect();
            f.write_str(&line)?;
        }
        Ok(())
    }
}

impl fmt::Debug for Grid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "Grid {}x{}:", self.height, self.width)?;
        fmt::Display::fmt(self, f)
    }
}

/// The book's `LockingGrid`: a grid behind a lock, so many threads can write into it.
///
/// In Rust only the *next* generation needs the lock. The previous generation is shared
/// as `&Grid` (or `Arc<Grid>`), and the compiler proves nobody writes to it, so its
/// reads take no lock at all; the book locks both.
#[derive(Debug)]
pub struct LockingGrid {
    inner: Mutex<Grid>,
}

impl LockingGrid {
    /// An all-empty locking grid.
    pub fn new(height: usize, width: usize) -> Result<Self, GridError> {
        Ok(Self {
            inner: Mutex::new(Grid::new(height, width)?),
        })
    }

    /// The cell at (y, x), taken under the lock.
    pub fn get(&self, y: isize, x: isize) -> Cell {
        self.lock().get(y, x)
    }

    /// Sets the cell at (y, x) under the lock.
    pub fn set(&self, y: isize, x: isize, state: Cell) {
        self.lock().set(y, x, state);
    }

    /// Gives back the plain grid once every writer is done.
    pub fn into_inner(self) -> Grid {
        self.inner
            .into_inner()
            .unwrap_or_else(PoisonError::into_inner)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Grid> {
        // A panic while holding the lock cannot leave a Grid half-written (get and set
        // touch one byte), so a poisoned lock is still safe to use.
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn coordinates_wrap_in_both_directions() {
        let mut grid = Grid::new(2, 3).unwrap();
        grid.set(-1, 3, Cell::Alive); // row 1, column 0
        assert_eq!(grid.get(1, 0), Cell::Alive);
        assert_eq!(grid.get(3, -3), Cell::Alive);
        assert_eq!(grid.to_string(), "---\n*--");
    }

    #[test]
    fn glider_matches_the_book() {
        assert_eq!(
            Grid::glider().to_string(),
            "---*-----\n----*----\n--***----\n---------\n---------"
        );
    }

    #[test]
    fn size_limits_are_errors() {
        assert_eq!(
            Grid::new(0, 5).unwrap_err(),
            GridError::Empty {
                height: 0,
                width: 5
            }
        );
        assert!(matches!(
            Grid::new(usize::MAX, 2),
            Err(GridError::TooLarge { .. })
        ));
        assert!(matches!(
            Grid::new(100_000, 100_000),
            Err(GridError::TooLarge { .. })
        ));
    }

    #[test]
    fn random_is_reproducible_and_respects_density() {
        let a = Grid::random(20, 30, 0.5, 7).unwrap();
        assert_eq!(a, Grid::random(20, 30, 0.5, 7).unwrap());
        assert_ne!(a, Grid::random(20, 30, 0.5, 8).unwrap());
        assert_eq!(Grid::random(4, 4, 0.0, 1).unwrap().alive(), 0);
        assert_eq!(Grid::random(4, 4, 1.0, 1).unwrap().alive(), 16);
    }

    #[test]
    fn embed_places_at_origin_and_rejects_overflow() {
        let pattern =
            Grid::from_rows(&[vec![Cell::Alive], vec![Cell::Empty, Cell::Alive]]).unwrap();
        let grid = Grid::embed(&pattern, 3, 3).unwrap();
        assert_eq!(grid.to_string(), "*--\n-*-\n---");
        assert!(matches!(
            Grid::embed(&pattern, 1, 5),
            Err(GridError::PatternTooLarge { .. })
        ));
    }
}
