//! Plain data shared by every Mintframe crate. Nothing here does I/O: it is serde types only, so
//! every other crate (and the generated TypeScript of the studio) can agree on one shape.
//!
//! 64-bit integers are `number` in TypeScript (`specta(type = u32)`): sizes, times and seeds stay
//! below 2^53, where a JS number is exact.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

pub mod pose;
pub mod ranges;
mod sets;
pub mod shots;
pub use sets::{
    Anchor, AnimationKind, BuiltinPalette, CidProfile, ClipFormat, ControlKind, DType, Decoder,
    DisplayType, Dither, Downscale, Easing, ErrorKind, Facing, JobKind, Joint, Layout, LoraTargets,
    LrSchedule, MatteModel, MediaFormat, PaletteLock, PlayDirection, Scheduler, SeamlessAxes,
    SheetFormat, SheetLayout, Standard, SubtitleMode, Transition, UnknownValue, View, WorkerState,
};

/// Identifies one asset in the library. A UUIDv7 string, so ids sort by creation time.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
#[serde(transparent)]
pub struct AssetId(pub String);

impl fmt::Display for AssetId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Identifies one job (queued, running or finished). A UUIDv7 string.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
#[serde(transparent)]
pub struct JobId(pub String);

impl fmt::Display for JobId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// What an asset is, which decides how it is previewed, exported and published.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
#[serde(rename_all = "snake_case")]
pub enum AssetKind {
    Image,
    SpriteSheet,
    Tile,
    Animation,
    Clip,
    Other,
}

impl AssetKind {
    pub const ALL: [AssetKind; 6] = [
        AssetKind::Image,
        AssetKind::SpriteSheet,
        AssetKind::Tile,
        AssetKind::Animation,
        AssetKind::Clip,
        AssetKind::Other,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            AssetKind::Image => "image",
            AssetKind::SpriteSheet => "sprite_sheet",
            AssetKind::Tile => "tile",
            AssetKind::Animation => "animation",
            AssetKind::Clip => "clip",
            AssetKind::Other => "other",
        }
    }

    pub fn parse(s: &str) -> Option<AssetKind> {
        AssetKind::ALL.into_iter().find(|k| k.as_str() == s)
    }

    /// The kind a file most likely holds, judged by its extension (lower-cased, no dot).
    pub fn guess_from_extension(ext: &str) -> AssetKind {
        match ext.to_ascii_lowercase().as_str() {
            "png" | "jpg" | "jpeg" | "webp" | "bmp" | "tga" => AssetKind::Image,
            "gif" | "apng" => AssetKind::Animation,
            "mp4" | "webm" | "mov" | "mkv" => AssetKind::Clip,
            _ => AssetKind::Other,
        }
    }
}

impl fmt::Display for AssetKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One weight file a generation used, named so a recipe pins the exact bytes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
pub struct WeightFile {
    pub path: String,
    pub sha256: String,
}

/// Everything needed to make an asset again. Imported assets have none.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
pub struct Recipe {
    pub model_id: String,
    pub model_files: Vec<WeightFile>,
    pub license: Option<String>,
    pub prompt: String,
    pub negative_prompt: String,
    #[cfg_attr(feature = "specta", specta(type = u32))]
    pub seed: u64,
    pub scheduler: Scheduler,
    pub steps: u32,
    pub guidance: f32,
    pub width: u32,
    pub height: u32,
    pub strength: Option<f32>,
    pub tiling: bool,
    pub post_processing: Vec<String>,
    pub app_version: String,
    pub backend: String,
    pub dtype: DType,
    /// LoRAs merged at load, with their hashes and strengths.
    #[serde(default)]
    pub loras: Vec<RecipeLora>,
    /// Steps applied after generation, in order (`mintframe pixelate`, `cutout`).
    #[serde(default)]
    pub post_steps: Vec<PostStep>,
    /// img2img / inpaint inputs, by hash.
    #[serde(default)]
    pub init_image_sha256: Option<String>,
    #[serde(default)]
    pub mask_sha256: Option<String>,
    /// Latent transparency: the LayerDiffuse decoder that made the alpha, by hash.
    #[serde(default)]
    pub transparent: Option<TransparentRecipe>,
    /// ControlNets, by hash, with the conditions they read.
    #[serde(default)]
    pub controls: Vec<RecipeControl>,
    /// The starting noise given with `--latents` instead of the seed's, by hash (of its f32
    /// values, little-endian): the seed alone does not re-make this image.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latents_sha256: Option<String>,
    /// The tiny autoencoder that decoded the image, when not the model's VAE.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tiny_decoder: Option<WeightFile>,
}

/// How an image's alpha was decoded from its latent (LayerDiffuse).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
pub struct TransparentRecipe {
    pub decoder: WeightFile,
    /// The median of eight flipped and rotated passes instead of one.
    pub augmented: bool,
}

/// Latent transparency for a generation: the images come out RGBA, their alpha decoded from
/// the latent by LayerDiffuse's transparent VAE decoder (pair it with the transparent-attention
/// LoRA for the model, through `loras`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
pub struct TransparentSpec {
    /// The decoder's `.safetensors` file.
    pub decoder: String,
    /// The reference's quality mode: the median of eight flips and rotations (8× the decode).
    pub augmented: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
pub struct RecipeLora {
    pub file: WeightFile,
    pub strength: f32,
}

/// One file that belongs to an asset (`role` says which: "main", "poster", "atlas", ...).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
pub struct AssetFile {
    pub role: String,
    pub file_name: String,
    pub sha256: String,
    #[cfg_attr(feature = "specta", specta(type = u32))]
    pub size_bytes: u64,
    pub mime: String,
}

/// A row of the library list.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
pub struct AssetSummary {
    pub id: AssetId,
    pub kind: AssetKind,
    pub name: String,
    /// Milliseconds since the Unix epoch.
    #[cfg_attr(feature = "specta", specta(type = u32))]
    pub created_at_ms: i64,
    #[cfg_attr(feature = "specta", specta(type = u32))]
    pub size_bytes: u64,
    /// The prompt and model of a generated asset (none for imports), for search.
    #[serde(default)]
    pub prompt: Option<String>,
    #[serde(default)]
    pub model: Option<String>,
    /// Why the asset's file does not decode, once `library check --repair` has found it so and
    /// moved the file to quarantine; `None` for a healthy asset.
    #[serde(default)]
    pub damaged: Option<String>,
}

/// An asset with its files and recipe.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
pub struct AssetDetail {
    pub summary: AssetSummary,
    pub files: Vec<AssetFile>,
    pub recipe: Option<Recipe>,
}

/// Where a job stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
#[serde(rename_all = "snake_case")]
pub enum JobState {
    Queued,
    Running,
    Succeeded,
    Failed,
    Cancelled,
}

impl JobState {
    pub fn as_str(self) -> &'static str {
        match self {
            JobState::Queued => "queued",
            JobState::Running => "running",
            JobState::Succeeded => "succeeded",
            JobState::Failed => "failed",
            JobState::Cancelled => "cancelled",
        }
    }

