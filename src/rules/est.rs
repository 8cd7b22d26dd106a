//! EST (RFC 7030) on an AST handler: where the handler is served (`est.label`, `est.default`)
//! and who may enrol through it — HTTP Basic against a hashed per-handler secret (`est.user`
//! with `est.secret`), an officer over mTLS (`requiredRoRoles`), or the trusted front's
//! identity headers (neither) — and the key-encryption keys a serverkeygen may ask its key to
//! be encrypted under (`est.keks`, a file read through `config`). Also the checks across
//! handlers: labels are unique, one handler at most serves `/.well-known/est/` itself, and an
//! EST handler's token procedure has exactly one certificate (an enrolment certifies one key).

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;
use std::str::FromStr;

use base64::Engine;

use super::handler::{Handler, HandlerSource, RequiredRoles, boolean};
use super::procedure::TokenProcedure;
use crate::config::{ConfigError, Diagnostics, KeyEncryptionKey, read_kek_file};

/// The EST operations; a label may not be one of them (the path would be ambiguous).
pub const EST_OPERATIONS: [&str; 5] = [
    "cacerts",
    "csrattrs",
    "simpleenroll",
    "simplereenroll",
    "serverkeygen",
];

/// A handler's EST service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EstService {
    /// Served at `/.well-known/est/<label>/…`.
    pub label: Option<String>,
    /// Also (or only) served at `/.well-known/est/…` without a label.
    pub default: bool,
    pub auth: EstAuth,
    /// `est.keks`: the pre-shared key-encryption keys a serverkeygen CSR may name with
    /// DecryptKeyIdentifier (read from the file when the rules are built, so a reload re-reads
    /// it); empty when not written.
    pub keks: Vec<KeyEncryptionKey>,
    /// `est.keks` as written.
    pub keks_file: Option<String>,
    /// Where the service is written (line and key of `est.label` or `est.default`).
    pub line: usize,
    pub key: String,
}

/// Who may enrol (simpleenroll, serverkeygen). Re-enrolment is always authenticated by the
/// certificate being renewed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EstAuth {
    /// HTTP Basic: this user name and a password whose hash is `secret`.
    Basic { user: String, secret: SecretHash },
    /// An officer client certificate with the handler's `requiredRoRoles`.
    Officer,
    /// A peer inside `[trust] proxies`, with identity headers (as the form).
    Front,
}

impl EstService {
    /// The paths it is served at.
    pub fn paths(&self) -> Vec<String> {
        let mut paths = Vec::new();
        if self.default {
            paths.push("/.well-known/est/".to_string());
        }
        if let Some(label) = &self.label {
            paths.push(format!("/.well-known/est/{label}/"));
        }
        paths
    }

    /// Who may enrol, in words (`config check`, `config explain`).
    pub fn describe(&self, handler: &Handler) -> String {
        let who = match &self.auth {
            EstAuth::Basic { user, .. } => {
                format!("HTTP Basic as `{user}` with the secret of est.secret")
            }
            EstAuth::Officer => handler.trust_description(),
            EstAuth::Front => {
                "a peer inside [trust] proxies (identity headers from the authenticating front)"
                    .into()
            }
        };
        let keks = match &self.keks_file {
            None => String::new(),
            Some(file) => format!(
                "; serverkeygen encrypts to the TLS client certificate's key or under the key-encryption keys {} (est.keks = {file})",
                self.keks
                    .iter()
                    .map(|k| format!("`{}`", k.id))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        };
        format!(
            "EST at {}: enrol: {who}; re-enrol: the certificate being renewed (mTLS){keks}",
            self.paths().join(" and ")
        )
    }
}

/// A secret hashed with PBKDF2-HMAC-SHA256, written in the PHC string format
/// `$pbkdf2-sha256$i=<iterations>$<salt>$<hash>` (salt and hash in unpadded standard base64).
/// `ast-gateway config hash-secret` writes one.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretHash {
    pub iterations: u32,
    pub salt: Vec<u8>,
    pub hash: Vec<u8>,
}

/// The bounds a hash must respect: enough work to slow guessing, not so much that checking
/// one request ties up a CPU for seconds.
pub const SECRET_MIN_ITERATIONS: u32 = 10_000;
pub const SECRET_MAX_ITERATIONS: u32 = 5_000_000;

impl fmt::Debug for SecretHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "SecretHash(pbkdf2-sha256, i={}, [redacted])",
            self.iterations
        )
    }
}

