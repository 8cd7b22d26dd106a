//! Reloading the configuration (SIGHUP): `ast.properties`, the formats, `api.properties`, the
//! token procedures of `gateway.toml` and the PIN page templates (`conf/pages/`) are re-read,
//! validated as `config check` does, and swapped in atomically for new requests; the key pool is
//! resized to the new `[key_pool]` and token procedures. A
//! configuration with any problem is refused and the running one keeps serving.

use std::sync::Arc;

use super::Gateway;
use crate::config::{
    ConfigError, ConfigErrors, GatewayConfig, PageTemplates, Root, load_page_templates,
};
use crate::rules::{self, Configuration};

/// What a successful reload changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReloadSummary {
    /// Handlers now in effect.
    pub handlers: usize,
    /// gateway.toml sections that changed on disk but only take effect on restart.
    pub restart_needed: Vec<&'static str>,
    /// `[trust] header_encoding` now in effect (a reload applies it).
    pub header_encoding: crate::policy::HeaderEncoding,
}

impl Gateway {
    /// Re-reads and validates the configuration, then swaps it in; requests already running
    /// finish with the configuration they started with. On any problem nothing changes, every
    /// problem is logged (one line each, as `config check` prints them) and returned.
    pub fn reload(&self) -> Result<ReloadSummary, ConfigErrors> {
        let result = self.reload_inner();
        match &result {
            Ok(summary) => {
                tracing::info!(
                    target: "config",
                    handlers = summary.handlers,
                    header_encoding = %summary.header_encoding,
                    "configuration reloaded (ast.properties, formats, token procedures, [trust] header_encoding, PIN pages, key pool sizes)"
                );
                if !summary.restart_needed.is_empty() {
                    tracing::warn!(
                        target: "config",
                        "gateway.toml sections changed that take effect only after a restart: {}",
                        summary.restart_needed.join(", ")
                    );
                }
            }
            Err(errors) => {
                for e in &errors.0 {
                    tracing::error!(target: "config", "{e}");
                }
                tracing::error!(
                    target: "config",
                    "reload refused: {} problem(s); still serving the previous configuration",
                    errors.0.len()
                );
            }
        }
        result
    }

    fn reload_inner(&self) -> Result<ReloadSummary, ConfigErrors> {
        let fresh = rules::load(&self.settings.root)?;
        let pages = load_pages(&fresh)?;
        let toml = self.settings.root.gateway_toml();
        let mut errors = Vec::new();
        for procedure in fresh.rules.procedures.values() {
            for certificate in &procedure.certificates {
                if !self.cas.contains_key(&certificate.ca) {
                    errors.push(ConfigError::at(
                        &toml,
                        None,
                        Some(&format!("token_procedure.{}.certificate.{}", procedure.name, certificate.purpose)),
                        format!(
                            "CA `{}` is not loaded by the running service; a new CA takes effect only after a restart, use one of: {}",
                            certificate.ca,
                            self.cas.keys().cloned().collect::<Vec<_>>().join(", ")
                        ),
                    ));
                }
            }
        }
        if !errors.is_empty() {
            return Err(ConfigErrors(errors));
        }
        let restart_needed = restart_needed(&self.settings, &fresh.settings);
        let handlers = fresh.rules.handlers.len();
        let header_encoding = fresh.rules.header_encoding;
        let pool_sizes = fresh.rules.key_pool_sizes(&fresh.settings.key_pool);
        self.rules.store(Arc::new(fresh.rules));
        self.pages.store(Arc::new(pages));
        self.key_pool.resize(pool_sizes);
        Ok(ReloadSummary {
            handlers,
            restart_needed,
            header_encoding,
        })
    }
}

/// The gateway.toml sections whose settings differ: they take effect only after a restart.
/// `[trust] header_encoding` is not among them: it travels with the rules and a reload applies
/// it (`Rules::header_encoding`); `[trust] proxies` needs a restart.
fn restart_needed(old: &GatewayConfig, new: &GatewayConfig) -> Vec<&'static str> {
    [
        ("[server]", old.server != new.server),
        (
            "[trust] proxies",
            old.trusted_proxies != new.trusted_proxies,
        ),
        (
            "[database]",
            (
                &old.database_url,
                old.database_max_connections,
                old.database_require_synchronous,
            ) != (
                &new.database_url,
                new.database_max_connections,
                new.database_require_synchronous,
            ),
        ),
        ("[pkcs12]", old.pkcs12_iterations != new.pkcs12_iterations),
        ("[limits]", old.limits != new.limits),
        ("[crl]", old.crl != new.crl),
        ("[ocsp]", old.ocsp != new.ocsp),
        ("[api]", old.api != new.api),
        ("[[ca]]", old.cas != new.cas),
    ]
    .into_iter()
    .filter_map(|(section, differs)| differs.then_some(section))
    .collect()
}

