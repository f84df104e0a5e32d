//! `GET /api/v1/health`: one role's health report for people (the dashboard's Health
//! tab) — version, role, uptime, each dependency's state and round-trip time, process
//! and host memory, and the request statistics its `Observer` keeps.
//!
//! It is a report, not a probe: always `200` (with `status: degraded` when a dependency
//! is failing); `/readyz` is what load balancers ask. Reading it needs the `read` scope
//! (anyone when authentication is off), which shows the dependencies' states; the rest
//! is the whole process's, every tenant's traffic included, so only callers with the
//! `admin` scope get it: what a failing dependency said (as in `/readyz`), process and
//! host memory, and the request statistics.

use crate::auth::{Caller, Scope};
use crate::observe::{Observer, ProcessInfo, RequestSnapshot};
use crate::openapi::AuthProblems;
use crate::probe::{PROBE_TIMEOUT, Probe, ProbeFailure, probe_all};
use crate::problem::Problem;
use axum::extract::State;
use axum::{Json, Router};
use serde::Serialize;
use std::sync::Arc;
use std::time::Duration;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// `GET /api/v1/health` for a role observed by `observer`, with the probes of the
/// dependencies it uses (none in standalone mode).
pub fn health_router(observer: Observer, probes: Vec<Probe>) -> Router {
    router(observer, probes, PROBE_TIMEOUT)
}

/// `GET /api/v1/health` with its entry in the OpenAPI document.
pub(crate) fn health_routes() -> OpenApiRouter<Arc<Reporter>> {
    OpenApiRouter::new().routes(routes!(health))
}

fn router(observer: Observer, probes: Vec<Probe>, timeout: Duration) -> Router {
    let (routes, _) = health_routes().split_for_parts();
    routes.with_state(Arc::new(Reporter {
        observer,
        probes,
        timeout,
    }))
}

/// What the report is made from.
pub(crate) struct Reporter {
    observer: Observer,
    probes: Vec<Probe>,
    /// How long one probe may take.
    timeout: Duration,
}

/// The health report of one role.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct HealthReport {
    /// `ok` when every dependency answers, else `degraded` (the status code is 200 either
    /// way; `/readyz` is the probe).
    pub status: HealthStatus,
    /// plotq's version.
    #[schema(example = "0.1.0")]
    pub version: String,
    /// The role answering: `api`, `notifier` or `standalone`.
    #[schema(example = "standalone")]
    pub role: String,
    /// Whole seconds since the role started.
    pub uptime_secs: u64,
    /// Each dependency of this role (none in standalone mode), in a fixed order.
    pub dependencies: Vec<DependencyHealth>,
    /// This process (`admin` scope only).
    #[schema(nullable = false)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub process: Option<ProcessHealth>,
    /// The machine it runs on (`admin` scope only).
    #[schema(nullable = false)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub host: Option<HostHealth>,
    /// Every request this process answered, of every caller (`admin` scope only).
    #[schema(nullable = false)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub requests: Option<RequestSnapshot>,
}

/// The overall state of a role.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum HealthStatus {
    Ok,
    Degraded,
}

/// Whether a dependency answered its probe.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum DependencyStatus {
    Ok,
    Failing,
}

/// One dependency, as its probe found it just now.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct DependencyHealth {
    /// `mongodb`, `rabbitmq` or `redis`.
    pub name: String,
    pub status: DependencyStatus,
    /// How long the probe took to answer or fail (at most the 3 s probe timeout), ms.
    #[schema(minimum = 0)]
    pub rtt_ms: f64,
    /// What the dependency said when failing; only for callers with the `admin` scope.
    #[schema(nullable = false)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub problem: Option<String>,
}

/// This process (zeros where the platform does not tell).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ProcessHealth {
    /// Resident memory, bytes.
    pub rss_bytes: u64,
    /// Virtual memory, bytes.
    pub virtual_bytes: u64,
    pub threads: u64,
    /// Open file descriptors.
    pub open_files: u64,
}

/// The machine (or container) the process runs on (zeros where the platform does not
/// tell).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct HostHealth {
    pub memory_total_bytes: u64,
    pub memory_available_bytes: u64,
    /// CPUs this process may use.
    pub cpus: u64,
}

