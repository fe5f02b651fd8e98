//! Generative collections: a spec drawn into tokens, each token's image generated (here, or on
//! a render farm), the rarity report, provenance and reveal plan written beside them, then the
//! one-pass publish with each token's own traits.
//!
//! A collection's folder is `<data>/collections/<name>-<spec hash>/`; `made.json` there records
//! each token made (its asset, the image's sha256, who made it), written whole after each one,
//! so a run stopped anywhere resumes with the tokens it has.

use std::collections::BTreeMap;
use std::io::Cursor;
use std::path::{Path, PathBuf};

use mintframe_collection::{CollectionSpec, Token};
use mintframe_library::{NewAsset, NewFile};
use mintframe_types::{
    AssetId, AssetKind, CollectionJob, CollectionReport, GenerateSpec, JobRecord, JobSpec,
    PublishReport, PublishSpec, Recipe, TraitSpec,
};
use serde::{Deserialize, Serialize};

use crate::{App, JobCtx, StudioError, generate, paths};

/// One made token, as `made.json` keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Made {
    pub asset: String,
    pub sha256: String,
    /// `local`, or the farm worker that drew it.
    pub by: String,
}

fn invalid(msg: impl Into<String>) -> StudioError {
    StudioError::Task(msg.into())
}

fn io(action: &'static str, path: &Path, source: std::io::Error) -> StudioError {
    StudioError::Io {
        action,
        path: path.to_path_buf(),
        source,
    }
}

fn write_json(path: &Path, v: &impl Serialize) -> Result<(), StudioError> {
    let mut bytes = serde_json::to_vec_pretty(v).map_err(|e| invalid(e.to_string()))?;
    bytes.push(b'\n');
    paths::write_whole(path, &bytes)
}

/// A parsed collection and where its files go.
#[derive(Debug)]
pub struct Drawn {
    pub spec: CollectionSpec,
    pub tokens: Vec<Token>,
    pub dir: PathBuf,
}

impl App {
    /// Parses and draws a collection spec (nothing generated): its tokens and folder.
    pub fn collection_draw(&self, spec_toml: &str) -> Result<Drawn, StudioError> {
        let spec = CollectionSpec::parse(spec_toml)?;
        let tokens = mintframe_collection::draw(&spec)?;
        let hash = generate::sha256_hex(spec_toml.as_bytes());
        let name = crate::sanitize_file_name(&spec.name.to_lowercase().replace(' ', "-"));
        let dir = self
            .settings
            .data_dir
            .join("collections")
            .join(format!("{name}-{}", &hash[..12]));
        Ok(Drawn { spec, tokens, dir })
    }

    /// The rarity of a spec's draw, nothing generated.
    pub fn collection_rarity(
        &self,
        spec_toml: &str,
    ) -> Result<(Drawn, mintframe_collection::Rarity), StudioError> {
        let drawn = self.collection_draw(spec_toml)?;
        let rarity = mintframe_collection::rarity(&drawn.spec, &drawn.tokens);
        Ok((drawn, rarity))
    }

    /// The spec drawn, as the Drop screen shows it before anything is generated.
    pub fn collection_check(
        &self,
        spec_toml: &str,
    ) -> Result<mintframe_types::CollectionCheck, StudioError> {
        let (drawn, rarity) = self.collection_rarity(spec_toml)?;
        Ok(mintframe_types::CollectionCheck {
            name: drawn.spec.name.clone(),
            tokens: rarity.tokens,
            one_of_ones: drawn.spec.one_of_ones.len() as u32,
            traits: rarity
                .traits
                .iter()
                .map(|t| mintframe_types::TraitTally {
                    name: t.name.clone(),
                    values: t
                        .values
                        .iter()
                        .map(|v| mintframe_types::ValueTally {
                            value: v.value.clone(),
                            count: v.count,
                            share: v.share,
                        })
                        .collect(),
                })
                .collect(),
        })
    }

    /// Checks the spec (it must draw) and queues the collection.
    pub fn submit_collection(&self, job: CollectionJob) -> Result<JobRecord, StudioError> {
        self.collection_draw(&job.spec_toml)?;
        if let Some(url) = &job.farm {
            mintframe_farm::FarmUrl::parse(url)?;
        }
        self.jobs.submit(JobSpec::Collection(Box::new(job)))
    }

