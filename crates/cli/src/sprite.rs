//! `mintframe pixelate` and `mintframe cutout`: post-processing jobs that turn generated (or
//! imported) images into game-ready sprites, each output a new library asset.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use mintframe_studio::{App, Settings};
use mintframe_types::{Dither, Downscale, JobSpec, JobState, PostStep};

use crate::jobs::submit_and_follow;

/// What every post-processing command shares: the sources and where else to write.
#[derive(Debug, clap::Args)]
pub(crate) struct Sources {
    /// Asset ids (or unique prefixes) or image files; a palette is shared by all of them.
    #[arg(required = true)]
    pub(crate) sources: Vec<String>,
    /// Also copy the outputs into this folder.
    #[arg(long, short = 'o')]
    pub(crate) out: Option<PathBuf>,
    #[command(flatten)]
    pub(crate) output: crate::Output,
    #[command(flatten)]
    pub(crate) detach: crate::Detach,
}

#[derive(Debug, clap::Args)]
pub(crate) struct PixelateArgs {
    #[command(flatten)]
    pub(crate) src: Sources,
    /// The pseudo-pixel size to undo; found from the image if left out. 1 keeps the size.
    #[arg(long)]
    pub(crate) cell: Option<u32>,
    /// How a cell becomes a pixel.
    #[arg(long, value_enum, default_value_t = Downscale::Majority)]
    pub(crate) downscale: Downscale,
    /// A built-in palette (pico-8, sweetie-16, endesga-32, db32, gameboy, nes) or a palette file
    /// (.gpl, .pal, .hex, a palette PNG).
    #[arg(long, conflicts_with = "colors")]
    pub(crate) palette: Option<String>,
    /// Or: the best N colours for all the sources together (1–256).
    #[arg(long)]
    pub(crate) colors: Option<u32>,
    #[arg(long, value_enum, default_value_t = Dither::None)]
    pub(crate) dither: Dither,
    /// A 1-px outline in this colour (#rrggbb or #rrggbbaa).
    #[arg(long, value_name = "COLOR")]
    pub(crate) outline: Option<String>,
    /// Draw the outline on the shape's edge pixels instead of around it.
    #[arg(long, requires = "outline")]
    pub(crate) inner: bool,
    /// Keep lone pixels unlike all their neighbours.
    #[arg(long)]
    pub(crate) keep_orphans: bool,
}

/// How a cut-out finds the background.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum CutoutMethod {
    /// A flat key colour (generate on a green screen): exact, soft edges, despill.
    Key,
    /// U²-Net-p, a segmentation network: any background.
    U2netp,
}

#[derive(Debug, clap::Args)]
pub(crate) struct CutoutArgs {
    #[command(flatten)]
    pub(crate) src: Sources,
    /// Keying a flat colour, or matting with a network.
    #[arg(long, value_enum, default_value_t = CutoutMethod::Key)]
    pub(crate) method: CutoutMethod,
    /// The flat background colour to remove (a green, blue or red screen).
    #[arg(long, default_value = "#00ff00")]
    pub(crate) key: String,
    /// Share of the key's lean below which a pixel is opaque (0–1).
    #[arg(long, default_value_t = 0.1)]
    pub(crate) tolerance: f32,
    /// Width of the soft edge above the tolerance (0–1).
    #[arg(long, default_value_t = 0.5)]
    pub(crate) softness: f32,
    /// Alpha to 0 or 255 at this threshold (pixel art).
    #[arg(long, value_name = "THRESHOLD")]
    pub(crate) binary_alpha: Option<u8>,
    /// Crop to the sprite plus this many pixels.
    #[arg(long, value_name = "PADDING")]
    pub(crate) trim: Option<u32>,
}

/// `mintframe sprite`: generate → cut out → pixel art, each output a library asset.
#[derive(Debug, clap::Args)]
pub(crate) struct SpriteArgs {
    /// What to draw.
    pub(crate) prompt: String,
    #[arg(long, short = 'm', default_value = mintframe_studio::DEFAULT_MODEL)]
    pub(crate) model: String,
    /// Random seed; the same seed gives the same sprite. Random if left out or -1.
    #[arg(long, short = 's', allow_negative_numbers = true, value_parser = |s: &str| mintframe_types::ranges::parse_seed(s).map(crate::generate::Seed))]
    pub(crate) seed: Option<crate::generate::Seed>,
    #[arg(long)]
    pub(crate) steps: Option<u32>,
    /// The generation's size, WIDTHxHEIGHT (default: the model's); each side a multiple of
    /// the sprite's.
    #[arg(long)]
    pub(crate) size: Option<String>,
    /// The sprite's side in pixels: the generation is undone to this grid.
    #[arg(long, default_value_t = 32)]
    pub(crate) pixels: u32,
    #[arg(long, short = 'b', default_value_t = 1)]
    pub(crate) batch: u32,
    /// How the background goes: a network (any background), a key colour, or not at all.
    #[arg(long, value_enum, default_value_t = SpriteCutout::U2netp)]
    pub(crate) cutout: SpriteCutout,
    /// The key colour with `--cutout key` (the prompt asks for it as the background).
    #[arg(long, default_value = "#00ff00")]
    pub(crate) key: String,
    /// A built-in palette or a palette file; one palette for the whole batch.
    #[arg(long, default_value = "pico-8", conflicts_with = "colors")]
    pub(crate) palette: String,
    /// Or: the best N colours for the batch (1–256).
    #[arg(long)]
    pub(crate) colors: Option<u32>,
    #[arg(long, value_enum, default_value_t = Dither::None)]
    pub(crate) dither: Dither,
    /// A 1-px outline in this colour (#rrggbb or #rrggbbaa).
    #[arg(long, value_name = "COLOR")]
    pub(crate) outline: Option<String>,
    /// Also copy the sprites into this folder.
    #[arg(long, short = 'o')]
    pub(crate) out: Option<PathBuf>,
    #[command(flatten)]
    pub(crate) output: crate::Output,
}

