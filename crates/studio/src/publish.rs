//! Publishing library assets as a collection: tokens from assets (a clip's poster frame in
//! `image`, the clip in `animation_url`), attributes from each recipe plus the user's traits, a
//! deterministic staging folder so a re-run resumes with the same CIDs, and a library record
//! for every publish.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use mintframe_jobs::JobCtx;
use mintframe_library::PublishItem;
pub use mintframe_publish::collection::Step;
use mintframe_publish::collection::{self, BundleFile, CollectionSpec, Plan, TokenSource};
use mintframe_publish::metadata::{Attribute, DisplayType};
use mintframe_publish::pinning;
use mintframe_types::{
    AssetFile, CidProfile, PublishFinding, PublishReport, PublishSpec, SheetFormat, TraitSpec,
};
use sha2::Digest;

use crate::{App, StudioError};

fn invalid(msg: impl Into<String>) -> StudioError {
    StudioError::Publish(mintframe_publish::PublishError::Invalid(vec![msg.into()]))
}

fn profile(spec: &PublishSpec) -> Result<CidProfile, StudioError> {
    match spec.cid_version {
        0 | 1 => Ok(spec.cid_profile()),
        other => Err(invalid(format!("CID version {other}: use 0 or 1"))),
    }
}

/// A user trait as metadata: numbers as numbers, the display type checked later by validation.
fn user_attribute(t: &TraitSpec) -> Result<Attribute, StudioError> {
    if t.trait_type.trim().is_empty() {
        return Err(invalid("a trait has an empty name"));
    }
    let display_type = t.display_type;
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

/// Whether a character pack's file of `role` belongs in its game bundle: the sheet, its engine
/// exports, the recipe, the consistency report and the frames (named after their animation,
/// facing and index, so the same pack always gives the same names). The poster and the
/// previews are left out: they are already the token's image and animation.
fn in_bundle(role: &str) -> bool {
    matches!(role, "main" | "recipe" | "consistency" | "reference")
        || role.starts_with("frame-")
        || SheetFormat::ALL
            .iter()
            .any(|f| crate::sheet::format_file(*f).0 == role)
}

/// A pack recipe as it is published: every absolute path in it (the model, palette, ControlNet,
/// reference and template files the maker used) cut to its file name, so no folder of the
/// maker's machine goes onto IPFS for good.
fn public_recipe(v: &mut serde_json::Value) {
    match v {
        serde_json::Value::String(s) => {
            let absolute = s.starts_with('/')
                || s.starts_with('\\')
                || s.as_bytes().get(1..3) == Some(b":\\".as_slice())
                || s.as_bytes().get(1..3) == Some(b":/".as_slice());
            if absolute {
                let name = s.rsplit(['/', '\\']).next().unwrap_or_default().to_owned();
                *s = name;
            }
        }
        serde_json::Value::Array(a) => a.iter_mut().for_each(public_recipe),
        serde_json::Value::Object(o) => o.values_mut().for_each(public_recipe),
        _ => {}
    }
}

/// A pack file's name in the bundle: the one the library recorded (which the engine exports
/// refer to), sanitised; for a row without one, its role and the ending its kind has.
fn bundle_name(f: &AssetFile) -> String {
    if !f.file_name.trim().is_empty() {
        return mintframe_library::sanitize_file_name(&f.file_name);
    }
    let ending = SheetFormat::ALL
        .iter()
        .map(|k| crate::sheet::format_file(*k))
        .find(|(role, _, _)| *role == f.role)
        .map(|(_, ending, _)| ending.to_owned())
        .unwrap_or_else(|| {
            let ext = ext_of_mime(&f.mime).unwrap_or(match f.mime.as_str() {
                "application/json" => "json",
                "text/plain" => "txt",
                "image/x-aseprite" => "aseprite",
                _ => "bin",
            });
            format!(".{ext}")
        });
    mintframe_library::sanitize_file_name(&format!("{}{ending}", f.role))
}

impl App {
    /// The collection's key (same assets' bytes and spec, same key: its staging folder and its
    /// record) and the assets in token order.
    fn collection_key(
        &self,
        spec: &PublishSpec,
    ) -> Result<(String, Vec<mintframe_types::AssetDetail>), StudioError> {
        if spec.asset_ids.is_empty() {
            return Err(invalid("pick at least one asset"));
        }
        let mut key = sha2::Sha256::new();
        // Where copies are pinned does not change the collection: same folder, same record.
        let mut keyed = spec.clone();
        keyed.pin_to.clear();
        keyed.cluster = None;
        // Arweave's metadata differs (its links), its gateway does not change it.
        if let Some(a) = &mut keyed.arweave {
            a.gateway.clear();
            a.max_winston = None;
        }
        key.update(serde_json::to_vec(&keyed).map_err(|e| invalid(e.to_string()))?);
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
        Ok((hex(&key.finalize()[..8]), details))
    }

    fn publish_key(&self, spec: &PublishSpec) -> Result<String, StudioError> {
        Ok(self.collection_key(spec)?.0)
    }

    /// Builds the collection offline: staging folder, every CID, metadata and the pre-mint
    /// findings. Nothing touches a node.
    pub fn publish_plan(&self, spec: &PublishSpec) -> Result<(CollectionSpec, Plan), StudioError> {
        let (cspec, dir) = self.collection_spec(spec)?;
        let plan = collection::plan(&cspec, &dir)?;
        Ok((cspec, plan))
    }

    /// The collection's tokens (files, names, traits) and its staging folder.
    pub(crate) fn collection_spec(
        &self,
        spec: &PublishSpec,
    ) -> Result<(CollectionSpec, PathBuf), StudioError> {
        let (key, details) = self.collection_key(spec)?;
        let dir = self.settings.data_dir.join("publish").join(&key);
        let posters = dir.join("posters");
        std::fs::create_dir_all(&posters)
            .map_err(|e| invalid(format!("cannot create {}: {e}", posters.display())))?;
        let user: Vec<Attribute> = spec
            .traits
            .iter()
            .map(user_attribute)
            .collect::<Result<_, _>>()?;
        if !spec.token_traits.is_empty() && spec.token_traits.len() != details.len() {
            return Err(invalid(format!(
                "{} tokens but traits for {}",
                details.len(),
                spec.token_traits.len()
            )));
        }
        let mut tokens = Vec::new();
        for (i, d) in details.iter().enumerate() {
            if let Some(reason) = &d.summary.damaged {
                return Err(StudioError::Damaged {
                    id: d.summary.id.to_string(),
                    reason: reason.clone(),
                });
            }
            let main = d
                .files
                .iter()
                .find(|f| f.role == "main")
                .ok_or_else(|| invalid(format!("asset {} has no file", d.summary.id)))?;
            let path = self.library.file_path(&main.sha256);
            // Nothing that does not decode is minted: a marketplace would show a broken token.
            mintframe_media::check_file(&path, &mintframe_media::Limits::DEFAULT).map_err(|e| {
                StudioError::Damaged {
                    id: d.summary.id.to_string(),
                    reason: crate::media_reason(&e),
                }
            })?;
            let ext = ext_of_mime(&main.mime).ok_or_else(|| {
                invalid(format!(
                    "asset {} is {}, which marketplaces do not show",
                    d.summary.id, main.mime
                ))
            })?;
            // A character pack mints as its poster, animated by its first preview.
            let poster = d.files.iter().find(|f| f.role == "poster");
            let preview = d.files.iter().find(|f| f.role.starts_with("preview-"));
            let (image, image_ext, animation) = if let Some(p) = poster {
                let poster_path = self.library.file_path(&p.sha256);
                mintframe_media::check_file(&poster_path, &mintframe_media::Limits::DEFAULT)
                    .map_err(|e| StudioError::Damaged {
                        id: d.summary.id.to_string(),
                        reason: crate::media_reason(&e),
                    })?;
                (
                    poster_path,
                    "png".to_owned(),
                    preview.map(|g| (self.library.file_path(&g.sha256), "gif".to_owned())),
                )
            } else if main.mime == "image/gif" || main.mime.starts_with("video/") {
                // The poster: the first frame, as a PNG.
                let seq = mintframe_media::load_sequence_as(&path, "media", None)
                    .map_err(StudioError::from)?;
                let first = seq
                    .frames
                    .first()
                    .ok_or_else(|| invalid(format!("asset {} has no frames", d.summary.id)))?;
                let png = mintframe_media::encode_png_rgba(first).map_err(StudioError::from)?;
                let poster = posters.join(format!("{i}.png"));
                std::fs::write(&poster, png)
                    .map_err(|e| invalid(format!("cannot write {}: {e}", poster.display())))?;
                (poster, "png".to_owned(), Some((path, ext.to_owned())))
            } else {
                (path, ext.to_owned(), None)
            };
            // A pack's game files go with it, so a holder gets what an engine imports.
            let mut bundle = Vec::new();
            if poster.is_some() {
                for f in d.files.iter().filter(|f| in_bundle(&f.role)) {
                    let mut path = self.library.file_path(&f.sha256);
                    if f.role == "recipe" {
                        let text =
                            std::fs::read_to_string(&path).map_err(|source| StudioError::Io {
                                action: "cannot read",
                                path: path.clone(),
                                source,
                            })?;
                        let mut v: serde_json::Value =
                            serde_json::from_str(&text).map_err(|e| StudioError::Damaged {
                                id: d.summary.id.to_string(),
                                reason: format!("its pack recipe is not JSON: {e}"),
                            })?;
                        public_recipe(&mut v);
                        path = posters.join(format!("{i}.recipe.json"));
                        let bytes =
                            serde_json::to_vec_pretty(&v).map_err(|e| invalid(e.to_string()))?;
                        std::fs::write(&path, bytes).map_err(|e| {
                            invalid(format!("cannot write {}: {e}", path.display()))
                        })?;
                    }
                    bundle.push(BundleFile {
                        path,
                        name: bundle_name(f),
                    });
                }
            }
            let mut attributes = match spec.token_traits.get(i) {
                Some(own) => own.iter().map(user_attribute).collect::<Result<_, _>>()?,
                None => Vec::new(),
            };
            attributes.extend(d.recipe.as_ref().map(recipe_attributes).unwrap_or_default());
            attributes.extend(user.iter().cloned());
            tokens.push(TokenSource {
                image,
                image_ext,
                animation,
                name: format!("{} #{i}", spec.name.trim()),
                description: spec.description.clone(),
                attributes,
                bundle,
            });
        }
        let cspec = CollectionSpec {
            name: spec.name.clone(),
            description: spec.description.clone(),
            symbol: spec.symbol.clone(),
            external_url: spec.external_url.clone().filter(|u| !u.trim().is_empty()),
            standard: spec.standard,
            layout: spec.layout,
            profile: profile(spec)?,
            tokens,
        };
        Ok((cspec, dir))
    }

    /// The pre-mint report: CIDs and links as they will be, and every finding. No node needed.
    pub fn publish_check(&self, spec: &PublishSpec) -> Result<PublishReport, StudioError> {
        if spec.arweave.is_some() {
            return self.arweave_check(spec);
        }
        let (_, plan) = self.publish_plan(spec)?;
        Ok(report(&plan, None, "planned", None))
    }

    /// Publishes to the configured node in one pass and records it. Running it again (after an
    /// interruption, or to check) resends nothing the node already holds pinned and ends with
    /// the same CIDs.
    ///
    /// Runs under a job's context: progress goes to `ctx`, and a cancel (from any process) drops
    /// the upload in flight within a poll of the token; the record then says `cancelled`, never
    /// `published`, and running the job again resumes with the same CIDs.
    pub fn publish_collection(
        &self,
        spec: &PublishSpec,
        ctx: &JobCtx,
    ) -> Result<PublishReport, StudioError> {
        if spec.arweave.is_some() {
            return self.publish_via_arweave(spec, ctx);
        }
        ctx.progress("plan", 0, 0);
        let (_, plan) = self.publish_plan(spec)?;
        // Refused before any record or upload: nothing happened that needs undoing.
        collection::refuse_errors(&plan)?;
        ctx.check().map_err(|_| StudioError::Cancelled)?;
        let on_step = step_sink(ctx);
        if let Some(c) = &spec.cluster {
            return self.publish_via_cluster(spec, c, &plan, on_step, ctx);
        }
        let api = self.settings.api()?;
        if self.settings.start_node_on_demand
            && self.settings.ipfs_api == mintframe_publish::DEFAULT_API
        {
            ctx.progress("start the local IPFS node", 0, 0);
            let rt = runtime()?;
            if rt
                .block_on(mintframe_publish::node_version(
                    &api,
                    std::time::Duration::from_secs(3),
                ))
                .is_err()
            {
                rt.block_on(mintframe_publish::start_node(
                    &self.settings.ipfs_repo(),
                    &api,
                ))?;
            }
        }
        let record = Record::begin(self, spec, (&plan).into(), &format!("local:{api}"))?;
        let rt = runtime()?;
        let published = rt
            .block_on(until_cancelled(
                ctx,
                collection::publish(&plan, &api, on_step),
            ))
            .and_then(|outcome| {
                let mut r = report(&plan, Some(record.id), "published", Some(&outcome));
                r.remote_pins = self.pin_remotely(spec, &plan, &api, &rt, ctx)?;
                Ok(r)
            });
        record.finish(published)
    }

    /// The report a finished publish job left in its record (found by the collection's key).
    pub fn publish_outcome(&self, spec: &PublishSpec) -> Result<PublishReport, StudioError> {
        let key = self.publish_key(spec)?;
        let target = match (&spec.arweave, &spec.cluster) {
            (Some(a), _) => format!("arweave:{}", crate::arweave::gateway_url(Some(&a.gateway))),
            (None, Some(c)) => format!("cluster:{}", c.url),
            (None, None) => format!("local:{}", self.settings.api()?),
        };
        let rec = self.library.publish_by_key(&key, &target)?.ok_or_else(|| {
            StudioError::NotFound(format!("no publish of this collection to {target}"))
        })?;
        let detail: serde_json::Value = serde_json::from_str(&rec.detail)
            .map_err(|e| StudioError::Task(format!("publish record {}: {e}", rec.id)))?;
        if rec.status != "published" && rec.status != "pending" {
            return Err(StudioError::Task(format!(
                "publish record {} is {}: {}",
                rec.id,
                rec.status,
                detail["outcome"]["error"]
                    .as_str()
                    .unwrap_or("no reason recorded")
            )));
        }
        serde_json::from_value(detail["outcome"].clone())
            .map_err(|e| StudioError::Task(format!("publish record {}: {e}", rec.id)))
    }

    /// The cluster variant of [`App::publish_collection`]: added through the cluster's REST API,
    /// roots checked against the plan, replication awaited; recorded like any publish.
    fn publish_via_cluster(
        &self,
        spec: &PublishSpec,
        target: &mintframe_types::ClusterTarget,
        plan: &Plan,
        on_step: Arc<dyn Fn(Step) + Send + Sync>,
        ctx: &JobCtx,
    ) -> Result<PublishReport, StudioError> {
        let cluster = mintframe_publish::cluster::Cluster {
            url: target.url.clone(),
            replication_min: target.replication_min,
            replication_max: target.replication_max,
        };
        let target_name = format!("cluster:{}", cluster.url);
        let record = Record::begin(self, spec, plan.into(), &target_name)?;
        let result = collection::publish_to_cluster(
            plan,
            &cluster,
            spec.name.trim(),
            std::time::Duration::from_secs(PIN_WAIT_SECS),
            on_step,
        );
        // The cluster client is blocking: a cancel takes effect once the step in flight ends.
        let result = result
            .map_err(StudioError::from)
            .and_then(|o| ctx.check().map(|()| o).map_err(|_| StudioError::Cancelled));
        let published = result.map(|outcome| {
            let mut r = report(plan, Some(record.id), "published", None);
            r.uploaded_media = outcome.uploaded_media;
            r.uploaded_metadata = outcome.uploaded_metadata;
            r.remote_pins = outcome
                .pins
                .iter()
                .map(|p| mintframe_types::RemotePin {
                    service: target_name.clone(),
                    cid: p.cid.clone(),
                    requestid: String::new(),
                    info: Vec::new(),
                    status: if p.pinned > 0 && p.pinned == p.peers.len() {
                        "pinned".to_owned()
                    } else {
                        format!("pinned on {} of {} peers", p.pinned, p.peers.len())
                    },
                })
                .collect();
            r
        });
        record.finish(published)
    }

    /// Asks each of `spec.pin_to` to pin both roots, with this node's addresses as origins.
    fn pin_remotely(
        &self,
        spec: &PublishSpec,
        plan: &Plan,
        api: &mintframe_publish::ApiAddr,
        rt: &tokio::runtime::Runtime,
        ctx: &JobCtx,
    ) -> Result<Vec<mintframe_types::RemotePin>, StudioError> {
        if spec.pin_to.is_empty() {
            return Ok(Vec::new());
        }
        let services = self.pinning_services_config()?;
        let origins = rt.block_on(mintframe_publish::node_addresses(api));
        let mut out = Vec::new();
        for name in &spec.pin_to {
            let svc = services
                .iter()
                .find(|s| &s.service.name == name)
                .ok_or_else(|| {
                    StudioError::Settings(format!(
                        "no pinning service named {name:?}; add it with `mintframe publish service add {name} <endpoint> --token-stdin`"
                    ))
                })?;
            let token = token_for(svc)?;
            let svc = &svc.service;
            for (what, cid) in [("media", &plan.media_cid), ("metadata", &plan.metadata_cid)] {
                ctx.check().map_err(|_| StudioError::Cancelled)?;
                ctx.progress(&format!("pin {what} on {name}"), 0, 0);
                let pin_name = format!("{} {what}", spec.name.trim());
                let st = pinning::pin_and_wait(
                    svc,
                    &token,
                    cid,
                    &pin_name,
                    &origins,
                    std::time::Duration::from_secs(PIN_WAIT_SECS),
                    &|st| tracing::info!(service = %name, cid = %st.cid, status = %st.status, "remote pin"),
                )
                .map_err(mintframe_publish::PublishError::from)?;
                out.push(mintframe_types::RemotePin {
                    service: name.clone(),
                    info: info_lines(&st.info),
                    cid: st.cid,
                    requestid: st.requestid,
                    status: st.status,
                });
            }
        }
        Ok(out)
    }

    /// Asks each pinning service again about the pins a publish requested (a `queued` pin
    /// becomes `pinned` later) and records the answers.
    pub fn refresh_remote_pins(
        &self,
        record_id: i64,
    ) -> Result<Vec<mintframe_types::RemotePin>, StudioError> {
        let rec = self
            .library
            .publish(record_id)?
            .ok_or_else(|| StudioError::NotFound(format!("publish record {record_id}")))?;
        let mut detail: serde_json::Value = serde_json::from_str(&rec.detail)
            .map_err(|e| StudioError::Settings(format!("publish record {record_id}: {e}")))?;
        let pins: Vec<mintframe_types::RemotePin> =
            serde_json::from_value(detail["outcome"]["remote_pins"].clone()).unwrap_or_default();
        let services = self.pinning_services_config()?;
        let mut out = Vec::new();
        for p in pins {
            let svc = services
                .iter()
                .find(|s| s.service.name == p.service)
                .ok_or_else(|| {
                    StudioError::Settings(format!("pinning service {:?} was removed", p.service))
                })?;
            let token = token_for(svc)?;
            let st = pinning::get_pin(&svc.service, &token, &p.requestid)
                .map_err(mintframe_publish::PublishError::from)?;
            out.push(mintframe_types::RemotePin {
                info: info_lines(&st.info),
                status: st.status,
                ..p
            });
        }
        detail["outcome"]["remote_pins"] = serde_json::to_value(&out).unwrap_or_default();
        self.library.update_publish(
            record_id,
            &rec.status,
            rec.root_cid.as_deref(),
            &detail.to_string(),
        )?;
        Ok(out)
    }

    fn pinning_services_path(&self) -> PathBuf {
        self.settings.data_dir.join("pinning-services.json")
    }

    fn pinning_services_config(&self) -> Result<Vec<ServiceEntry>, StudioError> {
        let p = self.pinning_services_path();
        match std::fs::read(&p) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .map_err(|e| StudioError::Settings(format!("{} is not valid: {e}", p.display()))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
            Err(e) => Err(StudioError::Settings(format!(
                "cannot read {}: {e}",
                p.display()
            ))),
        }
    }

    fn save_pinning_services(&self, list: &[ServiceEntry]) -> Result<(), StudioError> {
        let p = self.pinning_services_path();
        let part = p.with_extension("json.part");
        let text =
            serde_json::to_vec_pretty(list).map_err(|e| StudioError::Settings(e.to_string()))?;
        std::fs::write(&part, text)
            .and_then(|()| std::fs::rename(&part, &p))
            .map_err(|e| StudioError::Settings(format!("cannot write {}: {e}", p.display())))
    }

    /// The pinning services added so far (their tokens stay in the keyring).
    pub fn pinning_services(
        &self,
    ) -> Result<Vec<mintframe_types::PinningServiceInfo>, StudioError> {
        self.pinning_services_config()?
            .into_iter()
            .map(|s| {
                Ok(mintframe_types::PinningServiceInfo {
                    has_token: token_for(&s).is_ok(),
                    name: s.service.name,
                    endpoint: s.service.endpoint,
                })
            })
            .collect()
    }

    /// Adds (or updates) a pinning service. The token goes to the OS keyring; or, where no
    /// keyring persists, the service names a token file the user keeps (checked to be theirs
    /// alone) and the token never passes through Mintframe's files.
    pub fn add_pinning_service(
        &self,
        name: &str,
        endpoint: &str,
        token: Option<&str>,
        token_file: Option<&Path>,
    ) -> Result<(), StudioError> {
        if name.is_empty()
            || name.len() > 40
            || !name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            return Err(StudioError::Settings(format!(
                "service name {name:?}: use 1 to 40 letters, digits, '-' or '_'"
            )));
        }
        let e = endpoint.trim();
        if !(e.starts_with("https://") || e.starts_with("http://")) {
            return Err(StudioError::Settings(format!(
                "endpoint {e:?} must be an http(s) URL, e.g. https://api.pinata.cloud/psa"
            )));
        }
        let token_file = match token_file {
            Some(f) => {
                let abs = std::path::absolute(f).map_err(|source| StudioError::Io {
                    action: "cannot resolve the token file",
                    path: f.to_owned(),
                    source,
                })?;
                read_token_file(&abs)?;
                Some(abs)
            }
            None => None,
        };
        if let Some(t) = token {
            let t = t.trim();
            if t.is_empty() {
                return Err(StudioError::Settings("the token is empty".into()));
            }
            crate::secrets::set(&token_account(name), t)?;
        }
        let mut list = self.pinning_services_config()?;
        list.retain(|s| s.service.name != name);
        list.push(ServiceEntry {
            service: pinning::Service {
                name: name.to_owned(),
                endpoint: e.to_owned(),
            },
            token_file,
        });
        self.save_pinning_services(&list)
    }

    /// Forgets a pinning service and its token.
    pub fn remove_pinning_service(&self, name: &str) -> Result<(), StudioError> {
        let mut list = self.pinning_services_config()?;
        let before = list.len();
        list.retain(|s| s.service.name != name);
        if list.len() == before {
            return Err(StudioError::Settings(format!(
                "no pinning service named {name:?}"
            )));
        }
        crate::secrets::delete(&token_account(name))?;
        self.save_pinning_services(&list)
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

/// A collection's library record while it publishes. Found again by its staging key, so a
/// re-run continues the record it left rather than adding one.
pub(crate) struct Record<'a> {
    library: &'a mintframe_library::Library,
    pub(crate) id: i64,
    key: String,
    spec: &'a PublishSpec,
    plan: serde_json::Value,
    /// The metadata's root: a CID, or an Arweave manifest id.
    root: String,
}

/// What a record keeps of a plan, whichever network it is for.
pub(crate) struct Planned<'a> {
    pub dir: &'a Path,
    pub media_root: &'a str,
    pub metadata_root: &'a str,
    pub plan: serde_json::Value,
}

