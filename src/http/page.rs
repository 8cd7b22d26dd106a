//! The PIN page: the bundled template (`ast.html`) or the operator's (`conf/pages/`, parsed and
//! checked by `config::PageTemplate`), filled in with one handler's values.
//!
//! Inline script and style blocks hold no per-request values (the PIN policy travels in the
//! form's attributes), so their SHA-256 hashes are fixed per template and the
//! Content-Security-Policy allows exactly them — no `'unsafe-inline'`.

use std::sync::LazyLock;

use percent_encoding::{AsciiSet, CONTROLS, utf8_percent_encode};

mod who;

pub use self::who::Who;
use self::who::WhoHtml;
use super::error::escape;
use crate::config::{PagePiece, PageTemplate};
use crate::rules::DEFAULT_PIN_PATTERN;
use crate::rules::{Handler, Layout, TokenProcedure};
use crate::token::Pkcs12Profile;

const BUNDLED: &str = include_str!("ast.html");

/// The bundled page, parsed once (a unit test keeps it parsable).
pub fn bundled() -> Option<&'static PageTemplate> {
    static PARSED: LazyLock<Option<PageTemplate>> =
        LazyLock::new(|| match PageTemplate::parse(None, BUNDLED) {
            Ok(t) => Some(t),
            Err(e) => {
                tracing::error!("the bundled PIN page does not parse: {e}");
                None
            }
        });
    PARSED.as_ref()
}

/// A page's Content-Security-Policy: its inline scripts and styles by hash, `fetch` and the
/// form to this origin only, no framing.
pub fn content_security_policy(template: &PageTemplate) -> String {
    let sources = |hashes: &[String]| {
        if hashes.is_empty() {
            "'none'".to_string()
        } else {
            hashes
                .iter()
                .map(|h| format!("'{h}'"))
                .collect::<Vec<_>>()
                .join(" ")
        }
    };
    format!(
        "default-src 'none'; script-src {}; style-src {}; connect-src 'self'; \
         form-action 'self'; img-src data:; base-uri 'none'; frame-ancestors 'none'",
        sources(template.script_hashes()),
        sources(template.style_hashes()),
    )
}

/// Characters of a path remainder that are escaped in the form's action URL (`/` is kept: the
/// remainder is a path). The issuance route decodes them back to the same remainder.
const PATH: &AsciiSet = &CONTROLS
    .add(b' ')
    .add(b'"')
    .add(b'#')
    .add(b'%')
    .add(b'<')
    .add(b'>')
    .add(b'?')
    .add(b'\\')
    .add(b'^')
    .add(b'`')
    .add(b'{')
    .add(b'|')
    .add(b'}')
    .add(b'[')
    .add(b']');

/// The URL the page's form posts to: `/pgwy/ast` for the empty remainder, else
/// `/pgwy/ast/<remainder>` (percent-encoded).
pub fn action_for(remainder: &str) -> String {
    if remainder.is_empty() {
        "/pgwy/ast".into()
    } else {
        format!("/pgwy/ast/{}", utf8_percent_encode(remainder, PATH))
    }
}

/// Renders `template` for `handler` (its PIN policy and profiles; `None`: the defaults), with
/// the form posting to `action`; `who` says whom the certificates are for (`None`: nobody).
pub fn render(
    template: &PageTemplate,
    handler: Option<&Handler>,
    procedure: Option<&TokenProcedure>,
    action: &str,
    who: Option<&Who>,
) -> String {
    let values = Values::new(handler, procedure, action, who);
    let mut html = String::with_capacity(BUNDLED.len() + 512);
    // Whether each open section shows its content (nested in the enclosing ones).
    let mut shown: Vec<bool> = Vec::new();
    for piece in template.pieces() {
        let visible = shown.last().copied().unwrap_or(true);
        match piece {
            PagePiece::Open { section, inverted } => {
                shown.push(visible && values.condition(section) != *inverted);
            }
            PagePiece::Close => {
                shown.pop();
            }
            PagePiece::Text(text) if visible => html.push_str(text),
            PagePiece::Value(name) if visible => html.push_str(&values.value(name)),
            PagePiece::Text(_) | PagePiece::Value(_) => {}
        }
    }
    html
}

