//! The optional token (`--api-key-file`). Every `/v1` and `/metrics` request must send
//! `Authorization: Bearer <token>`. The explorer (`/`, `/api/*`) takes the same header or, since
//! a browser cannot add one to a page load, a cookie set by signing in at `/login` with the
//! token: the cookie holds the token's SHA-256, not the token, and is `HttpOnly` and
//! `SameSite=Strict`, so other sites can neither read it nor make the browser send it. `/health`
//! stays open. Tokens are compared in constant time.

use axum::Form;
use axum::extract::{Request, State as AxumState};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{Html, IntoResponse, Redirect, Response};
use serde::Deserialize;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::errors::ApiError;
use crate::state::State;

const COOKIE: &str = "ibert_session";

fn matches(given: &str, expected: &str) -> bool {
    bool::from(given.as_bytes().ct_eq(expected.as_bytes()))
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers.get(header::AUTHORIZATION).and_then(|value| value.to_str().ok()).and_then(|value| value.strip_prefix("Bearer ")).map(str::trim)
}

/// What the sign-in cookie holds for a token.
fn session_value(token: &str) -> String {
    Sha256::digest(token.as_bytes()).iter().map(|byte| format!("{byte:02x}")).collect()
}

fn session_cookie(headers: &HeaderMap) -> Option<&str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .find_map(|pair| pair.trim().strip_prefix(COOKIE).and_then(|rest| rest.strip_prefix('=')))
}

pub async fn require_bearer(AxumState(state): AxumState<State>, request: Request, next: Next) -> Response {
    let Some(expected) = &state.options.api_key else {
        return next.run(request).await;
    };
    match bearer(request.headers()) {
        Some(token) if matches(token, expected) => next.run(request).await,
        Some(_) => ApiError::new(StatusCode::UNAUTHORIZED, "the bearer token is not this server's (--api-key-file)").into_response(),
        None => ApiError::new(StatusCode::UNAUTHORIZED, "this server needs `Authorization: Bearer <token>` (--api-key-file)").into_response(),
    }
}

/// The explorer's guard: the bearer header or the sign-in cookie. Without either, the page
/// answers with the sign-in form and the API with a 401 that says where to sign in.
pub async fn require_session(AxumState(state): AxumState<State>, request: Request, next: Next) -> Response {
    let Some(expected) = &state.options.api_key else {
        return next.run(request).await;
    };
    let headers = request.headers();
    let by_header = bearer(headers).is_some_and(|token| matches(token, expected));
    let by_cookie = session_cookie(headers).is_some_and(|value| matches(value, &session_value(expected)));
    if by_header || by_cookie {
        return next.run(request).await;
    }
    if request.uri().path() == "/" {
        return sign_in_page(StatusCode::UNAUTHORIZED, "");
    }
    ApiError::new(
        StatusCode::UNAUTHORIZED,
        "the explorer needs this server's token (--api-key-file): sign in at /login, or send `Authorization: Bearer <token>`",
    )
    .into_response()
}

#[derive(Deserialize)]
pub struct SignIn {
    key: String,
}

/// `GET /login`: the sign-in form (also what `/` shows to a browser without the cookie).
pub async fn login_page(AxumState(state): AxumState<State>) -> Response {
    if state.options.api_key.is_none() {
        return Redirect::to("/").into_response();
    }
    sign_in_page(StatusCode::OK, "")
}

/// `POST /login` with the form field `key`: the cookie and a redirect to the explorer, or the
/// form again with a 401.
pub async fn login(AxumState(state): AxumState<State>, Form(form): Form<SignIn>) -> Response {
    let Some(expected) = &state.options.api_key else {
        return Redirect::to("/").into_response();
    };
    if !matches(form.key.trim(), expected) {
        return sign_in_page(StatusCode::UNAUTHORIZED, "That is not this server's token.");
    }
    let cookie = format!("{COOKIE}={}; Path=/; HttpOnly; SameSite=Strict", session_value(expected));
    let mut response = Redirect::to("/").into_response();
    response.headers_mut().insert(header::SET_COOKIE, HeaderValue::from_str(&cookie).expect("a hex cookie is a valid header"));
    response
}

fn sign_in_page(status: StatusCode, message: &str) -> Response {
    let page = SIGN_IN.replace("{message}", message);
    let mut response = (status, Html(page)).into_response();
    response
        .headers_mut()
        .insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static("default-src 'none'; style-src 'unsafe-inline'; form-action 'self'"));
    response
}

const SIGN_IN: &str = r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>iBERT explorer: sign in</title>
<style>body{font:15px system-ui,sans-serif;margin:4em auto;max-width:28em}input{font:inherit;padding:.3em;width:100%;box-sizing:border-box;margin:.5em 0}p.error{color:#b00}</style>
</head><body><h1>iBERT dataset explorer</h1>
<p>This server was started with <code>--api-key-file</code>. Sign in with the token that file holds.</p>
<p class="error">{message}</p>
<form method="post" action="/login"><label>Token <input type="password" name="key" autocomplete="current-password" autofocus></label>
<input type="submit" value="Sign in"></form></body></html>
"#;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_session_cookie_is_found_among_others_and_holds_the_tokens_digest() {
        let mut headers = HeaderMap::new();
        headers.insert(header::COOKIE, HeaderValue::from_static("theme=dark; ibert_session=abc; other=1"));
        assert_eq!(session_cookie(&headers), Some("abc"));
        headers.insert(header::COOKIE, HeaderValue::from_static("ibert_session_old=abc"));
        assert_eq!(session_cookie(&headers), None, "a cookie whose name only starts the same is not it");
        let value = session_value("s3cret");
        assert_eq!(value.len(), 64);
        assert!(!value.contains("s3cret"));
        assert_ne!(value, session_value("s3cret2"));
    }
}
