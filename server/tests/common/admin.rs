//! Test helpers for the admin tests.
