//! Publishing library assets as a collection: tokens from assets (a clip's poster frame in
//! `image`, the clip in `animation_url`), attributes from each recipe plus the user's traits, a
//! deterministic staging folder so a re-run resumes with the same CIDs, and a library record
//! for every publish.

use std::path::PathBuf;
use std::sync::Arc;

use mintframe_library::PublishItem;
pub use mintframe_publish::collection::Step;
use mintframe_publish::collection::{self, CollectionSpec, Layout, Plan, Standard, TokenSource};
use mintframe_publish::metadata::{Attribute, DisplayType};
use mintframe_publish::unixfs::CidVersion;
use mintframe_types::{PublishFinding, PublishReport, PublishSpec, TraitSpec};
use sha2::Digest;

use crate::{App, StudioError};

fn invalid(msg: impl Into<String>) -> StudioError {
    StudioError::Publish(mintframe_publish::PublishError::Invalid(vec![msg.into()]))
}

fn standard(s: &str) -> Result<Standard, StudioError> {
    match s {
        "erc721" | "erc-721" | "" => Ok(Standard::Erc721),
        "erc1155" | "erc-1155" => Ok(Standard::Erc1155),
        "metaplex" => Ok(Standard::Metaplex),
        other => Err(invalid(format!(
            "standard {other:?}: use erc721, erc1155 or metaplex"
        ))),
    }
}

fn layout(s: &str) -> Result<Layout, StudioError> {
    match s {
        "numbered" | "openzeppelin" | "" => Ok(Layout::Numbered),
        "numbered-json" | "json" => Ok(Layout::NumberedJson),
        "sugar" => Ok(Layout::Sugar),
        other => Err(invalid(format!(
            "layout {other:?}: use numbered, numbered-json or sugar"
        ))),
    }
}

fn version(v: u8) -> Result<CidVersion, StudioError> {
    match v {
        0 => Ok(CidVersion::V0),
        1 => Ok(CidVersion::V1),
        other => Err(invalid(format!("CID version {other}: use 0 or 1"))),
    }
}

/// A user trait as metadata: numbers as numbers, the display type checked later by validation.
fn user_attribute(t: &TraitSpec) -> Result<Attribute, StudioError> {
    let display_type = match t.display_type.as_deref() {
        None | Some("") => None,
        Some("number") => Some(DisplayType::Number),
        Some("boost_number") => Some(DisplayType::BoostNumber),
        Some("boost_percentage") => Some(DisplayType::BoostPercentage),
        Some("date") => Some(DisplayType::Date),
        Some(other) => {
            return Err(invalid(format!(
                "trait {:?}: display type {other:?} is not number, boost_number, boost_percentage or date",
                t.trait_type
            )));
        }
    };
    let value = if let Ok(n) = t.value.trim().parse::<i64>() {
        serde_json::json!(n)
    } else if let Ok(f) = t.value.trim().parse::<f64>()
        && f.is_finite()
    {
        serde_json::json!(f)
    } else {
        serde_json::json!(t.value)
    };
    Ok(Attribute {
        trait_type: t.trait_type.clone(),
        value,
        display_type,
        max_value: None,
    })
}

fn recipe_attributes(r: &mintframe_types::Recipe) -> Vec<Attribute> {
    let plain = |k: &str, v: serde_json::Value| Attribute {
        trait_type: k.into(),
        value: v,
        display_type: None,
        max_value: None,
    };
    let number = |k: &str, v: serde_json::Value| Attribute {
        display_type: Some(DisplayType::Number),
        ..plain(k, v)
    };
    let mut out = vec![
        plain("Model", serde_json::json!(r.model_id)),
        number("Seed", serde_json::json!(r.seed)),
        plain("Sampler", serde_json::json!(r.scheduler)),
        number("Steps", serde_json::json!(r.steps)),
        number("Guidance", serde_json::json!(r.guidance)),
    ];
    if let Some(l) = &r.license {
        out.push(plain("Licence", serde_json::json!(l)));
    }
    out
}

fn ext_of_mime(mime: &str) -> Option<&'static str> {
    Some(match mime {
        "image/png" => "png",
        "image/jpeg" => "jpg",
        "image/webp" => "webp",
        "image/gif" => "gif",
        "video/mp4" => "mp4",
        "video/webm" => "webm",
        _ => return None,
    })
}

