//! A character pack's work so far, for the native preview window (`mintframe preview --watch`,
//! the Character screen's "Live preview"): one frame per animation frame holding every facing
//! side by side, one tag per animation, rewritten when a board finishes and (at most once a
//! second) while it denoises. Rows not drawn yet are empty; mirrored rows follow their source.
//!
//! Written as a sheet PNG with its Aseprite JSON, each through a temporary file and a rename, so
//! the window never reads half a file.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use mintframe_media::Rgba;
use mintframe_media::sheet::{Animation, PackOptions};
use mintframe_types::{Anchor, AnimationKind, PlayDirection, SheetLayout};

use crate::StudioError;
use crate::character::side_by_side;

/// The least time between two writes of denoising previews.
const STEP_WRITE_EVERY: Duration = Duration::from_secs(1);

pub(crate) struct LiveRow {
    pub(crate) animation: AnimationKind,
    /// The row (index) this one is a flipped copy of.
    pub(crate) mirror_of: Option<usize>,
    pub(crate) fps: u32,
    pub(crate) frames: usize,
}

pub(crate) struct Live {
    dir: PathBuf,
    size: u32,
    rows: Vec<LiveRow>,
    cells: Vec<Vec<Option<Rgba>>>,
    last_step: Option<Instant>,
}

/// Where a job's live sheet is written.
pub fn live_json(data_dir: &Path, job_id: &str) -> PathBuf {
    data_dir.join("live").join(job_id).join("live.json")
}

impl Live {
    pub(crate) fn new(json: &Path, size: u32, rows: Vec<LiveRow>) -> Result<Live, StudioError> {
        let dir = json
            .parent()
            .ok_or_else(|| StudioError::Settings(format!("{} has no folder", json.display())))?
            .to_path_buf();
        std::fs::create_dir_all(&dir).map_err(|source| StudioError::Io {
            action: "cannot create",
            path: dir.clone(),
            source,
        })?;
        let cells = rows.iter().map(|r| vec![None; r.frames]).collect();
        let live = Live {
            dir,
            size,
            rows,
            cells,
            last_step: None,
        };
        live.write()?;
        Ok(live)
    }

    /// Sets a row's frames (sprite-sized), and those of the rows that mirror it, and writes.
    pub(crate) fn set(&mut self, row: usize, frames: Vec<Rgba>) -> Result<(), StudioError> {
        self.put(row, frames);
        self.write()
    }

    /// [`Live::set`] for a denoising preview: written at most once a second.
    pub(crate) fn set_step(&mut self, row: usize, frames: Vec<Rgba>) -> Result<(), StudioError> {
        self.put(row, frames);
        if self
            .last_step
            .is_some_and(|t| t.elapsed() < STEP_WRITE_EVERY)
        {
            return Ok(());
        }
        self.last_step = Some(Instant::now());
        self.write()
    }

    fn put(&mut self, row: usize, frames: Vec<Rgba>) {
        for (j, r) in self.rows.iter().enumerate() {
            if r.mirror_of == Some(row) {
                self.cells[j] = frames
                    .iter()
                    .map(|f| Some(mintframe_media::pixel::flip_horizontal(f)))
                    .collect();
            }
        }
        if let Some(c) = self.cells.get_mut(row) {
            *c = frames.into_iter().map(Some).collect();
        }
    }

    fn write(&self) -> Result<(), StudioError> {
        let s = self.size;
        let blank = Rgba {
            width: s,
            height: s,
            data: vec![0; (s * s * 4) as usize],
        };
        let mut frames = Vec::new();
        let mut durations = Vec::new();
        let mut animations = Vec::new();
        let mut order: Vec<AnimationKind> = Vec::new();
        for r in &self.rows {
            if !order.contains(&r.animation) {
                order.push(r.animation);
            }
        }
        // Every frame of a sheet has one size: animations with fewer rows are padded.
        let widest = order
            .iter()
            .map(|k| self.rows.iter().filter(|r| r.animation == *k).count())
            .max()
            .unwrap_or(1);
        let mut columns = 1;
        for k in order {
            let rows: Vec<usize> = (0..self.rows.len())
                .filter(|j| self.rows[*j].animation == k)
                .collect();
            let n = rows.iter().map(|j| self.rows[*j].frames).max().unwrap_or(0);
            let fps = rows.first().map_or(10, |j| self.rows[*j].fps.max(1));
            let from = frames.len();
            for i in 0..n {
                let mut strip: Vec<&Rgba> = rows
                    .iter()
                    .map(|j| {
                        self.cells[*j]
                            .get(i)
                            .and_then(Option::as_ref)
                            .unwrap_or(&blank)
                    })
                    .collect();
                strip.resize(widest, &blank);
                frames.push(side_by_side(&strip));
                durations.push((1000 / fps).max(1));
            }
            columns = columns.max(n as u32);
            if n > 0 {
                animations.push(Animation {
                    name: k.to_string(),
                    from,
                    to: frames.len() - 1,
                    direction: PlayDirection::Forward,
                    looped: true,
                });
            }
        }
        let sheet = mintframe_media::sheet::pack(
            &frames,
            &durations,
            animations,
            &PackOptions {
                layout: SheetLayout::Grid,
                columns: Some(columns),
                padding: 0,
                extrude: 0,
                anchor: Anchor::None,
            },
        )?;
        let png = mintframe_media::encode_png_rgba(&sheet.image)?;
        let json = mintframe_media::export::aseprite_json(&sheet, "live", "live.png", true);
        // The image first: the window reloads when the JSON changes.
        self.replace("live.png", &png)?;
        self.replace("live.json", json.as_bytes())
    }

