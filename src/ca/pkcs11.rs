//! A CA key inside a PKCS#11 token (HSM, SoftHSM2), addressed by an RFC 7512 `pkcs11:` URI.
//!
//! URI: `pkcs11:token=<label>;object=<label>[;id=<%xx…>]?module-path=<.so>[&pin-value=<pin>]
//! [&pin-source=env:<VARIABLE>]`; without a PIN in the URI, `$AST_GATEWAY_PKCS11_PIN` is used.
//! The private key never leaves the token: we read the public key object (to build the SPKI
//! and compare it with the CA certificate) and ask the token to sign.
//!
//! `cryptoki::Session` is `Send` but not `Sync`, so the session sits
//! in a `Mutex` (signing is called from blocking threads); `CKM_ECDSA` returns raw `r‖s`,
//! re-encoded here as DER `ECDSA-Sig-Value`; `CKA_EC_POINT` is a DER OCTET STRING around the
//! uncompressed point. A module may be initialised once per process, so contexts are shared
//! per module path.

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use const_oid::ObjectIdentifier;
use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::mechanism::Mechanism;
use cryptoki::object::{Attribute, AttributeType, KeyType, ObjectClass, ObjectHandle};
use cryptoki::session::{Session, UserType};
use cryptoki::slot::Slot;
use cryptoki::types::AuthPin;
use der::asn1::{BitString, Null, OctetString, UintRef};
use der::{Any, Decode, Encode, Sequence};
use sha2::{Digest, Sha256, Sha384};
use spki::{AlgorithmIdentifierOwned, SubjectPublicKeyInfoOwned};

use super::{CaError, SignatureAlgorithm, Signer};

const RSA_ENCRYPTION: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.1");
const EC_PUBLIC_KEY: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.2.1");
const P256: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.3.1.7");
const P384: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.132.0.34");

/// The environment variable read for the PIN when the URI carries none.
pub const PIN_ENV: &str = "AST_GATEWAY_PKCS11_PIN";

/// A parsed `pkcs11:` URI. Debug output hides the PIN.
#[derive(Clone)]
pub struct Pkcs11Uri {
    pub token: Option<String>,
    pub object: Option<String>,
    pub id: Option<Vec<u8>>,
    pub module: PathBuf,
    pin_value: Option<zeroize::Zeroizing<String>>,
    pin_env: Option<String>,
}

impl fmt::Debug for Pkcs11Uri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pkcs11Uri")
            .field("token", &self.token)
            .field("object", &self.object)
            .field("module", &self.module)
            .finish_non_exhaustive()
    }
}

fn percent_decode(s: &str) -> Result<Vec<u8>, String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = s
                .get(i + 1..i + 3)
                .ok_or_else(|| format!("bad percent escape in `{s}`"))?;
            out.push(
                u8::from_str_radix(hex, 16).map_err(|_| format!("bad percent escape in `{s}`"))?,
            );
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    Ok(out)
}

fn text(s: &str) -> Result<String, String> {
    String::from_utf8(percent_decode(s)?).map_err(|_| format!("`{s}` is not UTF-8"))
}

impl Pkcs11Uri {
    /// Parses an RFC 7512 URI (the subset above).
    pub fn parse(uri: &str) -> Result<Self, String> {
        let rest = uri
            .strip_prefix("pkcs11:")
            .ok_or("a PKCS#11 key must be a `pkcs11:` URI")?;
        let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
        let mut parsed = Pkcs11Uri {
            token: None,
            object: None,
            id: None,
            module: PathBuf::new(),
            pin_value: None,
            pin_env: None,
        };
        for part in path.split(';').filter(|p| !p.is_empty()) {
            let (key, value) = part
                .split_once('=')
                .ok_or_else(|| format!("`{part}` is not key=value"))?;
            match key {
                "token" => parsed.token = Some(text(value)?),
                "object" => parsed.object = Some(text(value)?),
                "id" => parsed.id = Some(percent_decode(value)?),
                "type" if value == "private" => {}
                // Other RFC 7512 path attributes narrow the search; we rely on token + object/id.
                "manufacturer"
                | "model"
                | "serial"
                | "library-manufacturer"
                | "library-description"
                | "library-version"
                | "slot-description"
                | "slot-manufacturer"
                | "slot-id" => {}
                other => return Err(format!("unsupported pkcs11 URI attribute `{other}`")),
            }
        }
        for part in query.split('&').filter(|p| !p.is_empty()) {
            let (key, value) = part
                .split_once('=')
                .ok_or_else(|| format!("`{part}` is not key=value"))?;
            match key {
                "module-path" => parsed.module = PathBuf::from(text(value)?),
                "pin-value" => parsed.pin_value = Some(zeroize::Zeroizing::new(text(value)?)),
                "pin-source" => match text(value)?.strip_prefix("env:") {
                    Some(var) => parsed.pin_env = Some(var.to_string()),
                    None => return Err("pin-source must be env:VARIABLE".into()),
                },
                other => return Err(format!("unsupported pkcs11 URI query attribute `{other}`")),
            }
        }
        if parsed.module.as_os_str().is_empty() {
            return Err("the pkcs11 URI needs ?module-path=/path/to/module.so".into());
        }
        if parsed.object.is_none() && parsed.id.is_none() {
            return Err("the pkcs11 URI needs object=<label> or id=<%xx>".into());
        }
        Ok(parsed)
    }

