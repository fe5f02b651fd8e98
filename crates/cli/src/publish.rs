//! `mintframe publish`: collections, their history, pinning services.

use anyhow::{Context, Result, bail};
use clap::Subcommand;
use mintframe_studio::{App, Scope, Settings, Worker};
use mintframe_types::{JobState, Layout, Standard, TraitSpec};

use crate::jobs::{follow_with_bar, when};

#[derive(Debug, Subcommand)]
pub(crate) enum PublishCmd {
    /// Publish assets (token 0, 1, … in the order given) to the node: media folder and metadata
    /// folder, every CID computed offline first and checked against the node's, pinned, and
    /// every link read back. Run again, it resends nothing already pinned.
    Collection(Box<CollectionArgs>),
    /// Every publish the library recorded, newest first.
    List {
        #[command(flatten)]
        out: crate::Output,
    },
    /// Ask the pinning services again about a publish's remote pins.
    Status {
        /// The record's number (`publish list`).
        record: i64,
        #[command(flatten)]
        out: crate::Output,
    },
    /// IPFS Pinning Service API providers that keep copies (`--pin-to NAME`).
    #[command(subcommand)]
    Service(ServiceCmd),
}

#[derive(Debug, Subcommand)]
pub(crate) enum ServiceCmd {
    /// Add or update a provider. The token is read from stdin into the OS keyring.
    Add {
        name: String,
        /// The API's base URL, e.g. https://api.pinata.cloud/psa
        endpoint: String,
        /// Read the access token from stdin (one line) into the OS keyring.
        #[arg(long)]
        token_stdin: bool,
        /// Where no keyring persists tokens: a file holding the token, readable only by you
        /// (chmod 600). MINTFRAME_TOKEN_<NAME> in the environment works too.
        #[arg(long, conflicts_with = "token_stdin")]
        token_file: Option<std::path::PathBuf>,
    },
    List,
    /// Forget a provider and its token.
    Remove {
        name: String,
    },
}

