//! Two-terrain corner tilesets (Wang corner tiles, the "dual grid"): the 16 ways two terrains can
//! meet at a tile's four corners, each tile cut from two seamless terrains along a boundary that
//! depends only on the corners it touches, so any two tiles that share corners join without a
//! seam. Exported as a Godot 4 `TileSet` with a corner terrain set, a Tiled tileset with a corner
//! wangset, and a sample map that uses every transition.

use std::path::Path;

use crate::MediaError;
use crate::export::gd_str;
use crate::still::Rgba;

fn bad(reason: impl Into<String>) -> MediaError {
    MediaError::Image {
        path: Path::new("<tileset>").to_owned(),
        reason: reason.into(),
    }
}

/// Which terrain (0: the first, 1: the second) is at each corner: top left, top right, bottom
/// left, bottom right.
pub type Corners = [u8; 4];

/// The corners of tile `index`: bit 0 top left, 1 top right, 2 bottom left, 3 bottom right.
pub fn corners_of(index: usize) -> Corners {
    [
        (index & 1) as u8,
        ((index >> 1) & 1) as u8,
        ((index >> 2) & 1) as u8,
        ((index >> 3) & 1) as u8,
    ]
}

/// The tile for a set of corners.
pub fn index_of(c: Corners) -> usize {
    usize::from(c[0]) | usize::from(c[1]) << 1 | usize::from(c[2]) << 2 | usize::from(c[3]) << 3
}

/// One tile: its corners, its pixels and where a seam painter may repaint (255) along the
/// terrain boundary, kept away from the tile's edges so repainting never breaks a join.
#[derive(Debug, Clone, PartialEq)]
pub struct CornerTile {
    pub corners: Corners,
    pub image: Rgba,
    pub seam: Vec<u8>,
}

/// The share of the second terrain at (u, v) in [0, 1]²: the corners interpolated.
fn weight(c: Corners, u: f64, v: f64) -> f64 {
    let [tl, tr, bl, br] = c.map(f64::from);
    let top = tl + (tr - tl) * u;
    let bottom = bl + (br - bl) * u;
    top + (bottom - top) * v
}

/// The 16 corner tiles cut from terrains `a` and `b` (square, the same size, each seamless).
/// `band` is the seam's half-width as a share of the tile; `margin` the pixels at each edge the
/// seam stays clear of.
pub fn corner_tiles(
    a: &Rgba,
    b: &Rgba,
    band: f64,
    margin: u32,
) -> Result<Vec<CornerTile>, MediaError> {
    if a.width != a.height || (a.width, a.height) != (b.width, b.height) {
        return Err(bad(format!(
            "the terrains are {}×{} and {}×{}: both must be the same square size",
            a.width, a.height, b.width, b.height
        )));
    }
    let s = a.width;
    if s < 8 {
        return Err(bad(format!(
            "a {s}×{s} terrain is too small for transitions (8 or more)"
        )));
    }
    Ok((0..16)
        .map(|i| {
            let c = corners_of(i);
            let mut image = a.clone();
            let mut seam = vec![0u8; (s * s) as usize];
            for y in 0..s {
                for x in 0..s {
                    let (u, v) = (
                        (f64::from(x) + 0.5) / f64::from(s),
                        (f64::from(y) + 0.5) / f64::from(s),
                    );
                    let w = weight(c, u, v);
                    let k = ((y * s + x) * 4) as usize;
                    if w > 0.5 {
                        image.data[k..k + 4].copy_from_slice(&b.data[k..k + 4]);
                    }
                    let inside = x >= margin && y >= margin && x + margin < s && y + margin < s;
                    // Only where both terrains meet: tiles 0 and 15 have no seam.
                    if inside && (w - 0.5).abs() < band && c.iter().any(|&t| t != c[0]) {
                        seam[(y * s + x) as usize] = 255;
                    }
                }
            }
            CornerTile {
                corners: c,
                image,
                seam,
            }
        })
        .collect())
}

