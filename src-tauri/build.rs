//! Builds the Tauri context. Our commands are declared in an app manifest, so each needs an
//! explicit permission in `capabilities/`: the webview can call nothing it was not granted.

/// Kept in step with `collect_commands!` in main.rs by the `commands_have_permissions` test
/// (a command missing here has no permission, so the capability naming it fails to build).
const COMMANDS: &[&str] = &[
    "doctor",
    "library_list",
    "library_check",
    "library_repair",
    "asset_detail",
    "jobs_list",
    "ipfs_start",
    "asset_image",
    "asset_preview",
    "asset_animation",
    "asset_open_preview",
    "character_open_live_preview",
    "clip_start",
    "clip_loop_score",
    "rife_models",
    "interpolate_start",
    "shots_start",
    "shots_parse",
    "shots_toml",
    "collection_check",
    "collection_start",
    "collection_report",
    "farm_status",
    "asset_thumbnail",
    "publish_check",
    "publish_collection",
    "publish_outcome",
    "traits_parse",
    "jobs_follow",
    "publish_list",
    "pinning_services",
    "pinning_service_add",
    "pinning_service_remove",
    "arweave_wallet",
    "arweave_wallet_import",
    "arweave_quote",
    "arweave_mint",
    "models_list",
    "generate",
    "process_assets",
    "builtin_palette",
    "pack_sheet",
    "asset_export",
    "job_cancel",
    "train_start",
    "train_status",
    "train_sample",
    "loras_list",
    "pose_template",
    "pose_template_save",
    "character_start",
    "character_reroll",
    "character_report",
];

fn main() {
    let attrs = tauri_build::Attributes::new()
        .app_manifest(tauri_build::AppManifest::new().commands(COMMANDS));
    if let Err(e) = tauri_build::try_build(attrs) {
        // A build script reports failure by panicking; the message is what cargo prints.
        panic!("tauri build step failed: {e:#}");
    }
}
