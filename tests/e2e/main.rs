//! End-to-end tests: the real server on 127.0.0.1:0, real HTTP, real independent parsers.

mod api;
mod api_signed;
mod audit;
mod audit_fields;
mod audit_upkeep;
mod backup_guard;
mod ca;
mod config;
mod databases;
mod garbage;
mod hardening_http;
mod hardening_input;
mod interop;
mod kit;
mod layout;
mod nginx;
mod operations;
mod operations2;
mod page;
mod performance;
mod scale_out;
mod soft_token;
mod store;
mod tcp_proxy;
mod throughput;
mod trust;
