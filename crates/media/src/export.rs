//! A packed [`Sheet`] in the words each engine and tool reads: Aseprite's JSON (hash and
//! array), TexturePacker's JSON (hash and array), a Phaser 3 multi-atlas with its animations, a
//! Godot 4 `SpriteFrames` resource and a grid's slicing info. Every one names the sheet's PNG by
//! a plain file name beside it, so the folder moves as one.

use serde_json::{Map, Value, json};

use mintframe_types::PlayDirection;

use crate::sheet::{Animation, Sheet};

/// A frame's name in the exports: the sheet's name and its index, as Aseprite names them.
pub fn frame_name(sheet_name: &str, i: usize) -> String {
    format!("{sheet_name} {i}.aseprite")
}

fn rect(r: [u32; 4]) -> Value {
    json!({"x": r[0], "y": r[1], "w": r[2], "h": r[3]})
}

fn trimmed(sheet: &Sheet, i: usize) -> bool {
    let p = sheet.placed[i];
    [p.rect[2], p.rect[3]] != sheet.frame_size
}

/// The fields TexturePacker and Aseprite share for one frame.
fn frame_fields(sheet: &Sheet, i: usize) -> Map<String, Value> {
    let p = sheet.placed[i];
    let [fw, fh] = sheet.frame_size;
    let mut m = Map::new();
    m.insert("frame".into(), rect(p.rect));
    m.insert("rotated".into(), json!(false));
    m.insert("trimmed".into(), json!(trimmed(sheet, i)));
    m.insert(
        "spriteSourceSize".into(),
        rect([p.offset[0], p.offset[1], p.rect[2], p.rect[3]]),
    );
    m.insert("sourceSize".into(), json!({"w": fw, "h": fh}));
    m
}

/// Frames keyed by name (the "hash" exports) or listed with a `filename` (the "array" ones).
fn frame_list(frames: Vec<(String, Map<String, Value>)>, hash: bool) -> Value {
    if hash {
        Value::Object(
            frames
                .into_iter()
                .map(|(n, m)| (n, Value::Object(m)))
                .collect(),
        )
    } else {
        Value::Array(
            frames
                .into_iter()
                .map(|(n, mut m)| {
                    let mut o = Map::new();
                    o.insert("filename".into(), json!(n));
                    o.append(&mut m);
                    Value::Object(o)
                })
                .collect(),
        )
    }
}

fn direction_name(d: PlayDirection) -> &'static str {
    d.as_str()
}

/// Aseprite's `--format json-hash` / `json-array` export of the sheet.
pub fn aseprite_json(sheet: &Sheet, name: &str, image: &str, hash: bool) -> String {
    let frames: Vec<(String, Map<String, Value>)> = (0..sheet.placed.len())
        .map(|i| {
            let mut m = frame_fields(sheet, i);
            m.insert("duration".into(), json!(sheet.durations_ms[i]));
            (frame_name(name, i), m)
        })
        .collect();
    let frames = frame_list(frames, hash);
    let tags: Vec<Value> = sheet
        .animations
        .iter()
        .map(|a| {
            let mut t = json!({
                "name": a.name,
                "from": a.from,
                "to": a.to,
                "direction": direction_name(a.direction),
                "color": "#000000ff",
            });
            if !a.looped {
                t["repeat"] = json!("1");
            }
            t
        })
        .collect();
    let [fw, fh] = sheet.frame_size;
    let doc = json!({
        "frames": frames,
        "meta": {
            "app": "https://www.aseprite.org/",
            "version": "1.3.0",
            "image": image,
            "format": "RGBA8888",
            "size": {"w": sheet.image.width, "h": sheet.image.height},
            "scale": "1",
            "frameTags": tags,
            "layers": [{"name": name, "opacity": 255, "blendMode": "normal"}],
            "slices": [{
                "name": "pivot",
                "color": "#0000ffff",
                "keys": [{
                    "frame": 0,
                    "bounds": {"x": 0, "y": 0, "w": fw, "h": fh},
                    "pivot": {"x": sheet.pivot[0], "y": sheet.pivot[1]},
                }],
            }],
        },
    });
    pretty(&doc)
}

fn pretty(v: &Value) -> String {
    let mut s = serde_json::to_string_pretty(v).unwrap_or_default();
    s.push('\n');
    s
}

/// TexturePacker's generic JSON (hash or array), each frame with its normalised pivot.
pub fn texturepacker_json(sheet: &Sheet, name: &str, image: &str, hash: bool) -> String {
    let [px, py] = sheet.pivot_fraction();
    let frames: Vec<(String, Map<String, Value>)> = (0..sheet.placed.len())
        .map(|i| {
            let mut m = frame_fields(sheet, i);
            m.insert("pivot".into(), json!({"x": px, "y": py}));
            (format!("{name}_{i:03}.png"), m)
        })
        .collect();
    let frames = frame_list(frames, hash);
    pretty(&json!({
        "frames": frames,
        "meta": {
            "app": "https://www.codeandweb.com/texturepacker",
            "version": "1.0",
            "image": image,
            "format": "RGBA8888",
            "size": {"w": sheet.image.width, "h": sheet.image.height},
            "scale": "1",
        },
    }))
}

