//! The small part of JOSE that SMART Backend Services needs: compact JWS
//! with RS384 or ES384, public keys as JWKs. Everything else (`none`, HMAC,
//! other curves and hashes, JWE) is refused by construction.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use ring::signature::{self, KeyPair};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The two algorithms SMART Backend Services names.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Alg {
    RS384,
    ES384,
}

impl Alg {
    pub fn parse(s: &str) -> Option<Alg> {
        match s {
            "RS384" => Some(Alg::RS384),
            "ES384" => Some(Alg::ES384),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Alg::RS384 => "RS384",
            Alg::ES384 => "ES384",
        }
    }

    /// The JWK key type this algorithm needs.
    pub fn kty(self) -> &'static str {
        match self {
            Alg::RS384 => "RSA",
            Alg::ES384 => "EC",
        }
    }
}

/// A public key as a JWK (RFC 7517): RSA (`n`, `e`) or EC P-384 (`x`, `y`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Jwk {
    pub kty: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kid: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alg: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub crv: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub n: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub e: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub x: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub y: Option<String>,
    /// Private parts, if someone pasted a private JWK: refused at load.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub d: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none", rename = "use")]
    pub key_use: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub key_ops: Vec<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct JwkSet {
    pub keys: Vec<Jwk>,
}

fn b64(what: &str, s: &str) -> Result<Vec<u8>, String> {
    URL_SAFE_NO_PAD
        .decode(s.trim_end_matches('='))
        .map_err(|_| format!("{what} is not base64url"))
}

impl Jwk {
    /// Checks a registered key: public, of a type and curve we verify, with
    /// a `kid`, usable for signatures.
    pub fn check(&self) -> Result<(), String> {
        let kid = self.kid.as_deref().unwrap_or("");
        if kid.is_empty() {
            return Err("every key needs a kid (SMART clients name their key by kid)".into());
        }
        if self.d.is_some() {
            return Err(format!(
                "key {kid:?} contains a private part (d): register only public keys"
            ));
        }
        if self.key_use.as_deref().is_some_and(|u| u != "sig") {
            return Err(format!(
                "key {kid:?} has use {:?}; only signature keys are accepted",
                self.key_use
            ));
        }
        if !self.key_ops.is_empty() && !self.key_ops.iter().any(|o| o == "verify") {
            return Err(format!("key {kid:?} has key_ops without verify"));
        }
        if let Some(alg) = &self.alg {
            let a = Alg::parse(alg).ok_or(format!(
                "key {kid:?} has alg {alg:?}; only RS384 and ES384 are accepted"
            ))?;
            if a.kty() != self.kty {
                return Err(format!(
                    "key {kid:?}: alg {alg} does not fit kty {}",
                    self.kty
                ));
            }
        }
        match self.kty.as_str() {
            "RSA" => {
                let n = b64(
                    "n",
                    self.n
                        .as_deref()
                        .ok_or(format!("RSA key {kid:?} has no n"))?,
                )?;
                b64(
                    "e",
                    self.e
                        .as_deref()
                        .ok_or(format!("RSA key {kid:?} has no e"))?,
                )?;
                let bits = n.iter().skip_while(|b| **b == 0).count() * 8;
                if bits < 2048 {
                    return Err(format!("RSA key {kid:?} is shorter than 2048 bits"));
                }
            }
            "EC" => {
                if self.crv.as_deref() != Some("P-384") {
                    return Err(format!("EC key {kid:?} must be on curve P-384 (ES384)"));
                }
                self.ec_point()?;
            }
            other => {
                return Err(format!(
                    "key {kid:?} has kty {other:?}; only RSA and EC are accepted"
                ))
            }
        }
        Ok(())
    }

    fn ec_point(&self) -> Result<Vec<u8>, String> {
        let x = b64("x", self.x.as_deref().ok_or("EC key has no x")?)?;
        let y = b64("y", self.y.as_deref().ok_or("EC key has no y")?)?;
        if x.len() != 48 || y.len() != 48 {
            return Err("EC P-384 coordinates must be 48 bytes each".into());
        }
        let mut point = Vec::with_capacity(97);
        point.push(4);
        point.extend(x);
        point.extend(y);
        Ok(point)
    }

