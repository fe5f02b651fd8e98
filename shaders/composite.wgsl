// One frame of a sprite, tile or sheet cell composited for preview: a backdrop (checkerboard,
// solid colour or a game's background image), optional onion-skin frames tinted and faded, the frame itself ("over", straight
// alpha, in the image's own sRGB values as pixel-art editors do), integer zoom, 3×3 tiling and
// a pixel grid. Drawn as one full-screen triangle; every output pixel is computed here.

struct Params {
    // out_w, out_h, src_w, src_h
    sizes: vec4<f32>,
    // zoom, tile (0/1), backdrop (0 checker, 1 solid, 2 image), checker cell in output pixels
    view: vec4<f32>,
    color_a: vec4<f32>,
    color_b: vec4<f32>,
    // grid (0/1), previous frame's opacity, next frame's opacity, unused
    extra: vec4<f32>,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var frame: texture_2d<f32>;
@group(0) @binding(2) var prev_frame: texture_2d<f32>;
@group(0) @binding(3) var next_frame: texture_2d<f32>;
@group(0) @binding(4) var samp: sampler;
// A game's background, stretched over the whole output (backdrop kind 2).
@group(0) @binding(5) var backdrop_img: texture_2d<f32>;

@vertex
fn vs_main(@builtin(vertex_index) i: u32) -> @builtin(position) vec4<f32> {
    let x = f32((i << 1u) & 2u) * 2.0 - 1.0;
    let y = f32(i & 2u) * 2.0 - 1.0;
    return vec4<f32>(x, y, 0.0, 1.0);
}

fn over(dst: vec3<f32>, src: vec4<f32>) -> vec3<f32> {
    return src.rgb * src.a + dst * (1.0 - src.a);
}

@fragment
fn fs_main(@builtin(position) pos: vec4<f32>) -> @location(0) vec4<f32> {
    // Pixel centres: (x + 0.5, y + 0.5).
    let px = pos.xy;
    let zoom = p.view.x;
    var bg = p.color_a.rgb;
    if (p.view.z < 0.5) {
        let cell = floor(px / p.view.w);
        let odd = (i32(cell.x) + i32(cell.y)) % 2 == 1;
        bg = select(p.color_a.rgb, p.color_b.rgb, odd);
    } else if (p.view.z > 1.5) {
        bg = textureSampleLevel(backdrop_img, samp, px / p.sizes.xy, 0.0).rgb;
    }
    var uv = px / (p.sizes.zw * zoom);
    if (p.view.y > 0.5) {
        uv = fract(uv);
    }
    var rgb = bg;
    if (p.extra.y > 0.0) {
        let s = textureSampleLevel(prev_frame, samp, uv, 0.0);
        let tinted = mix(s.rgb, vec3<f32>(1.0, 0.25, 0.25), 0.5);
        rgb = over(rgb, vec4<f32>(tinted, s.a * p.extra.y));
    }
    if (p.extra.z > 0.0) {
        let s = textureSampleLevel(next_frame, samp, uv, 0.0);
        let tinted = mix(s.rgb, vec3<f32>(0.25, 1.0, 0.4), 0.5);
        rgb = over(rgb, vec4<f32>(tinted, s.a * p.extra.z));
    }
    rgb = over(rgb, textureSampleLevel(frame, samp, uv, 0.0));
    if (p.extra.x > 0.5 && zoom >= 4.0) {
        let cell = floor(px) % vec2<f32>(zoom, zoom);
        if (cell.x < 0.5 || cell.y < 0.5) {
            rgb = mix(rgb, vec3<f32>(0.0, 0.0, 0.0), 0.25);
        }
    }
    return vec4<f32>(rgb, 1.0);
}
