//! Reloading the configuration (SIGHUP): `ast.properties`, the formats and the token procedures
//! of `gateway.toml` are re-read, validated as `config check` does, and swapped in atomically for
//! new requests. A configuration with any problem is refused and the running one keeps serving.

use super::Gateway;
use crate::config::{self, Config, ConfigError, ConfigErrors};

/// What a successful reload changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReloadSummary {
    /// Handlers now in effect.
    pub handlers: usize,
    /// gateway.toml sections that changed on disk but only take effect on restart.
    pub restart_needed: Vec<&'static str>,
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
                    "configuration reloaded (ast.properties, formats, token procedures)"
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
        let current = self.config();
        let fresh = config::load(&current.root)?;
        let toml = current.root.gateway_toml();
        let mut errors = Vec::new();
        for procedure in fresh.gateway.token_procedures.values() {
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
        let (old, new) = (&current.gateway, &fresh.gateway);
        let mut restart_needed = Vec::new();
        let differs =
            |a: &dyn std::fmt::Debug, b: &dyn std::fmt::Debug| format!("{a:?}") != format!("{b:?}");
        if differs(&old.server, &new.server) {
            restart_needed.push("[server]");
        }
        if differs(&old.trusted_proxies, &new.trusted_proxies) {
            restart_needed.push("[trust]");
        }
        if old.database_url != new.database_url
            || old.database_max_connections != new.database_max_connections
        {
            restart_needed.push("[database]");
        }
        if old.pkcs12_iterations != new.pkcs12_iterations {
            restart_needed.push("[pkcs12]");
        }
        if differs(&old.limits, &new.limits) {
            restart_needed.push("[limits]");
        }
        if differs(&old.cas, &new.cas) {
            restart_needed.push("[[ca]]");
        }
        let mut gateway = current.gateway.clone();
        gateway.token_procedures = fresh.gateway.token_procedures;
        let handlers = fresh.ast.handlers.len();
        self.config.store(std::sync::Arc::new(Config {
            root: current.root.clone(),
            gateway,
            ast: fresh.ast,
        }));
        Ok(ReloadSummary {
            handlers,
            restart_needed,
        })
    }
}

/// Everything `serve` would load, without opening the database: gateway.toml, ast.properties,
/// the formats and every CA (certificate, chain, key). Every problem at once, sorted by file and
/// line; what `config check` and a reload report.
pub fn check_configuration(root: &crate::config::Root) -> Result<Config, ConfigErrors> {
    let mut errors = Vec::new();
    let loaded = config::load(root)
        .map_err(|mut e| errors.append(&mut e.0))
        .ok();
    // CAs are checked even when ast.properties has problems, so one run shows everything.
    let gateway = match &loaded {
        Some(c) => Some(c.gateway.clone()),
        None => config::load_gateway(root).ok(),
    };
    if let Some(gateway) = gateway {
        let probe = Config {
            root: root.clone(),
            gateway,
            ast: config::AstConfig::default(),
        };
        if let Err(e) = super::load_cas(&probe) {
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
