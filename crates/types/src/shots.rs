//! Shot lists for NPC cinematics: a TOML file of shots, each a prompt drawn for its duration
//! with a camera move, joined to the last by a transition, with a line of dialogue shown as a
//! subtitle and optional sound. `mintframe shots FILE.toml` renders one to an MP4.

use serde::{Deserialize, Serialize};

use crate::{Easing, Scheduler, SubtitleMode, Transition};

/// The longest cinematic one list makes, in seconds.
pub const MAX_SECONDS: f32 = 600.0;

/// A camera move over a shot: from the keyframe as drawn to `zoom` times closer, moved by
/// `pan` (fractions of the frame, x right and y down) and turned by `rotate` degrees
/// (clockwise), eased. With `strength` above 0 every frame is also repainted from the last
/// (img2img at that strength, colours held to the first frame): Deforum's way, where new detail
/// appears as the camera moves instead of the keyframe only being enlarged.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
#[serde(default, deny_unknown_fields)]
pub struct CameraMove {
    pub zoom: f32,
    pub pan: [f32; 2],
    pub rotate: f32,
    pub easing: Easing,
    pub strength: f32,
}

impl Default for CameraMove {
    fn default() -> CameraMove {
        CameraMove {
            zoom: 1.0,
            pan: [0.0, 0.0],
            rotate: 0.0,
            easing: Easing::EaseInOut,
            strength: 0.0,
        }
    }
}

/// One shot.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
#[serde(deny_unknown_fields)]
pub struct Shot {
    pub prompt: String,
    #[serde(default)]
    pub negative_prompt: String,
    /// Seconds on screen, transitions included.
    pub duration: f32,
    #[serde(default)]
    #[cfg_attr(feature = "specta", specta(type = Option<u32>))]
    pub seed: Option<u64>,
    #[serde(default)]
    pub camera: CameraMove,
    /// How this shot comes in after the last.
    #[serde(default = "cut")]
    pub transition: Transition,
    /// Seconds the transition takes.
    #[serde(default = "half_second")]
    pub transition_duration: f32,
    /// A line of dialogue, shown while the shot is on screen.
    #[serde(default)]
    pub line: Option<String>,
    #[serde(default)]
    pub speaker: Option<String>,
    /// Sound that starts with the shot (a file FFmpeg reads; relative to the list's folder).
    #[serde(default)]
    pub audio: Option<String>,
    /// Drawn with the model's motion adapter (AnimateDiff) rather than as one keyframe.
    #[serde(default)]
    pub motion: bool,
}

fn cut() -> Transition {
    Transition::Cut
}

fn half_second() -> f32 {
    0.5
}

fn twelve() -> u32 {
    12
}

fn both() -> SubtitleMode {
    SubtitleMode::Both
}

/// A cinematic: shared settings and its shots (`[[shot]]` tables in TOML).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
#[serde(deny_unknown_fields)]
pub struct ShotList {
    #[serde(default)]
    pub name: Option<String>,
    /// A model id or path; tiny-sd when empty.
    #[serde(default)]
    pub model: String,
    #[serde(default)]
    pub width: Option<u32>,
    #[serde(default)]
    pub height: Option<u32>,
    #[serde(default = "twelve")]
    pub fps: u32,
    #[serde(default)]
    pub steps: Option<u32>,
    #[serde(default)]
    pub guidance: Option<f32>,
    #[serde(default)]
    pub scheduler: Option<Scheduler>,
    /// The first shot's seed when it has none; each later shot without one takes the next.
    #[serde(default)]
    #[cfg_attr(feature = "specta", specta(type = Option<u32>))]
    pub seed: Option<u64>,
    #[serde(default = "both")]
    pub subtitles: SubtitleMode,
    /// Music under the whole cinematic (a file FFmpeg reads; relative to the list's folder).
    #[serde(default)]
    pub audio: Option<String>,
    #[serde(rename = "shot")]
    pub shots: Vec<Shot>,
    #[serde(default)]
    pub dtype: Option<crate::DType>,
    #[serde(default)]
    pub device: Option<String>,
}

/// What is wrong with a shot list, naming the shot (1-based) and the field.
pub fn check(list: &ShotList) -> Result<(), String> {
    if list.shots.is_empty() {
        return Err("the shot list has no shots: add [[shot]] tables".into());
    }
    if !(1..=60).contains(&list.fps) {
        return Err(format!("fps {} is out of range: 1 to 60", list.fps));
    }
    let mut total = 0.0;
    for (i, s) in list.shots.iter().enumerate() {
        let n = i + 1;
        if s.prompt.trim().is_empty() {
            return Err(format!("shot {n}: the prompt is empty"));
        }
        if !(s.duration.is_finite() && s.duration > 0.0) {
            return Err(format!(
                "shot {n}: duration {} must be above 0 seconds",
                s.duration
            ));
        }
        if s.duration * (list.fps as f32) < 1.0 {
            return Err(format!(
                "shot {n}: {} s is less than one frame at {} fps",
                s.duration, list.fps
            ));
        }
        if !(s.transition_duration.is_finite() && s.transition_duration >= 0.0) {
            return Err(format!(
                "shot {n}: transition_duration {} must be 0 or more seconds",
                s.transition_duration
            ));
        }
        if s.transition != Transition::Cut {
            let before = if i == 0 {
                f32::INFINITY
            } else {
                list.shots[i - 1].duration
            };
            if s.transition_duration > s.duration.min(before) {
                return Err(format!(
                    "shot {n}: a {} s {} is longer than the shots it joins",
                    s.transition_duration, s.transition
                ));
            }
        }
        if i == 0 && !matches!(s.transition, Transition::Cut | Transition::Fade) {
            return Err(format!(
                "shot 1: a {} needs a shot before it; the first shot can cut or fade in",
                s.transition
            ));
        }
        let c = &s.camera;
        if !(c.zoom.is_finite() && (0.25..=8.0).contains(&c.zoom)) {
            return Err(format!(
                "shot {n}: camera zoom {} is out of range: 0.25 to 8",
                c.zoom
            ));
        }
        if !c
            .pan
            .iter()
            .all(|p| p.is_finite() && (-2.0..=2.0).contains(p))
        {
            return Err(format!(
                "shot {n}: camera pan {:?} is out of range: -2 to 2 frames each way",
                c.pan
            ));
        }
        if !(c.rotate.is_finite() && (-360.0..=360.0).contains(&c.rotate)) {
            return Err(format!(
                "shot {n}: camera rotate {} is out of range: -360 to 360 degrees",
                c.rotate
            ));
        }
        if !(c.strength.is_finite() && (0.0..=1.0).contains(&c.strength)) {
            return Err(format!(
                "shot {n}: camera strength {} is out of range: 0 to 1",
                c.strength
            ));
        }
        if let Some(line) = &s.line
            && line.chars().count() > 300
        {
            return Err(format!("shot {n}: the line is over 300 characters"));
        }
        total += s.duration;
    }
    if total > MAX_SECONDS {
        return Err(format!(
            "the shots last {total} s, over the {MAX_SECONDS} s a shot list may"
        ));
    }
    Ok(())
}
