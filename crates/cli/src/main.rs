//! `mintframe`: the studio's operations from a terminal.
//! `main.rs` parses and dispatches; each command lives in its module.

mod arweave;
mod character;
mod clip;
mod collection;
mod farm;
mod generate;
mod ipfs;
mod jobs;
mod library;
mod models;
mod preview;
mod publish;
mod render;
mod sheet;
mod shots;
mod sprite;
mod tile;
mod train;
mod video;

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use mintframe_studio::Settings;
use mintframe_types::CheckStatus;

use generate::GenerateArgs;
use ipfs::IpfsCmd;
use jobs::JobsCmd;
use library::LibraryCmd;
use models::ModelsCmd;
use preview::PreviewArgs;
use publish::PublishCmd;

#[derive(Debug, Parser)]
#[command(
    name = "mintframe",
    version,
    about = "Generate game assets locally, preview them, publish them to IPFS."
)]
struct Cli {
    /// The data folder (library, files, IPFS repo). Default: $XDG_DATA_HOME/mintframe.
    #[arg(long, global = true, env = "MINTFRAME_DATA_DIR")]
    data_dir: Option<PathBuf>,
    /// The IPFS node's RPC address.
    #[arg(long, global = true, env = "MINTFRAME_IPFS_API")]
    ipfs_api: Option<String>,
    /// More log output (repeat for more).
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    verbose: u8,
    #[command(subcommand)]
    command: Command,
}

/// `--json`, for every command that prints a result.
#[derive(Debug, Clone, Copy, clap::Args)]
pub(crate) struct Output {
    /// Print JSON instead of text.
    #[arg(long)]
    pub(crate) json: bool,
}

/// `--detach`, for every command that submits a job.
#[derive(Debug, Clone, Copy, clap::Args)]
pub(crate) struct Detach {
    /// Queue the job and return its id; `mintframe jobs list` follows it, `jobs resume` or the
    /// studio runs it.
    #[arg(long)]
    pub(crate) detach: bool,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Report what this machine gives Mintframe: CPU, GPU/Vulkan, FFmpeg, IPFS, data folder.
    Doctor {
        #[command(flatten)]
        out: crate::Output,
    },
    /// The local asset library.
    #[command(subcommand)]
    Library(LibraryCmd),
    /// Queued, running and finished jobs.
    #[command(subcommand)]
    Jobs(JobsCmd),
    /// The local IPFS node.
    #[command(subcommand)]
    Ipfs(IpfsCmd),
    /// Generate images with a local diffusion model; they land in the library with their recipe.
    Generate(Box<GenerateArgs>),
    /// Render a still headless (integer zoom, 3×3 tile, pixel grid, backdrop) to a PNG.
    Render(Box<render::RenderArgs>),
    /// Encode a clip: anything the preview plays (a sheet, an Aseprite export, PNGs, a GIF, a
    /// video, an asset) to MP4, WebM with alpha, APNG, WebP or GIF, by the output's extension.
    Encode(Box<video::EncodeArgs>),
    /// What a video or animation file holds: codec, size, frame rate, duration, frames, alpha,
    /// audio.
    Probe(video::ProbeArgs),
    /// In-between frames with RIFE (any moment between two frames): a clip made 2–16 times as
    /// smooth, looped if asked, pixel-art clips kept in their own colours.
    Interpolate(Box<video::InterpolateArgs>),
    /// Open the preview window: play a sprite sheet, PNG sequence, GIF or clip with onion skin,
    /// tiling, zoom and a frame scrubber. Lines on stdin drive it: quit, play, pause, frame N,
    /// export.
    Preview(PreviewArgs),
    /// Turn images into pixel art: undo the pseudo-pixel grid, one palette for all the sources
    /// (built-in, a palette file, or the best N colours), dithering, outline, clean-up.
    Pixelate(Box<sprite::PixelateArgs>),
    /// Cut a sprite out of its background: a flat key colour (soft edges, no spill) or any
    /// background with U²-Net-p; alpha bleed after.
    Cutout(Box<sprite::CutoutArgs>),
    /// One prompt to a game-ready sprite: generate, cut out, undo to a pixel grid in one
    /// palette for the batch, into the library.
    Sprite(Box<sprite::SpriteArgs>),
    /// One prompt to a character sprite pack: every facing of a view (side, top-down 4/8,
    /// isometric) and every frame of idle/walk/run/jump/attack/hurt/death, one palette, anchored,
    /// one sheet with Aseprite and Godot exports, a poster, previews, the recipe and a
    /// consistency report. `--from PACK --reroll walk:e:3` draws a frame again.
    Character(Box<character::CharacterArgs>),
    /// A prompt to a clip with AnimateDiff motion modules (overlapping windows for long
    /// clips, `--loop` to close the loop), as MP4, WebM with alpha and GIF in the library,
    /// with a poster and a loop score.
    Clip(Box<clip::ClipArgs>),
    /// An NPC cinematic from a TOML shot list: each shot's prompt drawn for its duration with
    /// a camera move (zoom, pan, rotate, eased; optionally repainted frame by frame), joined by
    /// cut, fade, dissolve or wipe, dialogue burned in and as WebVTT, sound mixed; one MP4.
    Shots(Box<shots::ShotsArgs>),
    /// Sprite sheets: pack frames (grid or tight, anchored, named animations) with exports for
    /// Aseprite, TexturePacker, Phaser and Godot; import an Aseprite sheet; export one.
    #[command(subcommand)]
    Sheet(sheet::SheetCmd),
    /// A seamless terrain tile (wrapping on both axes, or one) and its 3×3 check image.
    Tile(Box<tile::TileArgs>),
    /// Two terrains to the 16 corner transitions (dual grid), with a Godot 4 TileSet, a Tiled
    /// tileset and a sample map; seams optionally inpainted.
    Tileset(Box<tile::TilesetArgs>),
    /// Train a style LoRA on your own images, and follow a run.
    #[command(subcommand)]
    Train(train::TrainCmd),
    /// Diffusion models: list, download, import, verify, remove.
    #[command(subcommand)]
    Models(ModelsCmd),
    /// Publish library assets to IPFS as an NFT collection, in one pass with offline-checked CIDs.
    #[command(subcommand)]
    Publish(PublishCmd),
    /// Generative collections from a TOML spec: prompts with trait slots and rarity weights,
    /// unique DNA, rarity report, provenance; made here or on a render farm, then published.
    #[command(subcommand)]
    Collection(collection::CollectionCmd),
    /// Arweave: the wallet uploads are signed with, its balance, a local gateway's faucet.
    #[command(subcommand)]
    Arweave(arweave::ArweaveCmd),
    /// A render farm on NATS JetStream: make one, start and stop its server, see its workers.
    #[command(subcommand)]
    Farm(farm::FarmCmd),
    /// Work for a render farm: pull tasks, draw them, send the images back.
    Worker(farm::WorkerArgs),
}

