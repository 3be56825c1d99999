//! Watching a run: a full-screen terminal animation, and an animated GIF.
//!
//! The terminal shows a window onto the torus: for grids larger than the screen it is
//! centred on the starting pattern's living cells and stays put, so motion shows as
//! motion. The GIF shows the whole grid, up to a frame size ([`MAX_GIF_PIXELS`]).

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crossterm::event::{self, Event, KeyCode, KeyEventKind, KeyModifiers};
use crossterm::{cursor, execute, queue, style, terminal};
use image::codecs::gif::{GifEncoder, Repeat};
use image::{Delay, Frame, Rgba, RgbaImage};
use thiserror::Error;

use super::grid::Grid;
use super::save::bounding_box;

/// A window onto the grid: `rows` × `cols` cells from (`top`, `left`), wrapping.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Window {
    /// First row shown.
    pub top: usize,
    /// First column shown.
    pub left: usize,
    /// Rows shown (at most the grid's).
    pub rows: usize,
    /// Columns shown (at most the grid's).
    pub cols: usize,
}

impl Window {
    /// The whole grid if it fits in `rows` × `cols`; otherwise that much of it, centred
    /// on the living cells of `grid` (on its middle if nothing lives).
    pub(crate) fn centred(grid: &Grid, rows: usize, cols: usize) -> Self {
        let (rows, cols) = (rows.clamp(1, grid.height()), cols.clamp(1, grid.width()));
        let (cy, cx) = match bounding_box(grid) {
            Some((top, left, h, w)) => (top + h / 2, left + w / 2),
            None => (grid.height() / 2, grid.width() / 2),
        };
        let start = |centre: usize, shown: usize, size: usize| {
            if shown == size {
                0
            } else {
                (centre + size - shown / 2) % size
            }
        };
        Self {
            top: start(cy, rows, grid.height()),
            left: start(cx, cols, grid.width()),
            rows,
            cols,
        }
    }

    fn alive(&self, grid: &Grid, y: usize, x: usize) -> bool {
        let gy = (self.top + y) % grid.height();
        let gx = (self.left + x) % grid.width();
        grid.get(gy as isize, gx as isize).is_alive()
    }
}

/// The window drawn with half blocks: two rows of cells per line of text.
pub(crate) fn half_blocks(grid: &Grid, window: &Window) -> Vec<String> {
    (0..window.rows.div_ceil(2))
        .map(|line| {
            (0..window.cols)
                .map(|x| {
                    let upper = window.alive(grid, 2 * line, x);
                    let lower = 2 * line + 1 < window.rows && window.alive(grid, 2 * line + 1, x);
                    match (upper, lower) {
                        (true, true) => '█',
                        (true, false) => '▀',
                        (false, true) => '▄',
                        (false, false) => ' ',
                    }
                })
                .collect()
        })
        .collect()
}

/// What the status line shows.
#[derive(Clone, Debug)]
pub(crate) struct Status<'a> {
    /// The generation on screen.
    pub generation: usize,
    /// Its living cells.
    pub population: usize,
    /// Seconds the last step took.
    pub seconds_per_generation: f64,
    /// The strategy's name.
    pub strategy: &'a str,
}

/// The terminal in animation mode: alternate screen, hidden cursor, raw keys. Every way
/// out restores it: [`Animation::finish`], dropping it (an error unwinding through), and
/// a panic (a hook restores the terminal before the panic message is printed).
pub(crate) struct Animation {
    out: io::Stdout,
    frame: Duration,
    next_frame: Instant,
    window: Option<Window>,
    active: bool,
}

impl std::fmt::Debug for Animation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Animation")
            .field("frame", &self.frame)
            .finish_non_exhaustive()
    }
}

/// Leaves animation mode; harmless when not in it.
fn restore() {
    let mut out = io::stdout();
    let _ = execute!(
        out,
        style::ResetColor,
        cursor::Show,
        terminal::LeaveAlternateScreen
    );
    let _ = terminal::disable_raw_mode();
}

