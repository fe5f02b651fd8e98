"""U²-Net-p reference outputs: onnxruntime runs rembg's u2netp.onnx on a synthetic subject
(a figure on a plain background) at 159×127 — odd sizes, so the pools round up and the
resizes are not exact halvings — and the input and all seven outputs are saved."""
import sys

import numpy as np
import onnx
import onnxruntime as ort
from safetensors.numpy import save_file

model_path, out_path = sys.argv[1], sys.argv[2]
h, w = 159, 127
yy, xx = np.mgrid[0:h, 0:w]
img = np.full((h, w, 3), (214, 220, 228), np.float32)  # a light studio backdrop
body = ((yy - 100) / 42.0) ** 2 + ((xx - 63) / 30.0) ** 2 <= 1.0
head = ((yy - 40) / 20.0) ** 2 + ((xx - 63) / 20.0) ** 2 <= 1.0
img[body] = (180, 40, 40)
img[head] = (240, 190, 150)
# rembg's normalisation, on an image already at the network's input size.
x = img / max(img.max(), 1e-6)
x = (x - np.array([0.485, 0.456, 0.406])) / np.array([0.229, 0.224, 0.225])
x = x.transpose(2, 0, 1)[None].astype(np.float32)

m = onnx.load(model_path)
for v in list(m.graph.input) + list(m.graph.output):
    for k, d in enumerate(v.type.tensor_type.shape.dim):
        d.ClearField("dim_value")
        d.dim_param = "d%d" % k
sess = ort.InferenceSession(m.SerializeToString(), providers=["CPUExecutionProvider"])
outs = sess.run(None, {m.graph.input[0].name: x})
tensors = {"input": x, "subject": (body | head).astype(np.uint8)}
# The fused map (what a mask is made of), the finest and the coarsest side map.
for i, o in enumerate(outs):
    if i not in (0, 1, 6):
        continue
    tensors["d%d" % i] = np.ascontiguousarray(o.astype(np.float32))
save_file(tensors, out_path, metadata={
    "made_by": "scripts/fixtures u2netp",
    "runtime": "onnxruntime " + ort.__version__,
    "model_sha256": "309c8469258dda742793dce0ebea8e6dd393174f89934733ecc8b14c76f4ddd8",
})
iou = ((outs[0][0, 0] > 0.5) & (body | head)).sum() / ((outs[0][0, 0] > 0.5) | (body | head)).sum()
print("wrote", out_path, "IoU(d0 > 0.5, subject) = %.4f" % iou)
