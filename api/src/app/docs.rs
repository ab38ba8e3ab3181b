//! `/docs`: the API reference (Swagger UI 5.35.0, vendored in `api/assets/docs`,
//! see its `VENDOR.md`) served from the binary, so the page loads nothing
//! from anywhere but this server; its Content-Security-Policy makes the
//! browser refuse anything else.

use axum::{
    http::{header, HeaderValue},
    response::{IntoResponse, Response},
    routing::get,
    Router,
};

use crate::state::AppState;

/// The reference page: Swagger UI on `/openapi.json`, no inline script.
const PAGE: &str = r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>chargeledger API</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="stylesheet" href="/docs/swagger-ui.css"></head>
<body><div id="swagger-ui"></div>
<noscript>The machine-readable description is at <a href="/openapi.json">/openapi.json</a>.</noscript>
<script src="/docs/swagger-ui-bundle.js"></script>
<script src="/docs/init.js"></script></body></html>
"#;

/// Starts Swagger UI; `validatorUrl: null` keeps it from sending the
/// document to validator.swagger.io.
const INIT: &str = "window.ui = SwaggerUIBundle({ url: \"/openapi.json\", dom_id: \"#swagger-ui\", \
                    validatorUrl: null, deepLinking: true });\n";

const BUNDLE: &[u8] = include_bytes!("../../assets/docs/swagger-ui-bundle.js");
const CSS: &[u8] = include_bytes!("../../assets/docs/swagger-ui.css");

/// Same origin only; Swagger UI sets inline styles, so styles alone may be inline.
pub const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; \
                       img-src 'self' data:; font-src 'self' data:; connect-src 'self'; base-uri 'none'; \
                       form-action 'none'; frame-ancestors 'none'";

/// The paths this module serves (all public, see `policy::permission`).
pub const PATHS: [&str; 4] = ["/docs", "/docs/swagger-ui-bundle.js", "/docs/swagger-ui.css", "/docs/init.js"];

fn asset(content_type: &'static str, body: &'static [u8], cache: bool) -> Response {
    let mut response = body.into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP));
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    let cache = if cache { "public, max-age=86400" } else { "no-cache" };
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    response
}

/// The routes of the reference.
pub fn routes(router: Router<AppState>) -> Router<AppState> {
    router
        .route(PATHS[0], get(|| async { asset("text/html; charset=utf-8", PAGE.as_bytes(), false) }))
        .route(PATHS[1], get(|| async { asset("text/javascript; charset=utf-8", BUNDLE, true) }))
        .route(PATHS[2], get(|| async { asset("text/css; charset=utf-8", CSS, true) }))
        .route(PATHS[3], get(|| async { asset("text/javascript; charset=utf-8", INIT.as_bytes(), false) }))
}
