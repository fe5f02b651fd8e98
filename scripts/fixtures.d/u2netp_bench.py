"""onnxruntime running rembg's u2netp.onnx on the synthetic 320² subject `matte_bench` uses:
N masks, load included, the same pre- and post-processing steps. The yardstick for
BENCHMARKS.md (run through farm-bench beside `target/debug/examples/matte_bench N`)."""
import sys
import time

import numpy as np
import onnxruntime as ort

n = int(sys.argv[1]) if len(sys.argv) > 1 else 3
path = sys.argv[2] if len(sys.argv) > 2 else "vendor/u2netp/u2netp.onnx"
t0 = time.perf_counter()
sess = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
load = time.perf_counter() - t0
yy, xx = np.mgrid[0:320, 0:320]
img = np.full((320, 320, 3), 211, np.float32)
img[(yy - 160) ** 2 + (xx - 160) ** 2 <= 80 * 80] = (255, 0, 0)
t1 = time.perf_counter()
for _ in range(n):
    x = img / max(img.max(), 1e-6)
    x = (x - np.array([0.485, 0.456, 0.406])) / np.array([0.229, 0.224, 0.225])
    x = x.transpose(2, 0, 1)[None].astype(np.float32)
    d0 = sess.run(None, {sess.get_inputs()[0].name: x})[0][0, 0]
    d0 = (d0 - d0.min()) / max(d0.max() - d0.min(), 1e-6)
    opaque = int((d0 * 255 >= 128).sum())
each = (time.perf_counter() - t1) / n
print('{"load_ms": %.1f, "mask_ms": %.1f, "runs": %d, "opaque_px": %d}' % (load * 1e3, each * 1e3, n, opaque))
