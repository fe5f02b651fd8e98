//! The one integration-test binary (each binary links everything, so there is one).

#![allow(clippy::unwrap_used)]

mod arweave;
mod characters;
mod cli;
mod deps;
mod farm;
mod faults;
mod gui;
mod hardening;
mod ipfs;
mod models;
mod offline_model;
mod preview;
mod publish;
mod render;
mod sheets;
mod sprites;
mod tiles;
mod train;
mod video;