impl App {
    /// Builds the collection offline: staging folder, every CID, metadata and the pre-mint
    /// findings. Nothing touches a node.
    pub fn publish_plan(&self, spec: &PublishSpec) -> Result<(CollectionSpec, Plan), StudioError> {
        if spec.asset_ids.is_empty() {
            return Err(invalid("pick at least one asset"));
        }
        let mut key = sha2::Sha256::new();
        key.update(serde_json::to_vec(spec).map_err(|e| invalid(e.to_string()))?);
        let mut details = Vec::new();
        let mut seen = std::collections::HashMap::new();
        for (i, id) in spec.asset_ids.iter().enumerate() {
            let d = self.asset(id)?;
            if let Some(first) = seen.insert(d.summary.id.to_string(), i) {
                return Err(invalid(format!(
                    "asset {} is listed twice (tokens {first} and {i}); each token needs its own asset",
                    d.summary.id
                )));
            }
            let main = d
                .files
                .iter()
                .find(|f| f.role == "main")
                .ok_or_else(|| invalid(format!("asset {} has no file", d.summary.id)))?;
            key.update(main.sha256.as_bytes());
            details.push(d);
        }
        let key = hex(&key.finalize()[..8]);
        let dir = self.settings.data_dir.join("publish").join(&key);
        let posters = dir.join("posters");
        std::fs::create_dir_all(&posters)
            .map_err(|e| invalid(format!("cannot create {}: {e}", posters.display())))?;
        let user: Vec<Attribute> = spec
            .traits
            .iter()
            .map(user_attribute)
            .collect::<Result<_, _>>()?;
        let mut tokens = Vec::new();
        for (i, d) in details.iter().enumerate() {
            let main = d
                .files
                .iter()
                .find(|f| f.role == "main")
                .ok_or_else(|| invalid(format!("asset {} has no file", d.summary.id)))?;
            let path = self.library.file_path(&main.sha256);
            let ext = ext_of_mime(&main.mime).ok_or_else(|| {
                invalid(format!(
                    "asset {} is {}, which marketplaces do not show",
                    d.summary.id, main.mime
                ))
            })?;
            let (image, image_ext, animation) =
                if main.mime == "image/gif" || main.mime.starts_with("video/") {
                    // The poster: the first frame, as a PNG.
                    let kind = if main.mime == "image/gif" {
                        "gif"
                    } else {
                        "video"
                    };
                    let seq = mintframe_media::load_sequence_as(&path, kind, None)
                        .map_err(|e| StudioError::Render(e.to_string()))?;
                    let first = seq
                        .frames
                        .first()
                        .ok_or_else(|| invalid(format!("asset {} has no frames", d.summary.id)))?;
                    let png = mintframe_media::encode_png_rgba(first)
                        .map_err(|e| StudioError::Render(e.to_string()))?;
                    let poster = posters.join(format!("{i}.png"));
                    std::fs::write(&poster, png)
                        .map_err(|e| invalid(format!("cannot write {}: {e}", poster.display())))?;
                    (poster, "png".to_owned(), Some((path, ext.to_owned())))
                } else {
                    (path, ext.to_owned(), None)
                };
            let mut attributes = d.recipe.as_ref().map(recipe_attributes).unwrap_or_default();
            attributes.extend(user.iter().cloned());
            tokens.push(TokenSource {
                image,
                image_ext,
                animation,
                name: format!("{} #{i}", spec.name.trim()),
                description: spec.description.clone(),
                attributes,
            });
        }
        let cspec = CollectionSpec {
            name: spec.name.clone(),
            description: spec.description.clone(),
            symbol: spec.symbol.clone(),
            external_url: spec.external_url.clone().filter(|u| !u.trim().is_empty()),
            standard: standard(&spec.standard)?,
            layout: layout(&spec.layout)?,
            cid_version: version(spec.cid_version)?,
            tokens,
        };
        let plan = collection::plan(&cspec, &dir)?;
        Ok((cspec, plan))
    }

    /// The pre-mint report: CIDs and links as they will be, and every finding. No node needed.
    pub fn publish_check(&self, spec: &PublishSpec) -> Result<PublishReport, StudioError> {
        let (_, plan) = self.publish_plan(spec)?;
        Ok(report(&plan, None, "planned", None))
    }

