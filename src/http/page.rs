//! The bundled PIN page: self-contained, keyboard-usable, readable on a phone.

use crate::rules::DEFAULT_PIN_PATTERN;
use crate::rules::Handler;
use crate::token::Pkcs12Profile;

const TEMPLATE: &str = include_str!("ast.html");

/// Renders the page for the handler serving `/pgwy/ast` (its PIN policy and profiles).
pub fn render(handler: Option<&Handler>) -> String {
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
}
