//! The header and claims of a token, read in one pass of serde_json over the decoded
//! bytes into the few members the server uses — no JSON tree, and strings borrowed
//! from the decoded bytes unless an escape forces a copy.
//!
//! As strict as parsing into a tree with [`crate::wire::parse_strict`]: a segment must
//! be one JSON object with no duplicate member (at the top level, and inside any nested
//! value, which is consumed by the strict parser). A string claim that is not a string
//! reads as absent, as it would from a tree; a time claim that is not a non-negative
//! integer is remembered as such, so the caller can refuse it by name.

use crate::wire::{Strict, StrictVisitor};
use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use std::borrow::Cow;
use std::fmt;

/// The members of a JWS header the server reads.
#[derive(Debug, Default)]
pub(super) struct Header<'a> {
    pub alg: Option<Cow<'a, str>>,
    pub kid: Option<Cow<'a, str>>,
    pub typ: Option<Cow<'a, str>>,
    /// A `crit` member is present (whatever its value).
    pub crit: bool,
}

/// The claims of a verified token that the server reads. `Claims<'static>` owns its
/// strings (the verified-token cache keeps those).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Claims<'a> {
    pub iss: Option<Cow<'a, str>>,
    /// `aud` names the expected audience (a string equal to it, or an array holding it).
    pub audience_ok: bool,
    pub sub: Option<Cow<'a, str>>,
    pub tenant: Option<Cow<'a, str>>,
    pub tool: Option<Cow<'a, str>>,
    pub action: Option<Cow<'a, str>>,
    pub resource: Option<Cow<'a, str>>,
    pub jti: Option<Cow<'a, str>>,
    pub exp: Option<u64>,
    pub iat: Option<u64>,
    pub nbf: Option<u64>,
    /// A time claim (`exp`, `iat`, `nbf`) held something else than a non-negative integer.
    pub bad_time: bool,
}

impl Claims<'_> {
    /// A string claim by name (`iss`, `sub`, `tenant`, `tool`, `action`, `resource`, `jti`).
    pub fn str(&self, name: &str) -> Option<&str> {
        let field = match name {
            "iss" => &self.iss,
            "sub" => &self.sub,
            "tenant" => &self.tenant,
            "tool" => &self.tool,
            "action" => &self.action,
            "resource" => &self.resource,
            "jti" => &self.jti,
            _ => return None,
        };
        field.as_deref()
    }

    /// The same claims, owning their strings.
    pub fn into_owned(self) -> Claims<'static> {
        let own = |c: Option<Cow<'_, str>>| c.map(|c| Cow::Owned(c.into_owned()));
        Claims {
            iss: own(self.iss),
            audience_ok: self.audience_ok,
            sub: own(self.sub),
            tenant: own(self.tenant),
            tool: own(self.tool),
            action: own(self.action),
            resource: own(self.resource),
            jti: own(self.jti),
            exp: self.exp,
            iat: self.iat,
            nbf: self.nbf,
            bad_time: self.bad_time,
        }
    }
}

/// Parses one decoded segment with `visitor`; any error is "not a JSON object".
fn object<'de, V: Visitor<'de>>(bytes: &'de [u8], visitor: V) -> Option<V::Value> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value = de.deserialize_map(visitor).ok()?;
    de.end().ok()?;
    Some(value)
}

pub(super) fn header(bytes: &[u8]) -> Option<Header<'_>> {
    fast::header(bytes).or_else(|| object(bytes, HeaderVisitor))
}

pub(super) fn claims<'de>(bytes: &'de [u8], audience: &str) -> Option<Claims<'de>> {
    fast::claims(bytes, audience).or_else(|| object(bytes, ClaimsVisitor { audience }))
}

/// The common shape, read without serde: an object of the members the server reads,
/// each a string without escapes, a non-negative integer, or (`aud`) an array of such
/// strings, with any JSON whitespace. Anything else — an escape, another member, a
/// duplicate, another kind of value, a syntax error — is `None`, and the strict serde
/// reader above decides instead; so this path accepts nothing that one would not,
/// and reads it the same (tested against it and against the strict tree).
mod fast {
    use super::{Claims, Header};
    use std::borrow::Cow;

