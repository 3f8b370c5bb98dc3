//! The memory store's integration tests: the shared store contract suite, one test per rule.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod contract;