    /// Verifies `signature` over `signed` with this key and algorithm.
    fn verify(&self, alg: Alg, signed: &[u8], signature: &[u8]) -> bool {
        if self.kty != alg.kty() {
            return false;
        }
        match alg {
            Alg::RS384 => {
                let (Some(n), Some(e)) = (&self.n, &self.e) else {
                    return false;
                };
                let (Ok(n), Ok(e)) = (b64("n", n), b64("e", e)) else {
                    return false;
                };
                signature::RsaPublicKeyComponents { n: &n, e: &e }
                    .verify(&signature::RSA_PKCS1_2048_8192_SHA384, signed, signature)
                    .is_ok()
            }
            Alg::ES384 => match self.ec_point() {
                Ok(point) => {
                    signature::UnparsedPublicKey::new(&signature::ECDSA_P384_SHA384_FIXED, point)
                        .verify(signed, signature)
                        .is_ok()
                }
                Err(_) => false,
            },
        }
    }
}

impl JwkSet {
    pub fn parse(text: &str) -> Result<JwkSet, String> {
        let set: JwkSet = serde_json::from_str(text).map_err(|e| format!("not a JWKS: {e}"))?;
        if set.keys.is_empty() {
            return Err("the JWKS has no keys".into());
        }
        let mut kids = std::collections::BTreeSet::new();
        for k in &set.keys {
            k.check()?;
            if !kids.insert(k.kid.clone()) {
                return Err(format!(
                    "kid {:?} appears twice in the JWKS",
                    k.kid.as_deref().unwrap_or("")
                ));
            }
        }
        Ok(set)
    }
}

/// A compact JWS, decoded but not yet trusted.
#[derive(Debug)]
pub struct Jws {
    pub header: Value,
    pub claims: Value,
    signed: Vec<u8>,
    signature: Vec<u8>,
}

impl Jws {
    /// Splits and decodes `header.payload.signature`; the header and claims
    /// must be JSON objects.
    pub fn decode(token: &str) -> Result<Jws, String> {
        let mut parts = token.split('.');
        let (Some(h), Some(p), Some(s), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(
                "the client_assertion is not a compact JWS (three dot-separated parts)".into(),
            );
        };
        let header: Value = serde_json::from_slice(&b64("the JWS header", h)?)
            .map_err(|_| "the JWS header is not JSON".to_owned())?;
        let claims: Value = serde_json::from_slice(&b64("the JWS payload", p)?)
            .map_err(|_| "the JWS payload is not JSON".to_owned())?;
        if !header.is_object() || !claims.is_object() {
            return Err("the JWS header and payload must be JSON objects".into());
        }
        Ok(Jws {
            header,
            claims,
            signed: format!("{h}.{p}").into_bytes(),
            signature: b64("the JWS signature", s)?,
        })
    }

    pub fn header_str(&self, name: &str) -> Option<&str> {
        self.header.get(name).and_then(Value::as_str)
    }

    pub fn claim_str(&self, name: &str) -> Option<&str> {
        self.claims.get(name).and_then(Value::as_str)
    }

    /// Verifies the signature with `key` and the header's algorithm.
    pub fn verify(&self, alg: Alg, key: &Jwk) -> bool {
        key.verify(alg, &self.signed, &self.signature)
    }
}

/// A private key to sign client assertions with (our `iisbulk token`, and
/// tests): PKCS#8, RSA (RS384) or EC P-384 (ES384).
pub struct SigningKey {
    alg: Alg,
    rsa: Option<signature::RsaKeyPair>,
    ec: Option<signature::EcdsaKeyPair>,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SigningKey({})", self.alg.as_str())
    }
}

