//! `mintframe models`: the model manager.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use clap::Subcommand;
use indicatif::{ProgressBar, ProgressStyle};
use mintframe_studio::{App, Settings};
use mintframe_types::JobState;

use crate::jobs::submit_and_follow;

#[derive(Debug, Subcommand)]
pub(crate) enum ModelsCmd {
    /// Every model Mintframe knows, whether it is installed, and its licence.
    List {
        #[command(flatten)]
        out: crate::Output,
    },
    /// Download a model from the Hugging Face hub (HF_ENDPOINT for a mirror, HF_TOKEN for gated repos).
    Pull { id: String },
    /// Install a model from a local diffusers folder or .safetensors file, checking hashes.
    Import { id: String, path: PathBuf },
    /// Re-hash an installed model's files.
    Verify { id: String },
    /// Delete an installed model's files.
    Remove { id: String },
}

pub(crate) fn models(settings: &Settings, cmd: ModelsCmd) -> Result<()> {
    let app = App::open(settings.clone())?;
    let manager = app.models();
    let bar = || -> Result<ProgressBar> {
        let bar = ProgressBar::new(0);
        bar.set_style(
            ProgressStyle::with_template(
                "{spinner} {msg:<40} [{bar:30}] {bytes}/{total_bytes} {eta}",
            )
            .context("progress template")?
            .progress_chars("=> "),
        );
        bar.enable_steady_tick(Duration::from_millis(120));
        Ok(bar)
    };
    let ctx_for = |bar: &ProgressBar| {
        let bar = bar.clone();
        mintframe_studio::JobCtx::new(mintframe_studio::CancelToken::new(), move |p| {
            bar.set_message(p.stage.clone());
            bar.set_length(p.total);
            bar.set_position(p.step);
        })
    };
    match cmd {
        ModelsCmd::List { out } => {
            let infos = app.model_infos()?;
            if out.json {
                println!("{}", serde_json::to_string_pretty(&infos)?);
            } else {
                println!(
                    "{:<12} {:<9} {:<5} {:<34} name",
                    "id", "installed", "arch", "licence"
                );
                for m in infos {
                    println!(
                        "{:<12} {:<9} {:<5} {:<34} {}{}",
                        m.id,
                        if m.installed { "yes" } else { "no" },
                        m.arch,
                        m.license,
                        m.name,
                        if m.addon {
                            " — add-on: generate --transparent ID"
                        } else {
                            ""
                        }
                    );
                }
                println!("\nModels live in {}", manager.root().display());
            }
        }
        ModelsCmd::Pull { id } => {
            let m = manager.manifest(&id)?;
            println!(
                "{} — licence: {} ({})",
                m.name, m.license.name, m.license.url
            );
            println!("  {}", m.license.summary);
            // A job like any long task: cancel from another process, resume after a crash.
            let done = submit_and_follow(
                App::open(settings.clone())?,
                false,
                |w| w.submit_pull(&id),
                |_, job| eprintln!("job {}: pull {id}", job.id),
            )?;
            let Some((_, record)) = done else {
                return Ok(());
            };
            if record.state != JobState::Succeeded {
                bail!(
                    "pulling {id} {}: {}",
                    record.state,
                    record.error.as_deref().unwrap_or("no reason recorded")
                );
            }
            let rec = manager
                .record(&id)?
                .with_context(|| format!("{id} was pulled but has no install record"))?;
            println!(
                "installed {} from {} ({} files)",
                rec.id,
                rec.origin,
                rec.files.len()
            );
        }
        ModelsCmd::Import { id, path } => {
            let b = bar()?;
            let rec = manager.import(&id, &path, &ctx_for(&b));
            b.finish_and_clear();
            let rec = rec?;
            let m = manager.manifest(&id)?;
            println!(
                "installed {} from {} ({} files)",
                rec.id,
                rec.origin,
                rec.files.len()
            );
            println!("licence: {} — {}", m.license.label(), m.license.summary);
        }
        ModelsCmd::Verify { id } => {
            let b = bar()?;
            let checks = manager.verify(&id, &ctx_for(&b));
            b.finish_and_clear();
            let checks = checks?;
            let bad: Vec<_> = checks.iter().filter(|c| !c.ok).collect();
            for c in &checks {
                println!(
                    "{} {}{}",
                    if c.ok { "ok  " } else { "BAD " },
                    c.path,
                    c.problem
                        .as_ref()
                        .map(|p| format!(": {p}"))
                        .unwrap_or_default()
                );
            }
            if !bad.is_empty() {
                bail!(
                    "{} file(s) of {id} are damaged; run `mintframe models pull {id}` (or import) again",
                    bad.len()
                );
            }
            println!("{id}: all {} files verified", checks.len());
        }
        ModelsCmd::Remove { id } => {
            let freed = manager.remove(&id)?;
            println!("removed {id} ({freed} bytes freed)");
        }
    }
    Ok(())
}
