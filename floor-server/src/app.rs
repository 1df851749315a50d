//! The floor server as a value: its state, its router, and [`run`], which serves a bound listener
//! until a shutdown future resolves and then finishes the commits in flight.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use metrics_exporter_prometheus::PrometheusHandle;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::broadcast::Hub;
use crate::clock::SharedClock;
use crate::config::Config;
use crate::gateway::{self, ingest};
use crate::ledger;
use crate::store::{Backend, PoolSizes, Store};
use crate::telemetry;

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState {
    pub store: Store,
    pub clock: SharedClock,
    /// The club rules every ledger decision is made under.
    pub rules: Arc<club_rules::Rules>,
    pub hub: Hub,
    pub ingest: ingest::Ingest,
    /// The wallet API's writers and game-server secrets.
    pub wallet: crate::iaccount::api::WalletApi,
    /// Cancelled when the server starts shutting down.
    pub shutdown: CancellationToken,
    /// Terminal connections, waited for at shutdown.
    pub tasks: TaskTracker,
    pub metrics: PrometheusHandle,
    pub gateway: crate::config::GatewaySettings,
}

/// The HTTP routes.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics))
        .route(floor_protocol::GATEWAY_PATH, get(gateway::upgrade))
        .merge(crate::web::router(state.clone()))
        .merge(crate::iaccount::api::routes())
        .layer(tower_http::trace::TraceLayer::new_for_http())
        .with_state(state)
}

async fn healthz(State(state): State<AppState>) -> impl IntoResponse {
    match sqlx::query_scalar::<_, i64>("SELECT 1").fetch_one(state.store.read()).await {
        Ok(_) => (StatusCode::OK, "ok"),
        Err(e) => {
            tracing::error!(error = %e, "health check: database unreachable");
            (StatusCode::SERVICE_UNAVAILABLE, "database unreachable")
        }
    }
}

async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], state.metrics.render())
}

/// Opens and migrates the configured database.
pub async fn open_store(config: &Config) -> anyhow::Result<Store> {
    let store = Store::connect_with(&config.database_url, PoolSizes { postgres: config.postgres_pool, ..PoolSizes::default() })
        .await
        .context("opening the database")?;
    store.migrate().await.context("migrating the database")?;
    Ok(store)
}

/// Serves on `listener` until `shutdown` resolves; then stops taking connections, lets terminal
/// connections finish the events they handed on, drains the writers and closes the database.
pub async fn run(
    config: Config,
    store: Store,
    clock: SharedClock,
    listener: std::net::TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let rules = Arc::new(ledger::load_rules(config.rules.as_deref()).context("loading the club rules")?);
    tracing::info!(version = %rules.version(), "club rules loaded");
    let writers = match (config.ingest.writers, store.backend()) {
        (0, Backend::Sqlite) => 1,
        (0, Backend::Postgres) => 4,
        (n, _) => n,
    };
    let (ingest, writer_tasks) = ingest::Ingest::start(
        store.clone(),
        clock.clone(),
        rules.clone(),
        ingest::IngestConfig { max_batch: config.ingest.max_batch, writers, queue: config.ingest.queue },
    );
    let (wallet_writer, wallet_tasks) = crate::iaccount::batch::WalletWriter::start(store.clone(), &config.wallet);
    let stop = CancellationToken::new();
    let hub = Hub::default();
    let hub_task = tokio::spawn(hub.clone().run(store.clone(), Duration::from_millis(config.broadcast_poll_ms), stop.clone()));
    let jobs = ledger::spawn_jobs(store.clone(), rules.clone(), clock.clone(), stop.clone());
    let iaccount_jobs = crate::iaccount::jobs::spawn(store.clone(), clock.clone(), stop.clone());
    let state = AppState {
        store: store.clone(),
        clock,
        rules,
        hub,
        ingest,
        wallet: crate::iaccount::api::WalletApi::new(wallet_writer),
        shutdown: stop.clone(),
        tasks: TaskTracker::new(),
        metrics: telemetry::metrics_handle(),
        gateway: config.gateway,
    };
    let tasks = state.tasks.clone();
    let app = router(state);

    listener.set_nonblocking(true)?;
    let addr = listener.local_addr()?;
    let handle = axum_server::Handle::new();
    let grace = Duration::from_secs(config.shutdown_grace_secs);
    {
        let handle = handle.clone();
        let stop = stop.clone();
        tokio::spawn(async move {
            shutdown.await;
            tracing::info!("shutting down: finishing commits in flight");
            stop.cancel();
            handle.graceful_shutdown(Some(grace));
        });
    }
    let service = app.into_make_service();
    match &config.tls {
        Some(tls) => {
            let rustls = axum_server::tls_rustls::RustlsConfig::from_pem_file(&tls.cert, &tls.key)
                .await
                .with_context(|| format!("loading TLS certificate {} and key {}", tls.cert.display(), tls.key.display()))?;
            tracing::info!(%addr, "floor server listening (https, wss)");
            axum_server::from_tcp_rustls(listener, rustls)?.handle(handle).serve(service).await?;
        }
        None => {
            tracing::info!(%addr, "floor server listening (http, ws)");
            axum_server::from_tcp(listener)?.handle(handle).serve(service).await?;
        }
    }
    // Upgraded WebSockets outlive the HTTP server: wait for them to hand over their answers.
    tasks.close();
    if tokio::time::timeout(grace, tasks.wait()).await.is_err() {
        tracing::warn!("terminal connections did not finish in time");
    }
    for t in writer_tasks.into_iter().chain(wallet_tasks) {
        let _ = t.await;
    }
    stop.cancel();
    let _ = hub_task.await;
    let _ = jobs.await;
    let _ = iaccount_jobs.await;
    store.close().await;
    tracing::info!("floor server stopped");
    Ok(())
}

/// A `Ctrl-C` or `SIGTERM`.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        if let Ok(mut s) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            s.recv().await;
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {}
        _ = term => {}
    }
}
