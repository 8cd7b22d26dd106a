//! Who is calling, and may we believe their identity headers? (SPEC §4)
//!
//! Owns: the trusted-proxy list and the decision per handler. Must not: read identity headers
//! (that is `policy`), know HTTP types. Invariants: `X-Forwarded-For` is never consulted — only
//! the TCP peer address; a `VerifiedClientCertificate` can only be constructed by the TLS
//! acceptor after rustls verified the chain against `client_ca` (its constructor is
//! crate-private and called from `http` alone); an officer `Caller` exists only as the result
//! of `authorize`.

use std::fmt;
use std::net::{IpAddr, SocketAddr};

use ipnet::IpNet;
use sha2::{Digest, Sha256};

use crate::config::RequiredRoles;
use crate::policy::CertificateFacts;

/// A client certificate that rustls verified against `client_ca` during the handshake.
#[derive(Debug, Clone)]
pub struct VerifiedClientCertificate {
    der: Vec<u8>,
    fingerprint: String,
}

impl VerifiedClientCertificate {
    /// Only for the TLS acceptor, after a successful verification.
    #[allow(dead_code)]
    pub(crate) fn from_verified_handshake(der: Vec<u8>) -> Self {
        let fingerprint = hex::encode(Sha256::digest(&der));
        VerifiedClientCertificate { der, fingerprint }
    }
    /// SHA-256 fingerprint of the certificate, lower-case hex.
    pub fn fingerprint(&self) -> &str {
        &self.fingerprint
    }
    /// The certificate, DER.
    pub fn der(&self) -> &[u8] {
        &self.der
    }
}

/// What we know about the connection a request came on.
#[derive(Debug, Clone)]
pub struct Connection {
    pub peer: SocketAddr,
    pub client_certificate: Option<VerifiedClientCertificate>,
}

/// The trusted caller of a request.
#[derive(Debug, Clone)]
pub enum Caller {
    /// A peer inside `[trust] proxies`.
    Proxy(IpAddr),
    /// An officer (or, for `requiredRoRoles = none`, any verified client certificate).
    Officer {
        fingerprint: String,
        facts: CertificateFacts,
    },
    /// The command line on this machine.
    Cli,
}

impl fmt::Display for Caller {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Caller::Proxy(ip) => write!(f, "proxy:{ip}"),
            Caller::Officer { fingerprint, .. } => write!(f, "officer:{fingerprint}"),
            Caller::Cli => f.write_str("cli"),
        }
    }
}

impl Caller {
    /// The caller's certificate facts, for `cert:` sources.
    pub fn certificate_facts(&self) -> Option<&CertificateFacts> {
        match self {
            Caller::Officer { facts, .. } => Some(facts),
            _ => None,
        }
    }
}

/// Why a caller is not trusted. Messages say which rule, for operators.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TrustError {
    #[error("peer {0} is not a trusted proxy ([trust] proxies)")]
    UntrustedPeer(IpAddr),
    #[error(
        "this handler requires an officer client certificate over HTTPS, and none was presented"
    )]
    NoClientCertificate,
    #[error("the client certificate does not hold the required roles: {0}")]
    MissingRole(String),
}

/// The trusted proxies.
#[derive(Debug, Clone)]
pub struct TrustPolicy {
    proxies: Vec<IpNet>,
}

impl TrustPolicy {
    /// A policy trusting exactly these networks.
    pub fn new(proxies: Vec<IpNet>) -> Self {
        TrustPolicy { proxies }
    }

    /// True when `ip` is inside a trusted network (IPv4-mapped IPv6 addresses count as IPv4).
    pub fn is_trusted_proxy(&self, ip: IpAddr) -> bool {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
            v4 => v4,
        };
        self.proxies.iter().any(|net| net.contains(&ip))
    }

    /// Decides whether the request's identity headers may be used on a handler that requires
    /// `required` roles (None: trusted proxies only).
    pub fn authorize(
        &self,
        required: Option<&RequiredRoles>,
        connection: &Connection,
    ) -> Result<Caller, TrustError> {
        match required {
            None => {
                if self.is_trusted_proxy(connection.peer.ip()) {
                    Ok(Caller::Proxy(connection.peer.ip()))
                } else {
                    Err(TrustError::UntrustedPeer(connection.peer.ip()))
                }
            }
            Some(roles) => {
                let Some(_certificate) = &connection.client_certificate else {
                    return Err(TrustError::NoClientCertificate);
                };
                // The officer registry (roles per certificate) is not built yet: fail closed.
                Err(TrustError::MissingRole(match roles {
                    RequiredRoles::AnyCertificate => "none (officer registry unavailable)".into(),
                    RequiredRoles::All(r) => r.join(", "),
                }))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proxies_and_mapped_addresses() {
        let p = TrustPolicy::new(vec![
            "127.0.0.1/32".parse().unwrap(),
            "10.1.0.0/16".parse().unwrap(),
        ]);
        assert!(p.is_trusted_proxy("127.0.0.1".parse().unwrap()));
        assert!(p.is_trusted_proxy("::ffff:10.1.2.3".parse().unwrap()));
        assert!(!p.is_trusted_proxy("10.2.0.1".parse().unwrap()));
        let conn = Connection {
            peer: "192.0.2.1:5000".parse().unwrap(),
            client_certificate: None,
        };
        assert!(matches!(
            p.authorize(None, &conn),
            Err(TrustError::UntrustedPeer(_))
        ));
        let conn = Connection {
            peer: "127.0.0.1:5000".parse().unwrap(),
            client_certificate: None,
        };
        assert!(matches!(p.authorize(None, &conn), Ok(Caller::Proxy(_))));
        assert!(matches!(
            p.authorize(Some(&RequiredRoles::AnyCertificate), &conn),
            Err(TrustError::NoClientCertificate)
        ));
    }
}
