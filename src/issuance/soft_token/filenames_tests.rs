//! Tests of `issuance/soft_token/filenames.rs`.

use super::{per_purpose_stem, sanitise_filename, unique_name};

#[test]
fn per_purpose_names() {
    assert_eq!(
        per_purpose_stem("Hanna Ström", "signing"),
        "Hanna Ström signing"
    );
    assert_eq!(per_purpose_stem("..", "a/b"), "token a_b");
    let long = "x".repeat(100);
    assert_eq!(
        per_purpose_stem(&long, "authentication"),
        format!("{} authentication", "x".repeat(64)),
        "a long name keeps its purpose"
    );
    let taken = ["A sign_1.p12", "a sign_1 (2).p12"];
    assert_eq!(
        unique_name("A sign_1", |n| taken
            .iter()
            .any(|t| t.eq_ignore_ascii_case(n))),
        "A sign_1 (3).p12"
    );
    assert_eq!(unique_name("A x", |_| false), "A x.p12");
}

#[test]
fn filenames() {
    assert_eq!(sanitise_filename("Alice Andersson"), "Alice Andersson.p12");
    assert_eq!(sanitise_filename("a\"b\r\nc/../d"), "a_b__c_.._d.p12");
    assert_eq!(sanitise_filename("Åsa Öberg"), "Åsa Öberg.p12");
    assert_eq!(sanitise_filename("𠮷田 太郎"), "𠮷田 太郎.p12");
    assert_eq!(sanitise_filename("A\u{30A}sa"), "A\u{30A}sa.p12");
    assert_eq!(
        sanitise_filename("\u{202E}gpj.exe\u{200B}A😀"),
        "_gpj.exe_A_.p12"
    );
    assert_eq!(sanitise_filename(".."), "token.p12");
}
