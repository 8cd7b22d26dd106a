//! End-to-end tests: the real server on 127.0.0.1:0, real HTTP, real independent parsers.

mod ca;
mod config;
mod databases;
mod kit;
mod nginx;
mod page;
mod performance;
mod scale_out;
mod soft_token;
mod store;
mod tcp_proxy;
mod throughput;
mod trust;
