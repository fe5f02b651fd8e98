//! The skeleton animation templates, made from a 3-D stick figure: each cycle is a few joint
//! angle curves (hips, knees, shoulders, elbows, lean, a root offset), posed in 3-D, turned to
//! each facing and projected orthographically for the view (level for side views, 40° from
//! above for top-down, 30° for isometric). One figure for every view and facing is what keeps a
//! pack's directions in proportion with each other. `assets/poses/` holds the result as JSON,
//! which users edit; a test keeps the files equal to what this makes.

use std::f32::consts::{PI, TAU};

use mintframe_types::pose::{FacingFrames, Pose, PoseTemplate};
use mintframe_types::{AnimationKind, Facing, Joint, View};

type V3 = [f32; 3];
/// A projected joint (x right, y up) and whether it shows.
type Seen = ([f32; 2], bool);

fn add(a: V3, b: V3) -> V3 {
    [a[0] + b[0], a[1] + b[1], a[2] + b[2]]
}
fn scale(a: V3, s: f32) -> V3 {
    [a[0] * s, a[1] * s, a[2] * s]
}
fn sub(a: V3, b: V3) -> V3 {
    [a[0] - b[0], a[1] - b[1], a[2] - b[2]]
}
/// Rotation about the x axis (pitch: +y towards +z, i.e. leaning forward).
fn pitch(v: V3, a: f32) -> V3 {
    let (s, c) = a.sin_cos();
    [v[0], v[1] * c - v[2] * s, v[1] * s + v[2] * c]
}
/// Rotation about the y axis (yaw: +z towards +x).
fn yaw(v: V3, a: f32) -> V3 {
    let (s, c) = a.sin_cos();
    [v[0] * c + v[2] * s, v[1], -v[0] * s + v[2] * c]
}

/// Joint angles of one frame, in radians; positive swings go forward.
#[derive(Debug, Clone, Copy, Default)]
struct Angles {
    root: V3,
    /// The upper body about the pelvis.
    lean: f32,
    /// The upper body about the spine.
    twist: f32,
    /// The whole body about the feet (falling).
    fall: f32,
    hip: [f32; 2],
    knee: [f32; 2],
    shoulder: [f32; 2],
    /// Arms raised sideways.
    spread: [f32; 2],
    elbow: [f32; 2],
}

const PELVIS: V3 = [0.0, 0.49, 0.0];
const THIGH: f32 = 0.235;
const SHIN: f32 = 0.23;
const UPPER_ARM: f32 = 0.17;
const FOREARM: f32 = 0.16;

/// The figure's joints in its own frame: x to its left, y up, z forward, 1 = its height.
fn pose3d(a: &Angles) -> [V3; 18] {
    let mut j = [[0.0; 3]; 18];
    // Index 0 is the right side, 1 the left; x of the right side is negative.
    for (side, sx) in [(0usize, -1.0f32), (1, 1.0)] {
        let hip = [0.075 * sx, 0.49, 0.0];
        let th = a.hip[side];
        let knee = add(hip, scale([0.0, -th.cos(), th.sin()], THIGH));
        let sh = th - a.knee[side];
        let ankle = add(knee, scale([0.0, -sh.cos(), sh.sin()], SHIN));
        let (hi, ki, ai) = if side == 0 { (8, 9, 10) } else { (11, 12, 13) };
        j[hi] = hip;
        j[ki] = knee;
        j[ai] = ankle;
    }
    // The upper body, built upright about the pelvis, then leaned and twisted.
    let mut upper: Vec<(usize, V3)> = vec![
        (1, [0.0, 0.80, 0.0]),
        (0, [0.0, 0.905, 0.075]),
        (14, [-0.032, 0.925, 0.06]),
        (15, [0.032, 0.925, 0.06]),
        (16, [-0.068, 0.91, -0.005]),
        (17, [0.068, 0.91, -0.005]),
    ];
    for (side, sx) in [(0usize, -1.0f32), (1, 1.0)] {
        let shoulder = [0.125 * sx, 0.785, 0.0];
        let (al, be) = (a.shoulder[side], a.spread[side]);
        let dir = |al: f32| [sx * be.sin(), -be.cos() * al.cos(), be.cos() * al.sin()];
        let elbow = add(shoulder, scale(dir(al), UPPER_ARM));
        let wrist = add(elbow, scale(dir(al + a.elbow[side]), FOREARM));
        let (si, ei, wi) = if side == 0 { (2, 3, 4) } else { (5, 6, 7) };
        upper.push((si, shoulder));
        upper.push((ei, elbow));
        upper.push((wi, wrist));
    }
    for (i, p) in upper {
        let rel = sub(p, PELVIS);
        j[i] = add(PELVIS, yaw(pitch(rel, a.lean), a.twist));
    }
    // The whole body falls about the feet, then moves with the root.
    for p in j.iter_mut() {
        *p = add(pitch(*p, a.fall), a.root);
    }
    j
}

