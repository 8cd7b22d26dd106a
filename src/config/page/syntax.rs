//! The syntax of a PIN page template: `{{…}}` placeholders and sections, inline `<script>` and
//! `<style>` blocks, and the constructs the page's Content-Security-Policy would block. Each
//! problem goes to `fail` with its byte offset (the caller turns it into a line).

use std::sync::LazyLock;

use regex::Regex;

use super::{PAGE_PLACEHOLDERS, PAGE_SECTIONS, PagePiece};

/// The 1-based line of a byte offset.
pub(super) fn line_of(text: &str, offset: usize) -> usize {
    text.as_bytes()[..offset.min(text.len())]
        .iter()
        .filter(|b| **b == b'\n')
        .count()
        + 1
}

/// Splits the template into text, placeholders and sections, reporting unknown names and
/// unbalanced sections.
pub(super) fn tokens(text: &str, fail: &mut impl FnMut(usize, String)) -> Vec<PagePiece> {
    let mut pieces = Vec::new();
    let mut open: Vec<(&'static str, usize)> = Vec::new();
    let mut rest = 0;
    while let Some(found) = text[rest..].find("{{") {
        let start = rest + found;
        if start > rest {
            pieces.push(PagePiece::Text(text[rest..start].to_string()));
        }
        let Some(length) = text[start + 2..].find("}}") else {
            fail(start, "`{{` without a closing `}}`".into());
            return pieces;
        };
        let inner = text[start + 2..start + 2 + length].trim();
        rest = start + 2 + length + 2;
        match tag_piece(text, inner, start, &mut open, fail) {
            Some(p) => pieces.push(p),
            None => report_unknown(inner, start, fail),
        }
    }
    if rest < text.len() {
        pieces.push(PagePiece::Text(text[rest..].to_string()));
    }
    for (section, at) in open {
        fail(
            at,
            format!("the section {{{{#{section}}}}} is never closed with {{{{/{section}}}}}"),
        );
    }
    pieces
}

/// One of [`PAGE_SECTIONS`] by name.
fn section(name: &str) -> Option<&'static str> {
    PAGE_SECTIONS.iter().copied().find(|s| *s == name)
}

/// The piece the tag `{{inner}}` at `start` stands for, tracking the `open` sections. `None`
/// for an unknown name, and for a close that does not match (reported here).
fn tag_piece(
    text: &str,
    inner: &str,
    start: usize,
    open: &mut Vec<(&'static str, usize)>,
    fail: &mut impl FnMut(usize, String),
) -> Option<PagePiece> {
    if let Some(name) = inner.strip_prefix('#').or(inner.strip_prefix('^')) {
        section(name.trim()).map(|s| {
            open.push((s, start));
            PagePiece::Open {
                section: s,
                inverted: inner.starts_with('^'),
            }
        })
    } else if let Some(name) = inner.strip_prefix('/') {
        match (section(name.trim()), open.pop()) {
            (Some(s), Some((o, _))) if s == o => Some(PagePiece::Close),
            (Some(s), Some((o, at))) => {
                fail(
                    start,
                    format!(
                        "{{{{/{s}}}}} closes the section {{{{#{o}}}}} opened on line {}",
                        line_of(text, at)
                    ),
                );
                None
            }
            (Some(s), None) => {
                fail(
                    start,
                    format!("{{{{/{s}}}}} without an opening {{{{#{s}}}}}"),
                );
                None
            }
            (None, _) => None,
        }
    } else {
        PAGE_PLACEHOLDERS
            .iter()
            .copied()
            .find(|p| *p == inner)
            .map(PagePiece::Value)
    }
}

/// Reports the tag `{{inner}}` that gave no piece, unless it is a known section whose close
/// did not match (already reported).
fn report_unknown(inner: &str, start: usize, fail: &mut impl FnMut(usize, String)) {
    if inner.starts_with(['#', '^', '/']) {
        if section(inner[1..].trim()).is_none() {
            fail(
                start,
                format!(
                    "unknown section {{{{{inner}}}}}; sections: {}",
                    PAGE_SECTIONS.join(", ")
                ),
            );
        }
    } else {
        fail(
            start,
            format!(
                "unknown placeholder {{{{{inner}}}}}; placeholders: {}",
                PAGE_PLACEHOLDERS
                    .iter()
                    .map(|p| format!("{{{{{p}}}}}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        );
    }
}

/// An inline block's text (what the browser hashes) and where it starts.
pub(super) struct Block<'a> {
    pub(super) text: &'a str,
    pub(super) offset: usize,
}

/// Every `<tag>…</tag>` block (tag names in any case). A tag with attributes is reported:
/// `<script src=…>` loads nothing under the policy, and the hash covers bare blocks only.
pub(super) fn inline_blocks<'a>(
    text: &'a str,
    tag: &str,
    fail: &mut impl FnMut(usize, String),
) -> Vec<Block<'a>> {
    let lower = text.to_ascii_lowercase();
    let open = format!("<{tag}");
    let close = format!("</{tag}>");
    let mut blocks = Vec::new();
    let mut at = 0;
    while let Some(found) = lower[at..].find(&open) {
        let start = at + found;
        let after = start + open.len();
        match lower.as_bytes().get(after) {
            Some(b'>') => {}
            // `<scripts>` or `<style-x>` are other tags.
            Some(c) if c.is_ascii_alphanumeric() || *c == b'-' => {
                at = after;
                continue;
            }
            _ => {
                fail(
                    start,
                    format!(
                        "<{tag}> with attributes: only bare inline <{tag}> blocks are allowed \
                         (the page's Content-Security-Policy allows them by hash and loads \
                         nothing from elsewhere)"
                    ),
                );
                at = after;
                continue;
            }
        }
        let body = after + 1;
        let Some(length) = lower[body..].find(&close) else {
            fail(start, format!("<{tag}> is never closed with {close}"));
            return blocks;
        };
        blocks.push(Block {
            text: &text[body..body + length],
            offset: body,
        });
        at = body + length + close.len();
    }
    blocks
}

/// Reports the first inline event handler, `style=` attribute and `<link>`: the page's
/// Content-Security-Policy blocks them.
pub(super) fn report_blocked(text: &str, fail: &mut impl FnMut(usize, String)) {
    static BLOCKED: LazyLock<Vec<(Regex, &'static str)>> = LazyLock::new(|| {
        [
            (
                r"(?i)<[a-z][^>]*\son[a-z]+\s*=",
                "an inline event handler attribute (onclick=…) is blocked by the page's \
                 Content-Security-Policy; use addEventListener in the <script> block",
            ),
            (
                r"(?i)<[a-z][^>]*\sstyle\s*=",
                "a style= attribute is blocked by the page's Content-Security-Policy; use \
                 a class and the <style> block",
            ),
            (
                r"(?i)<link[\s>]",
                "<link> loads nothing under the page's Content-Security-Policy; the page must \
                 be one self-contained file (inline <style>, images as data: URLs)",
            ),
        ]
        .into_iter()
        .filter_map(|(pattern, message)| Regex::new(pattern).ok().map(|r| (r, message)))
        .collect()
    });
    for (pattern, message) in BLOCKED.iter() {
        if let Some(m) = pattern.find(text) {
            fail(m.start(), (*message).to_string());
        }
    }
}
