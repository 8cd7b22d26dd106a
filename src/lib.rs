//! ast-gateway: an Authenticated Soft Token gateway.
//!
//! The modules mirror the flow of a request: `http` receives a request (the form endpoint or the
//! JSON API), `identity` decides whether its identity headers may be trusted, `config` reads the
//! files and `rules` gives them meaning (handlers, formats, token procedures), `policy` turns
//! headers into certificate fields, `token` generates keys and writes the PKCS#12, `ca` signs,
//! `store` records, and `issuance` is the one module that composes them. `cli` is the command
//! line. See ARCHITECTURE.md for the invariants each module keeps.

pub mod ca;
pub mod cli;
pub mod config;
pub mod http;
pub mod identity;
pub mod issuance;
pub mod policy;
pub mod private_files;
pub mod rules;
pub mod store;
pub mod timestamp;
pub mod token;
