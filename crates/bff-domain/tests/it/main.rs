//! Property tests of `bff-domain`'s parsers of attacker input, through its public API: session
//! cookie values, return URLs and the API proxy's request targets (`properties`).
//!
//! The budget is proptest's: 256 cases per property, or `PROPTEST_CASES` (README "Tests" has
//! the longer run).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    unreachable_pub
)]

mod properties;