    pub fn parse(s: &str) -> Option<JobState> {
        [
            JobState::Queued,
            JobState::Running,
            JobState::Succeeded,
            JobState::Failed,
            JobState::Cancelled,
        ]
        .into_iter()
        .find(|k| k.as_str() == s)
    }

    pub fn is_finished(self) -> bool {
        matches!(
            self,
            JobState::Succeeded | JobState::Failed | JobState::Cancelled
        )
    }
}

impl fmt::Display for JobState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a job does, with its parameters; stored as JSON so a restart can resume it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum JobSpec {
    /// Copy files into the library, one asset each.
    Import {
        paths: Vec<String>,
        kind: Option<AssetKind>,
    },
    /// Generate images with a diffusion model; every output is an asset with its recipe.
    Generate(Box<GenerateSpec>),
    /// Post-process images (cut-out, pixel art, palette, outline): each source, an asset id or
    /// an absolute file path, becomes one new asset; a palette is locked across all of them.
    Process {
        sources: Vec<String>,
        steps: Vec<PostStep>,
        kind: Option<AssetKind>,
    },
    /// Pack library assets' frames into one sprite sheet asset with its exports.
    Sheet(Box<SheetSpec>),
    /// A two-terrain corner tileset from two seamless tiles, with engine exports.
    Tileset(Box<TilesetSpec>),
    /// Publish library assets as a collection (the node, a cluster, pinning services). Resumes
    /// without re-sending what the target already holds.
    Publish(Box<PublishSpec>),
    /// Download a model from the hub into the model folder; resumes partial files.
    PullModel { model: String },
    /// Train a LoRA on a creator's images; resumes from its last checkpoint.
    Train(Box<TrainSpec>),
    /// A character sprite pack: every facing and frame of some animations, one sheet.
    Character(Box<CharacterSpec>),
    /// A clip from a prompt with AnimateDiff motion modules, written in each format asked.
    Clip(Box<ClipSpec>),
    /// A cinematic from a shot list: every shot drawn, moved, joined by its transition, with
    /// subtitles and sound, as one MP4.
    Shots(Box<shots::ShotList>),
    /// RIFE in-betweens for a clip, written as a new clip.
    Interpolate(Box<InterpolateSpec>),
    /// A generative collection: every token drawn from its spec, generated here or on a
    /// render farm, its rarity report and provenance written, then published if asked.
    Collection(Box<CollectionJob>),
}

/// A generative collection to make (see `mintframe-collection` for the spec's TOML).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
pub struct CollectionJob {
    /// The collection spec as TOML: the job carries it whole, so it resumes from itself.
    pub spec_toml: String,
    /// A render farm's NATS URL; none: this machine draws every token.
    #[serde(default)]
    pub farm: Option<String>,
    /// Publish to the configured node once every token is made.
    #[serde(default)]
    pub publish: bool,
    /// The CID profile of that publish.
    #[serde(default)]
    pub profile: Option<CidProfile>,
}

/// A render-farm worker as its last heartbeat told it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
pub struct WorkerBeat {
    pub worker: String,
    pub state: WorkerState,
    /// `run/token` it is drawing.
    pub task: Option<String>,
    /// Tasks finished since it started.
    #[cfg_attr(feature = "specta", specta(type = u32))]
    pub done: u64,
    #[cfg_attr(feature = "specta", specta(type = f64))]
    pub started_ms: u64,
    /// The engine's device (`cpu`, `cuda:0`).
    pub device: String,
    /// Tasks per minute since it started.
    pub per_minute: f64,
}

/// A render farm at a glance: its queue and its workers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
pub struct FarmStatus {
    pub url: String,
    /// Tasks waiting for a worker.
    #[cfg_attr(feature = "specta", specta(type = u32))]
    pub queued: u64,
    /// Tasks a worker holds and has not acked.
    pub in_flight: u32,
    /// Results waiting in the results stream.
    #[cfg_attr(feature = "specta", specta(type = u32))]
    pub results: u64,
    /// Workers heard from in the last few seconds.
    pub workers: Vec<WorkerBeat>,
    /// Tasks per minute, all workers together.
    pub per_minute: f64,
}

/// How often one trait value was drawn.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
pub struct ValueTally {
    pub value: String,
    pub count: u32,
    /// count / tokens.
    pub share: f64,
}

/// One trait's values as drawn.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
pub struct TraitTally {
    pub name: String,
    pub values: Vec<ValueTally>,
}

/// A collection spec drawn but not generated: every token unique, each value's share.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
pub struct CollectionCheck {
    pub name: String,
    pub tokens: u32,
    pub one_of_ones: u32,
    pub traits: Vec<TraitTally>,
}

/// Where a collection stands: its folder, tokens made, and the provenance once all are.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
pub struct CollectionReport {
    pub name: String,
    /// The collection's folder: tokens.json, rarity.json, rarity.html, provenance.json,
    /// reveal.json and images/.
    pub dir: String,
    pub tokens: u32,
    pub made: u32,
    /// Library assets in token order (made ones only).
    pub assets: Vec<String>,
    /// sha256 of the images' sha256s in token order, once every token is made.
    pub provenance: Option<String>,
    /// Tokens each worker made (`local` for this machine).
    pub made_by: Vec<(String, u32)>,
    pub publish: Option<PublishReport>,
}

impl JobSpec {
    pub fn kind(&self) -> JobKind {
        match self {
            JobSpec::Import { .. } => JobKind::Import,
            JobSpec::Generate(_) => JobKind::Generate,
            JobSpec::Publish(_) => JobKind::Publish,
            JobSpec::PullModel { .. } => JobKind::PullModel,
            JobSpec::Process { .. } => JobKind::Process,
            JobSpec::Sheet(_) => JobKind::Sheet,
            JobSpec::Tileset(_) => JobKind::Tileset,
            JobSpec::Train(_) => JobKind::Train,
            JobSpec::Character(_) => JobKind::Character,
            JobSpec::Clip(_) => JobKind::Clip,
            JobSpec::Shots(_) => JobKind::Shots,
            JobSpec::Interpolate(_) => JobKind::Interpolate,
            JobSpec::Collection(_) => JobKind::Collection,
        }
    }

    pub fn name(&self) -> &'static str {
        self.kind().as_str()
    }
}