    fn replace(&self, name: &str, bytes: &[u8]) -> Result<(), StudioError> {
        crate::paths::write_whole(&self.dir.join(name), bytes)
    }

    /// The job is over: the folder goes (a window showing it keeps its last frames).
    pub(crate) fn remove(self) {
        if let Err(e) = std::fs::remove_dir_all(&self.dir) {
            tracing::warn!(dir = %self.dir.display(), error = %e, "cannot remove the live preview");
        }
    }
}

/// Nearest-neighbour resize, for denoising previews (a board's latent preview is an eighth of
/// its size).
pub(crate) fn resize_nearest(img: &Rgba, w: u32, h: u32) -> Rgba {
    let mut data = Vec::with_capacity((w * h * 4) as usize);
    for y in 0..h {
        let sy = (u64::from(y) * u64::from(img.height) / u64::from(h.max(1))) as u32;
        for x in 0..w {
            let sx = (u64::from(x) * u64::from(img.width) / u64::from(w.max(1))) as u32;
            let i = ((sy * img.width + sx) * 4) as usize;
            data.extend_from_slice(&img.data[i..i + 4]);
        }
    }
    Rgba {
        width: w,
        height: h,
        data,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn solid(s: u32, c: [u8; 4]) -> Rgba {
        Rgba {
            width: s,
            height: s,
            data: c
                .iter()
                .copied()
                .cycle()
                .take((s * s * 4) as usize)
                .collect(),
        }
    }

    /// What the window reads back: a tag per animation, a frame per animation frame with every
    /// facing side by side, drawn rows in their columns, the mirror flipped, the rest empty.
    #[test]
    fn the_live_sheet_shows_each_animation_with_its_facings_side_by_side() {
        let tmp = tempfile::tempdir().expect("tmp");
        let json = live_json(tmp.path(), "job-1");
        let row = |animation, mirror_of, frames| LiveRow {
            animation,
            mirror_of,
            fps: 10,
            frames,
        };
        let mut live = Live::new(
            &json,
            8,
            vec![
                row(AnimationKind::Walk, None, 3),
                row(AnimationKind::Walk, None, 3),
                row(AnimationKind::Walk, Some(1), 3),
                row(AnimationKind::Idle, None, 2),
            ],
        )
        .expect("live");
        let empty = mintframe_media::load_sequence(&json, None).expect("first write");
        assert_eq!(empty.frames.len(), 5);
        assert!(empty.frames[0].data.iter().all(|b| *b == 0));
        // Row 1: left half red, so the mirror (row 2) is red on its right half.
        let mut half = solid(8, [0, 0, 255, 255]);
        for y in 0..8 {
            for x in 0..4 {
                let i = ((y * 8 + x) * 4) as usize;
                half.data[i..i + 4].copy_from_slice(&[255, 0, 0, 255]);
            }
        }
        live.set(1, vec![half.clone(), half.clone(), half])
            .expect("set");
        let seq = mintframe_media::load_sequence(&json, None).expect("reload");
        let names: Vec<&str> = seq.tags.iter().map(|t| t.name.as_str()).collect();
        assert_eq!(names, ["walk", "idle"]);
        assert_eq!((seq.frames[0].width, seq.frames[0].height), (24, 8));
        assert_eq!((seq.frames[3].width, seq.frames[3].height), (24, 8));
        let px = |f: &Rgba, x: u32, y: u32| {
            let i = ((y * f.width + x) * 4) as usize;
            [f.data[i], f.data[i + 1], f.data[i + 2], f.data[i + 3]]
        };
        let f = &seq.frames[2];
        assert_eq!(px(f, 1, 1), [0, 0, 0, 0], "row 0 not drawn yet");
        assert_eq!(px(f, 8 + 1, 1), [255, 0, 0, 255], "row 1's left");
        assert_eq!(px(f, 8 + 6, 1), [0, 0, 255, 255], "row 1's right");
        assert_eq!(
            px(f, 16 + 6, 1),
            [255, 0, 0, 255],
            "the mirror's right is row 1's left"
        );
        assert_eq!(px(f, 16 + 1, 1), [0, 0, 255, 255]);
        live.remove();
        assert!(!json.exists());
    }
}
