//! End-to-end tests: one integration binary.

mod databases;
mod scale_out;
mod store;
mod tcp_proxy;