/// A clip from a prompt: every frame denoised together with an AnimateDiff motion adapter
/// (windows of `context` frames overlapping by `overlap` for longer clips), looped if asked,
/// and written in each of `formats`. Completed at submit (seed, model settings, device), so
/// the job reproduces.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
pub struct ClipSpec {
    pub prompt: String,
    #[serde(default)]
    pub negative_prompt: String,
    /// A model id or path (SD 1.x: AnimateDiff's motion modules are for its UNet).
    pub model: String,
    /// A motion adapter: a diffusers `MotionAdapter` folder or one `.safetensors` (v1, v2,
    /// v3, AnimateLCM). Empty: the model folder's own `motion_adapter/`.
    #[serde(default)]
    pub motion: String,
    /// MotionLoRAs (camera moves and the like, AnimateDiff's layout) merged into the motion
    /// adapter, each at its strength.
    #[serde(default)]
    pub motion_loras: Vec<LoraSpec>,
    pub frames: u32,
    pub fps: u32,
    /// Frames the motion modules see at once (16 for AnimateDiff) and how many neighbouring
    /// windows share.
    pub context: u32,
    pub overlap: u32,
    /// The last frame flows into the first: the windows wrap around the clip's end (and a
    /// walk heads back to its first keyframe).
    #[serde(default)]
    pub looped: bool,
    /// Later (prompt, seed) keyframes; the clip's own prompt and seed are frame 0's. Between
    /// two, text embeddings are slerped (and, on a walk, the noise).
    #[serde(default)]
    pub keyframes: Vec<ClipKeyframe>,
    /// A keyframe walk without motion modules: every frame its own image on the way between
    /// keyframes (no motion adapter needed).
    #[serde(default)]
    pub walk: bool,
    /// vid2vid: a video (file or library asset id) restyled frame by frame — each frame
    /// repainted at `strength` from the video's frame mixed with the last result
    /// (`coherence`), colours held to the first result. Its frames, rate and sound are the
    /// clip's.
    #[serde(default)]
    pub source: Option<String>,
    #[serde(default)]
    pub strength: Option<f32>,
    #[serde(default)]
    pub coherence: Option<f32>,
    #[serde(default)]
    pub width: Option<u32>,
    #[serde(default)]
    pub height: Option<u32>,
    #[serde(default)]
    pub steps: Option<u32>,
    #[serde(default)]
    pub guidance: Option<f32>,
    #[serde(default)]
    pub scheduler: Option<Scheduler>,
    #[serde(default)]
    #[cfg_attr(feature = "specta", specta(type = Option<u32>))]
    pub seed: Option<u64>,
    pub formats: Vec<ClipFormat>,
    /// A soundtrack (a file FFmpeg reads) for the MP4 and WebM, cut to the clip's length.
    #[serde(default)]
    pub audio: Option<String>,
    /// The clip's name in the library (file names are made from it).
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub dtype: Option<DType>,
    #[serde(default)]
    pub device: Option<String>,
}

/// RIFE in-betweens: `factor − 1` frames between every two of `source` (and between the last
/// and the first when `looped`), as a new clip in `formats`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
pub struct InterpolateSpec {
    /// A library asset id or (from the CLI) a file: anything with frames.
    pub source: String,
    /// RIFE 4.x weights: a name in `<data>/rife/` or (from the CLI) a file.
    pub rife: String,
    pub factor: u32,
    #[serde(default)]
    pub looped: bool,
    #[serde(default = "auto_lock")]
    pub palette_lock: PaletteLock,
    /// Frames per second; the source's rate times the factor when left out.
    #[serde(default)]
    pub fps: Option<u32>,
    /// A sheet's cell size when the source is a sprite sheet file.
    #[serde(default)]
    pub frame_size: Option<[u32; 2]>,
    pub formats: Vec<ClipFormat>,
    #[serde(default)]
    pub name: Option<String>,
}

fn auto_lock() -> PaletteLock {
    PaletteLock::Auto
}

/// A keyframe of a clip: at `frame`, this prompt and seed (the clip's seed when left out).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
pub struct ClipKeyframe {
    pub frame: u32,
    pub prompt: String,
    #[serde(default)]
    pub negative_prompt: String,
    #[serde(default)]
    #[cfg_attr(feature = "specta", specta(type = Option<u32>))]
    pub seed: Option<u64>,
}

/// How well a clip's end meets its start: `seam` is the mean absolute difference (0–1) between
/// the last frame and the first, `step` the median of it between neighbouring frames, and
/// `score` is `step / seam` up to 1 — 1 when looping back is no bigger a jump than any step.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
pub struct LoopScore {
    pub score: f32,
    pub seam: f32,
    pub step: f32,
}

/// A LoRA training run as the user asked for it. The seed is fixed at submit, so a run resumed
/// from a checkpoint ends with the same LoRA as one never interrupted.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
#[serde(default)]
pub struct TrainSpec {
    /// The LoRA's name: a plain file name, written to `<data>/loras/<name>.safetensors`.
    pub name: String,
    /// The base model: an id from `mintframe models list`, or a path.
    pub model: String,
    /// Training images: folders (captions in a `.txt` beside each image), image files, or
    /// library asset ids.
    pub dataset: Vec<String>,
    /// Captions set here win over `.txt` files: by asset id or file path.
    pub captions: BTreeMap<String, String>,
    /// The caption of images that have none; `{caption}` in it is replaced by the image's own
    /// caption where there is one, e.g. `"{caption}, mfstyle pixel art"`.
    pub caption_template: Option<String>,
    /// A word put in front of every caption, which then calls up the style in prompts.
    pub trigger: Option<String>,
    /// Training side in pixels (images are cropped and scaled to about this area).
    pub resolution: u32,
    /// Aspect-ratio buckets: images keep their shape (sides in steps of 64 pixels).
    pub buckets: bool,
    /// Times each image is seen per epoch.
    pub repeats: u32,
    /// Mirrored copies, drawn at random (for subjects that have no handedness).
    pub flip: bool,
    pub rank: u32,
    pub alpha: f32,
    pub targets: LoraTargets,
    pub steps: u32,
    pub batch_size: u32,
    pub grad_accum: u32,
    pub learning_rate: f64,
    pub schedule: LrSchedule,
    pub warmup_steps: u32,
    pub noise_offset: f32,
    pub min_snr_gamma: Option<f32>,
    pub ema_decay: Option<f32>,
    #[cfg_attr(feature = "specta", specta(type = Option<u32>))]
    pub seed: Option<u64>,
    /// A checkpoint (and sample images) every this many steps; 0: only at the end.
    pub checkpoint_every: u32,
    /// Prompts drawn at each checkpoint with fixed seeds, to watch the style arrive.
    pub sample_prompts: Vec<String>,
    pub sample_steps: u32,
    pub dtype: Option<DType>,
    /// cpu, cuda, cuda:N or metal.
    pub device: Option<String>,
    /// A checkpoint to continue from (of this same run: same images, captions and settings).
    pub resume_from: Option<String>,
    /// Recompute activations in the backward pass (gradient checkpointing): far less memory
    /// (SD 1.5 at 512² on a 24 GiB machine) for about a third more time.
    pub gradient_checkpointing: bool,
}