/// This role's health: version, uptime, dependencies, memory, requests.
///
/// Always `200` when the caller may read: a failing dependency makes it `degraded`, not
/// an error. Requests to it are not counted in its own statistics.
#[utoipa::path(
    get, path = "/api/v1/health", tag = "health",
    responses(
        (status = 200, description = "The role's health report", body = HealthReport),
        AuthProblems,
    ),
    security(("bearer" = ["read"]), ("ticket" = []))
)]
pub(crate) async fn health(
    State(reporter): State<Arc<Reporter>>,
    caller: Caller,
) -> Result<Json<HealthReport>, Problem> {
    caller.require(Scope::Read)?;
    let detailed = caller.require(Scope::Admin).is_ok();
    let (dependencies, process) = tokio::join!(
        report_probes(&reporter.probes, reporter.timeout, detailed),
        async {
            if detailed {
                tokio::task::spawn_blocking(ProcessInfo::read)
                    .await
                    .unwrap_or_default()
            } else {
                ProcessInfo::default()
            }
        },
    );
    let status = if dependencies
        .iter()
        .all(|d| d.status == DependencyStatus::Ok)
    {
        HealthStatus::Ok
    } else {
        HealthStatus::Degraded
    };
    Ok(Json(HealthReport {
        status,
        version: env!("CARGO_PKG_VERSION").to_owned(),
        role: reporter.observer.role().to_owned(),
        uptime_secs: reporter.observer.uptime().as_secs(),
        dependencies,
        process: detailed.then_some(ProcessHealth {
            rss_bytes: process.rss_bytes,
            virtual_bytes: process.virtual_bytes,
            threads: process.threads,
            open_files: process.open_files,
        }),
        host: detailed.then_some(HostHealth {
            memory_total_bytes: process.host_memory_total_bytes,
            memory_available_bytes: process.host_memory_available_bytes,
            cpus: process.cpus,
        }),
        // Every caller's requests (their routes, statuses and errors): operators only.
        requests: detailed.then(|| reporter.observer.snapshot()),
    }))
}

