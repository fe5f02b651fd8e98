//! `mintframe shots FILE.toml`: an NPC cinematic from a shot list — every shot drawn and moved
//! by its camera, joined by its transition, its line burned in and written as WebVTT, its sound
//! mixed in — as one MP4 in the library.

use std::path::PathBuf;

use anyhow::{Result, bail};
use mintframe_studio::{App, Settings};
use mintframe_types::{JobSpec, JobState};

use crate::jobs::submit_and_follow;

#[derive(Debug, clap::Args)]
pub(crate) struct ShotsArgs {
    /// The shot list (TOML: shared settings, then a [[shot]] table per shot; see
    /// assets/shots/blacksmith.toml).
    list: PathBuf,
    /// The model (overrides the list's).
    #[arg(long, short = 'm')]
    model: Option<String>,
    /// Also write the cinematic's files here.
    #[arg(long, short = 'o')]
    out: Option<PathBuf>,
    #[command(flatten)]
    output: crate::Output,
    #[command(flatten)]
    detach: crate::Detach,
}

pub(crate) fn shots(settings: &Settings, a: ShotsArgs) -> Result<()> {
    let mut list = mintframe_studio::shots::read_shot_list(&a.list)?;
    if let Some(m) = &a.model {
        list.model = m.clone();
    }
    if list.name.is_none() {
        list.name = a.list.file_stem().map(|s| s.to_string_lossy().into_owned());
    }
    let app = App::open(settings.clone())?;
    let done = submit_and_follow(
        app,
        a.detach.detach,
        |w| w.submit_shots(list),
        |_, job| {
            if let JobSpec::Shots(l) = &job.spec {
                let t = mintframe_studio::shots::timeline(l);
                eprintln!(
                    "job {}: {} · {} shots · {} frames at {} fps ({:.1} s) · {}×{}",
                    job.id,
                    l.model,
                    l.shots.len(),
                    t.frames,
                    l.fps,
                    t.frames as f64 / f64::from(l.fps.max(1)),
                    l.width.unwrap_or(0),
                    l.height.unwrap_or(0),
                );
            }
        },
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
    if let Some(dir) = &a.out {
        for id in &record.outputs {
            written.extend(app.export_asset(&id.0, dir)?);
        }
    }
    if a.output.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({
                "job": record.id,
                "assets": record.outputs,
                "written": written,
            }))?
        );
    } else {
        for id in &record.outputs {
            println!("made {id}");
        }
        for p in written {
            println!("wrote {}", p.display());
        }
    }
    Ok(())
}
