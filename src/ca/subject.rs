//! The attributes a format field may set and their DER encoding.

use std::fmt;

use const_oid::ObjectIdentifier;
use const_oid::db::rfc4519;

/// A certificate attribute: a subject DN attribute or a subject alternative name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Attribute {
    CommonName,
    GivenName,
    Surname,
    SerialNumber,
    Title,
    CountryName,
    LocalityName,
    StateOrProvinceName,
    OrganizationName,
    OrganizationalUnitName,
    EmailAddress,
    Uid,
    Pseudonym,
    Rfc822Name,
    DnsName,
    Upn,
    Uri,
}

impl Attribute {
    /// The default RDN order of a subject (most significant first, as most enterprise PKIs
    /// write it): C, ST, L, O, OU, title, CN, surname, given name, serialNumber, pseudonym, UID,
    /// emailAddress.
    pub const CONVENTIONAL_ORDER: [Attribute; 13] = [
        Attribute::CountryName,
        Attribute::StateOrProvinceName,
        Attribute::LocalityName,
        Attribute::OrganizationName,
        Attribute::OrganizationalUnitName,
        Attribute::Title,
        Attribute::CommonName,
        Attribute::Surname,
        Attribute::GivenName,
        Attribute::SerialNumber,
        Attribute::Pseudonym,
        Attribute::Uid,
        Attribute::EmailAddress,
    ];

    /// Every attribute (the order format listings show them in).
    pub const ALL: [Attribute; 17] = [
        Attribute::CommonName,
        Attribute::GivenName,
        Attribute::Surname,
        Attribute::SerialNumber,
        Attribute::Title,
        Attribute::CountryName,
        Attribute::LocalityName,
        Attribute::StateOrProvinceName,
        Attribute::OrganizationName,
        Attribute::OrganizationalUnitName,
        Attribute::EmailAddress,
        Attribute::Uid,
        Attribute::Pseudonym,
        Attribute::Rfc822Name,
        Attribute::DnsName,
        Attribute::Upn,
        Attribute::Uri,
    ];

    /// The name used in format targets (`commonname`, `rfc822name`, …).
    pub fn name(self) -> &'static str {
        match self {
            Attribute::CommonName => "commonname",
            Attribute::GivenName => "givenname",
            Attribute::Surname => "surname",
            Attribute::SerialNumber => "serialnumber",
            Attribute::Title => "title",
            Attribute::CountryName => "countryname",
            Attribute::LocalityName => "localityname",
            Attribute::StateOrProvinceName => "stateorprovincename",
            Attribute::OrganizationName => "organizationname",
            Attribute::OrganizationalUnitName => "organizationalunitname",
            Attribute::EmailAddress => "emailaddress",
            Attribute::Uid => "uid",
            Attribute::Pseudonym => "pseudonym",
            Attribute::Rfc822Name => "rfc822name",
            Attribute::DnsName => "dnsname",
            Attribute::Upn => "upn",
            Attribute::Uri => "uri",
        }
    }

    /// Looks an attribute up by its format name (case-insensitive).
    pub fn from_name(name: &str) -> Option<Attribute> {
        let lower = name.to_ascii_lowercase();
        Attribute::ALL.into_iter().find(|a| a.name() == lower)
    }

    /// True for subject alternative names, false for DN attributes.
    pub fn is_san(self) -> bool {
        matches!(
            self,
            Attribute::Rfc822Name | Attribute::DnsName | Attribute::Upn | Attribute::Uri
        )
    }

    /// The OID of a DN attribute (None for SANs).
    pub fn oid(self) -> Option<ObjectIdentifier> {
        Some(match self {
            Attribute::CommonName => rfc4519::CN,
            Attribute::GivenName => rfc4519::GIVEN_NAME,
            Attribute::Surname => rfc4519::SN,
            Attribute::SerialNumber => rfc4519::SERIAL_NUMBER,
            Attribute::Title => rfc4519::TITLE,
            Attribute::CountryName => rfc4519::C,
            Attribute::LocalityName => rfc4519::L,
            Attribute::StateOrProvinceName => rfc4519::ST,
            Attribute::OrganizationName => rfc4519::O,
            Attribute::OrganizationalUnitName => rfc4519::OU,
            Attribute::EmailAddress => const_oid::db::rfc3280::EMAIL_ADDRESS,
            Attribute::Uid => rfc4519::UID,
            Attribute::Pseudonym => const_oid::db::rfc3280::PSEUDONYM,
            _ => return None,
        })
    }

    /// The short label used when a DN is shown to people (RFC 4514 where it has one).
    pub fn label(self) -> &'static str {
        match self {
            Attribute::CommonName => "CN",
            Attribute::GivenName => "GN",
            Attribute::Surname => "SN",
            Attribute::SerialNumber => "serialNumber",
            Attribute::Title => "title",
            Attribute::CountryName => "C",
            Attribute::LocalityName => "L",
            Attribute::StateOrProvinceName => "ST",
            Attribute::OrganizationName => "O",
            Attribute::OrganizationalUnitName => "OU",
            Attribute::EmailAddress => "emailAddress",
            Attribute::Uid => "UID",
            Attribute::Pseudonym => "pseudonym",
            Attribute::Rfc822Name => "email",
            Attribute::DnsName => "DNS",
            Attribute::Upn => "UPN",
            Attribute::Uri => "URI",
        }
    }
}