impl SigningKey {
    /// From PKCS#8 DER or PEM (`-----BEGIN PRIVATE KEY-----`).
    pub fn from_pkcs8(bytes: &[u8]) -> Result<SigningKey, String> {
        let der = match std::str::from_utf8(bytes) {
            Ok(text) if text.contains("-----BEGIN") => pem_body(text)?,
            _ => bytes.to_vec(),
        };
        if let Ok(k) = signature::RsaKeyPair::from_pkcs8(&der) {
            return Ok(SigningKey {
                alg: Alg::RS384,
                rsa: Some(k),
                ec: None,
            });
        }
        let rng = ring::rand::SystemRandom::new();
        signature::EcdsaKeyPair::from_pkcs8(&signature::ECDSA_P384_SHA384_FIXED_SIGNING, &der, &rng)
            .map(|k| SigningKey { alg: Alg::ES384, rsa: None, ec: Some(k) })
            .map_err(|_| {
                "not a PKCS#8 RSA (2048 bits or more) or EC P-384 private key (make one with `openssl genpkey`, see the README)".to_owned()
            })
    }

    /// A fresh EC P-384 key, as PKCS#8 DER (for tests and `iisbulk` help).
    pub fn generate_es384() -> Result<Vec<u8>, String> {
        let rng = ring::rand::SystemRandom::new();
        signature::EcdsaKeyPair::generate_pkcs8(&signature::ECDSA_P384_SHA384_FIXED_SIGNING, &rng)
            .map(|d| d.as_ref().to_vec())
            .map_err(|_| "could not generate a key".to_owned())
    }

    pub fn alg(&self) -> Alg {
        self.alg
    }

    /// The RFC 7638 thumbprint of the public key: a natural `kid`.
    pub fn thumbprint(&self) -> String {
        let jwk = self.public_jwk("");
        let canonical = match self.alg {
            Alg::RS384 => serde_json::json!({"e": jwk.e, "kty": "RSA", "n": jwk.n}),
            Alg::ES384 => serde_json::json!({"crv": "P-384", "kty": "EC", "x": jwk.x, "y": jwk.y}),
        };
        let digest = ring::digest::digest(&ring::digest::SHA256, canonical.to_string().as_bytes());
        URL_SAFE_NO_PAD.encode(digest.as_ref())
    }

    /// The public key as a JWK with this `kid`.
    pub fn public_jwk(&self, kid: &str) -> Jwk {
        let mut jwk = Jwk {
            kty: self.alg.kty().into(),
            kid: Some(kid.into()),
            alg: Some(self.alg.as_str().into()),
            crv: None,
            n: None,
            e: None,
            x: None,
            y: None,
            d: None,
            key_use: Some("sig".into()),
            key_ops: Vec::new(),
        };
        if let Some(k) = &self.rsa {
            let c: signature::RsaPublicKeyComponents<Vec<u8>> = k.public().into();
            jwk.n = Some(URL_SAFE_NO_PAD.encode(&c.n));
            jwk.e = Some(URL_SAFE_NO_PAD.encode(&c.e));
        }
        if let Some(k) = &self.ec {
            let point = k.public_key().as_ref();
            jwk.crv = Some("P-384".into());
            jwk.x = point.get(1..49).map(|x| URL_SAFE_NO_PAD.encode(x));
            jwk.y = point.get(49..97).map(|y| URL_SAFE_NO_PAD.encode(y));
        }
        jwk
    }

    /// A compact JWS of `claims` with this `kid` (and any extra header members).
    pub fn sign(&self, kid: &str, extra_header: &Value, claims: &Value) -> Result<String, String> {
        let mut header = serde_json::json!({"alg": self.alg.as_str(), "typ": "JWT", "kid": kid});
        if let (Some(h), Some(extra)) = (header.as_object_mut(), extra_header.as_object()) {
            for (k, v) in extra {
                h.insert(k.clone(), v.clone());
            }
        }
        let signed = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        );
        let rng = ring::rand::SystemRandom::new();
        let sig = if let Some(k) = &self.rsa {
            let mut sig = vec![0; k.public().modulus_len()];
            k.sign(
                &signature::RSA_PKCS1_SHA384,
                &rng,
                signed.as_bytes(),
                &mut sig,
            )
            .map_err(|_| "signing failed".to_owned())?;
            sig
        } else if let Some(k) = &self.ec {
            k.sign(&rng, signed.as_bytes())
                .map_err(|_| "signing failed".to_owned())?
                .as_ref()
                .to_vec()
        } else {
            return Err("no key".into());
        };
        Ok(format!("{signed}.{}", URL_SAFE_NO_PAD.encode(sig)))
    }
}

