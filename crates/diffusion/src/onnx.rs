//! Just enough of ONNX's protobuf to take a model's weights: the graph's initializers (name,
//! shape, float32 data) and its nodes (operator and input names, in graph order). Nothing is
//! executed from the file; every length is checked against what is left of it, so a truncated
//! or lying file is an error, never a panic or a huge allocation.

use std::collections::HashMap;
use std::path::Path;

use crate::error::{Error, Result};

/// A float32 tensor from the file.
#[derive(Debug, Clone)]
pub struct OnnxTensor {
    pub dims: Vec<usize>,
    pub data: Vec<f32>,
}

/// A node: its operator and the names of its inputs.
#[derive(Debug, Clone)]
pub struct OnnxNode {
    pub op_type: String,
    pub inputs: Vec<String>,
}

/// What a model file holds that a port of its network needs.
#[derive(Debug, Clone, Default)]
pub struct OnnxGraph {
    pub initializers: HashMap<String, OnnxTensor>,
    pub nodes: Vec<OnnxNode>,
}

/// Beyond this an "ONNX" file is refused before it is read (the largest model we port is a
/// few hundred MB).
pub const MAX_ONNX_BYTES: u64 = 1 << 30;

struct Pb<'a> {
    b: &'a [u8],
    at: usize,
    path: &'a Path,
}

fn bad(path: &Path, reason: impl Into<String>) -> Error {
    Error::CorruptWeights {
        path: path.to_owned(),
        reason: reason.into(),
    }
}

impl<'a> Pb<'a> {
    fn new(b: &'a [u8], path: &'a Path) -> Pb<'a> {
        Pb { b, at: 0, path }
    }
    fn done(&self) -> bool {
        self.at >= self.b.len()
    }
    fn varint(&mut self) -> Result<u64> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let byte = *self
                .b
                .get(self.at)
                .ok_or_else(|| bad(self.path, "the protobuf ends inside a number"))?;
            self.at += 1;
            v |= u64::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err(bad(self.path, "a protobuf number runs past 10 bytes"))
    }
    fn bytes(&mut self) -> Result<&'a [u8]> {
        let n = self.varint()?;
        let end = usize::try_from(n)
            .ok()
            .and_then(|n| self.at.checked_add(n))
            .filter(|e| *e <= self.b.len())
            .ok_or_else(|| {
                bad(
                    self.path,
                    format!("a field claims {n} bytes, more than the file has left"),
                )
            })?;
        let s = &self.b[self.at..end];
        self.at = end;
        Ok(s)
    }
    /// The next field: its number and wire type, or `None` at the end.
    fn field(&mut self) -> Result<Option<(u64, u8)>> {
        if self.done() {
            return Ok(None);
        }
        let key = self.varint()?;
        Ok(Some((key >> 3, (key & 7) as u8)))
    }
    fn skip(&mut self, wire: u8) -> Result<()> {
        match wire {
            0 => {
                self.varint()?;
            }
            1 => self.fixed(8)?,
            2 => {
                self.bytes()?;
            }
            5 => self.fixed(4)?,
            w => return Err(bad(self.path, format!("unknown protobuf wire type {w}"))),
        }
        Ok(())
    }
    fn fixed(&mut self, n: usize) -> Result<()> {
        if self.at + n > self.b.len() {
            return Err(bad(self.path, "the protobuf ends inside a field"));
        }
        self.at += n;
        Ok(())
    }
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Reads `path` as an ONNX model.
pub fn read(path: &Path) -> Result<OnnxGraph> {
    let meta = std::fs::metadata(path).map_err(crate::error::io(path))?;
    if meta.len() > MAX_ONNX_BYTES {
        return Err(bad(
            path,
            format!(
                "is {} MiB, over the {} MiB an ONNX model may be",
                meta.len() >> 20,
                MAX_ONNX_BYTES >> 20
            ),
        ));
    }
    let bytes = std::fs::read(path).map_err(crate::error::io(path))?;
    parse(&bytes, path)
}

