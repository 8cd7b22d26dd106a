//! The bundled PIN page: self-contained, keyboard-usable, readable on a phone.
//!
//! Its one inline script and one inline style block hold no per-request values (the PIN
//! policy travels in the form's attributes), so their SHA-256 hashes are computed once and the
//! Content-Security-Policy allows exactly them — no `'unsafe-inline'`.

use std::sync::LazyLock;

use base64::Engine;
use sha2::{Digest, Sha256};

use super::error::escape;
use crate::rules::DEFAULT_PIN_PATTERN;
use crate::rules::{Handler, Layout, TokenProcedure};
use crate::token::Pkcs12Profile;

const TEMPLATE: &str = include_str!("ast.html");

/// The PIN page's Content-Security-Policy: its inline script and style by hash, `fetch` and
/// the form to this origin only, no framing.
pub fn content_security_policy() -> &'static str {
    static POLICY: LazyLock<String> = LazyLock::new(|| {
        format!(
            "default-src 'none'; script-src '{}'; style-src '{}'; connect-src 'self'; \
             form-action 'self'; img-src data:; base-uri 'none'; frame-ancestors 'none'",
            csp_hash(inline_block(TEMPLATE, "script")),
            csp_hash(inline_block(TEMPLATE, "style")),
        )
    });
    &POLICY
}

/// The text between `<tag>` and `</tag>` (the first such block), as the browser hashes it.
fn inline_block<'a>(html: &'a str, tag: &str) -> &'a str {
    let open = format!("<{tag}>");
    let close = format!("</{tag}>");
    html.split_once(open.as_str())
        .and_then(|(_, rest)| rest.split_once(close.as_str()))
        .map(|(block, _)| block)
        .unwrap_or_default()
}

/// `sha256-<base64>` of a script or style block (CSP Level 2 hash source).
fn csp_hash(block: &str) -> String {
    format!(
        "sha256-{}",
        base64::engine::general_purpose::STANDARD.encode(Sha256::digest(block.as_bytes()))
    )
}

/// Renders the page for the handler serving `/pgwy/ast` (its PIN policy and profiles) and its
/// token procedure (a `per-purpose` one is explained: the download is a zip).
pub fn render(handler: Option<&Handler>, procedure: Option<&TokenProcedure>) -> String {
    let (min, max, ascii_only, legacy) = match handler {
        Some(h) => (
            h.password_policy.min_length,
            h.password_policy.max_length,
            h.password_policy.pattern_source == DEFAULT_PIN_PATTERN,
            h.pkcs12_profiles.contains(&Pkcs12Profile::Legacy)
                && h.pkcs12_profile != Pkcs12Profile::Legacy,
        ),
        None => (6, 128, true, false),
    };
    let legacy_html = if legacy {
        "<label class=\"check\"><input type=\"checkbox\" name=\"profile\" value=\"legacy\" aria-describedby=\"legacy-hint\"> \
         File for older devices</label><p id=\"legacy-hint\" class=\"hint\">Choose this for Windows Server 2016 or older, \
         macOS 12 or older, Android 12 or older. It uses weaker (3DES) protection.</p>"
    } else {
        ""
    };
    TEMPLATE
        .replace("{{ACTION}}", "/pgwy/ast")
        .replace("{{MIN}}", &min.to_string())
        .replace("{{MAX}}", &max.to_string())
        .replace("{{ASCII_ONLY}}", if ascii_only { "true" } else { "false" })
        .replace(
            "{{PATTERN_HINT}}",
            if ascii_only {
                ", letters, digits, spaces and ASCII punctuation"
            } else {
                ""
            },
        )
        .replace("{{LEGACY}}", legacy_html)
        .replace("{{LAYOUT}}", &layout_html(procedure))
}

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

    #[test]
    fn the_policy_allows_exactly_the_rendered_inline_blocks() {
        let page = render(None, None);
        let policy = content_security_policy();
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
    }

    #[test]
    fn a_per_purpose_procedure_is_explained_and_the_policy_still_holds() {
        use crate::rules::{CertificateTemplate, TokenProcedure};
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
        };
        let mut procedure = TokenProcedure {
            name: "p".into(),
            layout: Layout::PerPurpose,
            certificates: vec![template("authentication"), template("<sign>")],
        };
        let page = render(None, Some(&procedure));
        assert!(
            page.contains("a zip file with 2 certificate files"),
            "{page}"
        );
        assert!(page.contains("<li>authentication</li><li>&lt;sign&gt;</li>"));
        for tag in ["script", "style"] {
            assert!(content_security_policy().contains(&csp_hash(inline_block(&page, tag))));
        }
        procedure.layout = Layout::Combined;
        let page = render(None, Some(&procedure));
        assert!(!page.contains("zip") && !page.contains("{{"));
    }

    #[test]
    fn the_hash_is_the_standard_one() {
        // echo -n 'alert(1)' | openssl dgst -sha256 -binary | base64
        assert_eq!(
            csp_hash("alert(1)"),
            "sha256-bhHHL3z2vDgxUt0W3dWQOrprscmda2Y5pLsLg4GF+pI="
        );
    }
}
