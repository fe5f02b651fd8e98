//! Collections on Arweave in one pass, as on IPFS: every file is an ANS-104 data item signed
//! offline (its id is the hash of its signature, so the metadata is written once with final
//! `ar://` links), the media and metadata each get a path manifest (`ar://MANIFEST/3.json`),
//! and everything goes as one bundle carried by one format-2 transaction, uploaded chunk by
//! chunk with its proofs. A journal of acknowledged chunks lets an interrupted upload go on
//! without resending them; afterwards every id and path is read back through the gateway.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead as _, Read as _, Seek as _, Write as _};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use mintframe_arweave::manifest::{self, Manifest};
use mintframe_arweave::tx::Tag;
use mintframe_arweave::{ArweaveError, Gateway, Wallet, ans104, b64, merkle, tx};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha384};

use crate::PublishError;
use crate::collection::{
    CollectionSpec, FileFinding, Links, Staged, bundle_mime, file_sha256, io_err, mime_of,
    refuse_errors_in, stage, uri_path, write_metadata,
};

pub use mintframe_types::Standard;

/// The gateway Metaplex metadata links through (its standard wants `https://` URIs).
pub const PUBLIC_GATEWAY: &str = "https://arweave.net";

/// One file of the bundle.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlannedItem {
    /// Where it is, relative to the plan's folder (`media/3.png`, `arweave/metadata.manifest.json`).
    pub file: String,
    pub id: String,
    pub content_type: String,
}

/// Everything computed offline for an Arweave publish.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ArweavePlan {
    pub dir: PathBuf,
    /// The wallet every item is signed by.
    pub owner: String,
    pub items: Vec<PlannedItem>,
    pub media_manifest: String,
    pub metadata_manifest: String,
    /// `ar://<metadata manifest>/` (ERC-1155: `…/{id}.json`).
    pub base_uri: String,
    pub token_uris: Vec<String>,
    pub contract_uri: String,
    pub media_files: Vec<String>,
    pub metadata_files: Vec<String>,
    pub findings: Vec<FileFinding>,
    /// The bundle, and its size: what the carrying transaction stores and is priced by.
    pub bundle: PathBuf,
    pub bundle_size: u64,
    /// What the plan was made with (wallet, limits, links, this version): a plan with the same
    /// stamp in the same staging folder is the same plan.
    #[serde(default)]
    pub stamp: String,
}

fn stamp(owner: &str, opts: &PlanOptions) -> String {
    format!(
        "{owner} {} {} {}",
        opts.max_file_bytes,
        opts.public_gateway,
        env!("CARGO_PKG_VERSION")
    )
}

/// The plan already in `dir`, if it was made with this wallet and these options and its bundle
/// is whole. The caller vouches that the folder's inputs have not changed (the studio names its
/// staging folders by a hash of the assets and the spec). Signing a large collection again
/// takes seconds; a CLI publish would otherwise plan three times (price, queue, job).
pub fn reuse(dir: &Path, wallet: &Wallet, opts: &PlanOptions) -> Option<ArweavePlan> {
    let plan: ArweavePlan =
        serde_json::from_slice(&std::fs::read(dir.join("arweave/plan.json")).ok()?).ok()?;
    let whole = std::fs::metadata(&plan.bundle).is_ok_and(|m| m.len() == plan.bundle_size);
    let files = plan.items.iter().all(|i| plan.dir.join(&i.file).is_file());
    (plan.dir == dir && plan.stamp == stamp(&wallet.address(), opts) && whole && files)
        .then_some(plan)
}

struct ArLinks<'a> {
    ids: &'a BTreeMap<String, String>,
    manifest: &'a str,
    /// Metaplex: links through this gateway rather than `ar://`.
    http: Option<&'a str>,
}

impl Links for ArLinks<'_> {
    fn file(&self, name: &str) -> String {
        let id = self.ids.get(name).map(String::as_str).unwrap_or_default();
        match self.http {
            // Sugar's form: the extension tells wallets what the bytes are.
            Some(g) => match name.rsplit_once('.') {
                Some((_, ext)) => format!("{g}/{id}?ext={ext}"),
                None => format!("{g}/{id}"),
            },
            None => format!("ar://{id}"),
        }
    }
    fn folder(&self, i: usize) -> String {
        match self.http {
            Some(g) => format!("{g}/{}/{i}/", self.manifest),
            None => format!("ar://{}/{i}/", self.manifest),
        }
    }
    fn bundle_file(&self, i: usize, name: &str) -> String {
        format!("{}{}", self.folder(i), uri_path(name))
    }
}

/// A file signed as a data item: its header, and where its bytes are.
struct Signed {
    header: ans104::ItemHeader,
    path: PathBuf,
}

const APP_NAME: &str = "Mintframe";

fn tags_for(content_type: &str) -> Vec<Tag> {
    vec![
        Tag::new("Content-Type", content_type),
        Tag::new("App-Name", APP_NAME),
        Tag::new("App-Version", env!("CARGO_PKG_VERSION")),
    ]
}

