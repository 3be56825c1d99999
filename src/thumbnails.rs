//! The book's photo pipeline for real: read image files, resize them, write
//! thumbnails (`concur pipeline --images`), as three stages of a [`Pipeline`].
//!
//! A bad image does not stop the others: each stage passes an item's failure along as a
//! value, and the report lists every failed path with its reason. Only a failure that
//! would affect every item (the output directory cannot be created) stops the run.

use std::fs;
use std::io;
use std::num::NonZeroUsize;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use image::{DynamicImage, ImageFormat};
use serde::Serialize;
use thiserror::Error;

use crate::queue::{BoxError, Pipeline, PipelineError, StageReport};

/// File extensions treated as images; other files in the input directory are skipped.
pub(crate) const EXTENSIONS: [&str; 6] = ["png", "jpg", "jpeg", "gif", "bmp", "dib"];

/// How to make thumbnails.
#[derive(Clone, Debug)]
pub(crate) struct Options {
    /// Where the images are (not searched recursively).
    pub input: PathBuf,
    /// Where the thumbnails go, under the same file names (created if missing).
    pub output: PathBuf,
    /// Thumbnails fit in `max_size × max_size`, keeping their aspect ratio; smaller
    /// images are copied at their own size.
    pub max_size: u32,
    /// Workers of the read, resize and write stages.
    pub workers: [NonZeroUsize; 3],
    /// Capacity of each queue between stages.
    pub capacity: usize,
}

/// An image that could not be made into a thumbnail.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub(crate) struct Failure {
    /// The input file.
    pub path: PathBuf,
    /// Why, with the stage that failed.
    pub reason: String,
}

/// What a thumbnail run did.
#[derive(Clone, Debug, Serialize)]
pub(crate) struct ThumbnailReport {
    /// Thumbnails written, in input order.
    pub written: Vec<PathBuf>,
    /// Images that failed, in input order.
    pub failed: Vec<Failure>,
    /// Files skipped for not having an image extension.
    pub skipped: usize,
    /// Per-stage numbers.
    pub stages: Vec<StageReport>,
    /// Wall time, seconds.
    pub seconds: f64,
}

