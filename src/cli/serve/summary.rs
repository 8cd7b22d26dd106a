//! The start-up summary `serve` logs after binding: database, CAs (key, notAfter, subject),
//! public URL, trust, and the warnings an operator must not miss (demo CAs, a demo TLS server
//! certificate, CAs near their end, an empty proxy list).

use crate::ca::{Ca, SignatureAlgorithm, is_demo_certificate};
use crate::cli::database_url::redact_database_url;
use crate::config::CaConfig;
use crate::issuance::Gateway;
use crate::store::Durability;
use crate::timestamp::Timestamp;

/// The start-up summary after the listeners: database, CAs, public URL, trust, and the
/// warnings an operator must not miss (demo CAs, CAs near their end, an empty proxy list).
pub(super) fn log_summary(gateway: &Gateway) {
    let settings = gateway.settings();
    tracing::info!("database: {}", redact_database_url(&settings.database_url));
    let mut demo = Vec::new();
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    for ca_config in &settings.cas {
        let Some(ca) = gateway.cas().get(&ca_config.name) else {
            continue;
        };
        let summary = CaSummary::of(ca, ca_config);
        tracing::info!("{summary}");
        if summary.demo {
            demo.push(ca_config.name.as_str());
        }
        let left_days = (summary.not_after - now) / 86_400;
        if summary.not_after <= now {
            tracing::error!(
                "CA `{}` expired on {}: it cannot issue valid certificates",
                ca_config.name,
                Timestamp::from_unix(summary.not_after)
            );
        } else if left_days < 30 {
            tracing::warn!(
                "CA `{}` expires on {} (in {left_days} days)",
                ca_config.name,
                Timestamp::from_unix(summary.not_after)
            );
        }
    }
    if !demo.is_empty() {
        tracing::warn!(
            "DEMO CA in use: {} (subject O = \"{}\", made by `init`). Certificates from it are \
             for evaluation only; bring your own CA (`ast-gateway ca create` / `ca import`) \
             before production",
            demo.join(", "),
            crate::ca::DEMO_ORGANIZATION
        );
    }
    warn_demo_tls(
        settings.server.https.is_some(),
        settings.server.tls_cert.as_deref(),
    );
    tracing::info!("public_url: {}", settings.server.public_url);
    let proxies = &settings.trusted_proxies;
    if proxies.is_empty() {
        tracing::warn!(
            "[trust] proxies is empty: identity headers are believed from no peer, so only \
             handlers with requiredRoRoles (officers over HTTPS) can issue. Put your \
             authenticating reverse proxy's address there."
        );
    } else if proxies.iter().all(|p| p.addr().is_loopback()) {
        tracing::warn!(
            "[trust] proxies lists only loopback addresses: identity headers are believed from this machine only. \
             Put your authenticating reverse proxy's address there."
        );
    } else {
        tracing::info!(
            "trusted proxies: {}",
            proxies
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
}

/// Whether the database replicates synchronously, and what `[database]
/// require_synchronous_replication` makes of it: an error when issuance is refused, a warning
/// when a failover could lose delivered tokens.
pub(super) async fn log_durability(gateway: &Gateway) {
    let required = gateway.settings().database_require_synchronous;
    match gateway.store().durability().await {
        Ok(d) if d.synchronous() || d == Durability::Sqlite => {
            tracing::info!("database durability: {}", d.describe());
        }
        Ok(d) if required => tracing::error!(
            "database durability: {}; [database] require_synchronous_replication is set, so \
             every issuance is refused (503 replication-required) until a synchronous standby \
             is configured and connected",
            d.describe()
        ),
        Ok(d) => tracing::warn!(
            "database durability: {}. Configure a synchronous standby (docs/high-availability.md) \
             or set [database] require_synchronous_replication to refuse issuance without one",
            d.describe()
        ),
        Err(e) => tracing::warn!("database durability: could not be read: {e}"),
    }
}

/// The warning while the HTTPS listener serves the `localhost` certificate `init` wrote from the
/// demo root (or any certificate a demo CA issued).
fn warn_demo_tls(https: bool, tls_cert: Option<&std::path::Path>) {
    let Some(path) = tls_cert.filter(|_| https) else {
        return;
    };
    if std::fs::read(path).is_ok_and(|pem| crate::ca::is_demo_tls_chain(&pem)) {
        tracing::warn!(
            "DEMO TLS server certificate in use: {} was issued by a demo CA (SAN localhost, made \
             by `init`); browsers and fronts will not trust it. Issue your own with `ast-gateway \
             tls issue --dns NAME --ca CA` (or install one from your PKI) before production",
            path.display()
        );
    }
}

/// One CA as the start-up summary shows it.
pub(super) struct CaSummary {
    name: String,
    key: String,
    not_after: i64,
    subject: String,
    demo: bool,
}

impl CaSummary {
    pub(super) fn of(ca: &Ca, config: &CaConfig) -> CaSummary {
        let algorithm = match ca.signer().algorithm() {
            SignatureAlgorithm::RsaPkcs1Sha256 => rsa_bits(ca.certificate_der())
                .map_or_else(|| "RSA".to_string(), |bits| format!("RSA-{bits}")),
            SignatureAlgorithm::EcdsaSha256 => "EC P-256".into(),
            SignatureAlgorithm::EcdsaSha384 => "EC P-384".into(),
            SignatureAlgorithm::Ed25519 => "Ed25519".into(),
        };
        let storage = match &config.pkcs11 {
            Some(_) => "in a PKCS#11 token".to_string(),
            None => format!("key file {}", config.key.display()),
        };
        let tbs = ca.certificate().tbs_certificate();
        CaSummary {
            name: config.name.clone(),
            key: format!("{algorithm}, {storage}"),
            not_after: tbs.validity().not_after.to_unix_duration().as_secs() as i64,
            subject: tbs.subject().to_string(),
            demo: ca.chain().iter().any(|der| is_demo_certificate(der)),
        }
    }
}

impl std::fmt::Display for CaSummary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "CA {}: {}, notAfter {}, subject {}{}",
            self.name,
            self.key,
            Timestamp::from_unix(self.not_after),
            self.subject,
            if self.demo { " (DEMO)" } else { "" }
        )
    }
}

fn rsa_bits(der: &[u8]) -> Option<usize> {
    use der::Decode;
    let certificate = x509_cert::Certificate::from_der(der).ok()?;
    crate::ca::CaPublicKey::of(&certificate)?.rsa_bits()
}