fn sign_file(
    wallet: &Wallet,
    path: &Path,
    content_type: &str,
    max_bytes: u64,
    gateway: &str,
) -> Result<Signed, PublishError> {
    let mut f = std::fs::File::open(path).map_err(|e| io_err("cannot read", path, e))?;
    let len = f
        .metadata()
        .map_err(|e| io_err("cannot read", path, e))?
        .len();
    if len > max_bytes {
        return Err(ArweaveError::TooLarge {
            what: path.display().to_string(),
            size: len,
            limit: max_bytes,
            gateway: gateway.to_owned(),
        }
        .into());
    }
    let mut h = Sha384::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = f
            .read(&mut buf)
            .map_err(|e| io_err("cannot read", path, e))?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    let header = ans104::sign(wallet, &tags_for(content_type), len, h.finalize().into())?;
    Ok(Signed {
        header,
        path: path.to_owned(),
    })
}

fn media_type(name: &str) -> String {
    let ext = name.rsplit_once('.').map(|(_, e)| e.to_ascii_lowercase());
    match ext.as_deref().and_then(mime_of) {
        Some(m) => m.to_owned(),
        None if name.contains('/') => bundle_mime(name).to_owned(),
        None => "application/octet-stream".to_owned(),
    }
}

fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), PublishError> {
    let tmp = path.with_extension("tmp");
    let mut f = std::fs::File::create(&tmp).map_err(|e| io_err("cannot write", &tmp, e))?;
    f.write_all(bytes)
        .and_then(|()| f.sync_all())
        .map_err(|e| io_err("cannot write", &tmp, e))?;
    std::fs::rename(&tmp, path).map_err(|e| io_err("cannot write", path, e))
}

/// Limits of a plan: the largest single file a gateway (or bundler) takes.
#[derive(Debug, Clone)]
pub struct PlanOptions {
    pub max_file_bytes: u64,
    /// Where the limit comes from, for the error.
    pub gateway: String,
    /// Links through this gateway where the standard wants HTTP (Metaplex).
    pub public_gateway: String,
}

/// Stages the collection in `dir`, signs every file, writes the metadata with its final `ar://`
/// links and both manifests, and writes the bundle. Nothing touches a gateway: the same spec
/// and wallet always give the same ids.
pub fn plan(
    spec: &CollectionSpec,
    dir: &Path,
    wallet: &Wallet,
    opts: &PlanOptions,
) -> Result<ArweavePlan, PublishError> {
    let Staged {
        media_files,
        names,
        mut findings,
    } = stage(spec, dir)?;
    let media_dir = dir.join("media");
    let meta_dir = dir.join("metadata");
    let ar_dir = dir.join("arweave");
    std::fs::create_dir_all(&ar_dir).map_err(|e| io_err("cannot create", &ar_dir, e))?;
    let mut signed: Vec<(String, Signed)> = Vec::new();
    let mut media_ids = BTreeMap::new();
    for name in &media_files {
        manifest::check_path(name)?;
        let s = sign_file(
            wallet,
            &media_dir.join(name),
            &media_type(name),
            opts.max_file_bytes,
            &opts.gateway,
        )?;
        media_ids.insert(name.clone(), s.header.id_text());
        signed.push((format!("media/{name}"), s));
    }
    let media_manifest_path = ar_dir.join("media.manifest.json");
    // An index (token 0's image) though none is needed: arlocal resolves no path of a
    // manifest without one.
    let m = Manifest::new(media_ids.clone(), media_files.first().map(String::as_str))?;
    write_atomic(&media_manifest_path, &m.to_bytes())?;
    let s = sign_file(
        wallet,
        &media_manifest_path,
        manifest::CONTENT_TYPE,
        u64::MAX,
        &opts.gateway,
    )?;
    let media_manifest = s.header.id_text();
    signed.push(("arweave/media.manifest.json".into(), s));

    let http =
        (spec.standard == Standard::Metaplex).then_some(opts.public_gateway.trim_end_matches('/'));
    let links = ArLinks {
        ids: &media_ids,
        manifest: &media_manifest,
        http,
    };
    let mut metadata_files = write_metadata(spec, &names, &links, &meta_dir, &mut findings)?;
    let mut meta_ids = BTreeMap::new();
    metadata_files.push("collection.json".into());
    for name in &metadata_files {
        manifest::check_path(name)?;
        let s = sign_file(
            wallet,
            &meta_dir.join(name),
            "application/json",
            opts.max_file_bytes,
            &opts.gateway,
        )?;
        meta_ids.insert(name.clone(), s.header.id_text());
        signed.push((format!("metadata/{name}"), s));
    }
    metadata_files.pop();
    let meta_manifest_path = ar_dir.join("metadata.manifest.json");
    let m = Manifest::new(meta_ids, Some("collection.json"))?;
    write_atomic(&meta_manifest_path, &m.to_bytes())?;
    let s = sign_file(
        wallet,
        &meta_manifest_path,
        manifest::CONTENT_TYPE,
        u64::MAX,
        &opts.gateway,
    )?;
    let metadata_manifest = s.header.id_text();
    signed.push(("arweave/metadata.manifest.json".into(), s));

    let bundle = ar_dir.join("bundle.bin");
    let bundle_size = write_bundle(&signed, &bundle)?;
    let base = match http {
        Some(g) => format!("{g}/{metadata_manifest}/"),
        None => format!("ar://{metadata_manifest}/"),
    };
    let token_uris = metadata_files
        .iter()
        .map(|f| format!("{base}{f}"))
        .collect();
    let base_uri = match spec.standard {
        Standard::Erc1155 => format!("{base}{{id}}.json"),
        _ => base.clone(),
    };
    let plan = ArweavePlan {
        dir: dir.to_path_buf(),
        owner: wallet.address(),
        items: signed
            .iter()
            .map(|(file, s)| PlannedItem {
                file: file.clone(),
                id: s.header.id_text(),
                content_type: content_type_of(&s.header),
            })
            .collect(),
        media_manifest,
        metadata_manifest,
        base_uri,
        token_uris,
        contract_uri: format!("{base}collection.json"),
        media_files,
        metadata_files,
        findings,
        bundle,
        bundle_size,
        stamp: stamp(&wallet.address(), opts),
    };
    let text =
        serde_json::to_vec_pretty(&plan).map_err(|e| PublishError::Invalid(vec![e.to_string()]))?;
    write_atomic(&ar_dir.join("plan.json"), &text)?;
    Ok(plan)
}

