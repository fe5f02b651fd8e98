//! Poses and skeleton animation templates: the data the Character screen edits and
//! `mintframe character` reads, as JSON.

use serde::{Deserialize, Serialize};

use crate::{AnimationKind, Facing, Joint, View};

/// The most frames a cycle has (a template's, or a pack's `--frames`).
pub const MAX_FRAMES: usize = 16;

/// One body pose: for each of the 18 OpenPose joints (in [`Joint::ALL`]'s order) its place in the
/// frame as fractions of the width and height (x right, y down), or `None` where it is hidden.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
pub struct Pose {
    pub joints: Vec<Option<[f32; 2]>>,
}

/// Why a pose or a template cannot be used.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PoseError {
    #[error("{at}: a pose has {found} joints but the OpenPose body format has 18 ({names})")]
    JointCount {
        at: String,
        found: usize,
        names: String,
    },
    #[error(
        "{at}: joint {joint} is at ({x}, {y}), outside the frame; joints are fractions of the frame from 0 to 1"
    )]
    OutOfFrame {
        at: String,
        joint: Joint,
        x: f32,
        y: f32,
    },
    #[error("{at}: the {missing} is missing; a body pose needs the neck and both hips")]
    MissingCore { at: String, missing: Joint },
    #[error("{at}: the template has no frames")]
    NoFrames { at: String },
    #[error("{at}: {reason}")]
    Template { at: String, reason: String },
}

impl Pose {
    pub fn joint(&self, j: Joint) -> Option<[f32; 2]> {
        let i = Joint::ALL.iter().position(|x| *x == j)?;
        self.joints.get(i).copied().flatten()
    }

    /// Checks the joint count, that every joint lies in the frame, and that the neck and hips
    /// (what the character is anchored on) are there; `at` names the pose in messages.
    pub fn validate(&self, at: &str) -> Result<(), PoseError> {
        if self.joints.len() != Joint::ALL.len() {
            return Err(PoseError::JointCount {
                at: at.to_owned(),
                found: self.joints.len(),
                names: Joint::names(),
            });
        }
        for (j, p) in Joint::ALL.iter().zip(&self.joints) {
            if let Some([x, y]) = p
                && !((0.0..=1.0).contains(x) && (0.0..=1.0).contains(y))
            {
                return Err(PoseError::OutOfFrame {
                    at: at.to_owned(),
                    joint: *j,
                    x: *x,
                    y: *y,
                });
            }
        }
        for core in [Joint::Neck, Joint::RightHip, Joint::LeftHip] {
            if self.joint(core).is_none() {
                return Err(PoseError::MissingCore {
                    at: at.to_owned(),
                    missing: core,
                });
            }
        }
        Ok(())
    }

    /// The pose seen in a mirror: x flipped, left and right joints swapped.
    pub fn mirrored(&self) -> Pose {
        let mut joints = vec![None; self.joints.len()];
        for (i, j) in Joint::ALL.iter().enumerate().take(self.joints.len()) {
            let k = Joint::ALL
                .iter()
                .position(|x| *x == j.mirror())
                .unwrap_or(i);
            if let (Some(slot), Some(p)) = (joints.get_mut(k), self.joints[i]) {
                *slot = Some([1.0 - p[0], p[1]]);
            }
        }
        Pose { joints }
    }
}

impl Joint {
    /// The same joint on the other side of the body.
    pub fn mirror(self) -> Joint {
        use Joint::*;
        match self {
            RightShoulder => LeftShoulder,
            RightElbow => LeftElbow,
            RightWrist => LeftWrist,
            LeftShoulder => RightShoulder,
            LeftElbow => RightElbow,
            LeftWrist => RightWrist,
            RightHip => LeftHip,
            RightKnee => LeftKnee,
            RightAnkle => LeftAnkle,
            LeftHip => RightHip,
            LeftKnee => RightKnee,
            LeftAnkle => RightAnkle,
            RightEye => LeftEye,
            LeftEye => RightEye,
            RightEar => LeftEar,
            LeftEar => RightEar,
            other => other,
        }
    }
}

impl Facing {
    /// The facing seen in a mirror (W for E).
    pub fn mirror(self) -> Facing {
        match self {
            Facing::E => Facing::W,
            Facing::W => Facing::E,
            Facing::Ne => Facing::Nw,
            Facing::Nw => Facing::Ne,
            Facing::Se => Facing::Sw,
            Facing::Sw => Facing::Se,
            other => other,
        }
    }