    /// Publishes to the configured node in one pass and records it. Running it again (after an
    /// interruption, or to check) resends nothing the node already holds pinned and ends with
    /// the same CIDs.
    pub fn publish_collection(
        &self,
        spec: &PublishSpec,
        on_step: Arc<dyn Fn(Step) + Send + Sync>,
    ) -> Result<PublishReport, StudioError> {
        let (cspec, plan) = self.publish_plan(spec)?;
        let errors = plan.errors();
        if !errors.is_empty() {
            // Refused before any record or upload: nothing happened that needs undoing.
            return Err(StudioError::Publish(
                mintframe_publish::PublishError::Invalid(
                    errors
                        .iter()
                        .map(|f| format!("{} {}: {}", f.file, f.field, f.message))
                        .collect(),
                ),
            ));
        }
        let api = self.settings.api()?;
        let target = format!("local:{api}");
        let key = plan
            .dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let detail = |status: &str, extra: serde_json::Value| {
            serde_json::json!({"key": key, "status": status, "spec": spec, "plan": plan, "outcome": extra})
                .to_string()
        };
        // One record per collection: a re-run continues the record it left.
        let existing = self.library.list_publishes()?.into_iter().find(|r| {
            r.target == target
                && serde_json::from_str::<serde_json::Value>(&r.detail)
                    .is_ok_and(|d| d["key"] == key)
        });
        let record = match existing {
            Some(r) => {
                self.library.update_publish(
                    r.id,
                    "uploading",
                    Some(&plan.metadata_cid),
                    &detail("uploading", serde_json::Value::Null),
                )?;
                r.id
            }
            None => {
                let items: Vec<PublishItem> = spec
                    .asset_ids
                    .iter()
                    .enumerate()
                    .map(|(i, a)| {
                        Ok(PublishItem {
                            asset_id: self.asset(a)?.summary.id.to_string(),
                            token_id: i as i64,
                            media_cid: Some(plan.media_cid.clone()),
                            metadata_cid: Some(plan.metadata_cid.clone()),
                        })
                    })
                    .collect::<Result<_, StudioError>>()?;
                self.library.insert_publish(
                    &target,
                    "uploading",
                    Some(&plan.metadata_cid),
                    &detail("uploading", serde_json::Value::Null),
                    &items,
                )?
            }
        };
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| StudioError::Task(e.to_string()))?;
        let result = rt.block_on(collection::publish(&plan, &api, cspec.cid_version, on_step));
        match result {
            Ok(outcome) => {
                let r = report(&plan, Some(record), "published", Some(&outcome));
                self.library.update_publish(
                    record,
                    "published",
                    Some(&plan.metadata_cid),
                    &detail("published", serde_json::to_value(&r).unwrap_or_default()),
                )?;
                Ok(r)
            }
            Err(e) => {
                let _ = self.library.update_publish(
                    record,
                    "failed",
                    Some(&plan.metadata_cid),
                    &detail("failed", serde_json::json!({"error": e.to_string()})),
                );
                Err(e.into())
            }
        }
    }

    /// Every publish, newest first.
    pub fn publishes(&self) -> Result<Vec<mintframe_library::PublishRecord>, StudioError> {
        Ok(self.library.list_publishes()?)
    }

    /// The publish history for the Publish screen.
    pub fn publish_summaries(&self) -> Result<Vec<mintframe_types::PublishSummary>, StudioError> {
        Ok(self
            .library
            .list_publishes()?
            .into_iter()
            .map(|r| {
                let name = serde_json::from_str::<serde_json::Value>(&r.detail)
                    .ok()
                    .and_then(|d| d["spec"]["name"].as_str().map(str::to_owned))
                    .unwrap_or_default();
                mintframe_types::PublishSummary {
                    id: r.id,
                    target: r.target,
                    status: r.status,
                    root_cid: r.root_cid,
                    name,
                    updated_at_ms: r.updated_ms,
                }
            })
            .collect())
    }
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn report(
    plan: &Plan,
    record: Option<i64>,
    status: &str,
    outcome: Option<&collection::Outcome>,
) -> PublishReport {
    PublishReport {
        record_id: record,
        status: status.into(),
        media_cid: plan.media_cid.clone(),
        metadata_cid: plan.metadata_cid.clone(),
        base_uri: plan.base_uri.clone(),
        token_uris: plan.token_uris.clone(),
        contract_uri: plan.contract_uri.clone(),
        gateway_url: format!("https://ipfs.io/ipfs/{}/", plan.metadata_cid),
        media_car: path_str(&plan.media_car),
        metadata_car: path_str(&plan.metadata_car),
        findings: plan
            .findings
            .iter()
            .map(|f| PublishFinding {
                file: f.file.clone(),
                error: f.error,
                field: f.field.clone(),
                message: f.message.clone(),
            })
            .collect(),
        uploaded_media: outcome.is_some_and(|o| o.uploaded_media),
        uploaded_metadata: outcome.is_some_and(|o| o.uploaded_metadata),
        verified_files: outcome.map_or(0, |o| o.verified_files as u32),
    }
}

fn path_str(p: &std::path::Path) -> String {
    PathBuf::from(p).display().to_string()
}

/// A step as a line and a fraction, for progress bars.
pub fn describe_step(step: &Step) -> mintframe_types::PublishProgress {
    let (message, fraction) = match step {
        Step::Uploading {
            folder,
            sent,
            total,
        } => (
            format!("uploading {folder}: {} of {} KiB", sent >> 10, total >> 10),
            if *total == 0 {
                0.0
            } else {
                (*sent as f32 / *total as f32).min(1.0)
            },
        ),
        Step::Pinning(folder) => (format!("pinning {folder}"), 1.0),
        Step::Verifying { done, total } => (
            format!("reading back {done} of {total} files"),
            if *total == 0 {
                1.0
            } else {
                *done as f32 / *total as f32
            },
        ),
    };
    mintframe_types::PublishProgress {
        running: true,
        message,
        fraction,
    }
}
