//! docs/deploy-sso.md as the test runs it: its configuration blocks (a fenced block whose first
//! line is `# sso: <file>`), with the document's host names, ports and paths replaced by the
//! test's. Each replacement must find its text, so a document that drifts fails here.

use std::path::Path;

/// The document.
pub const TEXT: &str = include_str!("../../../../docs/deploy-sso.md");

/// The fenced block of `language` whose first line is `# sso: <file>`, without that line.
pub fn block(language: &str, file: &str) -> String {
    let fence = format!("```{language}\n# sso: {file}\n");
    let start = TEXT
        .find(&fence)
        .unwrap_or_else(|| panic!("docs/deploy-sso.md has no ```{language} block `# sso: {file}`"))
        + fence.len();
    let end = start + TEXT[start..].find("```").expect("the block ends");
    TEXT[start..end].to_string()
}

/// `text` with each `(from, to)` replaced everywhere; every `from` must occur.
pub fn substitute(text: &str, replacements: &[(&str, String)]) -> String {
    let mut out = text.to_string();
    for (from, to) in replacements {
        assert!(
            out.contains(from),
            "docs/deploy-sso.md changed: `{from}` is not in the block any more:\n{out}"
        );
        out = out.replace(from, to);
    }
    out
}

/// The value of an Apache directive in `block` (`OIDCClientID ast-gateway` → `ast-gateway`),
/// without quotes.
pub fn directive(block: &str, name: &str) -> String {
    block
        .lines()
        .map(str::trim)
        .find_map(|l| l.strip_prefix(name).filter(|rest| rest.starts_with(' ')))
        .unwrap_or_else(|| panic!("no {name} in the Apache block"))
        .trim()
        .trim_matches('"')
        .to_string()
}

/// Sets every `key = value` of the documented TOML `block` in the gateway.toml at `path`,
/// replacing the key's line (or its commented-out example) in the same section.
pub fn apply_toml(path: &Path, block: &str) {
    let mut lines: Vec<String> = std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect();
    let mut section = String::new();
    for line in block.lines().map(str::trim) {
        if line.starts_with('[') {
            section = line.to_string();
            continue;
        }
        let Some((key, _)) = line.split_once(" = ") else {
            continue;
        };
        let mut current = String::new();
        let at = lines.iter().position(|l| {
            if l.starts_with('[') {
                current = l.trim().to_string();
            }
            current == section
                && [format!("{key} = "), format!("# {key} = ")]
                    .iter()
                    .any(|p| l.starts_with(p.as_str()))
        });
        let at = at.unwrap_or_else(|| panic!("gateway.toml has no `{key}` under {section}"));
        lines[at] = line.to_string();
    }
    std::fs::write(path, lines.join("\n") + "\n").unwrap();
}

/// Replaces the `[trust] header_encoding` line of the gateway.toml at `path`.
pub fn set_header_encoding(path: &Path, encoding: &str) {
    apply_toml(
        path,
        &format!("[trust]\nheader_encoding = \"{encoding}\"\n"),
    );
}