impl<'a> From<&'a Plan> for Planned<'a> {
    fn from(plan: &'a Plan) -> Self {
        Planned {
            dir: &plan.dir,
            media_root: &plan.media_cid,
            metadata_root: &plan.metadata_cid,
            plan: serde_json::to_value(plan).unwrap_or_default(),
        }
    }
}

impl<'a> Record<'a> {
    pub(crate) fn begin(
        app: &'a App,
        spec: &'a PublishSpec,
        planned: Planned<'_>,
        target: &str,
    ) -> Result<Record<'a>, StudioError> {
        let key = planned
            .dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let mut rec = Record {
            library: &app.library,
            id: 0,
            key,
            spec,
            plan: planned.plan,
            root: planned.metadata_root.to_owned(),
        };
        let detail = rec.detail("uploading", serde_json::Value::Null);
        let existing = app.library.publish_by_key(&rec.key, target)?;
        rec.id = match existing {
            Some(r) => {
                app.library.update_publish(
                    r.id,
                    "uploading",
                    Some(planned.metadata_root),
                    &detail,
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
                            asset_id: app.asset(a)?.summary.id.to_string(),
                            token_id: i as i64,
                            media_cid: Some(planned.media_root.to_owned()),
                            metadata_cid: Some(planned.metadata_root.to_owned()),
                        })
                    })
                    .collect::<Result<_, StudioError>>()?;
                app.library.insert_publish(
                    &rec.key,
                    target,
                    "uploading",
                    Some(planned.metadata_root),
                    &detail,
                    &items,
                )?
            }
        };
        Ok(rec)
    }

    fn detail(&self, status: &str, outcome: serde_json::Value) -> String {
        serde_json::json!({"key": self.key, "status": status, "spec": self.spec, "plan": self.plan, "outcome": outcome})
            .to_string()
    }

    /// Records how the publish ended and hands the result on.
    pub(crate) fn finish(
        &self,
        result: Result<PublishReport, StudioError>,
    ) -> Result<PublishReport, StudioError> {
        let cid = Some(self.root.as_str());
        match result {
            Ok(r) => {
                // `published`, or `pending` where a network has not mined it yet.
                let status = r.status.clone();
                let outcome = serde_json::to_value(&r).unwrap_or_default();
                self.library.update_publish(
                    self.id,
                    &status,
                    cid,
                    &self.detail(&status, outcome),
                )?;
                Ok(r)
            }
            Err(e) => {
                let status = if matches!(e, StudioError::Cancelled) {
                    "cancelled"
                } else {
                    "failed"
                };
                // The publish's own error matters more than a failure to record it.
                let outcome = serde_json::json!({"error": e.to_string()});
                let _ = self.library.update_publish(
                    self.id,
                    status,
                    cid,
                    &self.detail(status, outcome),
                );
                Err(e)
            }
        }
    }
}

