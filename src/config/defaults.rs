//! The embedded default configuration files, written by `init` and by the first `serve` on an
//! empty root (the demo CA beside them is made by `ca`, composed in `issuance::init`).

use std::net::SocketAddr;
use std::path::Path;

use super::Root;

/// Default `conf/gateway.toml`.
pub const DEFAULT_GATEWAY_TOML: &str = include_str!("default/gateway.toml");
/// Default `conf/ast.properties`.
pub const DEFAULT_AST_PROPERTIES: &str = include_str!("default/ast.properties");
/// Default `conf/api.properties`.
pub const DEFAULT_API_PROPERTIES: &str = include_str!("default/api.properties");
/// Default `conf/formats/ast-default.format`.
pub const DEFAULT_FORMAT: &str = include_str!("default/ast-default.format");

/// Why the default could not be written.
#[derive(Debug, thiserror::Error)]
pub enum InitError {
    #[error("{0} already exists; refusing to overwrite an existing configuration")]
    Exists(String),
    #[error("{path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error(transparent)]
    Ca(#[from] crate::ca::CaError),
    #[error("{0}")]
    Secret(String),
}

fn write_new(path: &Path, text: &str) -> Result<(), InitError> {
    let io = |source| InitError::Io {
        path: path.display().to_string(),
        source,
    };
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(io)?;
    }
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
        .and_then(|mut f| std::io::Write::write_all(&mut f, text.as_bytes()))
        .map_err(io)
}

/// What a new root gets beyond the embedded default: the HTTP listener and the public URL
/// that the demo CA certificates (and later every issued certificate) point relying parties at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InitSettings {
    /// `[server] http`.
    pub http: SocketAddr,
    /// `[server] public_url`, without a trailing slash.
    pub public_url: String,
    /// True when `public_url` was derived from `http` rather than given.
    pub derived: bool,
}

impl InitSettings {
    /// The embedded default's listener, 127.0.0.1:8080, and its URL.
    pub fn embedded() -> Self {
        let http = SocketAddr::from(([127, 0, 0, 1], 8080));
        InitSettings {
            http,
            public_url: format!("http://{http}"),
            derived: true,
        }
    }

    /// One line for the operator: where certificates will point, and where it came from.
    pub fn describe(&self) -> String {
        let origin = if self.derived {
            format!(
                "derived from the HTTP listener {}; set [server] public_url (or `init --public-url`) \
                 to the URL relying parties use if it differs",
                self.http
            )
        } else {
            "as given".to_string()
        };
        format!(
            "public_url = {}: the CA certificates and every issued certificate point relying parties there \
             for CRLs, OCSP and CA certificates ({origin})",
            self.public_url
        )
    }
}

/// Writes the default configuration files (with `settings` as `[server] http` and
/// `public_url`) and the root's secret key. Refuses when a configuration exists already.
/// gateway.toml is written last: its presence marks an initialised root.
pub fn write_default_files(
    root: &Root,
    settings: &InitSettings,
    names: &crate::ca::CaNames,
) -> Result<(), InitError> {
    for existing in [root.gateway_toml(), root.ast_properties()] {
        if existing.exists() {
            return Err(InitError::Exists(existing.display().to_string()));
        }
    }
    super::SecretKey::load_or_create(root).map_err(InitError::Secret)?;
    write_new(&root.formats().join("ast-default.format"), DEFAULT_FORMAT)?;
    write_new(&root.ast_properties(), DEFAULT_AST_PROPERTIES)?;
    write_new(&root.api_properties(), DEFAULT_API_PROPERTIES)?;
    write_new(&root.gateway_toml(), &gateway_toml(settings, names))?;
    Ok(())
}

/// The embedded gateway.toml with the `[server]` `http` and `public_url` lines set, and the
/// three CAs under `names` (their blocks, files, parents, the token procedures' `ca` and the
/// commented `client_ca`).
fn gateway_toml(settings: &InitSettings, names: &crate::ca::CaNames) -> String {
    let renamed = renamed_lines(names);
    let mut text = String::with_capacity(DEFAULT_GATEWAY_TOML.len() + 64);
    for line in DEFAULT_GATEWAY_TOML.lines() {
        let (comment, content) = match line.strip_prefix("# ") {
            Some(rest) => ("# ", rest),
            None => ("", line),
        };
        if let Some((_, to)) = renamed.iter().find(|(from, _)| from == content) {
            text.push_str(comment);
            text.push_str(to);
        } else if line.starts_with("http = ") {
            text.push_str(&format!("http = \"{}\"", settings.http));
        } else if line.starts_with("public_url = ") {
            text.push_str(&format!(
                "public_url = \"{}\"",
                settings.public_url.trim_end_matches('/')
            ));
        } else {
            text.push_str(line);
        }
        text.push('\n');
    }
    text
}