    fn pin(&self) -> Result<AuthPin, String> {
        if let Some(pin) = &self.pin_value {
            return Ok(AuthPin::from(pin.to_string()));
        }
        let var = self.pin_env.as_deref().unwrap_or(PIN_ENV);
        std::env::var(var).map(AuthPin::from).map_err(|_| {
            format!("no PIN: set pin-value in the URI or the environment variable {var}")
        })
    }
}

/// One initialised context per module path: C_Initialize may run once per process.
fn context(module: &Path) -> Result<Arc<Pkcs11>, String> {
    static CONTEXTS: OnceLock<Mutex<HashMap<PathBuf, Arc<Pkcs11>>>> = OnceLock::new();
    let mut map = CONTEXTS
        .get_or_init(|| Mutex::new(HashMap::new()))
        .lock()
        .map_err(|_| "PKCS#11 context lock poisoned")?;
    if let Some(ctx) = map.get(module) {
        return Ok(ctx.clone());
    }
    let ctx = Pkcs11::new(module)
        .map_err(|e| format!("cannot load the PKCS#11 module {}: {e}", module.display()))?;
    ctx.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK))
        .map_err(|e| {
            format!(
                "cannot initialise the PKCS#11 module {}: {e}",
                module.display()
            )
        })?;
    let ctx = Arc::new(ctx);
    map.insert(module.to_path_buf(), ctx.clone());
    Ok(ctx)
}

fn find_slot(ctx: &Pkcs11, token: Option<&str>) -> Result<Slot, String> {
    let slots = ctx
        .get_slots_with_token()
        .map_err(|e| format!("cannot list PKCS#11 slots: {e}"))?;
    for slot in slots {
        let info = ctx
            .get_token_info(slot)
            .map_err(|e| format!("cannot read token info: {e}"))?;
        if token.is_none_or(|t| info.label().trim_end() == t) {
            return Ok(slot);
        }
    }
    Err(format!(
        "no PKCS#11 token labelled `{}`",
        token.unwrap_or("(any)")
    ))
}

/// Key pairs `generate` can make inside a token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pkcs11KeyKind {
    Rsa(u64),
    EcP256,
    EcP384,
}

enum Kind {
    Rsa,
    Ec(SignatureAlgorithm),
}

/// A CA key in a PKCS#11 token.
pub struct Pkcs11Signer {
    label: String,
    uri: Pkcs11Uri,
    /// A small pool of logged-in sessions with the private key's handle (a `Session` is not
    /// `Sync`, P10). `None` after a session broke; it is reopened on next use.
    sessions: Vec<Mutex<Option<(Session, ObjectHandle)>>>,
    next: AtomicUsize,
    kind: Kind,
    spki: Vec<u8>,
    /// Keeps the module initialised while the sessions live.
    _context: Arc<Pkcs11>,
}

impl fmt::Debug for Pkcs11Signer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pkcs11Signer")
            .field("label", &self.label)
            .finish_non_exhaustive()
    }
}

fn key_template(class: ObjectClass, uri: &Pkcs11Uri) -> Vec<Attribute> {
    let mut template = vec![Attribute::Class(class)];
    if let Some(label) = &uri.object {
        template.push(Attribute::Label(label.as_bytes().to_vec()));
    }
    if let Some(id) = &uri.id {
        template.push(Attribute::Id(id.clone()));
    }
    template
}

