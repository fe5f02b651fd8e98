"""Tokenizer parity: a corpus of prompts and the ids transformers' CLIPTokenizer gives them.

The corpus (at least 1,000 prompts, made deterministically below) covers what creators type:
game prompts, A1111 weighting syntax and punctuation, emoji (with variation selectors and ZWJ
sequences), accents in composed and decomposed form, CJK, HTML entities, control characters,
tabs and newlines, and very long prompts.

The reference is transformers' CLIPTokenizer with ftfy installed: the path that reproduces CLIP's
own training-time tokenisation (ftfy.fix_text, whitespace clean, lower case, CLIP's regex, BPE), as
open_clip and A1111 run it. Without ftfy, transformers falls back to a BERT-style cleaner that
also splits every CJK character into its own word; the fixture records those ids too
(`fallback`), and CLIPTokenizerFast's (`fast`), so the differences are on record.

Writes OUT_DIR/clip_bpe.json: [{"prompt", "ids", "fallback", "fast"}], ids without start and end
tokens and untruncated.

Usage: tokenizer.py BPE_GZ OUT_DIR"""
import json
import os
import random
import sys
import tempfile
import unicodedata

from transformers import CLIPTokenizer, CLIPTokenizerFast

sys.path.insert(0, os.path.dirname(__file__))
from parity import tokenizers  # noqa: E402

SUBJECTS = [
    "knight", "slime", "dragon", "goblin archer", "wizard", "treasure chest", "health potion",
    "iron sword", "wooden shield", "pixel cat", "robot", "forest spirit", "skeleton warrior",
    "space marine", "mushroom house", "crystal cave", "lava tile", "grass tile", "water tile",
    "blacksmith", "merchant", "ninja", "samurai", "pirate ship", "castle gate", "magic staff",
    "fire elemental", "ice golem", "bat", "spider queen", "zombie", "paladin", "rogue",
]
STYLES = [
    "pixel art", "16-bit", "8-bit", "isometric", "top-down", "side view", "low poly",
    "hand-drawn", "cel shaded", "watercolor", "game asset", "sprite sheet", "chibi",
    "dark fantasy", "cyberpunk", "retro", "flat colors", "transparent background",
]
VIEWS = ["front view", "back view", "facing left", "facing right", "3/4 view", "full body", "portrait"]
EXTRAS = [
    "(masterpiece:1.2)", "((best quality))", "[blurry]", "{detailed}", "(red cloak:0.8)",
    "[cat|dog]", "a--b", "knight's helmet", "don't", "it'll", "we've", "they're", "I'm", "he'd",
    "!!!", "...", "?!", "#hashtag", "@artist", "$100", "50%", "a&b", "x*y", "~tilde~", "^_^",
    "<lora:pixel:0.7>", "1024x1024", "16:9", "3.5", "v2.1", "2d", "3D", "RGB(255,0,0)", "#ff00aa",
    "snake_case", "CamelCase", "UPPER CASE", "e-mail", "co-op", "'quoted'", '"double"', "`tick`",
    "a/b\\c", "<|endoftext|>", "<|startoftext|>", "&amp;", "&lt;3", "&quot;hi&quot;",
]
EMOJI = [
    "🐉", "⚔️", "🛡️", "👾", "🍄", "🔥", "❄️", "💎", "🏰", "🧙‍♂️", "👩‍🚀", "🏳️‍🌈", "🇯🇵",
    "👍🏽", "❤️", "✨", "🎮", "🗡", "☠️", "🌙",
]
ACCENTED = [
    "café", "Pokémon", "naïve", "Ångström", "straße", "İstanbul", "façade", "jalapeño",
    "Zoë", "crème brûlée", "São Paulo", "Dvořák", "Łódź", "smörgåsbord", "ΣΟΦΙΑ", "Ελληνικά",
    "русский рыцарь", "عربي", "עברית", "हिन्दी", "ไทย",
]
CJK = [
    "一个骑士", "像素艺术", "ドラゴン", "ピクセルアート", "勇者の剣", "스프라이트", "기사",
    "魔法使い", "史莱姆", "宝箱", "城", "森の精霊", "게임 아이템", "中文 prompt", "日本語とEnglish",
]
CONTROL = ["\t", "\n", "\r\n", "\u00a0", "\u200b", "\u2003", "\x07", "\ufeff", "  ", "\u3000"]


