//! Who is calling, and may we believe their identity headers?
//!
//! Owns: the trusted-proxy list, the identity of officer certificates and the decision per
//! handler. Must not: read identity headers (that is `policy`), know HTTP types. Invariants:
//! `X-Forwarded-For` is never consulted — only the TCP peer address; a
//! `VerifiedClientCertificate` can only be constructed by the TLS acceptor after rustls
//! verified the chain against `client_ca` (its constructor is crate-private and called from
//! `http` alone); an officer is identified by issuer and serial, never by a hash of the DER
//! (see `officer`); an officer `Caller` exists only as the result of `authorize`, and only for
//! a registered, unrevoked officer.

mod officer;

use std::fmt;
use std::net::{IpAddr, SocketAddr};

use ipnet::IpNet;
use sha2::{Digest, Sha256};

pub use officer::{CertificateId, RevokedOfficers};

use crate::policy::CertificateFacts;
use crate::rules::RequiredRoles;

/// A client certificate that rustls verified against `client_ca` during the handshake.
#[derive(Debug, Clone)]
pub struct VerifiedClientCertificate {
    der: Vec<u8>,
    fingerprint: String,
    id: Option<CertificateId>,
    facts: CertificateFacts,
}

impl VerifiedClientCertificate {
    /// Only for the TLS acceptor, after a successful verification.
    pub(crate) fn from_verified_handshake(der: Vec<u8>) -> Self {
        let fingerprint = hex::encode(Sha256::digest(&der));
        // Parsed once, with x509-cert: the registry's identity and the facts formats read.
        let parsed = <x509_cert::Certificate as der::Decode>::from_der(&der).ok();
        let id = parsed.as_ref().map(CertificateId::of);
        // A certificate rustls accepted always parses; if it did not, it has no facts.
        let facts = parsed
            .as_ref()
            .map(CertificateFacts::of)
            .unwrap_or_default();
        VerifiedClientCertificate {
            der,
            fingerprint,
            id,
            facts,
        }
    }
    /// SHA-256 fingerprint of this encoding of the certificate, lower-case hex. For logs only:
    /// it is not an identity (an ECDSA signature can be re-encoded, see `officer`).
    pub fn fingerprint(&self) -> &str {
        &self.fingerprint
    }
    /// Issuer and serial: how the officer registry knows the certificate. `None` only for a
    /// certificate that x509-cert cannot parse (it is then nobody).
    pub fn id(&self) -> Option<&CertificateId> {
        self.id.as_ref()
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

/// Proof that a `Caller::Officer` came out of `TrustPolicy::authorize`: its field is private
/// to this module, so no other code can construct an officer identity.
#[derive(Debug, Clone)]
pub struct Authorized(());

/// The trusted caller of a request.
#[derive(Debug, Clone)]
pub enum Caller {
    /// A peer inside `[trust] proxies`.
    Proxy(IpAddr),
    /// A registered, unrevoked officer, known by the serial of its certificate (issued by the
    /// officers CA) and its registered name. Only `TrustPolicy::authorize` can build this
    /// variant (`proof` cannot be made elsewhere).
    Officer {
        serial: String,
        name: String,
        facts: CertificateFacts,
        proof: Authorized,
    },
    /// An EST client the issuance layer authenticated: a device that proved its handler's HTTP
    /// Basic secret (`<user>@handler.<n>`), or the holder of a certificate this service issued,
    /// renewing it over mTLS (`certificate:<serial>`).
    Device(String),
    /// The command line on this machine (an operator with access to the root).
    Cli,
    /// The service itself (background work such as CRL refresh).
    Service,
}

impl fmt::Display for Caller {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Caller::Proxy(ip) => write!(f, "proxy:{ip}"),
            Caller::Officer { serial, .. } => write!(f, "officer:{serial}"),
            Caller::Device(id) => write!(f, "device:{id}"),
            Caller::Cli => f.write_str("cli"),
            Caller::Service => f.write_str("system"),
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
    #[error("the client certificate (officer serial {0}) has been revoked")]
    Revoked(String),
    #[error(
        "the client certificate ({0}) is not a registered officer; officers are issued and registered with `ast-gateway officer issue`"
    )]
    Unregistered(String),
}

impl TrustError {
    /// Which rule refused the caller, for the audit trail.
    pub fn rule(&self) -> &'static str {
        match self {
            TrustError::UntrustedPeer(_) => "trust.proxies",
            TrustError::NoClientCertificate => "requiredRoRoles: client certificate required",
            TrustError::MissingRole(_) => "requiredRoRoles: roles",
            TrustError::Revoked(_) => "officer revoked",
            TrustError::Unregistered(_) => "requiredRoRoles: registered officer",
        }
    }
}

