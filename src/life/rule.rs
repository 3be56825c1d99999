//! The book's rule: `count_neighbors` and `game_logic` (Conway's B3/S23).
//!
//! These are pure functions. The slow I/O the chapter adds to `game_logic` lives behind
//! the seam in [`cell_io`](super::cell_io), so every strategy shares this one rule.

use super::grid::{Cell, Grid};

/// Counts the living cells among the eight neighbours of (y, x), wrapping at the edges.
///
/// On a grid narrower or shorter than 3 the same wrapped cell can be counted more than
/// once, exactly as the book's `count_neighbors` does.
pub fn count_neighbors(grid: &Grid, y: usize, x: usize) -> u8 {
    let (y, x) = (y as isize, x as isize);
    let neighbors = [
        grid.get(y - 1, x),     // north
        grid.get(y - 1, x + 1), // northeast
        grid.get(y, x + 1),     // east
        grid.get(y + 1, x + 1), // southeast
        grid.get(y + 1, x),     // south
        grid.get(y + 1, x - 1), // southwest
        grid.get(y, x - 1),     // west
        grid.get(y - 1, x - 1), // northwest
    ];
    neighbors.iter().filter(|c| c.is_alive()).count() as u8
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