/// The tiles laid out 4×4 by index, for one atlas texture.
pub fn atlas(tiles: &[CornerTile]) -> Rgba {
    let s = tiles.first().map_or(1, |t| t.image.width);
    let mut out = Rgba {
        width: 4 * s,
        height: 4 * s,
        data: vec![0; (16 * s * s * 4) as usize],
    };
    for (i, t) in tiles.iter().enumerate() {
        let (ox, oy) = ((i as u32 % 4) * s, (i as u32 / 4) * s);
        for y in 0..s {
            let src = (y * s * 4) as usize;
            let dst = (((oy + y) * out.width + ox) * 4) as usize;
            out.data[dst..dst + (s * 4) as usize]
                .copy_from_slice(&t.image.data[src..src + (s * 4) as usize]);
        }
    }
    out
}

/// A sample map's corner grid (`(w+1)×(h+1)` terrain values): a blob of the second terrain
/// with a notch in its top and bottom edges, and two diagonal pairs, so every one of the 16
/// tiles appears (an 8×8 map; smaller maps are cut from it).
pub fn sample_corners(w: usize, h: usize) -> Vec<Vec<u8>> {
    const ROWS: [&str; 9] = [
        ".........",
        ".........",
        "..##.#...",
        "..####...",
        "..####...",
        "..#.##...",
        ".......#.",
        ".#....#..",
        "..#......",
    ];
    (0..=h)
        .map(|y| {
            (0..=w)
                .map(|x| {
                    ROWS.get(y)
                        .and_then(|r| r.as_bytes().get(x))
                        .map_or(0, |c| u8::from(*c == b'#'))
                })
                .collect()
        })
        .collect()
}

/// The tile index at each cell of a map with corner grid `g`.
pub fn sample_cells(g: &[Vec<u8>]) -> Vec<Vec<usize>> {
    (0..g.len() - 1)
        .map(|y| {
            (0..g[0].len() - 1)
                .map(|x| index_of([g[y][x], g[y][x + 1], g[y + 1][x], g[y + 1][x + 1]]))
                .collect()
        })
        .collect()
}