/// Everything `serve` would load, without opening the database: gateway.toml, ast.properties,
/// the formats and every CA (certificate, chain, key). Every problem at once, sorted by file and
/// line; what `config check` and a reload report.
pub fn check_configuration(root: &Root) -> Result<Configuration, ConfigErrors> {
    let mut errors = Vec::new();
    let loaded = rules::load(root)
        .map_err(|mut e| errors.append(&mut e.0))
        .ok();
    // CAs are checked even when ast.properties has problems, so one run shows everything.
    let settings = match &loaded {
        Some(c) => Some(c.settings.clone()),
        None => crate::config::load_gateway(root).ok(),
    };
    if let Some(settings) = settings
        && let Err(e) = super::load_cas(&settings)
    {
        // load_cas knows the CA, not the line: point at the CA's `name = "…"` line.
        let text = std::fs::read_to_string(root.gateway_toml()).unwrap_or_default();
        for mut error in e.0 {
            if let Some(name) = error.key.as_deref().and_then(|k| k.strip_prefix("ca.")) {
                let quoted = format!("\"{name}\"");
                error.line = error.line.or_else(|| {
                    text.lines()
                        .position(|l| l.trim_start().starts_with("name") && l.contains(&quoted))
                        .map(|i| i + 1)
                });
            }
            errors.push(error);
        }
    }
    if let Some(config) = &loaded {
        errors.extend(officer_listener_errors(root, config));
        if let Err(mut e) = load_pages(config) {
            errors.append(&mut e.0);
        }
    }
    match loaded {
        Some(config) if errors.is_empty() => Ok(config),
        _ => {
            errors.sort_by(|a, b| (&a.file, a.line).cmp(&(&b.file, b.line)));
            errors.dedup();
            Err(ConfigErrors(errors))
        }
    }
}

/// A handler with `requiredRoRoles` serves only callers with a verified client certificate,
/// which only the HTTPS listener with `client_ca` asks for: without both, it refuses every
/// request. One error per such handler, at its `requiredRoRoles` line.
fn officer_listener_errors(root: &Root, config: &Configuration) -> Vec<ConfigError> {
    let server = &config.settings.server;
    let missing = match (server.https.is_some(), server.client_ca.is_some()) {
        (true, true) => return Vec::new(),
        (false, false) => "no HTTPS listener ([server] https) and no client_ca",
        (false, true) => "no HTTPS listener ([server] https)",
        (true, false) => {
            "no [server] client_ca, so the HTTPS listener asks for no client certificate"
        }
    };
    let path = root.ast_properties();
    let text = std::fs::read_to_string(&path).unwrap_or_default();
    config
        .rules
        .handlers
        .iter()
        .filter(|h| h.required_roles.is_some())
        .map(|h| {
            let key = format!("handler.{}.requiredRoRoles", h.number);
            // The handler's own line, else the `default.` one it inherits.
            let line = [key.as_str(), "default.requiredRoRoles"]
                .iter()
                .find_map(|k| {
                    text.lines()
                        .position(|l| {
                            l.trim_start()
                                .strip_prefix(k)
                                .is_some_and(|rest| rest.trim_start().starts_with(['=', ':']))
                        })
                        .map(|i| i + 1)
                });
            ConfigError::at(
                &path,
                line,
                Some(&key),
                format!(
                    "handler.{} requires officer client certificates (requiredRoRoles), but \
                     gateway.toml has {missing}: it would refuse every request. Set [server] \
                     https, tls_cert, tls_key and client_ca (see docs/configuration.md), or \
                     remove requiredRoRoles",
                    h.number
                ),
            )
        })
        .collect()
}

/// The PIN page templates of `conf/pages/`, checked against the handlers: a
/// `handler.<n>.html` needs an enabled `handler.<n>`.
pub(crate) fn load_pages(config: &Configuration) -> Result<PageTemplates, ConfigErrors> {
    let pages = load_page_templates(config.root())?;
    let errors: Vec<ConfigError> = pages
        .handlers
        .iter()
        .filter(|(n, _)| !config.rules.handlers.iter().any(|h| h.number == **n))
        .map(|(n, t)| {
            ConfigError::at(
                t.source.as_deref().unwrap_or(std::path::Path::new("conf/pages")),
                None,
                None,
                format!(
                    "there is no enabled handler.{n} in ast.properties for this page (handlers: {})",
                    config
                        .rules
                        .handlers
                        .iter()
                        .map(|h| h.number.to_string())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            )
        })
        .collect();
    if errors.is_empty() {
        Ok(pages)
    } else {
        Err(ConfigErrors(errors))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every `[trust]` key either applies on reload (header_encoding, carried by the rules) or
    /// is named as needing a restart (proxies).
    #[test]
    fn every_trust_key_applies_or_warns() {
        let dir = tempfile::tempdir().unwrap();
        let root = Root::new(dir.path());
        super::super::write_default(&root).unwrap();
        let before = rules::load(&root).unwrap();
        let text = std::fs::read_to_string(root.gateway_toml()).unwrap();
        let edit = |from: &str, to: &str| {
            let changed = text.replace(from, to);
            assert_ne!(changed, text, "{from}");
            std::fs::write(root.gateway_toml(), changed).unwrap();
            rules::load(&root).unwrap()
        };
        let encoding = edit(
            "header_encoding = \"utf-8-or-latin-1\"",
            "header_encoding = \"base64url\"",
        );
        assert!(restart_needed(&before.settings, &encoding.settings).is_empty());
        assert_eq!(
            encoding.rules.header_encoding,
            crate::policy::HeaderEncoding::Base64Url
        );
        let proxies = edit("\"127.0.0.1/32\", \"::1/128\"", "\"127.0.0.1/32\"");
        assert_eq!(
            restart_needed(&before.settings, &proxies.settings),
            ["[trust] proxies"]
        );
    }
}
