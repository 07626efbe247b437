//! The keys tokens are verified with: static public keys from the config, the identity
//! provider's JWKS (fetched by the control thread), or the HS256 secret. One immutable
//! [`KeySet`] per change, published through an `ArcSwap` that every shard reads; a key is
//! found by `kid` *and* algorithm, so a key published for RS256 can never verify an HS256
//! token (the classic key confusion), whatever the token's header claims.

use std::sync::Arc;

use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey};

/// One verification key.
pub struct KeyEntry {
    /// `kid`, when the key has one.
    pub kid: Option<String>,
    /// The only algorithm this key verifies.
    pub alg: Algorithm,
    /// The key.
    pub key: DecodingKey,
}

/// Every key in force, with a version that changes when the set does.
#[derive(Default)]
pub struct KeySet {
    /// Bumped on each publication (token caches are keyed by it).
    pub version: u64,
    /// The keys.
    pub keys: Vec<KeyEntry>,
}

/// Where shards read the key set.
pub type SharedKeysSlot = Arc<arc_swap::ArcSwap<KeySet>>;

impl std::fmt::Debug for KeySet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let ids: Vec<_> = self
            .keys
            .iter()
            .map(|k| (k.kid.as_deref().unwrap_or("-"), k.alg))
            .collect();
        write!(f, "KeySet(v{}, {ids:?})", self.version)
    }
}

/// `RS256` etc. as the config and JWKs name them.
pub fn parse_alg(s: &str) -> Option<Algorithm> {
    Some(match s {
        "RS256" => Algorithm::RS256,
        "ES256" => Algorithm::ES256,
        "EdDSA" => Algorithm::EdDSA,
        "HS256" => Algorithm::HS256,
        _ => return None,
    })
}

impl KeySet {
    /// The key for a token signed with `alg` and naming `kid`. Without a `kid` the token
    /// may use the only key of that algorithm, if there is exactly one.
    pub fn find(&self, kid: Option<&str>, alg: Algorithm) -> Option<&DecodingKey> {
        match kid {
            Some(kid) => self
                .keys
                .iter()
                .find(|k| k.alg == alg && k.kid.as_deref() == Some(kid))
                .map(|k| &k.key),
            None => {
                let mut of_alg = self.keys.iter().filter(|k| k.alg == alg);
                match (of_alg.next(), of_alg.next()) {
                    (Some(k), None) => Some(&k.key),
                    _ => None,
                }
            }
        }
    }

    /// Whether some key of `alg` has this `kid` (an unknown `kid` asks for a JWKS refetch).
    pub fn knows(&self, kid: &str) -> bool {
        self.keys.iter().any(|k| k.kid.as_deref() == Some(kid))
    }
}

/// Builds the key list from static PEM keys, a JWKS document and the HS256 secret.
/// Keys whose algorithm is not in `allowed` are left out; a JWK without `alg` is taken for
/// the allowed algorithm its key type implies. Returns the keys and what was skipped, why.
pub fn build(
    allowed: &[Algorithm],
    pems: &[(String, Algorithm, Vec<u8>)],
    jwks: Option<&[u8]>,
    hs_secret: Option<&[u8]>,
) -> Result<(Vec<KeyEntry>, Vec<String>), String> {
    let mut keys = Vec::new();
    let mut skipped = Vec::new();
    for (kid, alg, pem) in pems {
        let key = match alg {
            Algorithm::RS256 => DecodingKey::from_rsa_pem(pem),
            Algorithm::ES256 => DecodingKey::from_ec_pem(pem),
            Algorithm::EdDSA => DecodingKey::from_ed_pem(pem),
            _ => {
                return Err(format!(
                    "key `{kid}`: {alg:?} is not a public-key algorithm"
                ))
            }
        }
        .map_err(|e| format!("key `{kid}`: not a {alg:?} public key in PEM: {e}"))?;
        keys.push(KeyEntry {
            kid: Some(kid.clone()),
            alg: *alg,
            key,
        });
    }
    if let Some(doc) = jwks {
        let set: JwkSet =
            sonic_rs::from_slice(doc).map_err(|e| format!("JWKS is not a JWK set: {e}"))?;
        for jwk in &set.keys {
            let kid = jwk.common.key_id.clone();
            // Encryption keys never verify signatures.
            if matches!(
                jwk.common.public_key_use,
                Some(jsonwebtoken::jwk::PublicKeyUse::Encryption)
            ) {
                skipped.push(format!("kid {kid:?}: an encryption key (use=enc)"));
                continue;
            }
            let alg = match jwk.common.key_algorithm.map(|a| format!("{a:?}")) {
                Some(a) => parse_alg(&a),
                None => implied_alg(&jwk.algorithm, allowed),
            };
            let Some(alg) = alg.filter(|a| allowed.contains(a) && *a != Algorithm::HS256) else {
                skipped.push(format!("kid {kid:?}: algorithm not allowed"));
                continue;
            };
            match DecodingKey::from_jwk(jwk) {
                Ok(key) => keys.push(KeyEntry { kid, alg, key }),
                Err(e) => skipped.push(format!("kid {kid:?}: {e}")),
            }
        }
    }
    if let Some(secret) = hs_secret {
        keys.push(KeyEntry {
            kid: None,
            alg: Algorithm::HS256,
            key: DecodingKey::from_secret(secret),
        });
    }
    Ok((keys, skipped))
}

