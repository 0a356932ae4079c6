//! JWS compact tokens (RFC 7515/7519), verified per RFC 8725.
//!
//! - Algorithms: `EdDSA` (Ed25519) and `HS256`. Each key id (`kid`) allows exactly one
//!   algorithm; the header's `alg` must equal it, so `alg: none` and algorithm
//!   confusion (an HS256 token keyed with an EdDSA public key) are refused by
//!   construction. A token without `kid`, or with an unknown one, is refused.
//! - Encoding: base64url without padding, canonical only (no `=`, no stray bits); the
//!   header and claims are JSON objects without duplicate members.
//! - Claims: `typ` header matches the kind of token, `iss` and `aud` (string or array)
//!   match, `exp`/`nbf`/`iat` hold within a bounded clock skew, and a maximum lifetime
//!   (`exp - iat`) when the validation asks for one.
//!
//! No I/O; the clock is a parameter.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ed25519_dalek::{Signer, SigningKey, VerifyingKey};
use hmac::{Hmac, KeyInit, Mac};
use serde_json::Value;
use sha2::Sha256;
use std::fmt;

mod b64;
mod parse;
pub use parse::Claims;

/// A signature algorithm the server accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Alg {
    EdDSA,
    HS256,
}

impl Alg {
    pub fn name(self) -> &'static str {
        match self {
            Alg::EdDSA => "EdDSA",
            Alg::HS256 => "HS256",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "EdDSA" => Some(Alg::EdDSA),
            "HS256" => Some(Alg::HS256),
            _ => None,
        }
    }
}

/// Key material for one `kid`.
#[derive(Clone)]
pub enum KeyMaterial {
    /// Verification only, or with the signing key (for `mint`).
    Ed25519 {
        public: VerifyingKey,
        signing: Option<Box<SigningKey>>,
    },
    Hmac(Vec<u8>),
}

impl fmt::Debug for KeyMaterial {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeyMaterial::Ed25519 { signing, .. } => {
                write!(f, "Ed25519 {{ signing: {} }}", signing.is_some())
            }
            KeyMaterial::Hmac(_) => f.write_str("Hmac(<secret>)"),
        }
    }
}

/// One configured key: its id, the one algorithm it allows, its material.
#[derive(Debug, Clone)]
pub struct Key {
    pub kid: String,
    pub material: KeyMaterial,
    /// HS256: the MAC keyed once (inner and outer pads absorbed), cloned per token.
    keyed: Option<Keyed>,
}

#[derive(Clone)]
struct Keyed(Hmac<Sha256>);

impl fmt::Debug for Keyed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<keyed HMAC>")
    }
}

impl Key {
    pub fn alg(&self) -> Alg {
        match self.material {
            KeyMaterial::Ed25519 { .. } => Alg::EdDSA,
            KeyMaterial::Hmac(_) => Alg::HS256,
        }
    }

    /// An Ed25519 key from its 32-byte seed.
    pub fn ed25519_from_seed(kid: &str, seed: &[u8; 32]) -> Self {
        let signing = SigningKey::from_bytes(seed);
        Key {
            kid: kid.to_owned(),
            material: KeyMaterial::Ed25519 {
                public: signing.verifying_key(),
                signing: Some(Box::new(signing)),
            },
            keyed: None,
        }
    }

    /// An Ed25519 verification key from its 32 public bytes.
    pub fn ed25519_public(kid: &str, public: &[u8; 32]) -> Result<Self, String> {
        let public = VerifyingKey::from_bytes(public)
            .map_err(|e| format!("kid {kid}: invalid Ed25519 public key: {e}"))?;
        Ok(Key {
            kid: kid.to_owned(),
            material: KeyMaterial::Ed25519 {
                public,
                signing: None,
            },
            keyed: None,
        })
    }

    pub fn hmac(kid: &str, secret: Vec<u8>) -> Self {
        let keyed = Hmac::<Sha256>::new_from_slice(&secret).ok().map(Keyed);
        Key {
            kid: kid.to_owned(),
            material: KeyMaterial::Hmac(secret),
            keyed,
        }
    }

    /// The public key bytes (Ed25519), base64url.
    /// Is this one of the development keys shipped in `conformance/targets/dev-keys/`
    /// (public, so trusting them lets anyone mint tokens)? Compared by the SHA-256 of
    /// the Ed25519 public key or the HS256 secret.
    pub fn is_shipped_development_key(&self) -> bool {
        use sha2::Digest;
        const ED25519_PUBLIC: &str =
            "d066045584cbc0ef182b1a7bcda04942c29406abe7a3b2adec2cd31acd8bbc34";
        const HS256_SECRET: &str =
            "57d89820a5d78a785152259f0231abf8ef1e91b2128d6d0a2acbeb83aada31a4";
        let (bytes, shipped): (&[u8], &str) = match &self.material {
            KeyMaterial::Ed25519 { public, .. } => (public.as_bytes(), ED25519_PUBLIC),
            KeyMaterial::Hmac(secret) => (secret, HS256_SECRET),
        };
        let digest = sha2::Sha256::digest(bytes);
        let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
        hex == shipped
    }

