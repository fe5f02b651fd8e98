//! Arweave wallets: a 4096-bit RSA key as a JWK file (what arweave.app, ArConnect and
//! `arweave-js` write). The address is the base64url SHA-256 of the modulus. Signatures are
//! RSA-PSS over SHA-256 with a 32-byte salt, what WebCrypto and every Arweave node verify.

use rsa::pss::{Signature, SigningKey, VerifyingKey};
use rsa::signature::{RandomizedSigner, SignatureEncoding, Verifier};
use rsa::traits::{PrivateKeyParts, PublicKeyParts};
use rsa::{BigUint, RsaPrivateKey, RsaPublicKey};
use sha2::{Digest, Sha256};

use crate::{ArweaveError, b64};

/// The only modulus size Arweave (and ANS-104's fixed 512-byte owner field) accepts.
pub const KEY_BITS: usize = 4096;
pub const OWNER_LEN: usize = KEY_BITS / 8;

pub struct Wallet {
    key: RsaPrivateKey,
    owner: Vec<u8>,
}

impl std::fmt::Debug for Wallet {
    // Never the private parts, not even in a debug log.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Wallet")
            .field("address", &self.address())
            .finish_non_exhaustive()
    }
}

fn field(
    jwk: &serde_json::Map<String, serde_json::Value>,
    name: &str,
) -> Result<BigUint, ArweaveError> {
    let text = jwk.get(name).and_then(|v| v.as_str()).ok_or_else(|| {
        ArweaveError::Wallet(format!(
            "the key file has no {name:?} (a JWK RSA private key has n, e, d, p, q, dp, dq, qi)"
        ))
    })?;
    let bytes = b64::decode(text)
        .map_err(|_| ArweaveError::Wallet(format!("{name:?} is not base64url")))?;
    Ok(BigUint::from_bytes_be(&bytes))
}

impl Wallet {
    /// Reads a JWK key file's text; refuses anything that is not a consistent 4096-bit RSA
    /// private key with e = 65537, naming what is wrong.
    pub fn from_jwk(text: &str) -> Result<Self, ArweaveError> {
        let value: serde_json::Value = serde_json::from_str(text)
            .map_err(|e| ArweaveError::Wallet(format!("not a JSON key file ({e})")))?;
        let jwk = value
            .as_object()
            .ok_or_else(|| ArweaveError::Wallet("a JWK key file is a JSON object".into()))?;
        match jwk.get("kty").and_then(|v| v.as_str()) {
            Some("RSA") => {}
            Some(other) => {
                return Err(ArweaveError::Wallet(format!(
                    "the key is {other:?}; Arweave wallets are RSA keys"
                )));
            }
            None => return Err(ArweaveError::Wallet("the key file has no \"kty\"".into())),
        }
        let n = field(jwk, "n")?;
        let e = field(jwk, "e")?;
        if e != BigUint::from(65537u32) {
            return Err(ArweaveError::Wallet(
                "the public exponent is not 65537 (AQAB), which Arweave assumes when it verifies"
                    .into(),
            ));
        }
        if n.bits() != KEY_BITS {
            return Err(ArweaveError::Wallet(format!(
                "the key is {} bits; Arweave wallets are {KEY_BITS}-bit RSA keys",
                n.bits()
            )));
        }
        let d = field(jwk, "d")?;
        let p = field(jwk, "p")?;
        let q = field(jwk, "q")?;
        // dp, dq and qi are recomputed from p, q and d; their presence is still asked, since a
        // file without them is a public key or something else cut short.
        for name in ["dp", "dq", "qi"] {
            field(jwk, name)?;
        }
        let key = RsaPrivateKey::from_components(n, e, d, vec![p, q])
            .map_err(|e| ArweaveError::Wallet(format!("the key's parts do not agree ({e})")))?;
        key.validate()
            .map_err(|e| ArweaveError::Wallet(format!("the key's parts do not agree ({e})")))?;
        let owner = key.n().to_bytes_be();
        let wallet = Self { key, owner };
        // A key whose d does not invert e signs what no one can verify.
        let probe = wallet.sign(b"mintframe wallet check");
        if !verify(&wallet.owner, b"mintframe wallet check", &probe) {
            return Err(ArweaveError::Wallet(
                "the key's private exponent does not match its modulus".into(),
            ));
        }
        Ok(wallet)
    }

    /// The public modulus, big-endian, 512 bytes: a transaction's and data item's `owner`.
    pub fn owner(&self) -> &[u8] {
        &self.owner
    }

    pub fn address(&self) -> String {
        address_of(&self.owner)
    }

    /// RSA-PSS (SHA-256, MGF1-SHA-256, 32-byte salt) of `message`. The salt is drawn from a
    /// generator keyed by the private key and the message, so signing the same bytes again
    /// gives the same signature, and so the same id: a re-planned collection keeps its ids.
    pub fn sign(&self, message: &[u8]) -> Vec<u8> {
        use rand_chacha::rand_core::SeedableRng as _;
        let mut seed = Sha256::new();
        seed.update(b"mintframe arweave pss salt v1");
        seed.update(self.key.d().to_bytes_be());
        seed.update(Sha256::digest(message));
        let mut rng = rand_chacha::ChaCha20Rng::from_seed(seed.finalize().into());
        let signer = SigningKey::<Sha256>::new(self.key.clone());
        signer.sign_with_rng(&mut rng, message).to_vec()
    }
}

/// The address of an owner (a modulus): base64url of its SHA-256.
pub fn address_of(owner: &[u8]) -> String {
    b64::encode(&Sha256::digest(owner))
}

/// Whether `signature` is `owner`'s RSA-PSS signature of `message` (any salt length).
pub fn verify(owner: &[u8], message: &[u8], signature: &[u8]) -> bool {
    let Ok(key) = RsaPublicKey::new(BigUint::from_bytes_be(owner), BigUint::from(65537u32)) else {
        return false;
    };
    let Ok(sig) = Signature::try_from(signature) else {
        return false;
    };
    VerifyingKey::<Sha256>::new(key)
        .verify(message, &sig)
        .is_ok()
}
