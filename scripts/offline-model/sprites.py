"""Procedural 32×32 pixel-art item sprites with captions: the training data of Mintframe's
offline sprite model (`mintframe-sprites`).

Every sprite comes from a seed (numpy's PCG64), so the same seed draws the same pixels on every
machine. Ten item kinds, ten colours, three shading styles, three outline styles, five plain
backgrounds, and random size and placement. Shapes are masks over pixel centres: hard edges, no
anti-aliasing, as pixel art is drawn.

    python sprites.py sheet out.png [PER [SCALE]]   # a contact sheet: a row per kind, PER of each colour
"""

from __future__ import annotations

import colorsys
import sys

import numpy as np

SIZE = 32

KINDS = ["potion", "sword", "shield", "gem", "coin", "key", "chest", "heart", "mushroom", "slime"]

# Hue in degrees, saturation, value: the middle of each named colour; each sprite jitters them.
COLOURS = {
    "red": (0, 0.85, 0.85),
    "orange": (28, 0.9, 0.95),
    "yellow": (54, 0.85, 0.95),
    "green": (120, 0.75, 0.75),
    "teal": (175, 0.8, 0.7),
    "blue": (220, 0.8, 0.9),
    "purple": (275, 0.7, 0.75),
    "pink": (325, 0.55, 0.95),
    "brown": (25, 0.65, 0.5),
    "gray": (0, 0.0, 0.6),
}

BACKGROUNDS = {
    "white": (255, 255, 255),
    "light gray": (200, 200, 204),
    "cream": (240, 232, 210),
    "dark": (28, 28, 36),
    "black": (0, 0, 0),
}

SHADING = ["flat", "shaded", "glossy"]
OUTLINES = ["black", "dark", "none"]


def hsv(h: float, s: float, v: float) -> np.ndarray:
    r, g, b = colorsys.hsv_to_rgb((h % 360) / 360.0, min(max(s, 0.0), 1.0), min(max(v, 0.0), 1.0))
    return np.array([r * 255, g * 255, b * 255])


class Palette:
    """Base, light and dark tones of one colour."""

    def __init__(self, h: float, s: float, v: float):
        self.base = hsv(h, s, v)
        self.light = hsv(h, s * 0.6, min(1.0, v * 1.25 + 0.1))
        self.dark = hsv(h, min(1.0, s * 1.1), v * 0.6)
        self.darker = hsv(h, min(1.0, s * 1.1), v * 0.35)


def grid():
    """Pixel-centre coordinates, y down, in [0, SIZE)."""
    y, x = np.mgrid[0:SIZE, 0:SIZE].astype(np.float64) + 0.5
    return x, y


X, Y = grid()


def ellipse(cx, cy, rx, ry):
    return ((X - cx) / rx) ** 2 + ((Y - cy) / ry) ** 2 <= 1.0


def rect(x0, y0, x1, y1):
    return (X >= x0) & (X < x1) & (Y >= y0) & (Y < y1)


def polygon(points):
    """Even-odd fill of a polygon given as (x, y) points."""
    inside = np.zeros((SIZE, SIZE), dtype=bool)
    n = len(points)
    for i in range(n):
        x0, y0 = points[i]
        x1, y1 = points[(i + 1) % n]
        cond = (Y >= min(y0, y1)) & (Y < max(y0, y1))
        if y1 != y0:
            xs = x0 + (Y - y0) * (x1 - x0) / (y1 - y0)
            inside ^= cond & (X < xs)
    return inside


def thick_line(x0, y0, x1, y1, w):
    """Pixels within w/2 of the segment."""
    dx, dy = x1 - x0, y1 - y0
    t = np.clip(((X - x0) * dx + (Y - y0) * dy) / (dx * dx + dy * dy), 0, 1)
    px, py = x0 + t * dx, y0 + t * dy
    return (X - px) ** 2 + (Y - py) ** 2 <= (w / 2) ** 2


def shade(mask, pal: Palette, style: str, rng, light_from=(-1, -1)):
    """Colours for the pixels of mask: flat, or lit from the upper left."""
    out = np.zeros((SIZE, SIZE, 3))
    out[mask] = pal.base
    if style == "flat" or not mask.any():
        return out
    ys, xs = np.nonzero(mask)
    cx, cy = xs.mean() + 0.5, ys.mean() + 0.5
    ext = max(xs.max() - xs.min(), ys.max() - ys.min(), 1)
    d = ((X - cx) * light_from[0] + (Y - cy) * light_from[1]) / ext
    out[mask & (d < -0.22)] = pal.dark
    out[mask & (d > 0.25)] = pal.light
    if style == "glossy":
        hx = cx + light_from[0] * ext * 0.22
        hy = cy + light_from[1] * ext * 0.22
        spot = ellipse(hx, hy, max(1.0, ext * 0.09), max(1.0, ext * 0.09)) & mask
        out[spot] = np.array([255, 255, 255])
    return out


