//! Pose conditioning made in Rust: skeleton animation templates ([`rig`], the bundled JSON
//! files of `assets/poses/`) and the images a ControlNet or an img2img pass reads from a pose
//! ([`render`]).

pub mod edges;
pub mod render;
pub mod rig;

use std::path::Path;

use mintframe_types::pose::PoseTemplate;
use mintframe_types::{AnimationKind, View};

use crate::MediaError;

fn bundled_text(view: View, kind: AnimationKind) -> &'static str {
    match (view, kind) {
        (View::Side, AnimationKind::Idle) => {
            include_str!("../../../../assets/poses/side-idle.json")
        }
        (View::Side, AnimationKind::Walk) => {
            include_str!("../../../../assets/poses/side-walk.json")
        }
        (View::Side, AnimationKind::Run) => include_str!("../../../../assets/poses/side-run.json"),
        (View::Side, AnimationKind::Jump) => {
            include_str!("../../../../assets/poses/side-jump.json")
        }
        (View::Side, AnimationKind::Attack) => {
            include_str!("../../../../assets/poses/side-attack.json")
        }
        (View::Side, AnimationKind::Hurt) => {
            include_str!("../../../../assets/poses/side-hurt.json")
        }
        (View::Side, AnimationKind::Death) => {
            include_str!("../../../../assets/poses/side-death.json")
        }
        (View::Topdown, AnimationKind::Idle) => {
            include_str!("../../../../assets/poses/topdown-idle.json")
        }
        (View::Topdown, AnimationKind::Walk) => {
            include_str!("../../../../assets/poses/topdown-walk.json")
        }
        (View::Topdown, AnimationKind::Run) => {
            include_str!("../../../../assets/poses/topdown-run.json")
        }
        (View::Topdown, AnimationKind::Jump) => {
            include_str!("../../../../assets/poses/topdown-jump.json")
        }
        (View::Topdown, AnimationKind::Attack) => {
            include_str!("../../../../assets/poses/topdown-attack.json")
        }
        (View::Topdown, AnimationKind::Hurt) => {
            include_str!("../../../../assets/poses/topdown-hurt.json")
        }
        (View::Topdown, AnimationKind::Death) => {
            include_str!("../../../../assets/poses/topdown-death.json")
        }
        (View::Iso, AnimationKind::Idle) => include_str!("../../../../assets/poses/iso-idle.json"),
        (View::Iso, AnimationKind::Walk) => include_str!("../../../../assets/poses/iso-walk.json"),
        (View::Iso, AnimationKind::Run) => include_str!("../../../../assets/poses/iso-run.json"),
        (View::Iso, AnimationKind::Jump) => include_str!("../../../../assets/poses/iso-jump.json"),
        (View::Iso, AnimationKind::Attack) => {
            include_str!("../../../../assets/poses/iso-attack.json")
        }
        (View::Iso, AnimationKind::Hurt) => include_str!("../../../../assets/poses/iso-hurt.json"),
        (View::Iso, AnimationKind::Death) => {
            include_str!("../../../../assets/poses/iso-death.json")
        }
    }
}

/// The template shipped with Mintframe for `kind` seen from `view`.
pub fn bundled(view: View, kind: AnimationKind) -> Result<PoseTemplate, MediaError> {
    parse(
        Path::new(&rig::file_name(kind, view)),
        bundled_text(view, kind),
    )
}

/// A template from its JSON text, validated (joint counts, joints in the frame, core joints,
/// frames in every facing, mirrors resolved).
pub fn parse(path: &Path, text: &str) -> Result<PoseTemplate, MediaError> {
    let t: PoseTemplate = serde_json::from_str(text).map_err(|e| MediaError::Image {
        path: path.to_owned(),
        reason: format!("not a pose template: {e}"),
    })?;
    t.validate().map_err(|e| MediaError::Image {
        path: path.to_owned(),
        reason: e.to_string(),
    })?;
    Ok(t)
}

/// A template file a user edited, read under a size cap.
pub fn read(path: &Path) -> Result<PoseTemplate, MediaError> {
    let limits = crate::Limits::DEFAULT;
    let (mut file, _) = crate::guard::open_regular(path, &limits)?;
    let mut text = String::new();
    std::io::Read::read_to_string(&mut file, &mut text).map_err(|e| MediaError::Image {
        path: path.to_owned(),
        reason: e.to_string(),
    })?;
    parse(path, &text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_bundled_template_loads() {
        for v in View::ALL {
            for k in AnimationKind::ALL {
                let t = bundled(*v, *k).expect("bundled");
                assert_eq!((t.view, t.animation), (*v, *k));
            }
        }
    }

    #[test]
    fn a_template_with_zero_frames_or_a_bad_joint_is_refused_with_its_place() {
        let e = parse(
            Path::new("t.json"),
            r#"{"animation":"walk","view":"side","fps":10,"looped":true,"facings":[{"facing":"e","frames":[]}]}"#,
        )
        .expect_err("no frames")
        .to_string();
        assert!(e.contains("has no frames"), "{e}");
        let mut joints = vec!["[0.5, 0.5]"; 18];
        joints[4] = "[0.5, 1.5]";
        let text = format!(
            r#"{{"animation":"walk","view":"side","fps":10,"looped":true,"facings":[{{"facing":"e","frames":[{{"joints":[{}]}}]}}]}}"#,
            joints.join(",")
        );
        let e = parse(Path::new("t.json"), &text)
            .expect_err("out")
            .to_string();
        assert!(
            e.contains("frame 1: joint right_wrist is at (0.5, 1.5)"),
            "{e}"
        );
    }
}