    /// Each token's generation, completed as this studio completes any generate job, so a
    /// farm worker runs exactly what this machine would.
    pub fn collection_generate_spec(
        &self,
        spec: &CollectionSpec,
        token: &Token,
    ) -> Result<GenerateSpec, StudioError> {
        generate::complete_spec(
            self.models(),
            GenerateSpec {
                model: spec.model.clone(),
                prompt: token.prompt.clone(),
                negative_prompt: spec.negative_prompt.clone(),
                seed: Some(token.seed),
                steps: spec.steps,
                guidance: spec.guidance,
                width: spec.width,
                height: spec.height,
                batch: Some(1),
                ..GenerateSpec::default()
            },
        )
    }

    pub(crate) fn run_collection(
        &self,
        job: &JobRecord,
        cj: &CollectionJob,
        ctx: &JobCtx,
    ) -> Result<(), StudioError> {
        let drawn = self.collection_draw(&cj.spec_toml)?;
        let dir = &drawn.dir;
        std::fs::create_dir_all(dir.join("images"))
            .map_err(|e| io("cannot create", &dir.join("images"), e))?;
        paths::write_whole(&dir.join("spec.toml"), cj.spec_toml.as_bytes())?;
        write_json(&dir.join("tokens.json"), &drawn.tokens)?;
        let rarity = mintframe_collection::rarity(&drawn.spec, &drawn.tokens);
        write_json(&dir.join("rarity.json"), &rarity)?;
        let page =
            mintframe_collection::rarity_page(&drawn.spec.name, &rarity, &drawn.tokens, &|n| {
                format!("images/{n}.png")
            });
        paths::write_whole(&dir.join("rarity.html"), page.as_bytes())?;

        let mut made = self.collection_made(dir)?;
        // Tokens this job already added to the library but did not get to record (a crash in
        // between): found again by their prompt and seed, never made twice.
        let mut earlier: BTreeMap<(String, u64), AssetId> = BTreeMap::new();
        for id in &job.outputs {
            if let Ok(d) = self.library.asset(id)
                && let Some(r) = d.recipe
            {
                earlier.insert((r.prompt, r.seed), id.clone());
            }
        }
        let todo: Vec<&Token> = drawn
            .tokens
            .iter()
            .filter(|t| !made.contains_key(&t.number))
            .collect();
        let total = drawn.tokens.len() as u64;
        match &cj.farm {
            None => {
                let generator = generate::Generator {
                    library: &self.library,
                    manager: self.jobs.models(),
                    cache: self.jobs.cache(),
                };
                for t in todo {
                    ctx.check().map_err(|_| StudioError::Cancelled)?;
                    ctx.progress("tokens", made.len() as u64, total);
                    let asset = match earlier.get(&(t.prompt.clone(), t.seed)) {
                        Some(id) => id.clone(),
                        None => {
                            let spec = self.collection_generate_spec(&drawn.spec, t)?;
                            let ids = match generator.run(&job.id, &spec, 0, ctx) {
                                Err(StudioError::Diffusion(
                                    mintframe_diffusion::Error::Cancelled(_),
                                )) => return Err(StudioError::Cancelled),
                                r => r?,
                            };
                            ids.into_iter()
                                .next()
                                .ok_or_else(|| invalid("the generation made no image"))?
                        }
                    };
                    self.record_made(dir, &mut made, t.number, &asset, "local")?;
                }
            }
            Some(url) => {
                let url = mintframe_farm::FarmUrl::parse(url)?;
                self.collection_on_farm(job, &drawn, &url, &mut made, &earlier, ctx)?;
            }
        }
        ctx.progress("tokens", total, total);
        let images: Vec<String> = drawn
            .tokens
            .iter()
            .map(|t| {
                made.get(&t.number)
                    .map(|m| m.sha256.clone())
                    .ok_or_else(|| invalid(format!("token {} was not made", t.number)))
            })
            .collect::<Result<_, _>>()?;
        let provenance = mintframe_collection::provenance(images);
        write_json(&dir.join("provenance.json"), &provenance)?;
        if cj.publish {
            let report =
                self.publish_collection(&self.collection_publish_spec(&drawn, &made, cj)?, ctx)?;
            write_json(&dir.join("publish.json"), &report)?;
            // After the publish: it is what starts a managed node on demand.
            let placeholder = self.collection_placeholder(&drawn, cj, ctx)?;
            write_json(
                &dir.join("reveal.json"),
                &serde_json::json!({
                    "provenance": provenance.provenance,
                    "placeholder_uri": placeholder,
                    "base_uri": report.base_uri,
                    "steps": [
                        "Before the mint: publish the provenance hash (in the contract or on the collection's page).",
                        "Until the reveal: every token's URI is placeholder_uri (the contract's unrevealed URI).",
                        "At the reveal: set the contract's baseURI to base_uri; each image hashes into the provenance in token order."
                    ],
                }),
            )?;
        }
        Ok(())
    }