class Canvas:
    def __init__(self, bg):
        self.rgb = np.tile(np.array(bg, dtype=np.float64), (SIZE, SIZE, 1))
        self.mask = np.zeros((SIZE, SIZE), dtype=bool)

    def paint(self, mask, colours):
        """colours: one RGB or an image of them."""
        if np.ndim(colours) == 1:
            self.rgb[mask] = colours
        else:
            self.rgb[mask] = colours[mask]
        self.mask |= mask

    def outline(self, style: str, pal: Palette):
        if style == "none":
            return
        m = self.mask
        grown = m.copy()
        grown[1:, :] |= m[:-1, :]
        grown[:-1, :] |= m[1:, :]
        grown[:, 1:] |= m[:, :-1]
        grown[:, :-1] |= m[:, 1:]
        ring = grown & ~m
        colour = np.array([12, 12, 16]) if style == "black" else pal.darker
        self.rgb[ring] = colour


def draw_potion(c: Canvas, pal, style, rng, s, ox, oy):
    glass = Palette(200, 0.08, 0.92)
    shape = rng.choice(["round", "square", "flask"])
    cx = 16 + ox
    body_h = 15 * s
    bottom = 27 + oy
    top = bottom - body_h
    if shape == "round":
        r = body_h / 2
        body = ellipse(cx, bottom - r, r * 1.02, r)
    elif shape == "square":
        w = 13 * s
        body = rect(cx - w / 2, top, cx + w / 2, bottom)
    else:
        w = 17 * s
        body = polygon([(cx - 3 * s, top), (cx + 3 * s, top), (cx + w / 2, bottom), (cx - w / 2, bottom)])
    neck_w = max(3.0, 5 * s)
    neck = rect(cx - neck_w / 2, top - 5 * s, cx + neck_w / 2, top + 1)
    cork = rect(cx - neck_w / 2 - 0.6, top - 8 * s, cx + neck_w / 2 + 0.6, top - 5 * s)
    c.paint(neck | body, shade(neck | body, glass, style, rng))
    level = top + body_h * rng.uniform(0.2, 0.4)
    liquid = body & (Y >= level)
    c.paint(liquid, shade(liquid, pal, style, rng))
    c.paint(cork, shade(cork, Palette(28, 0.6, 0.55), "flat", rng))


def draw_sword(c: Canvas, pal, style, rng, s, ox, oy):
    # Blade from lower left up to the upper right, a cross-guard and a hilt.
    L = 26 * s
    x0, y0 = 7 + ox, 25 + oy
    ux, uy = 0.7071, -0.7071
    gx, gy = x0 + ux * 6 * s, y0 + uy * 6 * s
    tip = (x0 + ux * L, y0 + uy * L)
    blade = thick_line(gx, gy, tip[0] - ux * 2, tip[1] - uy * 2, max(2.5, 4 * s))
    blade |= thick_line(gx, gy, tip[0], tip[1], 1.6)
    c.paint(blade, shade(blade, pal, style, rng, light_from=(1, -1)))
    guard = thick_line(gx - 4 * s * 0.7071, gy - 4 * s * 0.7071, gx + 4 * s * 0.7071, gy + 4 * s * 0.7071, 2.6)
    c.paint(guard, Palette(45, 0.7, 0.8).base)
    hilt = thick_line(x0, y0, gx, gy, 2.4)
    c.paint(hilt, Palette(25, 0.6, 0.45).base)
    pommel = ellipse(x0 - 0.5, y0 + 0.5, 1.6, 1.6)
    c.paint(pommel, Palette(45, 0.7, 0.8).base)


def draw_shield(c: Canvas, pal, style, rng, s, ox, oy):
    cx, top = 16 + ox, 5 + oy
    w, h = 20 * s, 23 * s
    mid = top + h * 0.45
    face = rect(cx - w / 2, top, cx + w / 2, mid) | polygon(
        [(cx - w / 2, mid - 0.01), (cx + w / 2, mid - 0.01), (cx, top + h)]
    )
    c.paint(face, Palette(210, 0.1, 0.75).base)
    inner = face.copy()
    for dy, dx in [(1, 0), (-1, 0), (0, 1), (0, -1)]:
        inner &= np.roll(np.roll(face, dy, 0), dx, 1)
    inner2 = inner.copy()
    for dy, dx in [(1, 0), (-1, 0), (0, 1), (0, -1)]:
        inner2 &= np.roll(np.roll(inner, dy, 0), dx, 1)
    c.paint(inner2, shade(inner2, pal, style, rng))
    if rng.random() < 0.5:
        stripe = inner2 & (np.abs(X - cx) < 1.6)
        c.paint(stripe, Palette(50, 0.7, 0.95).base)