/// One optimiser step of a training run, as its log records it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
pub struct TrainPoint {
    pub step: u32,
    pub loss: f64,
    pub lr: f64,
    /// Seconds since the run (or its resumption) started.
    pub secs: f64,
}

/// The sample images drawn at one checkpoint.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
pub struct TrainSamples {
    pub step: u32,
    /// PNG files, one per sample prompt.
    pub files: Vec<String>,
}

/// A training run as `mintframe train status` and the Train screen show it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
pub struct TrainStatus {
    pub job: JobRecord,
    pub name: String,
    pub points: Vec<TrainPoint>,
    /// Steps of the checkpoints written so far.
    pub checkpoints: Vec<u32>,
    pub samples: Vec<TrainSamples>,
    /// The finished LoRA, once there is one.
    pub lora: Option<String>,
}

impl Default for TrainSpec {
    fn default() -> TrainSpec {
        TrainSpec {
            name: String::new(),
            model: String::new(),
            dataset: Vec::new(),
            captions: BTreeMap::new(),
            caption_template: None,
            trigger: None,
            resolution: 512,
            buckets: true,
            repeats: 1,
            flip: false,
            rank: 8,
            alpha: 4.0,
            targets: LoraTargets::Transformer,
            steps: 500,
            batch_size: 1,
            grad_accum: 1,
            learning_rate: 1e-4,
            schedule: LrSchedule::Constant,
            warmup_steps: 0,
            noise_offset: 0.0,
            min_snr_gamma: Some(5.0),
            ema_decay: None,
            seed: None,
            checkpoint_every: 100,
            sample_prompts: Vec::new(),
            sample_steps: 20,
            dtype: None,
            device: None,
            resume_from: None,
            gradient_checkpointing: false,
        }
    }
}

/// A generation as the user asked for it. Left-out settings take the model's defaults when the
/// job is submitted, and the seed is fixed then too, so a resumed job makes the same images.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
#[serde(default)]
pub struct GenerateSpec {
    /// A model id from `mintframe models list`, or a path to a diffusers folder / .safetensors file.
    pub model: String,
    pub prompt: String,
    pub negative_prompt: String,
    #[cfg_attr(feature = "specta", specta(type = Option<u32>))]
    pub seed: Option<u64>,
    pub steps: Option<u32>,
    pub guidance: Option<f32>,
    pub width: Option<u32>,
    pub height: Option<u32>,
    pub scheduler: Option<Scheduler>,
    /// Images in one run; item i gets seed + i.
    pub batch: Option<u32>,
    /// img2img / inpaint: how much of the init image to repaint (0..1].
    pub strength: Option<f32>,
    /// A PNG to start from (img2img), by path.
    pub init_image: Option<String>,
    /// A PNG mask (white = repaint) for inpainting, the init image's size.
    pub mask: Option<String>,
    /// Seamless tiles: circular padding on both axes, or on `wrap`'s.
    pub seamless: bool,
    /// Which axes wrap when `seamless` (both when left out).
    #[serde(default)]
    pub wrap: Option<SeamlessAxes>,
    /// RGBA output through LayerDiffuse's transparent decoder.
    #[serde(default)]
    pub transparent: Option<TransparentSpec>,
    /// Force VAE tiling on; otherwise the memory preflight decides.
    pub vae_tiling: bool,
    pub dtype: Option<DType>,
    /// cpu, cuda, cuda:N or metal.
    pub device: Option<String>,
    /// kohya LoRA files and their strengths.
    pub loras: Vec<LoraSpec>,
    /// Memory the run may use; default: the memory free now. The preflight turns VAE tiling on,
    /// or refuses, before anything heavy runs.
    #[cfg_attr(feature = "specta", specta(type = Option<u32>))]
    pub memory_budget_mib: Option<u64>,
    /// ControlNets steering the generation; their residuals add up.
    #[serde(default)]
    pub controls: Vec<ControlSpec>,
    /// A safetensors file with one tensor `latents` (batch × 4 × height/8 × width/8, unit
    /// normal): the starting noise instead of the seed's, to compare a run with another tool's.
    #[serde(default)]
    pub latents: Option<String>,
    /// What decodes the latents: the model's VAE (default) or the tiny autoencoder.
    #[serde(default)]
    pub decoder: Option<Decoder>,
    /// The tiny autoencoder (a diffusers `AutoencoderTiny` folder or its weight file) when
    /// `decoder` is tiny; default: the model's own `taesd/`, else `<models>/taesd` (SD 1.x/2.x)
    /// or `<models>/taesdxl` (SDXL).
    #[serde(default)]
    pub tiny_decoder: Option<String>,
}

/// One ControlNet and what it reads.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
pub struct ControlSpec {
    /// The ControlNet: a diffusers folder or a `.safetensors` file (diffusers or original names).
    pub controlnet: String,
    /// A PNG the generation's size; for `pose` also a pose JSON (`{"joints": [...]}`), drawn
    /// as the OpenPose annotator draws it.
    pub image: String,
    /// What the image is turned into: `pose` takes a skeleton as it is (or draws a pose
    /// JSON), `canny` and `lineart` make edges from any image.
    pub kind: ControlKind,
    pub weight: f32,
    /// The share of the steps it acts in, 0..1.
    pub start: f32,
    pub end: f32,
    /// Guess mode: it sees only the prompted half of the batch and its outer residuals are
    /// weaker, so the image leads the prompt.
    pub guess: bool,
}

