//! The PIN page's account of the person: whom the certificates will be for and which ones will
//! be made (`{{PERSON}}`, `{{CERTIFICATES}}`, section `person`), or in words why the form would
//! be refused (`{{REFUSAL}}`, `{{REFUSAL_CODE}}`, `{{REQUEST_ID}}`, section `refused`). Every
//! value is HTML-escaped here; none goes into a script or style block (their CSP hashes stay
//! fixed).

use super::super::error::{escape, user_message};
use crate::issuance::{PlannedCertificate, Preview};

/// What the domain said about the person, and the request id a refusal quotes (the log line
/// `PIN page: the form would be refused` carries the same id and the operator's message).
pub struct Who<'a> {
    pub preview: &'a Preview,
    pub request_id: &'a str,
}

/// The escaped values, computed once per page.
#[derive(Default)]
pub(super) struct WhoHtml {
    person: Option<String>,
    certificates: String,
    refusal: Option<(String, String)>,
    request_id: String,
}

impl WhoHtml {
    pub(super) fn new(who: Option<&Who>) -> WhoHtml {
        let Some(who) = who else {
            return WhoHtml::default();
        };
        let request_id = escape(who.request_id);
        match who.preview {
            Preview::Unknown => WhoHtml {
                request_id,
                ..WhoHtml::default()
            },
            Preview::Certificates(certificates) => WhoHtml {
                person: certificates
                    .first()
                    .map(|first| escape(first.common_name.as_deref().unwrap_or(&first.subject))),
                certificates: certificates.iter().map(certificate_html).collect(),
                refusal: None,
                request_id,
            },
            Preview::Refused(refusal) => {
                // As on the refusal page: an identity the front sent but that cannot be used is
                // the operator's to fix; the user gets words for the help desk, not header names.
                let message = user_message(refusal.code).unwrap_or(&refusal.message);
                WhoHtml {
                    person: None,
                    certificates: String::new(),
                    refusal: Some((escape(message), escape(refusal.code.as_str()))),
                    request_id,
                }
            }
        }
    }

    pub(super) fn value(&self, name: &str) -> String {
        match name {
            "PERSON" => self.person.clone().unwrap_or_default(),
            "CERTIFICATES" => self.certificates.clone(),
            "REFUSAL" => self
                .refusal
                .as_ref()
                .map(|r| r.0.clone())
                .unwrap_or_default(),
            "REFUSAL_CODE" => self
                .refusal
                .as_ref()
                .map(|r| r.1.clone())
                .unwrap_or_default(),
            "REQUEST_ID" => self.request_id.clone(),
            _ => String::new(),
        }
    }

    pub(super) fn condition(&self, section: &str) -> bool {
        match section {
            "person" => self.person.is_some(),
            "refused" => self.refusal.is_some(),
            _ => false,
        }
    }
}

/// One `<li>`: purpose, lifetime, subject and other names.
fn certificate_html(c: &PlannedCertificate) -> String {
    let names = if c.sans.is_empty() {
        String::new()
    } else {
        format!(
            "<br><span class=\"names\">Also names: {}</span>",
            escape(&c.sans.join(", "))
        )
    };
    format!(
        "<li><strong>{}</strong>, valid {} days<br><span class=\"dn\">{}</span>{names}</li>",
        escape(&c.purpose),
        c.validity_days,
        escape(&c.subject)
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::issuance::{Code, Refusal};

    fn planned(purpose: &str, cn: Option<&str>) -> PlannedCertificate {
        PlannedCertificate {
            index: 0,
            purpose: purpose.into(),
            ca: "issuing".into(),
            key: "ec-p256".into(),
            validity_days: 365,
            subject: "CN=Zoë <b>, C=SE".into(),
            subject_rfc4514: "C=SE,CN=Zoë <b>".into(),
            common_name: cn.map(str::to_string),
            sans: vec!["email:zoe@example.org".into()],
        }
    }

    #[test]
    fn the_person_and_each_certificate_escaped() {
        let preview = Preview::Certificates(vec![
            planned("authentication", Some("Zoë <b>")),
            planned("signing", Some("Zoë <b>")),
        ]);
        let html = WhoHtml::new(Some(&Who {
            preview: &preview,
            request_id: "r1",
        }));
        assert!(html.condition("person") && !html.condition("refused"));
        assert_eq!(html.value("PERSON"), "Zoë &lt;b&gt;");
        let list = html.value("CERTIFICATES");
        assert_eq!(list.matches("<li>").count(), 2, "{list}");
        assert!(list.contains("<strong>signing</strong>, valid 365 days"));
        assert!(list.contains("CN=Zoë &lt;b&gt;, C=SE") && list.contains("email:zoe@example.org"));
    }

    #[test]
    fn no_common_name_shows_the_subject() {
        let preview = Preview::Certificates(vec![planned("authentication", None)]);
        let html = WhoHtml::new(Some(&Who {
            preview: &preview,
            request_id: "r1",
        }));
        assert_eq!(html.value("PERSON"), "CN=Zoë &lt;b&gt;, C=SE");
    }

    #[test]
    fn a_refusal_in_words_and_the_operator_details_kept_back() {
        let refused = |code, message: &str| {
            let preview = Preview::Refused(Refusal {
                code,
                message: message.into(),
            });
            let html = WhoHtml::new(Some(&Who {
                preview: &preview,
                request_id: "req-7",
            }));
            assert!(html.condition("refused") && !html.condition("person"));
            (
                html.value("REFUSAL"),
                html.value("REFUSAL_CODE"),
                html.value("REQUEST_ID"),
            )
        };
        let (message, code, id) = refused(Code::FieldMissing, "required field `commonname` …");
        assert!(
            message.contains("could not be used for a certificate"),
            "{message}"
        );
        assert!(!message.contains("commonname"));
        assert_eq!((code.as_str(), id.as_str()), ("field-missing", "req-7"));
        let (message, _, _) = refused(Code::NoHandler, "no handler matches this path");
        assert_eq!(message, "no handler matches this path");
    }

    #[test]
    fn nobody_named_without_a_preview() {
        for who in [
            None,
            Some(Who {
                preview: &Preview::Unknown,
                request_id: "r",
            }),
        ] {
            let html = WhoHtml::new(who.as_ref());
            assert!(!html.condition("person") && !html.condition("refused"));
            assert_eq!(html.value("PERSON"), "");
        }
    }
}