def draw_gem(c: Canvas, pal, style, rng, s, ox, oy):
    cx, cy = 16 + ox, 16 + oy
    w, h = 20 * s, 20 * s
    crown = cy - h * 0.18
    gem = polygon(
        [
            (cx - w * 0.3, cy - h / 2),
            (cx + w * 0.3, cy - h / 2),
            (cx + w / 2, crown),
            (cx, cy + h / 2),
            (cx - w / 2, crown),
        ]
    )
    c.paint(gem, pal.base)
    table = gem & (Y < crown)
    c.paint(table, pal.light)
    facet = gem & (Y >= crown) & (X > cx)
    c.paint(facet, pal.dark)
    if style != "flat":
        spark = ellipse(cx - w * 0.15, cy - h * 0.3, 1.2, 1.2) & gem
        c.paint(spark, np.array([255, 255, 255]))


def draw_coin(c: Canvas, pal, style, rng, s, ox, oy):
    cx, cy = 16 + ox, 16 + oy
    r = 11 * s
    squash = rng.choice([1.0, 1.0, 0.75])
    coin = ellipse(cx, cy, r * squash, r)
    c.paint(coin, shade(coin, pal, style, rng))
    ring = coin & ~ellipse(cx, cy, r * squash - 2, r - 2) & ellipse(cx, cy, r * squash - 1, r - 1)
    c.paint(ring, pal.dark)
    mark = rect(cx - 1, cy - r * 0.45, cx + 1, cy + r * 0.45)
    c.paint(mark, pal.dark)


def draw_key(c: Canvas, pal, style, rng, s, ox, oy):
    # A ring at the upper left, a shaft down to the lower right, two teeth.
    rx, ry = 10 + ox, 10 + oy
    r = 6 * s
    bow = ellipse(rx, ry, r, r) & ~ellipse(rx, ry, r * 0.45, r * 0.45)
    ex, ey = rx + 16 * s, ry + 16 * s
    shaft = thick_line(rx + r * 0.6, ry + r * 0.6, ex, ey, 2.8)
    t1 = thick_line(ex - 3 * s, ey - 3 * s, ex + 1, ey - 6 * s, 2.4)
    t2 = thick_line(ex - 7 * s, ey - 7 * s, ex - 3 * s, ey - 10 * s, 2.4)
    key = bow | shaft | t1 | t2
    c.paint(key, shade(key, pal, style, rng))


def draw_chest(c: Canvas, pal, style, rng, s, ox, oy):
    cx, bottom = 16 + ox, 26 + oy
    w, h = 24 * s, 18 * s
    top = bottom - h
    lid_h = h * 0.4
    lid = ellipse(cx, top + lid_h, w / 2, lid_h) & (Y < top + lid_h)
    box = rect(cx - w / 2, top + lid_h, cx + w / 2, bottom)
    body = lid | box
    c.paint(body, shade(body, pal, style, rng))
    band = body & (np.abs(Y - (top + lid_h)) < 1.0)
    band |= body & ((np.abs(X - (cx - w / 2 + 2)) < 1.0) | (np.abs(X - (cx + w / 2 - 2)) < 1.0))
    c.paint(band, Palette(220, 0.1, 0.55).base)
    lock = rect(cx - 1.5, top + lid_h - 1, cx + 1.5, top + lid_h + 3)
    c.paint(lock, Palette(50, 0.8, 0.95).base)


def draw_heart(c: Canvas, pal, style, rng, s, ox, oy):
    cx, cy = 16 + ox, 14 + oy
    r = 6.5 * s
    heart = ellipse(cx - r * 0.95, cy - r * 0.3, r, r) | ellipse(cx + r * 0.95, cy - r * 0.3, r, r)
    heart |= polygon([(cx - r * 1.9, cy), (cx + r * 1.9, cy), (cx, cy + r * 2.1)])
    c.paint(heart, shade(heart, pal, style, rng))


def draw_mushroom(c: Canvas, pal, style, rng, s, ox, oy):
    cx, base = 16 + ox, 27 + oy
    stem_w, stem_h = 7 * s, 10 * s
    stem = rect(cx - stem_w / 2, base - stem_h, cx + stem_w / 2, base)
    c.paint(stem, shade(stem, Palette(40, 0.2, 0.95), style, rng))
    cap_w, cap_h = 24 * s, 12 * s
    cap_y = base - stem_h + 1
    cap = ellipse(cx, cap_y, cap_w / 2, cap_h) & (Y < cap_y)
    c.paint(cap, shade(cap, pal, style, rng))
    for dx, dy in [(-0.5, -0.45), (0.3, -0.6), (0.55, -0.25)]:
        spot = ellipse(cx + dx * cap_w / 2, cap_y + dy * cap_h, 1.6 * s + 0.4, 1.4 * s + 0.4) & cap
        c.paint(spot, np.array([250, 250, 245]))