fn logged_in_session(uri: &Pkcs11Uri) -> Result<(Arc<Pkcs11>, Session), String> {
    let ctx = context(&uri.module)?;
    let slot = find_slot(&ctx, uri.token.as_deref())?;
    let session = ctx
        .open_rw_session(slot)
        .map_err(|e| format!("cannot open a PKCS#11 session: {e}"))?;
    let pin = uri.pin()?;
    match session.login(UserType::User, Some(&pin)) {
        Ok(())
        | Err(cryptoki::error::Error::Pkcs11(cryptoki::error::RvError::UserAlreadyLoggedIn, _)) => {
        }
        Err(e) => return Err(format!("PKCS#11 login failed (check the PIN): {e}")),
    }
    Ok((ctx, session))
}

impl Pkcs11Signer {
    /// Opens the key named by `uri`: logs in, finds the private key and its public key.
    pub fn open(uri_text: &str) -> Result<Self, CaError> {
        let uri = Pkcs11Uri::parse(uri_text).map_err(|m| file_error(uri_text, m))?;
        Self::open_parsed(&uri).map_err(|m| file_error(uri_text, m))
    }

    fn open_parsed(uri: &Pkcs11Uri) -> Result<Self, String> {
        let (ctx, session) = logged_in_session(uri)?;
        let find_one = |class: ObjectClass, what: &str| -> Result<ObjectHandle, String> {
            let found = session
                .find_objects(&key_template(class, uri))
                .map_err(|e| format!("cannot search the token: {e}"))?;
            match found.as_slice() {
                [one] => Ok(*one),
                [] => Err(format!(
                    "no {what} `{}` in the token",
                    uri.object.as_deref().unwrap_or("(by id)")
                )),
                _ => Err(format!("more than one {what} matches; add id= to the URI")),
            }
        };
        let key = find_one(ObjectClass::PRIVATE_KEY, "private key")?;
        let public = find_one(ObjectClass::PUBLIC_KEY, "public key object")?;
        let (kind, spki) = public_key_info(&session, public)?;
        let label = format!(
            "pkcs11:{}/{}",
            uri.token.as_deref().unwrap_or(""),
            uri.object.as_deref().unwrap_or("")
        );
        let pool = std::thread::available_parallelism()
            .map_or(2, |n| n.get())
            .clamp(1, 4);
        let mut sessions = vec![Mutex::new(Some((session, key)))];
        sessions.extend((1..pool).map(|_| Mutex::new(None)));
        Ok(Pkcs11Signer {
            label,
            uri: uri.clone(),
            sessions,
            next: AtomicUsize::new(0),
            kind,
            spki,
            _context: ctx,
        })
    }

    /// A fresh logged-in session and the private key's handle in it.
    fn reopen(&self) -> Result<(Session, ObjectHandle), String> {
        let (_ctx, session) = logged_in_session(&self.uri)?;
        let found = session
            .find_objects(&key_template(ObjectClass::PRIVATE_KEY, &self.uri))
            .map_err(|e| format!("cannot search the token: {e}"))?;
        match found.as_slice() {
            [one] => Ok((session, *one)),
            _ => Err("the private key is no longer in the token".into()),
        }
    }

    fn sign_in(
        &self,
        session: &Session,
        key: ObjectHandle,
        message: &[u8],
    ) -> cryptoki::error::Result<Vec<u8>> {
        match self.kind {
            Kind::Rsa => session.sign(&Mechanism::Sha256RsaPkcs, key, message),
            Kind::Ec(alg) => {
                let digest = match alg {
                    SignatureAlgorithm::EcdsaSha384 => Sha384::digest(message).to_vec(),
                    _ => Sha256::digest(message).to_vec(),
                };
                Ok(ecdsa_der(&session.sign(&Mechanism::Ecdsa, key, &digest)?))
            }
        }
    }

    /// Generates a non-extractable, sensitive key pair inside the token, labelled with the
    /// URI's `object` (setup and tests; the CA certificate is then made with `open`).
    pub fn generate(uri_text: &str, kind: Pkcs11KeyKind) -> Result<Self, CaError> {
        let uri = Pkcs11Uri::parse(uri_text).map_err(|m| file_error(uri_text, m))?;
        let generated = (|| -> Result<(), String> {
            let (_ctx, session) = logged_in_session(&uri)?;
            let label = uri.object.clone().unwrap_or_default().into_bytes();
            let id = uri.id.clone().unwrap_or_else(|| label.clone());
            let common = |private: bool| {
                let mut t = vec![
                    Attribute::Token(true),
                    Attribute::Label(label.clone()),
                    Attribute::Id(id.clone()),
                ];
                if private {
                    t.extend([
                        Attribute::Private(true),
                        Attribute::Sensitive(true),
                        Attribute::Extractable(false),
                        Attribute::Sign(true),
                    ]);
                } else {
                    t.push(Attribute::Verify(true));
                }
                t
            };
            let (mechanism, mut public) = match kind {
                Pkcs11KeyKind::Rsa(bits) => (
                    Mechanism::RsaPkcsKeyPairGen,
                    vec![
                        Attribute::ModulusBits(bits.into()),
                        Attribute::PublicExponent(vec![0x01, 0x00, 0x01]),
                    ],
                ),
                Pkcs11KeyKind::EcP256 | Pkcs11KeyKind::EcP384 => {
                    let curve = if kind == Pkcs11KeyKind::EcP256 {
                        P256
                    } else {
                        P384
                    };
                    (
                        Mechanism::EccKeyPairGen,
                        vec![Attribute::EcParams(
                            curve.to_der().map_err(|e| e.to_string())?,
                        )],
                    )
                }
            };
            public.extend(common(false));
            session
                .generate_key_pair(&mechanism, &public, &common(true))
                .map_err(|e| format!("key generation in the token failed: {e}"))?;
            Ok(())
        })();
        generated.map_err(|m| file_error(uri_text, m))?;
        Self::open(uri_text)
    }
}

