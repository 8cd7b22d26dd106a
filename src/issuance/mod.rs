//! The use cases shared by HTTP and the CLI; the only module that composes the others.
//!
//! Owns: the `Gateway` (configuration, CAs, store, trust), the soft-token pipeline,
//! the one domain error type, `explain` (the pipeline up to the subjects, issuing nothing) and
//! `reload` (validate, then swap the configuration atomically). Must not: know HTTP types (handlers in `http` make one call
//! here and convert the result). Invariants: a certificate is committed to the database before
//! the token that holds it leaves this module; every refusal is audited and issues nothing;
//! CPU-bound work (keygen, signing, PBKDF2) runs on blocking threads, bounded by a semaphore.

mod admission;
mod api;
pub mod bench;
pub mod ca_admin;
mod error;
mod est;
mod explain;
mod init;
pub mod lints;
pub mod metrics;
mod officers;
mod pin_page;
mod recipe;
mod reload;
mod revocation;
mod signed_write;
mod soft_token;
mod tls_server;

use std::collections::BTreeMap;
use std::sync::Arc;

use arc_swap::ArcSwap;

pub use api::{ApiCall, ApiTokenRequest, IdempotencyKey, SignedBody, decode_cursor, encode_cursor};
pub use error::{Code, Internal, IssuanceError, Queue, RateScope, Unavailable};
pub use est::{
    BasicCredentials, DeliveredKey, EstCall, EstIssued, EstOperation, EstRefusal, EstRequest,
    MAX_CSR_BYTES, est_remainder, hash_secret,
};
pub use explain::{
    Explanation, HandlerTrial, MatchedHandler, PlannedCertificate, Refusal, explain, path_remainder,
};
pub use init::{InitWritten, write_default, write_default_for, write_default_with};
pub use officers::{IssuedOfficer, parse_roles};
pub use pin_page::{PinPage, Preview};
pub use recipe::StageTimes;
pub use reload::{ReloadSummary, check_configuration};
pub use revocation::{
    CaState, HistoryImport, IMPORT_BATCH, ImportError, ImportReport, OcspAnswer, ca_states,
};
pub use signed_write::{MAX_SIGNATURE_BASE64, SIGNED_AT_WINDOW_SECS, SignatureError, SignedWrite};
pub use soft_token::{HandlerChoice, SoftToken, SoftTokenRequest, TokenFile, TokenForm};
pub use tls_server::{TLS_SERVER_PROCEDURE, record_tls_server_certificate};

use crate::ca::{Ca, CaError, FileSigner, read_certificate_file};
use crate::config::{ConfigError, ConfigErrors, GatewayConfig};
use crate::identity::{RevokedOfficers, TrustPolicy};
use crate::rules::{Configuration, Rules};
use crate::store::{Store, StoreError};
use crate::token::KeyPool;