    pub fn public_key_b64(&self) -> Option<String> {
        match &self.material {
            KeyMaterial::Ed25519 { public, .. } => Some(URL_SAFE_NO_PAD.encode(public.as_bytes())),
            KeyMaterial::Hmac(_) => None,
        }
    }

    fn verify_signature(&self, signing_input: &[u8], signature: &[u8]) -> bool {
        match &self.material {
            KeyMaterial::Ed25519 { public, .. } => {
                let Ok(bytes) = <[u8; 64]>::try_from(signature) else {
                    return false;
                };
                let sig = ed25519_dalek::Signature::from_bytes(&bytes);
                public.verify_strict(signing_input, &sig).is_ok()
            }
            KeyMaterial::Hmac(_) => {
                let Some(Keyed(keyed)) = &self.keyed else {
                    return false;
                };
                let mut mac = keyed.clone();
                mac.update(signing_input);
                mac.verify_slice(signature).is_ok()
            }
        }
    }

    /// Signs `header` and `claims`; `None` when this key cannot sign.
    pub fn sign(&self, typ: &str, claims: &Value) -> Option<String> {
        let header = serde_json::json!({"alg": self.alg().name(), "typ": typ, "kid": self.kid});
        let input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        );
        let signature = match &self.material {
            KeyMaterial::Ed25519 { signing, .. } => {
                signing.as_ref()?.sign(input.as_bytes()).to_bytes().to_vec()
            }
            KeyMaterial::Hmac(secret) => {
                let mut mac = Hmac::<Sha256>::new_from_slice(secret).ok()?;
                mac.update(input.as_bytes());
                mac.finalize().into_bytes().to_vec()
            }
        };
        Some(format!("{input}.{}", URL_SAFE_NO_PAD.encode(signature)))
    }
}

/// The keys a server trusts.
#[derive(Debug, Clone, Default)]
pub struct KeySet {
    pub keys: Vec<Key>,
}

impl KeySet {
    pub fn get(&self, kid: &str) -> Option<&Key> {
        self.keys.iter().find(|k| k.kid == kid)
    }
}

/// What a token must satisfy besides its signature.
#[derive(Debug, Clone)]
pub struct Validation<'a> {
    /// The `typ` header value: `JWT` for session tokens, `mcp-call+jwt` for call tokens.
    pub typ: &'a str,
    pub issuer: &'a str,
    pub audience: &'a str,
    pub skew_secs: u64,
    /// Upper bound on `exp - iat` (`iat` is always required).
    pub max_lifetime_secs: Option<u64>,
    /// Relaxations used only by mutants: accept `alg: none`, skip the audience.
    pub allow_none_and_any_audience: bool,
    /// Mutant `crit-ignored`: a `crit` header is not looked at.
    pub ignore_crit: bool,
}

/// The longest compact token accepted (session bearer or call token), checked before
/// any segment is decoded. A legitimate token here is well under 1 KiB.
pub const MAX_TOKEN_BYTES: usize = 8 * 1024;

/// Why a token was refused. Goes to logs only; the wire answer is uniform.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum TokenError {
    /// Not three base64url segments of JSON objects.
    Malformed(&'static str),
    /// `alg` missing, not allowed, or not the one its key allows.
    Algorithm(String),
    /// No `kid`, or one not configured.
    UnknownKey,
    BadSignature,
    WrongType,
    WrongIssuer,
    WrongAudience,
    Expired,
    NotYetValid,
    /// `exp - iat` exceeds the bound, or `iat` is missing where a bound applies.
    LifetimeTooLong,
    MissingClaim(&'static str),
}

impl fmt::Display for TokenError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TokenError::Malformed(what) => write!(f, "malformed token: {what}"),
            TokenError::Algorithm(alg) => write!(f, "algorithm not allowed: {alg}"),
            TokenError::UnknownKey => f.write_str("unknown or missing kid"),
            TokenError::BadSignature => f.write_str("signature does not verify"),
            TokenError::WrongType => f.write_str("wrong token type"),
            TokenError::WrongIssuer => f.write_str("wrong issuer"),
            TokenError::WrongAudience => f.write_str("wrong audience"),
            TokenError::Expired => f.write_str("expired"),
            TokenError::NotYetValid => f.write_str("not yet valid"),
            TokenError::LifetimeTooLong => f.write_str("lifetime exceeds the bound"),
            TokenError::MissingClaim(c) => write!(f, "missing claim {c}"),
        }
    }
}