impl fmt::Display for SecretHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let b64 = base64::engine::general_purpose::STANDARD_NO_PAD;
        write!(
            f,
            "$pbkdf2-sha256$i={}${}${}",
            self.iterations,
            b64.encode(&self.salt),
            b64.encode(&self.hash)
        )
    }
}

impl FromStr for SecretHash {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let bad = |why: &str| {
            format!(
                "{why}; write the output of `ast-gateway config hash-secret` ($pbkdf2-sha256$i=<iterations>$<salt>$<hash>)"
            )
        };
        let parts: Vec<&str> = text.trim().split('$').collect();
        let ["", "pbkdf2-sha256", params, salt, hash] = parts.as_slice() else {
            return Err(bad("not a PBKDF2-SHA256 hash"));
        };
        let iterations: u32 = params
            .strip_prefix("i=")
            .and_then(|i| i.parse().ok())
            .ok_or_else(|| bad("the parameters must be i=<iterations>"))?;
        if !(SECRET_MIN_ITERATIONS..=SECRET_MAX_ITERATIONS).contains(&iterations) {
            return Err(bad(&format!(
                "{iterations} iterations is outside {SECRET_MIN_ITERATIONS}..={SECRET_MAX_ITERATIONS}"
            )));
        }
        let b64 = base64::engine::general_purpose::STANDARD_NO_PAD;
        let salt = b64
            .decode(salt.trim_end_matches('='))
            .map_err(|_| bad("the salt is not base64"))?;
        let hash = b64
            .decode(hash.trim_end_matches('='))
            .map_err(|_| bad("the hash is not base64"))?;
        if salt.len() < 16 || hash.len() != 32 {
            return Err(bad(
                "the salt must be at least 16 bytes and the hash 32 bytes",
            ));
        }
        Ok(SecretHash {
            iterations,
            salt,
            hash,
        })
    }
}

/// A label as RFC 7030 §3.2.2 allows it and a path segment needs no escaping for: 1 to 64 of
/// letters, digits, `-`, `.`, `_`, `~`; not `.`, `..` or an operation name.
fn check_label(label: &str) -> Result<(), String> {
    let fine = !label.is_empty()
        && label.len() <= 64
        && label
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'))
        && label != "."
        && label != "..";
    if !fine {
        return Err(format!(
            "`{label}` is not an EST label; write 1 to 64 letters, digits, `-`, `.`, `_` or `~` (e.g. devices)"
        ));
    }
    if EST_OPERATIONS.contains(&label) {
        return Err(format!(
            "`{label}` is an EST operation and cannot be a label; choose another name"
        ));
    }
    Ok(())
}

/// The handler's EST service, or `None` when it has neither `est.label` nor `est.default =
/// true`. Problems go to `diagnostics`.
pub(super) fn est_service(
    source: &HandlerSource<'_>,
    required_roles: Option<&RequiredRoles>,
    diagnostics: &mut Diagnostics,
) -> Option<EstService> {
    let scope = &source.scope;
    let label = scope.get("est.label").and_then(|v| {
        let text = v.text.trim().to_string();
        check_label(&text)
            .map_err(|m| diagnostics.push(source.error("est.label", m)))
            .ok()
            .map(|()| text)
    });
    let default = match scope.get("est.default").map(boolean) {
        None => false,
        Some(Ok(b)) => b,
        Some(Err(m)) => {
            diagnostics.push(source.error("est.default", m));
            false
        }
    };
    let written = scope.get("est.label").is_some() || default;
    if !written {
        for name in ["est.user", "est.secret", "est.keks"] {
            if scope.get(name).is_some() {
                diagnostics.push(source.error(
                    name,
                    "this handler serves no EST: add est.label = <label> (or est.default = true)"
                        .into(),
                ));
            }
        }
        return None;
    }
    let auth = enrolment_auth(source, required_roles, diagnostics)?;
    let keks_file = scope.get("est.keks").map(|v| v.text.trim().to_string());
    let keks = match &keks_file {
        None => Vec::new(),
        Some(file) => match read_kek_file(source.root, file) {
            Ok((_, keys)) => keys,
            Err(m) => {
                diagnostics.push(source.error("est.keks", m));
                Vec::new()
            }
        },
    };
    let (line, key) = scope.place(if scope.get("est.label").is_some() {
        "est.label"
    } else {
        "est.default"
    });
    Some(EstService {
        label,
        default,
        auth,
        keks,
        keks_file,
        line,
        key,
    })
}

