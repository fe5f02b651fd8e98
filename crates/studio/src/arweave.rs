//! Arweave in the studio: the wallet (imported once, kept in the OS keyring or a file only the
//! user can read, never in the library or a log), quotes before anything is spent, and
//! collections published to a gateway as one signed bundle (`mintframe-publish::arweave`).

use std::path::{Path, PathBuf};
use std::time::Duration;

use mintframe_arweave::{Gateway, Wallet};
use mintframe_jobs::JobCtx;
use mintframe_publish::arweave::{self as ar, ArweavePlan, PlanOptions};
use mintframe_types::{
    ArweaveQuote, ArweaveReport, ArweaveTarget, ArweaveWalletInfo, PublishReport, PublishSpec,
};

use crate::publish::Planned;

use crate::{App, StudioError};
pub use mintframe_arweave::{WINSTON_PER_AR, ar};

const WALLET_ACCOUNT: &str = "arweave:wallet";
/// A JWK file to sign with, for CI and servers (checked like a token file).
pub const WALLET_ENV: &str = "MINTFRAME_ARWEAVE_WALLET";
/// The gateway used when none is named.
pub const GATEWAY_ENV: &str = "MINTFRAME_ARWEAVE_GATEWAY";
/// `scripts/arlocal up`'s gateway.
pub const LOCAL_GATEWAY: &str = "http://127.0.0.1:1984";
/// The largest file a publish signs (bundlers take up to a few GiB per item; larger clips are
/// better cut or re-encoded than held in one item).
const DEFAULT_MAX_FILE_BYTES: u64 = 2 << 30;

/// The gateway to use: the one named, else `$MINTFRAME_ARWEAVE_GATEWAY`, else the local one.
pub fn gateway_url(named: Option<&str>) -> String {
    named
        .map(str::to_owned)
        .filter(|g| !g.trim().is_empty())
        .or_else(|| {
            std::env::var(GATEWAY_ENV)
                .ok()
                .filter(|g| !g.trim().is_empty())
        })
        .unwrap_or_else(|| LOCAL_GATEWAY.to_owned())
}

/// How long one request to a gateway may take (`MINTFRAME_ARWEAVE_TIMEOUT_SECS`, default 30).
fn timeout() -> Duration {
    Duration::from_secs(
        std::env::var("MINTFRAME_ARWEAVE_TIMEOUT_SECS")
            .ok()
            .and_then(|v| v.trim().parse().ok())
            .filter(|s| *s > 0)
            .unwrap_or(30),
    )
}

fn gateway(url: &str) -> Result<Gateway, StudioError> {
    Ok(Gateway::new(url, timeout()).map_err(mintframe_publish::PublishError::from)?)
}

#[derive(Debug, Default, serde::Serialize, serde::Deserialize)]
struct Config {
    /// Where no keyring persists: the JWK file the user keeps (absolute).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    wallet_file: Option<PathBuf>,
}

fn wallet_error(e: mintframe_arweave::ArweaveError) -> StudioError {
    StudioError::Publish(e.into())
}

impl App {
    fn arweave_config_path(&self) -> PathBuf {
        self.settings.data_dir.join("arweave.json")
    }

    fn arweave_config(&self) -> Result<Config, StudioError> {
        match std::fs::read(self.arweave_config_path()) {
            Ok(b) => serde_json::from_slice(&b)
                .map_err(|e| StudioError::Settings(format!("arweave.json: {e}"))),
            Err(_) => Ok(Config::default()),
        }
    }

