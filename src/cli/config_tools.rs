//! `config check`, `config explain` and `config encrypt`: the configuration tools. `config
//! check` prints the effective handlers and the warnings of `issuance::lints` (what loads but
//! will not do what it says).

use std::net::SocketAddr;
use std::process::ExitCode;

use anyhow::Context;

use super::load_config;
use super::output::{errln, outln};
use crate::config::{self, Root};

/// `config explain`: the handler a request would hit and what it would get.
/// Parses `name: value` as given to `-H`, like curl.
fn parse_header_argument(text: &str) -> anyhow::Result<(String, String)> {
    let (name, value) = text
        .split_once(':')
        .ok_or_else(|| anyhow::anyhow!("`{text}` is not a header; write -H 'name: value'"))?;
    let name = name.trim();
    if name.is_empty()
        || !name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        anyhow::bail!("`{name}` is not a header name");
    }
    Ok((name.to_string(), value.trim().to_string()))
}

pub(super) fn config_explain(
    root: &Root,
    path: &str,
    headers: &[String],
    client_cert: Option<&std::path::Path>,
) -> anyhow::Result<ExitCode> {
    let config = load_config(root)?;
    let pairs = headers
        .iter()
        .map(|h| parse_header_argument(h))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let facts = match client_cert {
        None => None,
        Some(file) => {
            let bytes =
                std::fs::read(file).with_context(|| format!("reading {}", file.display()))?;
            Some(
                crate::policy::CertificateFacts::from_pem_or_der(&bytes)
                    .map_err(anyhow::Error::msg)?,
            )
        }
    };
    let headers = crate::policy::IdentityHeaders::new(pairs);
    let explanation = crate::issuance::explain(&config.rules, path, &headers, facts.as_ref());
    outln!("{explanation}");
    Ok(if explanation.outcome.is_ok() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(2)
    })
}

/// `config encrypt`: a value for a `<param>.encrypted` key, read from standard input.
pub(super) fn config_encrypt(root: &Root) -> anyhow::Result<ExitCode> {
    let key = config::SecretKey::load_or_create(root).map_err(anyhow::Error::msg)?;
    let mut line = zeroize::Zeroizing::new(String::new());
    std::io::stdin()
        .read_line(&mut line)
        .context("reading the value from standard input")?;
    let value = line.trim_end_matches(['\r', '\n']);
    let encrypted = key.encrypt(value).map_err(anyhow::Error::msg)?;
    outln!("{encrypted}");
    errln!(
        "write it as <param>.encrypted = {encrypted}  (key: {})",
        root.secret_key().display()
    );
    Ok(ExitCode::SUCCESS)
}

/// `config hash-secret`: an `est.secret` value, from the secret read on standard input.
pub(super) fn config_hash_secret() -> anyhow::Result<ExitCode> {
    let mut line = zeroize::Zeroizing::new(String::new());
    std::io::stdin()
        .read_line(&mut line)
        .context("reading the secret from standard input")?;
    let secret = line.trim_end_matches(['\r', '\n']);
    let hash = crate::issuance::hash_secret(secret).map_err(anyhow::Error::msg)?;
    outln!("{hash}");
    errln!("write it as handler.<n>.est.secret = {hash}  (with handler.<n>.est.user = <user>)");
    Ok(ExitCode::SUCCESS)
}

/// `config new-kek`: a new key-encryption key in an est.keks file, printed in base64.
pub(super) fn config_new_kek(root: &Root, file: &str, id: &str) -> anyhow::Result<ExitCode> {
    let key = config::add_kek(root, file, id).map_err(anyhow::Error::msg)?;
    outln!("{}", key.as_str());
    errln!(
        "added `{id}` to {file}; give the EST client this key by a channel of its own, and name the file in ast.properties: handler.<n>.est.keks = {file}"
    );
    Ok(ExitCode::SUCCESS)
}

