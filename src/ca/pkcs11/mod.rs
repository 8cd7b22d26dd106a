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

use const_oid::db::rfc5912;
use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::mechanism::Mechanism;
use cryptoki::object::{Attribute, ObjectClass, ObjectHandle};
use cryptoki::session::{Session, UserType};
use cryptoki::slot::Slot;
use der::Encode;
use sha2::{Digest, Sha256, Sha384};

use super::{CaError, SignatureAlgorithm, Signer};

mod keys;
mod uri;

pub(crate) use keys::RsaPublicKey;
use keys::{ecdsa_der, public_key_info};
pub use uri::Pkcs11Uri;

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
                        rfc5912::SECP_256_R_1
                    } else {
                        rfc5912::SECP_384_R_1
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
