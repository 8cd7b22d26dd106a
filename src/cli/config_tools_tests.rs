//! Tests of `cli/config_tools.rs`.

use super::*;

#[test]
fn header_arguments() {
    assert_eq!(
        parse_header_argument("commonname: Alice A").unwrap(),
        ("commonname".into(), "Alice A".into())
    );
    assert_eq!(
        parse_header_argument("x:").unwrap(),
        ("x".into(), String::new())
    );
    let e = parse_header_argument("nocolon").unwrap_err().to_string();
    assert!(e.contains("is not a header; write -H"), "{e}");
    let e = parse_header_argument("bad name: v")
        .unwrap_err()
        .to_string();
    assert!(e.contains("`bad name` is not a header name"), "{e}");
}
