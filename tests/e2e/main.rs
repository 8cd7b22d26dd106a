//! End-to-end tests (one binary).

mod ca;
