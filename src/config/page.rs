//! PIN page templates: `conf/pages/ast.html` replaces the bundled page for every handler,
//! `conf/pages/handler.<n>.html` for handler `<n>` alone. A template is one self-contained HTML
//! file (its own title, texts and language) with placeholders for the handler's values:
//!
//! | placeholder | value |
//! | --- | --- |
//! | `{{ACTION}}` (required) | the URL the form posts to (`/pgwy/ast/<path>`) |
//! | `{{MIN}}`, `{{MAX}}` | the PIN's least and greatest length |
//! | `{{ASCII_ONLY}}` | `true` when the PIN must be printable ASCII, else `false` |
//! | `{{HANDLER}}` | the handler number |
//! | `{{PROFILE}}`, `{{PROFILES}}` | the default PKCS#12 profile, the offered ones (`modern, legacy`) |
//! | `{{PATTERN_HINT}}`, `{{LEGACY}}` | the bundled page's English hint and legacy checkbox |
//! | `{{#ascii}}…{{/ascii}}`, `{{^ascii}}…{{/ascii}}` | kept when the PIN is (is not) ASCII-only |
//! | `{{#legacy}}…{{/legacy}}`, `{{^legacy}}…{{/legacy}}` | kept when the legacy profile can (cannot) be chosen |
//! | `{{PERSON}}`, `{{CERTIFICATES}}` | whom the certificates are for (the first one's common name), and one `<li>` per certificate (purpose, lifetime, subject, other names) |
//! | `{{#person}}…{{/person}}` | kept when the page knows the person (the front's identity headers reached it and would be accepted) |
//! | `{{REFUSAL}}`, `{{REFUSAL_CODE}}`, `{{REQUEST_ID}}` | why the form would be refused, in words; its error code; the page's request id |
//! | `{{#refused}}…{{/refused}}`, `{{^refused}}…{{/refused}}` | kept when the form would (would not) be refused |
//!
//! The page is served with a Content-Security-Policy that allows its inline `<script>` and
//! `<style>` blocks by SHA-256 hash, computed here when the template is loaded (at start and on
//! reload). So a template is refused when a hash could not cover it: a placeholder inside a
//! script or style block, a `<script>`/`<style>` tag with attributes (external scripts),
//! `<link>`, inline event handlers (`onclick=`) or `style=` attributes. Every problem is
//! reported with its line.
//!
//! Here: the template types, loading `conf/pages/` and the checks of a whole template; the
//! template syntax (placeholders, sections, inline blocks, blocked constructs) is `page/syntax.rs`.

mod syntax;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use base64::Engine;
use sha2::{Digest, Sha256};

use self::syntax::{inline_blocks, line_of, report_blocked, tokens};
use super::{ConfigError, ConfigErrors, Root};

/// The values a template may insert.
pub const PAGE_PLACEHOLDERS: &[&str] = &[
    "ACTION",
    "MIN",
    "MAX",
    "ASCII_ONLY",
    "HANDLER",
    "PROFILE",
    "PROFILES",
    "PATTERN_HINT",
    "LEGACY",
    "LAYOUT",
    "PERSON",
    "CERTIFICATES",
    "REFUSAL",
    "REFUSAL_CODE",
    "REQUEST_ID",
];

/// The conditions a template may test with `{{#name}}` / `{{^name}}`.
pub const PAGE_SECTIONS: &[&str] = &["ascii", "legacy", "person", "refused"];

/// Larger templates are refused (a page is a few kilobytes).
pub const MAX_PAGE_TEMPLATE_BYTES: usize = 256 * 1024;

/// One piece of a parsed template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PagePiece {
    Text(String),
    /// `{{NAME}}`, one of [`PAGE_PLACEHOLDERS`].
    Value(&'static str),
    /// `{{#name}}` (or `{{^name}}`, `inverted`), one of [`PAGE_SECTIONS`].
    Open {
        section: &'static str,
        inverted: bool,
    },
    /// `{{/name}}`.
    Close,
}

/// A checked PIN page template and the CSP hashes of its inline blocks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageTemplate {
    /// The file it came from; `None` for the bundled page.
    pub source: Option<PathBuf>,
    pieces: Vec<PagePiece>,
    script_hashes: Vec<String>,
    style_hashes: Vec<String>,
}

impl PageTemplate {
    /// Parses and checks a template; `source` names the file in messages (`None`: bundled).
    pub fn parse(source: Option<&Path>, text: &str) -> Result<PageTemplate, ConfigErrors> {
        let file = source.map_or_else(|| PathBuf::from("(bundled PIN page)"), Path::to_path_buf);
        let mut errors = Vec::new();
        let mut fail = |offset: usize, message: String| {
            errors.push(ConfigError::at(
                &file,
                Some(line_of(text, offset)),
                None,
                message,
            ));
        };
        if text.len() > MAX_PAGE_TEMPLATE_BYTES {
            fail(
                0,
                format!(
                    "the template is {} bytes; at most {MAX_PAGE_TEMPLATE_BYTES} are allowed",
                    text.len()
                ),
            );
            return Err(ConfigErrors(errors));
        }
        let pieces = tokens(text, &mut fail);
        let (script_hashes, style_hashes) = inline_hashes(text, &mut fail);
        report_blocked(text, &mut fail);
        if !pieces.contains(&PagePiece::Value("ACTION")) {
            fail(
                0,
                "the template has no {{ACTION}}: the form must post to it (<form method=\"post\" \
                 action=\"{{ACTION}}\">)"
                    .into(),
            );
        }
        if errors.is_empty() {
            Ok(PageTemplate {
                source: source.map(Path::to_path_buf),
                pieces,
                script_hashes,
                style_hashes,
            })
        } else {
            Err(ConfigErrors(errors))
        }
    }

