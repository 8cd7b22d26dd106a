//! What the PIN page says about the person, over plain HTTP: it names the person and the
//! certificates when a believed front sends the identity, explains a refusal instead of showing
//! the form, names no one without identity headers, and never evaluates headers from a caller
//! the handler does not believe. Nothing is issued or written by a page.

use crate::kit::{TestGateway, client};

/// The PIN page with `headers`.
async fn page(gw: &TestGateway, headers: &[(&str, &str)]) -> String {
    let mut request = client().get(format!("{}/pgwy/request/ast.html", gw.base));
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = request.send().await.unwrap();
    assert_eq!(response.status(), 200);
    response.text().await.unwrap()
}

#[tokio::test]
async fn pin_page_names_the_person_only_for_a_believed_front() {
    let gw = TestGateway::start().await;
    let zoe = [
        ("commonname", "Zoë Ångström"),
        ("country", "SE"),
        ("email", "zoe@example.org"),
    ];
    let named = page(&gw, &zoe).await;
    assert!(
        named.contains("<p id=\"person\">Zoë Ångström</p>"),
        "{named}"
    );
    assert!(named.contains("<strong>authentication</strong>, valid 365 days"));
    assert!(named.contains("<strong>signing</strong>, valid 365 days"));
    assert!(named.contains("C=SE, CN=Zoë Ångström"), "{named}");
    assert!(named.contains("Also names: email:zoe@example.org"));
    assert!(named.contains("id=\"form\"") && !named.contains("id=\"refusal\""));

    // No identity header: the page names no one and offers the form.
    let nobody = page(&gw, &[]).await;
    assert!(!nobody.contains("id=\"person\"") && !nobody.contains("id=\"refusal\""));
    assert!(nobody.contains("id=\"form\""));

    // An identity that cannot be used: words for the user, the code, no form; the operator's
    // detail (the header's name) is not on the page.
    let refused = page(&gw, &[("country", "SE")]).await;
    assert!(refused.contains("id=\"refusal\"") && !refused.contains("id=\"form\""));
    assert!(
        refused.contains("could not be used for a certificate"),
        "{refused}"
    );
    assert!(refused.contains("<code id=\"refusal-code\">field-missing</code>"));
    assert!(!refused.contains("commonname"), "{refused}");
    assert_eq!(gw.gateway.store().count_certificates().await.unwrap(), 0);

    // A peer outside [trust] proxies: its headers are not evaluated, the page names no one.
    let untrusted = TestGateway::start_with(|root| {
        let toml = root.gateway_toml();
        let text = std::fs::read_to_string(&toml)
            .unwrap()
            .replace("proxies = [\"127.0.0.1/32\", \"::1/128\"]", "proxies = []");
        std::fs::write(toml, text).unwrap();
    })
    .await;
    for headers in [&zoe[..], &[("country", "SE")][..]] {
        let html = page(&untrusted, headers).await;
        assert!(
            !html.contains("id=\"person\"") && !html.contains("id=\"refusal\""),
            "{html}"
        );
        assert!(html.contains("id=\"form\""));
    }
}
