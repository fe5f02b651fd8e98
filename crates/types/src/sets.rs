//! The closed sets of the domain. Each is an enum with one spelling, used by serde (the job rows,
//! the library, NFT records), by specta (a string-literal union in TypeScript) and by clap (the
//! CLI refuses a bad value and lists the good ones), so no crate parses these names again.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// A value outside a closed set, with every value that would have been accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {what} {value:?}; choose one of {valid}")]
pub struct UnknownValue {
    pub what: &'static str,
    pub value: String,
    pub valid: String,
}

macro_rules! closed_set {
    (
        $(#[$meta:meta])*
        $name:ident ($what:literal) {
            $( $(#[$vmeta:meta])* $variant:ident = $s:literal ),+ $(,)?
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[cfg_attr(feature = "specta", derive(specta::Type))]
        #[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
        pub enum $name {
            $(
                $(#[$vmeta])*
                #[serde(rename = $s)]
                #[cfg_attr(feature = "clap", value(name = $s))]
                $variant,
            )+
        }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $s,)+
                }
            }

            /// Every accepted spelling, for messages.
            pub fn names() -> String {
                $name::ALL.iter().map(|v| v.as_str()).collect::<Vec<_>>().join(", ")
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl FromStr for $name {
            type Err = UnknownValue;
            fn from_str(s: &str) -> Result<$name, UnknownValue> {
                $name::ALL
                    .iter()
                    .copied()
                    .find(|v| v.as_str() == s)
                    .ok_or_else(|| UnknownValue {
                        what: $what,
                        value: s.to_owned(),
                        valid: $name::names(),
                    })
            }
        }
    };
}

closed_set! {
    /// The sampler of a generation.
    Scheduler ("scheduler") {
        Ddim = "ddim",
        Euler = "euler",
        /// Euler ancestral.
        EulerA = "euler_a",
        /// DPM++ 2M with the Karras sigma schedule.
        DpmPp2mKarras = "dpmpp_2m_karras",
        /// Latent Consistency: 2–8 steps with an LCM model or LCM-LoRA, guidance 1–2.
        Lcm = "lcm",
    }
}

impl Scheduler {
    /// The name A1111 writes in its `parameters` chunk (other tools read it).
    pub fn a1111_name(self) -> &'static str {
        match self {
            Scheduler::Ddim => "DDIM",
            Scheduler::Euler => "Euler",
            Scheduler::EulerA => "Euler a",
            Scheduler::DpmPp2mKarras => "DPM++ 2M Karras",
            Scheduler::Lcm => "LCM",
        }
    }
}

closed_set! {
    /// What turns the final latents into pixels.
    Decoder ("decoder") {
        /// The model's own VAE.
        Full = "full",
        /// TAESD / TAESDXL, the tiny autoencoder: a fraction of the VAE's time, softer detail;
        /// for drafts and long batches.
        Tiny = "tiny",
    }
}

closed_set! {
    /// The precision weights and activations run in.
    DType ("dtype") {
        F32 = "f32",
        F16 = "f16",
        /// bf16 weights: on a CPU with AVX-512 BF16 the convolutions and linear layers run
        /// bf16 products summed in f32 (half the weights' memory); elsewhere f32.
        Bf16 = "bf16",
    }
}

closed_set! {
    /// Which NFT metadata a collection carries.
    Standard ("standard") {
        /// ERC-721 with OpenSea's fields; `tokenURI = baseURI + tokenId`.
        Erc721 = "erc721",
        /// ERC-1155: files named by the 64-hex-digit id, URI with `{id}`.
        Erc1155 = "erc1155",
        /// Metaplex token metadata (Solana): `properties.files`, `category`.
        Metaplex = "metaplex",
    }
}

closed_set! {
    /// How a collection's metadata files are named.
    Layout ("layout") {
        /// `0`, `1`, … (OpenZeppelin's and ERC721A's `baseURI + tokenId`).
        Numbered = "numbered",
        /// `0.json`, `1.json`, … for contracts that append `.json`.
        NumberedJson = "numbered-json",
        /// Metaplex Sugar: `0.json`, … and `collection.json`.
        Sugar = "sugar",
    }
}

closed_set! {
    /// How files and folders become a DAG: Kubo's import profiles (IPIP-499), so a CID computed
    /// here is the one a node with the same profile gives.
    CidProfile ("CID profile") {
        /// Kubo's default since 2015: CIDv0 (`Qm…`), 256 KiB chunks, 174 links per file node,
        /// folders sharded past 256 KiB of names and CIDs.
        UnixfsV0_2015 = "unixfs-v0-2015",
        /// `ipfs add --cid-version 1`: CIDv1 with raw leaves, otherwise as unixfs-v0-2015.
        CidV1 = "cid-v1",
        /// CIDv1, raw leaves, 1 MiB chunks, 1024 links per file node, folders sharded once
        /// their block would pass 256 KiB.
        UnixfsV1_2025 = "unixfs-v1-2025",
    }
}

closed_set! {
    /// What a render-farm worker is doing.
    WorkerState ("worker state") {
        Idle = "idle",
        /// Getting a task's model from the coordinator's object store.
        Fetching = "fetching",
        Working = "working",
    }
}

closed_set! {
    /// How a marketplace shows an attribute (OpenSea's `display_type`).
    DisplayType ("display type") {
        Number = "number",
        BoostNumber = "boost_number",
        BoostPercentage = "boost_percentage",
        /// A Unix timestamp in seconds.
        Date = "date",
    }
}

closed_set! {
    /// How colour error is spread when an image is quantized to a palette.
    Dither ("dither") {
        None = "none",
        /// Ordered 4×4 Bayer: a fixed pattern, the same in every frame (no crawl in animations).
        Bayer = "bayer",
        /// Floyd–Steinberg error diffusion.
        FloydSteinberg = "floyd_steinberg",
    }
}

closed_set! {
    /// How a cell of pseudo-pixels becomes one pixel.
    Downscale ("downscale") {
        /// The cell's centre pixel.
        Nearest = "nearest",
        /// The cell's mean.
        Box = "box",
        /// The cell's most common colour (ties: the lowest value).
        Majority = "majority",
    }
}

closed_set! {
    /// The palettes Mintframe ships (Lospec's published colours, in their order).
    BuiltinPalette ("palette") {
        Pico8 = "pico-8",
        Sweetie16 = "sweetie-16",
        Endesga32 = "endesga-32",
        Db32 = "db32",
        /// The original DMG greens, dark to light.
        GameBoy = "gameboy",
        /// Lospec's 55-colour NES list.
        Nes = "nes",
    }
}

closed_set! {
    /// Which axes of a seamless tile wrap around.
    SeamlessAxes ("seamless axes") {
        Both = "both",
        /// Left and right edges meet (a horizontal strip: ground, a wall).
        X = "x",
        /// Top and bottom edges meet (a vertical strip: a waterfall, a ladder).
        Y = "y",
    }
}

closed_set! {
    /// The networks that cut a subject out of any image.
    MatteModel ("matte model") {
        /// U²-Net-p (Apache-2.0 weights, rembg's ONNX): small, always installed.
        U2netp = "u2netp",
    }
}

closed_set! {
    /// How a sheet's frames are laid out.
    SheetLayout ("sheet layout") {
        /// Equal cells, one animation a row when they are the same length: what engines slice
        /// by a cell size.
        Grid = "grid",
        /// Each frame trimmed to its pixels and packed in shelves; exports carry the offsets.
        Tight = "tight",
    }
}

closed_set! {
    /// What keeps a character still from frame to frame.
    Anchor ("anchor") {
        /// Frames as they are.
        None = "none",
        /// The centre of each frame's opaque box: jitters when limbs swing.
        Bounds = "bounds",
        /// The lowest opaque row (the ground line) and the body's core column (the median
        /// column of the upper half): feet stay on the ground and the torso stays put.
        Feet = "feet",
    }
}

closed_set! {
    /// How an animation plays, as Aseprite's tags name it.
    PlayDirection ("play direction") {
        Forward = "forward",
        Reverse = "reverse",
        PingPong = "pingpong",
    }
}

closed_set! {
    /// What a sheet is exported as, beside its PNG.
    SheetFormat ("sheet format") {
        /// Aseprite's JSON, hash form (frames keyed by name), with frame tags and a pivot slice.
        AsepriteJson = "aseprite-json",
        /// Aseprite's JSON, array form.
        AsepriteJsonArray = "aseprite-json-array",
        /// An `.aseprite` file: one layer, a cel per frame, tags, a pivot slice.
        Aseprite = "aseprite",
        /// TexturePacker's generic JSON, hash form, with pivots.
        TexturePacker = "texturepacker",
        /// TexturePacker's generic JSON, array form.
        TexturePackerArray = "texturepacker-array",
        /// A Phaser 3 multi-atlas with its animations (`anims.fromJSON`).
        Phaser = "phaser",
        /// A Godot 4 `SpriteFrames` resource (`.tres`) over the PNG.
        Godot = "godot",
        /// The cell size, columns and rows of a grid sheet, for engines that slice by a grid.
        GridInfo = "grid",
    }
}

closed_set! {
    /// What a media file is, read from its first bytes, never from its name.
    MediaFormat ("media format") {
        Png = "png",
        Gif = "gif",
        WebP = "webp",
        Jpeg = "jpeg",
        /// MP4 / MOV (ISO base media).
        Mp4 = "mp4",
        /// WebM / Matroska.
        Matroska = "webm",
        /// Aseprite's own format (`.aseprite`, `.ase`).
        Aseprite = "aseprite",
    }
}

impl MediaFormat {
    /// Reads the format from a file's first 16 bytes; `None` for anything else.
    pub fn sniff(head: &[u8]) -> Option<MediaFormat> {
        if head.starts_with(b"\x89PNG\r\n\x1a\n") {
            Some(MediaFormat::Png)
        } else if head.starts_with(b"GIF87a") || head.starts_with(b"GIF89a") {
            Some(MediaFormat::Gif)
        } else if head.len() >= 12 && &head[..4] == b"RIFF" && &head[8..12] == b"WEBP" {
            Some(MediaFormat::WebP)
        } else if head.starts_with(&[0xFF, 0xD8, 0xFF]) {
            Some(MediaFormat::Jpeg)
        } else if head.len() >= 8 && &head[4..8] == b"ftyp" {
            Some(MediaFormat::Mp4)
        } else if head.starts_with(&[0x1A, 0x45, 0xDF, 0xA3]) {
            Some(MediaFormat::Matroska)
        } else if head.len() >= 14
            && head[4..6] == [0xE0, 0xA5]
            && matches!(u16::from_le_bytes([head[12], head[13]]), 8 | 16 | 32)
        {
            // The size comes first, then A5E0; the colour depth at 12 makes a chance match rare.
            Some(MediaFormat::Aseprite)
        } else {
            None
        }
    }

    /// The extension a file of this format is saved with.
    pub fn extension(self) -> &'static str {
        match self {
            MediaFormat::Jpeg => "jpg",
            other => other.as_str(),
        }
    }

    /// Whether `ext` (any case, no dot) is a name this format is saved under.
    pub fn named_by(self, ext: &str) -> bool {
        let ext = ext.to_ascii_lowercase();
        match self {
            MediaFormat::Png => ext == "png" || ext == "apng",
            MediaFormat::Jpeg => ext == "jpg" || ext == "jpeg",
            MediaFormat::Mp4 => ext == "mp4" || ext == "mov" || ext == "m4v",
            MediaFormat::Matroska => ext == "webm" || ext == "mkv",
            MediaFormat::Aseprite => ext == "aseprite" || ext == "ase",
            other => ext == other.as_str(),
        }
    }

    /// The format an extension names, if any.
    pub fn from_extension(ext: &str) -> Option<MediaFormat> {
        MediaFormat::ALL.iter().copied().find(|f| f.named_by(ext))
    }

    pub fn mime(self) -> &'static str {
        match self {
            MediaFormat::Png => "image/png",
            MediaFormat::Gif => "image/gif",
            MediaFormat::WebP => "image/webp",
            MediaFormat::Jpeg => "image/jpeg",
            MediaFormat::Mp4 => "video/mp4",
            MediaFormat::Matroska => "video/webm",
            MediaFormat::Aseprite => "image/x-aseprite",
        }
    }

    /// The asset kind a file of this format becomes when nothing else is said.
    pub fn asset_kind(self) -> crate::AssetKind {
        match self {
            MediaFormat::Png | MediaFormat::Jpeg | MediaFormat::WebP => crate::AssetKind::Image,
            MediaFormat::Gif | MediaFormat::Aseprite => crate::AssetKind::Animation,
            MediaFormat::Mp4 | MediaFormat::Matroska => crate::AssetKind::Clip,
        }
    }

    /// Whether FFmpeg, not a Rust decoder, reads it.
    pub fn is_video(self) -> bool {
        matches!(
            self,
            MediaFormat::Jpeg | MediaFormat::Mp4 | MediaFormat::Matroska
        )
    }
}