/// What the officer registry says about a client certificate, looked up by issuer and serial
/// per request by the caller of `authorize`, so revocations apply to the next request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OfficerStanding {
    pub serial: String,
    pub name: String,
    pub roles: Vec<String>,
    pub revoked: bool,
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
    /// `required` roles (None: trusted proxies only). `officer` is the registry entry of the
    /// connection's verified client certificate (by issuer and serial), if it is registered.
    /// Any `requiredRoRoles`, `none` included, admits registered, unrevoked officers only:
    /// `none` means "whatever their roles", never "any certificate the CA signed".
    pub fn authorize(
        &self,
        required: Option<&RequiredRoles>,
        connection: &Connection,
        officer: Option<&OfficerStanding>,
    ) -> Result<Caller, TrustError> {
        let Some(roles) = required else {
            // Only the TCP peer counts; X-Forwarded-For is never read.
            let ip = connection.peer.ip();
            return if self.is_trusted_proxy(ip) {
                Ok(Caller::Proxy(ip))
            } else {
                Err(TrustError::UntrustedPeer(ip))
            };
        };
        let Some(certificate) = &connection.client_certificate else {
            return Err(TrustError::NoClientCertificate);
        };
        let Some(officer) = officer else {
            return Err(TrustError::Unregistered(match certificate.id() {
                Some(id) => id.to_string(),
                None => "unreadable".into(),
            }));
        };
        if officer.revoked {
            return Err(TrustError::Revoked(officer.serial.clone()));
        }
        if let RequiredRoles::All(required) = roles {
            let missing: Vec<&str> = required
                .iter()
                .filter(|r| !officer.roles.contains(r))
                .map(String::as_str)
                .collect();
            if !missing.is_empty() {
                return Err(TrustError::MissingRole(missing.join(", ")));
            }
        }
        Ok(Caller::Officer {
            serial: officer.serial.clone(),
            name: officer.name.clone(),
            facts: certificate.facts.clone(),
            proof: Authorized(()),
        })
    }
}

/// The network a peer address stands for, as a fixed-size key: an IPv4 address, or an IPv6
/// address cut to its /64 (one host is handed a whole /64, so per-address budgets would let it
/// mint fresh ones). Used for per-peer rate limits and the per-peer connection share.
pub fn peer_network(ip: IpAddr) -> [u8; 16] {
    match ip {
        IpAddr::V4(v4) => v4.to_ipv6_mapped().octets(),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => v4.to_ipv6_mapped().octets(),
            None => {
                let mut key = v6.octets();
                key[8..].fill(0);
                key
            }
        },
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
            p.authorize(None, &conn, None),
            Err(TrustError::UntrustedPeer(_))
        ));
        let conn = Connection {
            peer: "127.0.0.1:5000".parse().unwrap(),
            client_certificate: None,
        };
        assert!(matches!(
            p.authorize(None, &conn, None),
            Ok(Caller::Proxy(_))
        ));
        assert!(matches!(
            p.authorize(Some(&RequiredRoles::AnyCertificate), &conn, None),
            Err(TrustError::NoClientCertificate)
        ));
    }

    #[test]
    fn officer_roles_and_revocation() {
        let p = TrustPolicy::new(vec![]);
        let certificate =
            VerifiedClientCertificate::from_verified_handshake(b"not a certificate".to_vec());
        let conn = Connection {
            peer: "192.0.2.9:443".parse().unwrap(),
            client_certificate: Some(certificate),
        };
        let officer = OfficerStanding {
            serial: "01".into(),
            name: "Olga".into(),
            roles: vec!["ast-requester".into(), "audit".into()],
            revoked: false,
        };
        let needs = |r: &[&str]| RequiredRoles::All(r.iter().map(|s| s.to_string()).collect());
        // A proxy-only handler ignores certificates.
        assert!(matches!(
            p.authorize(None, &conn, Some(&officer)),
            Err(TrustError::UntrustedPeer(_))
        ));
        assert!(matches!(
            p.authorize(Some(&needs(&["ast-requester"])), &conn, Some(&officer)),
            Ok(Caller::Officer { .. })
        ));
        assert!(
            p.authorize(
                Some(&needs(&["ast-requester", "audit"])),
                &conn,
                Some(&officer)
            )
            .is_ok()
        );
        assert_eq!(
            p.authorize(
                Some(&needs(&["ast-requester", "admin"])),
                &conn,
                Some(&officer)
            )
            .err(),
            Some(TrustError::MissingRole("admin".into()))
        );
        // Unregistered certificates are nobody, for `none` too.
        assert!(matches!(
            p.authorize(Some(&needs(&["ast-requester"])), &conn, None),
            Err(TrustError::Unregistered(_))
        ));
        assert!(matches!(
            p.authorize(Some(&RequiredRoles::AnyCertificate), &conn, None),
            Err(TrustError::Unregistered(_))
        ));
        match p.authorize(Some(&RequiredRoles::AnyCertificate), &conn, Some(&officer)) {
            Ok(caller @ Caller::Officer { .. }) => {
                assert_eq!(caller.to_string(), "officer:01");
            }
            other => panic!("{other:?}"),
        }
        let revoked = OfficerStanding {
            revoked: true,
            ..officer
        };
        assert!(matches!(
            p.authorize(Some(&RequiredRoles::AnyCertificate), &conn, Some(&revoked)),
            Err(TrustError::Revoked(_))
        ));
        assert!(matches!(
            p.authorize(Some(&needs(&["audit"])), &conn, Some(&revoked)),
            Err(TrustError::Revoked(_))
        ));
    }
}