/// The lines of the embedded gateway.toml that name the default CAs, and what they become
/// under `names` (whole lines, without a leading `# `).
fn renamed_lines(names: &crate::ca::CaNames) -> Vec<(String, String)> {
    let q = |s: &str| serde_json::to_string(s).unwrap_or_else(|_| format!("\"{s}\""));
    let mut lines = Vec::new();
    for (default, name) in [
        ("root", &names.root),
        ("issuing", &names.issuing),
        ("officers", &names.officers),
    ] {
        if default == name {
            continue;
        }
        lines.push((
            format!("name = \"{default}\""),
            format!("name = {}", q(name)),
        ));
        for (key, extension) in [("certificate", "pem"), ("key", "key")] {
            lines.push((
                format!("{key} = \"data/ca/{default}.{extension}\""),
                format!("{key} = {}", q(&format!("data/ca/{name}.{extension}"))),
            ));
        }
    }
    lines.push((
        "parent = \"root\"".into(),
        format!("parent = {}", q(&names.root)),
    ));
    lines.push((
        "ca = \"issuing\"".into(),
        format!("ca = {}", q(&names.issuing)),
    ));
    lines.push((
        "client_ca = \"data/ca/officers.pem\"".into(),
        format!(
            "client_ca = {}",
            q(&format!("data/ca/{}.pem", names.officers))
        ),
    ));
    lines
}

#[cfg(test)]
mod tests {
    use super::{DEFAULT_GATEWAY_TOML, InitSettings, gateway_toml};

    #[test]
    fn the_embedded_settings_leave_the_file_as_it_is() {
        assert_eq!(
            gateway_toml(&InitSettings::embedded(), &crate::ca::CaNames::default()),
            DEFAULT_GATEWAY_TOML
        );
    }

    #[test]
    fn listener_and_public_url_are_written() {
        let text = gateway_toml(
            &InitSettings {
                http: "10.1.2.3:9000".parse().unwrap(),
                public_url: "https://pki.example.com/".into(),
                derived: false,
            },
            &crate::ca::CaNames::default(),
        );
        assert!(text.contains("\nhttp = \"10.1.2.3:9000\"\n"), "{text}");
        assert!(
            text.contains("\npublic_url = \"https://pki.example.com\"\n"),
            "{text}"
        );
        assert_eq!(text.matches("public_url = ").count(), 1);
    }

    #[test]
    fn the_ca_names_are_written_everywhere_they_are_named() {
        let names = crate::ca::CaNames {
            root: "acme-root".into(),
            issuing: "acme-tokens".into(),
            officers: "acme-staff".into(),
        };
        let text = gateway_toml(&InitSettings::embedded(), &names);
        for expected in [
            "\nname = \"acme-root\"\ncertificate = \"data/ca/acme-root.pem\"\nkey = \"data/ca/acme-root.key\"\n",
            "\nname = \"acme-tokens\"\ncertificate = \"data/ca/acme-tokens.pem\"\nkey = \"data/ca/acme-tokens.key\"\nparent = \"acme-root\"\n",
            "\nname = \"acme-staff\"\ncertificate = \"data/ca/acme-staff.pem\"\nkey = \"data/ca/acme-staff.key\"\nparent = \"acme-root\"\nrole = \"officers\"\n",
            "\n# client_ca = \"data/ca/acme-staff.pem\"\n",
            "\nca = \"acme-tokens\"\n",
            "\n# ca = \"acme-tokens\"\n",
        ] {
            assert!(text.contains(expected), "{expected}\n{text}");
        }
        for default in [
            "name = \"root\"",
            "name = \"issuing\"",
            "name = \"officers\"",
            "parent = \"root\"",
            "ca = \"issuing\"",
            "data/ca/root.",
            "data/ca/issuing.",
            "data/ca/officers.",
        ] {
            assert!(!text.contains(default), "{default} is left in:\n{text}");
        }
        assert_eq!(text.lines().count(), DEFAULT_GATEWAY_TOML.lines().count());
    }
}