    /// The facings of a pack, in the row order RPG sheets use (down, left, right, up, then the
    /// diagonals); side views have two.
    pub fn for_view(view: View, directions: u32) -> Result<Vec<Facing>, PoseError> {
        use Facing::*;
        match (view, directions) {
            (View::Side, 2) => Ok(vec![E, W]),
            (View::Topdown, 4) => Ok(vec![S, W, E, N]),
            (View::Iso, 4) => Ok(vec![Se, Sw, Ne, Nw]),
            (View::Topdown | View::Iso, 8) => Ok(vec![S, W, E, N, Sw, Se, Nw, Ne]),
            (View::Side, d) => Err(PoseError::Template {
                at: "--directions".into(),
                reason: format!(
                    "a side view has two facings (e and w), not {d}; use --directions 4 or 8 with --view topdown or iso"
                ),
            }),
            (_, d) => Err(PoseError::Template {
                at: "--directions".into(),
                reason: format!("{d} directions: use 4 or 8"),
            }),
        }
    }
}

/// One facing's frames in a template; a facing that `mirror_of` another holds no frames of its
/// own: its frames are the other's, mirrored (as artists draw W from E).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
pub struct FacingFrames {
    pub facing: Facing,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mirror_of: Option<Facing>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub frames: Vec<Pose>,
}

/// A skeleton animation: one cycle of poses per facing, for one view.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
pub struct PoseTemplate {
    pub animation: AnimationKind,
    pub view: View,
    pub fps: u32,
    /// Whether the cycle repeats (walk) or plays once (death).
    pub looped: bool,
    pub facings: Vec<FacingFrames>,
}

impl PoseTemplate {
    /// Frames per facing (every facing has the same number).
    pub fn frame_count(&self) -> usize {
        self.facings
            .iter()
            .map(|f| f.frames.len())
            .max()
            .unwrap_or(0)
    }