/// The decoded-claims buffer [`verify`] borrows the claims from: on the stack for any
/// ordinary token, on the heap only for a claims segment over 1 KiB (decoded).
pub struct Scratch {
    inline: [u8; 1024],
    heap: Vec<u8>,
}

impl Default for Scratch {
    fn default() -> Self {
        Self {
            inline: [0; 1024],
            heap: Vec::new(),
        }
    }
}

impl Scratch {
    fn decode<'s>(&'s mut self, segment: &str) -> Result<&'s [u8], TokenError> {
        let need = b64::decoded_len(segment.len()).unwrap_or(0);
        let buf: &mut [u8] = if need <= self.inline.len() {
            &mut self.inline
        } else {
            self.heap.resize(need, 0);
            &mut self.heap
        };
        let n = decode_into(segment, buf)?;
        Ok(&buf[..n])
    }
}

fn decode_into(segment: &str, out: &mut [u8]) -> Result<usize, TokenError> {
    if b64::decoded_len(segment.len()).is_some_and(|n| n > out.len()) {
        return Err(TokenError::Malformed("segment longer than allowed"));
    }
    b64::decode(segment.as_bytes(), out)
        .ok_or(TokenError::Malformed("segment is not canonical base64url"))
}

/// The longest header accepted, decoded: a legitimate one is under 100 bytes.
const MAX_HEADER_BYTES: usize = 512;

const NOT_AN_OBJECT: TokenError = TokenError::Malformed("segment is not a JSON object");

/// Verifies `token` against `keys` and `v` at time `now` (seconds since the epoch).
///
/// The hot path of every call: the length is checked first, the header decoded on the
/// stack, the signature verified over the raw bytes before the claims are decoded, and
/// the claims read without building a JSON tree, borrowed from `scratch`.
pub fn verify<'s>(
    keys: &KeySet,
    token: &str,
    v: &Validation<'_>,
    now: u64,
    scratch: &'s mut Scratch,
) -> Result<Claims<'s>, TokenError> {
    // Length first: a huge bogus token costs one comparison, not a decode and a parse.
    if token.len() > MAX_TOKEN_BYTES {
        return Err(TokenError::Malformed(
            "longer than the largest token accepted",
        ));
    }
    let mut parts = token.split('.');
    let (Some(h), Some(c), Some(s), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(TokenError::Malformed("not three segments"));
    };
    let mut header_bytes = [0u8; MAX_HEADER_BYTES];
    let n = decode_into(h, &mut header_bytes)?;
    let header = parse::header(&header_bytes[..n]).ok_or(NOT_AN_OBJECT)?;
    // RFC 7515 §4.1.11: an extension marked critical must be understood, and none is.
    if header.crit && !v.ignore_crit {
        return Err(TokenError::Malformed(
            "critical header extension not understood",
        ));
    }
    let alg = header.alg.as_deref().unwrap_or("");
    let mut signature = [0u8; 96];
    let n = decode_into(s, &mut signature)?;
    let signature = &signature[..n];
    let signing_input = &token.as_bytes()[..h.len() + 1 + c.len()];
    if alg == "none" && v.allow_none_and_any_audience {
        // Mutant only: an unsigned token is taken at its word.
    } else {
        if Alg::parse(alg).is_none() {
            return Err(TokenError::Algorithm(alg.to_owned()));
        }
        let kid = header.kid.as_deref().ok_or(TokenError::UnknownKey)?;
        let key = keys.get(kid).ok_or(TokenError::UnknownKey)?;
        if key.alg().name() != alg {
            return Err(TokenError::Algorithm(alg.to_owned()));
        }
        if !key.verify_signature(signing_input, signature) {
            return Err(TokenError::BadSignature);
        }
    }
    if header.typ.as_deref() != Some(v.typ) {
        return Err(TokenError::WrongType);
    }
    let claims = parse::claims(scratch.decode(c)?, v.audience).ok_or(NOT_AN_OBJECT)?;
    if claims.bad_time {
        return Err(TokenError::Malformed(
            "time claim is not a non-negative integer",
        ));
    }
    if claims.iss.as_deref() != Some(v.issuer) {
        return Err(TokenError::WrongIssuer);
    }
    if !v.allow_none_and_any_audience && !claims.audience_ok {
        return Err(TokenError::WrongAudience);
    }
    let exp = claims.exp.ok_or(TokenError::MissingClaim("exp"))?;
    if now > exp.saturating_add(v.skew_secs) {
        return Err(TokenError::Expired);
    }
    // Every token says when it was issued, and was issued before it expires.
    let iat = claims.iat.ok_or(TokenError::MissingClaim("iat"))?;
    if iat > exp {
        return Err(TokenError::Malformed("issued after it expires"));
    }
    for t in [claims.nbf, Some(iat)].into_iter().flatten() {
        if t > now.saturating_add(v.skew_secs) {
            return Err(TokenError::NotYetValid);
        }
    }
    if let Some(max) = v.max_lifetime_secs
        && exp - iat > max
    {
        return Err(TokenError::LifetimeTooLong);
    }
    Ok(claims)
}