/// Who may enrol through the handler: HTTP Basic (`est.user` with `est.secret`), else its
/// officers (`requiredRoRoles`), else its front. `None` (and a problem reported) when only one
/// of the Basic parameters is written or the secret is not a hash.
fn enrolment_auth(
    source: &HandlerSource<'_>,
    required_roles: Option<&RequiredRoles>,
    diagnostics: &mut Diagnostics,
) -> Option<EstAuth> {
    let user = source.scope.get("est.user");
    let secret = source.scope.get("est.secret");
    Some(match (user, secret) {
        (None, None) if required_roles.is_some() => EstAuth::Officer,
        (None, None) => EstAuth::Front,
        (Some(user), Some(secret)) => {
            if required_roles.is_some() {
                diagnostics.push(source.error(
                    "est.user",
                    "est.user/est.secret (HTTP Basic) and requiredRoRoles (officers) are two ways to enrol; keep one (a handler per way)".into(),
                ));
            }
            let name = user.text.trim();
            if name.is_empty() || name.contains(':') || name.chars().any(char::is_control) {
                diagnostics.push(source.error(
                    "est.user",
                    "the EST user name must be non-empty, without `:` or control characters".into(),
                ));
            }
            let secret = secret
                .text
                .parse::<SecretHash>()
                .map_err(|m| diagnostics.push(source.error("est.secret", m)))
                .ok()?;
            EstAuth::Basic {
                user: name.to_string(),
                secret,
            }
        }
        (Some(_), None) | (None, Some(_)) => {
            let missing = if user.is_none() {
                "est.user"
            } else {
                "est.secret"
            };
            diagnostics.push(source.error(
                missing,
                "HTTP Basic needs both est.user and est.secret (from ast-gateway config hash-secret)"
                    .into(),
            ));
            return None;
        }
    })
}

/// Across handlers: each label once, one default at most, one certificate per token procedure.
pub(super) fn check_services(
    path: &Path,
    handlers: &[Handler],
    procedures: &BTreeMap<String, TokenProcedure>,
    diagnostics: &mut Diagnostics,
) {
    let mut labels: BTreeMap<&str, u32> = BTreeMap::new();
    let mut default: Option<u32> = None;
    for handler in handlers {
        let Some(est) = &handler.est else { continue };
        let error =
            |message: String| ConfigError::at(path, Some(est.line), Some(&est.key), message);
        if let Some(label) = &est.label
            && let Some(first) = labels.insert(label, handler.number)
        {
            diagnostics.push(error(format!(
                "handler.{first} already serves the EST label `{label}`; each label names one handler"
            )));
        }
        if est.default
            && let Some(first) = default.replace(handler.number)
        {
            diagnostics.push(error(format!(
                "handler.{first} already serves /.well-known/est/ (est.default = true); only one handler can"
            )));
        }
        if let Some(procedure) = procedures.get(&handler.token_procedure)
            && procedure.certificates.len() != 1
        {
            diagnostics.push(error(format!(
                "EST certifies one key, but token procedure `{}` of handler.{} has {} certificates; give this handler a token procedure with exactly one",
                procedure.name,
                handler.number,
                procedure.certificates.len()
            )));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_hash_round_trips_and_bounds() {
        let text = "$pbkdf2-sha256$i=100000$AAECAwQFBgcICQoLDA0ODw$AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8";
        let hash: SecretHash = text.parse().unwrap();
        assert_eq!(hash.iterations, 100_000);
        assert_eq!(hash.to_string(), text);
        assert!(!format!("{hash:?}").contains("AAEC"));
        assert!("$pbkdf2-sha256$i=10$AAECAwQFBgcICQoLDA0ODw$AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8".parse::<SecretHash>().is_err());
        assert!(
            "$argon2id$v=19$m=65536,t=3,p=4$c2FsdA$aGFzaA"
                .parse::<SecretHash>()
                .is_err()
        );
        assert!("plain text".parse::<SecretHash>().is_err());
    }

    #[test]
    fn labels() {
        assert!(check_label("devices").is_ok());
        assert!(check_label("a.b_c~d-1").is_ok());
        for bad in ["", ".", "..", "a/b", "a b", "cacerts", "ä"] {
            assert!(check_label(bad).is_err(), "{bad}");
        }
        assert!(check_label(&"x".repeat(65)).is_err());
    }
}
