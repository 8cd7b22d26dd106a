//! End-to-end tests: the real server on 127.0.0.1:0, real HTTP, real independent parsers.

mod config;
mod kit;
mod page;
mod soft_token;
