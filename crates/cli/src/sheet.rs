//! `mintframe sheet`: pack frames into a sprite sheet asset with its engine exports, bring an
//! Aseprite sheet (JSON + PNG, or `.aseprite`) in as one, and write a sheet's files out.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use mintframe_studio::{App, Settings};
use mintframe_types::{
    Anchor, AnimationSpec, JobSpec, JobState, PlayDirection, SheetFormat, SheetLayout, SheetSpec,
};

use crate::jobs::submit_and_follow;

#[derive(Debug, clap::Subcommand)]
pub(crate) enum SheetCmd {
    /// Pack the frames of assets or files (in order) into one sheet asset with its exports.
    Pack(Box<PackArgs>),
    /// Bring an Aseprite sheet (a JSON beside its PNG, or an .aseprite file) in as a sheet
    /// asset, its tags and durations kept.
    Import(Box<PackArgs>),
    /// Write a sheet asset's PNG and exports into a folder, ready for an engine.
    Export {
        /// The sheet asset's id (or a unique prefix).
        id: String,
        #[arg(long, short = 'o')]
        out: PathBuf,
    },
}

#[derive(Debug, clap::Args)]
pub(crate) struct PackArgs {
    /// Asset ids (or unique prefixes), image or animation files, Aseprite JSON or .aseprite.
    #[arg(required = true)]
    sources: Vec<String>,
    /// The sheet's name (its files are named after it); the first source's by default.
    #[arg(long)]
    name: Option<String>,
    #[arg(long, value_enum, default_value_t = SheetLayout::Grid)]
    layout: SheetLayout,
    /// Grid columns; one animation a row by default.
    #[arg(long)]
    columns: Option<u32>,
    /// Transparent pixels between frames.
    #[arg(long, default_value_t = 0)]
    padding: u32,
    /// Edge pixels repeated around each frame (no bleeding under filtering).
    #[arg(long, default_value_t = 0)]
    extrude: u32,
    /// What keeps the character still between frames.
    #[arg(long, value_enum, default_value_t = Anchor::Feet)]
    anchor: Anchor,
    /// The pivot as X,Y in frame pixels, instead of the anchor's.
    #[arg(long, value_name = "X,Y")]
    pivot: Option<String>,
    /// Split the frames evenly into this many walk directions (4: down, left, right, up).
    #[arg(long, conflicts_with = "animation")]
    directions: Option<usize>,
    /// A named animation: NAME:FROM-TO, optionally :forward|reverse|pingpong and :once.
    #[arg(long, value_name = "NAME:FROM-TO")]
    animation: Vec<String>,
    /// Frame rate where a source has no frame timing.
    #[arg(long, default_value_t = 10)]
    fps: u32,
    /// Exports to write beside the PNG (repeat or comma-separate); by default Aseprite JSON,
    /// .aseprite, TexturePacker, Phaser and Godot (and grid info for a grid).
    #[arg(long = "format", value_enum, value_delimiter = ',')]
    formats: Vec<SheetFormat>,
    /// Also write the sheet's files into this folder.
    #[arg(long, short = 'o')]
    out: Option<PathBuf>,
    #[command(flatten)]
    output: crate::Output,
    #[command(flatten)]
    detach: crate::Detach,
}

/// `NAME:FROM-TO[:direction][:once]`.
fn parse_animation(s: &str) -> Result<AnimationSpec> {
    let mut parts = s.split(':');
    let name = parts.next().unwrap_or_default().trim();
    let range = parts
        .next()
        .with_context(|| format!("animation {s:?}: write NAME:FROM-TO, e.g. walk:0-7"))?;
    let (from, to) = range
        .split_once('-')
        .and_then(|(a, b)| Some((a.trim().parse::<u32>().ok()?, b.trim().parse::<u32>().ok()?)))
        .with_context(|| format!("animation {s:?}: {range:?} is not FROM-TO frame numbers"))?;
    let mut a = AnimationSpec {
        name: name.to_owned(),
        from,
        to,
        direction: PlayDirection::Forward,
        looped: true,
    };
    for p in parts {
        if p == "once" {
            a.looped = false;
        } else {
            a.direction = p.parse().with_context(|| format!("animation {s:?}"))?;
        }
    }
    if name.is_empty() {
        bail!("animation {s:?} has no name");
    }
    Ok(a)
}

