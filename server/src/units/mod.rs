//! The bottom layer: plain values every other layer shares (money in
//! integer cents, Paris and UTC time, the statuses rows carry), knowing neither the database nor
//! HTTP, so storage and the shop can both use them without importing each
//! other.

pub mod money;
pub mod status;
pub mod time;