closed_set! {
    /// What kind of work a job does.
    JobKind ("job kind") {
        Import = "import",
        Generate = "generate",
        Publish = "publish",
        PullModel = "pull_model",
        Process = "process",
        Sheet = "sheet",
        Tileset = "tileset",
        Train = "train",
        Character = "character",
        Clip = "clip",
        Shots = "shots",
        Interpolate = "interpolate",
        Collection = "collection",
    }
}

closed_set! {
    /// When in-between frames are put back into the source's own colours.
    PaletteLock ("palette lock") {
        /// When the source uses 256 colours or fewer (pixel art).
        Auto = "auto",
        On = "on",
        Off = "off",
    }
}

closed_set! {
    /// How one shot of a cinematic gives way to the next, over the transition's length.
    Transition ("transition") {
        /// The next shot starts at once.
        Cut = "cut",
        /// Through black: the shot fades out, the next fades in (the first shot fades in).
        Fade = "fade",
        /// The two shots mix.
        Dissolve = "dissolve",
        /// The next shot slides in over the last from the right edge to the left.
        WipeLeft = "wipe-left",
        /// The next shot slides in from the left edge to the right.
        WipeRight = "wipe-right",
    }
}

closed_set! {
    /// How a camera move's speed changes over its shot.
    Easing ("easing") {
        Linear = "linear",
        EaseIn = "ease-in",
        EaseOut = "ease-out",
        EaseInOut = "ease-in-out",
    }
}