fn absolute_sources(sources: &[String]) -> Result<Vec<String>> {
    sources
        .iter()
        .map(|s| {
            let p = Path::new(s);
            if p.exists() {
                Ok(std::path::absolute(p)
                    .with_context(|| format!("cannot resolve {s}"))?
                    .to_string_lossy()
                    .into_owned())
            } else {
                Ok(s.clone())
            }
        })
        .collect()
}

pub(crate) fn spec(a: &PackArgs, frames_hint: Option<usize>) -> Result<SheetSpec> {
    let mut animations = a
        .animation
        .iter()
        .map(|s| parse_animation(s))
        .collect::<Result<Vec<_>>>()?;
    if let Some(n) = a.directions {
        let frames = frames_hint.context("--directions needs the sources' frame count")?;
        animations = mintframe_studio::sheet::direction_animations("walk", n, frames)?;
    }
    let formats = if a.formats.is_empty() {
        let mut f = vec![
            SheetFormat::AsepriteJson,
            SheetFormat::Aseprite,
            SheetFormat::TexturePacker,
            SheetFormat::Phaser,
            SheetFormat::Godot,
        ];
        if a.layout == SheetLayout::Grid {
            f.push(SheetFormat::GridInfo);
        }
        f
    } else {
        a.formats.clone()
    };
    let pivot = a
        .pivot
        .as_deref()
        .map(|p| {
            p.split_once(',')
                .and_then(|(x, y)| Some([x.trim().parse().ok()?, y.trim().parse().ok()?]))
                .with_context(|| format!("--pivot {p:?}: write X,Y in pixels, e.g. 16,31"))
        })
        .transpose()?;
    Ok(SheetSpec {
        sources: absolute_sources(&a.sources)?,
        pivot,
        name: a.name.clone(),
        layout: a.layout,
        columns: a.columns,
        padding: a.padding,
        extrude: a.extrude,
        anchor: a.anchor,
        animations,
        fps: a.fps,
        formats,
    })
}

pub(crate) fn sheet(settings: &Settings, cmd: SheetCmd) -> Result<()> {
    match cmd {
        SheetCmd::Export { id, out } => {
            let app = App::open(settings.clone())?;
            for p in app.export_asset(&id, &out)? {
                println!("{}", p.display());
            }
            Ok(())
        }
        SheetCmd::Pack(a) | SheetCmd::Import(a) => pack(settings, *a),
    }
}

fn pack(settings: &Settings, a: PackArgs) -> Result<()> {
    let app = App::open(settings.clone())?;
    let frames_hint = if a.directions.is_some() {
        let sources = absolute_sources(&a.sources)?;
        Some(app.count_frames(&sources)?)
    } else {
        None
    };
    let spec = spec(&a, frames_hint)?;
    let done = submit_and_follow(
        app,
        a.detach.detach,
        |w| w.submit(JobSpec::Sheet(Box::new(spec))),
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
    let mut files = Vec::new();
    for id in &record.outputs {
        if let Some(dir) = &a.out {
            written.extend(app.export_asset(&id.0, dir)?);
        }
        let detail = app.asset(&id.0)?;
        files.extend(
            detail.files.iter().map(
                |f| serde_json::json!({"role": f.role, "name": f.file_name, "sha256": f.sha256}),
            ),
        );
    }
    if a.output.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({
                "job": record.id,
                "assets": record.outputs,
                "files": files,
                "written": written,
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

    #[test]
    fn animations_parse_with_direction_and_once_and_bad_ones_say_why() {
        let a = parse_animation("walk:0-7:pingpong:once").expect("parse");
        assert_eq!((a.from, a.to, a.looped), (0, 7, false));
        assert_eq!(a.direction, PlayDirection::PingPong);
        for bad in ["walk", "walk:a-b", ":0-3", "walk:0-3:sideways"] {
            assert!(parse_animation(bad).is_err(), "{bad}");
        }
    }
}
