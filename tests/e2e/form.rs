//! The form endpoint (`/pgwy/ast`) and what it is configured with: soft tokens on the
//! embedded default, the Nexus configuration language (handlers, formats, reload), and token
//! layouts and certificate templates.
pub(crate) mod config;
pub(crate) mod layout;
pub(crate) mod soft_token;
