//! What a training run writes: the kohya-format LoRA (what our engine, A1111, ComfyUI and
//! diffusers load) and checkpoints (the LoRA's tensors, the optimiser's moments, the EMA copy
//! and the step, tied to their run by a fingerprint). Both are written crash-safe: a temporary
//! file in the same folder, synced, then renamed over the old one.

use std::collections::{BTreeMap, HashMap};
use std::fs;
use std::io::Write;
use std::path::Path;

use candle_core::{DType, Device, Tensor};

use crate::error::{Error, Result, io};

/// Writes `tensors` with `metadata` to `path` so that a crash leaves the old file or the new
/// one, never half of either.
pub fn write_safetensors(
    path: &Path,
    tensors: &BTreeMap<String, Tensor>,
    metadata: HashMap<String, String>,
) -> Result<()> {
    let contiguous: Vec<(String, Tensor)> = tensors
        .iter()
        .map(|(k, t)| Ok((k.clone(), t.to_device(&Device::Cpu)?.contiguous()?)))
        .collect::<Result<_>>()?;
    let bytes = safetensors::serialize(contiguous, Some(metadata))?;
    let dir = path.parent().unwrap_or(Path::new("."));
    fs::create_dir_all(dir).map_err(io(dir))?;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.part"));
    {
        let mut f = fs::File::create(&tmp).map_err(io(&tmp))?;
        f.write_all(&bytes).map_err(io(&tmp))?;
        f.sync_all().map_err(io(&tmp))?;
    }
    fs::rename(&tmp, path).map_err(io(path))?;
    if let Ok(d) = fs::File::open(dir) {
        // The rename is durable once the folder is synced; a failure here loses nothing written.
        let _ = d.sync_all();
    }
    Ok(())
}

/// Reads a safetensors file whole: its tensors (as f32) and its metadata.
pub fn read_safetensors(
    path: &Path,
) -> Result<(BTreeMap<String, Tensor>, HashMap<String, String>)> {
    let bytes = fs::read(path).map_err(io(path))?;
    let bad = |reason: String| Error::Checkpoint {
        path: path.to_owned(),
        reason,
    };
    let (_, meta) = safetensors::SafeTensors::read_metadata(&bytes)
        .map_err(|e| bad(format!("not a safetensors file: {e}")))?;
    let metadata = meta.metadata().clone().unwrap_or_default();
    let tensors = candle_core::safetensors::load_buffer(&bytes, &Device::Cpu)
        .map_err(|e| bad(format!("unreadable tensors: {e}")))?
        .into_iter()
        .map(|(k, t)| Ok((k, t.to_dtype(DType::F32)?)))
        .collect::<Result<_>>()?;
    Ok((tensors, metadata))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_written_file_reads_back_with_its_metadata_and_leaves_no_part_file() {
        let dir = tempfile::tempdir().expect("tmp");
        let path = dir.path().join("x.safetensors");
        let mut t = BTreeMap::new();
        t.insert(
            "a".to_owned(),
            Tensor::new(&[1f32, 2.0], &Device::Cpu).expect("t"),
        );
        t.insert(
            "alpha".to_owned(),
            Tensor::new(4f32, &Device::Cpu).expect("t"),
        );
        let meta = HashMap::from([("k".to_owned(), "v".to_owned())]);
        write_safetensors(&path, &t, meta.clone()).expect("write");
        let (back, m) = read_safetensors(&path).expect("read");
        assert_eq!(m, meta);
        assert_eq!(back["a"].to_vec1::<f32>().expect("v"), vec![1.0, 2.0]);
        assert_eq!(back["alpha"].dims(), &[] as &[usize]);
        let names: Vec<_> = fs::read_dir(dir.path())
            .expect("ls")
            .map(|e| e.expect("e").file_name())
            .collect();
        assert_eq!(names, vec!["x.safetensors"]);
    }
}
