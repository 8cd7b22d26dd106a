//! The claim encodings of docs/deploy-sso.md's table, with both users, and forged identity
//! headers from the browser, with and without the document's strip lines.

use std::process::Command;

use super::{Sso, doc, forged, nothing_forged, tools};
use crate::form::config::BIN;
use crate::trust::sso_front::{contains, leaf};

/// The `RequestHeader unset … early` lines of the document's site are exactly what `config
/// front-headers --front apache` prints for the document's handler.
fn documented_strip_lines_are_printed(sso: &Sso) {
    let printed = Command::new(BIN)
        .arg("--root")
        .arg(sso.gw.root.path())
        .args(["config", "front-headers", "--front", "apache"])
        .output()
        .unwrap();
    assert!(printed.status.success());
    let printed: Vec<String> = String::from_utf8(printed.stdout)
        .unwrap()
        .lines()
        .filter(|l| l.starts_with("RequestHeader unset"))
        .map(str::to_string)
        .collect();
    let site = doc::block("apache", "/etc/apache2/sites-available/ast-gateway.conf");
    let documented: Vec<String> = site
        .lines()
        .map(str::trim)
        .filter(|l| is_strip_line(l))
        .map(str::to_string)
        .collect();
    assert_eq!(documented, printed);
    assert_eq!(documented.len(), 4);
}

fn is_strip_line(line: &str) -> bool {
    let line = line.trim();
    line.starts_with("RequestHeader unset") && line.ends_with(" early")
}

/// The doc's strip lines are what `config front-headers --front apache` prints for the doc's
/// handler; forged headers from the browser reach no certificate (a user without an e-mail claim
/// included), and without the strip lines the forged e-mail would; each claim encoding of the
/// doc's table gives both users the subject it says.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sso_claim_encodings_and_forged_headers() {
    let Some(tools) = tools("sso_claim_encodings_and_forged_headers") else {
        return;
    };
    let mut sso = Sso::start(tools).await;
    documented_strip_lines_are_printed(&sso);

    // (OIDCPassClaimsAs, header_encoding, Zoë's CN, Taro's CN), as the doc's table says.
    let rows = [
        (
            "environment base64url",
            "base64url",
            "Zoë Ångström",
            "𠮷田 太郎",
        ),
        ("environment", "utf-8", "Zoë Ångström", "𠮷田 太郎"),
        ("environment latin1", "latin-1", "Zoë Ångström", "?? ??"),
    ];
    let table = doc::TEXT;
    for (claims, encoding, zoe, taro) in rows {
        let row = format!("| `OIDCPassClaimsAs {claims}` | `\"{encoding}\"` |");
        assert!(table.contains(&row), "the doc's table has no row {row}");
        doc::set_header_encoding(&sso.gw.root().gateway_toml(), encoding);
        sso.gw.gateway.reload().unwrap();
        sso.restart_apache(|site| {
            doc::substitute(
                &site,
                &[(
                    "OIDCPassClaimsAs environment base64url",
                    format!("OIDCPassClaimsAs {claims}"),
                )],
            )
        });
        for (user, name) in [("zoe", zoe), ("taro", taro)] {
            let (shown, token) = sso.token(user, &forged()).await;
            assert_eq!(shown["page"]["person"], name, "{claims}: {shown}");
            let (der, subject) = leaf(&token);
            assert!(
                subject.starts_with(&format!("CN={name}"))
                    || subject.contains(&format!("CN={name},")),
                "{claims}: {subject}"
            );
            nothing_forged(&der);
            assert_eq!(
                contains(&der, "zoe.angstrom@example.org"),
                user == "zoe",
                "{claims}: {user}'s e-mail"
            );
        }
    }

    // The control: the same site without its strip lines forwards the browser's forgery for a
    // user without an e-mail claim.
    sso.restart_apache(|site| {
        site.lines()
            .filter(|l| !is_strip_line(l))
            .collect::<Vec<_>>()
            .join("\n")
    });
    let (_, token) = sso.token("taro", &forged()).await;
    assert!(
        contains(&leaf(&token).0, "ceo@example.org"),
        "the forgery works without the strip lines"
    );
}