/// Decodes a base64url (no padding) key file's text.
pub fn decode_key_text(text: &str) -> Result<Vec<u8>, String> {
    URL_SAFE_NO_PAD
        .decode(text.trim())
        .map_err(|e| format!("not base64url without padding: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const NOW: u64 = 1_800_000_000;

    /// [`verify`] with claims that outlive its scratch buffer.
    fn check(
        keys: &KeySet,
        token: &str,
        v: &Validation<'_>,
        now: u64,
    ) -> Result<Claims<'static>, TokenError> {
        verify(keys, token, v, now, &mut Scratch::default()).map(Claims::into_owned)
    }

    fn keys() -> KeySet {
        KeySet {
            keys: vec![
                Key::ed25519_from_seed("ed", &[7; 32]),
                Key::hmac("hs", vec![9; 32]),
            ],
        }
    }

    fn validation() -> Validation<'static> {
        Validation {
            typ: "mcp-call+jwt",
            issuer: "iss",
            audience: "aud",
            skew_secs: 30,
            max_lifetime_secs: Some(300),
            allow_none_and_any_audience: false,
            ignore_crit: false,
        }
    }

    fn claims() -> Value {
        json!({"iss": "iss", "aud": "aud", "sub": "alice", "iat": NOW, "exp": NOW + 60})
    }

    fn sign(kid: &str, claims: &Value) -> String {
        keys()
            .get(kid)
            .unwrap()
            .sign("mcp-call+jwt", claims)
            .unwrap()
    }

    #[test]
    fn both_algorithms_round_trip() {
        for kid in ["ed", "hs"] {
            let t = sign(kid, &claims());
            assert_eq!(
                check(&keys(), &t, &validation(), NOW).unwrap().str("sub"),
                Some("alice")
            );
        }
    }

    #[test]
    fn claims_are_enforced() {
        let with = |k: &str, v: Value| {
            let mut c = claims();
            c[k] = v;
            check(&keys(), &sign("ed", &c), &validation(), NOW)
        };
        assert_eq!(with("iss", json!("other")), Err(TokenError::WrongIssuer));
        assert_eq!(with("aud", json!("other")), Err(TokenError::WrongAudience));
        assert!(with("aud", json!(["x", "aud"])).is_ok());
        // Issued a minute ago, expired 31 s / 29 s ago: past the 30 s skew, or within.
        let expired = |ago: u64| {
            let mut c = claims();
            c["iat"] = json!(NOW - 60);
            c["exp"] = json!(NOW - ago);
            check(&keys(), &sign("ed", &c), &validation(), NOW)
        };
        assert_eq!(expired(31), Err(TokenError::Expired));
        assert!(expired(29).is_ok());
        assert_eq!(with("nbf", json!(NOW + 31)), Err(TokenError::NotYetValid));
        assert_eq!(
            with("exp", json!(NOW + 3600)),
            Err(TokenError::LifetimeTooLong)
        );
        assert_eq!(
            with("exp", json!("soon")),
            Err(TokenError::Malformed(
                "time claim is not a non-negative integer"
            ))
        );
    }

    #[test]
    fn alg_none_and_algorithm_confusion_are_refused() {
        let t = sign("ed", &claims());
        let (_, rest) = t.split_once('.').unwrap();
        let (payload, _) = rest.split_once('.').unwrap();
        let none = format!(
            "{}.{payload}.",
            URL_SAFE_NO_PAD.encode(r#"{"alg":"none","typ":"mcp-call+jwt","kid":"ed"}"#)
        );
        assert!(matches!(
            check(&keys(), &none, &validation(), NOW),
            Err(TokenError::Algorithm(_))
        ));
        // HS256 keyed with the Ed25519 public key, presented under the EdDSA kid.
        let public = keys().get("ed").unwrap().public_key_b64().unwrap();
        let forged = Key::hmac("ed", decode_key_text(&public).unwrap())
            .sign("mcp-call+jwt", &claims())
            .unwrap();
        assert!(matches!(
            check(&keys(), &forged, &validation(), NOW),
            Err(TokenError::Algorithm(_))
        ));
        let unknown = Key::hmac("nope", vec![1; 32])
            .sign("mcp-call+jwt", &claims())
            .unwrap();
        assert_eq!(
            check(&keys(), &unknown, &validation(), NOW),
            Err(TokenError::UnknownKey)
        );
    }

    #[test]
    fn padded_or_truncated_encodings_are_refused() {
        let t = sign("hs", &claims());
        assert!(check(&keys(), &format!("{t}="), &validation(), NOW).is_err());
        assert!(check(&keys(), &t[..t.len() - 1], &validation(), NOW).is_err());
        assert!(check(&keys(), &t.replacen('.', "=.", 1), &validation(), NOW).is_err());
    }

    #[test]
    fn an_oversized_token_is_refused_before_any_decoding() {
        // A valid token padded with a huge claim set is refused on its length alone,
        // even though its signature would verify.
        let mut c = claims();
        c["pad"] = json!("x".repeat(MAX_TOKEN_BYTES));
        let t = sign("hs", &c);
        assert_eq!(
            check(&keys(), &t, &validation(), NOW),
            Err(TokenError::Malformed(
                "longer than the largest token accepted"
            ))
        );
        // 400 kB of bogus header: the same answer, without a decode.
        let bogus = format!("{}.e30.sig", "e".repeat(400 * 1024));
        assert_eq!(
            check(&keys(), &bogus, &validation(), NOW),
            Err(TokenError::Malformed(
                "longer than the largest token accepted"
            ))
        );
    }

    #[test]
    fn critical_extensions_and_missing_or_inverted_issue_times_are_refused() {
        // A `crit` header, whatever it lists, is refused: no extension is understood.
        for crit in [json!(["urn:x:policy"]), json!(["b64"]), json!([])] {
            let set = keys();
            let key = set.get("hs").unwrap();
            let header = URL_SAFE_NO_PAD.encode(
                json!({"alg": "HS256", "typ": "mcp-call+jwt", "kid": "hs", "crit": crit})
                    .to_string(),
            );
            let payload = URL_SAFE_NO_PAD.encode(claims().to_string());
            let input = format!("{header}.{payload}");
            let KeyMaterial::Hmac(secret) = &key.material else {
                panic!("an HMAC key")
            };
            let mut mac =
                <hmac::Hmac<sha2::Sha256> as hmac::KeyInit>::new_from_slice(secret).unwrap();
            hmac::Mac::update(&mut mac, input.as_bytes());
            let sig = URL_SAFE_NO_PAD.encode(hmac::Mac::finalize(mac).into_bytes());
            assert_eq!(
                check(&keys(), &format!("{input}.{sig}"), &validation(), NOW),
                Err(TokenError::Malformed(
                    "critical header extension not understood"
                )),
                "crit {crit}"
            );
        }
        let mut no_iat = claims();
        no_iat.as_object_mut().unwrap().remove("iat");
        let unbounded = Validation {
            max_lifetime_secs: None,
            ..validation()
        };
        assert_eq!(
            check(&keys(), &sign("ed", &no_iat), &unbounded, NOW),
            Err(TokenError::MissingClaim("iat"))
        );
        let mut inverted = claims();
        inverted["iat"] = json!(NOW + 10);
        inverted["exp"] = json!(NOW + 5);
        assert_eq!(
            check(&keys(), &sign("ed", &inverted), &unbounded, NOW),
            Err(TokenError::Malformed("issued after it expires"))
        );
        // A ten-year token (or exp = 2^62) is over any bound.
        let mut long = claims();
        long["exp"] = json!(1u64 << 62);
        assert_eq!(
            check(&keys(), &sign("ed", &long), &validation(), NOW),
            Err(TokenError::LifetimeTooLong)
        );
    }

    #[test]
    fn the_shipped_development_keys_are_recognised_and_no_other() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../conformance/targets/dev-keys");
        let read =
            |f: &str| decode_key_text(&std::fs::read_to_string(dir.join(f)).unwrap()).unwrap();
        let seed: [u8; 32] = read("ed25519.key").try_into().unwrap();
        assert!(Key::ed25519_from_seed("dev", &seed).is_shipped_development_key());
        assert!(Key::hmac("dev", read("hs256.secret")).is_shipped_development_key());
        for k in keys().keys {
            assert!(!k.is_shipped_development_key(), "{}", k.kid);
        }
    }
}
