//! `mintframe`: the studio's operations from a terminal.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};
use mintframe_studio::{App, Scope, Settings, Worker};
use mintframe_types::{
    AssetKind, CheckStatus, DType, GenerateSpec, JobEvent, JobRecord, JobSpec, JobState, Layout,
    LoraSpec, Scheduler, Standard, TraitSpec,
};

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

#[derive(Debug, Subcommand)]
enum Command {
    /// Report what this machine gives Mintframe: CPU, GPU/Vulkan, FFmpeg, IPFS, data folder.
    Doctor {
        #[arg(long)]
        json: bool,
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
    Render {
        /// An asset id (or a unique prefix) or a PNG file.
        source: String,
        /// Where to write the PNG.
        #[arg(long, short = 'o')]
        out: PathBuf,
        #[arg(long, default_value_t = 1)]
        zoom: u32,
        /// Repeat 3×3 to check that a tile is seamless.
        #[arg(long)]
        tile: bool,
        /// Linear filtering (default: nearest, for pixel art).
        #[arg(long)]
        linear: bool,
        /// Pixel grid (zoom 4 and up).
        #[arg(long)]
        grid: bool,
        /// `checker` or a colour such as `#20242c`.
        #[arg(long, default_value = "checker")]
        backdrop: String,
        /// A sprite sheet's cell size, WxH: render one frame of it.
        #[arg(long)]
        frame: Option<String>,
        /// Which frame (from 0, left to right, top to bottom).
        #[arg(long, default_value_t = 0)]
        index: u32,
        /// Show the previous and next frames faded behind this one.
        #[arg(long)]
        onion: bool,
        /// Write every frame of the sheet as a looping GIF instead (needs --frame).
        #[arg(long)]
        gif: bool,
        /// Frames per second of the GIF.
        #[arg(long, default_value_t = 12)]
        fps: u32,
        /// Write every frame in a grid of this many columns instead (a contact sheet; also for
        /// GIFs, videos, PNG folders and Aseprite JSON).
        #[arg(long)]
        contact_sheet: Option<u32>,
        /// Write the library's thumbnail instead: this many pixels on the longest side, PNG for
        /// a still, an animated GIF for anything that moves.
        #[arg(long)]
        thumbnail: Option<u32>,
        /// Write every frame of the sheet as a looping, lossless animated WebP (full alpha)
        /// instead (needs --frame).
        #[arg(long)]
        webp: bool,
        /// A game's background image (PNG) behind the sprite, stretched to the output.
        #[arg(long, value_name = "PNG")]
        backdrop_image: Option<PathBuf>,
    },
    /// Open the preview window: play a sprite sheet, PNG sequence, GIF or clip with onion skin,
    /// tiling, zoom and a frame scrubber. Lines on stdin drive it: quit, play, pause, frame N,
    /// export.
    Preview(PreviewArgs),
    /// Diffusion models: list, download, import, verify, remove.
    #[command(subcommand)]
    Models(ModelsCmd),
    /// Publish library assets to IPFS as an NFT collection, in one pass with offline-checked CIDs.
    #[command(subcommand)]
    Publish(PublishCmd),
}

#[derive(Debug, clap::Args)]
struct GenerateArgs {
    /// What to generate.
    prompt: String,
    /// What to steer away from (classifier-free guidance).
    #[arg(long, short = 'n', default_value = "")]
    negative: String,
    /// A model id (`mintframe models list`) or a path to a diffusers folder or .safetensors file.
    #[arg(long, short = 'm', default_value = "tiny-sd")]
    model: String,
    /// Random seed; the same recipe and seed give the same image. Random if left out.
    #[arg(long, short = 's')]
    seed: Option<u64>,
    /// Denoising steps (default: the model's).
    #[arg(long)]
    steps: Option<u32>,
    /// Guidance scale; 1 or less turns guidance off (Turbo models: 0).
    #[arg(long, short = 'g')]
    guidance: Option<f32>,
    /// Size as WIDTHxHEIGHT, multiples of 8 (default: the model's).
    #[arg(long)]
    size: Option<String>,
    #[arg(long)]
    width: Option<u32>,
    #[arg(long)]
    height: Option<u32>,
    /// The sampler (default: the model's).
    #[arg(long, value_enum)]
    scheduler: Option<Scheduler>,
    /// Images in this run; item i uses seed + i.
    #[arg(long, short = 'b', default_value_t = 1)]
    batch: u32,
    /// img2img: a PNG to start from.
    #[arg(long)]
    init_image: Option<PathBuf>,
    /// Inpaint: a PNG mask the init image's size, white where to repaint.
    #[arg(long)]
    mask: Option<PathBuf>,
    /// img2img / inpaint: how much to repaint, 0 < s <= 1.
    #[arg(long)]
    strength: Option<f32>,
    /// Seamless tile: the image wraps around on both axes.
    #[arg(long)]
    seamless: bool,
    /// Decode the VAE in tiles (less memory; the preflight turns it on when memory is short).
    #[arg(long)]
    vae_tiling: bool,
    #[arg(long, value_enum, default_value_t = DType::F32)]
    dtype: DType,
    /// cpu, cuda, cuda:N or metal (the last two need a build with that feature).
    #[arg(long, default_value = "cpu")]
    device: String,
    /// A kohya LoRA, as PATH or PATH:STRENGTH (repeatable).
    #[arg(long)]
    lora: Vec<String>,
    /// Memory the run may use in MiB (default: what is free now).
    #[arg(long)]
    memory_budget: Option<u64>,
    /// Also write the PNGs into this folder.
    #[arg(long, short = 'o')]
    out: Option<PathBuf>,
    /// Print the finished job as JSON.
    #[arg(long)]
    json: bool,
    /// Queue the job and return; `mintframe jobs list` follows it, `jobs resume` or the studio
    /// runs it.
    #[arg(long)]
    detach: bool,
}

#[derive(Debug, Subcommand)]
enum ModelsCmd {
    /// Every model Mintframe knows, whether it is installed, and its licence.
    List {
        #[arg(long)]
        json: bool,
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

#[derive(Debug, Subcommand)]
enum LibraryCmd {
    /// List assets, newest first.
    List {
        #[arg(long)]
        json: bool,
    },
    /// Show one asset's files and recipe (id or a unique prefix of 4+ characters).
    Show {
        id: String,
        #[arg(long)]
        json: bool,
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
        /// Re-hash every file, not only compare sizes.
        #[arg(long)]
        deep: bool,
        /// Rebuild what is broken. Keeps every stored file; a damaged database is moved aside.
        #[arg(long)]
        repair: bool,
    },
}

#[derive(Debug, Subcommand)]
enum JobsCmd {
    /// List jobs (unfinished ones unless --all).
    List {
        #[arg(long)]
        all: bool,
        #[arg(long)]
        json: bool,
    },
    /// Cancel a job, here or in the process that runs it.
    Cancel { id: String },
    /// Run queued jobs (ones left by a stopped process are re-queued on start), or run one
    /// cancelled or failed job again from where it stopped.
    Resume {
        /// A job id (or a unique prefix); every queued job if left out.
        id: Option<String>,
    },
}

#[derive(Debug, clap::Args)]
struct PreviewArgs {
    /// An asset id (or a unique prefix), a PNG (a sheet with --frame, or with an Aseprite JSON of
    /// the same name beside it), an Aseprite JSON, a folder of PNGs, a GIF or a video.
    source: String,
    /// A sheet's cell size, WxH.
    #[arg(long)]
    frame: Option<String>,
    /// Frames per second where the source does not time its frames.
    #[arg(long, default_value_t = 12)]
    fps: u32,
    #[arg(long, default_value_t = 4)]
    zoom: u32,
    /// Repeat 3×3 to check that a tile is seamless.
    #[arg(long)]
    tile: bool,
    /// Show the previous and next frames faded behind this one.
    #[arg(long)]
    onion: bool,
    /// Linear filtering (default: nearest, for pixel art).
    #[arg(long)]
    linear: bool,
    /// Pixel grid (zoom 4 and up).
    #[arg(long)]
    grid: bool,
    /// `checker` or a colour such as `#20242c`.
    #[arg(long, default_value = "checker")]
    backdrop: String,
    /// Play forwards then backwards.
    #[arg(long)]
    pingpong: bool,
    /// Start paused.
    #[arg(long)]
    paused: bool,
    /// Start at this frame (from 0).
    #[arg(long, default_value_t = 0)]
    index: usize,
    /// Where "Export frame" writes PNGs (default: the current folder).
    #[arg(long, default_value = ".")]
    export_dir: PathBuf,
    /// A game's background image (PNG) to check the sprite against.
    #[arg(long, value_name = "PNG")]
    backdrop_image: Option<PathBuf>,
}

fn parse_frame_size(f: &str) -> Result<[u32; 2]> {
    f.split_once(['x', 'X'])
        .and_then(|(w, h)| Some([w.trim().parse().ok()?, h.trim().parse().ok()?]))
        .with_context(|| format!("--frame {f:?}: use WxH, e.g. 32x32"))
}

fn preview(settings: &Settings, a: PreviewArgs) -> Result<()> {
    let frame_size = a.frame.as_deref().map(parse_frame_size).transpose()?;
    let path = std::path::Path::new(&a.source);
    let (seq, stem) = if path.exists() {
        let stem = path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| "frame".into());
        (
            mintframe_studio::preview::load_sequence(path, frame_size)?,
            stem,
        )
    } else {
        let app = App::open(settings.clone())?;
        let id = app.asset(&a.source)?.summary.id.to_string();
        (app.asset_sequence(&id, frame_size)?, id)
    };
    // Names from a file or an asset id never leave the export folder.
    let stem: String = stem
        .chars()
        .map(|c| {
            if c.is_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let opts = mintframe_preview::Options {
        title: format!("{} — Mintframe preview", a.source),
        fps: a.fps,
        zoom: a.zoom,
        tile: a.tile,
        onion: a.onion,
        linear: a.linear,
        grid: a.grid,
        backdrop: mintframe_studio::preview::backdrop(&a.backdrop)?,
        playback: if a.pingpong {
            mintframe_preview::Playback::PingPong
        } else {
            mintframe_preview::Playback::Loop
        },
        paused: a.paused,
        start_frame: a.index,
        export_dir: a.export_dir,
        export_stem: stem,
        backdrop_image: a
            .backdrop_image
            .as_deref()
            .map(mintframe_studio::preview::read_png)
            .transpose()?,
    };
    if a.index >= seq.frames.len() {
        bail!(
            "--index {} is past the last frame ({} frames)",
            a.index,
            seq.frames.len()
        );
    }
    mintframe_preview::run(seq, opts)?;
    Ok(())
}

#[derive(Debug, Subcommand)]
enum PublishCmd {
    /// Publish assets (token 0, 1, … in the order given) to the node: media folder and metadata
    /// folder, every CID computed offline first and checked against the node's, pinned, and
    /// every link read back. Run again, it resends nothing already pinned.
    Collection(Box<CollectionArgs>),
    /// Every publish the library recorded, newest first.
    List {
        #[arg(long)]
        json: bool,
    },
    /// Ask the pinning services again about a publish's remote pins.
    Status {
        /// The record's number (`publish list`).
        record: i64,
        #[arg(long)]
        json: bool,
    },
    /// IPFS Pinning Service API providers that keep copies (`--pin-to NAME`).
    #[command(subcommand)]
    Service(ServiceCmd),
}

#[derive(Debug, Subcommand)]
enum ServiceCmd {
    /// Add or update a provider. The token is read from stdin into the OS keyring.
    Add {
        name: String,
        /// The API's base URL, e.g. https://api.pinata.cloud/psa
        endpoint: String,
        /// Read the access token from stdin (one line).
        #[arg(long)]
        token_stdin: bool,
    },
    List,
    /// Forget a provider and its token.
    Remove {
        name: String,
    },
}

#[derive(Debug, clap::Args)]
struct CollectionArgs {
    /// Asset ids (or unique prefixes), in token order.
    #[arg(required = true)]
    assets: Vec<String>,
    /// The collection's name; tokens are named "<name> #<n>".
    #[arg(long)]
    name: String,
    #[arg(long, default_value = "")]
    description: String,
    /// Metaplex's symbol.
    #[arg(long, default_value = "")]
    symbol: String,
    #[arg(long)]
    external_url: Option<String>,
    /// A trait every token carries: `Name=Value` or `Name:display_type=Value`
    /// (number, boost_number, boost_percentage, date). Repeatable.
    #[arg(long = "trait", value_name = "NAME[:TYPE]=VALUE", value_parser = parse_trait)]
    traits: Vec<TraitSpec>,
    /// The metadata standard.
    #[arg(long, value_enum, default_value_t = Standard::Erc721)]
    standard: Standard,
    /// How metadata files are named: numbered (0, 1, … for OpenZeppelin/ERC721A),
    /// numbered-json (0.json, …) or sugar.
    #[arg(long, value_enum, default_value_t = Layout::Numbered)]
    layout: Layout,
    /// 0 (Kubo's default, Qm…) or 1 (bafy…, raw leaves).
    #[arg(long, default_value_t = 0)]
    cid_version: u8,
    /// Only compute the CIDs and check the metadata; touch no node.
    #[arg(long)]
    check: bool,
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
    /// Also ask this pinning service (see `publish service add`) to pin both roots. Repeatable.
    #[arg(long = "pin-to", value_name = "SERVICE")]
    pin_to: Vec<String>,
    /// Publish through an IPFS Cluster's REST API (e.g. http://127.0.0.1:9094) instead of the
    /// local node.
    #[arg(long, value_name = "URL")]
    cluster: Option<String>,
    /// Peers that must hold each pin (-1: all).
    #[arg(long, default_value_t = -1, allow_negative_numbers = true)]
    replication_min: i32,
    /// Peers that may hold each pin (-1: all).
    #[arg(long, default_value_t = -1, allow_negative_numbers = true)]
    replication_max: i32,
    /// Queue the publish and return (it is a job: `jobs list`, `jobs cancel`, `jobs resume`).
    #[arg(long)]
    detach: bool,
}

fn parse_trait(t: &str) -> Result<TraitSpec, String> {
    t.parse()
}

fn publish(settings: &Settings, cmd: PublishCmd) -> Result<()> {
    let app = App::open(settings.clone())?;
    let a = match cmd {
        PublishCmd::List { json } => {
            let list = app.publishes()?;
            if json {
                println!("{}", serde_json::to_string_pretty(&list)?);
            } else {
                for r in list {
                    println!(
                        "{:>4}  {:<10} {}  {}  {}",
                        r.id,
                        r.status,
                        when(r.updated_ms),
                        r.root_cid.as_deref().unwrap_or("-"),
                        r.target
                    );
                }
            }
            return Ok(());
        }
        PublishCmd::Service(ServiceCmd::Add {
            name,
            endpoint,
            token_stdin,
        }) => {
            let token = if token_stdin {
                let mut line = String::new();
                std::io::stdin()
                    .read_line(&mut line)
                    .context("cannot read the token from stdin")?;
                Some(line.trim().to_owned())
            } else {
                None
            };
            app.add_pinning_service(&name, &endpoint, token.as_deref())?;
            println!(
                "pinning service {name} at {endpoint}{}",
                if token.is_some() {
                    "; token stored in the OS keyring"
                } else {
                    ""
                }
            );
            return Ok(());
        }
        PublishCmd::Status { record, json } => {
            let pins = app.refresh_remote_pins(record)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&pins)?);
            } else if pins.is_empty() {
                println!("publish {record} asked no pinning service to pin");
            } else {
                for p in pins {
                    println!(
                        "{:<16} {}  {} ({})",
                        p.service, p.cid, p.status, p.requestid
                    );
                }
            }
            return Ok(());
        }
        PublishCmd::Service(ServiceCmd::List) => {
            for s in app.pinning_services()? {
                println!(
                    "{:<16} {}  {}",
                    s.name,
                    s.endpoint,
                    if s.has_token {
                        "token in keyring"
                    } else {
                        "NO TOKEN"
                    }
                );
            }
            return Ok(());
        }
        PublishCmd::Service(ServiceCmd::Remove { name }) => {
            app.remove_pinning_service(&name)?;
            println!("removed {name}");
            return Ok(());
        }
        PublishCmd::Collection(a) => a,
    };
    let spec = mintframe_types::PublishSpec {
        asset_ids: a.assets.clone(),
        name: a.name.clone(),
        description: a.description.clone(),
        symbol: a.symbol.clone(),
        external_url: a.external_url.clone(),
        traits: a.traits.clone(),
        standard: a.standard,
        layout: a.layout,
        cid_version: a.cid_version,
        pin_to: a.pin_to.clone(),
        cluster: a.cluster.clone().map(|url| mintframe_types::ClusterTarget {
            url,
            replication_min: a.replication_min,
            replication_max: a.replication_max,
        }),
    };
    let report = if a.check {
        app.publish_check(&spec)?
    } else {
        let app = std::sync::Arc::new(app);
        let worker = Worker::start(std::sync::Arc::clone(&app), Scope::Only(Default::default()))?;
        let rx = worker.subscribe();
        let job = worker.submit_publish(spec.clone())?;
        if a.detach {
            println!("{}", job.id);
            return Ok(());
        }
        eprintln!("job {}: publish {:?}", job.id, spec.name);
        let record = follow_with_bar(&worker, &rx, &job)?;
        match record.state {
            JobState::Succeeded => app.publish_outcome(&spec)?,
            JobState::Cancelled => bail!(
                "job {} was cancelled; nothing is recorded as published. `mintframe jobs resume {}` finishes it with the same CIDs",
                record.id,
                record.id
            ),
            _ => bail!(
                "{}",
                record
                    .error
                    .as_deref()
                    .unwrap_or("the publish failed with no reason recorded")
            ),
        }
    };
    if a.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        for f in &report.findings {
            eprintln!(
                "{} {} {}: {}",
                if f.error { "error" } else { "warning" },
                f.file,
                f.field,
                f.message
            );
        }
        println!("media        ipfs://{}/", report.media_cid);
        println!("metadata     ipfs://{}/", report.metadata_cid);
        println!("baseURI      {}", report.base_uri);
        println!("contractURI  {}", report.contract_uri);
        for (i, u) in report.token_uris.iter().enumerate() {
            println!("token {i:<6} {u}");
        }
        println!("CAR          {}", report.media_car);
        println!("CAR          {}", report.metadata_car);
        if !a.check {
            let sent = |b: bool| {
                if b {
                    "uploaded"
                } else {
                    "already pinned, not re-sent"
                }
            };
            println!("media        {}", sent(report.uploaded_media));
            println!("metadata     {}", sent(report.uploaded_metadata));
            println!(
                "verified     {} files read back from the node, byte for byte",
                report.verified_files
            );
            println!(
                "view         {} (gateway, for looking only)",
                report.gateway_url
            );
        }
    }
    if report.findings.iter().any(|f| f.error) {
        bail!("the collection has errors; fix them before publishing");
    }
    Ok(())
}