/// How `sprite` removes the background.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum SpriteCutout {
    U2netp,
    Key,
    None,
}

/// The post-processing of a sprite whose generation is `width` wide.
pub(crate) fn sprite_steps(a: &SpriteArgs, width: u32, height: u32) -> Result<Vec<PostStep>> {
    let p = a.pixels;
    if p == 0 || !width.is_multiple_of(p) || !height.is_multiple_of(p) || width / p != height / p {
        let side = p * (width / p.max(1)).max(1);
        bail!(
            "a {width}×{height} generation does not undo to a {p}×{p} sprite: give --size as the \
             same multiple of {p} on both sides (e.g. {side}x{side})"
        );
    }
    let mut steps = match a.cutout {
        SpriteCutout::U2netp => vec![PostStep::Matte {
            model: mintframe_types::MatteModel::U2netp,
            sha256: String::new(),
        }],
        SpriteCutout::Key => {
            let [r, g, b, _] = color4(&a.key)?;
            vec![PostStep::Key {
                color: [r, g, b],
                tolerance: 0.1,
                softness: 0.5,
            }]
        }
        SpriteCutout::None => Vec::new(),
    };
    steps.push(PostStep::BinaryAlpha { threshold: 128 });
    let cell = width / a.pixels;
    if cell > 1 {
        steps.push(PostStep::Pixelate {
            cell: Some(cell),
            method: Downscale::Majority,
        });
    }
    let (palette, colors) = match a.colors {
        Some(n) if (1..=256).contains(&n) => (Vec::new(), n),
        Some(n) => bail!("--colors {n}: a palette has 1 to 256 colours"),
        None => (palette(&a.palette)?, 0),
    };
    steps.push(PostStep::Quantize {
        palette,
        colors,
        dither: a.dither,
    });
    steps.push(PostStep::CleanOrphans);
    if let Some(c) = &a.outline {
        steps.push(PostStep::Outline {
            color: color4(c)?,
            inner: false,
        });
    }
    steps.push(PostStep::AlphaBleed);
    Ok(steps)
}

/// Generates, then post-processes every image of the batch in one job (one palette).
pub(crate) fn sprite(settings: &Settings, a: SpriteArgs) -> Result<()> {
    let size = a
        .size
        .as_deref()
        .map(|s| mintframe_studio::paths::parse_size(s, "--size"))
        .transpose()?;
    let prompt = if a.cutout == SpriteCutout::Key {
        format!("{}, on a flat {} background", a.prompt, a.key)
    } else {
        a.prompt.clone()
    };
    let spec = mintframe_types::GenerateSpec {
        model: mintframe_studio::paths::model_ref(&a.model)?,
        prompt,
        seed: a.seed.and_then(|s| s.0),
        steps: a.steps,
        width: size.map(|s| s[0]),
        height: size.map(|s| s[1]),
        batch: Some(a.batch),
        ..Default::default()
    };
    let done = submit_and_follow(
        App::open(settings.clone())?,
        false,
        |w| w.submit_generate(spec),
        |_, _| {},
    )?;
    let Some((_, generated)) = done else {
        return Ok(());
    };
    if generated.state != JobState::Succeeded {
        bail!(
            "generation {} {}: {}",
            generated.id,
            generated.state,
            generated.error.as_deref().unwrap_or("no reason recorded")
        );
    }
    let (w, h) = match &generated.spec {
        JobSpec::Generate(s) => (s.width.unwrap_or(0), s.height.unwrap_or(0)),
        _ => (0, 0),
    };
    let steps = sprite_steps(&a, w, h)?;
    process(
        settings,
        Sources {
            sources: generated.outputs.iter().map(|id| id.0.clone()).collect(),
            out: a.out,
            output: a.output,
            detach: crate::Detach { detach: false },
        },
        steps,
    )
}

fn color4(s: &str) -> Result<[u8; 4]> {
    mintframe_studio::process::parse_color(s)
        .with_context(|| format!("colour {s:?}: use #rrggbb or #rrggbbaa"))
}

