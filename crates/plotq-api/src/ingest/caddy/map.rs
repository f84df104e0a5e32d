//! How an access entry becomes samples: [`ServiceMap`] turns its host into a service
//! (only rules or a default service name services, never hosts by themselves) and
//! [`ServiceMap::samples`] makes its two samples at its `ts`: the duration in
//! milliseconds as [`DURATION_METRIC`] (`http_request_duration_ms`, or
//! `http_request_duration_ms.<method>` with [`ServiceMap::metric_per_method`]), and the
//! status code as [`STATUS_METRIC`]. Plot kinds read exactly one metric each, the spec's
//! `metric`; there is no companion-metric convention. `status_codes` and `error_rate`
//! default to `status_code` ([`DEFAULT_STATUS_METRIC`]), so the status samples are
//! written under that name and those plots work without a `metric`; the latency kinds
//! default to `latency_ms`, so their requests name `"metric": "http_request_duration_ms"`.

use super::line::AccessEntry;
use plotq_domain::error::excerpt;
use plotq_domain::plot::DEFAULT_STATUS_METRIC;
use plotq_domain::{FieldError, MetricName, Sample, ServiceName};

/// The metric of a request's duration, in milliseconds.
pub const DURATION_METRIC: &str = "http_request_duration_ms";
/// The metric of a request's status code: the one `status_codes` and `error_rate` read
/// by default.
pub const STATUS_METRIC: &str = DEFAULT_STATUS_METRIC;
/// Samples made from one access entry.
pub const SAMPLES_PER_ENTRY: usize = 2;
/// Most `host=service` rules in one [`ServiceMap`].
pub const MAX_MAP_RULES: usize = 100;

/// How an access entry's host becomes a service: the first of
///
/// 1. a rule for the host: an exact host (`api.example.com=api`) wins over a wildcard
///    (`*.example.com=web`, which matches every subdomain of `example.com` but not
///    `example.com` itself), and of two wildcards the longer suffix wins;
/// 2. the default service, when there is one;
/// 3. none: the line is malformed (hosts are chosen by whoever sends the edge a
///    request, so they never name services by themselves).
///
/// Hosts are compared lowercased, without a port and a trailing dot ([`normalize_host`]).
/// With `metric_per_method`, the duration metric carries the method
/// (`http_request_duration_ms.get`); the status metric never does.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ServiceMap {
    exact: Vec<(String, ServiceName)>,
    /// `(".example.com", service)`, longest suffix first.
    suffixes: Vec<(String, ServiceName)>,
    pub default_service: Option<ServiceName>,
    pub metric_per_method: bool,
}

impl ServiceMap {
    /// No rules; `default_service` for every host, if given.
    pub fn new(default_service: Option<ServiceName>) -> Self {
        Self {
            default_service,
            ..Self::default()
        }
    }

    /// How many `host=service` rules it has.
    pub fn rules(&self) -> usize {
        self.exact.len() + self.suffixes.len()
    }

    /// Adds one `host=service` or `*.suffix=service` rule (at most [`MAX_MAP_RULES`]).
    pub fn add_rule(&mut self, rule: &str) -> Result<(), String> {
        if self.rules() >= MAX_MAP_RULES {
            return Err(format!("more than {MAX_MAP_RULES} rules"));
        }
        let Some((host, service)) = rule.split_once('=') else {
            return Err(format!("{} is not host=service", excerpt(rule)));
        };
        let service =
            ServiceName::parse(service.trim()).map_err(|p| format!("{}: {p}", excerpt(rule)))?;
        let host = host.trim().to_ascii_lowercase();
        let valid_host = |h: &str| {
            !h.is_empty()
                && h.len() <= 253
                && h.bytes()
                    .all(|b| b.is_ascii_graphic() && !b"=,*/".contains(&b))
        };
        match host.strip_prefix("*.") {
            Some(suffix) if valid_host(suffix) => {
                let suffix = format!(".{}", suffix.trim_end_matches('.'));
                self.suffixes.retain(|(s, _)| *s != suffix);
                self.suffixes.push((suffix, service));
                self.suffixes
                    .sort_by_key(|(suffix, _)| std::cmp::Reverse(suffix.len()));
            }
            None if valid_host(&host) => {
                let host = normalize_host(&host);
                self.exact.retain(|(h, _)| *h != host);
                self.exact.push((host, service));
            }
            _ => {
                return Err(format!(
                    "{}: the host must be a host name or *.suffix",
                    excerpt(rule)
                ));
            }
        }
        Ok(())
    }

