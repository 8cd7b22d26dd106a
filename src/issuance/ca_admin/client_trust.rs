//! After `ca create NEW --replaces OLD` of the officers CA: the HTTPS listener must accept the
//! officer certificates of both, the new ones NEW issues and those OLD issued until they expire
//! or are revoked. Its trust is `[server] client_ca`, so the certificates that file holds (OLD's
//! certificate when none is set) and NEW's are written to one bundle,
//! `data/tls/client-ca.pem`, and `client_ca` is pointed at it.

use std::path::PathBuf;

use anyhow::Context;
use der::{Decode, Encode};
use x509_cert::Certificate;

use toml_edit::DocumentMut;

use super::gateway_toml;
use crate::ca::{pem_certificate, read_certificate_file};
use crate::config::Root;

/// Where the bundle goes, relative to the root.
const BUNDLE: &str = "data/tls/client-ca.pem";

/// What was done for the HTTPS listener's client certificates.
#[derive(Debug)]
pub struct ClientTrust {
    /// The bundle written: the officers CA certificates client certificates may chain to.
    pub bundle: PathBuf,
    /// How many certificates it holds.
    pub certificates: usize,
    /// `client_ca` was set and now names the bundle: the line edited in gateway.toml.
    pub edited_line: Option<usize>,
    /// `client_ca` was not set (the listener asks for no client certificate).
    pub unset: bool,
}

/// Writes the bundle of the certificates `client_ca` trusts (or `old`'s certificate) plus
/// `new_der`, and points `client_ca` at it in `document` (gateway.toml) when it is set.
pub(super) fn trust_both(
    root: &Root,
    config: &crate::rules::Configuration,
    old: &str,
    new_der: &[u8],
    document: &mut DocumentMut,
    text: &str,
) -> anyhow::Result<ClientTrust> {
    let bundle = root.resolve(BUNDLE);
    let client_ca = config.settings.server.client_ca.clone();
    let mut trusted: Vec<Vec<u8>> = match &client_ca {
        Some(path) => {
            let pem = std::fs::read(path)
                .with_context(|| format!("reading [server] client_ca {}", path.display()))?;
            Certificate::load_pem_chain(&pem)
                .map_err(|e| anyhow::anyhow!("[server] client_ca {}: {e}", path.display()))?
                .iter()
                .map(|c| c.to_der())
                .collect::<Result<_, _>>()?
        }
        None => {
            let old = config
                .settings
                .cas
                .iter()
                .find(|c| c.name == old)
                .ok_or_else(|| anyhow::anyhow!("CA `{old}` is not configured"))?;
            vec![read_certificate_file(&old.certificate)?]
        }
    };
    Certificate::from_der(new_der)?;
    if !trusted.iter().any(|der| der == new_der) {
        trusted.push(new_der.to_vec());
    }
    if let Some(dir) = bundle.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let pem: String = trusted.iter().map(|der| pem_certificate(der)).collect();
    std::fs::write(&bundle, pem).with_context(|| format!("writing {}", bundle.display()))?;
    let edited_line = match &client_ca {
        Some(path) if *path != bundle => Some(point_client_ca(document, text)?),
        _ => None,
    };
    Ok(ClientTrust {
        bundle,
        certificates: trusted.len(),
        edited_line,
        unset: client_ca.is_none(),
    })
}

/// Points `[server] client_ca` at the bundle; the line it is on in `text` (gateway.toml as
/// read), for the operator.
fn point_client_ca(document: &mut DocumentMut, text: &str) -> anyhow::Result<usize> {
    if !gateway_toml::point_client_ca(document, BUNDLE) {
        anyhow::bail!(
            "no `client_ca = …` in [server] of gateway.toml; set client_ca = \"{BUNDLE}\" by hand"
        );
    }
    let line = text
        .lines()
        .position(|line| {
            line.trim_start()
                .strip_prefix("client_ca")
                .is_some_and(|rest| rest.trim_start().starts_with('='))
        })
        .map_or(0, |i| i + 1);
    Ok(line)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::point_client_ca;

    #[test]
    fn only_the_client_ca_value_changes() {
        let text =
            "[server]\n# client_ca = \"x\"\n  client_ca = 'data/ca/officers.pem'\nhttp = \"a\"\n";
        let mut document = text.parse().unwrap();
        assert_eq!(point_client_ca(&mut document, text).unwrap(), 3);
        assert_eq!(
            document.to_string(),
            "[server]\n# client_ca = \"x\"\n  client_ca = \"data/tls/client-ca.pem\"\nhttp = \"a\"\n"
        );
        let text = "[server]\n";
        assert!(point_client_ca(&mut text.parse().unwrap(), text).is_err());
    }
}
