//! `GET /`: the dashboard, one self-contained HTML page embedded in the binary (no external
//! asset: it works with no network). It polls the open JSON status endpoints; the live logs and
//! the emergency controls need the admin token, typed into the page and kept in the tab's
//! `sessionStorage`. The page inserts API data as text only, never as HTML.

use actix_web::{get, HttpResponse};

pub const PAGE: &str = include_str!("dashboard.html");

/// Everything the page needs comes from this origin; inline script and style are its own.
const CSP: &str = "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; \
                   connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; \
                   frame-ancestors 'none'";

pub fn routes(cfg: &mut utoipa_actix_web::service_config::ServiceConfig) {
    cfg.service(page).service(favicon);
}

/// No icon: an empty answer, so browsers opening the dashboard get no 404.
#[utoipa::path(tag = "status", responses((status = 204, description = "No icon")))]
#[get("/favicon.ico")]
async fn favicon() -> HttpResponse {
    HttpResponse::NoContent()
        .insert_header(("Cache-Control", "max-age=86400"))
        .finish()
}

/// The dashboard: one self-contained HTML page.
#[utoipa::path(
    tag = "status",
    responses((status = 200, description = "The page", body = String,
               content_type = "text/html; charset=utf-8")),
)]
#[get("/")]
async fn page() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .insert_header(("Content-Security-Policy", CSP))
        .insert_header(("Cache-Control", "no-cache"))
        .insert_header(("X-Content-Type-Options", "nosniff"))
        .insert_header(("Referrer-Policy", "no-referrer"))
        .body(PAGE)
}

#[cfg(test)]
mod tests {
    use super::PAGE;

    #[test]
    fn the_page_loads_nothing_from_elsewhere_and_never_uses_inner_html() {
        for banned in [
            "innerHTML",
            "outerHTML",
            "insertAdjacentHTML",
            "document.write",
            "eval(",
        ] {
            assert!(!PAGE.contains(banned), "the page uses {banned}");
        }
        for external in ["http://", "https://", "//cdn", "<link", "src=\""] {
            assert!(!PAGE.contains(external), "the page loads {external}");
        }
    }
}
