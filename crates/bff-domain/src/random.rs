//! The `Random` port: the only source of randomness in the domain (session ids, bindings,
//! lease owners, logout states).

/// Cryptographically secure randomness.
pub trait Random: Send + Sync {
    /// Fills `dest` with random bytes.
    fn fill(&self, dest: &mut [u8]);
}
