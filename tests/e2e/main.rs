//! End-to-end tests: one integration binary.

mod nginx;
mod trust;
