//! The PIN page use case: the handler a path selects (the same selection as issuance), the
//! operator's template for it, and what the page can tell the person before they choose a PIN —
//! whom the certificates will be for and which ones will be made, or in words why the form would
//! be refused.
//!
//! The preview runs the issuance pipeline up to the subjects (trust decision, header decoding,
//! format evaluation, subject planning) and stops there: no PIN, no key, no rate limit, no
//! database row. Headers are evaluated only when the handler believes the caller (a trusted
//! front, or an officer with the roles); anyone else gets a page that names no one.

use std::sync::Arc;

use super::explain::{PlannedCertificate, Refusal, plan};
use super::soft_token::{decoded_remainder, select};
use super::{Gateway, IssuanceError};
use crate::config::{PageTemplate, PageTemplates};
use crate::identity::Connection;
use crate::policy::IdentityHeaders;
use crate::rules::{Handler, Rules};

/// What the PIN page reached under a path shows: the handler that path selects (the domain's
/// selection, as for issuance), the operator's template for it, if any, and the preview.
#[derive(Debug, Clone)]
pub struct PinPage {
    pub handler: Handler,
    /// The decoded path remainder (what the handler's filter matched), for the form's action.
    pub remainder: String,
    /// Whom the form would issue certificates for, as far as this request tells.
    pub preview: Preview,
    templates: Arc<PageTemplates>,
}

impl PinPage {
    /// The operator's template for this handler; `None`: the bundled page.
    pub fn template(&self) -> Option<&PageTemplate> {
        self.templates.for_handler(self.handler.number)
    }
}

/// What the page can say about the person before the form is sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Preview {
    /// Nothing: the request carries none of the identity headers the handler reads (a front
    /// that signs in only the form's post), or comes from a caller whose headers the handler
    /// does not believe.
    Unknown,
    /// The certificates the form would issue now, in token procedure order.
    Certificates(Vec<PlannedCertificate>),
    /// The form would be refused with this code and message (what the post would get).
    Refused(Refusal),
}

impl Gateway {
    /// The PIN page for a path remainder as sent (`""` for `/pgwy/request/ast.html`): the
    /// handler that would serve `/pgwy/ast/<remainder>`, or why there is none; with the preview
    /// of what this caller's identity headers would get.
    pub async fn pin_page(
        &self,
        sent: &str,
        connection: &Connection,
        headers: IdentityHeaders,
    ) -> Result<PinPage, IssuanceError> {
        let rules = self.rules();
        let remainder = decoded_remainder(sent)?;
        let handler = select(&rules, &remainder)?.clone();
        let preview = self.preview(&rules, &handler, connection, headers).await;
        Ok(PinPage {
            handler,
            remainder,
            preview,
            templates: self.pages.load_full(),
        })
    }

    async fn preview(
        &self,
        rules: &Rules,
        handler: &Handler,
        connection: &Connection,
        headers: IdentityHeaders,
    ) -> Preview {
        let read = handler.headers_read();
        if !read.is_empty()
            && read
                .iter()
                .all(|name| matches!(headers.get(name), Ok(None)))
        {
            return Preview::Unknown;
        }
        let Ok(officer) = self.officer_standing(handler, connection).await else {
            return Preview::Unknown;
        };
        let Ok(caller) = self.trust.authorize(
            handler.required_roles.as_ref(),
            connection,
            officer.as_ref(),
        ) else {
            return Preview::Unknown;
        };
        // Decoded as issuance decodes them: the handler's encoding, suspicious values refused.
        let headers = headers
            .decoded_as(rules.header_encoding_for(handler))
            .refusing_suspicious(handler.refuse_suspicious);
        match plan(rules, handler, &headers, caller.certificate_facts()) {
            Ok(certificates) => Preview::Certificates(certificates),
            Err(error) => Preview::Refused(Refusal::from(&error)),
        }
    }
}