fn xml(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// Names and display colours of the two terrains.
#[derive(Debug, Clone)]
pub struct Terrains {
    pub names: [String; 2],
    pub colors: [[u8; 3]; 2],
}

/// A Godot 4 `TileSet`: one atlas source over `image`, a corner terrain set (mode 1) with the two
/// terrains, each tile's four corner peering bits. Terrains come before the source, as Godot
/// writes them: a source listed first would reset the peering bits.
pub fn godot_tileset(tile: u32, image: &str, t: &Terrains) -> String {
    let mut out = format!(
        "[gd_resource type=\"TileSet\" load_steps=3 format=3]\n\n\
         [ext_resource type=\"Texture2D\" path={} id=\"1_atlas\"]\n\n\
         [sub_resource type=\"TileSetAtlasSource\" id=\"TileSetAtlasSource_0\"]\n\
         texture = ExtResource(\"1_atlas\")\n\
         texture_region_size = Vector2i({tile}, {tile})\n",
        gd_str(image)
    );
    for i in 0..16 {
        let c = corners_of(i);
        let (x, y) = (i % 4, i / 4);
        let centre = u8::from(weight(c, 0.5, 0.5) > 0.5);
        out.push_str(&format!(
            "{x}:{y}/0 = 0\n\
             {x}:{y}/0/terrain_set = 0\n\
             {x}:{y}/0/terrain = {centre}\n\
             {x}:{y}/0/terrains_peering_bit/bottom_right_corner = {}\n\
             {x}:{y}/0/terrains_peering_bit/bottom_left_corner = {}\n\
             {x}:{y}/0/terrains_peering_bit/top_left_corner = {}\n\
             {x}:{y}/0/terrains_peering_bit/top_right_corner = {}\n",
            c[3], c[2], c[0], c[1]
        ));
    }
    let color = |c: [u8; 3]| {
        format!(
            "Color({}, {}, {}, 1)",
            f64::from(c[0]) / 255.0,
            f64::from(c[1]) / 255.0,
            f64::from(c[2]) / 255.0
        )
    };
    out.push_str(&format!(
        "\n[resource]\n\
         tile_size = Vector2i({tile}, {tile})\n\
         terrain_set_0/mode = 1\n\
         terrain_set_0/terrain_0/name = {}\n\
         terrain_set_0/terrain_0/color = {}\n\
         terrain_set_0/terrain_1/name = {}\n\
         terrain_set_0/terrain_1/color = {}\n\
         sources/0 = SubResource(\"TileSetAtlasSource_0\")\n",
        gd_str(&t.names[0]),
        color(t.colors[0]),
        gd_str(&t.names[1]),
        color(t.colors[1]),
    ));
    out
}

/// A Tiled tileset (`.tsx`) with a corner wangset: wang ids list colours clockwise from the top
/// edge, corners at 1, 3, 5, 7; colour n is terrain n − 1.
pub fn tiled_tsx(name: &str, tile: u32, image: &str, t: &Terrains) -> String {
    let hex = |c: [u8; 3]| format!("#{:02x}{:02x}{:02x}", c[0], c[1], c[2]);
    let mut out = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n\
         <tileset version=\"1.10\" tiledversion=\"1.11.2\" name=\"{}\" tilewidth=\"{tile}\" tileheight=\"{tile}\" tilecount=\"16\" columns=\"4\">\n \
         <image source=\"{}\" width=\"{}\" height=\"{}\"/>\n \
         <wangsets>\n  \
         <wangset name=\"{}\" type=\"corner\" tile=\"-1\">\n",
        xml(name),
        xml(image),
        4 * tile,
        4 * tile,
        xml(name)
    );
    for k in 0..2 {
        out.push_str(&format!(
            "   <wangcolor name=\"{}\" color=\"{}\" tile=\"-1\" probability=\"1\"/>\n",
            xml(&t.names[k]),
            hex(t.colors[k])
        ));
    }
    for i in 0..16 {
        let c = corners_of(i).map(|v| v + 1);
        out.push_str(&format!(
            "   <wangtile tileid=\"{i}\" wangid=\"0,{},0,{},0,{},0,{}\"/>\n",
            c[1], c[3], c[2], c[0]
        ));
    }
    out.push_str("  </wangset>\n </wangsets>\n</tileset>\n");
    out
}

/// A sample map using the tileset: Tiled's JSON (`.tmj`) naming the `.tsx` beside it.
pub fn tiled_tmj(tsx: &str, tile: u32, cells: &[Vec<usize>]) -> String {
    let (h, w) = (cells.len(), cells.first().map_or(0, Vec::len));
    let data: Vec<usize> = cells.iter().flatten().map(|i| i + 1).collect();
    let mut s = serde_json::to_string_pretty(&serde_json::json!({
        "type": "map",
        "version": "1.10",
        "tiledversion": "1.11.2",
        "orientation": "orthogonal",
        "renderorder": "right-down",
        "width": w,
        "height": h,
        "tilewidth": tile,
        "tileheight": tile,
        "infinite": false,
        "nextlayerid": 2,
        "nextobjectid": 1,
        "tilesets": [{"firstgid": 1, "source": tsx}],
        "layers": [{
            "id": 1, "name": "ground", "type": "tilelayer", "width": w, "height": h,
            "x": 0, "y": 0, "opacity": 1, "visible": true, "data": data,
        }],
    }))
    .unwrap_or_default();
    s.push('\n');
    s
}