    /// Adds comma-separated rules (`a.example.com=a,*.example.com=web`); empty items are
    /// ignored.
    pub fn add_rules(&mut self, rules: &str) -> Result<(), String> {
        for rule in rules.split(',').filter(|r| !r.trim().is_empty()) {
            self.add_rule(rule)?;
        }
        Ok(())
    }

    /// The service of `host` (as logged), or why there is none.
    pub fn service_for(&self, host: &str) -> Result<ServiceName, String> {
        let host = normalize_host(host);
        if let Some((_, service)) = self.exact.iter().find(|(h, _)| *h == host) {
            return Ok(service.clone());
        }
        if let Some((_, service)) = self
            .suffixes
            .iter()
            .find(|(suffix, _)| host.len() > suffix.len() && host.ends_with(suffix.as_str()))
        {
            return Ok(service.clone());
        }
        if let Some(service) = &self.default_service {
            return Ok(service.clone());
        }
        // Hosts are written by whoever sends the edge a request: a service per unknown
        // host would let scanners create services without bound. Only rules name them.
        Err(if host.is_empty() {
            "is empty, and no default service was given".to_owned()
        } else {
            format!(
                "{} matches no map rule, and no default service was given (`service=`)",
                excerpt(&host)
            )
        })
    }

    /// The duration metric of requests with `method`.
    pub fn duration_metric(&self, method: &str) -> MetricName {
        let plain = || MetricName::parse(DURATION_METRIC).expect("a valid metric name");
        if !self.metric_per_method {
            return plain();
        }
        // A fixed set: methods are the client's to invent, metric names must stay few.
        let method = match method.to_ascii_uppercase().as_str() {
            "GET" => "get",
            "POST" => "post",
            "PUT" => "put",
            "DELETE" => "delete",
            "PATCH" => "patch",
            "HEAD" => "head",
            "OPTIONS" => "options",
            "" => return plain(),
            _ => "other",
        };
        MetricName::parse(&format!("{DURATION_METRIC}.{method}"))
            .expect("letters, digits, '_' and '-' after a valid prefix, within the length")
    }

    /// The samples of one access entry: its duration and its status, at its `ts`.
    pub fn samples(&self, entry: &AccessEntry) -> Result<[Sample; SAMPLES_PER_ENTRY], FieldError> {
        let service = self
            .service_for(&entry.host)
            .map_err(|p| FieldError::new("/request/host", p))?;
        Ok([
            Sample {
                service: service.clone(),
                metric: self.duration_metric(&entry.method),
                value: entry.duration_ms,
                timestamp_ms: entry.timestamp_ms,
                labels: plotq_domain::Labels::none(),
            },
            Sample {
                service,
                metric: MetricName::parse(STATUS_METRIC).expect("a valid metric name"),
                value: f64::from(entry.status),
                timestamp_ms: entry.timestamp_ms,
                labels: plotq_domain::Labels::none(),
            },
        ])
    }
}

/// A host as rules compare it: lowercased, without a port (`example.com:8443`,
/// `[::1]:8080`) or IPv6 brackets, without a trailing dot.
pub fn normalize_host(host: &str) -> String {
    let host = host.trim();
    let bare = if let Some(rest) = host.strip_prefix('[') {
        rest.split(']').next().unwrap_or(rest)
    } else if host.matches(':').count() == 1 {
        host.split(':').next().unwrap_or(host)
    } else {
        host
    };
    bare.trim_end_matches('.').to_ascii_lowercase()
}
