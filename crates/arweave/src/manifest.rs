//! Arweave path manifests (`arweave/paths` 0.2.0): one id under which a collection's files are
//! reached by name, `ar://MANIFEST/3.json`, as gateways resolve them.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::ArweaveError;

pub const CONTENT_TYPE: &str = "application/x.arweave-manifest+json";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PathEntry {
    pub id: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IndexEntry {
    pub path: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    pub manifest: String,
    pub version: String,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub index: Option<IndexEntry>,
    pub paths: BTreeMap<String, PathEntry>,
}

/// Refuses a path a gateway would resolve outside the collection, or not at all.
pub fn check_path(path: &str) -> Result<(), ArweaveError> {
    let bad = |why: &str| {
        Err(ArweaveError::Invalid(format!(
            "the manifest path {path:?} {why}"
        )))
    };
    if path.is_empty() {
        return bad("is empty");
    }
    if path.starts_with('/') || path.contains('\\') {
        return bad("must be relative, with / between folders");
    }
    if path.chars().any(|c| c.is_control()) {
        return bad("holds a control character");
    }
    for seg in path.split('/') {
        match seg {
            "" => return bad("has an empty folder name"),
            "." | ".." => return bad("would leave the collection (`.` and `..` are not names)"),
            _ => {}
        }
    }
    Ok(())
}

impl Manifest {
    /// A manifest of `paths` (path → id), with `index` served at the manifest's own URL.
    pub fn new(
        paths: impl IntoIterator<Item = (String, String)>,
        index: Option<&str>,
    ) -> Result<Self, ArweaveError> {
        let mut map = BTreeMap::new();
        for (path, id) in paths {
            check_path(&path)?;
            if crate::b64::id(&id).is_none() {
                return Err(ArweaveError::Invalid(format!(
                    "{id:?} (for {path:?}) is not an Arweave id"
                )));
            }
            map.insert(path, PathEntry { id });
        }
        if let Some(i) = index
            && !map.contains_key(i)
        {
            return Err(ArweaveError::Invalid(format!(
                "the manifest's index {i:?} is not one of its paths"
            )));
        }
        Ok(Self {
            manifest: "arweave/paths".into(),
            version: "0.2.0".into(),
            index: index.map(|p| IndexEntry { path: p.to_owned() }),
            paths: map,
        })
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        // Compact and in key order: the same paths give the same bytes, so the same id.
        serde_json::to_vec(self).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_path_that_would_leave_the_collection_is_refused() {
        for p in [
            "../x.png",
            "a/../../b",
            "/etc/passwd",
            "a//b",
            "",
            "a\\b",
            "./a",
        ] {
            assert!(check_path(p).is_err(), "{p}");
        }
        for p in ["0.png", "3/frames/walk_e_0.png", "collection.json", "..a"] {
            assert!(check_path(p).is_ok(), "{p}");
        }
        let id = "x".repeat(43);
        let err = Manifest::new([("../0.json".to_owned(), id)], None).expect_err("in a test");
        assert!(
            err.to_string().contains("would leave the collection"),
            "{err}"
        );
    }
}