fn palette(spec: &str) -> Result<Vec<[u8; 3]>> {
    Ok(mintframe_studio::process::palette_colors(spec)?)
}

pub(crate) fn pixelate_steps(a: &PixelateArgs) -> Result<Vec<PostStep>> {
    let mut steps = vec![PostStep::BinaryAlpha { threshold: 128 }];
    if a.cell != Some(1) {
        steps.push(PostStep::Pixelate {
            cell: a.cell,
            method: a.downscale,
        });
    }
    let (palette, colors) = match (&a.palette, a.colors) {
        (Some(p), _) => (palette(p)?, 0),
        (None, Some(n)) if (1..=256).contains(&n) => (Vec::new(), n),
        (None, Some(n)) => bail!("--colors {n}: a palette has 1 to 256 colours"),
        (None, None) => (palette("pico-8")?, 0),
    };
    steps.push(PostStep::Quantize {
        palette,
        colors,
        dither: a.dither,
    });
    if !a.keep_orphans {
        steps.push(PostStep::CleanOrphans);
    }
    if let Some(c) = &a.outline {
        steps.push(PostStep::Outline {
            color: color4(c)?,
            inner: a.inner,
        });
    }
    Ok(steps)
}

pub(crate) fn cutout_steps(a: &CutoutArgs) -> Result<Vec<PostStep>> {
    let mut steps = match a.method {
        CutoutMethod::U2netp => vec![PostStep::Matte {
            model: mintframe_types::MatteModel::U2netp,
            sha256: String::new(),
        }],
        CutoutMethod::Key => {
            let [r, g, b, _] = color4(&a.key)?;
            for (name, v) in [("--tolerance", a.tolerance), ("--softness", a.softness)] {
                if !(v.is_finite() && (0.0..=1.0).contains(&v)) {
                    bail!("{name} {v} is out of range: it must be 0 ≤ {name} ≤ 1");
                }
            }
            vec![PostStep::Key {
                color: [r, g, b],
                tolerance: a.tolerance,
                softness: a.softness,
            }]
        }
    };
    if let Some(t) = a.binary_alpha {
        steps.push(PostStep::BinaryAlpha { threshold: t });
    }
    steps.push(PostStep::AlphaBleed);
    if let Some(p) = a.trim {
        steps.push(PostStep::Trim { padding: p });
    }
    Ok(steps)
}

/// Submits a `Process` job for `src` and reports its outputs.
pub(crate) fn process(settings: &Settings, src: Sources, steps: Vec<PostStep>) -> Result<()> {
    let mut sources = Vec::new();
    for s in &src.sources {
        let p = Path::new(s);
        // A path on disk is made absolute (the job may run from elsewhere); anything else is an
        // asset id, resolved when the job runs.
        if p.exists() {
            sources.push(
                std::path::absolute(p)
                    .with_context(|| format!("cannot resolve {s}"))?
                    .to_string_lossy()
                    .into_owned(),
            );
        } else {
            sources.push(s.clone());
        }
    }
    let done = submit_and_follow(
        App::open(settings.clone())?,
        src.detach.detach,
        |w| {
            w.submit(JobSpec::Process {
                sources,
                steps,
                kind: None,
            })
        },
        |_, _| {},
    )?;
    let Some((app, record)) = done else {
        return Ok(());
    };
    if record.state != JobState::Succeeded {
        bail!(
            "job {} {}: {}",
            record.id,
            record.state,
            record.error.as_deref().unwrap_or("no reason recorded")
        );
    }
    let mut written = Vec::new();
    for id in &record.outputs {
        if let Some(dir) = &src.out {
            written.extend(app.export_asset(&id.0, dir)?);
        }
    }
    if src.output.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({
                "job": record.id,
                "assets": record.outputs,
                "files": written,
            }))?
        );
    } else {
        for id in &record.outputs {
            println!("made {id}");
        }
        for p in written {
            println!("{}", p.display());
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Debug, Parser)]
    struct P {
        #[command(flatten)]
        a: PixelateArgs,
    }

    #[test]
    fn pixelate_defaults_to_pico_8_with_a_found_grid_and_refuses_a_bad_palette() {
        let p = P::try_parse_from(["x", "abcd"]).expect("parse");
        let steps = pixelate_steps(&p.a).expect("steps");
        assert!(matches!(steps[1], PostStep::Pixelate { cell: None, .. }));
        assert!(matches!(&steps[2], PostStep::Quantize { palette, .. } if palette.len() == 16));
        let p = P::try_parse_from(["x", "abcd", "--palette", "no-such"]).expect("parse");
        let e = pixelate_steps(&p.a).expect_err("bad").to_string();
        assert!(e.contains("pico-8") && e.contains("nor a file"), "{e}");
        let p = P::try_parse_from(["x", "abcd", "--colors", "300"]).expect("parse");
        assert!(pixelate_steps(&p.a).is_err());
        assert!(P::try_parse_from(["x", "abcd", "--dither", "wobbly"]).is_err());
        assert!(P::try_parse_from(["x", "abcd", "--palette", "db32", "--colors", "8"]).is_err());
    }
}
