//! Test helpers for the shop tests.