impl Animation {
    /// Enters animation mode, drawing at most `fps` frames per second.
    pub(crate) fn start(fps: u32) -> io::Result<Self> {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            restore();
            previous(info);
        }));
        let mut out = io::stdout();
        terminal::enable_raw_mode()?;
        let entered = execute!(
            out,
            terminal::EnterAlternateScreen,
            cursor::Hide,
            terminal::Clear(terminal::ClearType::All)
        );
        if let Err(err) = entered {
            restore();
            return Err(err);
        }
        let frame = Duration::from_secs(1) / fps.max(1);
        Ok(Self {
            out,
            frame,
            next_frame: Instant::now(),
            window: None,
            active: true,
        })
    }

    /// Draws `grid` with its status line, then waits out the rest of the frame while
    /// watching the keyboard. Returns `false` when the user asked to quit (`q`, Esc or
    /// Ctrl-C).
    pub(crate) fn show(&mut self, grid: &Grid, status: &Status<'_>) -> io::Result<bool> {
        let (cols, text_rows) = screen();
        let window = *self
            .window
            .get_or_insert_with(|| Window::centred(grid, text_rows * 2, cols));
        let line = format!(
            "generation {}  population {}  {:.3} s/gen  {}  {}x{} of {}x{}  (q quits)",
            status.generation,
            status.population,
            status.seconds_per_generation,
            status.strategy,
            window.rows,
            window.cols,
            grid.height(),
            grid.width()
        );
        self.draw(&half_blocks(grid, &window), &line)?;
        self.schedule();
        // Watch the keys until the next frame is due (at least once).
        loop {
            match self.key(Some(self.next_frame))? {
                Some(Key::Quit) => return Ok(false),
                Some(_) => {}
                None => return Ok(true),
            }
        }
    }

    /// Draws the lines of cells and the status line under them.
    fn draw(&mut self, lines: &[String], status: &str) -> io::Result<()> {
        let (cols, text_rows) = screen();
        queue!(self.out, cursor::MoveTo(0, 0))?;
        for (i, line) in lines.iter().enumerate().take(text_rows) {
            queue!(
                self.out,
                cursor::MoveTo(0, i as u16),
                style::Print(line),
                terminal::Clear(terminal::ClearType::UntilNewLine)
            )?;
        }
        let line: String = status.chars().take(cols).collect();
        queue!(
            self.out,
            cursor::MoveTo(0, text_rows as u16),
            style::SetAttribute(style::Attribute::Reverse),
            style::Print(line),
            style::SetAttribute(style::Attribute::Reset),
            terminal::Clear(terminal::ClearType::UntilNewLine)
        )?;
        self.out.flush()
    }

    /// Sets when the next frame is due.
    fn schedule(&mut self) {
        self.next_frame += self.frame;
        let now = Instant::now();
        if self.next_frame < now {
            self.next_frame = now;
        }
    }

    /// The next key pressed before `until` (`None` waits for ever); `Ok(None)` when
    /// `until` comes first.
    fn key(&mut self, until: Option<Instant>) -> io::Result<Option<Key>> {
        loop {
            let wait = until.map_or(Duration::from_secs(3600), |t| {
                t.saturating_duration_since(Instant::now())
            });
            if event::poll(wait)? {
                if let Event::Key(key) = event::read()?
                    && key.kind != KeyEventKind::Release
                {
                    let ctrl_c = key.code == KeyCode::Char('c')
                        && key.modifiers.contains(KeyModifiers::CONTROL);
                    let pressed = match key.code {
                        _ if ctrl_c => Key::Quit,
                        KeyCode::Char('q') | KeyCode::Esc => Key::Quit,
                        KeyCode::Left => Key::Pan(-1, 0),
                        KeyCode::Right => Key::Pan(1, 0),
                        KeyCode::Up => Key::Pan(0, -1),
                        KeyCode::Down => Key::Pan(0, 1),
                        KeyCode::Char('+') | KeyCode::Char('=') => Key::ZoomIn,
                        KeyCode::Char('-') => Key::ZoomOut,
                        KeyCode::Char(' ') => Key::Pause,
                        KeyCode::Char('.') => Key::Step,
                        KeyCode::Char('f') | KeyCode::Home => Key::Follow,
                        _ => continue,
                    };
                    return Ok(Some(pressed));
                }
            } else if until.is_some_and(|t| Instant::now() >= t) {
                return Ok(None);
            }
        }
    }

    /// Leaves animation mode.
    pub(crate) fn finish(mut self) {
        self.active = false;
        restore();
    }
}