#[derive(Debug, clap::Args)]
pub(crate) struct CollectionArgs {
    /// Asset ids (or unique prefixes), in token order.
    #[arg(required_unless_present = "from_job")]
    pub(crate) assets: Vec<String>,
    /// Every asset a job made, in the order it made them, as the tokens (after any ids given):
    /// e.g. the `library import` of a folder of 10,000 images.
    #[arg(long, value_name = "JOB")]
    pub(crate) from_job: Option<String>,
    /// The collection's name; tokens are named "<name> #<n>".
    #[arg(long)]
    pub(crate) name: String,
    #[arg(long, default_value = "")]
    pub(crate) description: String,
    /// Metaplex's symbol.
    #[arg(long, default_value = "")]
    pub(crate) symbol: String,
    #[arg(long)]
    pub(crate) external_url: Option<String>,
    /// A trait every token carries: `Name=Value` or `Name:display_type=Value`
    /// (number, boost_number, boost_percentage, date). Repeatable.
    #[arg(long = "trait", value_name = "NAME[:TYPE]=VALUE", value_parser = parse_trait)]
    pub(crate) traits: Vec<TraitSpec>,
    /// The metadata standard.
    #[arg(long, value_enum, default_value_t = Standard::Erc721)]
    pub(crate) standard: Standard,
    /// How metadata files are named: numbered (0, 1, … for OpenZeppelin/ERC721A),
    /// numbered-json (0.json, …) or sugar.
    #[arg(long, value_enum, default_value_t = Layout::Numbered)]
    pub(crate) layout: Layout,
    /// 0 (Kubo's default, Qm…) or 1 (bafy…, raw leaves).
    #[arg(long, default_value_t = 0)]
    pub(crate) cid_version: u8,
    /// Kubo's import profile the CIDs follow (overrides --cid-version): unixfs-v0-2015 (the
    /// default), cid-v1, or unixfs-v1-2025. Folders past 256 KiB are sharded as Kubo does.
    #[arg(long, value_enum)]
    pub(crate) profile: Option<mintframe_types::CidProfile>,
    /// Only compute the CIDs and check the metadata; touch no node.
    #[arg(long)]
    pub(crate) check: bool,
    #[command(flatten)]
    pub(crate) out: crate::Output,
    /// Also ask this pinning service (see `publish service add`) to pin both roots. Repeatable.
    #[arg(long = "pin-to", value_name = "SERVICE")]
    pub(crate) pin_to: Vec<String>,
    /// Publish through an IPFS Cluster's REST API (e.g. http://127.0.0.1:9094) instead of the
    /// local node.
    #[arg(long, value_name = "URL")]
    pub(crate) cluster: Option<String>,
    /// Where the collection goes: the IPFS node (or --cluster), or Arweave: every file an
    /// ANS-104 data item signed offline, `ar://` links, path manifests, one bundle uploaded in
    /// chunks (resumable), every id and path read back. See `mintframe arweave wallet import`.
    #[arg(long, value_enum, default_value_t = To::Ipfs)]
    pub(crate) to: To,
    /// The Arweave gateway (default: $MINTFRAME_ARWEAVE_GATEWAY, else the local arlocal that
    /// `scripts/arlocal up` starts on 127.0.0.1:1984).
    #[arg(long, value_name = "URL")]
    pub(crate) gateway: Option<String>,
    /// The most the Arweave upload may cost, in AR: the price `--check` or the last run showed.
    /// Needed on a real network (a local test gateway's tokens are free); the upload is refused
    /// before anything is spent if the price is higher.
    #[arg(long, value_name = "AR")]
    pub(crate) max_price: Option<String>,
    /// Peers that must hold each pin (-1: all).
    #[arg(long, default_value_t = -1, allow_negative_numbers = true)]
    pub(crate) replication_min: i32,
    /// Peers that may hold each pin (-1: all).
    #[arg(long, default_value_t = -1, allow_negative_numbers = true)]
    pub(crate) replication_max: i32,
    #[command(flatten)]
    pub(crate) detach: crate::Detach,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum To {
    Ipfs,
    Arweave,
}

pub(crate) fn parse_trait(t: &str) -> Result<TraitSpec, String> {
    t.parse()
}

pub(crate) fn publish(settings: &Settings, cmd: PublishCmd) -> Result<()> {
    let app = App::open(settings.clone())?;
    let a = match cmd {
        PublishCmd::List { out } => {
            let list = app.publishes()?;
            if out.json {
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
            token_file,
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
            app.add_pinning_service(&name, &endpoint, token.as_deref(), token_file.as_deref())?;
            println!(
                "pinning service {name} at {endpoint}{}",
                match (&token, &token_file) {
                    (Some(_), _) => "; token stored in the OS keyring".to_owned(),
                    (None, Some(f)) => format!("; token read from {} when needed", f.display()),
                    (None, None) => String::new(),
                }
            );
            return Ok(());
        }
        PublishCmd::Status { record, out } => {
            let pins = app.refresh_remote_pins(record)?;
            if out.json {
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
                        "token found"
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
    let mut asset_ids = a.assets.clone();
    if let Some(job) = &a.from_job {
        let record = app.jobs().get(job)?;
        // A token for every file, in order: a job that skipped or has not finished would
        // shift or drop tokens.
        if record.state != JobState::Succeeded {
            bail!(
                "job {} is {:?}; publish a job that finished",
                record.id,
                record.state
            );
        }
        if !record.refused.is_empty() {
            bail!(
                "job {} refused {} file(s), so its assets would not be the folder's tokens in order; fix or remove them and import again",
                record.id,
                record.refused.len()
            );
        }
        if record.outputs.is_empty() {
            bail!("job {} made no assets", record.id);
        }
        asset_ids.extend(record.outputs.iter().map(|id| id.to_string()));
    }
    let spec = mintframe_types::PublishSpec {
        asset_ids,
        name: a.name.clone(),
        description: a.description.clone(),
        symbol: a.symbol.clone(),
        external_url: a.external_url.clone(),
        traits: a.traits.clone(),
        standard: a.standard,
        layout: a.layout,
        cid_version: a.cid_version,
        profile: a.profile,
        token_traits: Vec::new(),
        pin_to: a.pin_to.clone(),
        cluster: a.cluster.clone().map(|url| mintframe_types::ClusterTarget {
            url,
            replication_min: a.replication_min,
            replication_max: a.replication_max,
        }),
        arweave: match a.to {
            To::Arweave => Some(mintframe_types::ArweaveTarget {
                gateway: mintframe_studio::arweave::gateway_url(a.gateway.as_deref()),
                max_winston: a
                    .max_price
                    .as_deref()
                    .map(mintframe_studio::arweave::parse_ar)
                    .transpose()?
                    .map(|w| w.to_string()),
            }),
            To::Ipfs => None,
        },
    };
    if spec.arweave.is_some() && (spec.cluster.is_some() || !spec.pin_to.is_empty()) {
        bail!("--to arweave publishes to Arweave only: leave out --cluster and --pin-to");
    }
    // The cost, before anything is spent (and a refusal when the wallet cannot pay).
    if spec.arweave.is_some() && !a.check {
        let q = app.arweave_quote(&spec)?;
        eprintln!(
            "arweave      {} bytes cost {} ({} winston); wallet {} holds {} on {}",
            q.bytes, q.price_ar, q.price_winston, q.address, q.balance_ar, q.gateway
        );
        if !q.local && a.max_price.is_none() {
            bail!(
                "this upload costs {} on {}: run again with --max-price {} to accept it (it is refused if the price has risen by then)",
                q.price_ar,
                q.gateway,
                q.price_ar.trim_end_matches(" AR")
            );
        }
        if !q.enough {
            bail!(
                "the wallet {} holds {} and this upload costs {}: add AR to it first{}",
                q.address,
                q.balance_ar,
                q.price_ar,
                if q.local {
                    " (`mintframe arweave mint AMOUNT` on this local gateway)"
                } else {
                    ""
                }
            );
        }
    }
    let report = if a.check {
        app.publish_check(&spec)?
    } else {
        let app = std::sync::Arc::new(app);
        let worker = Worker::start(std::sync::Arc::clone(&app), Scope::Only(Default::default()))?;
        let rx = worker.subscribe();
        let job = worker.submit_publish(spec.clone())?;
        if a.detach.detach {
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
    if a.out.json {
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
        if let Some(ar) = &report.arweave {
            print_arweave(&report, ar, a.check);
        } else {
            print_ipfs(&report, a.check);
        }
    }
    if report.findings.iter().any(|f| f.error) {
        bail!("the collection has errors; fix them before publishing");
    }
    Ok(())
}

fn print_uris(report: &mintframe_types::PublishReport) {
    println!("baseURI      {}", report.base_uri);
    println!("contractURI  {}", report.contract_uri);
    for (i, u) in report.token_uris.iter().enumerate().take(20) {
        println!("token {i:<6} {u}");
    }
    if report.token_uris.len() > 20 {
        println!(
            "…            and {} more tokens (--json lists every one)",
            report.token_uris.len() - 20
        );
    }
}

fn print_arweave(
    report: &mintframe_types::PublishReport,
    ar: &mintframe_types::ArweaveReport,
    check: bool,
) {
    println!("media        ar://{}/", ar.media_manifest);
    println!("metadata     ar://{}/", ar.metadata_manifest);
    print_uris(report);
    println!("wallet       {}", ar.address);
    println!(
        "bundle       {} data items, {} bytes",
        ar.items, ar.bundle_bytes
    );
    for n in &report.notes {
        println!("note         {n}");
    }
    if !check {
        println!("transaction  {} ({} paid)", ar.bundle_tx, ar.price_ar);
        println!(
            "chunks       {} sent, {} already acknowledged (not re-sent), of {}",
            ar.chunks_sent, ar.chunks_skipped, ar.chunks_total
        );
        println!(
            "confirmed    {}",
            if ar.confirmed {
                "in a block"
            } else {
                "pending"
            }
        );
        println!(
            "took         {:.1} s sending chunks, {:.1} s until the gateway took and mined it, {:.1} s reading back",
            ar.upload_secs, ar.confirm_secs, ar.verify_secs
        );
        println!(
            "verified     {} ids listed by the gateway equal ours; {} files read back through it, byte for byte",
            ar.ids_checked, report.verified_files
        );
        println!("view         {}", report.gateway_url);
    }
}

fn print_ipfs(report: &mintframe_types::PublishReport, check: bool) {
    println!("media        ipfs://{}/", report.media_cid);
    println!("metadata     ipfs://{}/", report.metadata_cid);
    print_uris(report);
    println!("CAR          {}", report.media_car);
    println!("CAR          {}", report.metadata_car);
    println!("profile      {}", report.profile);
    for n in &report.notes {
        println!("note         {n}");
    }
    if !check {
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