/// Frame indices an animation plays, in order, once: what engines without ping-pong (Godot,
/// Phaser's frame lists) are given.
pub fn play_order(a: &Animation) -> Vec<usize> {
    let fwd: Vec<usize> = (a.from..=a.to).collect();
    match a.direction {
        PlayDirection::Forward => fwd,
        PlayDirection::Reverse => fwd.into_iter().rev().collect(),
        PlayDirection::PingPong => {
            let back: Vec<usize> = fwd
                .iter()
                .rev()
                .skip(1)
                .take(fwd.len().saturating_sub(2))
                .copied()
                .collect();
            fwd.into_iter().chain(back).collect()
        }
    }
}

/// The animations an export lists: the sheet's, or one over every frame.
fn animations_or_all(sheet: &Sheet, name: &str) -> Vec<Animation> {
    if sheet.animations.is_empty() {
        vec![Animation {
            name: name.to_owned(),
            from: 0,
            to: sheet.placed.len() - 1,
            direction: PlayDirection::Forward,
            looped: true,
        }]
    } else {
        sheet.animations.clone()
    }
}

/// The shortest frame duration of an animation: its base rate; longer frames are multiples.
fn base_ms(sheet: &Sheet, order: &[usize]) -> u32 {
    order
        .iter()
        .map(|&i| sheet.durations_ms[i])
        .min()
        .unwrap_or(100)
        .max(1)
}

/// A Phaser 3 multi-atlas (`load.multiatlas`) with the animations `anims.fromJSON` reads,
/// keyed by `name` (the atlas key to load it under).
pub fn phaser_atlas(sheet: &Sheet, name: &str, image: &str) -> String {
    let [px, py] = sheet.pivot_fraction();
    let frames: Vec<Value> = (0..sheet.placed.len())
        .map(|i| {
            let mut o = Map::new();
            o.insert("filename".into(), json!(frame_name(name, i)));
            o.append(&mut frame_fields(sheet, i));
            o.insert("pivot".into(), json!({"x": px, "y": py}));
            Value::Object(o)
        })
        .collect();
    let anims: Vec<Value> = animations_or_all(sheet, name)
        .iter()
        .map(|a| {
            let order = play_order(a);
            let base = base_ms(sheet, &order);
            json!({
                "key": a.name,
                "type": "frame",
                "frames": order.iter().map(|&i| json!({
                    "key": name,
                    "frame": frame_name(name, i),
                    // Phaser adds a frame's own duration to the animation's rate.
                    "duration": sheet.durations_ms[i] - base,
                })).collect::<Vec<_>>(),
                "frameRate": 1000.0 / f64::from(base),
                "repeat": if a.looped { -1 } else { 0 },
                "yoyo": false,
            })
        })
        .collect();
    pretty(&json!({
        "textures": [{
            "image": image,
            "format": "RGBA8888",
            "size": {"w": sheet.image.width, "h": sheet.image.height},
            "scale": 1,
            "frames": frames,
        }],
        "anims": anims,
        "meta": {"app": "mintframe", "version": "1"},
    }))
}