    struct Scan<'a> {
        bytes: &'a [u8],
        text: &'a str,
        at: usize,
    }

    impl<'a> Scan<'a> {
        #[inline(always)]
        fn peek(&mut self) -> Option<u8> {
            while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.bytes.get(self.at) {
                self.at += 1;
            }
            self.bytes.get(self.at).copied()
        }

        #[inline(always)]
        fn eat(&mut self, c: u8) -> Option<()> {
            (self.peek()? == c).then(|| self.at += 1)
        }

        /// A string without escapes or control characters.
        #[inline(always)]
        fn string(&mut self) -> Option<&'a str> {
            self.eat(b'"')?;
            let start = self.at;
            let end = start + special(&self.bytes[start..])?;
            if self.bytes[end] != b'"' {
                return None;
            }
            self.at = end + 1;
            self.text.get(start..end)
        }

        /// A non-negative integer that fits in a `u64`, in JSON's canonical spelling.
        #[inline(always)]
        fn uint(&mut self) -> Option<u64> {
            self.peek()?;
            let start = self.at;
            let mut n: u64 = 0;
            while let Some(d @ b'0'..=b'9') = self.bytes.get(self.at) {
                n = n.checked_mul(10)?.checked_add(u64::from(d - b'0'))?;
                self.at += 1;
            }
            let digits = self.at - start;
            let leading_zero = digits > 1 && self.bytes[start] == b'0';
            let more = matches!(self.bytes.get(self.at), Some(b'.' | b'e' | b'E'));
            (digits > 0 && !leading_zero && !more).then_some(n)
        }
    }

    /// The offset of the first `"`, `\\` or control character: eight bytes at a time
    /// (the first flagged byte of a word is exact; later ones may be false, and are
    /// never looked at).
    #[inline(always)]
    pub(super) fn special(bytes: &[u8]) -> Option<usize> {
        const ONES: u64 = 0x0101_0101_0101_0101;
        const HIGH: u64 = 0x8080_8080_8080_8080;
        let zero = |x: u64| x.wrapping_sub(ONES) & !x & HIGH;
        let mut words = bytes.chunks_exact(8);
        let mut at = 0;
        for w in &mut words {
            let w = u64::from_le_bytes(w.try_into().expect("eight bytes"));
            let flagged = zero(w ^ (ONES * 0x22))
                | zero(w ^ (ONES * 0x5c))
                | (w.wrapping_sub(ONES * 0x20) & !w & HIGH);
            if flagged != 0 {
                return Some(at + flagged.trailing_zeros() as usize / 8);
            }
            at += 8;
        }
        let rest = words.remainder();
        rest.iter()
            .position(|&b| b == b'"' || b == b'\\' || b < 0x20)
            .map(|i| at + i)
    }

    /// Calls `member` for each member name, the scanner standing before its value.
    fn members<'a>(
        bytes: &'a [u8],
        mut member: impl FnMut(&'a str, &mut Scan<'a>) -> Option<()>,
    ) -> Option<()> {
        let text = std::str::from_utf8(bytes).ok()?;
        let mut scan = Scan { bytes, text, at: 0 };
        scan.eat(b'{')?;
        if scan.peek()? == b'}' {
            scan.at += 1;
        } else {
            loop {
                let name = scan.string()?;
                scan.eat(b':')?;
                member(name, &mut scan)?;
                match scan.peek()? {
                    b',' => scan.at += 1,
                    b'}' => {
                        scan.at += 1;
                        break;
                    }
                    _ => return None,
                }
            }
        }
        (scan.peek().is_none()).then_some(())
    }

    /// Marks `bit` seen; `None` when it was already (a duplicate).
    fn first(seen: &mut u32, bit: u32) -> Option<()> {
        let fresh = *seen & (1 << bit) == 0;
        *seen |= 1 << bit;
        fresh.then_some(())
    }

    pub(super) fn header(bytes: &[u8]) -> Option<Header<'_>> {
        let mut out = Header::default();
        let mut seen = 0;
        members(bytes, |name, scan| {
            let (bit, slot) = match name {
                "alg" => (0, &mut out.alg),
                "kid" => (1, &mut out.kid),
                "typ" => (2, &mut out.typ),
                _ => return None,
            };
            first(&mut seen, bit)?;
            *slot = Some(Cow::Borrowed(scan.string()?));
            Some(())
        })?;
        Some(out)
    }

    pub(super) fn claims<'a>(bytes: &'a [u8], audience: &str) -> Option<Claims<'a>> {
        let mut out = Claims::default();
        let mut seen = 0;
        members(bytes, |name, scan| {
            let text = |slot: &mut Option<Cow<'a, str>>, scan: &mut Scan<'a>| {
                *slot = Some(Cow::Borrowed(scan.string()?));
                Some(())
            };
            let time = |slot: &mut Option<u64>, scan: &mut Scan<'a>| {
                *slot = Some(scan.uint()?);
                Some(())
            };
            match name {
                "iss" => first(&mut seen, 0).and_then(|()| text(&mut out.iss, scan)),
                "sub" => first(&mut seen, 1).and_then(|()| text(&mut out.sub, scan)),
                "tenant" => first(&mut seen, 2).and_then(|()| text(&mut out.tenant, scan)),
                "tool" => first(&mut seen, 3).and_then(|()| text(&mut out.tool, scan)),
                "action" => first(&mut seen, 4).and_then(|()| text(&mut out.action, scan)),
                "resource" => first(&mut seen, 5).and_then(|()| text(&mut out.resource, scan)),
                "jti" => first(&mut seen, 6).and_then(|()| text(&mut out.jti, scan)),
                "exp" => first(&mut seen, 7).and_then(|()| time(&mut out.exp, scan)),
                "iat" => first(&mut seen, 8).and_then(|()| time(&mut out.iat, scan)),
                "nbf" => first(&mut seen, 9).and_then(|()| time(&mut out.nbf, scan)),
                "aud" => {
                    first(&mut seen, 10)?;
                    if scan.peek()? == b'[' {
                        scan.at += 1;
                        if scan.peek()? == b']' {
                            scan.at += 1;
                            return Some(());
                        }
                        loop {
                            out.audience_ok |= scan.string()? == audience;
                            match scan.peek()? {
                                b',' => scan.at += 1,
                                b']' => {
                                    scan.at += 1;
                                    return Some(());
                                }
                                _ => return None,
                            }
                        }
                    }
                    out.audience_ok = scan.string()? == audience;
                    Some(())
                }
                _ => None,
            }
        })?;
        Some(out)
    }
}

