//! `mintframe library`: the asset library.

use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use clap::Subcommand;
use mintframe_studio::{App, Settings};
use mintframe_types::{AssetKind, JobSpec};

use crate::jobs::{report_job, submit_and_follow, when};

#[derive(Debug, Subcommand)]
pub(crate) enum LibraryCmd {
    /// List assets, newest first.
    List {
        #[command(flatten)]
        out: crate::Output,
    },
    /// Show one asset's files and recipe (id or a unique prefix of 4+ characters).
    Show {
        id: String,
        #[command(flatten)]
        out: crate::Output,
    },
    /// Copy files into the library, one asset each (runs as a job you can cancel).
    Import {
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// image, sprite_sheet, tile, animation, clip or other; guessed from the extension if left out.
        #[arg(long)]
        kind: Option<String>,
    },
    /// Copy an asset's files (and its recipe) into a folder.
    Export { id: String, dest: PathBuf },
    /// Remove an asset; its files go too unless another asset shares them.
    Remove { id: String },
    /// Check the database and every stored file.
    Check {
        /// Re-hash every file and decode every asset, not only compare sizes.
        #[arg(long)]
        deep: bool,
        /// Rebuild what is broken. Keeps every stored file; a damaged database is moved aside.
        #[arg(long)]
        repair: bool,
    },
}

pub(crate) fn library(settings: &Settings, cmd: LibraryCmd) -> Result<()> {
    // Opened per command: `check` must work when the database is too damaged to open.
    let open = || App::open(settings.clone());
    match cmd {
        LibraryCmd::Check { deep, repair } => check(settings, deep, repair)?,
        LibraryCmd::List { out } => {
            let assets = open()?.list_assets()?;
            if out.json {
                println!("{}", serde_json::to_string_pretty(&assets)?);
            } else if assets.is_empty() {
                println!(
                    "The library is empty. Add files with `mintframe library import FILE...`."
                );
            } else {
                println!(
                    "{:<36}  {:<12}  {:>10}  {:<20}  name",
                    "id", "kind", "bytes", "created"
                );
                for a in assets {
                    println!(
                        "{:<36}  {:<12}  {:>10}  {:<20}  {}",
                        a.id,
                        a.kind,
                        a.size_bytes,
                        when(a.created_at_ms),
                        a.name
                    );
                }
            }
        }
        LibraryCmd::Show { id, out } => {
            let a = open()?.asset(&id)?;
            if out.json {
                println!("{}", serde_json::to_string_pretty(&a)?);
            } else {
                let s = &a.summary;
                println!("{}  {}  {}", s.id, s.kind, s.name);
                println!("created  {}", when(s.created_at_ms));
                for f in &a.files {
                    println!(
                        "file     {:<8} {} ({} bytes, {}) sha256 {}",
                        f.role, f.file_name, f.size_bytes, f.mime, f.sha256
                    );
                }
                match &a.recipe {
                    Some(r) => println!("recipe   {}", serde_json::to_string(r)?),
                    None => println!("recipe   none (imported)"),
                }
            }
        }
        LibraryCmd::Import { files, kind } => {
            let kind = kind
                .map(|k| {
                    AssetKind::parse(&k).with_context(|| {
                        format!("unknown kind {k:?}: use image, sprite_sheet, tile, animation, clip or other")
                    })
                })
                .transpose()?;
            let mut paths = Vec::new();
            for f in &files {
                let abs = std::path::absolute(f)
                    .with_context(|| format!("cannot resolve {}", f.display()))?;
                // A missing path is an error before any job; what the file is, the job decides
                // (it refuses pipes, devices, folders and files that do not decode, and goes on).
                if !abs.exists() {
                    bail!("{} does not exist", f.display());
                }
                if abs.is_dir() {
                    paths.extend(folder_files(&abs)?);
                } else {
                    paths.push(abs.to_string_lossy().into_owned());
                }
            }
            let count = paths.len();
            let done = submit_and_follow(
                open()?,
                false,
                |w| w.submit(JobSpec::Import { paths, kind }),
                |_, record| eprintln!("job {}: import {count} files", record.id),
            )?;
            if let Some((_, record)) = done {
                report_job(&record)?;
            }
        }
        LibraryCmd::Export { id, dest } => {
            for p in open()?.export_asset(&id, &dest)? {
                println!("{}", p.display());
            }
        }
        LibraryCmd::Remove { id } => {
            let id = open()?.remove_asset(&id)?;
            println!("removed {id}");
        }
    }
    Ok(())
}

pub(crate) fn check(settings: &Settings, deep: bool, repair: bool) -> Result<()> {
    if repair {
        let h = mintframe_studio::repair_and_check(settings)?;
        for line in &h.findings {
            println!("{line}");
        }
        if !h.healthy {
            bail!("the library still has problems after repair (listed above)");
        }
        println!("library healthy");
        return Ok(());
    }
    let h = mintframe_studio::library_health(settings, deep)?;
    println!(
        "files checked {}{}",
        h.files_checked,
        if deep { " (re-hashed and decoded)" } else { "" }
    );
    for line in &h.findings {
        println!("{line}");
    }
    if h.healthy {
        println!("library healthy");
        Ok(())
    } else {
        bail!(
            "the library has problems; `mintframe library check --repair` fixes them and keeps every file"
        )
    }
}

/// A folder's files (hidden ones skipped) in natural order, so `2.png` comes before `10.png`
/// and a numbered folder (a HashLips build, say) keeps its token order.
fn folder_files(dir: &std::path::Path) -> Result<Vec<String>> {
    let mut files: Vec<std::path::PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("cannot list {}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.is_file()
                && !p
                    .file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with('.'))
        })
        .collect();
    files.sort_by_cached_key(|p| natural_key(p));
    Ok(files
        .into_iter()
        .map(|p| p.to_string_lossy().into_owned())
        .collect())
}

/// Runs of digits compare as numbers, everything else as text.
fn natural_key(p: &std::path::Path) -> Vec<(String, u128)> {
    let name = p
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut key = Vec::new();
    let mut text = String::new();
    let mut chars = name.chars().peekable();
    while let Some(c) = chars.next() {
        if c.is_ascii_digit() {
            let mut digits = c.to_string();
            while let Some(d) = chars.peek().filter(|d| d.is_ascii_digit()) {
                digits.push(*d);
                chars.next();
            }
            key.push((
                std::mem::take(&mut text),
                digits.parse().unwrap_or(u128::MAX),
            ));
        } else {
            text.push(c);
        }
    }
    key.push((text, 0));
    key
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbered_files_sort_as_numbers() {
        let mut names = vec!["10.png", "2.png", "1.png", "a10", "a9", "b"];
        names.sort_by_key(|n| natural_key(std::path::Path::new(n)));
        assert_eq!(names, ["1.png", "2.png", "10.png", "a9", "a10", "b"]);
    }
}