impl fmt::Display for Attribute {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The values one certificate gets, in the order they should appear.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Subject {
    pub values: Vec<(Attribute, String)>,
}

impl Subject {
    /// The first value of an attribute.
    pub fn first(&self, attribute: Attribute) -> Option<&str> {
        self.values
            .iter()
            .find(|(a, _)| *a == attribute)
            .map(|(_, v)| v.as_str())
    }

    /// The DN attributes in RDN order: `order` (attributes in the order listed), or, if
    /// `order` is empty, the default [`Attribute::CONVENTIONAL_ORDER`].
    pub fn dn_values<'a>(&'a self, order: &'a [Attribute]) -> Vec<(Attribute, &'a str)> {
        let order: &[Attribute] = if order.is_empty() {
            &Attribute::CONVENTIONAL_ORDER
        } else {
            order
        };
        let mut out = Vec::new();
        for attribute in order.iter().filter(|a| !a.is_san()) {
            for (a, v) in &self.values {
                if a == attribute {
                    out.push((*a, v.as_str()));
                }
            }
        }
        out
    }

    /// The SAN values in the order they were set.
    pub fn san_values(&self) -> impl Iterator<Item = (Attribute, &str)> {
        self.values
            .iter()
            .filter(|(a, _)| a.is_san())
            .map(|(a, v)| (*a, v.as_str()))
    }

    /// A human-readable one-line DN (RFC 4514 style, most significant RDN last as in our order),
    /// for listings and logs only; certificates are always encoded attribute by attribute.
    pub fn display_dn(&self, order: &[Attribute]) -> String {
        self.dn_values(order)
            .iter()
            .map(|(a, v)| format!("{}={}", a.label(), escape_rfc4514(v)))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// A certificate name (subject or issuer) as people read it, in the one style every listing,
/// the API and `certs show` use: the attributes in their encoded order, `LABEL=value` joined by
/// `, ` (values escaped as RFC 4514 does), the same as `Subject::display_dn` writes what we
/// issue. A value that is no string is shown as `#` and its DER in hex, as RFC 4514 does.
pub fn display_name(name: &x509_cert::name::Name) -> String {
    let mut parts = Vec::new();
    for rdn in name.iter_rdn() {
        let values: Vec<String> = rdn
            .iter()
            .map(|atv| {
                let label = Attribute::ALL
                    .into_iter()
                    .find(|a| a.oid() == Some(atv.oid))
                    .map_or_else(|| atv.oid.to_string(), |a| a.label().to_string());
                let value = match string_value(&atv.value) {
                    Some(text) => escape_rfc4514(&text),
                    None => format!(
                        "#{}",
                        hex::encode(der::Encode::to_der(&atv.value).unwrap_or_default())
                    ),
                };
                format!("{label}={value}")
            })
            .collect();
        parts.push(values.join("+"));
    }
    parts.join(", ")
}

/// The text of a directory string (UTF8String, PrintableString, IA5String, BMPString,
/// TeletexString read as Latin-1 as most software does).
fn string_value(value: &der::asn1::Any) -> Option<String> {
    use der::{Tag, Tagged};
    let bytes = value.value();
    match value.tag() {
        Tag::Utf8String | Tag::PrintableString | Tag::Ia5String | Tag::VisibleString => {
            String::from_utf8(bytes.to_vec()).ok()
        }
        Tag::BmpString => {
            if !bytes.len().is_multiple_of(2) {
                return None;
            }
            let units: Vec<u16> = bytes
                .chunks_exact(2)
                .map(|c| u16::from_be_bytes([c[0], c[1]]))
                .collect();
            String::from_utf16(&units).ok()
        }
        Tag::TeletexString => Some(bytes.iter().map(|&b| char::from(b)).collect()),
        _ => None,
    }
}

fn escape_rfc4514(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    for (i, c) in v.chars().enumerate() {
        if matches!(c, ',' | '+' | '"' | '\\' | '<' | '>' | ';' | '=')
            || (i == 0 && (c == '#' || c == ' '))
        {
            out.push('\\');
        }
        out.push(c);
    }
    out
}