#[derive(Debug, Subcommand)]
enum IpfsCmd {
    /// Start the managed node (repo in the data folder, RPC API on loopback).
    Start,
    /// Stop the managed node.
    Stop,
    /// Say whether a node answers at the configured address.
    Status,
    /// Print the CID a file or folder will have, computed offline exactly as `ipfs add` would.
    Cid {
        path: PathBuf,
        /// CIDv1 with raw leaves (base32 `bafy…`), as `ipfs add --cid-version 1`.
        #[arg(long, value_parser = clap::value_parser!(u8).range(0..=1), default_value_t = 0)]
        cid_version: u8,
        /// Wrap in a folder, as `ipfs add --wrap-with-directory`.
        #[arg(long, short = 'w')]
        wrap_with_directory: bool,
    },
    /// CAR files: make one offline, import one into the node, export a CID from it.
    #[command(subcommand)]
    Car(CarCmd),
}

#[derive(Debug, Subcommand)]
enum CarCmd {
    /// Write a CARv1 of a file or folder offline; prints the root CID.
    Make {
        path: PathBuf,
        #[arg(long, short = 'o')]
        out: PathBuf,
        #[arg(long, value_parser = clap::value_parser!(u8).range(0..=1), default_value_t = 0)]
        cid_version: u8,
    },
    /// `dag/import` a CAR into the node (roots pinned); prints the roots.
    Import { car: PathBuf },
    /// `dag/export` a CID from the node as a CAR.
    Export {
        cid: String,
        #[arg(long, short = 'o')]
        out: PathBuf,
    },
}