def draw_slime(c: Canvas, pal, style, rng, s, ox, oy):
    cx, base = 16 + ox, 27 + oy
    w, h = 24 * s, 17 * s
    body = ellipse(cx, base, w / 2, h) & (Y < base)
    body |= ellipse(cx, base - 1, w / 2 + 0.5, 2) & (Y < base)
    c.paint(body, shade(body, pal, style, rng))
    ey = base - h * 0.45
    for ex in (cx - w * 0.18, cx + w * 0.18):
        c.paint(rect(ex - 1, ey - 1.5, ex + 1, ey + 1.5), np.array([15, 15, 20]))


DRAW = {
    "potion": draw_potion,
    "sword": draw_sword,
    "shield": draw_shield,
    "gem": draw_gem,
    "coin": draw_coin,
    "key": draw_key,
    "chest": draw_chest,
    "heart": draw_heart,
    "mushroom": draw_mushroom,
    "slime": draw_slime,
}

TEMPLATES = [
    "a {colour} {kind}",
    "a {colour} {kind}, pixel art",
    "{colour} {kind}, pixel art sprite",
    "pixel art of a {colour} {kind}",
    "a {colour} {kind} sprite, {bg} background",
    "a {colour} {kind} on a {bg} background, pixel art",
]


def caption(rng, kind: str, colour: str, bg: str) -> str:
    r = rng.random()
    if r < 0.1:
        return ""  # the unconditional case, for classifier-free guidance
    if r < 0.15:
        return f"a {kind}" if rng.random() < 0.5 else f"a {kind}, pixel art"
    t = TEMPLATES[rng.integers(len(TEMPLATES))]
    return t.format(colour=colour, kind=kind, bg=bg)


def sprite(seed: int, kind: str | None = None, colour: str | None = None):
    """(32×32×3 uint8 image, caption, kind, colour) for one seed."""
    rng = np.random.default_rng(seed)
    kind = kind or KINDS[rng.integers(len(KINDS))]
    colour = colour or list(COLOURS)[rng.integers(len(COLOURS))]
    bg = list(BACKGROUNDS)[rng.integers(len(BACKGROUNDS))]
    h, s, v = COLOURS[colour]
    pal = Palette(h + rng.uniform(-8, 8), s * rng.uniform(0.9, 1.05), v * rng.uniform(0.9, 1.05))
    style = SHADING[rng.integers(len(SHADING))]
    outline = OUTLINES[rng.integers(len(OUTLINES))]
    scale = rng.uniform(0.75, 1.0)
    ox, oy = rng.integers(-2, 3), rng.integers(-2, 3)
    c = Canvas(BACKGROUNDS[bg])
    DRAW[kind](c, pal, style, rng, scale, ox, oy)
    c.outline(outline, pal)
    img = np.clip(np.round(c.rgb), 0, 255).astype(np.uint8)
    return img, caption(rng, kind, colour, bg), kind, colour


def dataset(n: int, seed: int):
    """n sprites, kinds and colours in equal shares, each from its own seed."""
    imgs = np.zeros((n, SIZE, SIZE, 3), dtype=np.uint8)
    caps = []
    for i in range(n):
        kind = KINDS[i % len(KINDS)]
        colour = list(COLOURS)[(i // len(KINDS)) % len(COLOURS)]
        img, cap, _, _ = sprite(seed * 1_000_003 + i, kind, colour)
        imgs[i] = img
        caps.append(cap)
    return imgs, caps


def sheet(path: str, per: int = 1, scale: int = 3):
    from PIL import Image

    rows = []
    for k, kind in enumerate(KINDS):
        row = []
        for j, colour in enumerate(COLOURS):
            for p in range(per):
                img, _, _, _ = sprite(10_000 + k * 100 + j * 10 + p, kind, colour)
                row.append(img)
        rows.append(np.concatenate(row, axis=1))
    big = np.concatenate(rows, axis=0)
    Image.fromarray(big).resize((big.shape[1] * scale, big.shape[0] * scale), Image.NEAREST).save(path)


if __name__ == "__main__":
    if len(sys.argv) >= 3 and sys.argv[1] == "sheet":
        sheet(sys.argv[2], per=int(sys.argv[3]) if len(sys.argv) > 3 else 1, scale=int(sys.argv[4]) if len(sys.argv) > 4 else 3)
    else:
        print(__doc__)
