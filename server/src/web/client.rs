//! The client's address, for throttling: the TCP peer, or, when the peer is
//! a configured trusted reverse proxy, the address it reports in
//! `X-Forwarded-For` (without this, every client behind a TLS-terminating
//! proxy would share one address and one throttling counter).

use std::net::{IpAddr, SocketAddr};

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::HeaderMap;
use axum::http::request::Parts;

use crate::error::AppError;
use crate::state::AppState;

/// The client's address.
#[derive(Clone, Copy, Debug)]
pub struct ClientIp(pub IpAddr);

/// Walks `X-Forwarded-For` from the right (the entries our proxies added)
/// and stops at the first address that is not a trusted proxy: entries to its
/// left were written by the client and prove nothing.
pub fn client_ip(peer: IpAddr, headers: &HeaderMap, trusted: &[IpAddr]) -> IpAddr {
    if !trusted.contains(&peer) {
        return peer;
    }
    let entries: Vec<&str> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .collect();
    let mut ip = peer;
    for entry in entries.iter().rev() {
        match entry.trim().parse::<IpAddr>() {
            Ok(addr) => {
                ip = addr;
                if !trusted.contains(&addr) {
                    break;
                }
            }
            Err(_) => break,
        }
    }
    ip
}

impl FromRequestParts<AppState> for ClientIp {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, AppError> {
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|c| c.0.ip())
            .ok_or_else(|| anyhow::anyhow!("no peer address (serve with connect info)"))?;
        Ok(Self(client_ip(
            peer,
            &parts.headers,
            &state.config.trusted_proxies,
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("ip")
    }

    #[test]
    fn forwarded_for_is_believed_only_from_trusted_proxies() {
        let mut h = HeaderMap::new();
        h.insert(
            "x-forwarded-for",
            HeaderValue::from_static("6.6.6.6, 203.0.113.7, 10.0.0.2"),
        );
        let trusted = [ip("10.0.0.1"), ip("10.0.0.2")];
        assert_eq!(client_ip(ip("10.0.0.1"), &h, &trusted), ip("203.0.113.7"));
        assert_eq!(
            client_ip(ip("198.51.100.1"), &h, &trusted),
            ip("198.51.100.1")
        );
        assert_eq!(
            client_ip(ip("10.0.0.1"), &HeaderMap::new(), &trusted),
            ip("10.0.0.1")
        );
        let mut bad = HeaderMap::new();
        bad.insert("x-forwarded-for", HeaderValue::from_static("not-an-ip"));
        assert_eq!(client_ip(ip("10.0.0.1"), &bad, &trusted), ip("10.0.0.1"));
    }
}
