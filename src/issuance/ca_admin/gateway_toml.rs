//! The edits CA administration makes to gateway.toml, through a format-preserving TOML editor
//! (`toml_edit`): a value changes in place with the spaces and comment around it, a removed key
//! leaves a comment where it stood, a new `[[ca]]` block goes at the end of the file; every
//! other byte (the operator's comments, blank lines, key order) stays as written.

use toml_edit::{ArrayOfTables, DocumentMut, Item, Table, Value};

use crate::ca::Attribute;

/// `s` as a TOML basic string, as messages show a value (JSON's string escapes are TOML's).
pub fn toml_string(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| format!("\"{s}\""))
}

/// gateway.toml parsed for editing.
pub(super) fn parse(text: &str) -> anyhow::Result<DocumentMut> {
    text.parse::<DocumentMut>()
        .map_err(|e| anyhow::anyhow!("gateway.toml: {e}"))
}

/// Replaces the value of `table[key]`, keeping the spaces and comment around it.
fn set_string(table: &mut Table, key: &str, new: &str) -> bool {
    let Some(Item::Value(value)) = table.get_mut(key) else {
        return false;
    };
    let decor = value.decor().clone();
    let mut replacement = Value::from(new);
    *replacement.decor_mut() = decor;
    *value = replacement;
    true
}

fn array_of_tables<'a>(table: &'a mut Table, key: &str) -> Option<&'a mut ArrayOfTables> {
    table.get_mut(key).and_then(Item::as_array_of_tables_mut)
}

/// Every `ca = "old"` of a `[[token_procedure.certificate]]` becomes `ca = "new"`; how many.
pub(super) fn move_certificates(doc: &mut DocumentMut, old: &str, new: &str) -> usize {
    let mut moved = 0;
    let Some(procedures) = array_of_tables(doc.as_table_mut(), "token_procedure") else {
        return 0;
    };
    for procedure in procedures.iter_mut() {
        let Some(certificates) = array_of_tables(procedure, "certificate") else {
            continue;
        };
        for certificate in certificates.iter_mut() {
            if certificate.get("ca").and_then(Item::as_str) == Some(old)
                && set_string(certificate, "ca", new)
            {
                moved += 1;
            }
        }
    }
    moved
}

/// Removes the `role` key of the `[[ca]]` named `old` and leaves `comment` (one line) where it
/// stood, with the comments that were above it; false when the block has no `role`.
pub(super) fn comment_out_role(doc: &mut DocumentMut, old: &str, comment: &str) -> bool {
    let Some(cas) = array_of_tables(doc.as_table_mut(), "ca") else {
        return false;
    };
    let Some(index) = cas
        .iter()
        .position(|t| t.get("name").and_then(Item::as_str) == Some(old))
    else {
        return false;
    };
    let Some(block) = cas.get_mut(index) else {
        return false;
    };
    let Some(role_at) = block.iter().position(|(k, _)| k == "role") else {
        return false;
    };
    let above = block
        .key("role")
        .and_then(|k| k.leaf_decor().prefix())
        .and_then(|p| p.as_str())
        .unwrap_or_default()
        .trim_end_matches([' ', '\t'])
        .to_string();
    let position = block.position();
    block.remove("role");
    let lines = format!("{above}{comment}\n");
    // The key after it carries the comment; the last key's goes above what follows the block.
    let next = block.iter().nth(role_at).map(|(k, _)| k.to_string());
    if let Some(next) = next {
        if let Some(mut key) = block.key_mut(&next) {
            let decor = key.leaf_decor_mut();
            let prefix = decor.prefix().and_then(|p| p.as_str()).unwrap_or_default();
            decor.set_prefix(format!("{lines}{prefix}"));
        }
        return true;
    }
    prefix_after(doc, position, &lines);
    true
}

