//! `pkcs11:` URIs (RFC 7512): token, object, id, module path and PIN source.

use std::fmt;
use std::path::PathBuf;

use cryptoki::types::AuthPin;

/// The environment variable read for the PIN when the URI carries none.
pub const PIN_ENV: &str = "AST_GATEWAY_PKCS11_PIN";

/// A parsed `pkcs11:` URI. Debug output hides the PIN.
#[derive(Clone)]
pub struct Pkcs11Uri {
    pub token: Option<String>,
    pub object: Option<String>,
    pub id: Option<Vec<u8>>,
    pub module: PathBuf,
    pub(super) pin_value: Option<zeroize::Zeroizing<String>>,
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

    pub(super) fn pin(&self) -> Result<AuthPin, String> {
        if let Some(pin) = &self.pin_value {
            return Ok(AuthPin::from(pin.to_string()));
        }
        let var = self.pin_env.as_deref().unwrap_or(PIN_ENV);
        std::env::var(var).map(AuthPin::from).map_err(|_| {
            format!("no PIN: set pin-value in the URI or the environment variable {var}")
        })
    }
}