/// A member name, borrowed when it has no escape.
struct Name<'de>(Cow<'de, str>);

impl<'de> de::Deserialize<'de> for Name<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_str(TextVisitor).map(Name)
    }
}

struct TextVisitor;

impl<'de> Visitor<'de> for TextVisitor {
    type Value = Cow<'de, str>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a string")
    }
    fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(Cow::Borrowed(v))
    }
    fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
        Ok(Cow::Owned(v.to_owned()))
    }
    fn visit_string<E>(self, v: String) -> Result<Self::Value, E> {
        Ok(Cow::Owned(v))
    }
}

/// Any JSON value, kept only when it is a string; anything else is consumed strictly.
struct StrOrOther<'de>(Option<Cow<'de, str>>);

impl<'de> de::Deserialize<'de> for StrOrOther<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(StrOrOtherVisitor).map(StrOrOther)
    }
}

struct StrOrOtherVisitor;

/// The scalar arms shared by the visitors below: a non-string scalar is `$other`.
macro_rules! non_string_scalars {
    ($other:expr) => {
        fn visit_bool<E>(self, _: bool) -> Result<Self::Value, E> {
            Ok($other)
        }
        fn visit_i64<E>(self, _: i64) -> Result<Self::Value, E> {
            Ok($other)
        }
        fn visit_f64<E>(self, _: f64) -> Result<Self::Value, E> {
            Ok($other)
        }
        fn visit_unit<E>(self) -> Result<Self::Value, E> {
            Ok($other)
        }
        fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
            StrictVisitor.visit_map(map).map(|_| $other)
        }
    };
}

impl<'de> Visitor<'de> for StrOrOtherVisitor {
    type Value = Option<Cow<'de, str>>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(Some(Cow::Borrowed(v)))
    }
    fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
        Ok(Some(Cow::Owned(v.to_owned())))
    }
    fn visit_u64<E>(self, _: u64) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
        StrictVisitor.visit_seq(seq).map(|_| None)
    }
    non_string_scalars!(None);
}

/// A time claim: `Ok` for a non-negative integer, `Err` for anything else.
struct Time(Result<u64, ()>);

impl<'de> de::Deserialize<'de> for Time {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(TimeVisitor).map(Time)
    }
}