fn lerp(a: f32, b: f32, t: f32) -> f32 {
    a + (b - a) * t
}

/// Keyframed angles: frame `k` of `n` between the keys, eased.
fn keyed(keys: &[Angles], k: usize, n: usize) -> Angles {
    if n <= 1 || keys.len() == 1 {
        return keys[0];
    }
    let t = k as f32 / (n - 1) as f32 * (keys.len() - 1) as f32;
    let i = (t.floor() as usize).min(keys.len() - 2);
    let f = t - i as f32;
    let f = f * f * (3.0 - 2.0 * f);
    let (a, b) = (&keys[i], &keys[i + 1]);
    let l2 = |x: [f32; 2], y: [f32; 2]| [lerp(x[0], y[0], f), lerp(x[1], y[1], f)];
    Angles {
        root: [
            lerp(a.root[0], b.root[0], f),
            lerp(a.root[1], b.root[1], f),
            lerp(a.root[2], b.root[2], f),
        ],
        lean: lerp(a.lean, b.lean, f),
        twist: lerp(a.twist, b.twist, f),
        fall: lerp(a.fall, b.fall, f),
        hip: l2(a.hip, b.hip),
        knee: l2(a.knee, b.knee),
        shoulder: l2(a.shoulder, b.shoulder),
        spread: l2(a.spread, b.spread),
        elbow: l2(a.elbow, b.elbow),
    }
}

fn rest() -> Angles {
    Angles {
        spread: [0.1, 0.1],
        elbow: [0.15, 0.15],
        knee: [0.04, 0.04],
        ..Angles::default()
    }
}

/// The frames and playback of each animation.
fn cycle(kind: AnimationKind) -> (usize, u32, bool) {
    match kind {
        AnimationKind::Idle => (4, 6, true),
        AnimationKind::Walk => (8, 10, true),
        AnimationKind::Run => (8, 12, true),
        AnimationKind::Jump => (6, 10, false),
        AnimationKind::Attack => (6, 12, false),
        AnimationKind::Hurt => (4, 10, false),
        AnimationKind::Death => (6, 8, false),
    }
}