/// What stops a whole run.
#[derive(Debug, Error)]
pub(crate) enum ThumbnailError {
    /// The input directory could not be listed.
    #[error("cannot read the image directory {}", path.display())]
    ReadDir {
        /// The directory.
        path: PathBuf,
        /// What the OS said.
        #[source]
        source: io::Error,
    },
    /// The output directory could not be created.
    #[error("cannot create the output directory {}", path.display())]
    CreateDir {
        /// The directory.
        path: PathBuf,
        /// What the OS said.
        #[source]
        source: io::Error,
    },
    /// The stage threads could not be started.
    #[error("cannot start the pipeline threads")]
    Start(#[source] io::Error),
    /// A stage failed outright (a panic in a codec, say).
    #[error(transparent)]
    Pipeline(#[from] PipelineError),
}

/// One item on its way through: either still going, or failed at some stage.
type Item<T> = Result<T, Failure>;

fn failure(path: &Path, stage: &str, err: impl std::fmt::Display) -> Failure {
    Failure {
        path: path.to_owned(),
        reason: format!("{stage}: {err}"),
    }
}

/// Lists the image files of `dir`, sorted, and counts the files skipped.
/// The largest image file read: 256 MiB. (Decoding is bounded too, by the `image`
/// crate's default limit of 512 MiB per image.)
pub(crate) const MAX_IMAGE_BYTES: u64 = 256 << 20;

fn list_images(dir: &Path) -> Result<(Vec<PathBuf>, usize), ThumbnailError> {
    let read_dir = |source| ThumbnailError::ReadDir {
        path: dir.to_owned(),
        source,
    };
    let mut images = Vec::new();
    let mut skipped = 0;
    for entry in fs::read_dir(dir).map_err(read_dir)? {
        let path = entry.map_err(read_dir)?.path();
        let is_image = path
            .extension()
            .and_then(|e| e.to_str())
            .is_some_and(|e| EXTENSIONS.iter().any(|x| x.eq_ignore_ascii_case(e)));
        if is_image {
            images.push(path);
        } else if path.is_file() {
            skipped += 1;
        }
    }
    images.sort();
    Ok((images, skipped))
}

/// Stage 2: decode, and shrink to fit `max_size` (never enlarge).
fn resize(path: &Path, bytes: &[u8], max_size: u32) -> Item<(DynamicImage, ImageFormat)> {
    let format = ImageFormat::from_path(path).map_err(|e| failure(path, "resize", e))?;
    let image = image::load_from_memory_with_format(bytes, format)
        .map_err(|e| failure(path, "resize", e))?;
    let image = if image.width() > max_size || image.height() > max_size {
        image.thumbnail(max_size, max_size)
    } else {
        image
    };
    Ok((image, format))
}

/// Stage 3: encode in the input's format and write atomically (a temporary file,
/// then a rename), so a failure never leaves half a thumbnail behind.
fn write(path: &Path, out_dir: &Path, image: DynamicImage, format: ImageFormat) -> Item<PathBuf> {
    let name = path.file_name().unwrap_or_default();
    let target = out_dir.join(name);
    let partial = out_dir.join(format!(".{}.partial", name.to_string_lossy()));
    // JPEG has no alpha channel.
    let image = if format == ImageFormat::Jpeg {
        DynamicImage::ImageRgb8(image.to_rgb8())
    } else {
        image
    };
    let written = image
        .save_with_format(&partial, format)
        .map_err(|e| failure(path, "write", e))
        .and_then(|()| fs::rename(&partial, &target).map_err(|e| failure(path, "write", e)));
    if written.is_err() {
        let _ = fs::remove_file(&partial);
    }
    written.map(|()| target)
}

/// Makes a thumbnail of every image in `options.input`; `on_done` is called once per
/// image leaving the last stage (for progress bars).
pub(crate) fn make_thumbnails(
    options: &Options,
    on_done: Arc<dyn Fn() + Send + Sync>,
) -> Result<ThumbnailReport, ThumbnailError> {
    let (images, skipped) = list_images(&options.input)?;
    fs::create_dir_all(&options.output).map_err(|source| ThumbnailError::CreateDir {
        path: options.output.clone(),
        source,
    })?;
    let (max_size, out_dir) = (options.max_size.max(1), options.output.clone());
    let [readers, resizers, writers] = options.workers.map(std::num::NonZeroUsize::get);
    let pipeline = Pipeline::builder(options.capacity)
        .stage("read", readers, |path: PathBuf| {
            Ok::<_, BoxError>(
                match crate::limits::read_bounded(&path, MAX_IMAGE_BYTES, "an image") {
                    Ok(bytes) => Ok((path, bytes)),
                    Err(e) => Err(failure(&path, "read", e)),
                },
            )
        })
        .stage("resize", resizers, move |item: Item<(PathBuf, Vec<u8>)>| {
            Ok::<_, BoxError>(item.and_then(|(path, bytes)| {
                resize(&path, &bytes, max_size).map(|(image, format)| (path, image, format))
            }))
        })
        .stage(
            "write",
            writers,
            move |item: Item<(PathBuf, DynamicImage, ImageFormat)>| {
                let written =
                    item.and_then(|(path, image, format)| write(&path, &out_dir, image, format));
                on_done();
                Ok::<_, BoxError>(written)
            },
        )
        .build()
        .map_err(ThumbnailError::Start)?;
    let report = pipeline.run(images)?;
    let (mut written, mut failed) = (Vec::new(), Vec::new());
    for outcome in report.outputs {
        match outcome {
            Ok(path) => written.push(path),
            Err(fail) => failed.push(fail),
        }
    }
    Ok(ThumbnailReport {
        written,
        failed,
        skipped,
        stages: report.stages,
        seconds: report.elapsed.as_secs_f64(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_images_are_not_enlarged_and_large_ones_fit_the_box() {
        let dir = tempfile::tempdir().unwrap();
        let (input, output) = (dir.path().join("in"), dir.path().join("out"));
        fs::create_dir(&input).unwrap();
        image::RgbImage::from_fn(640, 320, |x, _| image::Rgb([(x % 256) as u8, 0, 0]))
            .save(input.join("wide.png"))
            .unwrap();
        image::RgbImage::new(10, 20)
            .save(input.join("tiny.bmp"))
            .unwrap();
        let n = NonZeroUsize::MIN;
        let options = Options {
            input,
            output: output.clone(),
            max_size: 64,
            workers: [n; 3],
            capacity: 1,
        };
        let report = make_thumbnails(&options, Arc::new(|| {})).unwrap();
        assert!(report.failed.is_empty(), "{:?}", report.failed);
        assert_eq!(
            image::image_dimensions(output.join("wide.png")).unwrap(),
            (64, 32)
        );
        assert_eq!(
            image::image_dimensions(output.join("tiny.bmp")).unwrap(),
            (10, 20)
        );
    }
}