impl Easing {
    /// Progress at `t` (0–1) of the move.
    pub fn at(self, t: f32) -> f32 {
        let t = t.clamp(0.0, 1.0);
        match self {
            Easing::Linear => t,
            Easing::EaseIn => t * t,
            Easing::EaseOut => t * (2.0 - t),
            Easing::EaseInOut => t * t * (3.0 - 2.0 * t),
        }
    }
}

closed_set! {
    /// Where a cinematic's dialogue lines go.
    SubtitleMode ("subtitles") {
        /// Drawn into the frames.
        Burn = "burn",
        /// A WebVTT file beside the video.
        Webvtt = "webvtt",
        Both = "both",
        Off = "off",
    }
}

closed_set! {
    /// The files a clip is written as.
    ClipFormat ("clip format") {
        /// H.264 in MP4 (yuv420p, `+faststart`): plays everywhere.
        Mp4 = "mp4",
        /// VP9 in WebM with an alpha plane.
        Webm = "webm",
        /// A looping GIF, one palette for the whole clip.
        Gif = "gif",
        /// An animated PNG, lossless.
        Apng = "apng",
        /// An animated WebP.
        Webp = "webp",
    }
}

impl ClipFormat {
    /// The file extension (APNG files end in `.png`).
    pub fn extension(self) -> &'static str {
        match self {
            ClipFormat::Apng => "png",
            other => other.as_str(),
        }
    }

    pub fn mime(self) -> &'static str {
        match self {
            ClipFormat::Mp4 => "video/mp4",
            ClipFormat::Webm => "video/webm",
            ClipFormat::Gif => "image/gif",
            ClipFormat::Apng => "image/apng",
            ClipFormat::Webp => "image/webp",
        }
    }
}

