//! NFT metadata: ERC-721 with OpenSea's fields, ERC-1155's `{id}` naming, and the checks that
//! keep a collection from going live with the mistakes creators most often ship (gateway URLs,
//! placeholder links, colours with a `#`, dates that are not timestamps).

use serde::{Deserialize, Serialize};

pub use mintframe_types::DisplayType;

/// One trait of a token.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Attribute {
    pub trait_type: String,
    pub value: serde_json::Value,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub display_type: Option<DisplayType>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_value: Option<f64>,
}

/// ERC-721 metadata JSON with OpenSea's optional fields.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TokenMetadata {
    pub name: String,
    pub description: String,
    pub image: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub animation_url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub external_url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub background_color: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub attributes: Vec<Attribute>,
}

/// A problem found before minting. Errors stop a publish; warnings are shown.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    pub error: bool,
    pub field: String,
    pub message: String,
}

fn finding(error: bool, field: impl Into<String>, message: impl Into<String>) -> Finding {
    Finding {
        error,
        field: field.into(),
        message: message.into(),
    }
}

/// Hosts that serve IPFS content over HTTP. A link through one of them dies with the gateway.
fn is_gateway_url(url: &str) -> bool {
    let lower = url.to_ascii_lowercase();
    (lower.starts_with("http://") || lower.starts_with("https://"))
        && (lower.contains("/ipfs/") || lower.contains(".ipfs."))
}

/// A `ipfs://<cid>[/path]` URI whose CID looks like one (v0 `Qm…` or base32 v1 `b…`).
fn is_ipfs_uri(uri: &str) -> bool {
    let Some(rest) = uri.strip_prefix("ipfs://") else {
        return false;
    };
    let cid = rest.split('/').next().unwrap_or_default();
    let v0 =
        cid.len() == 46 && cid.starts_with("Qm") && cid.chars().all(|c| c.is_ascii_alphanumeric());
    let v1 = cid.len() > 50
        && cid.starts_with('b')
        && cid
            .chars()
            .all(|c| c.is_ascii_lowercase() || ('2'..='7').contains(&c));
    (v0 || v1) && !rest.starts_with("ipfs/")
}

