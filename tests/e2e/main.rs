//! End-to-end tests: the real server on 127.0.0.1:0, real HTTP, real independent parsers.

mod api;
mod architecture;
mod ca;
mod est;
mod form;
mod hardening;
mod interop;
mod kit;
mod operations;
mod page;
mod revocation;
mod store;
mod throughput;
mod trust;