/// The algorithm a JWK without `alg` is for: the allowed one matching its key type.
fn implied_alg(
    params: &jsonwebtoken::jwk::AlgorithmParameters,
    allowed: &[Algorithm],
) -> Option<Algorithm> {
    use jsonwebtoken::jwk::AlgorithmParameters as P;
    let want = match params {
        P::RSA(_) => Algorithm::RS256,
        P::EllipticCurve(_) => Algorithm::ES256,
        P::OctetKeyPair(_) => Algorithm::EdDSA,
        P::OctetKey(_) => return None,
    };
    allowed.contains(&want).then_some(want)
}

#[cfg(test)]
mod tests {
    use super::*;

    const JWKS: &[u8] = br#"{"keys":[
        {"kty":"RSA","kid":"r1","alg":"RS256","use":"sig","n":"sXchDaQebHnPiGvyDOAT4saGEUetSyo9MKLOoWFsueri23bOdgWp4Dy1WlUzewbgBHod5pcM9H95GQRV3JDXboIRROSBigeC5yjU1hGzHHyXss8UDprecbAYxknTcQkhslANGRUZmdTOQ5qTRsLAt6BTYuyvVRdhS8exSZEy_c4gs_7svlJJQ4H9_NxsiIoLwAEk7-Q3UXERGYw_75IDrGA84-lA_-Ct4eTlXHBIY2EaV7t7LjJaynVJCpkv4LKjTTAumiGUIuQhrNhZLuF_RJLqHpM2kgWFLU7-VTdL1VbC2tejvcI2BlMkEpk1BzBZI0KQB0GaDWFLN-aEAw3vRw","e":"AQAB"},
        {"kty":"oct","kid":"h1","k":"c2VjcmV0"},
        {"kty":"EC","kid":"e1","crv":"P-256","x":"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU","y":"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"}
    ]}"#;

    #[test]
    fn jwks_keys_are_kept_only_for_allowed_algorithms() {
        let (keys, skipped) = build(&[Algorithm::RS256], &[], Some(JWKS), None).unwrap();
        assert_eq!(keys.len(), 1, "{skipped:?}");
        assert_eq!(keys[0].kid.as_deref(), Some("r1"));
        assert_eq!(skipped.len(), 2, "{skipped:?}");
        let (keys, _) =
            build(&[Algorithm::RS256, Algorithm::ES256], &[], Some(JWKS), None).unwrap();
        assert_eq!(keys.len(), 2);
    }

    #[test]
    fn a_key_is_found_by_kid_and_algorithm_only() {
        let (keys, _) =
            build(&[Algorithm::RS256, Algorithm::ES256], &[], Some(JWKS), None).unwrap();
        let set = KeySet { version: 1, keys };
        assert!(set.find(Some("r1"), Algorithm::RS256).is_some());
        // The RSA key never serves another algorithm, whatever the token's header says.
        assert!(set.find(Some("r1"), Algorithm::HS256).is_none());
        assert!(set.find(Some("r1"), Algorithm::ES256).is_none());
        assert!(set.find(Some("nope"), Algorithm::RS256).is_none());
        // No kid: only when exactly one key of that algorithm exists.
        assert!(set.find(None, Algorithm::ES256).is_some());
        assert!(set.knows("e1") && !set.knows("zz"));
    }

    #[test]
    fn a_bad_pem_names_the_key() {
        let err = build(
            &[Algorithm::RS256],
            &[("k9".into(), Algorithm::RS256, b"not a pem".to_vec())],
            None,
            None,
        )
        .err()
        .unwrap();
        assert!(err.contains("key `k9`"), "{err}");
    }
}
