//! [`PlotQuery`]: a plot request as query parameters, read by `GET /api/v1/render` (every
//! parameter, [`RENDER_PARAMETERS`]) and `GET /api/v1/stats` (the data's,
//! [`STATS_PARAMETERS`]).
//! One struct, one description of each parameter for the document, one conversion into
//! the JSON object a `POST /api/v1/plots` body is, so that `PlotSpec::parse` validates
//! it and a bad parameter is the same `422` naming the field.
//!
//! A parameter a route does not read is refused, each named, never ignored. `ticket` is read by the authenticator and `grant` by the render route;
//! neither is part of the plot.

use plotq_domain::error::{MAX_REPORTED_ERRORS, pointer_segment};
use plotq_domain::{FieldError, FieldErrors, PlotSpec};
use plotq_http::Problem;
use serde::Deserialize;
use serde_json::{Map, Value};
use std::collections::BTreeMap;
use utoipa::IntoParams;
use utoipa::openapi::path::Parameter;

/// The query parameters of a plot.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PlotQuery {
    /// The plot kind.
    #[param(nullable = false, value_type = plotq_http::KindDoc)]
    kind: Option<String>,
    /// One service (or use `services`).
    #[param(nullable = false, pattern = "^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$")]
    service: Option<String>,
    /// Comma-separated services, 1 to 8, for the kinds that compare (histogram,
    /// latency_timeseries, throughput, error_rate, cdf); not with `service`.
    #[param(nullable = false, example = "checkout,payments")]
    services: Option<String>,
    /// Defaults to `latency_ms` (`status_code` for status_codes and error_rate).
    #[param(nullable = false, pattern = "^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$")]
    metric: Option<String>,
    /// The last `window` (default `10m`, 10s to 90d); not with `from`/`until`.
    #[param(nullable = false, pattern = "^[0-9]+[smhd]$", example = "1h")]
    window: Option<String>,
    /// Start of an absolute range: epoch milliseconds or RFC 3339; not with `window`.
    #[param(nullable = false, example = "2026-11-22T10:00:00Z")]
    from: Option<String>,
    /// End of an absolute range (default: now); only with `from`.
    #[param(nullable = false, example = "1795345200000")]
    until: Option<String>,
    /// Image width in pixels (200 to 4000, default 1000).
    #[param(nullable = false, value_type = Option<u32>, minimum = 200, maximum = 4000)]
    width: Option<String>,
    /// Image height in pixels (150 to 4000, default 600).
    #[param(nullable = false, value_type = Option<u32>, minimum = 150, maximum = 4000)]
    height: Option<String>,
    /// Device pixels per layout pixel (1 to 4, default 1): the image is laid out at
    /// width/scale × height/scale and drawn `scale` times sharper.
    #[param(nullable = false, value_type = Option<u32>, minimum = 1, maximum = 4)]
    scale: Option<String>,
    /// Histogram bins (1 to 1000, default 50).
    #[param(nullable = false, value_type = Option<u32>, minimum = 1, maximum = 1000)]
    bins: Option<String>,
    /// Logarithmic latency axis (histogram and cdf).
    #[param(nullable = false, value_type = Option<bool>)]
    log_x: Option<String>,
    /// Also draw each bucket's maximum (latency_timeseries).
    #[param(nullable = false, value_type = Option<bool>)]
    show_max: Option<String>,
    /// `light` (default) or `dark`.
    #[param(nullable = false, pattern = "^(light|dark)$")]
    theme: Option<String>,
    /// `png` (default) or `svg`.
    #[param(nullable = false, pattern = "^(png|svg)$")]
    format: Option<String>,
    /// A title instead of the generated one (at most 120 characters).
    #[param(nullable = false)]
    title: Option<String>,
    /// Only the series with these labels: a JSON object of label names to values
    /// (exact match of every pair), e.g. `{"route":"/pay"}`.
    #[param(nullable = false, example = r#"{"route":"/pay"}"#)]
    labels: Option<String>,
    /// One line or curve per value of this label (the most frequent values, the rest as
    /// `other`): every kind but correlation, of one service.
    #[param(
        nullable = false,
        pattern = "^[A-Za-z_][A-Za-z0-9_]{0,63}$",
        example = "route"
    )]
    group_by: Option<String>,
    /// Correlation: y's statistic per bucket (default `p95`).
    #[param(nullable = false, value_type = Option<plotq_http::StatDoc>)]
    stat: Option<String>,
    /// Correlation: x's metric (default: `metric`).
    #[param(nullable = false, pattern = "^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$")]
    x_metric: Option<String>,
    /// Correlation: x's statistic per bucket (default `rate`).
    #[param(nullable = false, value_type = Option<plotq_http::StatDoc>)]
    x_stat: Option<String>,
    /// Correlation: x's service (default: `service`; the label filter then applies to y
    /// only).
    #[param(nullable = false, pattern = "^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$")]
    x_service: Option<String>,
    /// Correlation: the time bucket of one point (default `1m`, 10s to 1d; the range
    /// must hold 3 to 10,080 of them).
    #[param(nullable = false, pattern = "^[0-9]+[smhd]$", example = "5m")]
    bucket: Option<String>,
    /// Values marked on the value axis, as a JSON array of at most 8
    /// `{"value": number, "label": string}` objects, e.g. `[{"value":250,"label":"SLO"}]`.
    #[param(nullable = false, example = r#"[{"value":250,"label":"SLO"}]"#)]
    thresholds: Option<String>,
    /// A read ticket (`POST /api/v1/tickets`), read by the authenticator.
    #[param(nullable = false)]
    pub(crate) ticket: Option<String>,
    /// A signed link's grant (`POST /api/v1/render/grants`), valid for exactly the other
    /// parameters it was minted with.
    #[param(nullable = false)]
    pub(crate) grant: Option<String>,
    /// Any other parameter: refused, each named.
    #[serde(flatten)]
    #[param(ignore)]
    unknown: BTreeMap<String, String>,
}

