//! `mintframe arweave`: the wallet Mintframe signs Arweave uploads with, its balance, and a
//! local test gateway's faucet.

use std::path::PathBuf;

use anyhow::Result;
use clap::Subcommand;
use mintframe_studio::{App, Settings};

#[derive(Debug, Subcommand)]
pub(crate) enum ArweaveCmd {
    /// The Arweave wallet (a JWK key file from arweave.app, Wander/ArConnect or arweave-js).
    #[command(subcommand)]
    Wallet(WalletCmd),
    /// Give the wallet tokens on a local test gateway (arlocal); refused on a real network.
    Mint {
        /// How much, in AR (e.g. 10 or 0.5).
        ar: String,
        #[arg(long, value_name = "URL")]
        gateway: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
pub(crate) enum WalletCmd {
    /// Check a key file and keep it: in the OS keyring (the file can then be put away), or,
    /// with --keep-file, read from where it is each time (it must be yours alone, chmod 600).
    Import {
        file: PathBuf,
        #[arg(long)]
        keep_file: bool,
    },
    /// The wallet's address and where its key is kept.
    Show {
        #[command(flatten)]
        out: crate::Output,
    },
    /// The wallet's balance on a gateway (default: $MINTFRAME_ARWEAVE_GATEWAY, else the local
    /// one `scripts/arlocal up` starts).
    Balance {
        #[arg(long, value_name = "URL")]
        gateway: Option<String>,
        #[command(flatten)]
        out: crate::Output,
    },
}

pub(crate) fn arweave(settings: &Settings, cmd: ArweaveCmd) -> Result<()> {
    let app = App::open(settings.clone())?;
    match cmd {
        ArweaveCmd::Wallet(WalletCmd::Import { file, keep_file }) => {
            let info = app.arweave_wallet_import(&file, keep_file)?;
            println!("address   {}", info.address);
            println!("kept in   {}", info.kept_in);
            if !keep_file {
                println!(
                    "the key is in the keyring now; keep {} somewhere safe (it is the only other copy)",
                    file.display()
                );
            }
        }
        ArweaveCmd::Wallet(WalletCmd::Show { out }) => {
            let info = app.arweave_wallet_info()?;
            if out.json {
                println!("{}", serde_json::to_string_pretty(&info)?);
            } else {
                println!("address   {}", info.address);
                println!("kept in   {}", info.kept_in);
            }
        }
        ArweaveCmd::Wallet(WalletCmd::Balance { gateway, out }) => {
            let url = mintframe_studio::arweave::gateway_url(gateway.as_deref());
            let (address, winston) = app.arweave_balance(&url)?;
            if out.json {
                println!(
                    "{}",
                    serde_json::json!({"gateway": url, "address": address, "winston": winston.to_string(), "ar": mintframe_studio::arweave::ar(winston)})
                );
            } else {
                println!(
                    "{address}  {}  ({winston} winston) on {url}",
                    mintframe_studio::arweave::ar(winston)
                );
            }
        }
        ArweaveCmd::Mint { ar, gateway } => {
            let url = mintframe_studio::arweave::gateway_url(gateway.as_deref());
            let balance = app.arweave_mint(&url, mintframe_studio::arweave::parse_ar(&ar)?)?;
            println!(
                "balance   {} on {url}",
                mintframe_studio::arweave::ar(balance)
            );
        }
    }
    Ok(())
}
