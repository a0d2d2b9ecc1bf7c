//! `ibert serve`: the six tasks over HTTP ([`tasks`]), an OpenAI-compatible API ([`openai`]),
//! the dataset explorer ([`explorer`]), `/health` and `/metrics`, on axum and tokio.
//!
//! The port opens at once and `/health` answers 503 until the Ibis workers and the model are
//! loaded (on a thread of their own). The model then runs on one thread fed by a bounded queue
//! ([`generation`]); everything deterministic runs on tokio's blocking threads against the
//! shared worker pool. SIGTERM or Ctrl-C stops accepting connections and finishes the requests
//! in flight.

mod auth;
mod errors;
mod explorer;
mod generation;
mod metrics;
mod openai;
mod state;
mod tasks;
mod timings;
mod verification;

use std::sync::{Arc, OnceLock};
use std::time::Instant;

use anyhow::Context;
use axum::Router;
use axum::extract::{DefaultBodyLimit, MatchedPath, Request, State as AxumState};
use axum::http::StatusCode;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::json;

pub use explorer::Dataset;
use state::{AppState, Ready};
pub use state::{Loaded, LoadedModel, Loader, ServeOptions};

/// Serves until SIGTERM or Ctrl-C; `Err` when the port cannot be bound or loading fails.
pub fn run(options: ServeOptions, dataset: Option<Dataset>, loader: Loader) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().context("starting the async runtime")?;
    runtime.block_on(serve(options, dataset, loader))
}

async fn serve(options: ServeOptions, dataset: Option<Dataset>, loader: Loader) -> anyhow::Result<()> {
    let address = format!("{}:{}", options.host, options.port);
    let listener = tokio::net::TcpListener::bind(&address)
        .await
        .with_context(|| format!("cannot listen on {address} (is another server on that port? --port picks another)"))?;
    let bound = listener.local_addr().context("reading the bound address")?;
    let queue = options.queue;
    let state = Arc::new(AppState { options, metrics: metrics::Metrics::default(), ready: OnceLock::new(), dataset });
    // Printed before loading so that scripts may wait on /health.
    eprintln!("ibert serve: listening on http://{bound} (loading the Ibis workers and the model; /health answers 503 until ready)");
    let (failed, load_failure) = tokio::sync::oneshot::channel::<anyhow::Error>();
    let loading = Arc::clone(&state);
    let counters = state.metrics.generation.clone();
    std::thread::Builder::new()
        .name("ibert-load".to_string())
        .spawn(move || {
            let started = Instant::now();
            match loader() {
                Ok(loaded) => {
                    let ready = Ready::new(loaded, queue, counters);
                    let model = ready.generation.as_ref().map_or("no model".to_string(), |queue| queue.describe.clone());
                    let _ = loading.ready.set(ready);
                    eprintln!("ibert serve: ready in {:.1} s ({model})", started.elapsed().as_secs_f64());
                }
                Err(error) => {
                    let _ = failed.send(error);
                }
            }
        })
        .context("starting the loading thread")?;
    let app = router(Arc::clone(&state));
    let failure = Arc::new(std::sync::Mutex::new(None));
    let failed_load = Arc::clone(&failure);
    let shutdown = async move {
        tokio::select! {
            _ = shutdown_signal() => eprintln!("ibert serve: stopping; finishing the requests in flight"),
            Ok(error) = load_failure => *failed_load.lock().unwrap_or_else(|poisoned| poisoned.into_inner()) = Some(error),
        }
    };
    axum::serve(listener, app).with_graceful_shutdown(shutdown).await.context("serving")?;
    if let Some(error) = failure.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).take() {
        return Err(error.context("loading the server's workers and model"));
    }
    eprintln!("ibert serve: stopped");
    Ok(())
}

fn router(state: state::State) -> Router {
    let api = Router::new()
        .route("/v1/tasks/to-sql", post(tasks::to_sql))
        .route("/v1/tasks/from-sql", post(tasks::from_sql))
        .route("/v1/tasks/complete", post(tasks::complete))
        .route("/v1/tasks/fix", post(tasks::fix))
        .route("/v1/tasks/qa", post(tasks::qa))
        .route("/v1/tasks/doc", post(tasks::doc))
        .route("/v1/chat/completions", post(openai::chat_completions))
        .route("/v1/completions", post(openai::completions))
        .route("/v1/models", get(openai::models))
        .route("/metrics", get(metrics_text))
        .route_layer(middleware::from_fn_with_state(Arc::clone(&state), auth::require_bearer));
    let explorer = Router::new()
        .route("/", get(explorer::page))
        .route("/api/summary", get(explorer::summary))
        .route("/api/records", get(explorer::records))
        .route("/api/records/{n}", get(explorer::record))
        .route("/api/rejects", get(explorer::rejects))
        .route_layer(middleware::from_fn_with_state(Arc::clone(&state), auth::require_session));
    Router::new()
        .merge(api)
        .merge(explorer)
        .route("/health", get(health))
        .route("/login", get(auth::login_page).post(auth::login))
        .fallback(not_found)
        .layer(middleware::from_fn_with_state(Arc::clone(&state), observe))
        .layer(DefaultBodyLimit::max(state.options.max_body_bytes))
        .with_state(state)
}

async fn health(AxumState(state): AxumState<state::State>) -> Response {
    match state.ready.get() {
        Some(ready) => {
            let model = ready.generation.as_ref().map(|queue| queue.model_id.clone());
            let body = json!({"status": "ok", "ibis": ready.pool.hello().ibis, "workers": ready.pool.size(), "model": model, "queue": state.queue_depth()});
            (StatusCode::OK, axum::Json(body)).into_response()
        }
        None => (StatusCode::SERVICE_UNAVAILABLE, axum::Json(json!({"status": "loading"}))).into_response(),
    }
}

async fn metrics_text(AxumState(state): AxumState<state::State>) -> Response {
    let text = state.metrics.render(state.queue_depth());
    ([(axum::http::header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], text).into_response()
}

async fn not_found(request: Request) -> errors::ApiError {
    errors::ApiError::new(StatusCode::NOT_FOUND, format!("no such endpoint: {} {}", request.method(), request.uri().path()))
}

/// Counts every request by route and status, and times it.
async fn observe(AxumState(state): AxumState<state::State>, request: Request, next: Next) -> Response {
    let route = request.extensions().get::<MatchedPath>().map_or("unmatched".to_string(), |path| path.as_str().to_string());
    let started = Instant::now();
    let response = next.run(request).await;
    state.metrics.observe_request(&route, response.status().as_u16(), started.elapsed());
    response
}

async fn shutdown_signal() {
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = terminate => {}
    }
}
