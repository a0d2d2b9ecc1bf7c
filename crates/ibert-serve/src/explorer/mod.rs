//! The dataset explorer: one page at `/` (HTML, CSS and script embedded in the binary; it
//! requests nothing from outside the server) over a small JSON API that pages on the server:
//! `/api/summary` (facet counts and `stats.json`), `/api/records` (filtered, searched, paged),
//! `/api/records/{n}` (one record whole) and `/api/rejects`.

mod dataset;

pub use dataset::Dataset;
use dataset::{RecordQuery, RejectQuery};

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State as AxumState};
use axum::http::{HeaderValue, header};
use axum::response::{Html, IntoResponse, Response};
use serde_json::Value;

use crate::errors::ApiError;
use crate::state::State;

const PAGE: &str = include_str!("../../assets/explorer.html");

pub async fn page() -> Response {
    let mut response = Html(PAGE).into_response();
    // The page runs only its own inline script and talks only to this server.
    response.headers_mut().insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self'; img-src 'self' data:"),
    );
    response
}

fn dataset(state: &State) -> Result<&Dataset, ApiError> {
    state.dataset.as_ref().ok_or_else(|| {
        ApiError::new(axum::http::StatusCode::NOT_FOUND, "no dataset is loaded: start the server with --data DIR (a folder `ibert data all` wrote)")
    })
}

fn query<T>(query: Result<Query<T>, QueryRejection>) -> Result<T, ApiError> {
    query.map(|Query(query)| query).map_err(|rejection| ApiError::bad_request(rejection.body_text()))
}

pub async fn summary(AxumState(state): AxumState<State>) -> Result<Json<Value>, ApiError> {
    Ok(Json(dataset(&state)?.summary()))
}

pub async fn records(AxumState(state): AxumState<State>, filter: Result<Query<RecordQuery>, QueryRejection>) -> Result<Json<Value>, ApiError> {
    let filter = query(filter)?;
    let dataset = dataset(&state)?;
    let page = tokio::task::block_in_place(|| dataset.records(&filter)).map_err(|error| ApiError::internal(format!("{error:#}")))?;
    Ok(Json(serde_json::to_value(page).expect("a page serializes")))
}

pub async fn record(AxumState(state): AxumState<State>, Path(n): Path<usize>) -> Result<Json<Value>, ApiError> {
    match dataset(&state)?.record(n).map_err(|error| ApiError::internal(format!("{error:#}")))? {
        Some(record) => Ok(Json(record)),
        None => Err(ApiError::new(axum::http::StatusCode::NOT_FOUND, format!("there is no record {n}"))),
    }
}

pub async fn rejects(AxumState(state): AxumState<State>, filter: Result<Query<RejectQuery>, QueryRejection>) -> Result<Json<Value>, ApiError> {
    let filter = query(filter)?;
    let dataset = dataset(&state)?;
    let page = tokio::task::block_in_place(|| dataset.rejects(&filter)).map_err(|error| ApiError::internal(format!("{error:#}")))?;
    Ok(Json(serde_json::to_value(page).expect("a page serializes")))
}
