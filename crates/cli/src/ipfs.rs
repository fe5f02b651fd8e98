//! `mintframe ipfs`: the local node, offline CIDs and CARs.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Result;
use clap::Subcommand;
use indicatif::ProgressBar;
use mintframe_studio::Settings;
use mintframe_types::CidProfile;

use crate::runtime;

#[derive(Debug, Subcommand)]
pub(crate) enum IpfsCmd {
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
        /// Kubo's import profile (`ipfs add --profile`); overrides --cid-version.
        #[arg(long, value_enum)]
        profile: Option<CidProfile>,
        /// Wrap in a folder, as `ipfs add --wrap-with-directory`.
        #[arg(long, short = 'w')]
        wrap_with_directory: bool,
    },
    /// Add a file or folder to the node, ending on the CID computed offline: through `add`
    /// where the node builds the same DAG, as a CAR import where it cannot (a folder sharded
    /// as Kubo shards it, on js-ipfs). Pinned.
    Add {
        path: PathBuf,
        /// Kubo's import profile (`ipfs add --profile`).
        #[arg(long, value_enum, default_value_t = CidProfile::UnixfsV0_2015)]
        profile: CidProfile,
    },
    /// CAR files: make one offline, import one into the node, export a CID from it.
    #[command(subcommand)]
    Car(CarCmd),
}

#[derive(Debug, Subcommand)]
pub(crate) enum CarCmd {
    /// Write a CARv1 of a file or folder offline; prints the root CID.
    Make {
        path: PathBuf,
        #[arg(long, short = 'o')]
        out: PathBuf,
        #[arg(long, value_parser = clap::value_parser!(u8).range(0..=1), default_value_t = 0)]
        cid_version: u8,
        /// Kubo's import profile; overrides --cid-version.
        #[arg(long, value_enum)]
        profile: Option<CidProfile>,
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

pub(crate) fn ipfs(settings: &Settings, cmd: IpfsCmd) -> Result<()> {
    let chosen = |version: u8, profile: Option<CidProfile>| {
        profile.unwrap_or(if version == 1 {
            CidProfile::CidV1
        } else {
            CidProfile::UnixfsV0_2015
        })
    };
    if let IpfsCmd::Cid {
        path,
        cid_version,
        profile,
        wrap_with_directory,
    } = &cmd
    {
        println!(
            "{}",
            mintframe_studio::ipfs_cid(path, chosen(*cid_version, *profile), *wrap_with_directory)?
        );
        return Ok(());
    }
    if let IpfsCmd::Car(CarCmd::Make {
        path,
        out,
        cid_version,
        profile,
    }) = &cmd
    {
        println!(
            "{}",
            mintframe_studio::ipfs_car_make(path, chosen(*cid_version, *profile), out)?
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
        IpfsCmd::Add { path, profile } => {
            let put = rt.block_on(mintframe_studio::ipfs_add(settings, &path, profile))?;
            match &put.imported_car {
                None => eprintln!("added through the node's add ({profile})"),
                Some(why) => eprintln!("imported as a CAR ({profile}): {why}"),
            }
            println!("{}", put.cid);
        }
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