/// A Godot 4 string literal.
pub(crate) fn gd_str(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn gd_float(v: f64) -> String {
    let s = format!("{v}");
    if s.contains('.') || s.contains('e') {
        s
    } else {
        format!("{s}.0")
    }
}

/// A Godot 4 `SpriteFrames` resource: one `AtlasTexture` per frame over the sheet (`image`,
/// beside the `.tres`), with the trimmed offset as its margin.
pub fn godot_sprite_frames(sheet: &Sheet, name: &str, image: &str) -> String {
    let n = sheet.placed.len();
    let mut out = format!(
        "[gd_resource type=\"SpriteFrames\" load_steps={} format=3]\n\n\
         [ext_resource type=\"Texture2D\" path={} id=\"1_sheet\"]\n\n",
        n + 2,
        gd_str(image)
    );
    let [fw, fh] = sheet.frame_size;
    for (i, p) in sheet.placed.iter().enumerate() {
        let [x, y, w, h] = p.rect;
        out.push_str(&format!(
            "[sub_resource type=\"AtlasTexture\" id=\"AtlasTexture_{i}\"]\n\
             atlas = ExtResource(\"1_sheet\")\n\
             region = Rect2({x}, {y}, {w}, {h})\n"
        ));
        if trimmed(sheet, i) {
            out.push_str(&format!(
                "margin = Rect2({}, {}, {}, {})\n",
                p.offset[0],
                p.offset[1],
                fw - w,
                fh - h
            ));
        }
        out.push('\n');
    }
    let anims: Vec<String> = animations_or_all(sheet, name)
        .iter()
        .map(|a| {
            let order = play_order(a);
            let base = base_ms(sheet, &order);
            let frames: Vec<String> = order
                .iter()
                .map(|&i| {
                    format!(
                        "{{\n\"duration\": {},\n\"texture\": SubResource(\"AtlasTexture_{i}\")\n}}",
                        gd_float(f64::from(sheet.durations_ms[i]) / f64::from(base))
                    )
                })
                .collect();
            format!(
                "{{\n\"frames\": [{}],\n\"loop\": {},\n\"name\": &{},\n\"speed\": {}\n}}",
                frames.join(", "),
                a.looped,
                gd_str(&a.name),
                gd_float(1000.0 / f64::from(base))
            )
        })
        .collect();
    out.push_str(&format!(
        "[resource]\nanimations = [{}]\n",
        anims.join(", ")
    ));
    out
}

/// A grid sheet's slicing: cell size, columns, rows, spacing, and the animations by frame.
pub fn grid_info(sheet: &Sheet, image: &str) -> String {
    let [fw, fh] = sheet.frame_size;
    pretty(&json!({
        "image": image,
        "frame_width": fw,
        "frame_height": fh,
        "columns": sheet.grid[0],
        "rows": sheet.grid[1],
        "frames": sheet.placed.len(),
        "padding": sheet.padding,
        "extrude": sheet.extrude,
        "margin": sheet.extrude,
        "spacing": sheet.padding + 2 * sheet.extrude,
        "pivot": {"x": sheet.pivot[0], "y": sheet.pivot[1]},
        "durations_ms": sheet.durations_ms,
        "animations": sheet.animations.iter().map(|a| json!({
            "name": a.name,
            "from": a.from,
            "to": a.to,
            "direction": direction_name(a.direction),
            "loop": a.looped,
        })).collect::<Vec<_>>(),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sheet::{PackOptions, pack};
    use crate::still::Rgba;
    use mintframe_types::{Anchor, SheetLayout};

    fn sheet(layout: SheetLayout) -> Sheet {
        let frames: Vec<Rgba> = (0..4u32)
            .map(|i| {
                let mut data = vec![0u8; 8 * 8 * 4];
                for y in i..8 {
                    let k = ((y * 8 + 3) * 4) as usize;
                    data[k..k + 4].copy_from_slice(&[200, 10, 10, 255]);
                }
                Rgba {
                    width: 8,
                    height: 8,
                    data,
                }
            })
            .collect();
        let anims = vec![Animation {
            name: "idle \"a\"".into(),
            from: 0,
            to: 3,
            direction: PlayDirection::PingPong,
            looped: false,
        }];
        pack(
            &frames,
            &[100, 100, 200, 100],
            anims,
            &PackOptions {
                layout,
                columns: None,
                padding: 1,
                extrude: 0,
                anchor: Anchor::None,
            },
        )
        .expect("pack")
    }

    #[test]
    fn ping_pong_plays_there_and_back_without_repeating_the_ends() {
        let a = Animation {
            name: "a".into(),
            from: 2,
            to: 5,
            direction: PlayDirection::PingPong,
            looped: true,
        };
        assert_eq!(play_order(&a), vec![2, 3, 4, 5, 4, 3]);
    }

    #[test]
    fn the_godot_resource_has_one_atlas_texture_a_frame_and_relative_durations() {
        let s = sheet(SheetLayout::Tight);
        let tres = godot_sprite_frames(&s, "hero", "hero.png");
        assert!(tres.starts_with("[gd_resource type=\"SpriteFrames\" load_steps=6 format=3]"));
        assert_eq!(tres.matches("type=\"AtlasTexture\"").count(), 4);
        assert!(tres.contains("margin = Rect2(3, 1, 7, 1)"), "{tres}");
        assert!(tres.contains("\"name\": &\"idle \\\"a\\\"\""), "{tres}");
        assert!(tres.contains("\"duration\": 2.0"), "{tres}");
        assert!(tres.contains("\"loop\": false"), "{tres}");
    }

    #[test]
    fn aseprite_and_texturepacker_json_parse_and_agree_on_every_frame() {
        let s = sheet(SheetLayout::Grid);
        for hash in [true, false] {
            let a: Value = serde_json::from_str(&aseprite_json(&s, "hero", "hero.png", hash))
                .expect("aseprite json");
            let t: Value = serde_json::from_str(&texturepacker_json(&s, "hero", "hero.png", hash))
                .expect("tp json");
            let list = |v: &Value| -> Vec<Value> {
                match &v["frames"] {
                    Value::Object(m) => m.values().cloned().collect(),
                    Value::Array(a) => a.clone(),
                    _ => panic!("frames"),
                }
            };
            let (fa, ft) = (list(&a), list(&t));
            assert_eq!(fa.len(), 4);
            for (x, y) in fa.iter().zip(&ft) {
                assert_eq!(x["frame"], y["frame"]);
            }
            assert_eq!(a["meta"]["frameTags"][0]["direction"], "pingpong");
            assert_eq!(fa[2]["duration"], 200);
        }
    }
}