    /// Imports a JWK key file: checked to be a 4096-bit RSA wallet, then kept in the OS keyring
    /// (`keep_file`: left where it is, and read from there each time; it must be the user's
    /// alone, like an SSH key).
    pub fn arweave_wallet_import(
        &self,
        path: &Path,
        keep_file: bool,
    ) -> Result<ArweaveWalletInfo, StudioError> {
        let abs = std::path::absolute(path).map_err(|source| StudioError::Io {
            action: "cannot resolve the key file",
            path: path.to_owned(),
            source,
        })?;
        let text = if keep_file {
            crate::publish::read_secret_file(&abs, "key file")?
        } else {
            std::fs::read_to_string(&abs).map_err(|source| StudioError::Io {
                action: "cannot read the key file",
                path: abs.clone(),
                source,
            })?
        };
        let wallet = Wallet::from_jwk(&text).map_err(wallet_error)?;
        let kept_in = if keep_file {
            let cfg = Config {
                wallet_file: Some(abs.clone()),
            };
            let text = serde_json::to_vec_pretty(&cfg)
                .map_err(|e| StudioError::Settings(e.to_string()))?;
            crate::paths::write_whole(&self.arweave_config_path(), &text)?;
            format!("file {}", abs.display())
        } else {
            crate::secrets::set(WALLET_ACCOUNT, text.trim()).map_err(|e| match e {
                StudioError::NoKeyring(why) => StudioError::NoKeyring(format!(
                    "{why}. Keep the key file yourself instead: `mintframe arweave wallet import {} --keep-file` (chmod 600), or set ${WALLET_ENV} to its path",
                    abs.display()
                )),
                other => other,
            })?;
            // A file kept earlier is no longer the wallet.
            let _ = std::fs::remove_file(self.arweave_config_path());
            "keyring".to_owned()
        };
        tracing::info!(address = %wallet.address(), "Arweave wallet imported");
        Ok(ArweaveWalletInfo {
            address: wallet.address(),
            kept_in,
        })
    }

    /// The wallet to sign with: `$MINTFRAME_ARWEAVE_WALLET`, else the kept file, else the
    /// keyring.
    pub(crate) fn arweave_wallet(&self) -> Result<(Wallet, String), StudioError> {
        if let Ok(p) = std::env::var(WALLET_ENV)
            && !p.trim().is_empty()
        {
            let text = crate::publish::read_secret_file(Path::new(p.trim()), "key file")?;
            return Ok((
                Wallet::from_jwk(&text).map_err(wallet_error)?,
                "environment".into(),
            ));
        }
        if let Some(f) = self.arweave_config()?.wallet_file {
            let text = crate::publish::read_secret_file(&f, "key file")?;
            return Ok((
                Wallet::from_jwk(&text).map_err(wallet_error)?,
                format!("file {}", f.display()),
            ));
        }
        match crate::secrets::get(WALLET_ACCOUNT)? {
            Some(text) => Ok((
                Wallet::from_jwk(&text).map_err(wallet_error)?,
                "keyring".into(),
            )),
            None => Err(StudioError::Secret(format!(
                "no Arweave wallet: import your key file once with `mintframe arweave wallet import KEY.json` (or set ${WALLET_ENV} to its path)"
            ))),
        }
    }

    pub fn arweave_wallet_info(&self) -> Result<ArweaveWalletInfo, StudioError> {
        let (w, kept_in) = self.arweave_wallet()?;
        Ok(ArweaveWalletInfo {
            address: w.address(),
            kept_in,
        })
    }

    /// The wallet's address and balance (winston) on `gateway`.
    pub fn arweave_balance(&self, gateway_url: &str) -> Result<(String, u128), StudioError> {
        let (w, _) = self.arweave_wallet()?;
        let g = gateway(gateway_url)?;
        let b = g.balance(&w.address()).map_err(wallet_error)?;
        Ok((w.address(), b))
    }

    /// A local test gateway's faucet (arlocal): refused on any other network.
    pub fn arweave_mint(&self, gateway_url: &str, winston: u128) -> Result<u128, StudioError> {
        let (w, _) = self.arweave_wallet()?;
        let g = gateway(gateway_url)?;
        if !g.is_local().map_err(wallet_error)? {
            return Err(StudioError::Settings(format!(
                "{gateway_url} is not a local test gateway: tokens there are bought, not minted"
            )));
        }
        g.mint(&w.address(), winston).map_err(wallet_error)
    }

    /// Signs the collection offline: every id, both manifests, metadata with final links.
    pub fn arweave_plan(&self, spec: &PublishSpec) -> Result<ArweavePlan, StudioError> {
        let target = spec.arweave.clone().unwrap_or(ArweaveTarget {
            gateway: String::new(),
            max_winston: None,
        });
        let (wallet, _) = self.arweave_wallet()?;
        let (cspec, dir) = self.collection_spec(spec)?;
        let opts = PlanOptions {
            max_file_bytes: max_file_bytes(),
            gateway: gateway_url(Some(&target.gateway)),
            public_gateway: ar::PUBLIC_GATEWAY.to_owned(),
        };
        // The staging folder is named by a hash of the assets and the spec: a plan there made
        // with the same wallet and options is this plan.
        if let Some(plan) = ar::reuse(&dir, &wallet, &opts) {
            return Ok(plan);
        }
        Ok(ar::plan(&cspec, &dir, &wallet, &opts)?)
    }

