//! The unbounded plane for the grid strategies: a pattern's bounding box and where it
//! sits, grown and cropped around every generation.
//!
//! The book's strategies (and `parallel`) step a torus. A torus with two empty rows
//! and columns around the pattern steps exactly as the plane does for one generation:
//! no living cell is within reach of an edge, so nothing wraps. [`Plane::step`] pads
//! the pattern so, steps it with any [`Simulation`], and crops the result to its
//! living cells, moving the origin with it. HashLife ([`hashlife`](super::hashlife))
//! keeps the plane its own way.

use std::sync::Arc;

use super::error::LifeError;
use super::grid::{Cell, Grid, GridError};
use super::save::bounding_box;
use super::simulation::Simulation;

/// Empty cells around the pattern while a generation is computed: reach 1, plus 1 so
/// that nothing sees a wrapped cell.
const MARGIN: usize = 2;

/// A pattern on the unbounded plane: its bounding box, and the plane position
/// `(x, y)` of the box's top-left cell.
///
/// ```
/// use std::sync::Arc;
/// use concur::life::{SimulatedIo, Simulation, Strategy};
/// use concur::life::pattern::{parse, PatternFormat};
/// use concur::life::plane::Plane;
///
/// // A glider moves one cell down and right every 4 generations, for ever.
/// let glider = parse("x = 3, y = 3\nbo$2bo$3o!", PatternFormat::Rle).unwrap();
/// let mut plane = Plane::new(glider, (0, 0));
/// let mut sim = Simulation::new(Strategy::Serial, None, Arc::new(SimulatedIo::default())).unwrap();
/// for _ in 0..400 {
///     plane.step(&mut sim).unwrap();
/// }
/// assert_eq!(plane.origin(), (100, 100));
/// assert_eq!(plane.grid().alive(), 5);
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Plane {
    grid: Grid,
    origin: (i64, i64),
}

impl Plane {
    /// `grid`, its top-left cell at `origin`, cropped to its living cells.
    pub fn new(grid: Grid, origin: (i64, i64)) -> Self {
        Self::cropped(&grid, origin)
    }

    /// The bounding box of `grid`'s living cells (one empty cell when none live).
    fn cropped(grid: &Grid, origin: (i64, i64)) -> Self {
        match bounding_box(grid) {
            Some((top, left, h, w)) if (h, w) != (grid.height(), grid.width()) => {
                let mut crop = Grid::from_cells(h, w, vec![Cell::Empty; h * w]);
                for y in 0..h {
                    for x in 0..w {
                        crop.set_at(y, x, grid.cell_at(top + y, left + x));
                    }
                }
                Self {
                    grid: crop,
                    origin: (origin.0 + left as i64, origin.1 + top as i64),
                }
            }
            Some(_) => Self {
                grid: grid.clone(),
                origin,
            },
            None => Self {
                grid: Grid::from_cells(1, 1, vec![Cell::Empty]),
                origin,
            },
        }
    }

    /// The bounding box.
    pub fn grid(&self) -> &Grid {
        &self.grid
    }

    /// The plane position `(x, y)` of the box's top-left cell.
    pub fn origin(&self) -> (i64, i64) {
        self.origin
    }

    /// Runs one generation with `sim`.
    pub fn step(&mut self, sim: &mut Simulation) -> Result<(), LifeError> {
        let (h, w) = (self.grid.height(), self.grid.width());
        let padded = Grid::embed_at(&self.grid, h + 2 * MARGIN, w + 2 * MARGIN, MARGIN, MARGIN)?;
        let next = sim.step(&Arc::new(padded))?;
        let origin = (self.origin.0 - MARGIN as i64, self.origin.1 - MARGIN as i64);
        *self = Self::cropped(&next, origin);
        Ok(())
    }

    /// The window `(x, y, height, width)` holding every plane in `planes`.
    pub fn union<'a>(
        planes: impl IntoIterator<Item = &'a Plane>,
    ) -> Option<(i64, i64, usize, usize)> {
        let mut bounds: Option<(i64, i64, i64, i64)> = None;
        for p in planes {
            let (x, y) = p.origin;
            let (r, b) = (x + p.grid.width() as i64, y + p.grid.height() as i64);
            bounds = Some(match bounds {
                None => (x, y, r, b),
                Some((l, t, rr, bb)) => (l.min(x), t.min(y), rr.max(r), bb.max(b)),
            });
        }
        bounds.map(|(l, t, r, b)| (l, t, (b - t) as usize, (r - l) as usize))
    }

    /// This plane's cells in the window `(x, y, height, width)` (cells outside it are
    /// left out).
    pub fn in_window(
        &self,
        (x, y, height, width): (i64, i64, usize, usize),
    ) -> Result<Grid, GridError> {
        let mut grid = Grid::new(height, width)?;
        for (gy, row) in self.grid.rows().enumerate() {
            for (gx, cell) in row.iter().enumerate() {
                let (wx, wy) = (self.origin.0 + gx as i64 - x, self.origin.1 + gy as i64 - y);
                if cell.is_alive()
                    && (0..width as i64).contains(&wx)
                    && (0..height as i64).contains(&wy)
                {
                    grid.set_at(wy as usize, wx as usize, Cell::Alive);
                }
            }
        }
        Ok(grid)
    }
}