impl Drop for Animation {
    fn drop(&mut self) {
        if self.active {
            restore();
        }
    }
}

/// The terminal's columns, and its lines less the status line.
fn screen() -> (usize, usize) {
    let (cols, lines) = terminal::size().unwrap_or((80, 24));
    (usize::from(cols).max(1), usize::from(lines).max(2) - 1)
}

/// A key the viewers act on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Key {
    Quit,
    /// Arrows: a step of the view left/right (x) or up/down (y).
    Pan(i8, i8),
    ZoomIn,
    ZoomOut,
    Pause,
    Step,
    Follow,
}

/// What a plane viewer tells the run to do next.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ViewAction {
    /// Run the next step.
    Advance,
    /// Stop the run.
    Quit,
}

/// A view onto the unbounded plane: it follows the pattern's bounding box until the
/// user pans (arrows; `f` follows again), zooms out by powers of two (`-`, `+`: a
/// character cell then shows whether any cell of its square lives), pauses (space)
/// and steps while paused (`.`).
#[derive(Clone, Debug)]
pub(crate) struct PlaneView {
    /// The plane cell at the middle of the screen, when not following.
    centre: Option<(i128, i128)>,
    /// Cells per character cell, across and down: 1, 2, 4, ...
    scale: u64,
    paused: bool,
}

impl Default for PlaneView {
    fn default() -> Self {
        Self {
            centre: None,
            scale: 1,
            paused: false,
        }
    }
}

impl PlaneView {
    /// Draws the plane (`cells` fills a `rows` × `cols` grid with the window it is
    /// given, at a scale), then waits for the frame, or, paused, for space or `.`.
    pub(crate) fn show(
        &mut self,
        animation: &mut Animation,
        bounds: Option<super::hashlife::Bounds>,
        cells: &dyn Fn(super::hashlife::Bounds, u64, usize, usize) -> Grid,
        status: &str,
    ) -> io::Result<ViewAction> {
        loop {
            let (cols, text_rows) = screen();
            let rows = text_rows * 2;
            let centre = self.centre.unwrap_or_else(|| match bounds {
                Some(b) => ((b.left + b.right) / 2, (b.top + b.bottom) / 2),
                None => (0, 0),
            });
            let scale = i128::from(self.scale);
            let (w, h) = (cols as i128 * scale, rows as i128 * scale);
            let window = super::hashlife::Bounds {
                left: centre.0 - w / 2,
                top: centre.1 - h / 2,
                right: centre.0 - w / 2 + w - 1,
                bottom: centre.1 - h / 2 + h - 1,
            };
            let grid = cells(window, self.scale, rows, cols);
            let whole = Window {
                top: 0,
                left: 0,
                rows: grid.height(),
                cols: grid.width(),
            };
            let line = format!(
                "{status}  x {} y {}  1:{}{}  (arrows pan, +/- zoom, f follows, space pauses, . steps, q quits)",
                window.left,
                window.top,
                self.scale,
                if self.paused { "  PAUSED" } else { "" },
            );
            animation.draw(&half_blocks(&grid, &whole), &line)?;
            if !self.paused {
                animation.schedule();
            }
            let until = (!self.paused).then_some(animation.next_frame);
            match animation.key(until)? {
                None => return Ok(ViewAction::Advance),
                Some(Key::Quit) => return Ok(ViewAction::Quit),
                Some(Key::Step) => {
                    self.paused = true;
                    return Ok(ViewAction::Advance);
                }
                Some(Key::Pause) => {
                    self.paused = !self.paused;
                    if !self.paused {
                        return Ok(ViewAction::Advance);
                    }
                }
                Some(Key::Pan(dx, dy)) => {
                    let (sx, sy) = ((w / 8).max(1), (h / 8).max(1));
                    self.centre = Some((
                        centre.0 + i128::from(dx) * sx,
                        centre.1 + i128::from(dy) * sy,
                    ));
                }
                Some(Key::ZoomOut) => self.scale = self.scale.saturating_mul(2).min(1 << 40),
                Some(Key::ZoomIn) => self.scale = (self.scale / 2).max(1),
                Some(Key::Follow) => self.centre = None,
            }
        }
    }
}