fn main() -> std::process::ExitCode {
    mintframe_studio::tune_process();
    let cli = Cli::parse();
    let level = match cli.verbose {
        0 => "warn",
        1 => "info",
        _ => "debug",
    };
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| {
                tracing_subscriber::EnvFilter::new(format!(
                    "{level},wgpu_hal=off,wgpu_core=error,naga=warn"
                ))
            }),
        )
        .with_writer(std::io::stderr)
        .init();
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {}", mintframe_studio::error_chain(e.as_ref()));
            std::process::ExitCode::FAILURE
        }
    }
}

pub(crate) fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}

fn run(cli: Cli) -> Result<std::process::ExitCode> {
    let settings = Settings::resolve(cli.data_dir, cli.ipfs_api);
    match cli.command {
        Command::Doctor { out } => {
            let report = runtime()?.block_on(mintframe_studio::doctor(&settings));
            if out.json {
                println!("{}", serde_json::to_string_pretty(&report)?);
            } else {
                println!("Mintframe {}", report.app_version);
                for c in &report.checks {
                    let mark = match c.status {
                        CheckStatus::Ok => "ok  ",
                        CheckStatus::Warning => "warn",
                        CheckStatus::Missing => "MISS",
                    };
                    println!("[{mark}] {:<7} {}", c.component, c.summary);
                    for d in &c.details {
                        println!("         {:<22} {}", d.key, d.value);
                    }
                }
            }
            return Ok(if report.all_ok() {
                std::process::ExitCode::SUCCESS
            } else {
                std::process::ExitCode::from(2)
            });
        }
        Command::Library(cmd) => library::library(&settings, cmd)?,
        Command::Jobs(cmd) => jobs::jobs(&settings, cmd)?,
        Command::Ipfs(cmd) => ipfs::ipfs(&settings, cmd)?,
        Command::Generate(args) => generate::generate(&settings, *args)?,
        Command::Models(cmd) => models::models(&settings, cmd)?,
        Command::Publish(cmd) => publish::publish(&settings, cmd)?,
        Command::Preview(a) => preview::preview(&settings, a)?,
        Command::Encode(a) => video::encode(&settings, *a)?,
        Command::Probe(a) => video::probe(a)?,
        Command::Interpolate(a) => video::interpolate(&settings, *a)?,
        Command::Render(a) => render::render(&settings, *a)?,
        Command::Pixelate(a) => {
            let steps = sprite::pixelate_steps(&a)?;
            sprite::process(&settings, a.src, steps)?
        }
        Command::Cutout(a) => {
            let steps = sprite::cutout_steps(&a)?;
            sprite::process(&settings, a.src, steps)?
        }
        Command::Sheet(cmd) => sheet::sheet(&settings, cmd)?,
        Command::Character(a) => character::character(&settings, *a)?,
        Command::Clip(a) => clip::clip(&settings, *a)?,
        Command::Shots(a) => shots::shots(&settings, *a)?,
        Command::Sprite(a) => sprite::sprite(&settings, *a)?,
        Command::Tile(a) => tile::tile(&settings, *a)?,
        Command::Tileset(a) => tile::tileset(&settings, *a)?,
        Command::Train(cmd) => train::train(&settings, cmd)?,
        Command::Collection(cmd) => collection::collection(&settings, cmd)?,
        Command::Arweave(cmd) => arweave::arweave(&settings, cmd)?,
        Command::Farm(cmd) => farm::farm(&settings, cmd)?,
        Command::Worker(a) => farm::worker(&settings, a)?,
    }
    Ok(std::process::ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;
    use mintframe_types::{DType, Layout, Scheduler, Standard};

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("mintframe").chain(args.iter().copied()))
    }

    #[test]
    fn a_bad_scheduler_is_refused_with_the_valid_ones_named() {
        let e = parse(&["generate", "x", "--scheduler", "bogus"])
            .expect_err("bogus is no scheduler")
            .to_string();
        assert!(
            e.contains("bogus") && e.contains("ddim, euler, euler_a, dpmpp_2m_karras, lcm"),
            "{e}"
        );
    }

    #[test]
    fn generate_flags_become_typed_values() {
        let cli = parse(&[
            "generate",
            "a knight",
            "--scheduler",
            "dpmpp_2m_karras",
            "--dtype",
            "f16",
            "--detach",
        ])
        .expect("parse");
        let Command::Generate(a) = cli.command else {
            panic!("not generate");
        };
        assert_eq!(a.scheduler, Some(Scheduler::DpmPp2mKarras));
        assert_eq!(a.dtype, DType::F16);
        assert!(a.detach.detach);
        assert!(parse(&["generate", "x", "--dtype", "bf8"]).is_err());
        assert!(parse(&["generate", "x", "--dtype", "bf16"]).is_ok());
    }

    #[test]
    fn publish_flags_parse_traits_standards_and_layouts() {
        let cli = parse(&[
            "publish",
            "collection",
            "01a2",
            "--name",
            "Slimes",
            "--trait",
            "Level:number=3",
            "--standard",
            "erc1155",
            "--layout",
            "numbered-json",
        ])
        .expect("parse");
        let Command::Publish(publish::PublishCmd::Collection(a)) = cli.command else {
            panic!("not publish collection");
        };
        assert_eq!(a.standard, Standard::Erc1155);
        assert_eq!(a.layout, Layout::NumberedJson);
        assert_eq!(a.traits[0].trait_type, "Level");
        let e = parse(&[
            "publish",
            "collection",
            "a",
            "--name",
            "n",
            "--trait",
            "Level:size=3",
        ])
        .expect_err("bad display type")
        .to_string();
        assert!(e.contains("boost_number"), "{e}");
        let e = parse(&[
            "publish",
            "collection",
            "a",
            "--name",
            "n",
            "--standard",
            "erc20",
        ])
        .expect_err("bad standard")
        .to_string();
        assert!(e.contains("erc721, erc1155, metaplex"), "{e}");
    }

    #[test]
    fn jobs_resume_takes_an_optional_id() {
        assert!(matches!(
            parse(&["jobs", "resume"]).expect("parse").command,
            Command::Jobs(jobs::JobsCmd::Resume { id: None })
        ));
        assert!(matches!(
            parse(&["jobs", "resume", "01ab"]).expect("parse").command,
            Command::Jobs(jobs::JobsCmd::Resume { id: Some(_) })
        ));
    }

    #[test]
    fn every_subcommand_is_in_the_cli_readme() {
        let readme = include_str!("../README.md");
        let cli = Cli::command();
        for sub in cli.get_subcommands() {
            let name = sub.get_name();
            if name == "help" {
                continue;
            }
            assert!(
                readme.contains(&format!("`mintframe {name}")),
                "crates/cli/README.md does not mention `mintframe {name}`"
            );
            for inner in sub.get_subcommands() {
                let inner = inner.get_name();
                if inner == "help" {
                    continue;
                }
                let line = readme
                    .lines()
                    .find(|l| l.contains(&format!("`mintframe {name}")))
                    .unwrap_or_default();
                assert!(
                    line.contains(inner),
                    "crates/cli/README.md does not list `mintframe {name} {inner}`"
                );
            }
        }
    }
}
