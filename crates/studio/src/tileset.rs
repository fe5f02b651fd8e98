//! Tileset jobs (`mintframe tileset`): two seamless terrains become the 16 corner transitions,
//! their seams optionally repainted by a diffusion model (pasted back inside the seam only, so
//! the tile edges, and with them every join, stay exact), stored as one Tile asset with a Godot
//! `TileSet`, a Tiled tileset and a sample map beside the atlas.

use std::io::Cursor;
use std::path::Path;

use mintframe_jobs::JobCtx;
use mintframe_library::{NewAsset, NewFile, sanitize_file_name};
use mintframe_media::Rgba;
use mintframe_media::tileset::{
    CornerTile, Terrains, atlas, corner_tiles, godot_tileset, sample_cells, sample_corners,
    tiled_tmj, tiled_tmx, tiled_tsx,
};
use mintframe_types::{AssetKind, GenerateSpec, JobRecord, TilesetSpec};

use crate::paths::plain_name as plain;
use crate::{App, StudioError};

/// The mean colour of a terrain, for the engines' terrain swatches.
fn mean_rgb(img: &Rgba) -> [u8; 3] {
    let mut sum = [0u64; 3];
    for p in img.data.chunks_exact(4) {
        for k in 0..3 {
            sum[k] += u64::from(p[k]);
        }
    }
    let n = (img.data.len() / 4).max(1) as u64;
    sum.map(|v| (v / n) as u8)
}

impl App {
    fn terrain(&self, s: &str) -> Result<(Rgba, String), StudioError> {
        let path = Path::new(s);
        if path.is_absolute() && path.exists() {
            let name = path
                .file_stem()
                .and_then(|n| n.to_str())
                .unwrap_or("terrain")
                .to_owned();
            return Ok((mintframe_media::read_png_rgba(path)?, name));
        }
        let detail = self.healthy_asset(s)?;
        let seq = self.asset_sequence(&detail.summary.id.0, None)?;
        let first = seq
            .frames
            .into_iter()
            .next()
            .ok_or_else(|| StudioError::Settings(format!("terrain {s} has no image")))?;
        Ok((first, detail.summary.name))
    }

    pub(crate) fn run_tileset(
        &self,
        job: &JobRecord,
        spec: &TilesetSpec,
        ctx: &JobCtx,
    ) -> Result<(), StudioError> {
        if !job.outputs.is_empty() {
            return Ok(());
        }
        ctx.progress("load", 0, 3);
        let (a, a_name) = self.terrain(&spec.terrains[0])?;
        let (b, b_name) = self.terrain(&spec.terrains[1])?;
        let names = spec.names.clone().unwrap_or([a_name.clone(), b_name]);
        for n in &names {
            plain("terrain name", n)?;
        }
        let name = spec
            .name
            .clone()
            .unwrap_or_else(|| format!("{a_name}-tileset"));
        plain("tileset name", &name)?;
        let mut tiles = corner_tiles(&a, &b, 0.14, 2.max(a.width / 16))?;
        if let Some(seam) = &spec.seam {
            self.paint_seams(&mut tiles, seam, ctx)?;
        }
        ctx.check().map_err(|_| StudioError::Cancelled)?;
        ctx.progress("export", 2, 3);
        let tile = a.width;
        let stem = sanitize_file_name(&name);
        let image = format!("{stem}.png");
        let tsx = format!("{stem}.tsx");
        let terrains = Terrains {
            names,
            colors: [mean_rgb(&a), mean_rgb(&b)],
        };
        let cells = sample_cells(&sample_corners(8, 8));
        let meta = serde_json::json!({
            "tile_size": tile,
            "columns": 4,
            "terrains": terrains.names,
            // Corners top left, top right, bottom left, bottom right: 0 the first terrain.
            "tiles": tiles.iter().enumerate().map(|(i, t)| serde_json::json!({
                "index": i, "x": (i % 4) as u32 * tile, "y": (i / 4) as u32 * tile,
                "corners": t.corners,
            })).collect::<Vec<_>>(),
            "seams_painted": spec.seam.is_some(),
        });
        let files: Vec<(&str, String, &str, Vec<u8>)> = vec![
            (
                "main",
                image.clone(),
                "image/png",
                mintframe_media::encode_png_rgba(&atlas(&tiles))?,
            ),
            (
                "godot-tileset",
                format!("{stem}.tres"),
                "text/plain",
                godot_tileset(tile, &image, &terrains).into_bytes(),
            ),
            (
                "tiled-tileset",
                tsx.clone(),
                "application/xml",
                tiled_tsx(&stem, tile, &image, &terrains).into_bytes(),
            ),
            (
                "tiled-map",
                format!("{stem}.tmj"),
                "application/json",
                tiled_tmj(&tsx, tile, &cells).into_bytes(),
            ),
            (
                "tiled-map-xml",
                format!("{stem}.tmx"),
                "application/xml",
                tiled_tmx(&tsx, tile, &cells).into_bytes(),
            ),
            (
                "corners",
                format!("{stem}.corners.json"),
                "application/json",
                serde_json::to_vec_pretty(&meta)
                    .map_err(|e| StudioError::Task(format!("tileset JSON: {e}")))?,
            ),
        ];
        let mut new_files = Vec::with_capacity(files.len());
        for (role, file_name, mime, bytes) in files {
            let stored = self
                .library
                .store(&mut Cursor::new(&bytes), bytes.len() as u64, ctx)?;
            new_files.push(NewFile {
                role: role.into(),
                file_name,
                mime: mime.into(),
                stored,
            });
        }
        self.library.add_asset(NewAsset {
            kind: AssetKind::Tile,
            name,
            recipe: None,
            job: Some(job.id.clone()),
            files: new_files,
        })?;
        ctx.progress("export", 3, 3);
        Ok(())
    }