fn content_type_of(h: &ans104::ItemHeader) -> String {
    // The tags sit right after the fixed fields; read back rather than carried alongside.
    let at = 2 + 512 + 512 + 2 + 16;
    ans104::decode_tags(&h.header[at..])
        .and_then(|t| t.into_iter().find(|t| t.name == "Content-Type"))
        .map(|t| t.value)
        .unwrap_or_default()
}

/// Writes the ANS-104 bundle (each distinct item once) and returns its size.
fn write_bundle(signed: &[(String, Signed)], path: &Path) -> Result<u64, PublishError> {
    let mut seen = BTreeSet::new();
    let unique: Vec<&Signed> = signed
        .iter()
        .map(|(_, s)| s)
        .filter(|s| seen.insert(s.header.id))
        .collect();
    let headers: Vec<ans104::ItemHeader> = unique.iter().map(|s| s.header.clone()).collect();
    let tmp = path.with_extension("tmp");
    let f = std::fs::File::create(&tmp).map_err(|e| io_err("cannot write", &tmp, e))?;
    let mut out = std::io::BufWriter::with_capacity(1 << 20, f);
    let werr = |e| io_err("cannot write", &tmp, e);
    out.write_all(&ans104::bundle_head(&headers))
        .map_err(werr)?;
    for s in &unique {
        out.write_all(&s.header.header).map_err(werr)?;
        let mut src =
            std::fs::File::open(&s.path).map_err(|e| io_err("cannot read", &s.path, e))?;
        let n = std::io::copy(&mut src, &mut out).map_err(|e| io_err("cannot read", &s.path, e))?;
        if n != s.header.data_len {
            return Err(io_err(
                "changed while it was signed",
                &s.path,
                std::io::Error::other("size differs"),
            ));
        }
    }
    let f = out
        .into_inner()
        .map_err(|e| io_err("cannot write", &tmp, e.into_error()))?;
    f.sync_all().map_err(werr)?;
    let size = f.metadata().map_err(werr)?.len();
    std::fs::rename(&tmp, path).map_err(|e| io_err("cannot write", path, e))?;
    Ok(size)
}

/// Refuses a plan whose checks found errors.
pub fn refuse_errors(plan: &ArweavePlan) -> Result<(), PublishError> {
    refuse_errors_in(&plan.findings)
}

/// What an upload would cost, read from the gateway before anything is spent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Quote {
    pub address: String,
    pub balance: u128,
    pub price: u128,
    pub bytes: u64,
}

pub fn quote(plan: &ArweavePlan, gateway: &Gateway) -> Result<Quote, PublishError> {
    Ok(Quote {
        address: plan.owner.clone(),
        balance: gateway.balance(&plan.owner)?,
        price: gateway.price(plan.bundle_size)?,
        bytes: plan.bundle_size,
    })
}