    /// What publishing the collection costs on its gateway, and whether the wallet can pay.
    pub fn arweave_quote(&self, spec: &PublishSpec) -> Result<ArweaveQuote, StudioError> {
        let plan = self.arweave_plan(spec)?;
        let url = gateway_url(spec.arweave.as_ref().map(|a| a.gateway.as_str()));
        let g = gateway(&url)?;
        let q = ar::quote(&plan, &g)?;
        Ok(ArweaveQuote {
            local: g.is_local().map_err(wallet_error)?,
            gateway: url,
            address: q.address,
            balance_winston: q.balance.to_string(),
            price_winston: q.price.to_string(),
            balance_ar: mintframe_arweave::ar(q.balance),
            price_ar: mintframe_arweave::ar(q.price),
            bytes: q.bytes,
            enough: q.balance >= q.price,
        })
    }

    /// The pre-mint report of an Arweave publish (ids and links as they will be).
    pub(crate) fn arweave_check(&self, spec: &PublishSpec) -> Result<PublishReport, StudioError> {
        let plan = self.arweave_plan(spec)?;
        let url = gateway_url(spec.arweave.as_ref().map(|a| a.gateway.as_str()));
        Ok(arweave_report(&plan, None, "planned", &url, None))
    }

    /// Publishes to Arweave in one pass and records it; running it again goes on where an
    /// interrupted run stopped.
    pub(crate) fn publish_via_arweave(
        &self,
        spec: &PublishSpec,
        ctx: &JobCtx,
    ) -> Result<PublishReport, StudioError> {
        ctx.progress("sign every file", 0, 0);
        let plan = self.arweave_plan(spec)?;
        ar::refuse_errors(&plan)?;
        ctx.check().map_err(|_| StudioError::Cancelled)?;
        let url = gateway_url(spec.arweave.as_ref().map(|a| a.gateway.as_str()));
        let g = gateway(&url)?;
        let (wallet, _) = self.arweave_wallet()?;
        let planned = Planned {
            dir: &plan.dir,
            media_root: &plan.media_manifest,
            metadata_root: &plan.metadata_manifest,
            plan: serde_json::to_value(&plan).unwrap_or_default(),
        };
        let record = crate::publish::Record::begin(self, spec, planned, &format!("arweave:{url}"))?;
        let on_step = |step: ar::Step| match step {
            ar::Step::Hashing => ctx.progress("hash the bundle", 0, 0),
            ar::Step::Chunks { sent, total } => ctx.progress("upload chunks", sent, total),
            ar::Step::Confirming => ctx.progress("wait for a block", 0, 0),
            ar::Step::Verifying { done, total } => {
                ctx.progress("read back", done as u64, total as u64)
            }
        };
        let cancelled = || ctx.check().is_err();
        let max_price = match spec.arweave.as_ref().and_then(|a| a.max_winston.as_deref()) {
            Some(w) => Some(w.trim().parse::<u128>().map_err(|_| {
                StudioError::Settings(format!("{w:?} is not an amount of winston"))
            })?),
            None => None,
        };
        let opts = ar::PublishOptions {
            max_price,
            confirm_wait: Duration::from_secs(
                std::env::var("MINTFRAME_ARWEAVE_CONFIRM_SECS")
                    .ok()
                    .and_then(|v| v.trim().parse().ok())
                    .unwrap_or(20),
            ),
        };
        let result = ar::publish(&plan, &g, &wallet, &opts, &on_step, &cancelled).map_err(|e| {
            if ctx.check().is_err() {
                StudioError::Cancelled
            } else {
                StudioError::from(e)
            }
        });
        let published = result.map(|o| {
            let status = if o.confirmed { "published" } else { "pending" };
            let mut r = arweave_report(&plan, Some(record.id), status, &url, Some(&o));
            r.notes = o.notes.clone();
            r
        });
        record.finish(published)
    }
}

