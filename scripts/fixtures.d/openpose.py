"""Reference OpenPose skeleton images, drawn by the annotator ControlNet 1.1's OpenPose models
were trained with: controlnet_aux's `draw_bodypose` (OpenCV's ellipse2Poly, fillConvexPoly and
circle). The wheel is fetched from PyPI without its dependencies and only its drawing module is
run, with a stand-in for the `Keypoint` tuple it imports; nothing of it is kept in the repository.

Writes OUT_DIR/poses.json (per case: width, height, joints as fractions, null where hidden) and
OUT_DIR/<case>.png (RGB). Cases: poses from the repository's templates (assets/poses) and seeded
random poses, on square and non-square canvases, with hidden joints and with joints on and past
the frame's edge (OpenCV clips those), at sizes from 64 to 512 px. Coordinates are float32
values, so the Rust side reads exactly the numbers Python drew.

Usage: openpose.py OUT_DIR"""
import importlib.util
import json
import os
import subprocess
import sys
import tempfile
import types
import zipfile
from typing import NamedTuple

import cv2
import numpy as np

WHEEL = "controlnet_aux==0.0.9"


def load_draw_bodypose():
    tmp = tempfile.mkdtemp()
    subprocess.run(
        [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--disable-pip-version-check", "-d", tmp, WHEEL],
        check=True,
    )
    wheel = [f for f in os.listdir(tmp) if f.endswith(".whl")][0]
    with zipfile.ZipFile(os.path.join(tmp, wheel)) as z:
        src = z.read("controlnet_aux/open_pose/util.py").decode()

    class Keypoint(NamedTuple):
        x: float
        y: float
        score: float = 1.0
        id: int = -1

    pkg = types.ModuleType("ref")
    pkg.__path__ = []
    body = types.ModuleType("ref.body")
    body.Keypoint = Keypoint
    body.BodyResult = tuple
    sys.modules["ref"] = pkg
    sys.modules["ref.body"] = body
    spec = importlib.util.spec_from_loader("ref.util", loader=None)
    util = importlib.util.module_from_spec(spec)
    util.__package__ = "ref"
    exec(compile(src, "controlnet_aux/open_pose/util.py", "exec"), util.__dict__)
    return util.draw_bodypose, Keypoint


def f32(v):
    return float(np.float32(v))


def main(out_dir):
    draw, Keypoint = load_draw_bodypose()
    os.makedirs(out_dir, exist_ok=True)
    root = os.path.join(os.path.dirname(__file__), "..", "..", "assets", "poses")
    cases = []
    for name, facing, frame, w, h in [
        ("topdown-walk", "s", 0, 512, 512),
        ("side-run", "e", 3, 384, 256),
        ("iso-death", "sw", 5, 256, 384),
        ("topdown-attack", "w", 2, 96, 160),
        ("side-jump", "e", 3, 64, 64),
    ]:
        t = json.load(open(os.path.join(root, f"{name}.json")))
        f = [x for x in t["facings"] if x["facing"] == facing][0]
        joints = [None if j is None else [f32(j[0]), f32(j[1])] for j in f["frames"][frame]["joints"]]
        cases.append((f"{name}-{facing}-{frame}", w, h, joints))
    rng = np.random.default_rng(7)
    for k, (w, h) in enumerate([(512, 512), (300, 200), (128, 256), (64, 48)]):
        for rep in range(2):
            joints = []
            for j in range(18):
                if rng.random() < 0.12:
                    joints.append(None)
                    continue
                # Mostly inside; some on the edge and a little past it, which OpenCV clips.
                x, y = rng.uniform(-0.04, 1.04, 2)
                if rng.random() < 0.1:
                    x = 1.0 if x > 0.5 else 0.0
                joints.append([f32(x), f32(y)])
            cases.append((f"random-{k}-{rep}", w, h, joints))
    index = []
    for name, w, h, joints in cases:
        kps = [None if j is None else Keypoint(j[0], j[1]) for j in joints]
        canvas = draw(np.zeros((h, w, 3), dtype=np.uint8), kps)
        cv2.imwrite(os.path.join(out_dir, f"{name}.png"), canvas[:, :, ::-1])
        index.append({"name": name, "width": w, "height": h, "joints": joints})
    with open(os.path.join(out_dir, "poses.json"), "w") as f:
        json.dump({"made_by": f"scripts/fixtures openpose ({WHEEL} draw_bodypose, OpenCV {cv2.__version__})", "cases": index}, f, indent=1)
        f.write("\n")
    print("wrote", len(index), "cases to", out_dir)


if __name__ == "__main__":
    main(sys.argv[1])
