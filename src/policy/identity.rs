//! Who a request says the user is, apart from what the certificate will show.
//!
//! The identity rate limit must count one budget per *user*. The subject DN is not that: two
//! people who share a name (and get the same DN) would share a budget, and an `OU` added to the
//! subject would give the same person a fresh one. What identifies the user is what the
//! trusted front (or the caller's certificate) asserted about *who* the user is: the values of
//! the identity headers and `cert:` sources that the handler's format puts into identifying
//! attributes — the names, serial number, uid, pseudonym, e-mail addresses, UPN, DNS names and
//! URIs — whether or not they end up in the DN. Where the user sits (`O`, `OU`, `L`, `ST`,
//! `C`, `title`) does not count, nor do literals (the handler's, not the user's), nor modules:
//! the key is taken before `trim`, `lower` and the like, after NFC. Two namesakes whose front
//! sends nothing else that tells them apart still share a budget: the gateway cannot tell them
//! apart either, and neither can their certificates.

use std::collections::BTreeSet;

use super::evaluate::CertificateFacts;
use super::{FieldSpec, IdentityHeaders, PolicyError, Source};
use crate::ca::Attribute;

/// The asserted identity as one text: the (source, value) pairs of every header and `cert:`
/// source with a value that `fields` put into an identifying attribute, sorted, as a JSON
/// array (unambiguous). `None` when there is no such value (a format of literals only).
pub fn asserted_identity(
    fields: &[FieldSpec],
    headers: &IdentityHeaders,
    certificate: Option<&CertificateFacts>,
) -> Result<Option<String>, PolicyError> {
    let mut pairs = BTreeSet::new();
    let sources = fields
        .iter()
        .filter(|f| identifies(f.target.attribute))
        .filter_map(|f| f.source.as_ref());
    for source in sources {
        let (label, value) = match source {
            Source::Literal(_) => continue,
            Source::Header(name) => (
                format!("header:{}", name.to_ascii_lowercase()),
                headers.get(name)?,
            ),
            Source::CertSubject(a) => (
                source.to_string(),
                certificate.and_then(|c| find(&c.subject, *a)),
            ),
            Source::CertSan(a) => (
                source.to_string(),
                certificate.and_then(|c| find(&c.sans, *a)),
            ),
        };
        let Some(value) = value.filter(|v| !v.is_empty()) else {
            continue;
        };
        let value = super::text::nfc(&value).unwrap_or(value);
        pairs.insert((label, value));
    }
    if pairs.is_empty() {
        return Ok(None);
    }
    Ok(Some(serde_json::to_string(&pairs).unwrap_or_default()))
}

/// Whether an attribute says who the subject is (rather than where it sits).
fn identifies(attribute: Attribute) -> bool {
    !matches!(
        attribute,
        Attribute::Title
            | Attribute::CountryName
            | Attribute::LocalityName
            | Attribute::StateOrProvinceName
            | Attribute::OrganizationName
            | Attribute::OrganizationalUnitName
    )
}

fn find(values: &[(Attribute, String)], attribute: Attribute) -> Option<String> {
    values
        .iter()
        .find(|(a, _)| *a == attribute)
        .map(|(_, v)| v.clone())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::{Origin, parse_field};

    fn fields(lines: &[&str]) -> Vec<FieldSpec> {
        lines
            .iter()
            .enumerate()
            .map(|(i, l)| parse_field(i as u32 + 1, l, Origin::default()).unwrap())
            .collect()
    }

    fn key(lines: &[&str], headers: &[(&str, &str)]) -> Option<String> {
        let headers = IdentityHeaders::new(headers.iter().copied());
        asserted_identity(&fields(lines), &headers, None).unwrap()
    }

    #[test]
    fn namesakes_differ_and_literals_do_not_count() {
        let format = [
            "ast.valuetarget.commonname.value = commonname | required",
            "ast.valuetarget.rfc822name.value = email | lower",
        ];
        let anna1 = key(
            &format,
            &[("commonname", "Anna Berg"), ("email", "anna@a.example")],
        );
        let anna2 = key(
            &format,
            &[("commonname", "Anna Berg"), ("email", "anna@b.example")],
        );
        assert!(anna1.is_some());
        assert_ne!(anna1, anna2);
        // A handler that adds an OU, literal or from a header (or reads the same headers in
        // another order), keys the same user alike.
        let with_ou = [
            "ast.valuetarget.organizationalunitname.value = \"Staff\"",
            "certrequests:0:organizationname.value = organization",
            "ast.valuetarget.organizationalunitname.value = ou",
            format[1],
            format[0],
        ];
        assert_eq!(
            key(
                &with_ou,
                &[
                    ("commonname", "Anna Berg"),
                    ("email", "anna@a.example"),
                    ("ou", "Sales"),
                    ("organization", "Acme")
                ]
            ),
            anna1
        );
        // Headers the format does not read do not count.
        assert_eq!(
            key(
                &format,
                &[
                    ("commonname", "Anna Berg"),
                    ("email", "anna@a.example"),
                    ("x-other", "1")
                ]
            ),
            anna1
        );
        // Decomposed and composed spellings are one user.
        assert_eq!(
            key(&format[..1], &[("commonname", "Stro\u{308}m")]),
            key(&format[..1], &[("commonname", "Ström")])
        );
        assert_eq!(
            key(&["ast.valuetarget.commonname.value = \"Fixed\""], &[]),
            None
        );
    }
}
