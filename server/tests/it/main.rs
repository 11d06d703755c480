//! The server's integration tests, in one binary: each module drives a real
//! `jo-server` (in process on port 0, or the built executable) the way a
//! buyer, an admin, a scanner or an operator would. One binary rather than
//! one per file: the server and its dependencies are linked once, which keeps
//! the test build small and quick.

mod common;

mod accessibility;
mod admin_access;
mod admin_browser;
mod admin_catalogue;
mod admin_new_offer;
mod admin_operations;
mod auth_flow;
mod backup;
mod browser;
mod cli;
mod demo;
mod health;
mod keygen;
mod migrate_pg;
mod nodes;
mod outbox;
mod resale;
mod rollups;
mod security;
mod shop_access;
mod shop_browser;
mod shop_cart;
mod shop_catalogue;
mod shop_concurrency;
mod shop_pdf;
mod shop_purchase;
mod shutdown;
mod sync_api;
mod transfers;