/// A ControlNet a generation used, by hash, with its condition image's hash.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
pub struct RecipeControl {
    pub controlnet: WeightFile,
    pub kind: ControlKind,
    /// The condition as the ControlNet read it (RGB bytes), after the skeleton or edges were made.
    pub condition_sha256: String,
    pub weight: f32,
    pub start: f32,
    pub end: f32,
    pub guess: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
pub struct LoraSpec {
    pub path: String,
    pub strength: f32,
}

/// How to show a still in a headless preview render.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
#[serde(default)]
pub struct PreviewSpec {
    /// Integer zoom, 1 to 64.
    pub zoom: u32,
    /// Repeat 3×3, to see whether a tile is seamless.
    pub tile: bool,
    /// Linear filtering instead of nearest (photos rather than pixel art).
    pub linear: bool,
    /// A pixel grid (at zoom 4 and up).
    pub grid: bool,
    /// `checker` or a colour `#rrggbb`.
    pub backdrop: String,
    /// A sprite sheet's cell size `[w, h]`: show one cell (frames counted left to right, top to
    /// bottom) instead of the whole image.
    pub frame_size: Option<[u32; 2]>,
    /// Which cell, from 0.
    pub frame_index: u32,
    /// Onion skin: the previous and next cells, tinted and faded, behind this one.
    pub onion: bool,
}

impl Default for PreviewSpec {
    fn default() -> PreviewSpec {
        PreviewSpec {
            zoom: 1,
            tile: false,
            linear: false,
            grid: false,
            backdrop: "checker".into(),
            frame_size: None,
            frame_index: 0,
            onion: false,
        }
    }
}

/// A model the manager knows, for pickers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
pub struct ModelInfo {
    pub id: String,
    pub name: String,
    pub description: String,
    pub arch: String,
    pub installed: bool,
    /// An add-on for models of `arch` (LayerDiffuse transparency), not a model to generate with.
    #[serde(default)]
    pub addon: bool,
    /// Licence id, with "(non-commercial)" when outputs may not be sold.
    pub license: String,
    pub license_url: String,
    pub license_summary: String,
    pub commercial: bool,
    pub default_scheduler: Scheduler,
    pub default_steps: u32,
    pub default_guidance: f32,
    pub default_width: u32,
    pub default_height: u32,
}

/// A progress report: `step` of `total` within `stage`. `total` 0 means unknown.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
pub struct Progress {
    pub stage: String,
    #[cfg_attr(feature = "specta", specta(type = u32))]
    pub step: u64,
    #[cfg_attr(feature = "specta", specta(type = u32))]
    pub total: u64,
}

/// A job as the library records it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
pub struct JobRecord {
    pub id: JobId,
    pub spec: JobSpec,
    pub state: JobState,
    pub progress: Option<Progress>,
    pub error: Option<String>,
    /// Assets the job made so far.
    pub outputs: Vec<AssetId>,
    /// Inputs the job refused and went on without (an import's files that do not decode).
    pub refused: Vec<Refusal>,
    #[cfg_attr(feature = "specta", specta(type = u32))]
    pub created_at_ms: i64,
    #[cfg_attr(feature = "specta", specta(type = u32))]
    pub updated_at_ms: i64,
}

/// What `library check` (or a repair) found, for the studio's Library screen and the CLI.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
pub struct LibraryHealth {
    pub healthy: bool,
    pub files_checked: u32,
    /// One line per finding (and per repair action), as the CLI prints them.
    pub findings: Vec<String>,
}

/// Repainting a tileset's seams with a diffusion model (inpainting along each boundary), so the
/// terrains blend instead of meeting on a cut.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
pub struct SeamPaint {
    pub model: String,
    pub prompt: String,
    pub steps: u32,
    #[cfg_attr(feature = "specta", specta(type = u32))]
    pub seed: u64,
    /// How much of the seam is repainted, 0 < s ≤ 1.
    pub strength: f32,
}

/// Two seamless terrains (library tiles or square image files, one size) to the 16 corner
/// transitions.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
pub struct TilesetSpec {
    pub terrains: [String; 2],
    /// Terrain names for the engines; the assets' names otherwise.
    pub names: Option<[String; 2]>,
    /// The asset's name (its files are named after it).
    pub name: Option<String>,
    pub seam: Option<SeamPaint>,
}

/// A character sprite pack as the user asked for it (`mintframe character`, the Character
/// screen): one prompt drawn in every facing of a view and every frame of each animation,
/// post-processed to one palette, registered on the feet and packed into one sheet with its
/// engine exports, a poster, an animated preview per animation, its recipes and a consistency
/// report. Completed at submit (seed and model fixed), so the job reproduces.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
pub struct CharacterSpec {
    pub prompt: String,
    #[serde(default)]
    pub negative_prompt: String,
    /// A model id or path; the offline default when empty.
    #[serde(default)]
    pub model: String,
    pub view: View,
    /// 4 or 8 for top-down and isometric; side views have two (e, w).
    pub directions: u32,
    pub animations: Vec<AnimationKind>,
    /// Frames per animation; each template's own count when left out.
    #[serde(default)]
    pub frames: Option<u32>,
    /// The sprite's side in pixels.
    pub size: u32,
    /// The side each frame is generated at; the model's default when left out.
    #[serde(default)]
    pub gen_size: Option<u32>,
    /// A built-in palette or a palette file; when left out, the best `colors` colours for the
    /// whole pack.
    #[serde(default)]
    pub palette: Option<String>,
    pub colors: u32,
    /// The exact colours (`#rrggbb`), ahead of `palette` and `colors`: a re-roll keeps its
    /// pack's palette, so the frames it does not draw again stay byte for byte.
    #[serde(default)]
    pub locked_palette: Vec<String>,
    #[cfg_attr(feature = "specta", specta(type = Option<u32>))]
    #[serde(default)]
    pub seed: Option<u64>,
    #[serde(default)]
    pub steps: Option<u32>,
    #[serde(default)]
    pub guidance: Option<f32>,
    #[serde(default)]
    pub scheduler: Option<Scheduler>,
    /// How much of the pose's body silhouette each frame repaints (img2img strength, 0..1].
    pub strength: f32,
    /// An OpenPose ControlNet for the model (diffusers folder or .safetensors): each frame
    /// follows its skeleton.
    #[serde(default)]
    pub controlnet: Option<String>,
    #[serde(default = "one_f32")]
    pub control_weight: f32,
    /// Edited templates (JSON files) used instead of the bundled ones, by animation; read into
    /// `custom_templates` at submit, so the job does not depend on the files afterwards.
    #[serde(default)]
    pub templates: Vec<String>,
    /// The edited templates themselves, as they were at submit.
    #[serde(default)]
    pub custom_templates: Vec<pose::PoseTemplate>,
    /// Frames or rows drawn again with new seeds, the rest of the pack untouched.
    #[serde(default)]
    pub rerolls: Vec<Reroll>,
    /// A picture of the character every frame keeps to: a PNG of the sprite's size or the
    /// generation size, showing the first animation's first frame in the first facing (a path,
    /// or a library asset id). When left out, the pack's own first frame is the reference.
    #[serde(default)]
    pub reference: Option<String>,
    /// The reference's pixels' sha256, fixed at submit: a re-roll or a recipe remakes only
    /// with the same picture.
    #[serde(default)]
    pub reference_sha256: Option<String>,
    /// The reference is the pack's own first frame, stored with the pack: the first row was
    /// drawn without it (it made it), the others with it. Set by a re-roll.
    #[serde(default)]
    pub reference_first_frame: bool,
    /// Reference attention ("reference-only"): every board's self-attention also attends to
    /// the reference; each step then costs two UNet passes. On when a reference is given,
    /// off otherwise, unless set.
    #[serde(default)]
    pub reference_attention: Option<bool>,
    /// 0..1: how far the prompt may pull away from the reference under reference attention.
    #[serde(default = "half_f32")]
    pub style_fidelity: f32,
    /// img2img chaining: each board starts from the reference moved bone by bone into each
    /// frame's pose, repainted at this strength, 0..1 (0.6 when a reference is given).
    #[serde(default)]
    pub chain_strength: Option<f32>,
    /// The pack's name (its files are named after it).
    #[serde(default)]
    pub name: Option<String>,
    /// Engine exports beside the sheet PNG; Aseprite JSON, `.aseprite` and Godot when empty.
    #[serde(default)]
    pub formats: Vec<SheetFormat>,
    #[serde(default)]
    pub dtype: Option<DType>,
    #[serde(default)]
    pub device: Option<String>,
    /// What decodes each board: the model's VAE (default) or the tiny autoencoder (TAESD).
    #[serde(default)]
    pub decoder: Option<Decoder>,
    /// The tiny autoencoder's folder or file when `decoder` is tiny (see [`GenerateSpec`]).
    #[serde(default)]
    pub tiny_decoder: Option<String>,
}

fn one_f32() -> f32 {
    1.0
}

fn half_f32() -> f32 {
    0.5
}

/// How well a pack's frames hold together, per row and overall.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
pub struct ConsistencyReport {
    /// Colour use between frames: the total variation distance (0 same, 1 disjoint) between a
    /// frame's palette histogram and its row's first frame's; and each row's against the pack's.
    pub palette_distance_mean: f64,
    pub palette_distance_max: f64,
    pub row_palette_distance_max: f64,
    /// Intersection over union of each frame's opaque pixels with its pose's silhouette.
    pub silhouette_iou_mean: f64,
    pub silhouette_iou_min: f64,
    /// How far (px) the anchor (ground line, core column) strays from its row's median, before
    /// and after registration.
    pub anchor_drift_before_px: u32,
    pub anchor_drift_after_px: u32,
    /// Frames with nothing left after the background was cut (the model drew no subject).
    pub empty_frames: u32,
    pub rows: Vec<RowReport>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
pub struct RowReport {
    pub animation: AnimationKind,
    pub facing: Facing,
    /// Drawn as this facing's row, flipped: re-roll that row instead.
    #[serde(default)]
    pub mirror_of: Option<Facing>,
    pub palette_distance_max: f64,
    pub silhouette_iou_mean: f64,
    pub anchor_drift_before_px: u32,
}

/// One frame (`frame` given) or one whole row of a pack drawn again with `seed`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
pub struct Reroll {
    pub animation: AnimationKind,
    pub facing: Facing,
    /// 0-based; the whole row when left out.
    #[serde(default)]
    pub frame: Option<u32>,
    /// 0 asks for a fresh seed at submit (kept in the new pack's recipe).
    #[cfg_attr(feature = "specta", specta(type = u32))]
    pub seed: u64,
}

/// A named run of a sheet's frames (inclusive), as engines play it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
pub struct AnimationSpec {
    pub name: String,
    pub from: u32,
    pub to: u32,
    pub direction: PlayDirection,
    /// Loops (Godot's `loop`, Phaser's `repeat: -1`); otherwise plays once.
    pub looped: bool,
}

/// A sprite sheet as the user asked for it: the sources' frames in order, laid out, anchored,
/// named and exported. Part of the sheet asset's recipe, so it can be made again.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
pub struct SheetSpec {
    /// Library assets (or absolute files), whose frames join the sheet in this order.
    pub sources: Vec<String>,
    /// The asset's name; the first source's otherwise.
    pub name: Option<String>,
    pub layout: SheetLayout,
    /// Grid columns; by default one animation a row, or a square.
    pub columns: Option<u32>,
    /// Transparent pixels between frames.
    pub padding: u32,
    /// Edge pixels repeated around each frame, so filtering never samples a neighbour.
    pub extrude: u32,
    pub anchor: Anchor,
    /// The pivot in frame pixels, overriding the anchor's (feet on the ground line).
    #[serde(default)]
    pub pivot: Option<[u32; 2]>,
    /// Named runs; none means one animation per multi-frame source, named after it.
    pub animations: Vec<AnimationSpec>,
    /// How long a frame shows where its source does not say.
    pub fps: u32,
    pub formats: Vec<SheetFormat>,
}

/// One image-processing step after generation (or on an imported image), in the order given.
/// A processed asset's recipe lists its steps, so the same source and steps give the same bytes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
#[serde(tag = "step", rename_all = "snake_case")]
pub enum PostStep {
    /// Removes a flat key colour (a green, blue or red screen) with a colour-difference keyer:
    /// how far a pixel leans to the key's channel, as a share of the key's lean, gives its
    /// transparency; alpha falls from 1 to 0 as `1 − share` goes from `tolerance + softness`
    /// down to `tolerance` (fractions, e.g. 0.1 and 0.5). Edges are despilled.
    Key {
        color: [u8; 3],
        tolerance: f32,
        softness: f32,
    },
    /// Cuts the subject out of any background with a segmentation network: its mask becomes
    /// the alpha. `sha256` is the weights' (filled in when the step runs), so the recipe names
    /// the exact model.
    Matte { model: MatteModel, sha256: String },
    /// Alpha to 0 or 255 (pixel art): at or above `threshold` opaque.
    BinaryAlpha { threshold: u8 },
    /// Spreads edge colours under fully transparent pixels, so filtered scaling shows no fringe.
    AlphaBleed,
    /// Crops to the opaque pixels plus `padding`.
    Trim { padding: u32 },
    /// Pseudo-pixels (cells of `cell` px, found from the image when `None`) to real pixels.
    Pixelate {
        cell: Option<u32>,
        method: Downscale,
    },
    /// Quantizes to `palette` (explicit colours) or, when it is empty, to the best `colors`
    /// colours for the whole batch (median cut in OKLab): one palette locked across every image
    /// and frame of the job.
    Quantize {
        palette: Vec<[u8; 3]>,
        colors: u32,
        dither: Dither,
    },
    /// A 1-px outline: outside the shape, or on its edge pixels when `inner`.
    Outline { color: [u8; 4], inner: bool },
    /// Pixels unlike all eight neighbours take the neighbours' common colour.
    CleanOrphans,
}

/// An input a job refused, with the reason.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
pub struct Refusal {
    pub path: String,
    pub reason: String,
}

/// How one component of the machine looks to Mintframe.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
#[serde(rename_all = "snake_case")]
pub enum CheckStatus {
    Ok,
    Warning,
    Missing,
}

impl CheckStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            CheckStatus::Ok => "ok",
            CheckStatus::Warning => "warning",
            CheckStatus::Missing => "missing",
        }
    }
}

