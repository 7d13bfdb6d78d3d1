//! Building page responses: the layout's variables, an HTML page with its cookies, a
//! redirect. Pages are never cached (they carry the CSRF token and the user's data).

use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use serde::Serialize;

use super::WebState;
use super::error::{WebError, WebResult};
use super::session::{self, Browser, WebUser};
use super::templates::{self, Layout, LayoutUser};
use super::{assets, csrf};
use crate::alerts::handlers::UnreadCount;
use crate::error::AppError;

/// The layout of a page for `user`.
#[must_use]
pub fn layout(
    title: &str,
    active: &'static str,
    csrf_token: &str,
    user: Option<&WebUser>,
) -> Layout {
    Layout {
        title: title.to_owned(),
        active,
        csrf_token: csrf_token.to_owned(),
        user: user.map(|u| LayoutUser {
            id: u.current.user.id.clone(),
            email: u.current.user.email.clone(),
            name: u.current.user.name.clone(),
            is_admin: u.current.user.is_admin,
        }),
        alerts_unread: None,
        asset_version: assets::version(),
        billing_banners: Vec::new(),
    }
}

/// The layout of a page for signed-in `user`, with the bell's count read as the page is
/// rendered (a form that answers with a redirect does not read it).
pub async fn user_layout(
    web: &WebState,
    browser: &Browser,
    (title, active): (&str, &'static str),
    csrf_token: &str,
    user: &WebUser,
) -> Layout {
    Layout {
        alerts_unread: unread_alerts(web, browser, user).await,
        billing_banners: super::billing_pages::banners(web, browser, user).await,
        ..layout(title, active, csrf_token, Some(user))
    }
}

/// Renders `template` as the answer, with `cookies` set.
///
/// # Errors
/// A template that fails to render (500).
pub fn html(
    status: StatusCode,
    template: &str,
    layout: &Layout,
    page: &impl Serialize,
    cookies: impl IntoIterator<Item = HeaderValue>,
) -> WebResult<Response> {
    let body = templates::render(template, layout, page)
        .map_err(|e| WebError::from(AppError::Internal(anyhow::anyhow!(e))))?;
    let mut response = (status, Html(body)).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    for cookie in cookies {
        headers.append(header::SET_COOKIE, cookie);
    }
    Ok(response)
}

/// A `303 See Other` to `to` (a path of ours), with `cookies` set.
///
/// # Errors
/// A location that is not a valid header (never for our paths).
pub fn redirect(to: &str, cookies: impl IntoIterator<Item = HeaderValue>) -> WebResult<Response> {
    let location =
        HeaderValue::from_str(to).map_err(|e| WebError::from(AppError::Internal(e.into())))?;
    let mut response = (StatusCode::SEE_OTHER, [(header::LOCATION, location)]).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    for cookie in cookies {
        headers.append(header::SET_COOKIE, cookie);
    }
    Ok(response)
}

/// A same-site path to go to after signing in: `next` if it is one of ours, else `/`.
#[must_use]
pub fn safe_next(next: &str) -> &str {
    let ours = next.starts_with('/')
        && !next.starts_with("//")
        && next.len() <= 200
        && next
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"/-_.".contains(&b));
    if ours && !next.contains("..") {
        next
    } else {
        "/"
    }
}

/// Whether the platform still needs its first admin (asked of the API).
///
/// # Errors
/// As [`WebState::call`].
pub async fn needs_bootstrap(web: &WebState, browser: &Browser) -> WebResult<bool> {
    let answer: crate::auth::bootstrap::BootstrapStatus = web
        .fetch(
            browser,
            axum::http::Method::GET,
            "/v1/auth/bootstrap/status",
            None,
            None::<&()>,
        )
        .await?;
    Ok(answer.needs_bootstrap)
}

/// The signed-in user, or the redirect a page answers without one: to the first-run form
/// on a new panel, else to the login form, coming back to `here` afterwards.
///
/// # Errors
/// Database failures.
pub async fn require_user(
    web: &WebState,
    browser: &Browser,
    here: &str,
) -> WebResult<Result<WebUser, Response>> {
    if let Some(user) = session::current(&web.app, browser).await? {
        return Ok(Ok(user));
    }
    if needs_bootstrap(web, browser).await? {
        return Ok(Err(redirect("/setup", [])?));
    }
    let to = match safe_next(here) {
        "/" => "/login".to_owned(),
        next => format!("/login?next={next}"),
    };
    Ok(Err(redirect(&to, [])?))
}

/// The bell's count: the alerts `user` has not seen (`GET /v1/alerts/unread-count`);
/// `None` when it cannot be read (the page still renders, without a count).
async fn unread_alerts(web: &WebState, browser: &Browser, user: &WebUser) -> Option<i64> {
    let answer: WebResult<UnreadCount> = web
        .fetch(
            browser,
            Method::GET,
            "/v1/alerts/unread-count",
            Some(&user.access),
            None::<&()>,
        )
        .await;
    answer
        .map_err(|e| tracing::warn!(error.code = %e.code, "reading the unread alerts"))
        .ok()
        .map(|c| c.count)
}

/// The CSRF token of a page and the cookie that stores a new one.
///
/// # Errors
/// As [`csrf::token`].
pub fn csrf_of(web: &WebState, browser: &Browser) -> WebResult<(String, Vec<HeaderValue>)> {
    let (token, cookie) = csrf::token(&web.app, browser)?;
    Ok((token, cookie.into_iter().collect()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_our_paths_are_followed_after_sign_in() {
        assert_eq!(safe_next("/instances/abc-1"), "/instances/abc-1");
        assert_eq!(safe_next("//evil.example"), "/");
        assert_eq!(safe_next("https://evil.example"), "/");
        assert_eq!(safe_next("/\\evil.example"), "/");
        assert_eq!(safe_next("/a/../b"), "/");
        assert_eq!(safe_next("/x?y=<script>"), "/");
        assert_eq!(safe_next(""), "/");
    }
}