fn runtime() -> Result<tokio::runtime::Runtime, StudioError> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| StudioError::Task(format!("cannot start an async runtime: {e}")))
}

/// How often a publish looks at its job's cancel flag (the registry follows the row's flag,
/// set from any process, every 200 ms).
const CANCEL_POLL: std::time::Duration = std::time::Duration::from_millis(50);

/// Runs `work` until it ends or the job is cancelled; a cancel drops the future, which aborts
/// the HTTP request in flight.
async fn until_cancelled<T>(
    ctx: &JobCtx,
    work: impl std::future::Future<Output = Result<T, mintframe_publish::PublishError>>,
) -> Result<T, StudioError> {
    let cancelled = async {
        while ctx.check().is_ok() {
            tokio::time::sleep(CANCEL_POLL).await;
        }
    };
    tokio::select! {
        r = work => r.map_err(StudioError::from),
        () = cancelled => Err(StudioError::Cancelled),
    }
}

/// The collection's steps as job progress.
fn step_sink(ctx: &JobCtx) -> Arc<dyn Fn(Step) + Send + Sync> {
    let ctx = ctx.clone();
    Arc::new(move |step: Step| match step {
        Step::Uploading {
            folder,
            sent,
            total,
        } => ctx.progress(&format!("upload {folder}"), sent, total),
        Step::Pinning(folder) => ctx.progress(&format!("pin {folder}"), 0, 0),
        Step::Verifying { done, total } => ctx.progress("read back", done as u64, total as u64),
    })
}