closed_set! {
    /// What went wrong, as the UI branches on it: stable names, one per way out.
    ErrorKind ("error kind") {
        LibraryCorrupt = "library_corrupt",
        DataDir = "data_dir",
        DiskFull = "disk_full",
        NotFound = "not_found",
        Library = "library",
        IpfsUnreachable = "ipfs_unreachable",
        PinningService = "pinning_service",
        InvalidCollection = "invalid_collection",
        CidMismatch = "cid_mismatch",
        Ipfs = "ipfs",
        Cancelled = "cancelled",
        JobState = "job_state",
        Internal = "internal",
        Render = "render",
        Media = "media",
        /// A file that does not decode, or claims more than the limits allow.
        Damaged = "damaged",
        Io = "io",
        Keyring = "keyring",
        Settings = "settings",
        InvalidRequest = "invalid_request",
        OutOfMemory = "out_of_memory",
        UnknownModel = "unknown_model",
        ModelNotInstalled = "model_not_installed",
        Offline = "offline",
        PickleRefused = "pickle_refused",
        BadWeights = "bad_weights",
        BadLora = "bad_lora",
        BadImage = "bad_image",
        DeviceUnavailable = "device_unavailable",
        Diffusion = "diffusion",
        /// The render farm: not reachable, a credential refused, a worker's failure.
        Farm = "farm",
        /// An Arweave gateway down or refusing, a wallet that cannot pay, a malformed key.
        Arweave = "arweave",
    }
}