fn main() -> std::process::ExitCode {
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
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}

fn run(cli: Cli) -> Result<std::process::ExitCode> {
    let settings = Settings::resolve(cli.data_dir, cli.ipfs_api);
    match cli.command {
        Command::Doctor { json } => {
            let report = runtime()?.block_on(mintframe_studio::doctor(&settings));
            if json {
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
        Command::Library(cmd) => library(&settings, cmd)?,
        Command::Jobs(cmd) => jobs(&settings, cmd)?,
        Command::Ipfs(cmd) => ipfs(&settings, cmd)?,
        Command::Generate(args) => generate(&settings, *args)?,
        Command::Models(cmd) => models(&settings, cmd)?,
        Command::Publish(cmd) => publish(&settings, cmd)?,
        Command::Preview(a) => preview(&settings, a)?,
        Command::Render {
            source,
            out,
            zoom,
            tile,
            linear,
            grid,
            backdrop,
            frame,
            index,
            onion,
            gif,
            fps,
            contact_sheet,
            thumbnail,
            webp,
            backdrop_image,
        } => {
            let frame_size = frame
                .map(|f| {
                    f.split_once(['x', 'X'])
                        .and_then(|(w, h)| Some([w.trim().parse().ok()?, h.trim().parse().ok()?]))
                        .with_context(|| format!("--frame {f:?}: use WxH, e.g. 32x32"))
                })
                .transpose()?;
            let spec = mintframe_types::PreviewSpec {
                zoom,
                tile,
                linear,
                grid,
                backdrop,
                frame_size,
                frame_index: index,
                onion,
            };
            let path = std::path::Path::new(&source);
            let sequence = || -> Result<mintframe_studio::Sequence> {
                Ok(if path.exists() {
                    mintframe_studio::preview::load_sequence(path, frame_size)?
                } else {
                    App::open(settings.clone())?.asset_sequence(&source, frame_size)?
                })
            };
            let still = || -> Result<mintframe_studio::Rgba> {
                Ok(if path.is_file() {
                    mintframe_studio::preview::read_png(path)?
                } else {
                    App::open(settings.clone())?.asset_png(&source)?
                })
            };
            if webp {
                let frames = mintframe_studio::preview::render_animation_frames(&still()?, &spec)?;
                mintframe_studio::encode_webp(&frames, fps, &out)?;
                println!("{}", out.display());
                return Ok(std::process::ExitCode::SUCCESS);
            }
            let png = if let Some(bg) = &backdrop_image {
                let bg = mintframe_studio::preview::read_png(bg)?;
                let img =
                    mintframe_studio::preview::render_still_over(&still()?, &spec, Some(&bg))?;
                mintframe_studio::encode_png(&img)?
            } else if let Some(columns) = contact_sheet {
                let sheet = mintframe_studio::preview::contact_sheet(
                    &sequence()?,
                    zoom,
                    columns,
                    &spec.backdrop,
                )?;
                mintframe_studio::encode_png(&sheet)?
            } else if let Some(side) = thumbnail {
                mintframe_studio::preview::thumbnail(&sequence()?, side)?.0
            } else if gif {
                let still = if path.is_file() {
                    mintframe_studio::preview::read_png(path)?
                } else {
                    App::open(settings.clone())?.asset_png(&source)?
                };
                mintframe_studio::preview::render_animation(&still, &spec, fps)?
            } else if path.is_file() {
                let img = mintframe_studio::preview::render_png_file(path, &spec)?;
                mintframe_studio::encode_png(&img)?
            } else {
                App::open(settings.clone())?.asset_preview_png(&source, &spec)?
            };
            let part = out.with_extension("part");
            std::fs::write(&part, &png)
                .with_context(|| format!("cannot write {}", part.display()))?;
            std::fs::rename(&part, &out)
                .with_context(|| format!("cannot write {}", out.display()))?;
            println!("{}", out.display());
        }
    }
    Ok(std::process::ExitCode::SUCCESS)
}

fn when(ms: i64) -> String {
    let t = std::time::UNIX_EPOCH + Duration::from_millis(ms.max(0) as u64);
    humantime::format_rfc3339_seconds(t).to_string()
}

fn library(settings: &Settings, cmd: LibraryCmd) -> Result<()> {
    // Opened per command: `check` must work when the database is too damaged to open.
    let open = || App::open(settings.clone());
    match cmd {
        LibraryCmd::Check { deep, repair } => check(settings, deep, repair)?,
        LibraryCmd::List { json } => {
            let assets = open()?.list_assets()?;
            if json {
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
        LibraryCmd::Show { id, json } => {
            let a = open()?.asset(&id)?;
            if json {
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
                // Pipes are welcome (`import /dev/stdin`); folders and missing paths are not.
                if !abs.exists() || abs.is_dir() {
                    bail!("{} is not a readable file", f.display());
                }
                paths.push(abs.to_string_lossy().into_owned());
            }
            let done = submit_and_follow(
                open()?,
                false,
                |w| w.submit(JobSpec::Import { paths, kind }),
                |_, _| {},
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

fn check(settings: &Settings, deep: bool, repair: bool) -> Result<()> {
    if repair {
        let r = mintframe_studio::repair_library(settings)?;
        if let Some(p) = &r.moved_aside {
            println!("damaged database kept at {}", p.display());
        }
        println!(
            "rows copied {}, rows lost {}, files recovered as assets {}, assets dropped {}, files quarantined {}",
            r.rows_copied,
            r.rows_lost,
            r.recovered_assets,
            r.assets_dropped.len(),
            r.quarantined.len()
        );
        for p in &r.quarantined {
            println!("quarantined {}", p.display());
        }
        let after = mintframe_studio::check_library(settings, deep)?;
        if !after.is_healthy() {
            bail!("the library still has problems after repair: {after:?}");
        }
        println!("library healthy");
        return Ok(());
    }
    let r = mintframe_studio::check_library(settings, deep)?;
    println!(
        "files checked {}{}",
        r.files_checked,
        if deep { " (re-hashed)" } else { "" }
    );
    for p in &r.database_problems {
        println!("database: {p}");
    }
    for s in &r.missing_files {
        println!("missing file {s}");
    }
    for s in &r.damaged_files {
        println!("damaged file {s}");
    }
    if r.is_healthy() {
        println!("library healthy");
        Ok(())
    } else {
        bail!(
            "the library has problems; `mintframe library check --repair` fixes them and keeps every file"
        )
    }
}

/// Follows a job with a progress bar until it ends (here or in whichever process runs it).
fn follow_with_bar(
    worker: &Worker,
    rx: &std::sync::mpsc::Receiver<JobEvent>,
    job: &JobRecord,
) -> Result<JobRecord> {
    let bar = ProgressBar::new(0);
    bar.set_style(
        ProgressStyle::with_template("{spinner} {msg:<24} [{bar:30}] {pos}/{len} {elapsed}")
            .context("progress template")?
            .progress_chars("=> "),
    );
    bar.enable_steady_tick(Duration::from_millis(120));
    let record = worker.follow(&job.id, rx, &mut |ev: &JobEvent| {
        if ev.state == JobState::Queued {
            bar.set_message("queued");
        }
        if let Some(p) = &ev.progress {
            let eta = ev
                .eta_secs
                .map(|s| format!(" · {s} s left"))
                .unwrap_or_default();
            bar.set_message(format!("{}{eta}", p.stage));
            bar.set_length(p.total);
            bar.set_position(p.step);
        }
    })?;
    bar.finish_and_clear();
    Ok(record)
}

/// Submits through a worker that runs only this command's job, and follows it unless `detach`.
fn submit_and_follow(
    app: App,
    detach: bool,
    submit: impl FnOnce(&Worker) -> Result<JobRecord, mintframe_studio::StudioError>,
    announce: impl FnOnce(&App, &JobRecord),
) -> Result<Option<(std::sync::Arc<App>, JobRecord)>> {
    let app = std::sync::Arc::new(app);
    let worker = Worker::start(std::sync::Arc::clone(&app), Scope::Only(Default::default()))?;
    let rx = worker.subscribe();
    let job = submit(&worker)?;
    if detach {
        println!("{}", job.id);
        return Ok(None);
    }
    announce(&app, &job);
    let record = follow_with_bar(&worker, &rx, &job)?;
    drop(worker);
    Ok(Some((app, record)))
}

fn report_job(record: &JobRecord) -> Result<()> {
    for id in &record.outputs {
        println!("imported {id}");
    }
    match record.state {
        JobState::Succeeded => Ok(()),
        JobState::Cancelled => bail!(
            "job {} was cancelled; {} file(s) imported before it stopped",
            record.id,
            record.outputs.len()
        ),
        _ => bail!(
            "job {} {}: {}",
            record.id,
            record.state,
            record.error.as_deref().unwrap_or("no reason recorded")
        ),
    }
}

fn jobs(settings: &Settings, cmd: JobsCmd) -> Result<()> {
    let app = App::open(settings.clone())?;
    match cmd {
        JobsCmd::List { all, json } => {
            let jobs = app.jobs().list(!all)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&jobs)?);
            } else if jobs.is_empty() {
                println!("No {}jobs.", if all { "" } else { "unfinished " });
            } else {
                for j in jobs {
                    let progress = j
                        .progress
                        .as_ref()
                        .map(|p| format!("{} {}/{}", p.stage, p.step, p.total))
                        .unwrap_or_default();
                    println!(
                        "{}  {:<9}  {:<7}  {}  {}{}",
                        j.id,
                        j.state,
                        j.spec.name(),
                        when(j.created_at_ms),
                        progress,
                        j.error.map(|e| format!("  ({e})")).unwrap_or_default()
                    );
                }
            }
        }
        JobsCmd::Cancel { id } => {
            let state = app.jobs().cancel(&id)?;
            match state {
                JobState::Cancelled => println!("cancelled"),
                JobState::Running => println!("cancel requested; the job stops at its next step"),
                other => println!("the job had already ended ({other})"),
            }
        }
        JobsCmd::Resume { id: Some(id) } => {
            let job = app.jobs().requeue(&id)?;
            let app = std::sync::Arc::new(app);
            let worker = Worker::start(app, Scope::Only(Default::default()))?;
            let rx = worker.subscribe();
            worker.adopt(&job);
            let r = follow_with_bar(&worker, &rx, &job)?;
            println!("{}  {}", r.id, r.state);
            if r.state != JobState::Succeeded {
                bail!(
                    "job {} {}: {}",
                    r.id,
                    r.state,
                    r.error.as_deref().unwrap_or("no reason recorded")
                );
            }
        }
        JobsCmd::Resume { id: None } => {
            let queued: Vec<JobRecord> = app
                .jobs()
                .list(true)?
                .into_iter()
                .filter(|j| j.state == JobState::Queued)
                .collect();
            if queued.is_empty() {
                println!("No queued jobs.");
                return Ok(());
            }
            let app = std::sync::Arc::new(app);
            let worker = Worker::start(std::sync::Arc::clone(&app), Scope::Queue)?;
            worker.drain()?;
            for j in queued {
                let r = app.jobs().get(&j.id.0)?;
                println!("{}  {}", r.id, r.state);
            }
        }
    }
    Ok(())
}

fn ipfs(settings: &Settings, cmd: IpfsCmd) -> Result<()> {
    if let IpfsCmd::Cid {
        path,
        cid_version,
        wrap_with_directory,
    } = &cmd
    {
        println!(
            "{}",
            mintframe_studio::ipfs_cid(path, *cid_version == 1, *wrap_with_directory)?
        );
        return Ok(());
    }
    if let IpfsCmd::Car(CarCmd::Make {
        path,
        out,
        cid_version,
    }) = &cmd
    {
        println!(
            "{}",
            mintframe_studio::ipfs_car_make(path, *cid_version == 1, out)?
        );
        return Ok(());
    }
    let rt = runtime()?;
    match cmd {
        IpfsCmd::Car(CarCmd::Import { car }) => {
            for root in rt.block_on(mintframe_studio::ipfs_car_import(settings, &car))? {
                println!("{root}");
            }
        }
        IpfsCmd::Car(CarCmd::Export { cid, out }) => {
            let n = rt.block_on(mintframe_studio::ipfs_car_export(settings, &cid, &out))?;
            println!("{} ({n} bytes)", out.display());
        }
        IpfsCmd::Car(CarCmd::Make { .. }) => {}
        IpfsCmd::Start => {
            let spinner = ProgressBar::new_spinner();
            spinner.set_message("starting the IPFS node");
            spinner.enable_steady_tick(Duration::from_millis(120));
            let status = rt.block_on(mintframe_studio::ipfs_start(settings));
            spinner.finish_and_clear();
            let status = status?;
            let how = if status.started_now {
                "started"
            } else {
                "already running"
            };
            println!(
                "IPFS node {how}: {} {} at {}{}",
                status.version.implementation,
                status.version.version,
                status.api,
                status
                    .pid
                    .map(|p| format!(" (pid {p})"))
                    .unwrap_or_default()
            );
        }
        IpfsCmd::Stop => {
            let pid = rt.block_on(mintframe_studio::ipfs_stop(settings))?;
            println!("IPFS node stopped (pid {pid})");
        }
        IpfsCmd::Status => {
            let v = rt.block_on(mintframe_studio::ipfs_status(settings))?;
            println!(
                "{} {} at {} (repo version {})",
                v.implementation, v.version, settings.ipfs_api, v.repo
            );
        }
        // Answered above without a runtime: it needs no node.
        IpfsCmd::Cid { .. } => {}
    }
    Ok(())
}

fn parse_lora(s: &str) -> Result<LoraSpec> {
    // PATH:STRENGTH, where PATH itself may contain ':' (take the last one if it parses).
    if let Some((path, strength)) = s.rsplit_once(':')
        && let Ok(v) = strength.parse::<f32>()
    {
        return Ok(LoraSpec {
            path: absolute(path)?,
            strength: v,
        });
    }
    Ok(LoraSpec {
        path: absolute(s)?,
        strength: 1.0,
    })
}

fn absolute(p: impl AsRef<std::path::Path>) -> Result<String> {
    let p = p.as_ref();
    Ok(std::path::absolute(p)
        .with_context(|| format!("cannot resolve {}", p.display()))?
        .to_string_lossy()
        .into_owned())
}

fn generate(settings: &Settings, a: GenerateArgs) -> Result<()> {
    let (mut width, mut height) = (a.width, a.height);
    if let Some(size) = &a.size {
        let (w, h) = size
            .split_once(['x', 'X'])
            .and_then(|(w, h)| Some((w.trim().parse().ok()?, h.trim().parse().ok()?)))
            .with_context(|| format!("--size {size:?}: use WIDTHxHEIGHT, e.g. 512x512"))?;
        width = Some(w);
        height = Some(h);
    }
    // Paths are made absolute now: the job may be resumed from another working directory.
    let model = if std::path::Path::new(&a.model).exists() && a.model.contains(['/', '.']) {
        absolute(&a.model)?
    } else {
        a.model.clone()
    };
    let spec = GenerateSpec {
        model,
        prompt: a.prompt,
        negative_prompt: a.negative,
        seed: a.seed,
        steps: a.steps,
        guidance: a.guidance,
        width,
        height,
        scheduler: a.scheduler,
        batch: Some(a.batch),
        strength: a.strength,
        init_image: a.init_image.as_ref().map(absolute).transpose()?,
        mask: a.mask.as_ref().map(absolute).transpose()?,
        seamless: a.seamless,
        vae_tiling: a.vae_tiling,
        dtype: Some(a.dtype),
        device: Some(a.device),
        loras: a
            .lora
            .iter()
            .map(|l| parse_lora(l))
            .collect::<Result<_>>()?,
        memory_budget_mib: a.memory_budget,
    };
    let done = submit_and_follow(
        App::open(settings.clone())?,
        a.detach,
        |w| w.submit_generate(spec),
        |app, job| {
            if let JobSpec::Generate(s) = &job.spec {
                let license = app.models().manifest(&s.model).ok().map(|m| m.license);
                eprintln!(
                    "job {}: {} · seed {} · {} steps · {} · {}x{}{}",
                    job.id,
                    s.model,
                    s.seed.unwrap_or(0),
                    s.steps.unwrap_or(0),
                    s.scheduler.map(Scheduler::as_str).unwrap_or(""),
                    s.width.unwrap_or(0),
                    s.height.unwrap_or(0),
                    license
                        .map(|l| format!(" · licence {}", l.label()))
                        .unwrap_or_default()
                );
            }
        },
    )?;
    let Some((app, record)) = done else {
        return Ok(());
    };
    if a.json {
        println!("{}", serde_json::to_string_pretty(&record)?);
    }
    match record.state {
        JobState::Succeeded => {}
        JobState::Cancelled => bail!("job {} was cancelled; no image was kept", record.id),
        _ => bail!(
            "{}",
            record
                .error
                .as_deref()
                .unwrap_or("the job failed with no reason recorded")
        ),
    }
    for id in &record.outputs {
        if let Some(dir) = &a.out {
            for p in app.export_asset(&id.0, dir)? {
                if p.extension().is_some_and(|e| e == "png") && !a.json {
                    println!("{id}  {}", p.display());
                }
            }
        } else if !a.json {
            println!("{id}");
        }
    }
    Ok(())
}

fn models(settings: &Settings, cmd: ModelsCmd) -> Result<()> {
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
        ModelsCmd::List { json } => {
            let infos = app.model_infos()?;
            if json {
                println!("{}", serde_json::to_string_pretty(&infos)?);
            } else {
                println!(
                    "{:<12} {:<9} {:<5} {:<34} name",
                    "id", "installed", "arch", "licence"
                );
                for m in infos {
                    println!(
                        "{:<12} {:<9} {:<5} {:<34} {}",
                        m.id,
                        if m.installed { "yes" } else { "no" },
                        m.arch,
                        m.license,
                        m.name
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
            let b = bar()?;
            let rec = manager.pull(&id, &ctx_for(&b));
            b.finish_and_clear();
            let rec = rec?;
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

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("mintframe").chain(args.iter().copied()))
    }

    #[test]
    fn a_bad_scheduler_is_refused_with_the_valid_ones_named() {
        let e = parse(&["generate", "x", "--scheduler", "bogus"])
            .expect_err("bogus is no scheduler")
            .to_string();
        assert!(
            e.contains("bogus") && e.contains("ddim, euler, euler_a, dpmpp_2m_karras"),
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
        assert!(a.detach);
        assert!(parse(&["generate", "x", "--dtype", "bf16"]).is_err());
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
        let Command::Publish(PublishCmd::Collection(a)) = cli.command else {
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
            Command::Jobs(JobsCmd::Resume { id: None })
        ));
        assert!(matches!(
            parse(&["jobs", "resume", "01ab"]).expect("parse").command,
            Command::Jobs(JobsCmd::Resume { id: Some(_) })
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