/// `1.5` (AR) as winston, exactly: no floating point between the user and a payment.
pub fn parse_ar(text: &str) -> Result<u128, StudioError> {
    let t = text.trim();
    let (whole, frac) = t.split_once('.').unwrap_or((t, ""));
    let bad = || {
        StudioError::Settings(format!(
            "{text:?} is not an amount of AR (e.g. 10 or 0.25; at most 12 decimals)"
        ))
    };
    if whole.is_empty() && frac.is_empty()
        || !whole.chars().all(|c| c.is_ascii_digit())
        || !frac.chars().all(|c| c.is_ascii_digit())
        || frac.len() > 12
    {
        return Err(bad());
    }
    let whole: u128 = if whole.is_empty() {
        0
    } else {
        whole.parse().map_err(|_| bad())?
    };
    let frac: u128 = format!("{frac:0<12}").parse().map_err(|_| bad())?;
    whole
        .checked_mul(WINSTON_PER_AR)
        .and_then(|w| w.checked_add(frac))
        .ok_or_else(bad)
}

fn max_file_bytes() -> u64 {
    std::env::var("MINTFRAME_ARWEAVE_MAX_FILE_MIB")
        .ok()
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map_or(DEFAULT_MAX_FILE_BYTES, |m| m << 20)
}

fn arweave_report(
    plan: &ArweavePlan,
    record: Option<i64>,
    status: &str,
    gateway: &str,
    outcome: Option<&ar::Outcome>,
) -> PublishReport {
    let distinct: std::collections::BTreeSet<&str> =
        plan.items.iter().map(|i| i.id.as_str()).collect();
    let view = format!(
        "{}/{}/",
        gateway.trim_end_matches('/'),
        plan.metadata_manifest
    );
    PublishReport {
        record_id: record,
        status: status.into(),
        media_cid: String::new(),
        metadata_cid: String::new(),
        base_uri: plan.base_uri.clone(),
        token_uris: plan.token_uris.clone(),
        contract_uri: plan.contract_uri.clone(),
        gateway_url: view,
        media_car: String::new(),
        metadata_car: String::new(),
        findings: crate::publish::findings(&plan.findings),
        uploaded_media: outcome.is_some_and(|o| o.chunks_sent > 0),
        uploaded_metadata: outcome.is_some_and(|o| o.chunks_sent > 0),
        verified_files: outcome.map_or(0, |o| o.verified_files as u32),
        remote_pins: Vec::new(),
        profile: mintframe_types::CidProfile::UnixfsV0_2015,
        notes: Vec::new(),
        arweave: Some(ArweaveReport {
            gateway: gateway.to_owned(),
            address: plan.owner.clone(),
            media_manifest: plan.media_manifest.clone(),
            metadata_manifest: plan.metadata_manifest.clone(),
            items: distinct.len() as u32,
            bundle_bytes: plan.bundle_size,
            bundle_tx: outcome.map(|o| o.bundle_tx.clone()).unwrap_or_default(),
            price_winston: outcome.map(|o| o.price.to_string()).unwrap_or_default(),
            price_ar: outcome
                .map(|o| mintframe_arweave::ar(o.price))
                .unwrap_or_default(),
            chunks_total: outcome.map_or(0, |o| o.chunks_total as u32),
            chunks_sent: outcome.map_or(0, |o| o.chunks_sent as u32),
            chunks_skipped: outcome.map_or(0, |o| o.chunks_skipped as u32),
            confirmed: outcome.is_some_and(|o| o.confirmed),
            ids_checked: outcome.map_or(0, |o| o.ids_checked as u32),
            upload_secs: outcome.map_or(0.0, |o| o.upload_secs),
            confirm_secs: outcome.map_or(0.0, |o| o.confirm_secs),
            verify_secs: outcome.map_or(0.0, |o| o.verify_secs),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amounts_of_ar_become_exact_winston() {
        assert_eq!(parse_ar("1").expect("ok"), 1_000_000_000_000);
        assert_eq!(parse_ar("0.5").expect("ok"), 500_000_000_000);
        assert_eq!(parse_ar(".000000000001").expect("ok"), 1);
        for bad in ["", ".", "1.2.3", "-1", "1e3", "0.0000000000001"] {
            assert!(parse_ar(bad).is_err(), "{bad}");
        }
    }
}
