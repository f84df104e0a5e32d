//! The request statistics a role keeps of what it answered (`GET /api/v1/health` shows
//! them): totals by status, per route template and method, recent durations for the
//! p95, and the last errors. Also `Seen`, one answered request as the middleware saw it,
//! and the labels it is counted under.

use crate::problem::ProblemNote;
use axum::http::{Method, StatusCode};
use serde::Serialize;
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Arc;

/// How many recent request durations the statistics keep (for mean and p95).
const RECENT: usize = 2048;
/// How many recent errors the statistics keep.
const LAST_ERRORS: usize = 10;

#[derive(Default)]
pub(super) struct Stats {
    total: u64,
    server_errors: u64,
    client_errors: u64,
    sum_ms: f64,
    by_status: BTreeMap<u16, u64>,
    /// Per route template: the tallies per method (a handful at most).
    by_route: HashMap<Arc<str>, Vec<(&'static str, RouteTally)>>,
    recent_ms: VecDeque<f64>,
    last_errors: VecDeque<ErrorNote>,
}

#[derive(Default)]
struct RouteTally {
    count: u64,
    errors: u64,
    sum_ms: f64,
}

/// One recent error response.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ErrorNote {
    pub at_ms: i64,
    pub method: String,
    pub route: String,
    pub status: u16,
    /// The problem code, when the response was a problem.
    #[schema(nullable = false)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
    #[schema(nullable = false)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

/// Requests per route.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct RouteCount {
    pub method: String,
    pub route: String,
    pub count: u64,
    /// Responses with a 5xx status.
    pub errors: u64,
    pub mean_ms: f64,
}

/// What the role answered since it started (probes and scrapes left out).
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct RequestSnapshot {
    pub total: u64,
    /// 5xx responses.
    pub server_errors: u64,
    /// 4xx responses.
    pub client_errors: u64,
    /// Share of 5xx responses (0 to 1).
    pub error_rate: f64,
    /// Mean time to answer, all requests since start (ms).
    pub mean_ms: f64,
    /// 95th percentile of the last (up to 2048) requests (ms).
    pub p95_ms: f64,
    /// Responses by status code.
    pub by_status: BTreeMap<String, u64>,
    /// The most requested routes, most first (at most 10).
    pub top_routes: Vec<RouteCount>,
    /// The last (up to 10) responses with a 4xx or 5xx status, newest first.
    pub last_errors: Vec<ErrorNote>,
}

/// One answered request, as the middleware saw it.
pub(super) struct Seen<'a> {
    pub(super) method: &'a Method,
    pub(super) route: &'a str,
    pub(super) status: StatusCode,
    pub(super) ms: f64,
}

pub(super) fn round2(v: f64) -> f64 {
    (v * 100.0).round() / 100.0
}

pub(super) fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::HEAD => "HEAD",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::OPTIONS => "OPTIONS",
        Method::PATCH => "PATCH",
        _ => "other",
    }
}

/// The route label of requests no route matched.
pub(super) const UNMATCHED: &str = "unmatched";

impl Stats {
    /// The statistics so far.
    pub(super) fn snapshot(&self) -> RequestSnapshot {
        let stats = self;
        let mut recent: Vec<f64> = stats.recent_ms.iter().copied().collect();
        recent.sort_by(f64::total_cmp);
        let p95 = if recent.is_empty() {
            0.0
        } else {
            recent[((recent.len() as f64 * 0.95).ceil() as usize).clamp(1, recent.len()) - 1]
        };
        let mut top: Vec<RouteCount> = stats
            .by_route
            .iter()
            .flat_map(|(route, methods)| {
                methods.iter().map(move |(method, t)| RouteCount {
                    method: (*method).to_owned(),
                    route: route.to_string(),
                    count: t.count,
                    errors: t.errors,
                    mean_ms: round2(t.sum_ms / t.count.max(1) as f64),
                })
            })
            .collect();
        top.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.route.cmp(&b.route)));
        top.truncate(10);
        RequestSnapshot {
            total: stats.total,
            server_errors: stats.server_errors,
            client_errors: stats.client_errors,
            error_rate: if stats.total == 0 {
                0.0
            } else {
                stats.server_errors as f64 / stats.total as f64
            },
            mean_ms: round2(stats.sum_ms / stats.total.max(1) as f64),
            p95_ms: round2(p95),
            by_status: stats
                .by_status
                .iter()
                .map(|(k, v)| (k.to_string(), *v))
                .collect(),
            top_routes: top,
            last_errors: stats.last_errors.iter().rev().cloned().collect(),
        }
    }

    /// Counts one answered request (and `problem`, the problem it was, if any).
    pub(super) fn record(&mut self, seen: &Seen<'_>, problem: Option<&ProblemNote>) {
        let stats = self;
        stats.total += 1;
        stats.sum_ms += seen.ms;
        *stats.by_status.entry(seen.status.as_u16()).or_default() += 1;
        let server_error = seen.status.is_server_error();
        if server_error {
            stats.server_errors += 1;
        } else if seen.status.is_client_error() {
            stats.client_errors += 1;
        }
        let method = method_label(seen.method);
        let methods = match stats.by_route.get_mut(seen.route) {
            Some(methods) => methods,
            None => stats.by_route.entry(Arc::from(seen.route)).or_default(),
        };
        let at = match methods.iter().position(|(m, _)| *m == method) {
            Some(at) => at,
            None => {
                methods.push((method, RouteTally::default()));
                methods.len() - 1
            }
        };
        let tally = &mut methods[at].1;
        tally.count += 1;
        tally.sum_ms += seen.ms;
        tally.errors += u64::from(server_error);
        if stats.recent_ms.len() == RECENT {
            stats.recent_ms.pop_front();
        }
        stats.recent_ms.push_back(seen.ms);
        if seen.status.is_client_error() || server_error {
            if stats.last_errors.len() == LAST_ERRORS {
                stats.last_errors.pop_front();
            }
            stats.last_errors.push_back(ErrorNote {
                at_ms: plotq_ports::clock::now_ms(),
                method: method_label(seen.method).to_owned(),
                route: seen.route.to_owned(),
                status: seen.status.as_u16(),
                code: problem.map(|p| p.code.as_str().to_owned()),
                detail: problem.map(|p| p.detail.clone()),
            });
        }
    }
}