struct TimeVisitor;

impl<'de> Visitor<'de> for TimeVisitor {
    type Value = Result<u64, ()>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_u64<E>(self, v: u64) -> Result<Self::Value, E> {
        Ok(Ok(v))
    }
    fn visit_borrowed_str<E>(self, _: &'de str) -> Result<Self::Value, E> {
        Ok(Err(()))
    }
    fn visit_str<E>(self, _: &str) -> Result<Self::Value, E> {
        Ok(Err(()))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
        StrictVisitor.visit_seq(seq).map(|_| Err(()))
    }
    non_string_scalars!(Err(()));
}

/// `aud`: does it name `expected` (a string equal to it, or an array holding one)?
struct AudienceSeed<'x>(&'x str);

impl<'de> DeserializeSeed<'de> for AudienceSeed<'_> {
    type Value = bool;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<bool, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for AudienceSeed<'_> {
    type Value = bool;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_borrowed_str<E>(self, v: &'de str) -> Result<bool, E> {
        Ok(v == self.0)
    }
    fn visit_str<E>(self, v: &str) -> Result<bool, E> {
        Ok(v == self.0)
    }
    fn visit_u64<E>(self, _: u64) -> Result<bool, E> {
        Ok(false)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<bool, A::Error> {
        let mut found = false;
        while let Some(StrOrOther(item)) = seq.next_element()? {
            found |= item.as_deref() == Some(self.0);
        }
        Ok(found)
    }
    non_string_scalars!(false);
}

/// Member names seen so far: the known ones by bit, the others by name (rare: only
/// tokens with members the server does not read pay for the list).
#[derive(Default)]
struct Seen<'de> {
    known: u32,
    others: Vec<Cow<'de, str>>,
}

impl<'de> Seen<'de> {
    /// `false` when the member was seen before.
    fn known(&mut self, bit: u32) -> bool {
        let fresh = self.known & (1 << bit) == 0;
        self.known |= 1 << bit;
        fresh
    }

    fn other(&mut self, name: Cow<'de, str>) -> bool {
        if self.others.contains(&name) {
            return false;
        }
        self.others.push(name);
        true
    }
}

fn duplicate<E: de::Error>(name: &str) -> E {
    E::custom(format_args!("duplicate member {name:?}"))
}

struct HeaderVisitor;

impl<'de> Visitor<'de> for HeaderVisitor {
    type Value = Header<'de>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON object")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Header<'de>, A::Error> {
        let mut out = Header::default();
        let mut seen = Seen::default();
        while let Some(Name(name)) = map.next_key()? {
            let fresh = match &*name {
                "alg" => {
                    seen.known(0) && {
                        out.alg = map.next_value::<StrOrOther>()?.0;
                        true
                    }
                }
                "kid" => {
                    seen.known(1) && {
                        out.kid = map.next_value::<StrOrOther>()?.0;
                        true
                    }
                }
                "typ" => {
                    seen.known(2) && {
                        out.typ = map.next_value::<StrOrOther>()?.0;
                        true
                    }
                }
                "crit" => {
                    seen.known(3) && {
                        map.next_value::<Strict>()?;
                        out.crit = true;
                        true
                    }
                }
                _ => {
                    map.next_value::<Strict>()?;
                    seen.other(name.clone())
                }
            };
            if !fresh {
                return Err(duplicate(&name));
            }
        }
        Ok(out)
    }
}

struct ClaimsVisitor<'x> {
    audience: &'x str,
}