/// A fact under a check, e.g. `("encoder libx264", "found")`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
pub struct Detail {
    pub key: String,
    pub value: String,
}

/// One component's check in the doctor report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
pub struct Check {
    pub component: String,
    pub status: CheckStatus,
    pub summary: String,
    pub details: Vec<Detail>,
}

impl Check {
    pub fn new(component: &str, status: CheckStatus, summary: impl Into<String>) -> Check {
        Check {
            component: component.to_owned(),
            status,
            summary: summary.into(),
            details: Vec::new(),
        }
    }

    pub fn detail(mut self, key: impl Into<String>, value: impl Into<String>) -> Check {
        self.details.push(Detail {
            key: key.into(),
            value: value.into(),
        });
        self
    }
}

/// What `mintframe doctor` and the studio's first screen show.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
pub struct DoctorReport {
    pub app_version: String,
    pub checks: Vec<Check>,
}

impl DoctorReport {
    pub fn all_ok(&self) -> bool {
        self.checks.iter().all(|c| c.status == CheckStatus::Ok)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_round_trip_through_their_names() {
        for kind in AssetKind::ALL {
            assert_eq!(AssetKind::parse(kind.as_str()), Some(kind));
            let json = serde_json::to_string(&kind).expect("serialise");
            assert_eq!(json, format!("\"{}\"", kind.as_str()));
        }
        assert_eq!(AssetKind::parse("video"), None);
    }

    #[test]
    fn job_spec_is_tagged_json() {
        let spec = JobSpec::Import {
            paths: vec!["a.png".into()],
            kind: None,
        };
        let json = serde_json::to_value(&spec).expect("serialise");
        assert_eq!(json["type"], "import");
        let back: JobSpec = serde_json::from_value(json).expect("parse");
        assert_eq!(back, spec);
    }
}

/// A trait every token of a collection carries, as the user typed it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
pub struct TraitSpec {
    pub trait_type: String,
    /// Numbers become JSON numbers; everything else a string.
    pub value: String,
    pub display_type: Option<DisplayType>,
}

impl std::str::FromStr for TraitSpec {
    type Err = String;

