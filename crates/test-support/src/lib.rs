//! Test helpers shared by Rampart's crates: in-process origins that tests put behind the
//! gateway, and helpers to find the shared test data.
#![forbid(unsafe_code)]

pub mod origin;
pub mod redis;
pub mod shared;