/// The handler's values a template may insert, computed once per page.
struct Values {
    action: String,
    min: usize,
    max: usize,
    ascii_only: bool,
    number: u32,
    profile: Pkcs12Profile,
    profiles: Vec<Pkcs12Profile>,
    legacy: bool,
    layout: String,
    who: WhoHtml,
}

impl Values {
    fn new(
        handler: Option<&Handler>,
        procedure: Option<&TokenProcedure>,
        action: &str,
        who: Option<&Who>,
    ) -> Values {
        let (min, max, ascii_only, profile, profiles, number) = match handler {
            Some(h) => (
                h.password_policy.min_length,
                h.password_policy.max_length,
                h.password_policy.pattern_source == DEFAULT_PIN_PATTERN,
                h.pkcs12_profile,
                h.pkcs12_profiles.clone(),
                h.number,
            ),
            None => (
                6,
                128,
                true,
                Pkcs12Profile::Modern,
                vec![Pkcs12Profile::Modern],
                0,
            ),
        };
        let legacy = profiles.contains(&Pkcs12Profile::Legacy) && profile != Pkcs12Profile::Legacy;
        Values {
            action: escape(action),
            min,
            max,
            ascii_only,
            number,
            profile,
            profiles,
            legacy,
            layout: layout_html(procedure),
            who: WhoHtml::new(who),
        }
    }

    fn value(&self, name: &str) -> String {
        match name {
            "ACTION" => self.action.clone(),
            "MIN" => self.min.to_string(),
            "MAX" => self.max.to_string(),
            "ASCII_ONLY" => self.ascii_only.to_string(),
            "HANDLER" => self.number.to_string(),
            "PROFILE" => self.profile.name().to_string(),
            "PROFILES" => self
                .profiles
                .iter()
                .map(|p| p.name())
                .collect::<Vec<_>>()
                .join(", "),
            "PATTERN_HINT" if self.ascii_only => {
                ", letters, digits, spaces and ASCII punctuation".into()
            }
            "LEGACY" if self.legacy => LEGACY_HTML.into(),
            "LAYOUT" => self.layout.clone(),
            other => self.who.value(other),
        }
    }

    fn condition(&self, section: &str) -> bool {
        match section {
            "ascii" => self.ascii_only,
            "legacy" => self.legacy,
            other => self.who.condition(other),
        }
    }
}

/// The legacy profile's checkbox and its explanation.
const LEGACY_HTML: &str = "<label class=\"check\"><input type=\"checkbox\" name=\"profile\" value=\"legacy\" aria-describedby=\"legacy-hint\"> \
     File for older devices</label><p id=\"legacy-hint\" class=\"hint\">Choose this for Windows Server 2016 or older, \
     macOS 12 or older, Android 12 or older. It uses weaker (3DES) protection.</p>";