/// An Arweave id: 43 base64url characters.
fn is_arweave_id(s: &str) -> bool {
    s.len() == 43
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

/// `ar://<id>[/path]`, or an Arweave gateway's `https://<host>/<id>[/path]` (what Metaplex's
/// standard asks for): permanent, since the id names the bytes and every gateway serves it.
fn is_arweave_link(uri: &str) -> bool {
    if let Some(rest) = uri.strip_prefix("ar://") {
        return is_arweave_id(rest.split('/').next().unwrap_or_default());
    }
    let Some(rest) = uri.strip_prefix("https://") else {
        return false;
    };
    let mut parts = rest.splitn(2, '/');
    let host = parts.next().unwrap_or_default();
    let id = parts.next().unwrap_or_default().split(['/', '?']).next();
    matches!(host, "arweave.net" | "ar-io.net" | "gateway.irys.xyz")
        && id.is_some_and(is_arweave_id)
}

fn check_media_uri(field: &str, uri: &str, out: &mut Vec<Finding>) {
    if is_arweave_link(uri) {
        return;
    }
    if uri.starts_with("ar://") {
        out.push(finding(
            true,
            field,
            format!("{uri} does not name a valid Arweave id"),
        ));
        return;
    }
    if is_gateway_url(uri) {
        out.push(finding(
            true,
            field,
            format!("{uri} is a gateway URL: use ipfs://<cid>/<path>, which outlives any gateway"),
        ));
    } else if uri.starts_with("ipfs://") && !is_ipfs_uri(uri) {
        out.push(finding(
            true,
            field,
            format!("{uri} does not name a valid CID"),
        ));
    } else if !uri.starts_with("ipfs://") {
        out.push(finding(
            false,
            field,
            format!("{uri} is not on IPFS or Arweave: it lives only as long as its server"),
        ));
    }
    if uri.contains("REPLACE") || uri.contains("<cid>") || uri.contains("{cid}") {
        out.push(finding(
            true,
            field,
            format!("{uri} still holds a placeholder"),
        ));
    }
}

impl TokenMetadata {
    /// Checks the JSON against ERC-721 and OpenSea's rules.
    pub fn validate(&self) -> Vec<Finding> {
        let mut out = Vec::new();
        if self.name.trim().is_empty() {
            out.push(finding(true, "name", "a token needs a name"));
        }
        if self.image.is_empty() {
            out.push(finding(
                true,
                "image",
                "a token needs an image (for clips: a poster frame)",
            ));
        } else {
            check_media_uri("image", &self.image, &mut out);
        }
        if let Some(a) = &self.animation_url {
            check_media_uri("animation_url", a, &mut out);
        }
        if let Some(c) = &self.background_color
            && !(c.len() == 6 && c.chars().all(|ch| ch.is_ascii_hexdigit()))
        {
            out.push(finding(
                true,
                "background_color",
                format!("{c:?} must be six hex digits without '#', e.g. \"1a2b3c\""),
            ));
        }
        let mut seen = std::collections::HashSet::new();
        for (i, a) in self.attributes.iter().enumerate() {
            let field = format!("attributes[{i}]");
            if a.trait_type.trim().is_empty() {
                out.push(finding(true, &field, "an attribute needs a trait_type"));
            } else if !seen.insert(a.trait_type.as_str()) {
                out.push(finding(
                    false,
                    &field,
                    format!("trait {:?} appears twice", a.trait_type),
                ));
            }
            let numeric_ok = match a.display_type {
                Some(DisplayType::Date) => a.value.as_i64().is_some_and(|t| t >= 0),
                Some(_) => a.value.is_number(),
                None => true,
            };
            if !numeric_ok {
                let what = if a.display_type == Some(DisplayType::Date) {
                    "a Unix timestamp in seconds"
                } else {
                    "a number for its display_type"
                };
                out.push(finding(true, &field, format!("{} must be {what}", a.value)));
            }
            if a.max_value.is_some() && !a.value.is_number() {
                out.push(finding(
                    true,
                    &field,
                    "max_value only applies to numeric values",
                ));
            }
        }
        out
    }
}

/// ERC-1155's file name for a token id: 64 lower-case hex digits, no `0x`.
pub fn erc1155_id(id: u64) -> String {
    format!("{id:064x}")
}

#[cfg(test)]
mod tests {
    use super::*;

    const CID: &str = "QmZULkCELmmk5XNfCgTnCyFgAVxBRBXyDHGGMVoLFLiXEN";

    fn token() -> TokenMetadata {
        TokenMetadata {
            name: "Slime #0".into(),
            description: "A bouncing slime".into(),
            image: format!("ipfs://{CID}/0.png"),
            animation_url: None,
            external_url: None,
            background_color: Some("1a2b3c".into()),
            attributes: vec![Attribute {
                trait_type: "seed".into(),
                value: serde_json::json!(42),
                display_type: Some(DisplayType::Number),
                max_value: None,
            }],
        }
    }

    #[test]
    fn a_good_token_passes_and_serialises_like_opensea_expects() {
        let t = token();
        assert!(t.validate().is_empty(), "{:?}", t.validate());
        let json = serde_json::to_value(&t).expect("json");
        assert_eq!(json["attributes"][0]["display_type"], "number");
        assert!(json.get("animation_url").is_none());
    }

    #[test]
    fn common_mistakes_are_caught() {
        let mut t = token();
        t.image = format!("https://gateway.example/ipfs/{CID}/0.png");
        t.background_color = Some("#1a2b3c".into());
        t.attributes.push(Attribute {
            trait_type: "born".into(),
            value: serde_json::json!("2026-11-25"),
            display_type: Some(DisplayType::Date),
            max_value: None,
        });
        let errors: Vec<String> = t
            .validate()
            .into_iter()
            .filter(|f| f.error)
            .map(|f| f.field)
            .collect();
        assert_eq!(errors, vec!["image", "background_color", "attributes[1]"]);
        t.image = "ipfs://REPLACE_ME/0.png".into();
        assert!(t.validate().iter().any(|f| f.field == "image" && f.error));
    }

    #[test]
    fn erc1155_ids_are_64_lowercase_hex() {
        assert_eq!(erc1155_id(0).len(), 64);
        assert_eq!(&erc1155_id(255)[60..], "00ff");
        assert!(!erc1155_id(u64::MAX).contains(char::is_uppercase));
    }
}