/// The most pixels a GIF frame may have: 1,000,000 (1000 × 1000 at `--cell-px 1`).
/// Each frame is colour-quantised as a whole, so larger frames take seconds each.
pub(crate) const MAX_GIF_PIXELS: usize = 1_000_000;

/// A GIF that could not be written.
#[derive(Debug, Error)]
pub(crate) enum GifError {
    /// The frame would be larger than [`MAX_GIF_PIXELS`].
    #[error(
        "a {width}x{height}-pixel GIF frame ({cols}x{rows} cells at {cell_px} px) is larger than \
         the limit of {max} pixels; use a smaller --cell-px or --size",
        max = MAX_GIF_PIXELS
    )]
    TooLarge {
        /// Frame width in pixels.
        width: usize,
        /// Frame height in pixels.
        height: usize,
        /// Columns of cells.
        cols: usize,
        /// Rows of cells.
        rows: usize,
        /// Pixels per cell.
        cell_px: usize,
    },
    /// The file could not be created or written.
    #[error("cannot write GIF {}", path.display())]
    Write {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        #[source]
        source: image::ImageError,
    },
}

/// An animated GIF being written, one frame per call to [`add`](Self::add).
pub(crate) struct GifWriter {
    path: PathBuf,
    encoder: GifEncoder<BufWriter<File>>,
    cell_px: usize,
    delay: Delay,
    frames: usize,
}

impl std::fmt::Debug for GifWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GifWriter")
            .field("path", &self.path)
            .field("frames", &self.frames)
            .finish_non_exhaustive()
    }
}

impl GifWriter {
    /// Checks the frame size for a `height` × `width` grid and creates `path`.
    pub(crate) fn create(
        path: &Path,
        height: usize,
        width: usize,
        cell_px: usize,
        frame: Duration,
    ) -> Result<Self, GifError> {
        let cell_px = cell_px.max(1);
        let (w, h) = (
            width.saturating_mul(cell_px),
            height.saturating_mul(cell_px),
        );
        if w.saturating_mul(h) > MAX_GIF_PIXELS || w > 65_535 || h > 65_535 {
            return Err(GifError::TooLarge {
                width: w,
                height: h,
                cols: width,
                rows: height,
                cell_px,
            });
        }
        let write_error = |source| GifError::Write {
            path: path.to_owned(),
            source,
        };
        let file = File::create(path).map_err(|e| write_error(image::ImageError::IoError(e)))?;
        let mut encoder = GifEncoder::new_with_speed(BufWriter::new(file), 30);
        encoder.set_repeat(Repeat::Infinite).map_err(write_error)?;
        let ms = u32::try_from(frame.as_millis()).unwrap_or(u32::MAX).max(10);
        Ok(Self {
            path: path.to_owned(),
            encoder,
            cell_px,
            delay: Delay::from_numer_denom_ms(ms, 1),
            frames: 0,
        })
    }

    /// Appends `grid` as the next frame.
    pub(crate) fn add(&mut self, grid: &Grid) -> Result<(), GifError> {
        let px = self.cell_px;
        let (w, h) = (grid.width() * px, grid.height() * px);
        let (alive, empty) = (Rgba([255, 214, 10, 255]), Rgba([20, 24, 32, 255]));
        let image = RgbaImage::from_fn(w as u32, h as u32, |x, y| {
            let (cy, cx) = (y as usize / px, x as usize / px);
            if grid.get(cy as isize, cx as isize).is_alive() {
                alive
            } else {
                empty
            }
        });
        self.encoder
            .encode_frame(Frame::from_parts(image, 0, 0, self.delay))
            .map_err(|source| GifError::Write {
                path: self.path.clone(),
                source,
            })?;
        self.frames += 1;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn half_blocks_draw_two_rows_per_line() {
        let grid = Grid::glider();
        let window = Window::centred(&grid, 10, 9);
        assert_eq!(
            half_blocks(&grid, &window),
            ["   ▀▄    ", "  ▀▀▀    ", "         "]
        );
    }
}
