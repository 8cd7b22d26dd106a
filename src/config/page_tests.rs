//! Tests of `config/page.rs`.

use super::*;

fn errors(text: &str) -> String {
    PageTemplate::parse(Some(Path::new("conf/pages/ast.html")), text)
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default()
}

const MINIMAL: &str = "<!doctype html>\n<html lang=\"sv\"><head><style>p{}</style></head>\n\
    <body><form method=\"post\" action=\"{{ACTION}}\" data-ascii=\"{{ASCII_ONLY}}\">\n\
    {{#legacy}}<input name=\"profile\" value=\"legacy\" type=\"checkbox\">{{/legacy}}\n\
    </form><script>var a = 1;</script></body></html>\n";

#[test]
fn a_template_is_split_and_its_blocks_hashed() {
    let t = PageTemplate::parse(None, MINIMAL).unwrap();
    assert_eq!(t.script_hashes(), [csp_hash("var a = 1;")]);
    assert_eq!(t.style_hashes(), [csp_hash("p{}")]);
    let values: Vec<_> = t
        .pieces()
        .iter()
        .filter(|p| !matches!(p, PagePiece::Text(_)))
        .collect();
    assert_eq!(
        values,
        [
            &PagePiece::Value("ACTION"),
            &PagePiece::Value("ASCII_ONLY"),
            &PagePiece::Open {
                section: "legacy",
                inverted: false
            },
            &PagePiece::Close
        ]
    );
}

#[test]
fn the_hash_is_the_standard_one() {
    // echo -n 'alert(1)' | openssl dgst -sha256 -binary | base64
    assert_eq!(
        csp_hash("alert(1)"),
        "sha256-bhHHL3z2vDgxUt0W3dWQOrprscmda2Y5pLsLg4GF+pI="
    );
}

#[test]
fn problems_are_reported_with_their_line() {
    let e = errors("<form action=\"{{ACTION}}\">\n{{TITLE}}\n");
    assert!(
        e.contains("conf/pages/ast.html:2: unknown placeholder {{TITLE}}"),
        "{e}"
    );
    let e = errors("<p>no form</p>");
    assert!(e.contains("has no {{ACTION}}"), "{e}");
    let e = errors("{{ACTION}}\n<script>var x = \"{{MIN}}\";</script>");
    assert!(e.contains(":2: a placeholder inside <script>"), "{e}");
    let e = errors("{{ACTION}}\n\n<script src=\"https://cdn.example/x.js\"></script>");
    assert!(e.contains(":3: <script> with attributes"), "{e}");
    let e = errors("{{ACTION}}<button onclick=\"go()\">");
    assert!(e.contains("inline event handler"), "{e}");
    let e = errors("{{ACTION}}<p style=\"color:red\">");
    assert!(e.contains("style= attribute"), "{e}");
    let e = errors("{{ACTION}}<link rel=\"stylesheet\" href=\"x.css\">");
    assert!(e.contains("<link>"), "{e}");
    let e = errors("{{ACTION}}{{#ascii}}\n{{/legacy}}");
    assert!(
        e.contains(":2: {{/legacy}} closes the section {{#ascii}}"),
        "{e}"
    );
    let e = errors("{{ACTION}}\n{{#ascii}}");
    assert!(
        e.contains(":2: the section {{#ascii}} is never closed"),
        "{e}"
    );
    let e = errors("{{ACTION}}{{#french}}{{/french}}");
    assert!(e.contains("unknown section {{#french}}"), "{e}");
    let e = errors("{{ACTION}} {{MIN");
    assert!(e.contains("without a closing"), "{e}");
    let big = format!("{{{{ACTION}}}}{}", " ".repeat(MAX_PAGE_TEMPLATE_BYTES));
    assert!(errors(&big).contains("at most"));
    // Every problem at once.
    let e = errors("{{NOPE}}\n<p style=x>");
    assert_eq!(e.lines().count(), 3, "{e}");
}

#[test]
fn templates_are_found_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let root = Root::new(dir.path());
    assert_eq!(
        load_page_templates(&root).unwrap(),
        PageTemplates::default()
    );
    std::fs::create_dir_all(root.pages()).unwrap();
    std::fs::write(root.pages().join("ast.html"), MINIMAL).unwrap();
    std::fs::write(
        root.pages().join("handler.2.html"),
        MINIMAL.replace("sv", "de"),
    )
    .unwrap();
    std::fs::write(root.pages().join("README.txt"), "ignored").unwrap();
    let t = load_page_templates(&root).unwrap();
    assert!(t.default.is_some());
    assert_eq!(
        t.for_handler(2).and_then(|t| t.source.clone()),
        Some(root.pages().join("handler.2.html"))
    );
    assert_eq!(
        t.for_handler(1).and_then(|t| t.source.clone()),
        Some(root.pages().join("ast.html"))
    );
    std::fs::write(root.pages().join("staff.html"), MINIMAL).unwrap();
    let e = load_page_templates(&root).unwrap_err().to_string();
    assert!(e.contains("staff.html: not a PIN page name"), "{e}");
}