/// What `GET /api/v1/stats` reads: a plot's data parameters, and `ticket`.
pub(crate) const STATS_PARAMETERS: [&str; 15] = [
    "kind",
    "service",
    "services",
    "metric",
    "window",
    "from",
    "until",
    "labels",
    "group_by",
    "stat",
    "x_metric",
    "x_stat",
    "x_service",
    "bucket",
    "ticket",
];

/// What `GET /api/v1/render` reads: every parameter of [`PlotQuery`].
pub(crate) const RENDER_PARAMETERS: [&str; 26] = [
    "kind",
    "service",
    "services",
    "metric",
    "window",
    "from",
    "until",
    "width",
    "height",
    "scale",
    "bins",
    "log_x",
    "show_max",
    "theme",
    "format",
    "title",
    "labels",
    "group_by",
    "stat",
    "x_metric",
    "x_stat",
    "x_service",
    "bucket",
    "thresholds",
    "ticket",
    "grant",
];

impl PlotQuery {
    /// The plot parameters in their fixed order (what a grant signs).
    fn pairs(&self) -> [(&'static str, Option<&String>); 24] {
        [
            ("kind", self.kind.as_ref()),
            ("service", self.service.as_ref()),
            ("services", self.services.as_ref()),
            ("metric", self.metric.as_ref()),
            ("window", self.window.as_ref()),
            ("from", self.from.as_ref()),
            ("until", self.until.as_ref()),
            ("width", self.width.as_ref()),
            ("height", self.height.as_ref()),
            ("scale", self.scale.as_ref()),
            ("bins", self.bins.as_ref()),
            ("log_x", self.log_x.as_ref()),
            ("show_max", self.show_max.as_ref()),
            ("theme", self.theme.as_ref()),
            ("format", self.format.as_ref()),
            ("title", self.title.as_ref()),
            ("labels", self.labels.as_ref()),
            ("group_by", self.group_by.as_ref()),
            ("stat", self.stat.as_ref()),
            ("x_metric", self.x_metric.as_ref()),
            ("x_stat", self.x_stat.as_ref()),
            ("x_service", self.x_service.as_ref()),
            ("bucket", self.bucket.as_ref()),
            ("thresholds", self.thresholds.as_ref()),
        ]
    }

    /// The plot parameters, form-encoded in their fixed order: one plot, one string.
    pub fn canonical(&self) -> String {
        let mut out = form_urlencoded::Serializer::new(String::new());
        for (name, value) in self.pairs() {
            if let Some(value) = value {
                out.append_pair(name, value);
            }
        }
        out.finish()
    }

    /// `422` naming (under `under`) every parameter given that is not one of `known`.
    fn refuse_unknown(&self, known: &[&str], under: &str) -> Result<(), Problem> {
        let claims = [
            ("ticket", self.ticket.as_ref()),
            ("grant", self.grant.as_ref()),
        ];
        let mut unknown = self.unknown.clone();
        for (name, value) in self.pairs().into_iter().chain(claims) {
            if let Some(value) = value.filter(|_| !known.contains(&name)) {
                unknown.insert(name.to_owned(), value.clone());
            }
        }
        if unknown.is_empty() {
            return Ok(());
        }
        let known = known.join(", ");
        let errors = unknown
            .keys()
            .take(MAX_REPORTED_ERRORS)
            .map(|name| {
                FieldError::new(
                    format!("{under}/{}", pointer_segment(name)),
                    format!("unknown parameter; known parameters: {known}"),
                )
            })
            .collect();
        Err(Problem::invalid(FieldErrors(errors)))
    }

    /// The plot request this query stands for, as `POST /api/v1/plots` would take it:
    /// numbers and booleans as JSON numbers and booleans when they read as such (else
    /// the string, which the spec's rules then name), `services` split on commas,
    /// timestamps as epoch-ms numbers or RFC 3339 strings; `kind` is `default_kind` when
    /// the query has none.
    fn plot_request(&self, default_kind: Option<&str>) -> Value {
        let mut request = Map::new();
        for (name, value) in self.pairs() {
            let Some(raw) = value else { continue };
            let value = match name {
                "services" => Value::Array(raw.split(',').map(|s| s.trim().into()).collect()),
                "width" | "height" | "scale" | "bins" => raw
                    .parse::<u64>()
                    .map_or_else(|_| raw.as_str().into(), Value::from),
                "from" | "until" => timestamp(raw),
                // A JSON object when it is one; else the string, which the rules name.
                "labels" => serde_json::from_str::<Value>(raw)
                    .ok()
                    .filter(Value::is_object)
                    .unwrap_or_else(|| raw.as_str().into()),
                // A JSON array when it is one; else the string, which the rules name.
                "thresholds" => serde_json::from_str::<Value>(raw)
                    .ok()
                    .filter(Value::is_array)
                    .unwrap_or_else(|| raw.as_str().into()),
                "log_x" | "show_max" => match raw.as_str() {
                    "true" | "1" => true.into(),
                    "false" | "0" => false.into(),
                    other => other.into(),
                },
                _ => raw.as_str().into(),
            };
            request.insert(name.into(), value);
        }
        if let (None, Some(kind)) = (&self.kind, default_kind) {
            request.insert("kind".into(), kind.into());
        }
        Value::Object(request)
    }

    /// The spec this query stands for on a route that reads the parameters `known` (any
    /// other is `422`), `kind` defaulting to `default_kind`, every problem named as the
    /// parameter (under `under`).
    pub(crate) fn spec(
        &self,
        known: &[&str],
        default_kind: Option<&str>,
        now: i64,
        under: &str,
    ) -> Result<PlotSpec, Problem> {
        self.refuse_unknown(known, under)?;
        PlotSpec::parse(&self.plot_request(default_kind), now).map_err(|mut e| {
            for error in &mut e.0 {
                error.field = format!("{under}{}", error.field);
            }
            Problem::invalid(e)
        })
    }

    /// The document's parameters of a route that reads `names` (in this struct's order),
    /// each as `adjust` leaves it.
    pub(crate) fn params(names: &[&str], adjust: impl Fn(&mut Parameter)) -> Vec<Parameter> {
        Self::into_params(|| None)
            .into_iter()
            .filter(|p| names.contains(&p.name.as_str()))
            .map(|mut p| {
                adjust(&mut p);
                p
            })
            .collect()
    }
}

/// A timestamp parameter as a plot request carries it: a number of epoch milliseconds
/// when it is one, an RFC 3339 string otherwise.
fn timestamp(raw: &str) -> Value {
    match raw.parse::<i64>() {
        Ok(ms) => ms.into(),
        Err(_) => raw.into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const NOW: i64 = 1_700_000_000_000;

    fn query(pairs: &str) -> PlotQuery {
        serde_urlencoded::from_str(pairs).unwrap()
    }

    /// As the stats route reads a query.
    fn stats_query(pairs: &str) -> PlotQuery {
        let uri: axum::http::Uri = format!("/api/v1/stats?{pairs}").parse().unwrap();
        axum::extract::Query::<PlotQuery>::try_from_uri(&uri)
            .unwrap()
            .0
    }

    #[test]
    fn parameters_read_as_a_plot_request() {
        assert_eq!(
            query("kind=histogram&service=checkout&window=1h&width=800&log_x=true&scale=2")
                .plot_request(None),
            json!({"kind": "histogram", "service": "checkout", "window": "1h",
                "width": 800, "scale": 2, "log_x": true})
        );
        assert_eq!(
            query("kind=cdf&services=a,b&from=1700000000000&width=wide&show_max=maybe")
                .plot_request(None),
            json!({"kind": "cdf", "services": ["a", "b"], "from": 1_700_000_000_000_i64,
                "width": "wide", "show_max": "maybe"})
        );
    }

    #[test]
    fn bad_parameters_are_named() {
        let p = query("kind=histogram&service=a&width=wide&colour=red")
            .spec(&RENDER_PARAMETERS, None, NOW, "")
            .unwrap_err();
        assert_eq!(p.errors[0].field, "/colour");
        let p = query("kind=histogram&service=a&width=wide")
            .spec(&RENDER_PARAMETERS, None, NOW, "/query")
            .unwrap_err();
        assert_eq!(p.errors[0].field, "/query/width");
        assert!(p.errors[0].problem.contains("200 to 4000"), "{p:?}");
    }

    #[test]
    fn the_canonical_query_is_one_string_per_plot() {
        let a = query("window=1h&service=a&kind=histogram&ticket=t&grant=g");
        let b = query("kind=histogram&service=a&window=1h");
        assert_eq!(a.canonical(), b.canonical());
        assert_eq!(a.canonical(), "kind=histogram&service=a&window=1h");
        assert_ne!(
            query("kind=histogram&service=b&window=1h").canonical(),
            b.canonical()
        );
        assert_eq!(
            query("kind=histogram&service=a&title=p%2699+%C3%A9").canonical(),
            "kind=histogram&service=a&title=p%2699+%C3%A9"
        );
    }

    #[test]
    fn queries_read_as_plot_requests() {
        assert_eq!(
            stats_query("service=checkout&window=15m").plot_request(Some("histogram")),
            json!({"kind": "histogram", "service": "checkout", "window": "15m"})
        );
        assert_eq!(
            stats_query(
                "kind=cdf&services=a,%20b&metric=m&from=1700000000000&until=2026-01-01T00:00:00Z"
            )
            .plot_request(Some("histogram")),
            json!({"kind": "cdf", "services": ["a", "b"], "metric": "m",
                "from": 1_700_000_000_000_i64, "until": "2026-01-01T00:00:00Z"})
        );
        let refused = stats_query("service=a&widht=3&ticket=t")
            .refuse_unknown(&STATS_PARAMETERS, "")
            .unwrap_err();
        assert_eq!(refused.errors.len(), 1);
        assert_eq!(refused.errors[0].field, "/widht");
    }

    #[test]
    fn a_route_refuses_the_parameters_it_does_not_read() {
        let refused = stats_query("service=a&width=3&grant=g&colour=red")
            .refuse_unknown(&STATS_PARAMETERS, "")
            .unwrap_err();
        let fields: Vec<&str> = refused.errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["/colour", "/grant", "/width"]);
        assert!(
            refused.errors[0].problem.ends_with(
                "known parameters: kind, service, services, metric, window, from, until, labels, group_by, stat, x_metric, x_stat, x_service, bucket, ticket"
            ),
            "{refused:?}"
        );
        assert!(
            query("service=a&width=3&grant=g")
                .refuse_unknown(&RENDER_PARAMETERS, "")
                .is_ok()
        );
    }
}