/// How long a publish waits for each remote pin to reach `pinned` before reporting it as still
/// queued (the service keeps working after that).
const PIN_WAIT_SECS: u64 = 20;

/// A pinning service as `pinning-services.json` keeps it: name, endpoint and, where no keyring
/// persists tokens, the file the user keeps the token in.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
struct ServiceEntry {
    #[serde(flatten)]
    service: pinning::Service,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    token_file: Option<PathBuf>,
}

/// The environment variable that may hold a service's token: `MINTFRAME_TOKEN_<NAME>`.
pub fn token_env_var(service: &str) -> String {
    format!(
        "MINTFRAME_TOKEN_{}",
        service.to_ascii_uppercase().replace('-', "_")
    )
}

/// A service's token: the environment first (for CI and servers), then its token file, then
/// the OS keyring. Missing everywhere is an error that says how to store it again.
fn token_for(s: &ServiceEntry) -> Result<String, StudioError> {
    let name = &s.service.name;
    let var = token_env_var(name);
    if let Ok(t) = std::env::var(&var)
        && !t.trim().is_empty()
    {
        return Ok(t.trim().to_owned());
    }
    if let Some(f) = &s.token_file {
        return read_token_file(f);
    }
    if let Some(t) = crate::secrets::get(&token_account(name))? {
        return Ok(t);
    }
    let keyring = match crate::secrets::persistent_store() {
        Ok(()) => "the OS keyring holds none for it".to_owned(),
        Err(e) => format!("no persistent keyring answers in this session ({e})"),
    };
    Err(StudioError::Secret(format!(
        "no token for pinning service {name:?}: {keyring}, it has no token file and ${var} is not set. Store it again with `mintframe publish service add {name} {} --token-stdin` (or `--token-file PATH`)",
        s.service.endpoint
    )))
}

