//! Rampart storage (placeholder until the storage crate lands).