    /// `Name=Value` or `Name:display_type=Value`: the one trait grammar (CLI and studio).
    fn from_str(t: &str) -> Result<TraitSpec, String> {
        let (key, value) = t
            .split_once('=')
            .ok_or_else(|| format!("trait {t:?}: use Name=Value or Name:type=Value"))?;
        let (name, display) = match key.split_once(':') {
            Some((n, d)) => (
                n,
                Some(
                    d.trim()
                        .parse::<DisplayType>()
                        .map_err(|e| format!("trait {t:?}: {e}"))?,
                ),
            ),
            None => (key, None),
        };
        let name = name.trim();
        if name.is_empty() {
            return Err(format!("trait {t:?}: the name is empty"));
        }
        Ok(TraitSpec {
            trait_type: name.to_owned(),
            value: value.to_owned(),
            display_type: display,
        })
    }
}

impl TraitSpec {
    /// One trait a line; blank lines are skipped.
    pub fn parse_lines(text: &str) -> Result<Vec<TraitSpec>, String> {
        text.lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(str::parse)
            .collect()
    }
}

/// A collection to publish: library assets in token order and how to describe them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
pub struct PublishSpec {
    pub asset_ids: Vec<String>,
    pub name: String,
    pub description: String,
    /// Metaplex's symbol; unused by the EVM standards.
    pub symbol: String,
    pub external_url: Option<String>,
    pub traits: Vec<TraitSpec>,
    pub standard: Standard,
    pub layout: Layout,
    /// 0 (Kubo's default, `Qm…`) or 1 (`bafy…`, raw leaves); `profile`, when given, decides.
    pub cid_version: u8,
    /// Kubo's import profile the CIDs follow; none: `cid_version`'s (unixfs-v0-2015 or cid-v1).
    #[serde(default)]
    pub profile: Option<CidProfile>,
    /// Pinning services (by the name they were added under) that should also keep both roots.
    #[serde(default)]
    pub pin_to: Vec<String>,
    /// Publish through an IPFS Cluster instead of the local node.
    #[serde(default)]
    pub cluster: Option<ClusterTarget>,
    /// Each token's own traits, in token order (a generative collection's DNA); they come
    /// before the shared `traits`.
    #[serde(default)]
    pub token_traits: Vec<Vec<TraitSpec>>,
    /// Publish to Arweave (permanent storage, `ar://` links) instead of IPFS.
    #[serde(default)]
    pub arweave: Option<ArweaveTarget>,
}

/// An Arweave gateway a collection is uploaded through (a local `arlocal`, arweave.net).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
pub struct ArweaveTarget {
    pub gateway: String,
    /// The most the user accepted to pay, in winston (the price they were shown); none: the
    /// price the gateway asks when the upload starts.
    #[serde(default)]
    pub max_winston: Option<String>,
}

/// What an Arweave upload costs and whether the wallet can pay, before anything is spent.
/// Amounts are winston (10⁻¹² AR) as decimal text, with an AR reading beside them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
pub struct ArweaveQuote {
    pub gateway: String,
    /// The gateway is a local test network (arlocal), where tokens are minted for free.
    pub local: bool,
    pub address: String,
    pub balance_winston: String,
    pub price_winston: String,
    pub balance_ar: String,
    pub price_ar: String,
    /// The bundle's size: every file, both manifests, their signatures.
    #[cfg_attr(feature = "specta", specta(type = u32))]
    pub bytes: u64,
    pub enough: bool,
}

/// What an Arweave publish did.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
pub struct ArweaveReport {
    pub gateway: String,
    pub address: String,
    pub media_manifest: String,
    pub metadata_manifest: String,
    /// Data items in the bundle (files and manifests, each distinct one once).
    pub items: u32,
    #[cfg_attr(feature = "specta", specta(type = u32))]
    pub bundle_bytes: u64,
    /// The transaction carrying the bundle (empty in a plan).
    pub bundle_tx: String,
    pub price_winston: String,
    pub price_ar: String,
    pub chunks_total: u32,
    pub chunks_sent: u32,
    /// Chunks an earlier, interrupted run had sent and the gateway acknowledged: not re-sent.
    pub chunks_skipped: u32,
    pub confirmed: bool,
    /// Ids the gateway listed for the bundle, each equal to one computed offline.
    pub ids_checked: u32,
    /// Seconds sending chunks, waiting for the header to be taken and mined, reading back.
    #[serde(default)]
    pub upload_secs: f32,
    #[serde(default)]
    pub confirm_secs: f32,
    #[serde(default)]
    pub verify_secs: f32,
}

/// The Arweave wallet Mintframe signs with (its key stays in the OS keyring or the user's file).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
pub struct ArweaveWalletInfo {
    pub address: String,
    /// `keyring`, `file <path>` or `environment`.
    pub kept_in: String,
}

impl PublishSpec {
    /// The profile the CIDs follow: `profile`, else the one `cid_version` names.
    pub fn cid_profile(&self) -> CidProfile {
        self.profile.unwrap_or(if self.cid_version == 1 {
            CidProfile::CidV1
        } else {
            CidProfile::UnixfsV0_2015
        })
    }
}

/// An IPFS Cluster's REST API and the replication each pin asks for (-1: every peer).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
pub struct ClusterTarget {
    pub url: String,
    pub replication_min: i32,
    pub replication_max: i32,
}

/// A pinning service as the user added it; its token stays in the OS keyring.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
pub struct PinningServiceInfo {
    pub name: String,
    pub endpoint: String,
    /// Whether the keyring holds a token for it.
    pub has_token: bool,
}

/// What a pinning service said about one root.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
pub struct RemotePin {
    pub service: String,
    pub cid: String,
    pub requestid: String,
    /// `queued`, `pinning`, `pinned` or `failed`.
    pub status: String,
    /// What the provider reports beyond the status (the Pinning Service API's `info`: Filecoin
    /// deal states where the provider makes deals), `key: value` lines; empty when it says
    /// nothing.
    #[serde(default)]
    pub info: Vec<String>,
}

/// One problem the pre-mint check found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
pub struct PublishFinding {
    pub file: String,
    pub error: bool,
    pub field: String,
    pub message: String,
}

/// A collection's CIDs and links: computed offline (a plan) or after the node confirmed them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
pub struct PublishReport {
    /// The library's publish record, once a publish ran.
    #[cfg_attr(feature = "specta", specta(type = Option<u32>))]
    pub record_id: Option<i64>,
    pub status: String,
    pub media_cid: String,
    pub metadata_cid: String,
    pub base_uri: String,
    pub token_uris: Vec<String>,
    pub contract_uri: String,
    /// A gateway link to look at the metadata folder (display only; the URIs stay `ipfs://`).
    pub gateway_url: String,
    pub media_car: String,
    pub metadata_car: String,
    pub findings: Vec<PublishFinding>,
    /// Whether each folder was sent; `false` when the node already held it pinned.
    pub uploaded_media: bool,
    pub uploaded_metadata: bool,
    pub verified_files: u32,
    /// Pins asked of pinning services, with their last status.
    pub remote_pins: Vec<RemotePin>,
    /// The import profile every CID follows.
    #[serde(default = "unixfs_v0_2015")]
    pub profile: CidProfile,
    /// What the node was sent another way than it asked, and why (a sharded folder imported as
    /// a CAR into a node that shards differently).
    #[serde(default)]
    pub notes: Vec<String>,
    /// An Arweave publish: its manifests, bundle and upload (the CIDs and CARs are empty).
    #[serde(default)]
    pub arweave: Option<ArweaveReport>,
}

fn unixfs_v0_2015() -> CidProfile {
    CidProfile::UnixfsV0_2015
}

/// A row of the publish history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
pub struct PublishSummary {
    #[cfg_attr(feature = "specta", specta(type = u32))]
    pub id: i64,
    pub target: String,
    pub status: String,
    pub root_cid: Option<String>,
    pub name: String,
    #[cfg_attr(feature = "specta", specta(type = u32))]
    pub updated_at_ms: i64,
}

/// Where a running publish is, for a progress bar.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
pub struct PublishProgress {
    pub running: bool,
    pub message: String,
    /// 0 to 1.
    pub fraction: f32,
}

/// What a job says while it runs and when it ends: the worker sends these to whoever follows
/// (the studio's window, the CLI's progress bars). Progress events are throttled; state changes
/// always arrive.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
pub struct JobEvent {
    pub id: JobId,
    pub kind: JobKind,
    pub state: JobState,
    pub progress: Option<Progress>,
    /// Seconds left at the rate so far, once a stage has a known total and a few steps.
    pub eta_secs: Option<u32>,
    /// A small image of the work so far (a `data:` URL), for jobs that make one.
    pub preview: Option<String>,
    /// Assets the job made so far.
    pub outputs: Vec<AssetId>,
    /// Inputs the job refused and went on without (an import's files that do not decode).
    pub refused: Vec<Refusal>,
    pub error: Option<String>,
    pub error_kind: Option<ErrorKind>,
}

#[cfg(test)]
mod set_tests {
    use super::*;