/// Puts `lines` before whatever follows the table at `position`: the next table's header, or
/// the end of the file.
fn prefix_after(doc: &mut DocumentMut, position: Option<isize>, lines: &str) {
    let after = position.unwrap_or(isize::MAX);
    let mut next: Option<isize> = None;
    walk_tables(doc.as_table_mut(), &mut |t| {
        if let Some(p) = t.position().filter(|p| *p > after) {
            next = Some(next.map_or(p, |n| n.min(p)));
        }
    });
    let Some(next) = next else {
        let trailing = doc.trailing().as_str().unwrap_or_default().to_string();
        doc.set_trailing(format!("{lines}{trailing}"));
        return;
    };
    walk_tables(doc.as_table_mut(), &mut |t| {
        if t.position() == Some(next) {
            let decor = t.decor_mut();
            let prefix = decor.prefix().and_then(|p| p.as_str()).unwrap_or_default();
            decor.set_prefix(format!("{lines}{prefix}"));
        }
    });
}

/// Calls `f` on every table below `table` (tables and arrays of tables, depth first).
fn walk_tables(table: &mut Table, f: &mut dyn FnMut(&mut Table)) {
    for (_, item) in table.iter_mut() {
        match item {
            Item::Table(t) => {
                f(t);
                walk_tables(t, f);
            }
            Item::ArrayOfTables(a) => {
                for t in a.iter_mut() {
                    f(t);
                    walk_tables(t, f);
                }
            }
            _ => {}
        }
    }
}

/// Points `[server] client_ca` at `path`; false when it is not set.
pub(super) fn point_client_ca(doc: &mut DocumentMut, path: &str) -> bool {
    doc.get_mut("server")
        .and_then(Item::as_table_mut)
        .is_some_and(|server| set_string(server, "client_ca", path))
}

/// A `[[ca]]` block to add to gateway.toml.
pub struct CaBlock<'a> {
    pub name: &'a str,
    pub certificate: &'a str,
    pub key: &'a str,
    pub parent: Option<&'a str>,
    pub passphrase_env: Option<&'a str>,
    /// `role = "officers"`.
    pub role: Option<&'a str>,
    /// `subject_order = [...]` (empty: none written).
    pub subject_order: &'a [Attribute],
}

/// Adds `block` as the last `[[ca]]`, at the end of the file (an array of tables may be split).
pub(super) fn append_ca(doc: &mut DocumentMut, block: &CaBlock<'_>) -> anyhow::Result<()> {
    let mut last = 0;
    walk_tables(doc.as_table_mut(), &mut |t| {
        last = last.max(t.position().unwrap_or(0));
    });
    let mut table = Table::new();
    table.set_position(last + 1);
    // What follows the last table (comments, blank lines) comes first: the block goes at the
    // very end of the file, as if appended to its text.
    let trailing = doc.trailing().as_str().unwrap_or_default().to_string();
    doc.set_trailing("");
    table.decor_mut().set_prefix(format!("{trailing}\n"));
    table.insert("name", toml_edit::value(block.name));
    table.insert("certificate", toml_edit::value(block.certificate));
    table.insert("key", toml_edit::value(block.key));
    if let Some(p) = block.parent {
        table.insert("parent", toml_edit::value(p));
    }
    if let Some(v) = block.passphrase_env {
        table.insert("key_passphrase_env", toml_edit::value(v));
    }
    if let Some(role) = block.role {
        table.insert("role", toml_edit::value(role));
        comment_key(
            &mut table,
            "role",
            "# It issues the officer client certificates (docs/configuration.md).\n",
        );
    }
    if !block.subject_order.is_empty() {
        let names: toml_edit::Array = block.subject_order.iter().map(|a| a.name()).collect();
        table.insert("subject_order", toml_edit::value(names));
        comment_key(
            &mut table,
            "subject_order",
            "# The RDN order of the subjects it signs when a token procedure certificate\n\
             # lists no `subject` (kept from the CA certificate's own subject).\n",
        );
    }
    let cas = doc
        .entry("ca")
        .or_insert(Item::ArrayOfTables(ArrayOfTables::new()));
    cas.as_array_of_tables_mut()
        .ok_or_else(|| anyhow::anyhow!("gateway.toml: `ca` is not an array of [[ca]] tables"))?
        .push(table);
    Ok(())
}

fn comment_key(table: &mut Table, key: &str, comment: &str) {
    if let Some(mut k) = table.key_mut(key) {
        k.leaf_decor_mut().set_prefix(comment);
    }
}

#[cfg(test)]
#[path = "gateway_toml_tests.rs"]
mod tests;
