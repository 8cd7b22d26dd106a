//! CA names and subjects given on the command line: those `init` and `serve --init` give a new
//! root (the demo hierarchy, or an operator's own from the first start: `--root-dn`,
//! `--issuing-dn`, `--officers-dn`, all three or none, and `--root-name`, `--issuing-name`,
//! `--officers-name`), and the subject of `ca create`.

use clap::Args;

use crate::ca::{CaNames, CaSubject, Hierarchy, parse_dn};

/// Your own hierarchy instead of the demo CAs.
#[derive(Debug, Clone, Args)]
pub struct HierarchyArgs {
    /// The root CA's name in gateway.toml, its files (data/ca/NAME.pem, .key) and its URLs
    /// (/pgwy/crl/NAME.crl).
    #[arg(long, value_name = "NAME", default_value = "root")]
    pub root_name: String,
    /// The issuing CA's name: the token procedures init writes use it.
    #[arg(long, value_name = "NAME", default_value = "issuing")]
    pub issuing_name: String,
    /// The officers CA's name; its [[ca]] block gets role = "officers" (it issues officer
    /// client certificates).
    #[arg(long, value_name = "NAME", default_value = "officers")]
    pub officers_name: String,
    /// Your own root CA's subject, e.g. "C=SE, O=Example AB, CN=Example Root CA" (most
    /// significant first; encoded in the order written). With --issuing-dn and --officers-dn,
    /// init writes your own hierarchy (and a TLS server certificate from its root) instead of
    /// the demo CAs.
    #[arg(long, value_name = "DN", requires_all = ["issuing_dn", "officers_dn"])]
    pub root_dn: Option<String>,
    /// Your own issuing CA's subject (it signs the user tokens).
    #[arg(long, value_name = "DN", requires_all = ["root_dn", "officers_dn"])]
    pub issuing_dn: Option<String>,
    /// Your own officers CA's subject (it signs officer client certificates).
    #[arg(long, value_name = "DN", requires_all = ["root_dn", "issuing_dn"])]
    pub officers_dn: Option<String>,
}

impl HierarchyArgs {
    /// The names and subjects to write: the demo's subjects, or the three DNs given, under the
    /// names given (default root, issuing, officers).
    pub fn hierarchy(&self) -> anyhow::Result<Hierarchy> {
        let names = CaNames {
            root: self.root_name.clone(),
            issuing: self.issuing_name.clone(),
            officers: self.officers_name.clone(),
        };
        names
            .check()
            .map_err(|e| anyhow::anyhow!("--root-name, --issuing-name, --officers-name: {e}"))?;
        let (Some(root), Some(issuing), Some(officers)) =
            (&self.root_dn, &self.issuing_dn, &self.officers_dn)
        else {
            return Ok(Hierarchy {
                names,
                ..Hierarchy::demo()
            });
        };
        let parse =
            |flag: &str, dn: &str| parse_dn(dn).map_err(|e| anyhow::anyhow!("--{flag}: {e}"));
        Ok(Hierarchy {
            names,
            root: parse("root-dn", root)?,
            issuing: parse("issuing-dn", issuing)?,
            officers: parse("officers-dn", officers)?,
        })
    }

    /// True when the operator's own DNs were given.
    pub fn is_own(&self) -> bool {
        self.root_dn.is_some()
    }

    /// True when a CA name other than the default was given.
    pub fn is_named(&self) -> bool {
        CaNames {
            root: self.root_name.clone(),
            issuing: self.issuing_name.clone(),
            officers: self.officers_name.clone(),
        } != CaNames::default()
    }
}

/// The subject of `ca create`: `subject` (a DN) as written, or the flags in the conventional
/// order C, O, OU…, CN, checked as a DN is.
pub(super) fn ca_subject(args: &super::ca_admin::CreateArgs) -> anyhow::Result<CaSubject> {
    let dn = match (&args.subject, &args.common_name) {
        (Some(dn), _) => dn.clone(),
        (None, Some(cn)) => {
            let escape = |v: &str| v.replace('\\', "\\\\").replace(',', "\\,");
            let mut parts = Vec::new();
            if let Some(c) = &args.country {
                parts.push(format!("C={}", escape(c)));
            }
            if let Some(o) = &args.organization {
                parts.push(format!("O={}", escape(o)));
            }
            for ou in &args.organizational_unit {
                parts.push(format!("OU={}", escape(ou)));
            }
            parts.push(format!("CN={}", escape(cn)));
            parts.join(", ")
        }
        (None, None) => anyhow::bail!("give --common-name or --subject"),
    };
    parse_dn(&dn).map_err(|e| anyhow::anyhow!("the subject: {e}"))
}
