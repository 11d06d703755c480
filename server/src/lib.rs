//! The JO E-Tickets issuance server: accounts and security (this crate's
//! foundation), then the shop, the admin console and the scanners' sync API.
//!
//! - [`config`]: typed settings (flags, `JO_*` variables, defaults);
//! - [`startup`]: [`Application::build`] binds, [`Application::run_until_stopped`] serves;
//! - [`db`]: SQLite storage behind the async [`db::Store`];
//! - [`auth`]: argon2id, tokens, TOTP;
//! - [`web`]: routes, templates, sessions, CSRF, security headers; the shop
//!   ([`web::shop`]) and the admin console ([`web::admin`]);
//! - [`api`]: the scanners' sync API under `/api/v1/`;
//! - [`trust`]: the signed keyring chain and device list the gates check;
//! - [`mail`]: SMTP or the `.eml` outbox;
//! - [`metrics`]: Prometheus metrics on their own address (`--metrics-addr`);
//! - [`backup`]: the SQLite online backup (`jo-server backup`);
//! - [`units`]: money and time, below every other layer.

pub mod admin;
pub mod api;
pub mod auth;
pub mod backup;
pub mod config;
pub mod db;
pub mod demo;
pub mod domain;
pub mod error;
pub mod fixtures;
pub mod i18n;
pub mod mail;
pub mod metrics;
pub mod migrate;
pub mod serve;
pub mod shop;
pub mod startup;
pub mod state;
pub mod tickets;
pub mod trust;
pub mod units;
pub mod web;

pub use config::Config;
pub use startup::Application;

/// Sets up structured logs (`RUST_LOG` filters; default `info`).
pub fn init_tracing(json: bool) {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false);
    // try_init: tests may call this more than once.
    let _ = if json {
        builder.json().try_init()
    } else {
        builder.try_init()
    };
}
