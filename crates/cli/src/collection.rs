//! `mintframe collection`: generative collections from a TOML spec.

use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use clap::Subcommand;
use mintframe_studio::{App, Settings};
use mintframe_types::{CidProfile, CollectionJob, CollectionReport, JobState};

use crate::jobs::submit_and_follow;

#[derive(Debug, Subcommand)]
pub(crate) enum CollectionCmd {
    /// Draw the tokens of a spec and print each trait value's count and share; nothing is
    /// generated.
    Check {
        spec: PathBuf,
        #[command(flatten)]
        out: crate::Output,
    },
    /// Make a collection: every token drawn (unique DNA, rarity weights, exclusions, forced
    /// pairs, one-of-ones), generated here or on a render farm (`--farm`), the rarity report
    /// (rarity.json, rarity.html), provenance hash and reveal plan written; published in one
    /// pass with `--publish`. Run again, it resumes with the tokens it has.
    Make(Box<MakeArgs>),
    /// Where a collection stands: tokens made, by whom, provenance, publish.
    Status {
        spec: PathBuf,
        #[command(flatten)]
        out: crate::Output,
    },
}

#[derive(Debug, clap::Args)]
pub(crate) struct MakeArgs {
    spec: PathBuf,
    /// A render farm's NATS URL (`nats://…` or `tls://…`); the coordinator credential is
    /// `<data>/farm/coordinator.creds` (`mintframe farm init`) or MINTFRAME_FARM_CREDS.
    #[arg(long, value_name = "URL")]
    farm: Option<String>,
    /// Publish to the IPFS node once every token is made.
    #[arg(long)]
    publish: bool,
    /// The publish's CID profile.
    #[arg(long, value_enum)]
    profile: Option<CidProfile>,
    #[command(flatten)]
    out: crate::Output,
    #[command(flatten)]
    detach: crate::Detach,
}

fn read_spec(path: &PathBuf) -> Result<String> {
    std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))
}

fn print_report(r: &CollectionReport, json: bool) -> Result<()> {
    if json {
        println!("{}", serde_json::to_string_pretty(r)?);
        return Ok(());
    }
    println!(
        "collection   {} ({} of {} tokens made)",
        r.name, r.made, r.tokens
    );
    println!("folder       {}", r.dir);
    println!("rarity       {}/rarity.html, rarity.json", r.dir);
    for (who, n) in &r.made_by {
        println!("made by      {who}: {n}");
    }
    if let Some(p) = &r.provenance {
        println!("provenance   {p}");
    }
    if let Some(p) = &r.publish {
        println!("media        ipfs://{}/", p.media_cid);
        println!("metadata     ipfs://{}/", p.metadata_cid);
        println!("baseURI      {}", p.base_uri);
        println!(
            "verified     {} files read back from the node, byte for byte",
            p.verified_files
        );
        for n in &p.notes {
            println!("note         {n}");
        }
    }
    Ok(())
}

pub(crate) fn collection(settings: &Settings, cmd: CollectionCmd) -> Result<()> {
    match cmd {
        CollectionCmd::Check { spec, out } => {
            let app = App::open(settings.clone())?;
            let (drawn, rarity) = app.collection_rarity(&read_spec(&spec)?)?;
            if out.json {
                println!("{}", serde_json::to_string_pretty(&rarity)?);
                return Ok(());
            }
            println!(
                "{}: {} tokens, all unique",
                drawn.spec.name,
                drawn.tokens.len()
            );
            for t in &rarity.traits {
                println!("{}", t.name);
                for v in &t.values {
                    println!(
                        "  {:<24} {:>6}  {:>6.2} %",
                        v.value,
                        v.count,
                        v.share * 100.0
                    );
                }
            }
            Ok(())
        }
        CollectionCmd::Status { spec, out } => {
            let app = App::open(settings.clone())?;
            print_report(&app.collection_report(&read_spec(&spec)?)?, out.json)
        }
        CollectionCmd::Make(a) => {
            let text = read_spec(&a.spec)?;
            let job = CollectionJob {
                spec_toml: text.clone(),
                farm: a.farm.clone(),
                publish: a.publish,
                profile: a.profile,
            };
            let done = submit_and_follow(
                App::open(settings.clone())?,
                a.detach.detach,
                |w| w.submit_collection(job),
                |_, record| {
                    eprintln!(
                        "job {}: collection {}{}",
                        record.id,
                        a.spec.display(),
                        a.farm
                            .as_deref()
                            .map(|f| format!(" on the farm at {f}"))
                            .unwrap_or_default()
                    );
                },
            )?;
            let Some((app, record)) = done else {
                return Ok(());
            };
            match record.state {
                JobState::Succeeded => {}
                JobState::Cancelled => bail!(
                    "job {} was cancelled; `mintframe collection make` again resumes with the tokens made",
                    record.id
                ),
                _ => bail!(
                    "{}",
                    record
                        .error
                        .as_deref()
                        .unwrap_or("the collection failed with no reason recorded")
                ),
            }
            print_report(&app.collection_report(&text)?, a.out.json)
        }
    }
}