closed_set! {
    /// Which layers of the UNet a LoRA training run adapts.
    LoraTargets ("LoRA target") {
        /// The attention projections (`to_q`, `to_k`, `to_v`, `to_out`): diffusers' default.
        Attention = "attention",
        /// Every linear layer and 1×1 convolution of the transformer blocks (attention,
        /// feed-forward, `proj_in`/`proj_out`): kohya's default for SD LoRAs.
        Transformer = "transformer",
        /// The transformer blocks plus the 3×3 convolutions of the resnets (LoCon): learns
        /// textures and shapes as well as composition.
        Locon = "locon",
    }
}

closed_set! {
    /// How the learning rate moves over a training run, after its warm-up.
    LrSchedule ("learning-rate schedule") {
        Constant = "constant",
        /// Linearly down to zero at the last step.
        Linear = "linear",
        /// Half a cosine down to zero at the last step.
        Cosine = "cosine",
    }
}

closed_set! {
    /// The 18 body joints of the OpenPose (COCO) format, in its order.
    Joint ("joint") {
        Nose = "nose",
        Neck = "neck",
        RightShoulder = "right_shoulder",
        RightElbow = "right_elbow",
        RightWrist = "right_wrist",
        LeftShoulder = "left_shoulder",
        LeftElbow = "left_elbow",
        LeftWrist = "left_wrist",
        RightHip = "right_hip",
        RightKnee = "right_knee",
        RightAnkle = "right_ankle",
        LeftHip = "left_hip",
        LeftKnee = "left_knee",
        LeftAnkle = "left_ankle",
        RightEye = "right_eye",
        LeftEye = "left_eye",
        RightEar = "right_ear",
        LeftEar = "left_ear",
    }
}

closed_set! {
    /// Where the camera looks from: level (side-scrollers), steeply from above (top-down RPGs)
    /// or isometric.
    View ("view") {
        Side = "side",
        Topdown = "topdown",
        Iso = "iso",
    }
}

closed_set! {
    /// Which way a character faces on screen: S towards the viewer, E to the right.
    Facing ("facing") {
        S = "s",
        W = "w",
        E = "e",
        N = "n",
        Sw = "sw",
        Se = "se",
        Nw = "nw",
        Ne = "ne",
    }
}

closed_set! {
    /// The animation cycles the skeleton templates hold.
    AnimationKind ("animation") {
        Idle = "idle",
        Walk = "walk",
        Run = "run",
        Jump = "jump",
        Attack = "attack",
        Hurt = "hurt",
        Death = "death",
    }
}

closed_set! {
    /// What a ControlNet reads: an OpenPose skeleton, Canny edges or a line-art edge map.
    ControlKind ("control kind") {
        Pose = "pose",
        Canny = "canny",
        Lineart = "lineart",
    }
}