/// `config check`: every problem, or the effective handlers and the warnings.
pub(super) async fn config_check(root: &Root) -> anyhow::Result<ExitCode> {
    let config = match crate::issuance::check_configuration(root) {
        Ok(c) => c,
        Err(errors) => {
            for e in &errors.0 {
                outln!("{e}");
            }
            outln!("{} problem(s) found", errors.0.len());
            return Ok(ExitCode::FAILURE);
        }
    };
    outln!("configuration OK ({})", root.dir().display());
    print_server(&config)?;
    outln!(
        "AST service: {}",
        if config.rules.enabled {
            "enabled"
        } else {
            "disabled (start = false)"
        }
    );
    for h in &config.rules.handlers {
        print_handler(h)?;
    }
    for line in super::db::durability_report(&config.settings).await {
        outln!("{line}");
    }
    let warnings = crate::issuance::lints::configuration_warnings(
        &config,
        time::OffsetDateTime::now_utc().unix_timestamp(),
    );
    if !warnings.is_empty() {
        outln!();
    }
    for w in &warnings {
        outln!("warning: {w}");
    }
    Ok(ExitCode::SUCCESS)
}

/// The public URL and the warnings about it.
fn print_server(config: &crate::rules::Configuration) -> anyhow::Result<()> {
    let server = &config.settings.server;
    outln!(
        "public URL: {} (CRL, OCSP and CA-certificate URLs in certificates)",
        server.public_url
    );
    if server.public_url_derived {
        outln!(
            "warning: [server] public_url is not set; it was derived from the listener. Set it to \
             the URL relying parties use"
        );
    }
    let listeners: Vec<SocketAddr> = server.http.into_iter().chain(server.https).collect();
    for warning in
        config::public_url_warnings(&server.public_url, &listeners, server.public_url_via_front)
    {
        outln!("warning: {warning}");
    }
    Ok(())
}

/// One effective handler: its settings, then one line per format field.
fn print_handler(h: &crate::rules::Handler) -> anyhow::Result<()> {
    outln!();
    outln!(
        "handler.{}: filter \"{}\", format {}, token procedure {}, roles {}",
        h.number,
        h.filter_source,
        h.format,
        h.token_procedure,
        match &h.required_roles {
            None => "- (trusted proxies)".to_string(),
            Some(crate::rules::RequiredRoles::AnyCertificate) =>
                "none (any client certificate)".to_string(),
            Some(crate::rules::RequiredRoles::All(r)) => r.join(","),
        }
    );
    outln!(
        "  PIN {}..{} chars; PKCS#12 {} (offered: {})",
        h.password_policy.min_length,
        h.password_policy.max_length,
        h.pkcs12_profile,
        h.pkcs12_profiles
            .iter()
            .map(|p| p.name())
            .collect::<Vec<_>>()
            .join(", ")
    );
    if let Some(est) = &h.est {
        outln!("  {}", est.describe(h));
        if !h.form {
            outln!("  EST only (no filter): the form at /pgwy/ast does not use this handler");
        }
    }
    let read = h.headers_read();
    outln!(
        "  reads headers: {}{}",
        if read.is_empty() {
            "none".to_string()
        } else {
            read.join(", ")
        },
        if h.default_format {
            ""
        } else {
            " (defaultFormat = off: only its formatFields in ast.properties)"
        }
    );
    for f in &h.fields {
        let source = f
            .source
            .as_ref()
            .map_or("(disabled)".to_string(), |s| s.to_string());
        let modules = f
            .modules
            .iter()
            .map(|m| m.describe())
            .collect::<Vec<_>>()
            .join(" | ");
        let from = std::path::Path::new(&f.origin.file)
            .file_name()
            .map(|n| format!("{}:{}", n.to_string_lossy(), f.origin.line))
            .unwrap_or_default();
        outln!(
            "  {:>3}  {:<48} <- {:<28} {:<40} ({from})",
            f.index,
            f.target.to_string(),
            source,
            modules
        );
    }
    Ok(())
}

#[cfg(test)]
#[path = "config_tools_tests.rs"]
mod tests;
