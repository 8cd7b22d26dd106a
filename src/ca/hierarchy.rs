//! The names and subjects of the three CAs `init` writes (`root` → `issuing`, `root` →
//! `officers` by default): the demo's, or an operator's own given on the command line (`init
//! --root-name … --root-dn "C=SE, O=Example AB, CN=Example Root CA" …`). A DN is parsed here
//! into attributes, in the order written (most significant first, as it is encoded); it is
//! never spliced into a DN string.

use super::{Attribute, Subject};

/// A CA subject: its values and the RDN order they are encoded in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaSubject {
    pub subject: Subject,
    pub order: Vec<Attribute>,
}

impl CaSubject {
    /// A subject from `(attribute, value)` pairs, encoded in the order given.
    pub fn of(values: &[(Attribute, &str)]) -> CaSubject {
        let mut order = Vec::new();
        for (a, _) in values {
            if !order.contains(a) {
                order.push(*a);
            }
        }
        CaSubject {
            subject: Subject {
                values: values.iter().map(|(a, v)| (*a, v.to_string())).collect(),
            },
            order,
        }
    }
}

/// The names of the three CAs `init` makes, as gateway.toml and the URLs (`/pgwy/crl/NAME.crl`)
/// name them, and their files (`data/ca/NAME.pem`, `NAME.key`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaNames {
    pub root: String,
    /// Signs the user tokens (the token procedures written name it).
    pub issuing: String,
    /// Signs officer client certificates (`role = "officers"`).
    pub officers: String,
}

impl Default for CaNames {
    fn default() -> Self {
        CaNames {
            root: "root".into(),
            issuing: "issuing".into(),
            officers: "officers".into(),
        }
    }
}

impl CaNames {
    /// Each name is letters, digits, `-` and `_` (it is part of URLs and file names), and the
    /// three differ.
    pub fn check(&self) -> Result<(), String> {
        for name in [&self.root, &self.issuing, &self.officers] {
            if !is_ca_name(name) {
                return Err(format!(
                    "CA name `{name}`: use letters, digits, `-` and `_` only (it is part of \
                     the CRL URL and of the file names)"
                ));
            }
        }
        if self.root == self.issuing || self.root == self.officers || self.issuing == self.officers
        {
            return Err(format!(
                "the root, issuing and officers CAs need three different names (given: {}, {}, {})",
                self.root, self.issuing, self.officers
            ));
        }
        Ok(())
    }
}

/// True for a usable CA name: non-empty, ASCII letters, digits, `-` and `_`.
pub fn is_ca_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

/// The names and subjects of the three CAs `init` makes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hierarchy {
    pub names: CaNames,
    pub root: CaSubject,
    pub issuing: CaSubject,
    pub officers: CaSubject,
}

impl Hierarchy {
    /// The demo hierarchy: `C=SE, O=ast-gateway demo, CN=ast-gateway Demo … CA`.
    pub fn demo() -> Hierarchy {
        let demo = |cn: &str| {
            CaSubject::of(&[
                (Attribute::CountryName, "SE"),
                (Attribute::OrganizationName, super::DEMO_ORGANIZATION),
                (Attribute::CommonName, cn),
            ])
        };
        Hierarchy {
            names: CaNames::default(),
            root: demo("ast-gateway Demo Root CA"),
            issuing: demo("ast-gateway Demo Issuing CA"),
            officers: demo("ast-gateway Demo Officers CA"),
        }
    }
}

/// Parses a DN such as `C=SE, O=Example AB, OU=PKI, CN=Example Issuing CA`: attributes by their
/// short label (`C`, `ST`, `L`, `O`, `OU`, `CN`, `serialNumber`, …) or format name
/// (`organizationname`), case-insensitive, separated by `,`; `\,` (and any `\x`) escapes a
/// character. The order is kept as written. A CN is required; the demo organisation is refused
/// (a CA named like that would be taken for a demo CA).
pub fn parse_dn(text: &str) -> Result<CaSubject, String> {
    let mut values = Vec::new();
    for part in split_unescaped(text) {
        let part = part.trim();
        if part.is_empty() {
            continue;
        }
        let (key, value) = part
            .split_once('=')
            .ok_or_else(|| format!("`{part}` is not ATTRIBUTE=value"))?;
        let (key, value) = (key.trim(), unescape(value.trim()));
        let attribute = Attribute::ALL
            .into_iter()
            .filter(|a| !a.is_san())
            .find(|a| a.label().eq_ignore_ascii_case(key) || a.name().eq_ignore_ascii_case(key))
            .ok_or_else(|| {
                format!("`{key}` is not a DN attribute (C, ST, L, O, OU, CN, serialNumber, …)")
            })?;
        if value.is_empty() {
            return Err(format!("`{key}` has no value"));
        }
        if attribute == Attribute::CountryName && value.len() != 2 {
            return Err(format!(
                "C = `{value}`: a country is two letters (ISO 3166)"
            ));
        }
        if attribute == Attribute::OrganizationName && value == super::DEMO_ORGANIZATION {
            return Err(format!(
                "O = `{value}` marks the demo CAs; choose your organisation's name"
            ));
        }
        values.push((attribute, value));
    }
    if !values.iter().any(|(a, _)| *a == Attribute::CommonName) {
        return Err(format!("`{text}` has no CN"));
    }
    let pairs: Vec<(Attribute, &str)> = values.iter().map(|(a, v)| (*a, v.as_str())).collect();
    Ok(CaSubject::of(&pairs))
}

/// `text` split at every `,` not preceded by a `\`.
fn split_unescaped(text: &str) -> Vec<String> {
    let mut parts = Vec::new();
    let mut part = String::new();
    let mut escaped = false;
    for c in text.chars() {
        match c {
            ',' if !escaped => parts.push(std::mem::take(&mut part)),
            _ => part.push(c),
        }
        escaped = c == '\\' && !escaped;
    }
    parts.push(part);
    parts
}

fn unescape(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    let mut chars = value.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => out.extend(chars.next()),
            _ => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_dn_keeps_its_order_and_escapes() {
        let dn =
            parse_dn("C=SE, O=Example\\, AB, OU=PKI, OU=Tokens, CN=Example Issuing CA").unwrap();
        assert_eq!(
            dn.subject.values,
            vec![
                (Attribute::CountryName, "SE".to_string()),
                (Attribute::OrganizationName, "Example, AB".to_string()),
                (Attribute::OrganizationalUnitName, "PKI".to_string()),
                (Attribute::OrganizationalUnitName, "Tokens".to_string()),
                (Attribute::CommonName, "Example Issuing CA".to_string()),
            ]
        );
        assert_eq!(
            dn.order,
            vec![
                Attribute::CountryName,
                Attribute::OrganizationName,
                Attribute::OrganizationalUnitName,
                Attribute::CommonName
            ]
        );
    }

    #[test]
    fn bad_dns_are_refused_with_the_reason() {
        for (dn, says) in [
            ("C=SE, O=Example", "no CN"),
            ("CN=x, X=1", "not a DN attribute"),
            ("CN=x, C=Sweden", "two letters"),
            ("CN=x, O=ast-gateway demo", "demo"),
            ("CN", "not ATTRIBUTE=value"),
            ("CN=x, DNS=example.com", "not a DN attribute"),
        ] {
            let e = parse_dn(dn).unwrap_err();
            assert!(e.contains(says), "{dn}: {e}");
        }
    }
}