    /// Every facing's frames, mirrored ones made from their source.
    pub fn frames(&self, facing: Facing) -> Result<Vec<Pose>, PoseError> {
        let at = format!("{} {} template", self.view, self.animation);
        let f = self
            .facings
            .iter()
            .find(|f| f.facing == facing)
            .ok_or_else(|| PoseError::Template {
                at: at.clone(),
                reason: format!(
                    "it has no facing {facing} (it has {})",
                    self.facings
                        .iter()
                        .map(|f| f.facing.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            })?;
        match f.mirror_of {
            None => Ok(f.frames.clone()),
            Some(src) => {
                let s = self
                    .facings
                    .iter()
                    .find(|g| g.facing == src && g.mirror_of.is_none())
                    .ok_or_else(|| PoseError::Template {
                        at: at.clone(),
                        reason: format!(
                            "facing {facing} mirrors {src}, which is not a drawn facing of this template"
                        ),
                    })?;
                Ok(s.frames.iter().map(Pose::mirrored).collect())
            }
        }
    }

    /// Checks every facing: the frame counts, each pose, the mirrors' sources.
    pub fn validate(&self) -> Result<(), PoseError> {
        let at = format!("{} {} template", self.view, self.animation);
        if self.facings.is_empty() || self.frame_count() == 0 {
            return Err(PoseError::NoFrames { at });
        }
        if self.fps == 0 || self.fps > 60 {
            return Err(PoseError::Template {
                at,
                reason: format!("fps {} is out of range: 1 to 60", self.fps),
            });
        }
        let n = self.frame_count();
        if n > MAX_FRAMES {
            return Err(PoseError::Template {
                at,
                reason: format!("{n} frames: a cycle has at most {MAX_FRAMES}"),
            });
        }
        let mut seen = Vec::new();
        for f in &self.facings {
            if seen.contains(&f.facing) {
                return Err(PoseError::Template {
                    at,
                    reason: format!("facing {} is given twice", f.facing),
                });
            }
            seen.push(f.facing);
        }
        for f in &self.facings {
            let frames = self.frames(f.facing)?;
            if frames.len() != n {
                return Err(PoseError::Template {
                    at: at.clone(),
                    reason: format!(
                        "facing {} has {} frames but the others have {n}",
                        f.facing,
                        frames.len()
                    ),
                });
            }
            for (i, p) in frames.iter().enumerate() {
                p.validate(&format!("{at}, facing {}, frame {}", f.facing, i + 1))?;
            }
        }
        Ok(())
    }

    /// `n` frames resampled from the cycle (joints moved linearly between the nearest frames;
    /// a looped cycle wraps round), so a pack can ask for more or fewer frames than drawn.
    pub fn resampled(&self, facing: Facing, n: usize) -> Result<Vec<Pose>, PoseError> {
        let frames = self.frames(facing)?;
        let m = frames.len();
        if m == 0 {
            return Err(PoseError::NoFrames {
                at: format!("{} {} template", self.view, self.animation),
            });
        }
        if n == m {
            return Ok(frames);
        }
        let mut out = Vec::with_capacity(n);
        for k in 0..n {
            let t = if self.looped {
                k as f32 * m as f32 / n as f32
            } else if n == 1 {
                0.0
            } else {
                k as f32 * (m - 1) as f32 / (n - 1) as f32
            };
            let i = (t.floor() as usize).min(m - 1);
            let j = if self.looped {
                (i + 1) % m
            } else {
                (i + 1).min(m - 1)
            };
            let f = t - i as f32;
            let (a, b) = (&frames[i], &frames[j]);
            let joints = a
                .joints
                .iter()
                .zip(&b.joints)
                .map(|(p, q)| match (p, q) {
                    (Some(p), Some(q)) => {
                        Some([p[0] + (q[0] - p[0]) * f, p[1] + (q[1] - p[1]) * f])
                    }
                    // A joint hidden on either side shows as in the nearer frame.
                    (Some(p), None) if f < 0.5 => Some(*p),
                    (None, Some(q)) if f >= 0.5 => Some(*q),
                    _ => None,
                })
                .collect();
            out.push(Pose { joints });
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pose() -> Pose {
        let mut joints = vec![None; 18];
        for (i, j) in joints.iter_mut().enumerate() {
            *j = Some([0.3 + 0.01 * i as f32, 0.2 + 0.03 * i as f32]);
        }
        Pose { joints }
    }

    #[test]
    fn a_pose_with_missing_or_out_of_frame_joints_is_refused_by_name() {
        pose().validate("p").expect("valid");
        let mut p = pose();
        p.joints.pop();
        assert!(matches!(
            p.validate("p"),
            Err(PoseError::JointCount { found: 17, .. })
        ));
        let mut p = pose();
        p.joints[4] = Some([1.2, 0.5]);
        let e = p.validate("walk frame 3").expect_err("out").to_string();
        assert!(
            e.contains("walk frame 3: joint right_wrist is at (1.2, 0.5)"),
            "{e}"
        );
        let mut p = pose();
        p.joints[1] = None;
        let e = p.validate("p").expect_err("neck").to_string();
        assert!(e.contains("the neck is missing"), "{e}");
        let mut p = pose();
        p.joints[7] = Some([f32::NAN, 0.5]);
        assert!(p.validate("p").is_err(), "NaN is out of the frame");
    }

    #[test]
    fn mirroring_twice_gives_the_pose_back_and_swaps_sides() {
        let p = pose();
        let m = p.mirrored();
        let rs = p.joint(Joint::RightShoulder).expect("rs");
        let ls = m.joint(Joint::LeftShoulder).expect("ls");
        assert!((ls[0] - (1.0 - rs[0])).abs() < 1e-6 && ls[1] == rs[1]);
        for (a, b) in m.mirrored().joints.iter().zip(&p.joints) {
            let (a, b) = (a.expect("a"), b.expect("b"));
            assert!((a[0] - b[0]).abs() < 1e-6 && a[1] == b[1]);
        }
    }

    #[test]
    fn a_template_without_frames_or_with_a_dangling_mirror_is_refused() {
        let t = PoseTemplate {
            animation: AnimationKind::Walk,
            view: View::Side,
            fps: 10,
            looped: true,
            facings: vec![FacingFrames {
                facing: Facing::E,
                mirror_of: None,
                frames: vec![],
            }],
        };
        assert!(matches!(t.validate(), Err(PoseError::NoFrames { .. })));
        let t = PoseTemplate {
            facings: vec![
                FacingFrames {
                    facing: Facing::E,
                    mirror_of: None,
                    frames: vec![pose(), pose()],
                },
                FacingFrames {
                    facing: Facing::W,
                    mirror_of: Some(Facing::N),
                    frames: vec![],
                },
            ],
            ..t
        };
        let e = t.validate().expect_err("dangling").to_string();
        assert!(e.contains("facing w mirrors n"), "{e}");
        assert_eq!(
            Facing::for_view(View::Topdown, 3)
                .expect_err("3")
                .to_string(),
            "--directions: 3 directions: use 4 or 8"
        );
    }

    #[test]
    fn resampling_a_loop_wraps_and_keeps_the_drawn_frames() {
        let a = pose();
        let b = Pose {
            joints: a
                .joints
                .iter()
                .map(|p| p.map(|[x, y]| [x + 0.1, y]))
                .collect(),
        };
        let t = PoseTemplate {
            animation: AnimationKind::Walk,
            view: View::Side,
            fps: 10,
            looped: true,
            facings: vec![FacingFrames {
                facing: Facing::E,
                mirror_of: None,
                frames: vec![a.clone(), b.clone()],
            }],
        };
        let r = t.resampled(Facing::E, 4).expect("resample");
        assert_eq!(r[0], a);
        assert_eq!(r[2], b);
        let mid = r[3].joint(Joint::Neck).expect("neck")[0];
        let want = a.joint(Joint::Neck).expect("neck")[0] + 0.05;
        assert!(
            (mid - want).abs() < 1e-6,
            "the last frame lies between b and a"
        );
    }
}
