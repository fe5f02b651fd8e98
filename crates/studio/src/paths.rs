//! The rules a job row depends on, in one place for both shells: paths are made absolute at
//! submit (a job may be resumed from another working directory), sizes are `WxH`, and a source
//! is a file when one exists at that path, otherwise a library asset id or prefix.

use std::path::{Path, PathBuf};

use crate::StudioError;

/// `p` as an absolute path string, for a job row.
pub fn absolute(p: impl AsRef<Path>) -> Result<String, StudioError> {
    let p = p.as_ref();
    Ok(std::path::absolute(p)
        .map_err(|source| StudioError::Io {
            action: "cannot resolve",
            path: p.to_path_buf(),
            source,
        })?
        .to_string_lossy()
        .into_owned())
}

/// A model as the user named it: an id stays an id; a path that exists becomes absolute.
pub fn model_ref(model: &str) -> Result<String, StudioError> {
    if Path::new(model).exists() && model.contains(['/', '.']) {
        absolute(model)
    } else {
        Ok(model.to_owned())
    }
}

/// `32x32`, `512X768` or `64×64` as `[w, h]`; `what` names the flag or field in the error.
pub fn parse_size(text: &str, what: &str) -> Result<[u32; 2], StudioError> {
    text.split_once(['x', 'X', '×'])
        .and_then(|(w, h)| Some([w.trim().parse().ok()?, h.trim().parse().ok()?]))
        .filter(|[w, h]| *w > 0 && *h > 0)
        .ok_or_else(|| StudioError::Settings(format!("{what} {text:?}: use WxH, e.g. 32x32")))
}

/// Where a render or preview reads from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// A file or folder on disk.
    Path(PathBuf),
    /// A library asset, by id or unique prefix.
    Asset(String),
}

impl Source {
    /// A path when something exists there; otherwise an asset id (resolved by the library).
    pub fn of(text: &str) -> Source {
        let p = Path::new(text);
        if p.exists() {
            Source::Path(p.to_path_buf())
        } else {
            Source::Asset(text.to_owned())
        }
    }
}

/// Writes `bytes` to `path` whole or not at all: beside it first, then renamed over it, so a
/// reader (the preview window, another process) never sees half a file.
pub fn write_whole(path: &Path, bytes: &[u8]) -> Result<(), StudioError> {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let part = path.with_file_name(format!("{name}.part"));
    std::fs::write(&part, bytes)
        .and_then(|()| std::fs::rename(&part, path))
        .map_err(|source| {
            let _ = std::fs::remove_file(&part);
            StudioError::Io {
                action: "cannot write",
                path: path.to_path_buf(),
                source,
            }
        })
}

/// A name that files and engine identifiers are made from (a sheet, a tileset, an animation,
/// a terrain): plain text without `/`, `\\` or `..`, so nothing named after it leaves its folder.
pub fn plain_name(what: &str, n: &str) -> Result<(), StudioError> {
    if n.trim().is_empty() || n.contains(['/', '\\', '\0']) || n.contains("..") {
        return Err(StudioError::Settings(format!(
            "{what} {n:?}: it names files, so it is plain text without /, \\ or .."
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_read_in_every_spelling_and_zero_is_refused() {
        assert_eq!(parse_size("32x16", "--frame").expect("size"), [32, 16]);
        assert_eq!(
            parse_size(" 512 X 768 ", "--size").expect("size"),
            [512, 768]
        );
        assert_eq!(parse_size("64×64", "--size").expect("size"), [64, 64]);
        let e = parse_size("0x8", "--frame").expect_err("zero").to_string();
        assert!(e.contains("--frame") && e.contains("WxH"), "{e}");
        assert!(parse_size("32", "--frame").is_err());
    }

    #[test]
    fn a_source_is_a_path_only_when_something_is_there() {
        let dir = tempfile::tempdir().expect("tmp");
        let f = dir.path().join("walk.png");
        std::fs::write(&f, b"x").expect("write");
        assert_eq!(Source::of(&f.to_string_lossy()), Source::Path(f.clone()));
        assert_eq!(Source::of("01a2"), Source::Asset("01a2".into()));
    }

    #[test]
    fn model_ids_stay_ids_and_paths_become_absolute() {
        assert_eq!(model_ref("sd15").expect("id"), "sd15");
        let dir = tempfile::tempdir().expect("tmp");
        let m = dir.path().join("m.safetensors");
        std::fs::write(&m, b"x").expect("write");
        let got = model_ref(&m.to_string_lossy()).expect("path");
        assert!(Path::new(&got).is_absolute(), "{got}");
    }
}
