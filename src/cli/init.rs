//! The CA subjects `init` and `serve --init` give a new root: the demo hierarchy, or an
//! operator's own from the first start (`--root-dn`, `--issuing-dn`, `--officers-dn`, all three
//! or none).

use clap::Args;

use crate::ca::{Hierarchy, parse_dn};

/// Your own hierarchy instead of the demo CAs.
#[derive(Debug, Clone, Default, Args)]
pub struct HierarchyArgs {
    /// Your own root CA's subject, e.g. "C=SE, O=Example AB, CN=Example Root CA" (most
    /// significant first; encoded in the order written). With --issuing-dn and --officers-dn,
    /// init writes your own hierarchy (and a TLS server certificate from its root) instead of
    /// the demo CAs.
    #[arg(long, value_name = "DN", requires_all = ["issuing_dn", "officers_dn"])]
    pub root_dn: Option<String>,
    /// Your own issuing CA's subject (it signs the user tokens; `issuing` in gateway.toml).
    #[arg(long, value_name = "DN", requires_all = ["root_dn", "officers_dn"])]
    pub issuing_dn: Option<String>,
    /// Your own officers CA's subject (it signs officer client certificates; `officers` in
    /// gateway.toml).
    #[arg(long, value_name = "DN", requires_all = ["root_dn", "issuing_dn"])]
    pub officers_dn: Option<String>,
}

impl HierarchyArgs {
    /// The subjects to write: the demo's, or the three DNs given.
    pub fn hierarchy(&self) -> anyhow::Result<Hierarchy> {
        let (Some(root), Some(issuing), Some(officers)) =
            (&self.root_dn, &self.issuing_dn, &self.officers_dn)
        else {
            return Ok(Hierarchy::demo());
        };
        let parse =
            |flag: &str, dn: &str| parse_dn(dn).map_err(|e| anyhow::anyhow!("--{flag}: {e}"));
        Ok(Hierarchy {
            root: parse("root-dn", root)?,
            issuing: parse("issuing-dn", issuing)?,
            officers: parse("officers-dn", officers)?,
        })
    }

    /// True when the operator's own DNs were given.
    pub fn is_own(&self) -> bool {
        self.root_dn.is_some()
    }
}