fn angles(kind: AnimationKind, k: usize, n: usize) -> Angles {
    let p = k as f32 / n as f32;
    let s = (TAU * p).sin();
    let c = (TAU * p).cos();
    let r = rest();
    match kind {
        AnimationKind::Idle => Angles {
            root: [0.0, -0.008 * (1.0 - c) / 2.0, 0.0],
            spread: [0.1 + 0.03 * s, 0.1 + 0.03 * s],
            elbow: [0.15 + 0.05 * (1.0 - c), 0.15 + 0.05 * (1.0 - c)],
            knee: [0.04 + 0.03 * (1.0 - c), 0.04 + 0.03 * (1.0 - c)],
            hip: [0.015 * (1.0 - c), 0.015 * (1.0 - c)],
            ..r
        },
        AnimationKind::Walk => Angles {
            root: [0.0, -0.018 * s * s, 0.0],
            hip: [0.45 * s, -0.45 * s],
            knee: [0.08 + 0.6 * c.max(0.0), 0.08 + 0.6 * (-c).max(0.0)],
            shoulder: [-0.35 * s, 0.35 * s],
            elbow: [0.25 + 0.2 * (-s).max(0.0), 0.25 + 0.2 * s.max(0.0)],
            ..r
        },
        AnimationKind::Run => Angles {
            root: [0.0, 0.03 * (2.0 * TAU * p).cos() - 0.03, 0.0],
            lean: 0.18,
            hip: [0.75 * s, -0.75 * s],
            knee: [0.3 + 1.1 * c.max(0.0), 0.3 + 1.1 * (-c).max(0.0)],
            shoulder: [-0.6 * s, 0.6 * s],
            spread: [0.15, 0.15],
            elbow: [1.3, 1.3],
            ..r
        },
        AnimationKind::Jump => {
            let crouch = |depth: f32, arms: f32| Angles {
                root: [0.0, -0.09 * depth, 0.0],
                lean: 0.25 * depth,
                hip: [0.75 * depth, 0.75 * depth],
                knee: [1.4 * depth, 1.4 * depth],
                shoulder: [arms, arms],
                ..r
            };
            let keys = [
                r,
                crouch(1.0, -0.6),
                Angles {
                    root: [0.0, 0.06, 0.0],
                    shoulder: [2.6, 2.6],
                    spread: [0.2, 0.2],
                    knee: [0.05, 0.05],
                    ..r
                },
                Angles {
                    root: [0.0, 0.2, 0.0],
                    hip: [0.7, 0.5],
                    knee: [1.2, 1.0],
                    shoulder: [2.0, 2.0],
                    spread: [0.3, 0.3],
                    ..r
                },
                Angles {
                    root: [0.0, 0.1, 0.0],
                    hip: [0.3, 0.2],
                    knee: [0.3, 0.3],
                    shoulder: [1.0, 1.0],
                    spread: [0.5, 0.5],
                    ..r
                },
                crouch(0.6, 0.3),
            ];
            keyed(&keys, k, n)
        }
        AnimationKind::Attack => {
            let stance = Angles {
                hip: [0.3, -0.25],
                knee: [0.25, 0.15],
                shoulder: [0.4, 0.6],
                elbow: [0.5, 1.2],
                ..r
            };
            let keys = [
                stance,
                Angles {
                    lean: -0.08,
                    twist: -0.35,
                    shoulder: [2.7, 0.6],
                    spread: [0.25, 0.1],
                    elbow: [1.0, 1.2],
                    ..stance
                },
                Angles {
                    lean: 0.12,
                    twist: 0.1,
                    shoulder: [1.6, 0.5],
                    elbow: [0.2, 1.2],
                    root: [0.0, -0.01, 0.03],
                    ..stance
                },
                Angles {
                    lean: 0.25,
                    twist: 0.35,
                    shoulder: [0.7, 0.4],
                    elbow: [0.05, 1.2],
                    root: [0.0, -0.03, 0.06],
                    knee: [0.45, 0.2],
                    ..stance
                },
                Angles {
                    lean: 0.15,
                    twist: 0.2,
                    shoulder: [0.3, 0.5],
                    elbow: [0.2, 1.2],
                    root: [0.0, -0.02, 0.04],
                    ..stance
                },
                stance,
            ];
            keyed(&keys, k, n)
        }
        AnimationKind::Hurt => {
            let keys = [
                r,
                Angles {
                    root: [0.0, -0.01, -0.04],
                    lean: -0.3,
                    shoulder: [0.7, 0.7],
                    spread: [0.5, 0.5],
                    elbow: [0.6, 0.6],
                    hip: [0.15, -0.1],
                    knee: [0.2, 0.1],
                    ..r
                },
                Angles {
                    root: [0.0, -0.02, -0.05],
                    lean: -0.15,
                    shoulder: [0.4, 0.4],
                    spread: [0.35, 0.35],
                    elbow: [0.5, 0.5],
                    knee: [0.3, 0.2],
                    ..r
                },
                r,
            ];
            keyed(&keys, k, n)
        }
        AnimationKind::Death => {
            let keys = [
                r,
                Angles {
                    root: [0.0, -0.06, 0.0],
                    lean: 0.35,
                    knee: [0.8, 0.7],
                    hip: [0.4, 0.35],
                    shoulder: [0.3, 0.3],
                    elbow: [0.6, 0.6],
                    ..r
                },
                Angles {
                    root: [0.0, -0.08, 0.0],
                    fall: -0.5,
                    lean: -0.1,
                    knee: [0.6, 0.5],
                    hip: [0.3, 0.3],
                    shoulder: [0.9, 1.1],
                    spread: [0.5, 0.5],
                    ..r
                },
                Angles {
                    root: [0.0, 0.02, 0.0],
                    fall: -1.2,
                    lean: 0.0,
                    knee: [0.3, 0.4],
                    hip: [0.1, 0.2],
                    shoulder: [1.6, 1.8],
                    spread: [0.6, 0.6],
                    ..r
                },
                Angles {
                    root: [0.0, 0.05, 0.0],
                    fall: -PI / 2.0,
                    knee: [0.2, 0.35],
                    hip: [0.05, 0.2],
                    shoulder: [2.6, 2.4],
                    spread: [0.7, 0.6],
                    ..r
                },
            ];
            keyed(&keys, k, n)
        }
    }
}