/// For a `per-purpose` procedure: what the zip holds and why (clients that use only the first
/// or only key of a file). Nothing for `combined`.
fn layout_html(procedure: Option<&TokenProcedure>) -> String {
    let Some(procedure) = procedure.filter(|p| p.layout == Layout::PerPurpose) else {
        return String::new();
    };
    let items: String = procedure
        .certificates
        .iter()
        .map(|c| format!("<li>{}</li>", escape(&c.purpose)))
        .collect();
    format!(
        "<div id=\"layout\"><p>You will receive a zip file with {} certificate files, one per use:</p>\
         <ul>{items}</ul><p class=\"hint\">Each file holds one key and opens with the password you choose \
         here. Unzip it and install each file where it is used (for example the authentication file in \
         the browser or VPN client, the signing file in the e-mail or document program): some programs \
         use only the first key of a file.</p></div>",
        procedure.certificates.len()
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::csp_hash;

    /// The text between `<tag>` and `</tag>` (the first such block), as the browser hashes it.
    fn inline_block<'a>(html: &'a str, tag: &str) -> &'a str {
        let open = format!("<{tag}>");
        let close = format!("</{tag}>");
        html.split_once(open.as_str())
            .and_then(|(_, rest)| rest.split_once(close.as_str()))
            .map(|(block, _)| block)
            .unwrap_or_default()
    }

    #[test]
    fn the_policy_allows_exactly_the_rendered_inline_blocks() {
        let template = bundled().unwrap();
        let page = render(template, None, None, "/pgwy/ast", None);
        let policy = content_security_policy(template);
        assert!(!policy.contains("unsafe-inline"), "{policy}");
        for tag in ["script", "style"] {
            let block = inline_block(&page, tag);
            assert!(block.len() > 100, "no inline {tag} found");
            assert!(
                !block.contains("{{"),
                "a placeholder inside the {tag} block"
            );
            assert!(
                policy.contains(&csp_hash(block)),
                "{tag} hash missing: {policy}"
            );
            // One block of each kind: a second would be blocked by the policy.
            assert_eq!(page.matches(&format!("<{tag}")).count(), 1, "{tag}");
        }
        // No inline event handlers or style attributes (they would need 'unsafe-hashes').
        assert!(!page.contains(" style=") && !page.contains(" onclick="));
        assert!(!page.contains("{{"), "a placeholder left in the page");
        assert!(page.contains("action=\"/pgwy/ast\""));
    }

    #[test]
    fn actions_keep_the_path_and_escape_the_rest() {
        assert_eq!(action_for(""), "/pgwy/ast");
        assert_eq!(action_for("staff"), "/pgwy/ast/staff");
        assert_eq!(
            action_for("contractors/acme corp"),
            "/pgwy/ast/contractors/acme%20corp"
        );
        assert_eq!(
            action_for("a\"><script>?#%"),
            "/pgwy/ast/a%22%3E%3Cscript%3E%3F%23%25"
        );
        assert_eq!(action_for("städ"), "/pgwy/ast/st%C3%A4d");
    }

    #[test]
    fn sections_and_values_follow_the_handler() {
        let template = PageTemplate::parse(
            None,
            "<form action=\"{{ACTION}}\">{{#ascii}}A{{/ascii}}{{^ascii}}U{{/ascii}}\
             {{#legacy}}L{{#ascii}}+{{/ascii}}{{/legacy}}{{^legacy}}M{{/legacy}}\
             {{MIN}}-{{MAX}} {{PROFILE}} [{{PROFILES}}] h{{HANDLER}}",
        )
        .unwrap();
        let page = render(&template, None, None, "/pgwy/ast/x\"y", None);
        assert_eq!(
            page,
            "<form action=\"/pgwy/ast/x&quot;y\">AM6-128 modern [modern] h0"
        );
    }

    #[test]
    fn a_per_purpose_procedure_is_explained_and_the_policy_still_holds() {
        use crate::rules::CertificateTemplate;
        use x509_cert::ext::pkix::{KeyUsage, KeyUsages};
        let template = |purpose: &str| CertificateTemplate {
            purpose: purpose.into(),
            ca: "issuing".into(),
            key: crate::token::KeyType::EcP256,
            validity: std::time::Duration::from_secs(86_400),
            key_usage: KeyUsage(KeyUsages::DigitalSignature.into()),
            extended_key_usage: Vec::new(),
            policies: Vec::new(),
            subject_order: Vec::new(),
            leaf_not_after: crate::rules::LeafNotAfter::Cap,
        };
        let mut procedure = TokenProcedure {
            name: "p".into(),
            layout: Layout::PerPurpose,
            certificates: vec![template("authentication"), template("<sign>")],
        };
        let bundled = bundled().unwrap();
        let page = render(bundled, None, Some(&procedure), "/pgwy/ast", None);
        assert!(
            page.contains("a zip file with 2 certificate files"),
            "{page}"
        );
        assert!(page.contains("<li>authentication</li><li>&lt;sign&gt;</li>"));
        let policy = content_security_policy(bundled);
        for tag in ["script", "style"] {
            assert!(policy.contains(&csp_hash(inline_block(&page, tag))));
        }
        procedure.layout = Layout::Combined;
        let page = render(bundled, None, Some(&procedure), "/pgwy/ast", None);
        assert!(!page.contains("zip") && !page.contains("{{"));
    }
}