/// A token file must be a regular file only its owner can read or write (like an SSH key).
pub(crate) fn read_token_file(path: &Path) -> Result<String, StudioError> {
    read_secret_file(path, "token file")
}

/// A file holding a secret (a token, a wallet's key), read only if it is the user's alone.
pub(crate) fn read_secret_file(path: &Path, what: &str) -> Result<String, StudioError> {
    use std::os::unix::fs::PermissionsExt;
    let bad = |why: String| StudioError::Secret(format!("{what} {}: {why}", path.display()));
    let meta = std::fs::metadata(path).map_err(|e| bad(e.to_string()))?;
    if !meta.is_file() {
        return Err(bad("is not a regular file".into()));
    }
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(bad(format!(
            "others can read it (mode {mode:o}); make it yours alone with `chmod 600 {}`",
            path.display()
        )));
    }
    let text = std::fs::read_to_string(path).map_err(|e| bad(e.to_string()))?;
    let t = text.trim();
    if t.is_empty() {
        return Err(bad("is empty".into()));
    }
    Ok(t.to_owned())
}

/// A pin's `info` as `key: value` lines (strings unquoted, anything else as JSON).
fn info_lines(info: &std::collections::BTreeMap<String, serde_json::Value>) -> Vec<String> {
    info.iter()
        .map(|(k, v)| match v {
            serde_json::Value::String(s) => format!("{k}: {s}"),
            other => format!("{k}: {other}"),
        })
        .collect()
}

fn token_account(service: &str) -> String {
    format!("pinning:{service}")
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
        findings: crate::publish::findings(&plan.findings),
        uploaded_media: outcome.is_some_and(|o| o.uploaded_media),
        uploaded_metadata: outcome.is_some_and(|o| o.uploaded_metadata),
        verified_files: outcome.map_or(0, |o| o.verified_files as u32),
        remote_pins: Vec::new(),
        profile: plan.profile,
        notes: outcome.map(|o| o.notes.clone()).unwrap_or_default(),
        arweave: None,
    }
}

/// A plan's findings as the report carries them.
pub(crate) fn findings(
    found: &[mintframe_publish::collection::FileFinding],
) -> Vec<PublishFinding> {
    found
        .iter()
        .map(|f| PublishFinding {
            file: f.file.clone(),
            error: f.error,
            field: f.field.clone(),
            message: f.message.clone(),
        })
        .collect()
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