    #[test]
    fn a_bad_scheduler_names_every_good_one() {
        let e = "plms".parse::<Scheduler>().expect_err("plms is not ours");
        assert_eq!(
            e.to_string(),
            "unknown scheduler \"plms\"; choose one of ddim, euler, euler_a, dpmpp_2m_karras, lcm"
        );
        for s in Scheduler::ALL {
            assert_eq!(s.as_str().parse::<Scheduler>(), Ok(*s));
            assert_eq!(
                serde_json::to_string(s).expect("json"),
                format!("\"{}\"", s.as_str())
            );
        }
    }

    #[test]
    fn layouts_keep_the_spellings_stored_records_use() {
        assert_eq!(
            serde_json::to_string(&Layout::NumberedJson).expect("json"),
            "\"numbered-json\""
        );
        assert_eq!(
            serde_json::from_str::<Standard>("\"erc1155\"").expect("json"),
            Standard::Erc1155
        );
    }

    #[test]
    fn traits_parse_with_and_without_a_display_type() {
        let t: TraitSpec = "Level:number=3".parse().expect("trait");
        assert_eq!(t.trait_type, "Level");
        assert_eq!(t.display_type, Some(DisplayType::Number));
        assert_eq!(t.value, "3");
        let t: TraitSpec = "Rarity=very = rare".parse().expect("trait");
        assert_eq!(
            (t.trait_type.as_str(), t.value.as_str()),
            ("Rarity", "very = rare")
        );
        assert!("Level:size=3".parse::<TraitSpec>().is_err());
        assert!("no equals".parse::<TraitSpec>().is_err());
        assert!("=x".parse::<TraitSpec>().is_err());
        let all = TraitSpec::parse_lines("A=1\n\n  B:date=0 \n").expect("lines");
        assert_eq!(all.len(), 2);
    }
}
