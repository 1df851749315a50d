//! What the floor server's benchmarks share: their knobs from the environment, the backends to
//! measure, running the rounds and taking medians.
#![allow(dead_code)] // each bench uses its own part
#![allow(clippy::float_arithmetic)] // figures, not money

use floor_server::store::Backend;

/// A size knob from the environment, or its default.
pub fn env(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// The backends `BENCH_BACKEND` asks for (`sqlite`, `postgres`, or both by default).
pub fn backends() -> Vec<Backend> {
    match std::env::var("BENCH_BACKEND").as_deref() {
        Ok("sqlite") => vec![Backend::Sqlite],
        Ok("postgres") => vec![Backend::Postgres],
        _ => vec![Backend::Sqlite, Backend::Postgres],
    }
}

/// Runs `rounds` rounds on `backend`; none when its database is not reachable here (said once).
pub fn run_rounds<R, F>(runtime: &tokio::runtime::Runtime, backend: Backend, rounds: usize, mut round: impl FnMut() -> F) -> Vec<R>
where
    F: std::future::Future<Output = Option<R>>,
{
    let mut results = Vec::new();
    for _ in 0..rounds {
        match runtime.block_on(round()) {
            Some(r) => results.push(r),
            None => {
                println!("{backend:?}: skipped (database not reachable)");
                break;
            }
        }
    }
    results
}

/// The median of one figure over the rounds.
pub fn median<R>(results: &[R], figure: impl Fn(&R) -> f64) -> f64 {
    let mut v: Vec<f64> = results.iter().map(figure).collect();
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}