fn file_error(uri: &str, message: String) -> CaError {
    // The URI may hold a PIN: name the key by everything before the query.
    let shown = uri.split('?').next().unwrap_or("pkcs11:");
    CaError::File {
        path: shown.to_string(),
        message,
    }
}

#[derive(Sequence)]
struct RsaPublicKey<'a> {
    modulus: UintRef<'a>,
    public_exponent: UintRef<'a>,
}

fn attribute_bytes(
    session: &Session,
    object: ObjectHandle,
    kind: AttributeType,
) -> Result<Vec<u8>, String> {
    let attrs = session
        .get_attributes(object, &[kind])
        .map_err(|e| format!("cannot read {kind:?}: {e}"))?;
    for a in attrs {
        match a {
            Attribute::Modulus(v)
            | Attribute::PublicExponent(v)
            | Attribute::EcParams(v)
            | Attribute::EcPoint(v) => return Ok(v),
            _ => {}
        }
    }
    Err(format!("the public key object has no {kind:?}"))
}

/// Builds the SubjectPublicKeyInfo from the public key object.
fn public_key_info(session: &Session, public: ObjectHandle) -> Result<(Kind, Vec<u8>), String> {
    let attrs = session
        .get_attributes(public, &[AttributeType::KeyType])
        .map_err(|e| format!("cannot read the key type: {e}"))?;
    let key_type = attrs.iter().find_map(|a| {
        if let Attribute::KeyType(k) = a {
            Some(*k)
        } else {
            None
        }
    });
    let enc = |e: der::Error| e.to_string();
    match key_type {
        Some(k) if k == KeyType::RSA => {
            let n = attribute_bytes(session, public, AttributeType::Modulus)?;
            let e = attribute_bytes(session, public, AttributeType::PublicExponent)?;
            let key = RsaPublicKey {
                modulus: UintRef::new(&n).map_err(enc)?,
                public_exponent: UintRef::new(&e).map_err(enc)?,
            };
            let spki = SubjectPublicKeyInfoOwned {
                algorithm: AlgorithmIdentifierOwned {
                    oid: RSA_ENCRYPTION,
                    parameters: Some(Null.into()),
                },
                subject_public_key: BitString::from_bytes(&key.to_der().map_err(enc)?)
                    .map_err(enc)?,
            };
            Ok((Kind::Rsa, spki.to_der().map_err(enc)?))
        }
        Some(k) if k == KeyType::EC => {
            let params = attribute_bytes(session, public, AttributeType::EcParams)?;
            let curve = ObjectIdentifier::from_der(&params)
                .map_err(|_| "EC parameters are not a named curve".to_string())?;
            let algorithm = match curve {
                c if c == P256 => SignatureAlgorithm::EcdsaSha256,
                c if c == P384 => SignatureAlgorithm::EcdsaSha384,
                other => return Err(format!("unsupported curve {other}; use P-256 or P-384")),
            };
            let point_der = attribute_bytes(session, public, AttributeType::EcPoint)?;
            // CKA_EC_POINT is DER OCTET STRING(point); some modules return the bare point.
            let point = OctetString::from_der(&point_der)
                .map(|o| o.as_bytes().to_vec())
                .unwrap_or(point_der);
            let spki = SubjectPublicKeyInfoOwned {
                algorithm: AlgorithmIdentifierOwned {
                    oid: EC_PUBLIC_KEY,
                    parameters: Some(Any::from(&curve)),
                },
                subject_public_key: BitString::from_bytes(&point).map_err(enc)?,
            };
            Ok((Kind::Ec(algorithm), spki.to_der().map_err(enc)?))
        }
        _ => Err("the key is neither RSA nor EC".into()),
    }
}

