//! Credentials from outside: the `Authorization` header (API keys, JWTs up to and past the
//! signature check) and the identity provider's JWKS document.

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey};
use sha2::Digest;

use crate::auth::keys::{build, KeyEntry, KeySet};
use crate::auth::verify::{LocalVerifier, SharedAuth};

const SECRET: &[u8] = b"fuzz-secret";
const API_KEY: &[u8] = b"the-api-key";

fn shared_auth() -> SharedAuth {
    let digest: String = sha2::Sha256::digest(API_KEY)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let toml = format!(
        r#"[auth]
mode = "jwt"
resource = "http://127.0.0.1:8080/mcp"
authorization_servers = ["https://idp"]
roles_claim = "realm.roles"
required_scopes = ["mcp"]
[[auth.api_keys]]
name = "bot"
sha256 = "{digest}"
roles = ["ops"]
[[auth.roles]]
name = "ops"
[auth.jwt]
issuer = "https://idp"
algorithms = ["HS256"]
secret_env = "FUZZ_UNUSED"
"#
    );
    let cfg = crate::config::parse_str(&toml, "fuzz.toml").expect("the jwt target's config");
    SharedAuth::new(&cfg.auth)
}

thread_local! {
    static AUTH: (SharedAuth, KeySet) = (
        shared_auth(),
        KeySet {
            version: 1,
            keys: vec![KeyEntry {
                kid: None,
                alg: Algorithm::HS256,
                key: DecodingKey::from_secret(SECRET),
            }],
        },
    );
}

fn b64(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// The `Authorization` value [`jwt`] sends, and the claims it signed (signed form only).
fn authorization(data: &[u8]) -> Option<(Vec<u8>, Option<&[u8]>)> {
    let (&mode, rest) = data.split_first()?;
    if mode & 1 == 0 {
        return Some((rest.to_vec(), None));
    }
    let cut = rest.iter().position(|&b| b == b'\n').unwrap_or(rest.len());
    let (header, claims) = (&rest[..cut], rest.get(cut + 1..).unwrap_or_default());
    let signing = format!("{}.{}", b64(header), b64(claims));
    let key = EncodingKey::from_secret(SECRET);
    let sig = jsonwebtoken::crypto::sign(signing.as_bytes(), &key, Algorithm::HS256).ok()?;
    Some((format!("Bearer {signing}.{sig}").into_bytes(), Some(claims)))
}

/// An `Authorization` value checked by the shard verifier. First byte even: the rest is the
/// header value as sent, which (holding no secret) can only ever pass as the one API key.
/// Odd: the rest is `<JOSE header JSON>\n<claims JSON>`, signed here with the verifier's
/// own secret, so the claim checks and claim reading after the signature run too; a token
/// accepted then names the principal serde_json reads from its `sub`.
pub fn jwt(data: &[u8]) {
    let Some((value, claims)) = authorization(data) else {
        return;
    };
    AUTH.with(|(auth, keys)| {
        let v = LocalVerifier::default();
        let first = v.authenticate(auth, keys, Some(&value), None);
        // The second look may come from the cache: the same answer.
        assert_eq!(first, v.authenticate(auth, keys, Some(&value), None));
        match (&first, claims) {
            (Ok(p), None) => {
                assert_eq!(&*p.name, "bot", "a forged credential passed: {value:?}");
                assert!(value.trim_ascii().ends_with(API_KEY));
            }
            (Ok(p), Some(claims)) => {
                let c: serde_json::Value = serde_json::from_slice(claims).expect("claims read");
                assert_eq!(c["sub"].as_str(), Some(&*p.name), "principal differs");
            }
            (Err(_), _) => {}
        }
    });
}

/// The identity provider's JWKS document: keys for allowed algorithms are kept, the rest
/// skipped with a reason, and nothing panics; a key is then only found for its algorithm.
pub fn jwks(data: &[u8]) {
    let allowed = [Algorithm::RS256, Algorithm::ES256, Algorithm::EdDSA];
    let Ok((keys, skipped)) = build(&allowed, &[], Some(data), Some(SECRET)) else {
        return;
    };
    assert!(keys
        .iter()
        .all(|k| allowed.contains(&k.alg) || k.alg == Algorithm::HS256));
    assert_eq!(
        keys.iter().filter(|k| k.alg == Algorithm::HS256).count(),
        1,
        "only the configured secret verifies HS256"
    );
    let set = KeySet { version: 1, keys };
    for k in &set.keys {
        if let Some(kid) = &k.kid {
            assert!(set.knows(kid));
            assert!(set.find(Some(kid), Algorithm::HS256).is_none() || k.alg == Algorithm::HS256);
        }
    }
    assert!(skipped.len() <= data.len());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_signed_form_passes_the_signature_and_the_raw_form_only_the_api_key() {
        let claims = br#"{"sub":"alice","iss":"https://idp","aud":"http://127.0.0.1:8080/mcp","exp":4102444800,"scope":"mcp"}"#;
        let mut signed = b"\x01{\"alg\":\"HS256\"}\n".to_vec();
        signed.extend_from_slice(claims);
        let (value, _) = authorization(&signed).unwrap();
        let ok =
            AUTH.with(|(a, k)| LocalVerifier::default().authenticate(a, k, Some(&value), None));
        assert_eq!(&*ok.unwrap().name, "alice");
        let raw = AUTH.with(|(a, k)| {
            let v = LocalVerifier::default();
            (
                v.authenticate(a, k, Some(b"Bearer the-api-key"), None),
                v.authenticate(a, k, Some(&value[..value.len() - 1]), None),
            )
        });
        assert_eq!(&*raw.0.unwrap().name, "bot");
        assert!(raw.1.is_err());
    }
}