/// Which step an upload is at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    Hashing,
    Chunks { sent: u64, total: u64 },
    Confirming,
    Verifying { done: usize, total: usize },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Outcome {
    /// The transaction carrying the bundle.
    pub bundle_tx: String,
    pub price: u128,
    pub chunks_total: u64,
    /// Chunks sent by this run, and those an earlier run had sent (not sent again).
    pub chunks_sent: u64,
    pub chunks_skipped: u64,
    /// Whether the transaction is in a block (a local gateway mines it at once).
    pub confirmed: bool,
    /// The gateway's own list of the bundle's item ids equalled ours.
    pub ids_checked: usize,
    /// Every file read back through the gateway (by id and by manifest path) and equal.
    pub verified_files: usize,
    pub notes: Vec<String>,
    /// Seconds spent sending chunks, waiting for the gateway to take the header and put it in a
    /// block, and reading everything back.
    pub upload_secs: f32,
    pub confirm_secs: f32,
    pub verify_secs: f32,
}

/// The journal of chunks the gateway acknowledged, one `data_root index` line each, appended
/// and flushed after each answer: a crash loses at most the line being written.
struct Journal {
    path: PathBuf,
    acked: BTreeSet<u64>,
}

impl Journal {
    fn open(path: PathBuf, data_root: &str) -> Result<Self, PublishError> {
        let mut acked = BTreeSet::new();
        if let Ok(f) = std::fs::File::open(&path) {
            for line in std::io::BufReader::new(f).lines() {
                let line = line.map_err(|e| io_err("cannot read", &path, e))?;
                if let Some((root, i)) = line.split_once(' ')
                    && root == data_root
                    && let Ok(i) = i.trim().parse()
                {
                    acked.insert(i);
                }
            }
        }
        Ok(Self { path, acked })
    }

    fn ack(&mut self, data_root: &str, i: u64) -> Result<(), PublishError> {
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)
            .map_err(|e| io_err("cannot write", &self.path, e))?;
        f.write_all(format!("{data_root} {i}\n").as_bytes())
            .and_then(|()| f.sync_data())
            .map_err(|e| io_err("cannot write", &self.path, e))?;
        self.acked.insert(i);
        Ok(())
    }
}

/// How many times a chunk is tried before the upload stops (to be resumed by the next run).
const CHUNK_TRIES: u32 = 3;