def corpus():
    rng = random.Random(20261207)
    out = []
    for _ in range(400):
        p = f"a {rng.choice(SUBJECTS)}, {rng.choice(STYLES)}, {rng.choice(VIEWS)}"
        if rng.random() < 0.5:
            p += ", " + ", ".join(rng.sample(STYLES, 2))
        out.append(p if rng.random() < 0.8 else p.upper() if rng.random() < 0.5 else p.title())
    for _ in range(160):
        out.append(f"{rng.choice(EXTRAS)} {rng.choice(SUBJECTS)} {rng.choice(EXTRAS)}, {rng.choice(STYLES)}")
    for _ in range(110):
        out.append(f"{rng.choice(EMOJI)} {rng.choice(SUBJECTS)}{rng.choice(EMOJI)} {rng.choice(STYLES)}")
    for _ in range(110):
        word = rng.choice(ACCENTED)
        form = rng.choice(["NFC", "NFD", "NFKC"])
        out.append(unicodedata.normalize(form, f"{word} {rng.choice(SUBJECTS)}, {rng.choice(STYLES)}"))
    for _ in range(110):
        out.append(f"{rng.choice(CJK)}{rng.choice(['', ' ', '，', '、'])}{rng.choice(CJK)} {rng.choice(STYLES)}")
    for _ in range(60):
        c = rng.choice(CONTROL)
        out.append(f"{rng.choice(SUBJECTS)}{c}{rng.choice(STYLES)}{c}{rng.choice(VIEWS)}")
    for _ in range(50):
        n = rng.randint(40, 120)
        words = [rng.choice(SUBJECTS + STYLES + VIEWS + EXTRAS + EMOJI + ACCENTED + CJK) for _ in range(n)]
        out.append(", ".join(words))
    out += ["", " ", "a", "A", "123456789", "0.5", "x" * 300, "ab" * 100, "!" * 50, "\u0301e"]
    # Each once, in a stable order.
    seen, uniq = set(), []
    for p in out:
        if p not in seen:
            seen.add(p)
            uniq.append(p)
    return uniq


def main(bpe_gz, out_dir):
    import transformers.models.clip.tokenization_clip as tc

    work = tempfile.mkdtemp()
    eot, _ = tokenizers(bpe_gz, work)
    assert eot.fix_text is not None, "install ftfy: the reference is the ftfy path"
    fallback = CLIPTokenizer(os.path.join(work, "vocab.json"), os.path.join(work, "merges.txt"))
    fallback.fix_text = None
    fallback.nlp = tc.BasicTokenizer(strip_accents=False, do_split_on_punc=False)
    fast = CLIPTokenizerFast(
        vocab_file=os.path.join(work, "vocab.json"), merges_file=os.path.join(work, "merges.txt")
    )
    rows = []
    for p in corpus():
        rows.append(
            dict(
                prompt=p,
                ids=eot(p, add_special_tokens=False).input_ids,
                fallback=fallback(p, add_special_tokens=False).input_ids,
                fast=fast(p, add_special_tokens=False).input_ids,
            )
        )
    assert len(rows) >= 1000, len(rows)
    os.makedirs(out_dir, exist_ok=True)
    with open(os.path.join(out_dir, "clip_bpe.json"), "w", encoding="utf-8") as f:
        f.write("[\n")
        f.write(",\n".join(json.dumps(r, ensure_ascii=False) for r in rows))
        f.write("\n]\n")
    diff_fb = sum(r["ids"] != r["fallback"] for r in rows)
    diff_fast = sum(r["ids"] != r["fast"] for r in rows)
    print(f"{len(rows)} prompts; the no-ftfy fallback differs on {diff_fb}, the fast tokenizer on {diff_fast}")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