/// How far round each facing turns the figure (S faces the viewer, E the right).
fn turn(f: Facing) -> f32 {
    let deg: f32 = match f {
        Facing::S => 0.0,
        Facing::Se => 45.0,
        Facing::E => 90.0,
        Facing::Ne => 135.0,
        Facing::N => 180.0,
        Facing::Nw => 225.0,
        Facing::W => 270.0,
        Facing::Sw => 315.0,
    };
    deg.to_radians()
}

/// The camera's angle above the ground.
fn elevation(v: View) -> f32 {
    match v {
        View::Side => 0.0,
        View::Topdown => 40f32.to_radians(),
        View::Iso => 30f32.to_radians(),
    }
}

/// The facings a view's template holds: side views two, the others all eight.
pub fn facings(view: View) -> Vec<Facing> {
    match view {
        View::Side => vec![Facing::E, Facing::W],
        _ => Facing::ALL.to_vec(),
    }
}

/// Whether a cycle is the same seen in a mirror (an attack is one-handed: it is not).
fn symmetric(kind: AnimationKind) -> bool {
    kind != AnimationKind::Attack
}

/// Projected joints (x right, y up, in figure heights) and which face joints are visible.
fn project(j: &[V3; 18], f: Facing, view: View) -> [Seen; 18] {
    let (se, ce) = elevation(view).sin_cos();
    let head = j[1]; // measure face joints from the neck's column
    let toward = [0.0, se, ce];
    let mut out = [([0.0, 0.0], true); 18];
    for (i, p) in j.iter().enumerate() {
        let w = yaw(*p, turn(f));
        let screen = [w[0], w[1] * ce - w[2] * se];
        let visible = match Joint::ALL[i] {
            Joint::Nose | Joint::RightEye | Joint::LeftEye | Joint::RightEar | Joint::LeftEar => {
                let centre = add(head, [0.0, 0.11, 0.0]);
                let off = yaw(sub(*p, centre), turn(f));
                off[0] * toward[0] + off[1] * toward[1] + off[2] * toward[2] > -0.006
            }
            _ => true,
        };
        out[i] = (screen, visible);
    }
    out
}

/// The template of `kind` seen from `view`: every facing of the view, mirrored facings stored
/// as mirrors where the cycle is symmetric.
pub fn template(kind: AnimationKind, view: View) -> PoseTemplate {
    let (n, fps, looped) = cycle(kind);
    let faces = facings(view);
    let frames: Vec<[V3; 18]> = (0..n).map(|k| pose3d(&angles(kind, k, n))).collect();
    let projected: Vec<Vec<[Seen; 18]>> = faces
        .iter()
        .map(|f| frames.iter().map(|j| project(j, *f, view)).collect())
        .collect();
    // One scale for the whole template, so no facing or frame is drawn bigger than another.
    let (mut xmax, mut ymin, mut ymax) = (0f32, f32::MAX, f32::MIN);
    for fr in projected.iter().flatten() {
        for (p, _) in fr {
            xmax = xmax.max(p[0].abs());
            ymin = ymin.min(p[1]);
            ymax = ymax.max(p[1]);
        }
    }
    let s = 0.8f32.min(0.42 / xmax).min(0.84 / (ymax - ymin));
    let to_frame = |p: [f32; 2]| {
        let q = |v: f32| (v * 10000.0).round() / 10000.0;
        [q(0.5 + s * p[0]), q(0.93 - s * (p[1] - ymin))]
    };
    let facings = faces
        .iter()
        .zip(&projected)
        .map(|(f, frs)| {
            let mirror = f.mirror();
            if symmetric(kind)
                && mirror != *f
                && faces.iter().position(|x| x == &mirror) < faces.iter().position(|x| x == f)
            {
                return FacingFrames {
                    facing: *f,
                    mirror_of: Some(mirror),
                    frames: Vec::new(),
                };
            }
            FacingFrames {
                facing: *f,
                mirror_of: None,
                frames: frs
                    .iter()
                    .map(|fr| Pose {
                        joints: fr
                            .iter()
                            .map(|(p, vis)| vis.then(|| to_frame(*p)))
                            .collect(),
                    })
                    .collect(),
            }
        })
        .collect();
    PoseTemplate {
        animation: kind,
        view,
        fps,
        looped,
        facings,
    }
}