/// What the user agreed to and how long to wait.
#[derive(Debug, Clone)]
pub struct PublishOptions {
    /// The most the upload may cost, in winston (the price the user was shown and accepted);
    /// none: whatever the gateway asks.
    pub max_price: Option<u128>,
    /// How long to wait for a real network to put the transaction in a block before reporting
    /// it pending (a local gateway is made to mine and always waited for).
    pub confirm_wait: Duration,
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn cancelled_error() -> PublishError {
    PublishError::Invalid(vec!["cancelled".into()])
}

/// Uploads the plan's bundle, then checks every id and path through the gateway. Safe to run
/// again after any interruption: a header the gateway holds (mined or pending) is not paid for
/// again, and no chunk it acknowledged is sent again. `cancelled` is asked between steps.
pub fn publish(
    plan: &ArweavePlan,
    gateway: &Gateway,
    wallet: &Wallet,
    opts: &PublishOptions,
    on_step: &dyn Fn(Step),
    cancelled: &dyn Fn() -> bool,
) -> Result<Outcome, PublishError> {
    refuse_errors(plan)?;
    if wallet.address() != plan.owner {
        return Err(PublishError::Invalid(vec![format!(
            "the plan was signed by wallet {} but the wallet now is {}: plan again",
            plan.owner,
            wallet.address()
        )]));
    }
    let (network, _) = gateway.info()?;
    let local = network.starts_with("arlocal");
    on_step(Step::Hashing);
    let mut bundle =
        std::fs::File::open(&plan.bundle).map_err(|e| io_err("cannot read", &plan.bundle, e))?;
    let tree = merkle::Tree::build(&mut std::io::BufReader::new(&bundle), plan.bundle_size)
        .map_err(|e| io_err("cannot read", &plan.bundle, e))?;
    let data_root = b64::encode(&tree.data_root);
    // What one gateway acknowledged says nothing about another: the header and the journal
    // are kept per gateway (its address and its network's name).
    let upload_dir = plan.dir.join("arweave").join(format!(
        "upload-{}",
        &hex(&Sha384::digest(format!("{}\n{network}", gateway.url())))[..16]
    ));
    std::fs::create_dir_all(&upload_dir).map_err(|e| io_err("cannot create", &upload_dir, e))?;
    let tx_path = upload_dir.join("tx.json");
    let journal_path = upload_dir.join("chunks.log");
    let mut notes = Vec::new();

    let earlier: Option<tx::Transaction> = std::fs::read(&tx_path)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .filter(|t: &tx::Transaction| {
            t.data_root == data_root && t.owner == b64::encode(wallet.owner())
        });
    let held = match &earlier {
        Some(t) => gateway.knows(&t.id)?,
        None => false,
    };
    let sign_new = || -> Result<tx::Transaction, PublishError> {
        let price = gateway.price(plan.bundle_size)?;
        let t = tx::sign(
            wallet,
            &tx::Unsigned {
                last_tx: gateway.anchor()?,
                tags: ans104::bundle_tags()
                    .into_iter()
                    .chain([Tag::new("App-Name", APP_NAME)])
                    .collect(),
                data_size: plan.bundle_size,
                data_root: tree.data_root,
                reward: price,
            },
        )?;
        // Kept before it is sent, so a crash after the gateway took it still knows its id.
        let text =
            serde_json::to_vec(&t).map_err(|e| PublishError::Invalid(vec![e.to_string()]))?;
        write_atomic(&tx_path, &text)?;
        Ok(t)
    };
    // Before anything is spent: the price the user accepted, and the balance.
    let affordable = |t: &tx::Transaction| -> Result<(), PublishError> {
        let cost: u128 = t.reward.parse().unwrap_or(u128::MAX);
        if let Some(max) = opts.max_price
            && cost > max
        {
            return Err(PublishError::Invalid(vec![format!(
                "the upload now costs {}, over the {} you accepted; nothing was sent. Ask the price again and publish",
                mintframe_arweave::ar(cost),
                mintframe_arweave::ar(max)
            )]));
        }
        let balance = gateway.balance(&plan.owner)?;
        if balance < cost {
            return Err(ArweaveError::Insufficient {
                address: plan.owner.clone(),
                balance,
                price: cost,
            }
            .into());
        }
        Ok(())
    };
    let mut header = match (&earlier, held) {
        (Some(t), true) => {
            notes.push(format!(
                "the gateway already holds transaction {}; not sent or paid for again",
                t.id
            ));
            t.clone()
        }
        // Sent before but not held: sent again as it was (the same id is never paid twice),
        // and signed anew only if the gateway refuses it (its anchor too old).
        (Some(t), false) => t.clone(),
        (None, _) => sign_new()?,
    };
    if !held {
        affordable(&header)?;
    }
    // A network node takes chunks only for a transaction it knows, so the header goes first.
    // arlocal, on the other hand, unpacks a bundle by re-reading every chunk it holds until they
    // are all there, which grows with the square of the chunks; with the header last it reads
    // them once. Chunks are filed by data root, so either order resumes the same way.
    let header_first = !local;
    let journal_reset = std::cell::Cell::new(false);
    let post = |header: &mut tx::Transaction| -> Result<(), PublishError> {
        match send_header(gateway, header, local, cancelled) {
            Err(PublishError::Arweave(ArweaveError::Gateway { reason, .. }))
                if earlier.as_ref().is_some_and(|e| e.id == header.id) =>
            {
                tracing::info!("the gateway refused the earlier header ({reason}); signing anew");
                *header = sign_new()?;
                affordable(header)?;
                journal_reset.set(header_first);
                send_header(gateway, header, local, cancelled)
            }
            other => other,
        }
    };
    if !held && header_first {
        post(&mut header)?;
    }
    if journal_reset.get() {
        // A network drops the chunks of a transaction it never took.
        let _ = std::fs::remove_file(&journal_path);
    }

    let started = Instant::now();
    let mut journal = Journal::open(journal_path, &data_root)?;
    let total = tree.chunks.len() as u64;
    let (mut sent, mut skipped) = (0u64, 0u64);
    let mut buf = vec![0u8; merkle::MAX_CHUNK as usize];
    for (i, chunk) in tree.chunks.iter().enumerate() {
        let i = i as u64;
        if journal.acked.contains(&i) {
            skipped += 1;
            continue;
        }
        if cancelled() {
            return Err(cancelled_error());
        }
        let part = &mut buf[..(chunk.end - chunk.start) as usize];
        bundle
            .seek(std::io::SeekFrom::Start(chunk.start))
            .and_then(|_| bundle.read_exact(part))
            .map_err(|e| io_err("cannot read", &plan.bundle, e))?;
        let mut tries = 0;
        loop {
            tries += 1;
            match gateway.post_chunk(&data_root, plan.bundle_size, chunk, part) {
                Ok(()) => break,
                Err(e) if tries < CHUNK_TRIES => {
                    tracing::warn!(chunk = i, "chunk refused, trying again: {e}");
                    std::thread::sleep(Duration::from_millis(500 << tries));
                }
                Err(e) => {
                    return Err(PublishError::Invalid(vec![format!(
                        "chunk {} of {total} (bytes {}..{}) was refused {CHUNK_TRIES} times: {e}. {sent} chunks were sent by this run and {} before; run the publish again to go on from chunk {}",
                        i + 1,
                        chunk.start,
                        chunk.end,
                        journal.acked.len() as u64 - sent,
                        i + 1
                    )]));
                }
            }
        }
        journal.ack(&data_root, i)?;
        sent += 1;
        on_step(Step::Chunks {
            sent: journal.acked.len() as u64,
            total,
        });
    }
    let upload_secs = started.elapsed().as_secs_f32();
    let started = Instant::now();
    if !held && !header_first {
        post(&mut header)?;
    }
    tracing::info!(tx = %header.id, sent, skipped, "bundle uploaded");

    on_step(Step::Confirming);
    let confirmed = confirm(gateway, &header.id, local, opts.confirm_wait, cancelled)?;
    if !confirmed {
        notes.push(format!(
            "transaction {} is not in a block yet: the network mines it within minutes, and gateways serve its items once they have unpacked the bundle; run the publish again later to check every file",
            header.id
        ));
    }
    let confirm_secs = started.elapsed().as_secs_f32();
    let started = Instant::now();
    let (ids_checked, verified_files) = if local || confirmed {
        verify(plan, gateway, local, on_step, cancelled)?
    } else {
        (0, 0)
    };
    Ok(Outcome {
        bundle_tx: header.id.clone(),
        price: header.reward.parse().unwrap_or_default(),
        chunks_total: total,
        chunks_sent: sent,
        chunks_skipped: skipped,
        confirmed,
        ids_checked,
        verified_files,
        notes,
        upload_secs,
        confirm_secs,
        verify_secs: started.elapsed().as_secs_f32(),
    })
}

/// Sends the header. A gateway that takes longer than the request's timeout to answer may still
/// have taken it (arlocal unpacks a 256 MiB bundle for minutes before it answers): a timeout is
/// followed by asking for the transaction until it appears or the wait runs out.
fn send_header(
    gateway: &Gateway,
    header: &tx::Transaction,
    local: bool,
    cancelled: &dyn Fn() -> bool,
) -> Result<(), PublishError> {
    match gateway.post_transaction(header) {
        Ok(()) => Ok(()),
        Err(ArweaveError::Timeout { .. }) => {
            let wait = Duration::from_secs(if local { 1800 } else { 300 });
            tracing::info!(tx = %header.id, "no answer to the header yet; asking whether the gateway took it");
            let deadline = Instant::now() + wait;
            loop {
                if cancelled() {
                    return Err(cancelled_error());
                }
                match gateway.knows(&header.id) {
                    Ok(true) => return Ok(()),
                    Ok(false) | Err(ArweaveError::Timeout { .. }) if Instant::now() < deadline => {
                        std::thread::sleep(Duration::from_secs(2));
                    }
                    Ok(false) => {
                        return Err(ArweaveError::Gateway {
                            url: gateway.url().to_owned(),
                            endpoint: "/tx".into(),
                            reason: format!(
                                "it never answered the header of {} and does not hold it after {} s; run the publish again (the same header is sent again, not paid twice)",
                                header.id,
                                wait.as_secs()
                            ),
                        }
                        .into());
                    }
                    Err(e) => return Err(e.into()),
                }
            }
        }
        Err(e) => Err(e.into()),
    }
}

/// Waits for the transaction to be in a block: a local gateway has no miners, so it is asked
/// to mine; on a real network the wait is `wait` and a pending transaction is not an error.
fn confirm(
    gateway: &Gateway,
    id: &str,
    local: bool,
    wait: Duration,
    cancelled: &dyn Fn() -> bool,
) -> Result<bool, PublishError> {
    let deadline = Instant::now()
        + if local {
            Duration::from_secs(1800)
        } else {
            wait
        };
    loop {
        if cancelled() {
            return Err(cancelled_error());
        }
        if local {
            // arlocal answers a mine that races its own unbundling with an error; the next
            // one goes through.
            if let Err(e) = gateway.mine() {
                tracing::debug!("mine: {e}");
            }
        }
        // A busy local gateway (unpacking a large bundle) answers late; that is not a failure.
        let status = match gateway.status(id) {
            Err(ArweaveError::Timeout { .. }) => mintframe_arweave::gateway::TxStatus::Pending,
            other => other?,
        };
        match status {
            mintframe_arweave::gateway::TxStatus::Confirmed { .. } => return Ok(true),
            _ if Instant::now() > deadline => {
                if local {
                    return Err(ArweaveError::Gateway {
                        url: gateway.url().to_owned(),
                        endpoint: format!("/tx/{id}/status"),
                        reason: "the local gateway did not put the transaction in a block".into(),
                    }
                    .into());
                }
                return Ok(false);
            }
            _ => std::thread::sleep(Duration::from_millis(if local { 300 } else { 2000 })),
        }
    }
}

/// Checks that the gateway's index holds every id computed offline under our wallet, then reads
/// every file back by id and every metadata path through its manifest, comparing bytes.
fn verify(
    plan: &ArweavePlan,
    gateway: &Gateway,
    local: bool,
    on_step: &dyn Fn(Step),
    cancelled: &dyn Fn() -> bool,
) -> Result<(usize, usize), PublishError> {
    let ours: BTreeSet<&str> = plan.items.iter().map(|i| i.id.as_str()).collect();
    let wanted: Vec<String> = ours.iter().map(|s| (*s).to_owned()).collect();
    // A gateway indexes a bundle's items some time after it unpacks it.
    let deadline = Instant::now() + Duration::from_secs(if local { 60 } else { 600 });
    let theirs = loop {
        if cancelled() {
            return Err(cancelled_error());
        }
        let theirs = gateway.indexed(&wanted)?;
        if theirs.len() >= wanted.len() || Instant::now() > deadline {
            break theirs;
        }
        std::thread::sleep(Duration::from_millis(if local { 500 } else { 5000 }));
    };
    let found: BTreeSet<&str> = theirs
        .iter()
        .filter(|(_, owner)| owner.is_empty() || *owner == plan.owner)
        .map(|(id, _)| id.as_str())
        .collect();
    if found != ours {
        let missing: Vec<&&str> = ours.difference(&found).take(5).collect();
        return Err(ArweaveError::Gateway {
            url: gateway.url().to_owned(),
            endpoint: "/graphql".into(),
            reason: format!(
                "the gateway does not index {} of the {} ids computed offline under wallet {} (first: {missing:?})",
                ours.len() - found.len(),
                ours.len(),
                plan.owner
            ),
        }
        .into());
    }
    // A manifest's own id serves its index (or the manifest), so manifests are checked through
    // their paths: every metadata path, and the media paths links go through.
    let mut checks: Vec<(String, PathBuf)> = plan
        .items
        .iter()
        .filter(|i| i.content_type != manifest::CONTENT_TYPE)
        .map(|i| (i.id.clone(), plan.dir.join(&i.file)))
        .collect();
    let through = |manifest: &str, f: &str| format!("{manifest}/{}", uri_path(f));
    if let Some(first) = plan.media_files.first() {
        checks.push((
            through(&plan.media_manifest, first),
            plan.dir.join("media").join(first),
        ));
    }
    for f in plan
        .metadata_files
        .iter()
        .chain(std::iter::once(&"collection.json".to_owned()))
    {
        checks.push((
            through(&plan.metadata_manifest, f),
            plan.dir.join("metadata").join(f),
        ));
    }
    for f in plan.media_files.iter().filter(|f| f.contains('/')) {
        checks.push((
            through(&plan.media_manifest, f),
            plan.dir.join("media").join(f),
        ));
    }
    let total = checks.len();
    for (done, (path, local_file)) in checks.iter().enumerate() {
        if done % 50 == 0 {
            if cancelled() {
                return Err(cancelled_error());
            }
            on_step(Step::Verifying { done, total });
        }
        let want = file_sha256(local_file)?;
        let size = std::fs::metadata(local_file)
            .map_err(|e| io_err("cannot read", local_file, e))?
            .len();
        match gateway.data_sha256(path, size)? {
            Some((got, _)) if got == want => {}
            Some(_) => {
                return Err(ArweaveError::Gateway {
                    url: gateway.url().to_owned(),
                    endpoint: format!("/{path}"),
                    reason: format!("does not hold the bytes of {}", local_file.display()),
                }
                .into());
            }
            None => {
                return Err(ArweaveError::Gateway {
                    url: gateway.url().to_owned(),
                    endpoint: format!("/{path}"),
                    reason: format!("has nothing there (expected {})", local_file.display()),
                }
                .into());
            }
        }
    }
    on_step(Step::Verifying { done: total, total });
    Ok((found.len(), total))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::collection::{BundleFile, TokenSource};
    use mintframe_types::{CidProfile, Layout};

    fn wallet() -> Wallet {
        Wallet::from_jwk(include_str!("../../arweave/testdata/test-wallet.json")).expect("wallet")
    }

    fn opts() -> PlanOptions {
        PlanOptions {
            max_file_bytes: 1 << 20,
            gateway: "http://127.0.0.1:1984".into(),
            public_gateway: PUBLIC_GATEWAY.into(),
        }
    }

    fn spec(dir: &Path, standard: Standard) -> CollectionSpec {
        let tokens = (0..3u8)
            .map(|i| {
                let p = dir.join(format!("src{i}"));
                std::fs::write(&p, [i; 300]).expect("write");
                TokenSource {
                    image: p,
                    image_ext: "png".into(),
                    animation: None,
                    name: format!("Slime #{i}"),
                    description: "A slime".into(),
                    attributes: vec![],
                    bundle: Vec::new(),
                }
            })
            .collect();
        CollectionSpec {
            name: "Slimes".into(),
            description: "Bouncy".into(),
            symbol: "SLM".into(),
            external_url: None,
            standard,
            layout: Layout::NumberedJson,
            profile: CidProfile::UnixfsV0_2015,
            tokens,
        }
    }

    fn read_json(p: &Path) -> serde_json::Value {
        serde_json::from_slice(&std::fs::read(p).expect("read")).expect("json")
    }

    #[test]
    fn metadata_links_to_ids_signed_offline_and_a_second_plan_gives_the_same_ids() {
        let t = tempfile::tempdir().expect("tmp");
        let w = wallet();
        let s = spec(t.path(), Standard::Erc721);
        let a = plan(&s, &t.path().join("a"), &w, &opts()).expect("plan");
        assert!(a.findings.is_empty(), "{:?}", a.findings);
        // 3 images, 3 metadata files, collection.json, 2 manifests.
        assert_eq!(a.items.len(), 9);
        let image = a
            .items
            .iter()
            .find(|i| i.file == "media/1.png")
            .expect("item");
        let meta = read_json(&a.dir.join("metadata/1.json"));
        assert_eq!(meta["image"], format!("ar://{}", image.id));
        assert_eq!(a.base_uri, format!("ar://{}/", a.metadata_manifest));
        assert_eq!(
            a.token_uris[2],
            format!("ar://{}/2.json", a.metadata_manifest)
        );
        // The manifest maps each path to the item signed for that file.
        let m = read_json(&a.dir.join("arweave/metadata.manifest.json"));
        let item = a
            .items
            .iter()
            .find(|i| i.file == "metadata/2.json")
            .expect("item");
        assert_eq!(m["paths"]["2.json"]["id"], item.id.as_str());
        assert_eq!(m["index"]["path"], "collection.json");
        // Every item in the bundle parses and verifies, under the id the plan gave it.
        let bundle = std::fs::read(&a.bundle).expect("bundle");
        assert_eq!(bundle.len() as u64, a.bundle_size);
        let count = u64::from_le_bytes(bundle[..8].try_into().expect("8"));
        assert_eq!(count, 9);
        let mut at = 32 + 64 * count as usize;
        for k in 0..count as usize {
            let size =
                u64::from_le_bytes(bundle[32 + 64 * k..][..8].try_into().expect("8")) as usize;
            let id = b64::encode(&bundle[32 + 64 * k + 32..][..32]);
            let parsed = ans104::parse(&bundle[at..at + size]).expect("item");
            assert!(parsed.valid, "item {k}");
            assert_eq!(b64::encode(&parsed.id), id);
            assert!(a.items.iter().any(|i| i.id == id));
            at += size;
        }
        assert_eq!(at, bundle.len());
        // Planned again (elsewhere): the same ids, so a resumed upload keeps its metadata.
        let b = plan(&s, &t.path().join("b"), &w, &opts()).expect("plan");
        assert_eq!(a.items, b.items);
        assert_eq!(a.base_uri, b.base_uri);
        // The plan in a folder is found again, for the same wallet and options only.
        assert_eq!(reuse(&a.dir, &w, &opts()), Some(a.clone()));
        let other = PlanOptions {
            max_file_bytes: 7,
            ..opts()
        };
        assert_eq!(reuse(&a.dir, &w, &other), None);
        std::fs::write(&a.bundle, b"cut short").expect("write");
        assert_eq!(reuse(&a.dir, &w, &opts()), None);
    }

    #[test]
    fn metaplex_links_through_the_public_gateway_and_erc1155_keeps_its_id_template() {
        let t = tempfile::tempdir().expect("tmp");
        let w = wallet();
        let mp = plan(
            &spec(t.path(), Standard::Metaplex),
            &t.path().join("m"),
            &w,
            &opts(),
        )
        .expect("plan");
        let meta = read_json(&mp.dir.join("metadata/0.json"));
        let id = &mp
            .items
            .iter()
            .find(|i| i.file == "media/0.png")
            .expect("item")
            .id;
        assert_eq!(meta["image"], format!("https://arweave.net/{id}?ext=png"));
        assert_eq!(meta["properties"]["files"][0]["uri"], meta["image"]);
        assert!(mp.findings.iter().all(|f| !f.error), "{:?}", mp.findings);
        let e = plan(
            &spec(t.path(), Standard::Erc1155),
            &t.path().join("e"),
            &w,
            &opts(),
        )
        .expect("plan");
        assert_eq!(
            e.base_uri,
            format!("ar://{}/{{id}}.json", e.metadata_manifest)
        );
    }

    #[test]
    fn a_file_over_the_limit_and_a_path_that_would_leave_the_collection_are_refused() {
        let t = tempfile::tempdir().expect("tmp");
        let w = wallet();
        let mut s = spec(t.path(), Standard::Erc721);
        let small = PlanOptions {
            max_file_bytes: 100,
            ..opts()
        };
        let err = plan(&s, &t.path().join("a"), &w, &small).expect_err("too large");
        assert!(err.to_string().contains("over the 100-byte limit"), "{err}");
        s.tokens[0].bundle.push(BundleFile {
            path: t.path().join("src0"),
            name: "../escape.png".into(),
        });
        let err = plan(&s, &t.path().join("b"), &w, &opts()).expect_err("refused");
        assert!(err.to_string().contains("escape.png"), "{err}");
        for p in ["b/escape.png", "b/media/escape.png", "escape.png"] {
            assert!(!t.path().join(p).exists(), "{p}");
        }
    }
}