fn pem_body(text: &str) -> Result<Vec<u8>, String> {
    if text.contains("BEGIN EC PRIVATE KEY") || text.contains("BEGIN RSA PRIVATE KEY") {
        return Err("the key is in a legacy format; convert it to PKCS#8: openssl pkcs8 -topk8 -nocrypt -in old.pem -out key.pem".into());
    }
    if text.contains("ENCRYPTED") {
        return Err("the key is encrypted; give an unencrypted PKCS#8 key".into());
    }
    let body: String = text
        .lines()
        .skip_while(|l| !l.starts_with("-----BEGIN PRIVATE KEY-----"))
        .skip(1)
        .take_while(|l| !l.starts_with("-----END"))
        .collect();
    base64::engine::general_purpose::STANDARD
        .decode(body.trim())
        .map_err(|_| "the PEM body is not base64".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn es384_signs_and_verifies_and_tampering_fails() {
        let key = SigningKey::from_pkcs8(&SigningKey::generate_es384().unwrap()).unwrap();
        let jwk = key.public_jwk("k1");
        jwk.check().unwrap();
        let token = key.sign("k1", &json!({}), &json!({"iss": "c"})).unwrap();
        let jws = Jws::decode(&token).unwrap();
        assert!(jws.verify(Alg::ES384, &jwk));
        assert!(!jws.verify(Alg::RS384, &jwk), "alg must fit the key type");
        let mut parts: Vec<&str> = token.split('.').collect();
        let forged = URL_SAFE_NO_PAD.encode(json!({"iss": "d"}).to_string());
        parts[1] = &forged;
        let tampered = Jws::decode(&parts.join(".")).unwrap();
        assert!(!tampered.verify(Alg::ES384, &jwk));
        let other = SigningKey::from_pkcs8(&SigningKey::generate_es384().unwrap()).unwrap();
        assert!(!jws.verify(Alg::ES384, &other.public_jwk("k1")));
    }

    #[test]
    fn bad_keys_are_refused_with_a_reason() {
        let key = SigningKey::from_pkcs8(&SigningKey::generate_es384().unwrap()).unwrap();
        let good = key.public_jwk("k1");
        let mut no_kid = good.clone();
        no_kid.kid = None;
        assert!(no_kid.check().unwrap_err().contains("kid"));
        let mut private = good.clone();
        private.d = Some("AAAA".into());
        assert!(private.check().unwrap_err().contains("private"));
        let mut p256 = good.clone();
        p256.crv = Some("P-256".into());
        assert!(p256.check().unwrap_err().contains("P-384"));
        let mut hs = good.clone();
        hs.alg = Some("HS256".into());
        assert!(hs.check().unwrap_err().contains("RS384"));
        let twice = JwkSet {
            keys: vec![good.clone(), good],
        };
        assert!(JwkSet::parse(&serde_json::to_string(&twice).unwrap())
            .unwrap_err()
            .contains("twice"));
        assert!(JwkSet::parse("{\"keys\":[]}")
            .unwrap_err()
            .contains("no keys"));
    }

    #[test]
    fn malformed_tokens_are_refused() {
        assert!(Jws::decode("x.y.z").is_err());
        assert!(Jws::decode("a.b").is_err());
        assert!(Jws::decode("a.b.c.d").is_err());
        let h = URL_SAFE_NO_PAD.encode("[1]");
        assert!(Jws::decode(&format!("{h}.{h}.")).is_err());
    }
}
