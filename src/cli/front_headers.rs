//! `config front-headers`: the authenticating front's lines that remove every request header
//! the gateway reads, generated from the live configuration so that a front recipe cannot fall
//! behind the formats. A header the front does not set from the authentication and does not
//! remove reaches the gateway as the browser sent it.

use std::process::ExitCode;

use super::load_config;
use super::output::outln;
use crate::config::Root;

/// The kind of front.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Front {
    /// Apache httpd (mod_headers): `RequestHeader unset <h> early`.
    Apache,
    /// nginx: `proxy_set_header <h> "";` (an empty value is not sent).
    Nginx,
}

/// Prints the strip list for `front`.
pub(super) fn run(root: &Root, front: Front) -> anyhow::Result<ExitCode> {
    let config = load_config(root)?;
    for line in strip_lines(&config.rules, front) {
        outln!("{line}");
    }
    Ok(ExitCode::SUCCESS)
}

/// The comment lines and one removal per header an enabled handler reads.
pub fn strip_lines(rules: &crate::rules::Rules, front: Front) -> Vec<String> {
    let handlers: Vec<String> = rules
        .handlers
        .iter()
        .map(|h| format!("handler.{}", h.number))
        .collect();
    let mut lines = vec![format!(
        "# Every request header the gateway reads ({}), removed from what the browser sent.",
        handlers.join(", ")
    )];
    match front {
        Front::Apache => lines.push(
            "# Server or VirtualHost context (`early` runs before authentication); then set the \
             identity headers with RequestHeader set <h> \"%{OIDC_CLAIM_<claim>}e\" env=OIDC_CLAIM_<claim>"
                .into(),
        ),
        Front::Nginx => lines.push(
            "# In the location that proxies to the gateway; a header you set from the \
             authentication replaces its line here (one proxy_set_header per header)"
                .into(),
        ),
    }
    lines.extend(rules.headers_read().into_iter().map(|h| match front {
        Front::Apache => format!("RequestHeader unset {h} early"),
        Front::Nginx => format!("proxy_set_header {h} \"\";"),
    }));
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_header_of_the_default_format() {
        let dir = tempfile::tempdir().unwrap();
        let root = Root::new(dir.path());
        crate::issuance::write_default(&root).unwrap();
        let rules = crate::rules::load(&root).unwrap().rules;
        let apache = strip_lines(&rules, Front::Apache);
        for h in [
            "commonname",
            "givenname",
            "surname",
            "country",
            "locality",
            "organization",
            "organizationalunit",
            "serialnumber",
            "email",
            "upn",
        ] {
            assert!(
                apache.contains(&format!("RequestHeader unset {h} early")),
                "{h}: {apache:#?}"
            );
        }
        let nginx = strip_lines(&rules, Front::Nginx);
        assert!(nginx.contains(&"proxy_set_header upn \"\";".to_string()));
        assert_eq!(apache.len(), nginx.len());
    }
}