    /// The pre-reveal metadata every token shows until the reveal: a plain card the tokens'
    /// size and `unrevealed.json` naming it, added to the node (ending on their offline CIDs);
    /// its URI.
    fn collection_placeholder(
        &self,
        drawn: &Drawn,
        cj: &CollectionJob,
        ctx: &JobCtx,
    ) -> Result<String, StudioError> {
        ctx.progress("placeholder", 0, 1);
        let dir = drawn.dir.join("placeholder");
        let image_dir = dir.join("image");
        std::fs::create_dir_all(&image_dir).map_err(|e| io("cannot create", &image_dir, e))?;
        let (w, h) = (
            drawn.spec.width.unwrap_or(512),
            drawn.spec.height.unwrap_or(512),
        );
        let card = mintframe_media::Rgba {
            width: w,
            height: h,
            data: [0x80, 0x80, 0x80, 0xff].repeat((w * h) as usize),
        };
        paths::write_whole(
            &image_dir.join("unrevealed.png"),
            &crate::encode_png(&card)?,
        )?;
        let profile = cj
            .profile
            .unwrap_or(mintframe_types::CidProfile::UnixfsV0_2015);
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| invalid(format!("cannot start the async runtime: {e}")))?;
        let api = self.settings.api()?;
        let image = rt.block_on(mintframe_publish::collection::put_path(
            &api,
            &image_dir,
            profile,
            &dir.join("image.car"),
        ))?;
        let meta_dir = dir.join("metadata");
        std::fs::create_dir_all(&meta_dir).map_err(|e| io("cannot create", &meta_dir, e))?;
        write_json(
            &meta_dir.join("unrevealed.json"),
            &serde_json::json!({
                "name": format!("{} (unrevealed)", drawn.spec.name),
                "description": drawn.spec.description,
                "image": format!("ipfs://{}/unrevealed.png", image.cid),
            }),
        )?;
        let meta = rt.block_on(mintframe_publish::collection::put_path(
            &api,
            &meta_dir,
            profile,
            &dir.join("metadata.car"),
        ))?;
        ctx.progress("placeholder", 1, 1);
        Ok(format!("ipfs://{}/unrevealed.json", meta.cid))
    }

    /// The publish of a finished collection: its assets in token order, each token's traits.
    pub fn collection_publish_spec(
        &self,
        drawn: &Drawn,
        made: &BTreeMap<u32, Made>,
        cj: &CollectionJob,
    ) -> Result<PublishSpec, StudioError> {
        let mut asset_ids = Vec::new();
        let mut token_traits = Vec::new();
        for t in &drawn.tokens {
            let m = made
                .get(&t.number)
                .ok_or_else(|| invalid(format!("token {} was not made", t.number)))?;
            asset_ids.push(m.asset.clone());
            let mut traits: Vec<TraitSpec> = t
                .traits
                .iter()
                .map(|(k, v)| TraitSpec {
                    trait_type: k.clone(),
                    value: v.clone(),
                    display_type: None,
                })
                .collect();
            if let Some(name) = &t.one_of_one {
                traits.push(TraitSpec {
                    trait_type: "One of one".into(),
                    value: name.clone(),
                    display_type: None,
                });
            }
            token_traits.push(traits);
        }
        let profile = cj.profile;
        Ok(PublishSpec {
            asset_ids,
            name: drawn.spec.name.clone(),
            description: drawn.spec.description.clone(),
            symbol: String::new(),
            external_url: None,
            traits: Vec::new(),
            standard: drawn.spec.standard,
            layout: drawn.spec.layout,
            cid_version: u8::from(
                profile.is_some_and(|p| p != mintframe_types::CidProfile::UnixfsV0_2015),
            ),
            profile,
            pin_to: Vec::new(),
            cluster: None,
            token_traits,
            arweave: None,
        })
    }

    /// `made.json` of a collection folder (empty when nothing is made yet).
    pub fn collection_made(&self, dir: &Path) -> Result<BTreeMap<u32, Made>, StudioError> {
        let path = dir.join("made.json");
        match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| StudioError::Damaged {
                id: path.display().to_string(),
                reason: format!("not a made-tokens record: {e}"),
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(BTreeMap::new()),
            Err(e) => Err(io("cannot read", &path, e)),
        }
    }

    /// Records token `number` as made by `asset` (once: a token already recorded keeps its
    /// first asset), copies its image into `images/`, and rewrites `made.json` whole.
    pub(crate) fn record_made(
        &self,
        dir: &Path,
        made: &mut BTreeMap<u32, Made>,
        number: u32,
        asset: &AssetId,
        by: &str,
    ) -> Result<bool, StudioError> {
        if made.contains_key(&number) {
            return Ok(false);
        }
        let d = self.library.asset(asset)?;
        let main = d
            .files
            .iter()
            .find(|f| f.role == "main")
            .ok_or_else(|| invalid(format!("asset {asset} has no image")))?;
        let image = dir.join("images").join(format!("{number}.png"));
        std::fs::copy(self.library.file_path(&main.sha256), &image)
            .map_err(|e| io("cannot copy", &image, e))?;
        made.insert(
            number,
            Made {
                asset: asset.to_string(),
                sha256: main.sha256.clone(),
                by: by.to_owned(),
            },
        );
        write_json(&dir.join("made.json"), made)?;
        Ok(true)
    }

    /// Adds a PNG a farm worker drew (its recipe inside) to the library as this job's output.
    pub(crate) fn import_drawn(
        &self,
        job: &JobRecord,
        png: &[u8],
        recipe: Recipe,
        ctx: &JobCtx,
    ) -> Result<AssetId, StudioError> {
        let stored = self
            .library
            .store(&mut Cursor::new(png), png.len() as u64, ctx)?;
        // Nothing that does not decode joins the library, whoever drew it.
        mintframe_media::check_file(
            &self.library.file_path(&stored.sha256),
            &mintframe_media::Limits::DEFAULT,
        )
        .map_err(|e| {
            StudioError::Task(format!(
                "a worker sent an image that does not decode: {}",
                crate::media_reason(&e)
            ))
        })?;
        let name = generate::asset_name(&recipe.prompt, recipe.seed, 0);
        Ok(self.library.add_asset(NewAsset {
            kind: AssetKind::Image,
            name: name.clone(),
            recipe: Some(recipe),
            job: Some(job.id.clone()),
            files: vec![NewFile {
                role: "main".into(),
                file_name: format!("{name}.png"),
                mime: "image/png".into(),
                stored,
            }],
        })?)
    }

    /// Where a collection stands, from its folder.
    pub fn collection_report(&self, spec_toml: &str) -> Result<CollectionReport, StudioError> {
        let drawn = self.collection_draw(spec_toml)?;
        let made = self.collection_made(&drawn.dir)?;
        let read = |name: &str| -> Option<serde_json::Value> {
            std::fs::read(drawn.dir.join(name))
                .ok()
                .and_then(|b| serde_json::from_slice(&b).ok())
        };
        let mut by: BTreeMap<String, u32> = BTreeMap::new();
        for m in made.values() {
            *by.entry(m.by.clone()).or_default() += 1;
        }
        let publish: Option<PublishReport> =
            read("publish.json").and_then(|v| serde_json::from_value(v).ok());
        Ok(CollectionReport {
            name: drawn.spec.name.clone(),
            dir: drawn.dir.display().to_string(),
            tokens: drawn.tokens.len() as u32,
            made: made.len() as u32,
            assets: drawn
                .tokens
                .iter()
                .filter_map(|t| made.get(&t.number).map(|m| m.asset.clone()))
                .collect(),
            provenance: read("provenance.json")
                .and_then(|v| v["provenance"].as_str().map(str::to_owned)),
            made_by: by.into_iter().collect(),
            publish,
        })
    }
}