    /// Inpaints each transition's seam and pastes the result back inside the seam only.
    fn paint_seams(
        &self,
        tiles: &mut [CornerTile],
        seam: &mintframe_types::SeamPaint,
        ctx: &JobCtx,
    ) -> Result<(), StudioError> {
        let size = tiles.first().map_or(0, |t| t.image.width);
        let spec = crate::generate::complete_spec(
            self.models(),
            GenerateSpec {
                model: seam.model.clone(),
                prompt: seam.prompt.clone(),
                seed: Some(seam.seed),
                steps: Some(seam.steps),
                strength: Some(seam.strength),
                width: Some(size),
                height: Some(size),
                ..Default::default()
            },
        )?;
        let which: Vec<usize> = (0..tiles.len())
            .filter(|&i| tiles[i].seam.iter().any(|m| *m > 0))
            .collect();
        let items: Vec<_> = which
            .iter()
            .map(|&i| {
                let t = &tiles[i];
                (
                    mintframe_diffusion::Rgb {
                        width: t.image.width,
                        height: t.image.height,
                        data: t
                            .image
                            .data
                            .chunks_exact(4)
                            .flat_map(|p| [p[0], p[1], p[2]])
                            .collect(),
                    },
                    mintframe_diffusion::Gray {
                        width: t.image.width,
                        height: t.image.height,
                        data: t.seam.clone(),
                    },
                )
            })
            .collect();
        let generator = crate::generate::Generator {
            library: &self.library,
            manager: self.jobs.models(),
            cache: self.jobs.cache(),
        };
        let painted = generator
            .inpaint_in_memory(&spec, &items, ctx)
            .map_err(|e| match e {
                StudioError::Diffusion(mintframe_diffusion::Error::Cancelled(_)) => {
                    StudioError::Cancelled
                }
                e => e,
            })?;
        for (&i, img) in which.iter().zip(&painted) {
            let t = &mut tiles[i];
            for (k, m) in t.seam.iter().enumerate() {
                if *m > 0 {
                    t.image.data[k * 4..k * 4 + 3].copy_from_slice(&img.data[k * 3..k * 3 + 3]);
                }
            }
        }
        Ok(())
    }
}