/// The same sample map as Tiled's XML (`.tmx`), for tools that read only that.
pub fn tiled_tmx(tsx: &str, tile: u32, cells: &[Vec<usize>]) -> String {
    let (h, w) = (cells.len(), cells.first().map_or(0, Vec::len));
    let rows: Vec<String> = cells
        .iter()
        .map(|r| {
            r.iter()
                .map(|i| (i + 1).to_string())
                .collect::<Vec<_>>()
                .join(",")
        })
        .collect();
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n\
         <map version=\"1.10\" tiledversion=\"1.11.2\" orientation=\"orthogonal\" renderorder=\"right-down\" width=\"{w}\" height=\"{h}\" tilewidth=\"{tile}\" tileheight=\"{tile}\" infinite=\"0\" nextlayerid=\"2\" nextobjectid=\"1\">\n \
         <tileset firstgid=\"1\" source=\"{}\"/>\n \
         <layer id=\"1\" name=\"ground\" width=\"{w}\" height=\"{h}\">\n  \
         <data encoding=\"csv\">\n{}\n</data>\n \
         </layer>\n</map>\n",
        xml(tsx),
        rows.join(",\n")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn terrain(w: u32, f: impl Fn(u32, u32) -> [u8; 4]) -> Rgba {
        let mut data = Vec::new();
        for y in 0..w {
            for x in 0..w {
                data.extend_from_slice(&f(x, y));
            }
        }
        Rgba {
            width: w,
            height: w,
            data,
        }
    }

    fn px(img: &Rgba, x: u32, y: u32) -> [u8; 4] {
        let k = ((y * img.width + x) * 4) as usize;
        [
            img.data[k],
            img.data[k + 1],
            img.data[k + 2],
            img.data[k + 3],
        ]
    }

    #[test]
    fn tiles_that_share_corners_join_without_a_seam_on_every_edge() {
        // Seamless terrains: stripes whose period divides the tile.
        let a = terrain(16, |x, y| [((x * 16) % 256) as u8, 100, (y * 8) as u8, 255]);
        let b = terrain(16, |x, y| [10, ((x + y) * 8 % 256) as u8, 200, 255]);
        let tiles = corner_tiles(&a, &b, 0.12, 2).expect("tiles");
        assert_eq!(tiles.len(), 16);
        assert_eq!(tiles[0].image, a);
        assert_eq!(tiles[15].image, b);
        assert!(tiles[0].seam.iter().all(|m| *m == 0));
        for (i, t) in tiles.iter().enumerate() {
            assert_eq!(index_of(t.corners), i);
            // The seam keeps 2 px away from the edges.
            for y in 0..16 {
                for x in 0..16 {
                    if x < 2 || y < 2 || x >= 14 || y >= 14 {
                        assert_eq!(t.seam[(y * 16 + x) as usize], 0);
                    }
                }
            }
        }
        // Left tile's right column next to the right tile's left column: where the terrains
        // agree at the shared corners, each pixel comes from the terrain its corners say, so a
        // pixel on the edge is the same terrain on both sides of the join.
        for l in 0..16usize {
            for r in 0..16usize {
                let (cl, cr) = (corners_of(l), corners_of(r));
                if (cl[1], cl[3]) != (cr[0], cr[2]) {
                    continue;
                }
                for y in 0..16 {
                    let left = px(&tiles[l].image, 15, y);
                    let right = px(&tiles[r].image, 0, y);
                    let from = |p: [u8; 4], x: u32| {
                        if p == px(&b, x, y) && p != px(&a, x, y) {
                            1
                        } else if p == px(&a, x, y) {
                            0
                        } else {
                            9
                        }
                    };
                    assert_eq!(from(left, 15), from(right, 0), "tiles {l} | {r}, row {y}");
                }
            }
        }
    }

    #[test]
    fn the_sample_map_uses_every_tile_and_its_corners_agree() {
        let g = sample_corners(8, 8);
        let cells = sample_cells(&g);
        let mut used = [false; 16];
        for row in &cells {
            for &i in row {
                used[i] = true;
            }
        }
        assert!(used.iter().all(|u| *u), "unused: {used:?}");
        let tsx = tiled_tsx(
            "ground",
            16,
            "ground.png",
            &Terrains {
                names: ["grass".into(), "sand \"dry\"".into()],
                colors: [[40, 160, 40], [220, 200, 120]],
            },
        );
        assert!(tsx.contains("wangid=\"0,2,0,2,0,2,0,2\""));
        assert!(tsx.contains("sand &quot;dry&quot;"));
    }
}