/// Parses ONNX bytes (`path` names them in errors).
pub fn parse(bytes: &[u8], path: &Path) -> Result<OnnxGraph> {
    let mut model = Pb::new(bytes, path);
    let mut graph = None;
    while let Some((field, wire)) = model.field()? {
        // ModelProto.graph = 7.
        if field == 7 && wire == 2 {
            graph = Some(model.bytes()?);
        } else {
            model.skip(wire)?;
        }
    }
    let graph = graph.ok_or_else(|| bad(path, "is not an ONNX model: it has no graph"))?;
    let mut g = Pb::new(graph, path);
    let mut out = OnnxGraph::default();
    while let Some((field, wire)) = g.field()? {
        match (field, wire) {
            // GraphProto.node = 1, GraphProto.initializer = 5.
            (1, 2) => out.nodes.push(node(g.bytes()?, path)?),
            (5, 2) => {
                let (name, t) = tensor(g.bytes()?, path)?;
                out.initializers.insert(name, t);
            }
            (_, w) => g.skip(w)?,
        }
    }
    Ok(out)
}

fn node(b: &[u8], path: &Path) -> Result<OnnxNode> {
    let mut p = Pb::new(b, path);
    let mut n = OnnxNode {
        op_type: String::new(),
        inputs: Vec::new(),
    };
    while let Some((field, wire)) = p.field()? {
        match (field, wire) {
            (1, 2) => n.inputs.push(text(p.bytes()?)),
            (4, 2) => n.op_type = text(p.bytes()?),
            (_, w) => p.skip(w)?,
        }
    }
    Ok(n)
}

