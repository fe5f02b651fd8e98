//! `mintframe ipfs`: the local node, offline CIDs and CARs.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Result;
use clap::Subcommand;
use indicatif::ProgressBar;
use mintframe_studio::Settings;

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
        /// Wrap in a folder, as `ipfs add --wrap-with-directory`.
        #[arg(long, short = 'w')]
        wrap_with_directory: bool,
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
