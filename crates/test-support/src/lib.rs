//! Test helpers shared by Rampart's crates.
