//! The OpenAPI document of the sync API, generated from the handlers'
//! annotations and the shared wire types.

use std::sync::OnceLock;

use axum::http::header;
use axum::response::IntoResponse;
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::{Modify, OpenApi};

use super::{down, enroll, scans};

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        let components = doc.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)),
        );
    }
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "JO E-Tickets scanner sync API",
        description = "What gate scanners sync with the issuance server: enrolment, keyring, sessions, the signed revocation list, other gates' entries (down) and scan logs (up). Every error is an ApiError body.",
    ),
    paths(
        enroll::enroll,
        enroll::roll_token,
        down::keyring,
        down::devices,
        down::sessions,
        down::revocations,
        down::entries,
        scans::upload,
    ),
    components(schemas(jo_shared::api::ApiError)),
    modifiers(&BearerAuth),
    tags(
        (name = "enrolment", description = "Device identity and tokens"),
        (name = "down-sync", description = "What a device fetches"),
        (name = "up-sync", description = "What a device uploads"),
    )
)]
struct ApiDoc;

/// The OpenAPI document, as JSON.
pub fn openapi_json() -> &'static str {
    static DOC: OnceLock<String> = OnceLock::new();
    DOC.get_or_init(|| {
        ApiDoc::openapi()
            .to_pretty_json()
            .unwrap_or_else(|_| "{}".to_owned())
    })
}

/// `GET /api/v1/openapi.json`.
pub async fn serve() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "application/json")], openapi_json())
}

#[cfg(test)]
mod tests {
    use jo_shared::api::paths;

    use super::*;

    #[test]
    fn the_document_lists_every_route_of_the_router() {
        let doc: serde_json::Value =
            serde_json::from_str(openapi_json()).expect("the document is JSON");
        let listed: Vec<&str> = doc["paths"]
            .as_object()
            .expect("paths")
            .keys()
            .map(String::as_str)
            .collect();
        for p in [
            paths::ENROLL,
            paths::TOKEN,
            paths::KEYRING,
            paths::DEVICES,
            paths::SESSIONS,
            paths::REVOCATIONS,
            paths::ENTRIES,
            paths::SCANS,
        ] {
            assert!(listed.contains(&p), "{p} missing from the OpenAPI document");
        }
        assert_eq!(listed.len(), 8);
        for schema in [
            "ScanBatch",
            "ScanRecord",
            "RevocationDelta",
            "TicketId",
            "ApiError",
            "SignedKeyring",
            "SignedDeviceList",
        ] {
            assert!(
                doc["components"]["schemas"][schema].is_object(),
                "schema {schema} missing"
            );
        }
    }
}