impl<'de> Visitor<'de> for ClaimsVisitor<'_> {
    type Value = Claims<'de>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON object")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Claims<'de>, A::Error> {
        let mut out = Claims::default();
        let mut seen = Seen::default();
        while let Some(Name(name)) = map.next_key()? {
            let text = |slot: &mut Option<Cow<'de, str>>, map: &mut A| -> Result<(), A::Error> {
                *slot = map.next_value::<StrOrOther>()?.0;
                Ok(())
            };
            let time = |slot: &mut Option<u64>, bad: &mut bool, map: &mut A| {
                match map.next_value::<Time>()?.0 {
                    Ok(t) => *slot = Some(t),
                    Err(()) => *bad = true,
                }
                Ok::<_, A::Error>(())
            };
            let bit = match &*name {
                "iss" => 0,
                "aud" => 1,
                "sub" => 2,
                "tenant" => 3,
                "tool" => 4,
                "action" => 5,
                "resource" => 6,
                "jti" => 7,
                "exp" => 8,
                "iat" => 9,
                "nbf" => 10,
                _ => {
                    map.next_value::<Strict>()?;
                    if !seen.other(name.clone()) {
                        return Err(duplicate(&name));
                    }
                    continue;
                }
            };
            if !seen.known(bit) {
                return Err(duplicate(&name));
            }
            match bit {
                0 => text(&mut out.iss, &mut map)?,
                1 => out.audience_ok = map.next_value_seed(AudienceSeed(self.audience))?,
                2 => text(&mut out.sub, &mut map)?,
                3 => text(&mut out.tenant, &mut map)?,
                4 => text(&mut out.tool, &mut map)?,
                5 => text(&mut out.action, &mut map)?,
                6 => text(&mut out.resource, &mut map)?,
                7 => text(&mut out.jti, &mut map)?,
                8 => time(&mut out.exp, &mut out.bad_time, &mut map)?,
                9 => time(&mut out.iat, &mut out.bad_time, &mut map)?,
                _ => time(&mut out.nbf, &mut out.bad_time, &mut map)?,
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::{Value, json};

    /// What reading the same bytes into a strict tree says the claims are.
    fn from_tree(bytes: &[u8], audience: &str) -> Option<Claims<'static>> {
        let Ok(Value::Object(m)) = crate::wire::parse_strict(bytes) else {
            return None;
        };
        let s = |k: &str| {
            m.get(k)
                .and_then(Value::as_str)
                .map(|s| Cow::Owned(s.to_owned()))
        };
        let mut bad_time = false;
        let mut t = |k: &str| match m.get(k) {
            None => None,
            Some(v) => {
                bad_time |= v.as_u64().is_none();
                v.as_u64()
            }
        };
        let (exp, iat, nbf) = (t("exp"), t("iat"), t("nbf"));
        Some(Claims {
            iss: s("iss"),
            audience_ok: match m.get("aud") {
                Some(Value::String(a)) => a == audience,
                Some(Value::Array(items)) => items.iter().any(|a| a.as_str() == Some(audience)),
                _ => false,
            },
            sub: s("sub"),
            tenant: s("tenant"),
            tool: s("tool"),
            action: s("action"),
            resource: s("resource"),
            jti: s("jti"),
            exp,
            iat,
            nbf,
            bad_time,
        })
    }

    #[test]
    fn duplicates_are_refused_known_or_not_and_nested() {
        for bad in [
            r#"{"sub":"a","sub":"b"}"#,
            r#"{"x":1,"x":2}"#,
            r#"{"x":{"y":1,"y":2}}"#,
            r#"{"aud":[{"y":1,"y":2}]}"#,
            r#"[1]"#,
            r#"{"sub":"a"} x"#,
        ] {
            assert_eq!(claims(bad.as_bytes(), "aud"), None, "{bad}");
        }
        assert_eq!(
            header(br#"{"alg":"HS256","alg":"none"}"#).map(|h| h.alg),
            None
        );
    }

    #[test]
    fn the_common_shape_takes_the_fast_path_and_the_rest_does_not() {
        let plain = br#"{"iss":"i", "aud":["x","aud"], "sub":"alice", "exp":5, "iat":0}"#;
        let c = fast::claims(plain, "aud").expect("the fast path reads it");
        assert!(c.audience_ok && c.exp == Some(5) && c.iat == Some(0));
        assert!(fast::header(br#"{"alg":"HS256","typ":"JWT","kid":"hs"}"#).is_some());
        for other in [
            &br#"{"sub":"a\u0062"}"#[..],
            br#"{"x":1}"#,
            br#"{"exp":1.0}"#,
            br#"{"sub":"a","sub":"a"}"#,
            br#"{"sub":"a",}"#,
        ] {
            assert_eq!(fast::claims(other, "aud"), None);
        }
        assert!(fast::header(br#"{"alg":"HS256","crit":["x"]}"#).is_none());
    }

    #[test]
    fn escapes_are_decoded_and_plain_strings_borrowed() {
        let c = claims(br#"{"sub":"al\u0069ce","tenant":"acme"}"#, "aud").unwrap();
        assert_eq!(c.sub.as_deref(), Some("alice"));
        assert!(matches!(c.sub, Some(Cow::Owned(_))));
        assert!(matches!(c.tenant, Some(Cow::Borrowed("acme"))));
    }

    /// JSON values of the shapes a hostile claims set may take.
    fn value() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<u64>().prop_map(|n| json!(n)),
            any::<i64>().prop_map(|n| json!(n)),
            (-1e3f64..1e3).prop_map(|f| json!(f)),
            "[a-z\"\\\\é]{0,6}".prop_map(Value::String),
            Just(json!("aud")),
        ];
        leaf.prop_recursive(2, 8, 3, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..3).prop_map(Value::Array),
                prop::collection::vec(("[a-z]{1,2}", inner), 0..3)
                    .prop_map(|kv| Value::Object(kv.into_iter().collect())),
            ]
        })
    }

    proptest! {
            /// The borrowed reader agrees with the strict tree on every claims set, with
            /// members the server reads and others, in any order, duplicated or not.
            #[test]
            fn agrees_with_the_strict_tree(
                members in prop::collection::vec(
                    (prop_oneof![
                        Just("iss"), Just("aud"), Just("sub"), Just("tenant"), Just("jti"),
                        Just("exp"), Just("iat"), Just("nbf"), Just("x"), Just("y"),
                    ], value()),
                    0..8,
                )
            ) {
                let body = members
                    .iter()
                    .map(|(k, v)| format!("{}:{v}", json!(k)))
                    .collect::<Vec<_>>()
                    .join(",");
                let text = format!("{{{body}}}");
                prop_assert_eq!(
                    claims(text.as_bytes(), "aud").map(Claims::into_owned),
                    from_tree(text.as_bytes(), "aud"),
                    "{}", text
                );
            }

            /// The eight-at-a-time search finds what a byte-by-byte one finds.
        #[test]
        fn special_finds_the_first_quote_backslash_or_control(
            bytes in prop::collection::vec(prop_oneof![Just(b'"'), Just(b'\\'), Just(0x1f), Just(0x20), Just(0x80), any::<u8>(), Just(b'a')], 0..40)
        ) {
            let naive = bytes.iter().position(|&b| b == b'"' || b == b'\\' || b < 0x20);
            prop_assert_eq!(fast::special(&bytes), naive);
        }

        /// On the common shape — known members, plain strings, integers, spaced any
            /// way, sometimes duplicated or malformed — the fast reader either steps aside
            /// or reads exactly what the serde reader reads, and both agree with the tree.
            #[test]
            fn the_fast_reader_reads_what_the_strict_one_reads(
                members in prop::collection::vec(
                    (
                        prop_oneof![
                            Just("iss"), Just("aud"), Just("sub"), Just("tenant"), Just("tool"),
                            Just("action"), Just("resource"), Just("jti"), Just("exp"), Just("iat"),
                            Just("nbf"),
                        ],
                        prop_oneof![
                            "[a-z:/. é]{0,8}".prop_map(|s| json!(s).to_string()),
                            any::<u64>().prop_map(|n| n.to_string()),
                            Just("\"aud\"".to_owned()),
                            Just("[\"x\", \"aud\"]".to_owned()),
                            Just("[]".to_owned()),
                            Just("007".to_owned()),
                            Just("1.5".to_owned()),
                            Just("-3".to_owned()),
                            Just("\"a\\\"b\"".to_owned()),
                            Just("18446744073709551616".to_owned()),
                        ],
                    ),
                    0..7,
                ),
                space in prop_oneof![Just(""), Just(" "), Just("\n\t"), Just("\r ")],
            ) {
                let body = members
                    .iter()
                    .map(|(k, v)| format!("{space}\"{k}\"{space}:{space}{v}{space}"))
                    .collect::<Vec<_>>()
                    .join(",");
                let text = format!("{space}{{{body}}}{space}");
                let strict = object(text.as_bytes(), ClaimsVisitor { audience: "aud" });
                if let Some(fast) = fast::claims(text.as_bytes(), "aud") {
                    prop_assert_eq!(Some(fast), strict.clone(), "{}", text);
                }
                prop_assert_eq!(
                    claims(text.as_bytes(), "aud").map(Claims::into_owned),
                    from_tree(text.as_bytes(), "aud"),
                    "{}", text
                );
            }
    }
}
