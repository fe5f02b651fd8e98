//! `mintframe tile` (a seamless terrain tile and its 3×3 check image) and `mintframe tileset`
//! (two terrains to the 16 corner transitions with Godot and Tiled exports).

use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use mintframe_studio::{App, Settings};
use mintframe_types::{
    GenerateSpec, JobSpec, JobState, PreviewSpec, SeamPaint, SeamlessAxes, TilesetSpec,
};

use crate::jobs::submit_and_follow;

#[derive(Debug, clap::Args)]
pub(crate) struct TileArgs {
    /// The terrain: grass, cobblestones, lava…
    prompt: String,
    #[arg(long, short = 'm', default_value = "tiny-sd")]
    model: String,
    #[arg(long, short = 's', allow_negative_numbers = true, value_parser = |s: &str| mintframe_types::ranges::parse_seed(s).map(crate::generate::Seed))]
    seed: Option<crate::generate::Seed>,
    #[arg(long)]
    steps: Option<u32>,
    /// WIDTHxHEIGHT (default: the model's).
    #[arg(long)]
    size: Option<String>,
    /// Which edges meet: both axes, or x (a strip that repeats sideways) or y.
    #[arg(long, value_enum, default_value_t = SeamlessAxes::Both)]
    wrap: SeamlessAxes,
    /// Write the tile and its 3×3 check image here.
    #[arg(long, short = 'o')]
    out: Option<PathBuf>,
    #[command(flatten)]
    output: crate::Output,
}

#[derive(Debug, clap::Args)]
pub(crate) struct TilesetArgs {
    /// The first terrain: a tile asset id (or prefix) or a square PNG.
    a: String,
    /// The second terrain, the same size.
    b: String,
    /// The tileset's name (its files are named after it).
    #[arg(long)]
    name: Option<String>,
    /// The terrains' names for the engines, as A,B.
    #[arg(long, value_delimiter = ',')]
    terrains: Option<Vec<String>>,
    /// Repaint each seam with this model (inpainting), so the terrains blend.
    #[arg(long)]
    inpaint: Option<String>,
    /// What the seams show when inpainted.
    #[arg(
        long,
        default_value = "a natural transition between two terrains, top-down game tile"
    )]
    prompt: String,
    #[arg(long, default_value_t = 8)]
    steps: u32,
    #[arg(long, default_value_t = 0)]
    seed: u64,
    #[arg(long, default_value_t = 0.8)]
    strength: f32,
    #[arg(long, short = 'o')]
    out: Option<PathBuf>,
    #[command(flatten)]
    output: crate::Output,
    #[command(flatten)]
    detach: crate::Detach,
}

fn absolute(s: &str) -> Result<String> {
    let p = std::path::Path::new(s);
    Ok(if p.exists() {
        std::path::absolute(p)
            .with_context(|| format!("cannot resolve {s}"))?
            .to_string_lossy()
            .into_owned()
    } else {
        s.to_owned()
    })
}

fn finish(
    app: &App,
    record: &mintframe_types::JobRecord,
    out: &Option<PathBuf>,
    json: bool,
) -> Result<Vec<PathBuf>> {
    if record.state != JobState::Succeeded {
        bail!(
            "job {} {}: {}",
            record.id,
            record.state,
            record.error.as_deref().unwrap_or("no reason recorded")
        );
    }
    let mut written = Vec::new();
    if let Some(dir) = out {
        for id in &record.outputs {
            written.extend(app.export_asset(&id.0, dir)?);
        }
    }
    if !json {
        for id in &record.outputs {
            println!("made {id}");
        }
    }
    Ok(written)
}

pub(crate) fn tile(settings: &Settings, a: TileArgs) -> Result<()> {
    let size = a
        .size
        .as_deref()
        .map(|s| mintframe_studio::paths::parse_size(s, "--size"))
        .transpose()?;
    let spec = GenerateSpec {
        model: mintframe_studio::paths::model_ref(&a.model)?,
        prompt: a.prompt.clone(),
        seed: a.seed.and_then(|s| s.0),
        steps: a.steps,
        width: size.map(|s| s[0]),
        height: size.map(|s| s[1]),
        seamless: true,
        wrap: Some(a.wrap),
        ..Default::default()
    };
    let done = submit_and_follow(
        App::open(settings.clone())?,
        false,
        |w| w.submit_generate(spec),
        |_, _| {},
    )?;
    let Some((app, record)) = done else {
        return Ok(());
    };
    let mut written = finish(&app, &record, &a.out, a.output.json)?;
    if let Some(dir) = &a.out {
        // The check image: the tile repeated 3×3, where a seam would show.
        for id in &record.outputs {
            let png = app.asset_preview_png(
                &id.0,
                &PreviewSpec {
                    tile: true,
                    ..PreviewSpec::default()
                },
            )?;
            let p = dir.join(format!("{}-3x3.png", &id.0[..8.min(id.0.len())]));
            std::fs::write(&p, png).with_context(|| format!("cannot write {}", p.display()))?;
            written.push(p);
        }
    }
    if a.output.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({
                "job": record.id, "assets": record.outputs, "files": written,
            }))?
        );
    } else {
        for p in written {
            println!("{}", p.display());
        }
    }
    Ok(())
}

pub(crate) fn tileset(settings: &Settings, a: TilesetArgs) -> Result<()> {
    let names = match &a.terrains {
        Some(v) if v.len() == 2 => Some([v[0].clone(), v[1].clone()]),
        Some(_) => bail!("--terrains takes two names: A,B"),
        None => None,
    };
    if !(a.strength > 0.0 && a.strength <= 1.0) {
        bail!("--strength {} is out of range: 0 < s ≤ 1", a.strength);
    }
    let spec = TilesetSpec {
        terrains: [absolute(&a.a)?, absolute(&a.b)?],
        names,
        name: a.name.clone(),
        seam: a
            .inpaint
            .as_deref()
            .map(|m| -> Result<SeamPaint> {
                Ok(SeamPaint {
                    model: mintframe_studio::paths::model_ref(m)?,
                    prompt: a.prompt.clone(),
                    steps: a.steps,
                    seed: a.seed,
                    strength: a.strength,
                })
            })
            .transpose()?,
    };
    let done = submit_and_follow(
        App::open(settings.clone())?,
        a.detach.detach,
        |w| w.submit(JobSpec::Tileset(Box::new(spec))),
        |_, _| {},
    )?;
    let Some((app, record)) = done else {
        return Ok(());
    };
    let written = finish(&app, &record, &a.out, a.output.json)?;
    if a.output.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({
                "job": record.id, "assets": record.outputs, "files": written,
            }))?
        );
    } else {
        for p in written {
            println!("{}", p.display());
        }
    }
    Ok(())
}
