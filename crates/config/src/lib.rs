//! Rampart configuration (placeholder until the config crate lands).