/// DER INTEGER of an unsigned big-endian value.
fn der_integer(bytes: &[u8], out: &mut Vec<u8>) {
    let start = bytes.iter().position(|b| *b != 0).unwrap_or(bytes.len());
    let mut value = bytes[start..].to_vec();
    if value.first().is_none_or(|b| b & 0x80 != 0) {
        value.insert(0, 0);
    }
    out.push(0x02);
    der_length(value.len(), out);
    out.extend(value);
}

fn der_length(len: usize, out: &mut Vec<u8>) {
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes: Vec<u8> = len
            .to_be_bytes()
            .iter()
            .copied()
            .skip_while(|b| *b == 0)
            .collect();
        out.push(0x80 | bytes.len() as u8);
        out.extend(bytes);
    }
}

/// Raw `r‖s` (CKM_ECDSA) → DER `ECDSA-Sig-Value` (RFC 3279 §2.2.3).
fn ecdsa_der(raw: &[u8]) -> Vec<u8> {
    let (r, s) = raw.split_at(raw.len() / 2);
    let mut body = Vec::with_capacity(raw.len() + 8);
    der_integer(r, &mut body);
    der_integer(s, &mut body);
    let mut out = vec![0x30];
    der_length(body.len(), &mut out);
    out.extend(body);
    out
}

impl Signer for Pkcs11Signer {
    fn algorithm(&self) -> SignatureAlgorithm {
        match self.kind {
            Kind::Rsa => SignatureAlgorithm::RsaPkcs1Sha256,
            Kind::Ec(alg) => alg,
        }
    }

    fn public_key_der(&self) -> &[u8] {
        &self.spki
    }

    /// Signs on one of the pooled sessions. A session that broke (token removed, HSM
    /// restarted, session closed) is reopened and the signature tried once more.
    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, CaError> {
        let fail = |what: String| {
            tracing::error!(key = %self.label, error = %what, "PKCS#11 signing failed");
            CaError::Signing(self.label.clone())
        };
        let index = self.next.fetch_add(1, Ordering::Relaxed) % self.sessions.len();
        let mut slot = self.sessions[index]
            .lock()
            .map_err(|_| fail("session lock poisoned".into()))?;
        for attempt in 0..2 {
            if slot.is_none() {
                *slot = Some(self.reopen().map_err(fail)?);
            }
            let Some((session, key)) = slot.as_ref() else {
                continue;
            };
            match self.sign_in(session, *key, message) {
                Ok(signature) => return Ok(signature),
                Err(e) if attempt == 0 => {
                    tracing::warn!(key = %self.label, error = %e, "PKCS#11 signing failed; reopening the session");
                    *slot = None;
                }
                Err(e) => return Err(fail(e.to_string())),
            }
        }
        Err(fail("no session".into()))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn uris() {
        let uri = Pkcs11Uri::parse(
            "pkcs11:token=My%20CA;object=issuing?module-path=/usr/lib/x.so&pin-value=12%2634",
        )
        .unwrap();
        assert_eq!(uri.token.as_deref(), Some("My CA"));
        assert_eq!(uri.object.as_deref(), Some("issuing"));
        assert_eq!(uri.module, PathBuf::from("/usr/lib/x.so"));
        assert_eq!(uri.pin_value.as_deref().map(String::as_str), Some("12&34"));
        assert!(!format!("{uri:?}").contains("12&34"));
        assert!(Pkcs11Uri::parse("pkcs11:token=a;object=b").is_err());
        assert!(Pkcs11Uri::parse("pkcs11:token=a?module-path=/x.so").is_err());
        assert!(Pkcs11Uri::parse("file:/x").is_err());
        let e = file_error("pkcs11:token=a;object=b?pin-value=secret", "x".into());
        assert!(!e.to_string().contains("secret"));
    }

    #[test]
    fn ecdsa_signature_encoding() {
        let mut raw = vec![0u8; 64];
        raw[0] = 0x80; // r needs a sign byte
        raw[32] = 0x00;
        raw[33] = 0x01; // s has a leading zero to strip
        let der = ecdsa_der(&raw);
        assert_eq!(&der[..4], &[0x30, 0x44, 0x02, 0x21]);
        assert_eq!(der[4], 0x00);
        assert_eq!(der[5], 0x80);
        let s_at = 4 + 0x21;
        assert_eq!(&der[s_at..s_at + 2], &[0x02, 0x1f]);
    }
}