/// The file a template is kept in under `assets/poses/`.
pub fn file_name(kind: AnimationKind, view: View) -> String {
    format!("{view}-{kind}.json")
}

/// The template as the JSON file holds it: one pose per line, so a diff shows which frame moved.
pub fn to_json(t: &PoseTemplate) -> String {
    let mut out = String::new();
    out.push_str(&format!(
        "{{\n  \"animation\": \"{}\",\n  \"view\": \"{}\",\n  \"fps\": {},\n  \"looped\": {},\n  \"facings\": [\n",
        t.animation, t.view, t.fps, t.looped
    ));
    for (fi, f) in t.facings.iter().enumerate() {
        out.push_str(&format!("    {{\n      \"facing\": \"{}\"", f.facing));
        if let Some(m) = f.mirror_of {
            out.push_str(&format!(",\n      \"mirror_of\": \"{m}\""));
        }
        if !f.frames.is_empty() {
            out.push_str(",\n      \"frames\": [\n");
            for (k, p) in f.frames.iter().enumerate() {
                let joints: Vec<String> = p
                    .joints
                    .iter()
                    .map(|j| match j {
                        Some([x, y]) => format!("[{x}, {y}]"),
                        None => "null".into(),
                    })
                    .collect();
                out.push_str(&format!(
                    "        {{ \"joints\": [{}] }}{}\n",
                    joints.join(", "),
                    if k + 1 < f.frames.len() { "," } else { "" }
                ));
            }
            out.push_str("      ]");
        }
        out.push_str(&format!(
            "\n    }}{}\n",
            if fi + 1 < t.facings.len() { "," } else { "" }
        ));
    }
    out.push_str("  ]\n}\n");
    out
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    fn poses_dir() -> std::path::PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../assets/poses")
    }

    /// The committed templates are what the rig makes (`UPDATE_POSES=1` writes them again), and
    /// every one is valid: 18 joints in the frame, the core joints there, the mirrors resolved.
    #[test]
    fn the_pose_templates_on_disk_are_the_rigs_and_valid() {
        let update = std::env::var_os("UPDATE_POSES").is_some();
        for view in View::ALL {
            for kind in AnimationKind::ALL {
                let t = template(*kind, *view);
                t.validate().expect("valid template");
                let (n, _, _) = cycle(*kind);
                assert!((4..=16).contains(&n));
                let path = poses_dir().join(file_name(*kind, *view));
                let text = to_json(&t);
                let back: PoseTemplate = serde_json::from_str(&text).expect("parses");
                assert_eq!(back, t, "the JSON writer round-trips");
                if update {
                    std::fs::create_dir_all(poses_dir()).expect("dir");
                    std::fs::write(&path, &text).expect("write");
                } else {
                    let on_disk = std::fs::read_to_string(&path).unwrap_or_default();
                    assert!(
                        on_disk == text,
                        "{} differs from the rig's template; run UPDATE_POSES=1 cargo test -p mintframe-media pose",
                        path.display()
                    );
                }
            }
        }
    }

    #[test]
    fn a_walk_swings_its_legs_and_faces_show_only_from_the_front() {
        let t = template(AnimationKind::Walk, View::Topdown);
        let s = t.frames(Facing::S).expect("s");
        let n = t.frames(Facing::N).expect("n");
        assert!(
            s[0].joint(Joint::Nose).is_some(),
            "the nose shows facing the viewer"
        );
        assert!(n[0].joint(Joint::Nose).is_none(), "and not from behind");
        assert!(n[0].joint(Joint::RightEar).is_some());
        let side = template(AnimationKind::Walk, View::Side);
        let e = side.frames(Facing::E).expect("e");
        // A quarter cycle in, the right leg is forward (to the right, facing E).
        let k = e[2].joint(Joint::RightAnkle).expect("ra")[0];
        let l = e[2].joint(Joint::LeftAnkle).expect("la")[0];
        assert!(k > l + 0.05, "right ankle {k} ahead of left {l}");
        let w = side.frames(Facing::W).expect("w");
        let wk = w[2].joint(Joint::LeftAnkle).expect("mirrored")[0];
        assert!((wk - (1.0 - k)).abs() < 1e-6, "W is E mirrored");
        assert!(
            e[0].joint(Joint::LeftEar).is_none(),
            "the far ear is hidden side on"
        );
    }
}
