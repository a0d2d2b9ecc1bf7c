//! The optional bearer token (`--api-key-file`): every `/v1` and `/metrics` request must send
//! `Authorization: Bearer <token>`; `/health` and the explorer stay open (the explorer only
//! reads the dataset the server was pointed at). Tokens are compared in constant time.

use axum::extract::{Request, State as AxumState};
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use subtle::ConstantTimeEq;

use crate::errors::ApiError;
use crate::state::State;

pub async fn require_bearer(AxumState(state): AxumState<State>, request: Request, next: Next) -> Response {
    let Some(expected) = &state.options.api_key else {
        return next.run(request).await;
    };
    let given = request.headers().get(header::AUTHORIZATION).and_then(|value| value.to_str().ok()).and_then(|value| value.strip_prefix("Bearer "));
    match given {
        Some(token) if bool::from(token.trim().as_bytes().ct_eq(expected.as_bytes())) => next.run(request).await,
        Some(_) => ApiError::new(StatusCode::UNAUTHORIZED, "the bearer token is not this server's (--api-key-file)").into_response(),
        None => ApiError::new(StatusCode::UNAUTHORIZED, "this server needs `Authorization: Bearer <token>` (--api-key-file)").into_response(),
    }
}