/// Seconds since the Unix epoch (0 before it).
pub(crate) fn unix(t: std::time::SystemTime) -> i64 {
    t.duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// The running service's state.
pub struct Gateway {
    /// Settings are fixed at start (a reload reports sections that need a restart).
    settings: GatewayConfig,
    /// Handlers and token procedures; a reload swaps them whole.
    rules: ArcSwap<Rules>,
    cas: BTreeMap<String, Arc<Ca>>,
    store: Store,
    trust: TrustPolicy,
    /// Bounds concurrent CPU-heavy issuance work to the number of cores, with a bounded queue
    /// in front, and the per-caller rate limits.
    admission: admission::Admission,
    /// One CRL build at a time on this node (see `revocation`).
    crl_lock: tokio::sync::Mutex<()>,
    /// Pre-generated keys; its refill threads stop when the gateway is dropped. A reload
    /// resizes it.
    key_pool: KeyPool,
    /// Revoked officer certificates, refused by the HTTPS listener's TLS client verifier.
    revoked_officers: Arc<RevokedOfficers>,
    /// Configured CAs whose own certificate is revoked (they issue nothing), by name.
    revoked_cas: ArcSwap<std::collections::HashMap<String, crate::store::ImportedRevocation>>,
    /// The operator's PIN page templates (`conf/pages/`); a reload swaps them with the rules.
    pages: ArcSwap<crate::config::PageTemplates>,
}

/// How often the revoked officer certificates are re-read from the database.
const OFFICER_REVOCATION_REFRESH: std::time::Duration = std::time::Duration::from_secs(10);

/// Loads every configured CA (certificate, chain, key), reporting every problem at once.
pub fn load_cas(settings: &GatewayConfig) -> Result<BTreeMap<String, Arc<Ca>>, ConfigErrors> {
    let mut errors = Vec::new();
    let mut cas = BTreeMap::new();
    let toml = settings.root.gateway_toml();
    for ca in &settings.cas {
        let result = (|| -> Result<Ca, CaError> {
            let certificate = read_certificate_file(&ca.certificate)?;
            let mut parents = Vec::new();
            let mut next = ca.parent.clone();
            let mut guard = 0;
            while let Some(name) = next {
                guard += 1;
                let parent = settings
                    .cas
                    .iter()
                    .find(|c| c.name == name)
                    .filter(|_| guard < 16)
                    .ok_or_else(|| CaError::UnknownCa(name.clone()))?;
                parents.push(read_certificate_file(&parent.certificate)?);
                next = parent.parent.clone();
            }
            let signer: Arc<dyn crate::ca::Signer> = match &ca.pkcs11 {
                Some(uri) => Arc::new(crate::ca::Pkcs11Signer::open(uri)?),
                None => {
                    let passphrase = ca_key_passphrase(settings, ca)?;
                    Arc::new(FileSigner::from_file_with_passphrase(
                        &ca.key,
                        passphrase.as_deref().map(String::as_str),
                    )?)
                }
            };
            let loaded = Ca::new(&ca.name, certificate, parents, signer)?;
            match &ca.ocsp_delegate {
                Some((cert, key)) => {
                    let delegate = FileSigner::from_file(key)?;
                    loaded.with_ocsp_delegate(read_certificate_file(cert)?, Arc::new(delegate))
                }
                None => Ok(loaded),
            }
        })();
        match result {
            Ok(loaded) => {
                cas.insert(ca.name.clone(), Arc::new(loaded));
            }
            Err(e) => errors.push(ConfigError::at(
                &toml,
                None,
                Some(&format!("ca.{}", ca.name)),
                e.to_string(),
            )),
        }
    }
    if errors.is_empty() {
        Ok(cas)
    } else {
        Err(ConfigErrors(errors))
    }
}

/// The passphrase of an encrypted CA key file: from `key_passphrase_env` or
/// `key_passphrase_encrypted` (decrypted with the root's secret key). Never in messages.
fn ca_key_passphrase(
    settings: &GatewayConfig,
    ca: &crate::config::CaConfig,
) -> Result<Option<zeroize::Zeroizing<String>>, CaError> {
    let fail = |message: String| CaError::File {
        path: ca.key.display().to_string(),
        message,
    };
    if let Some(var) = &ca.key_passphrase_env {
        let value = std::env::var(var).map_err(|_| {
            fail(format!(
                "the environment variable {var} (key_passphrase_env) is not set"
            ))
        })?;
        return Ok(Some(zeroize::Zeroizing::new(value)));
    }
    if let Some(encrypted) = &ca.key_passphrase_encrypted {
        let key = crate::config::SecretKey::load(&settings.root).map_err(fail)?;
        let value = key
            .decrypt(encrypted)
            .map_err(|e| fail(format!("key_passphrase_encrypted: {e}")))?;
        return Ok(Some(value));
    }
    Ok(None)
}

/// Why the gateway could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("{0}")]
    Config(#[from] ConfigErrors),
    #[error("{0}")]
    Store(#[from] StoreError),
    #[error("{0}")]
    SecretKey(String),
}

/// How this root seals the audit trail: the chain key derived from `data/secret.key` (created
/// when missing, like `init` does) and the node's anchor file `data/audit-anchors.log`.
pub fn audit_seal(root: &crate::config::Root) -> Result<crate::store::AuditSeal, StartError> {
    let secret = crate::config::SecretKey::load_or_create(root).map_err(StartError::SecretKey)?;
    let key = secret
        .derive_hmac_key(crate::store::AUDIT_KEY_LABEL)
        .map_err(StartError::SecretKey)?;
    Ok(crate::store::AuditSeal::new(
        Some(key),
        Some(root.audit_anchors()),
    ))
}

impl Gateway {
    /// Loads CAs, opens the database (running migrations) and builds the gateway.
    pub async fn open(config: Configuration) -> Result<Arc<Gateway>, StartError> {
        let cas = load_cas(&config.settings)?;
        let pages = reload::load_pages(&config)?;
        let seal = audit_seal(&config.settings.root)?;
        // The data directory holds the database, keys and the secret key: owner only.
        crate::store::make_private_directory(&config.settings.root.data())?;
        let limits = &config.settings.limits;
        let store = Store::open_tuned(
            &config.settings.database_url,
            crate::store::StoreOptions::new(config.settings.database_max_connections),
            crate::store::WriterOptions {
                queue: limits.write_queue,
                batch: limits.write_batch,
                delay: limits.write_delay,
                retry_after: limits.retry_after,
            },
        )
        .await?
        .with_audit(seal);
        store.require_synchronous_replication(config.settings.database_require_synchronous);
        let gateway = Self::from_parts(config, cas, store);
        gateway.pages.store(Arc::new(pages));
        gateway.adopt_legacy_officers().await?;
        gateway
            .refresh_revoked_officers()
            .await
            .map_err(|e| StartError::Store(StoreError::Corrupt(e.to_string())))?;
        gateway
            .refresh_revoked_cas()
            .await
            .map_err(|e| StartError::Store(StoreError::Corrupt(e.to_string())))?;
        gateway.spawn_officer_revocation_refresher(OFFICER_REVOCATION_REFRESH);
        Ok(gateway)
    }

    /// Officer rows registered before issuers were recorded came from the CA named
    /// `officers` (the only one that issued officer certificates then).
    async fn adopt_legacy_officers(&self) -> Result<(), StoreError> {
        let Some(ca) = self.cas.get(crate::config::OFFICERS_CA_NAME) else {
            return Ok(());
        };
        let issuer = ca.certificate().tbs_certificate().subject().to_string();
        let adopted = self.store.adopt_legacy_officers(&issuer).await?;
        if adopted > 0 {
            tracing::info!(
                adopted,
                issuer,
                "officer registry: recorded the issuer of older officer rows"
            );
        }
        Ok(())
    }

    /// Builds a gateway from loaded parts.
    pub fn from_parts(
        config: Configuration,
        cas: BTreeMap<String, Arc<Ca>>,
        store: Store,
    ) -> Arc<Gateway> {
        let cores = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(2);
        let Configuration { settings, rules } = config;
        let key_pool = KeyPool::start(rules.key_pool_sizes(&settings.key_pool));
        let admission = admission::Admission::new(cores, &settings.limits);
        Arc::new(Gateway {
            key_pool,
            trust: TrustPolicy::new(settings.trusted_proxies.clone()),
            settings,
            rules: ArcSwap::from_pointee(rules),
            cas,
            store,
            admission,
            crl_lock: tokio::sync::Mutex::new(()),
            revoked_officers: RevokedOfficers::new(),
            revoked_cas: ArcSwap::from_pointee(Default::default()),
            pages: ArcSwap::from_pointee(Default::default()),
        })
    }

    /// The revoked officer certificates (for the HTTPS listener's TLS client verifier).
    pub fn revoked_officers(&self) -> Arc<RevokedOfficers> {
        self.revoked_officers.clone()
    }

    /// The key pool.
    pub fn key_pool(&self) -> &KeyPool {
        &self.key_pool
    }

    /// The service settings (fixed at start).
    pub fn settings(&self) -> &GatewayConfig {
        &self.settings
    }

    /// The rules in effect now (a reload may swap them; hold the `Arc` for one request).
    pub fn rules(&self) -> Arc<Rules> {
        self.rules.load_full()
    }

    /// The database.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// A CA by name.
    pub fn ca(&self, name: &str) -> Option<&Arc<Ca>> {
        self.cas.get(name)
    }

    /// All CAs by name.
    pub fn cas(&self) -> &BTreeMap<String, Arc<Ca>> {
        &self.cas
    }

    /// Readiness: the database answers and accepts writes.
    pub async fn ready(&self) -> Result<(), IssuanceError> {
        self.store.ping().await?;
        self.store.writable().await.map_err(IssuanceError::from)
    }
}
