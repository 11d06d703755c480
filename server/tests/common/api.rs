//! Test helpers for the api tests.
