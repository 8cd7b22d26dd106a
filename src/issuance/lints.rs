//! The lints of `config check`: what loads but will not do what it says — a subject list that
//! drops format fields, a certificate validity past its CA's end, an expired CA. Each is one
//! operator-readable sentence; the command line prints them, the API and tests may ask too.

use crate::rules::Configuration;
use crate::timestamp::Timestamp;

/// Every warning about `config` at `now` (Unix seconds).
pub fn configuration_warnings(config: &Configuration, now: i64) -> Vec<String> {
    let mut warnings = subject_warnings(config);
    warnings.extend(ca_lifetime_warnings(config, now));
    warnings
}

/// A certificate template with `subject = [...]` carries only the listed DN attributes: a
/// format field that sets another one for that certificate is silently dropped from it. One
/// warning per handler and certificate, naming the fields.
pub fn subject_warnings(config: &Configuration) -> Vec<String> {
    use crate::policy::Scope;
    let mut warnings = Vec::new();
    for h in &config.rules.handlers {
        let Some(procedure) = config.rules.procedure(&h.token_procedure) else {
            continue;
        };
        for (i, template) in procedure.certificates.iter().enumerate() {
            if template.subject_order.is_empty() {
                continue;
            }
            let dropped: Vec<String> = h
                .fields
                .iter()
                .filter(|f| f.source.is_some())
                .filter(|f| match f.target.scope {
                    Scope::Common => true,
                    Scope::Request(r) => r == i,
                })
                .filter(|f| {
                    !f.target.attribute.is_san()
                        && !template.subject_order.contains(&f.target.attribute)
                })
                .map(|f| format!("{} ({})", f.index, f.target.attribute.name()))
                .collect();
            if dropped.is_empty() {
                continue;
            }
            warnings.push(format!(
                "handler.{}: certificate {i} ({}) of token procedure `{}` lists subject = [{}]; \
                 format field(s) {} set attributes it leaves out, so those values are dropped \
                 from that certificate (add them to `subject`, or disable the fields)",
                h.number,
                template.purpose,
                procedure.name,
                template
                    .subject_order
                    .iter()
                    .map(|a| a.name())
                    .collect::<Vec<_>>()
                    .join(", "),
                dropped.join(", ")
            ));
        }
    }
    warnings
}

/// A certificate template whose validity reaches past its CA's notAfter: with
/// `leaf_not_after = "cap"` its certificates end with the CA, with `refuse` they are refused.
/// One warning per template, and one per expired CA.
pub fn ca_lifetime_warnings(config: &Configuration, now: i64) -> Vec<String> {
    use der::Decode;
    let not_after = |name: &str| -> Option<i64> {
        let ca = config.settings.cas.iter().find(|c| c.name == name)?;
        let der = crate::ca::read_certificate_file(&ca.certificate).ok()?;
        let certificate = x509_cert::Certificate::from_der(&der).ok()?;
        let t = certificate.tbs_certificate().validity().not_after;
        Some(t.to_unix_duration().as_secs() as i64)
    };
    let date = |t: i64| Timestamp::from_unix(t).to_string();
    let mut warnings = Vec::new();
    let mut expired = std::collections::BTreeSet::new();
    for procedure in config.rules.procedures.values() {
        for template in &procedure.certificates {
            let Some(end) = not_after(&template.ca) else {
                continue;
            };
            let left = end - now;
            if left <= 0 {
                if expired.insert(template.ca.clone()) {
                    warnings.push(format!(
                        "CA `{}` expired on {}: every request for its certificates is refused; \
                         roll it over (ast-gateway ca create NEW --replaces {})",
                        template.ca,
                        date(end),
                        template.ca
                    ));
                }
                continue;
            }
            let validity = template.validity.as_secs();
            if validity as i64 <= left {
                continue;
            }
            let outcome = match template.leaf_not_after {
                crate::rules::LeafNotAfter::Cap => format!(
                    "its certificates are cut to end with the CA (leaf_not_after = \"cap\"), {} \
                     days instead of {}",
                    left / 86_400,
                    validity.div_ceil(86_400)
                ),
                crate::rules::LeafNotAfter::Refuse => {
                    "every request for it is refused (leaf_not_after = \"refuse\")".to_string()
                }
            };
            warnings.push(format!(
                "token procedure `{}`, certificate `{}`: validity {} days exceeds the remaining \
                 life of CA `{}` (until {}, {} days left): {outcome}. Roll the CA over \
                 (ast-gateway ca create NEW --replaces {})",
                procedure.name,
                template.purpose,
                validity.div_ceil(86_400),
                template.ca,
                date(end),
                left / 86_400,
                template.ca
            ));
        }
    }
    warnings
}

#[cfg(test)]
#[path = "lints_tests.rs"]
mod tests;