/// Runs every probe at once, each bounded by `timeout`. Failures are logged at
/// debug only: a health page left open polls every few seconds, and outages are logged
/// by the dependency's breaker and by `/readyz`.
async fn report_probes(
    probes: &[Probe],
    timeout: Duration,
    detailed: bool,
) -> Vec<DependencyHealth> {
    probe_all(probes, timeout)
        .await
        .into_iter()
        .map(|p| {
            match &p.outcome {
                Ok(()) => {}
                Err(ProbeFailure::Failed(e)) => {
                    tracing::debug!(dependency = p.name, error = %e, "health report: probe failed");
                }
                Err(ProbeFailure::TimedOut(_)) => {
                    tracing::debug!(dependency = p.name, "health report: probe timed out");
                }
            }
            DependencyHealth {
                name: p.name.to_owned(),
                status: if p.outcome.is_ok() {
                    DependencyStatus::Ok
                } else {
                    DependencyStatus::Failing
                },
                rtt_ms: p.rtt_ms,
                problem: p.problem().filter(|_| detailed),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::{Auth, AuthConfig, hash_token, new_token, parse_tokens};
    use crate::edge::{Edge, EdgeConfig, harden};
    use crate::limits::{Limits, LimitsConfig};
    use crate::observe::ObserveConfig;
    use axum::body::Body;
    use axum::http::{Request, StatusCode, header};
    use futures::FutureExt;
    use http_body_util::BodyExt;
    use plotq_ports::PortError;
    use serde_json::Value;
    use tower::ServiceExt;

    fn probe(name: &'static str, result: Result<(), &'static str>) -> Probe {
        Probe {
            name,
            check: Arc::new(move || {
                async move { result.map_err(|e| PortError::unavailable(name, e)) }.boxed()
            }),
        }
    }

    fn hanging(name: &'static str) -> Probe {
        Probe {
            name,
            check: Arc::new(|| futures::future::pending().boxed()),
        }
    }

    /// The health route of an observed role behind the shared edge, as roles serve it.
    fn app(auth: AuthConfig, probes: Vec<Probe>) -> Router {
        app_with_timeout(auth, probes, PROBE_TIMEOUT)
    }

    fn app_with_timeout(auth: AuthConfig, probes: Vec<Probe>, timeout: Duration) -> Router {
        let (observer, _) = Observer::new(
            "test",
            ObserveConfig {
                self_service: None,
                ..ObserveConfig::default()
            },
        );
        let edge = Edge {
            auth: Auth::new(auth),
            limits: Limits::new(LimitsConfig::default()),
            config: EdgeConfig::default(),
        };
        observer.wrap(harden(router(observer.clone(), probes, timeout), &edge))
    }

    async fn get(app: &Router, uri: &str, token: Option<&str>) -> (StatusCode, Value) {
        let mut request = Request::builder().uri(uri);
        if let Some(token) = token {
            request = request.header(header::AUTHORIZATION, format!("Bearer {token}"));
        }
        let response = app
            .clone()
            .oneshot(request.body(Body::empty()).unwrap())
            .await
            .unwrap();
        let status = response.status();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        (
            status,
            serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        )
    }

    #[tokio::test]
    async fn reports_version_role_dependencies_process_and_requests() {
        let app = app(AuthConfig::open(), vec![probe("redis", Ok(()))]);
        // One unmatched request (counted), then the report (not counted).
        let (status, _) = get(&app, "/nowhere", None).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        let (status, body) = get(&app, "/api/v1/health", None).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(body["status"], "ok");
        assert_eq!(body["version"], env!("CARGO_PKG_VERSION"));
        assert_eq!(body["role"], "test");
        assert!(body["uptime_secs"].is_u64());
        let deps = body["dependencies"].as_array().unwrap();
        assert_eq!(deps.len(), 1);
        assert_eq!(deps[0]["name"], "redis");
        assert_eq!(deps[0]["status"], "ok");
        assert!(deps[0]["rtt_ms"].as_f64().unwrap() >= 0.0);
        assert!(
            deps[0].get("problem").is_none(),
            "no problem when answering"
        );
        for key in ["rss_bytes", "virtual_bytes", "threads", "open_files"] {
            assert!(body["process"][key].is_u64(), "process.{key}");
        }
        for key in ["memory_total_bytes", "memory_available_bytes", "cpus"] {
            assert!(body["host"][key].is_u64(), "host.{key}");
        }
        if cfg!(target_os = "linux") {
            assert!(body["process"]["rss_bytes"].as_u64().unwrap() > 0);
            assert!(body["process"]["threads"].as_u64().unwrap() > 0);
            assert!(body["host"]["memory_total_bytes"].as_u64().unwrap() > 0);
        }
        let requests = &body["requests"];
        assert_eq!(requests["total"], 1, "the report itself is not counted");
        assert_eq!(requests["client_errors"], 1);
        assert_eq!(requests["by_status"]["404"], 1);
        assert_eq!(requests["last_errors"][0]["route"], "unmatched");
        assert_eq!(requests["last_errors"][0]["code"], "not_found");
        assert_eq!(requests["top_routes"][0]["count"], 1);
        for key in ["error_rate", "mean_ms", "p95_ms"] {
            assert!(requests[key].is_f64(), "requests.{key}");
        }
    }

    #[tokio::test]
    async fn a_failing_dependency_is_degraded_and_only_admins_read_why() {
        let (reader, admin) = (new_token(), new_token());
        let auth = AuthConfig {
            tokens: parse_tokens(&format!(
                "{} scopes=read name=reader\n{} scopes=read,admin name=operator",
                hash_token(&reader),
                hash_token(&admin)
            ))
            .unwrap(),
            ..AuthConfig::open()
        };
        let app = app(
            auth,
            vec![
                probe("mongodb", Ok(())),
                probe("redis", Err("connection refused by 10.0.0.7:6379")),
            ],
        );

        let (status, body) = get(&app, "/api/v1/health", None).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        assert_eq!(body["code"], "unauthorized");

        let (status, body) = get(&app, "/api/v1/health", Some(&reader)).await;
        assert_eq!(status, StatusCode::OK, "a report, not a probe");
        assert_eq!(body["status"], "degraded");
        let deps = body["dependencies"].as_array().unwrap();
        assert_eq!(deps[0]["name"], "mongodb");
        assert_eq!(deps[0]["status"], "ok");
        assert_eq!(deps[1]["name"], "redis");
        assert_eq!(deps[1]["status"], "failing");
        assert!(deps[1].get("problem").is_none(), "{body}");
        assert!(!body.to_string().contains("10.0.0.7"));
        for private in ["requests", "process", "host"] {
            assert!(
                body.get(private).is_none(),
                "{private} is for admins: {body}"
            );
        }

        let (status, body) = get(&app, "/api/v1/health", Some(&admin)).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(body["status"], "degraded");
        let problem = body["dependencies"][1]["problem"].as_str().unwrap();
        assert!(
            problem.contains("connection refused by 10.0.0.7:6379"),
            "{problem}"
        );
        assert!(body["dependencies"][0].get("problem").is_none());
        for private in ["requests", "process", "host"] {
            assert!(body[private].is_object(), "{private} for the operator");
        }
    }

    #[tokio::test]
    async fn a_dependency_that_does_not_answer_is_failing_after_the_timeout() {
        let app = app_with_timeout(
            AuthConfig::open(),
            vec![probe("rabbitmq", Ok(())), hanging("redis")],
            Duration::from_millis(50),
        );
        let (status, body) = get(&app, "/api/v1/health", None).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(body["status"], "degraded");
        let redis = &body["dependencies"][1];
        assert_eq!(redis["status"], "failing");
        assert!(redis["rtt_ms"].as_f64().unwrap() >= 50.0, "{redis}");
        // Open mode: everyone is an operator.
        assert!(
            redis["problem"]
                .as_str()
                .unwrap()
                .contains("no answer within")
        );
        assert_eq!(body["dependencies"][0]["status"], "ok");
    }
}
