//! The web dashboard: three static files embedded in the binary (no CDN, works offline),
//! served under `/ui/`. The page talks to the API from the browser, same origin, with the
//! operator's token from the tab's session storage (or none on an open loopback engine),
//! so it has exactly the caller's role and passes the same Host and Origin checks as any
//! client. Its Content-Security-Policy allows only these files and same-origin requests,
//! and no page may frame it (the halt button must not be clickjacked).

use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpRequest, HttpResponse, web};

const INDEX: &str = include_str!("../ui/index.html");
const SCRIPT: &str = include_str!("../ui/app.js");
const STYLE: &str = include_str!("../ui/app.css");

const POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; \
                      form-action 'none'; frame-ancestors 'none'; base-uri 'none'";

pub(crate) fn configure(config: &mut web::ServiceConfig) {
    config.route("/", web::get().to(home));
    config.route("/ui", web::get().to(home));
    config.route("/ui/", web::get().to(|| async { asset(INDEX, "text/html; charset=utf-8") }));
    config.route("/ui/app.js", web::get().to(|| async { asset(SCRIPT, "text/javascript; charset=utf-8") }));
    config.route("/ui/app.css", web::get().to(|| async { asset(STYLE, "text/css; charset=utf-8") }));
}

/// The bytes a browser loads for the dashboard (its page weight, before compression).
pub fn page_weight() -> usize {
    INDEX.len() + SCRIPT.len() + STYLE.len()
}

async fn home(_req: HttpRequest) -> HttpResponse {
    HttpResponse::Found().insert_header((header::LOCATION, "/ui/")).finish()
}

fn asset(body: &'static str, content_type: &'static str) -> HttpResponse {
    let mut response = HttpResponse::Ok().content_type(content_type).body(body);
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(POLICY));
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    // Small and versioned with the binary: revalidate rather than serve a stale script.
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    response
}