    /// The parsed pieces, in order.
    pub fn pieces(&self) -> &[PagePiece] {
        &self.pieces
    }

    /// `sha256-…` of each inline `<script>` block.
    pub fn script_hashes(&self) -> &[String] {
        &self.script_hashes
    }

    /// `sha256-…` of each inline `<style>` block.
    pub fn style_hashes(&self) -> &[String] {
        &self.style_hashes
    }
}

/// The templates found in `conf/pages/`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PageTemplates {
    /// `ast.html`: every handler without its own.
    pub default: Option<PageTemplate>,
    /// `handler.<n>.html`, by handler number.
    pub handlers: BTreeMap<u32, PageTemplate>,
}

impl PageTemplates {
    /// The template for handler `number`, if the operator gave one.
    pub fn for_handler(&self, number: u32) -> Option<&PageTemplate> {
        self.handlers.get(&number).or(self.default.as_ref())
    }
}

/// Reads and checks every template in `conf/pages/` (none there: the bundled page serves).
/// Other `.html` names are refused (a typo would silently leave the bundled page in place);
/// other files are ignored. Whether `handler.<n>` exists is checked with the rules (reload,
/// `config check`).
pub fn load_page_templates(root: &Root) -> Result<PageTemplates, ConfigErrors> {
    let dir = root.pages();
    let entries = match std::fs::read_dir(&dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Ok(PageTemplates::default());
        }
        Err(e) => {
            return Err(ConfigErrors(vec![ConfigError::at(
                &dir,
                None,
                None,
                format!("cannot read the directory: {e}"),
            )]));
        }
    };
    let mut templates = PageTemplates::default();
    let mut errors = Vec::new();
    let mut paths: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
    paths.sort();
    for path in paths {
        let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
            continue;
        };
        if !name.ends_with(".html") {
            continue;
        }
        let handler = match name {
            "ast.html" => None,
            _ => match name
                .strip_prefix("handler.")
                .and_then(|n| n.strip_suffix(".html"))
                .and_then(|n| n.parse::<u32>().ok())
            {
                Some(n) => Some(n),
                None => {
                    errors.push(ConfigError::at(
                        &path,
                        None,
                        None,
                        "not a PIN page name: use ast.html (every handler) or handler.<n>.html \
                         (handler <n> of ast.properties)",
                    ));
                    continue;
                }
            },
        };
        match read_template(&path) {
            Ok(template) => match handler {
                None => templates.default = Some(template),
                Some(n) => {
                    templates.handlers.insert(n, template);
                }
            },
            Err(mut e) => errors.append(&mut e.0),
        }
    }
    if errors.is_empty() {
        Ok(templates)
    } else {
        Err(ConfigErrors(errors))
    }
}

fn read_template(path: &Path) -> Result<PageTemplate, ConfigErrors> {
    let fail = |message: String| ConfigErrors(vec![ConfigError::at(path, None, None, message)]);
    let size = std::fs::metadata(path)
        .map_err(|e| fail(format!("cannot read the file: {e}")))?
        .len();
    if size > MAX_PAGE_TEMPLATE_BYTES as u64 {
        return Err(fail(format!(
            "the template is {size} bytes; at most {MAX_PAGE_TEMPLATE_BYTES} are allowed"
        )));
    }
    let bytes = std::fs::read(path).map_err(|e| fail(format!("cannot read the file: {e}")))?;
    let text = String::from_utf8(bytes).map_err(|e| {
        fail(format!(
            "the template is not UTF-8 (byte {})",
            e.utf8_error().valid_up_to()
        ))
    })?;
    PageTemplate::parse(Some(path), &text)
}

/// The CSP hashes of the inline `<script>` blocks, then of the `<style>` blocks; a block with a
/// placeholder is reported.
fn inline_hashes(text: &str, fail: &mut impl FnMut(usize, String)) -> (Vec<String>, Vec<String>) {
    let mut script_hashes = Vec::new();
    let mut style_hashes = Vec::new();
    for (tag, hashes) in [("script", &mut script_hashes), ("style", &mut style_hashes)] {
        for block in inline_blocks(text, tag, fail) {
            if block.text.contains("{{") {
                fail(
                    block.offset,
                    format!(
                        "a placeholder inside <{tag}> would change the block's CSP hash on \
                         every request; pass values through attributes (as the bundled page \
                         does with data-ascii-only, minlength and maxlength)"
                    ),
                );
            }
            hashes.push(csp_hash(block.text));
        }
    }
    (script_hashes, style_hashes)
}

/// `sha256-<base64>` of a script or style block (CSP Level 2 hash source).
pub fn csp_hash(block: &str) -> String {
    format!(
        "sha256-{}",
        base64::engine::general_purpose::STANDARD.encode(Sha256::digest(block.as_bytes()))
    )
}

#[cfg(test)]
#[path = "page_tests.rs"]
mod tests;