/// TensorProto: dims = 1, data_type = 2, float_data = 4, name = 8, raw_data = 9,
/// data_location = 14 (1: external, which a self-contained model does not use).
fn tensor(b: &[u8], path: &Path) -> Result<(String, OnnxTensor)> {
    let mut p = Pb::new(b, path);
    let mut dims = Vec::new();
    let mut dtype = 0;
    let mut name = String::new();
    let mut raw: Option<&[u8]> = None;
    let mut floats: Vec<f32> = Vec::new();
    let mut external = false;
    while let Some((field, wire)) = p.field()? {
        match (field, wire) {
            (1, 0) => dims.push(p.varint()?),
            (1, 2) => {
                let mut q = Pb::new(p.bytes()?, path);
                while !q.done() {
                    dims.push(q.varint()?);
                }
            }
            (2, 0) => dtype = p.varint()?,
            (4, 2) => {
                let packed = p.bytes()?;
                floats.extend(
                    packed
                        .chunks_exact(4)
                        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])),
                );
            }
            (4, 5) => {
                let s = p.at;
                p.fixed(4)?;
                let c = &b[s..s + 4];
                floats.push(f32::from_le_bytes([c[0], c[1], c[2], c[3]]));
            }
            (8, 2) => name = text(p.bytes()?),
            (9, 2) => raw = Some(p.bytes()?),
            (14, 0) => external = p.varint()? == 1,
            (_, w) => p.skip(w)?,
        }
    }
    if external {
        return Err(bad(
            path,
            format!("tensor {name:?} is stored in an external file; use a self-contained model"),
        ));
    }
    // TensorProto.DataType FLOAT = 1.
    if dtype != 1 {
        return Err(bad(
            path,
            format!("tensor {name:?} is of ONNX type {dtype}, not float32"),
        ));
    }
    let dims: Vec<usize> = dims
        .into_iter()
        .map(|d| {
            usize::try_from(d)
                .map_err(|_| bad(path, format!("tensor {name:?} has a huge dimension")))
        })
        .collect::<Result<_>>()?;
    // The byte count too: a shape whose elements fit a usize may not fit it as bytes (found by
    // the onnx fuzz target; the input is kept in fuzz/regressions/onnx/).
    let (count, bytes) = dims
        .iter()
        .try_fold(1usize, |a, d| a.checked_mul(*d))
        .and_then(|c| Some((c, c.checked_mul(4)?)))
        .ok_or_else(|| bad(path, format!("tensor {name:?}'s shape {dims:?} overflows")))?;
    let data = match raw {
        Some(r) => {
            if r.len() != bytes {
                return Err(bad(
                    path,
                    format!(
                        "tensor {name:?} has {} bytes for a {dims:?} float32 shape ({bytes} bytes)",
                        r.len(),
                    ),
                ));
            }
            r.chunks_exact(4)
                .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect()
        }
        None => {
            if floats.len() != count {
                return Err(bad(
                    path,
                    format!(
                        "tensor {name:?} has {} values for shape {dims:?}",
                        floats.len()
                    ),
                ));
            }
            floats
        }
    };
    Ok((name, OnnxTensor { dims, data }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn varint(mut v: u64, out: &mut Vec<u8>) {
        loop {
            let b = (v & 0x7f) as u8;
            v >>= 7;
            if v == 0 {
                out.push(b);
                return;
            }
            out.push(b | 0x80);
        }
    }
    fn field(n: u64, body: &[u8], out: &mut Vec<u8>) {
        varint(n << 3 | 2, out);
        varint(body.len() as u64, out);
        out.extend_from_slice(body);
    }

    fn model(raw_len: usize) -> Vec<u8> {
        let mut t = Vec::new();
        varint(1 << 3, &mut t);
        varint(2, &mut t);
        varint(1 << 3, &mut t);
        varint(3, &mut t);
        varint(2 << 3, &mut t);
        varint(1, &mut t);
        field(8, b"w", &mut t);
        let raw: Vec<u8> = (0..raw_len as u32)
            .flat_map(|i| (i as f32).to_le_bytes())
            .collect();
        field(9, &raw[..raw_len * 4 / 4 * 4], &mut t);
        let mut n = Vec::new();
        field(1, b"x", &mut n);
        field(1, b"w", &mut n);
        field(4, b"Conv", &mut n);
        let mut g = Vec::new();
        field(1, &n, &mut g);
        field(5, &t, &mut g);
        let mut m = Vec::new();
        varint(1 << 3, &mut m);
        varint(6, &mut m);
        field(7, &g, &mut m);
        m
    }

    /// Inputs the fuzz target once crashed on: each must be an error now, never a panic.
    #[test]
    fn fuzz_regressions_are_errors_not_panics() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/regressions/onnx");
        let mut seen = 0;
        for e in std::fs::read_dir(dir).expect("regressions").flatten() {
            let bytes = std::fs::read(e.path()).expect("read");
            assert!(parse(&bytes, &e.path()).is_err(), "{}", e.path().display());
            seen += 1;
        }
        assert!(seen > 0);
    }

    #[test]
    fn initializers_and_nodes_are_read_in_order() {
        let g = parse(&model(6), Path::new("m.onnx")).expect("parse");
        let w = &g.initializers["w"];
        assert_eq!(w.dims, vec![2, 3]);
        assert_eq!(w.data, vec![0.0, 1.0, 2.0, 3.0, 4.0, 5.0]);
        assert_eq!(g.nodes[0].op_type, "Conv");
        assert_eq!(g.nodes[0].inputs, vec!["x", "w"]);
    }

    #[test]
    fn a_truncated_or_lying_onnx_file_is_an_error_naming_it() {
        let m = model(6);
        for cut in 1..m.len() {
            if let Err(e) = parse(&m[..cut], Path::new("m.onnx")) {
                assert!(e.to_string().contains("m.onnx"), "{e}");
            }
        }
        let e = parse(&model(5), Path::new("m.onnx"))
            .expect_err("5 values for 2×3")
            .to_string();
        assert!(e.contains("20 bytes for a [2, 3]"), "{e}");
        let e = parse(b"\x3a\xff\xff\xff\xff\x0f", Path::new("m.onnx"))
            .expect_err("huge")
            .to_string();
        assert!(e.contains("more than the file has left"), "{e}");
    }
}
