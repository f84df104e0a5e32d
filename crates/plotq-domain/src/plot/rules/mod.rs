//! Every rule of a plot spec, in one place: `PlotSpec::parse` (a client's JSON object),
//! deserialising (a spec's serialised shape, `RawPlotSpec`) and `PlotSpec::validate` (a
//! spec built in code) all read the fields into a `Draft`, and one function,
//! `validate`, applies the rules (the `plot` module docs list them).

use super::kind::{DEFAULT_METRIC, ImageFormat, PlotKind, Theme};
use super::range::TimeRange;
use super::spec::{
    BINS_RANGE, DEFAULT_BINS, DEFAULT_HEIGHT, DEFAULT_WIDTH, HEIGHT_RANGE, MAX_SERVICES,
    MAX_TITLE_CHARS, MIN_LAYOUT, PlotSpec, RawPlotSpec, SCALE_RANGE, WIDTH_RANGE,
};
use super::threshold::{MAX_THRESHOLDS, Threshold};
use crate::error::{Collector, FieldError, FieldErrors, pointer_segment};
use crate::labels::{LabelName, Labels};
use crate::names::{MetricName, ServiceName};
use crate::timestamp::{check_timestamp, clamp_timestamp, parse_timestamp};
use crate::window::{MAX_WINDOW_SECS, MIN_WINDOW_SECS, Window};
use serde::{Deserialize, Deserializer};
use serde_json::{Map, Value};

mod correlation;

use correlation::{CorrelationDraft, correlation, json_correlation};

impl<'de> Deserialize<'de> for PlotSpec {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = RawPlotSpec::deserialize(deserializer)?;
        PlotSpec::from_raw(raw).map_err(serde::de::Error::custom)
    }
}

const KNOWN_FIELDS: &[&str] = &[
    "kind",
    "service",
    "services",
    "metric",
    "window",
    "from",
    "until",
    "width",
    "height",
    "bins",
    "title",
    "theme",
    "format",
    "log_x",
    "show_max",
    "scale",
    "labels",
    "group_by",
    "stat",
    "x_metric",
    "x_stat",
    "x_service",
    "bucket",
    "thresholds",
];

const COMPARE_PROBLEM: &str = "this kind does not compare services; use service";
const GROUP_KIND_PROBLEM: &str = "every kind but correlation draws one series per label value; correlation compares services instead";
const GROUP_SERVICES_PROBLEM: &str =
    "splits one service's series by a label; give one service, not a comparison";
const SPAN_PROBLEM: &str = "from/until must span between 10s and 90d, with from before until";

fn bounded_problem((lo, hi): (u32, u32)) -> String {
    format!("must be a whole number from {lo} to {hi}")
}

fn field_error(field: &str, problem: impl Into<String>) -> FieldError {
    FieldError::new(format!("/{field}"), problem)
}

/// A spec's fields as read, before the rules: from a client's JSON object
/// (`Draft::from_json`) or from a spec's serialised shape (`Draft::from_raw`). Each field
/// holds its value or the problem found reading it; [`validate`] applies every rule.
struct Draft {
    kind: Result<PlotKind, FieldError>,
    /// At most `MAX_SERVICES + 1` entries are read: enough to see there are too many.
    services: Result<Vec<Result<ServiceName, FieldError>>, FieldError>,
    metric: Result<MetricName, FieldError>,
    range: Result<RangeDraft, FieldError>,
    width: Result<u64, FieldError>,
    height: Result<u64, FieldError>,
    bins: Result<u64, FieldError>,
    title: Result<Option<String>, FieldError>,
    theme: Result<Theme, FieldError>,
    format: Result<ImageFormat, FieldError>,
    log_x: Result<bool, FieldError>,
    show_max: Result<bool, FieldError>,
    scale: Result<u64, FieldError>,
    by_label: LabelDraft,
    correlation: CorrelationDraft,
    thresholds: Result<Vec<Threshold>, FieldErrors>,
}

/// Which series a spec reads: its label filter (every problem of it) and the label it
/// splits them by.
struct LabelDraft {
    labels: Result<Labels, FieldErrors>,
    group_by: Result<Option<LabelName>, FieldError>,
}

enum RangeDraft {
    Last(Window),
    Between {
        from_ms: Result<i64, FieldError>,
        until_ms: Result<i64, FieldError>,
    },
}

impl Draft {
    fn from_raw(raw: RawPlotSpec) -> Self {
        Self {
            kind: PlotKind::parse(&raw.kind).map_err(|p| field_error("kind", p)),
            services: Ok(raw
                .services
                .iter()
                .take(MAX_SERVICES + 1)
                .enumerate()
                .map(|(i, s)| {
                    ServiceName::parse(s).map_err(|p| field_error(&format!("services/{i}"), p))
                })
                .collect()),
            metric: MetricName::parse(&raw.metric).map_err(|p| field_error("metric", p)),
            range: Ok(match raw.range {
                TimeRange::Last(w) => RangeDraft::Last(w),
                TimeRange::Between { from_ms, until_ms } => RangeDraft::Between {
                    from_ms: Ok(from_ms),
                    until_ms: Ok(until_ms),
                },
            }),
            width: Ok(raw.width),
            height: Ok(raw.height),
            bins: Ok(raw.bins),
            title: Ok(raw.title),
            theme: Ok(raw.theme),
            format: Ok(raw.format),
            log_x: Ok(raw.log_x),
            show_max: Ok(raw.show_max),
            scale: Ok(raw.scale),
            by_label: LabelDraft {
                labels: Ok(raw.labels),
                group_by: raw
                    .group_by
                    .as_deref()
                    .map(LabelName::parse)
                    .transpose()
                    .map_err(|p| field_error("group_by", p)),
            },
            correlation: CorrelationDraft::read(
                raw.stat.as_deref(),
                raw.x_metric.as_deref(),
                raw.x_stat.as_deref(),
                raw.x_service.as_deref(),
                raw.bucket.as_deref(),
            ),
            thresholds: Ok(raw.thresholds),
        }
    }

    fn from_spec(spec: &PlotSpec) -> Self {
        Self {
            kind: Ok(spec.kind),
            services: Ok(spec
                .services
                .iter()
                .take(MAX_SERVICES + 1)
                .cloned()
                .map(Ok)
                .collect()),
            metric: Ok(spec.metric.clone()),
            range: Ok(match spec.range {
                TimeRange::Last(w) => RangeDraft::Last(w),
                TimeRange::Between { from_ms, until_ms } => RangeDraft::Between {
                    from_ms: Ok(from_ms),
                    until_ms: Ok(until_ms),
                },
            }),
            width: Ok(spec.width.into()),
            height: Ok(spec.height.into()),
            bins: Ok(spec.bins.into()),
            title: Ok(spec.title.clone()),
            theme: Ok(spec.theme),
            format: Ok(spec.format),
            log_x: Ok(spec.log_x),
            show_max: Ok(spec.show_max),
            scale: Ok(spec.scale.into()),
            by_label: LabelDraft {
                labels: Ok(spec.labels.clone()),
                group_by: Ok(spec.group_by.clone()),
            },
            correlation: CorrelationDraft::from_spec(spec.correlation.as_ref()),
            thresholds: Ok(spec.thresholds.clone()),
        }
    }

    /// Reads a client's object: types, names, defaults and the JSON shape (which of
    /// `service`/`services`, `window`/`from`/`until` are given); rules come later.
    fn from_json(obj: &Map<String, Value>, now_ms: i64) -> Self {
        let kind = match string(obj, "kind") {
            Ok(None) => Err(field_error("kind", "is required")),
            Ok(Some(k)) => PlotKind::parse(k).map_err(|p| field_error("kind", p)),
            Err(e) => Err(e),
        };
        let services = json_services(obj, kind.as_ref().ok().copied());
        let metric = match string(obj, "metric") {
            Ok(None) => {
                MetricName::parse(kind.as_ref().map_or(DEFAULT_METRIC, |k| k.default_metric()))
                    .map_err(|p| field_error("metric", p))
            }
            Ok(Some(m)) => MetricName::parse(m).map_err(|p| field_error("metric", p)),
            Err(e) => Err(e),
        };
        Self {
            kind,
            services,
            metric,
            range: json_range(obj, now_ms),
            width: json_number(obj, "width", WIDTH_RANGE, DEFAULT_WIDTH),
            height: json_number(obj, "height", HEIGHT_RANGE, DEFAULT_HEIGHT),
            bins: json_number(obj, "bins", BINS_RANGE, DEFAULT_BINS),
            title: string(obj, "title").map(|t| t.map(str::to_owned)),
            theme: json_choice(
                obj,
                "theme",
                &[("light", Theme::Light), ("dark", Theme::Dark)],
                Theme::Light,
            ),
            format: json_choice(
                obj,
                "format",
                &[("png", ImageFormat::Png), ("svg", ImageFormat::Svg)],
                ImageFormat::Png,
            ),
            log_x: json_bool(obj, "log_x"),
            show_max: json_bool(obj, "show_max"),
            scale: json_number(obj, "scale", SCALE_RANGE, 1),
            by_label: LabelDraft {
                labels: match obj.get("labels") {
                    None | Some(Value::Null) => Ok(Labels::none()),
                    Some(v) => Labels::parse(v, "/labels"),
                },
                group_by: match string(obj, "group_by") {
                    Ok(None) => Ok(None),
                    Ok(Some(g)) => LabelName::parse(g)
                        .map(Some)
                        .map_err(|p| field_error("group_by", p)),
                    Err(e) => Err(e),
                },
            },
            correlation: json_correlation(obj),
            thresholds: match obj.get("thresholds") {
                None | Some(Value::Null) => Ok(Vec::new()),
                Some(v) => Threshold::parse_list(v, "/thresholds"),
            },
        }
    }
}

fn present(obj: &Map<String, Value>, name: &str) -> bool {
    !matches!(obj.get(name), None | Some(Value::Null))
}

fn string<'a>(obj: &'a Map<String, Value>, name: &str) -> Result<Option<&'a str>, FieldError> {
    match obj.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(field_error(name, "must be a string")),
    }
}

fn json_bool(obj: &Map<String, Value>, name: &str) -> Result<bool, FieldError> {
    match obj.get(name) {
        None | Some(Value::Null) => Ok(false),
        Some(Value::Bool(b)) => Ok(*b),
        Some(_) => Err(field_error(name, "must be true or false")),
    }
}

fn json_number(
    obj: &Map<String, Value>,
    name: &str,
    range: (u32, u32),
    default: u32,
) -> Result<u64, FieldError> {
    match obj.get(name) {
        None | Some(Value::Null) => Ok(default.into()),
        Some(Value::Number(n)) if n.as_u64().is_some() => Ok(n.as_u64().unwrap_or_default()),
        Some(_) => Err(field_error(name, bounded_problem(range))),
    }
}

fn json_choice<T: Copy>(
    obj: &Map<String, Value>,
    name: &str,
    options: &[(&str, T)],
    default: T,
) -> Result<T, FieldError> {
    let Some(raw) = string(obj, name)? else {
        return Ok(default);
    };
    match options.iter().find(|(n, _)| *n == raw) {
        Some((_, v)) => Ok(*v),
        None => {
            let names: Vec<&str> = options.iter().map(|(n, _)| *n).collect();
            Err(field_error(
                name,
                format!("must be one of {}", names.join(", ")),
            ))
        }
    }
}

fn json_services(
    obj: &Map<String, Value>,
    kind: Option<PlotKind>,
) -> Result<Vec<Result<ServiceName, FieldError>>, FieldError> {
    match (present(obj, "service"), present(obj, "services")) {
        (true, true) => Err(field_error(
            "services",
            "give either service or services, not both",
        )),
        (false, false) => Err(field_error("service", "is required")),
        (true, false) => {
            let raw = string(obj, "service")?.unwrap_or_default();
            Ok(vec![
                ServiceName::parse(raw).map_err(|p| field_error("service", p)),
            ])
        }
        (false, true) => {
            if kind.is_some_and(|k| !k.compares()) {
                return Err(field_error("services", COMPARE_PROBLEM));
            }
            let Some(Value::Array(items)) = obj.get("services") else {
                return Err(field_error("services", "must be an array of service names"));
            };
            Ok(items
                .iter()
                .take(MAX_SERVICES + 1)
                .enumerate()
                .map(|(i, item)| {
                    let field = || format!("services/{i}");
                    match item.as_str() {
                        Some(s) => ServiceName::parse(s).map_err(|p| field_error(&field(), p)),
                        None => Err(field_error(&field(), "must be a string")),
                    }
                })
                .collect())
        }
    }
}

fn json_range(obj: &Map<String, Value>, now_ms: i64) -> Result<RangeDraft, FieldError> {
    let window = string(obj, "window")?;
    match (window, obj.get("from"), obj.get("until")) {
        (Some(_), Some(_), _) | (Some(_), _, Some(_)) => Err(field_error(
            "window",
            "give either window or from/until, not both",
        )),
        (Some(w), None, None) => Window::parse(w)
            .map(RangeDraft::Last)
            .map_err(|p| field_error("window", p)),
        (None, None, None) => Ok(RangeDraft::Last(Window::default())),
        (None, from, until) => Ok(RangeDraft::Between {
            from_ms: match from {
                None => Err(field_error("from", "is required with until")),
                Some(v) => parse_timestamp(v).map_err(|p| field_error("from", p)),
            },
            until_ms: match until {
                None => Ok(now_ms),
                Some(v) => parse_timestamp(v).map_err(|p| field_error("until", p)),
            },
        }),
    }
}

/// Reports the problems of one draft into a collector.
struct Rules<'c> {
    out: &'c mut Collector,
    failed: bool,
}

impl Rules<'_> {
    fn err(&mut self, field: &str, problem: impl Into<String>) {
        self.failed = true;
        self.out.push(field_error(field, problem));
    }

    fn take<T>(&mut self, read: Result<T, FieldError>) -> Option<T> {
        read.map_err(|e| {
            self.failed = true;
            self.out.push(e);
        })
        .ok()
    }

    fn bounded(
        &mut self,
        name: &str,
        read: Result<u64, FieldError>,
        (lo, hi): (u32, u32),
    ) -> Option<u32> {
        let v = self.take(read)?;
        match u32::try_from(v) {
            Ok(v) if (lo..=hi).contains(&v) => Some(v),
            _ => {
                self.err(name, bounded_problem((lo, hi)));
                None
            }
        }
    }

    fn timestamp(&mut self, name: &str, read: Result<i64, FieldError>) -> Option<i64> {
        let v = self.take(read)?;
        check_timestamp(v).map_err(|p| self.err(name, p)).ok()
    }
}

/// Every rule of a plot spec, for parsed requests and decoded messages alike. Problems go
/// to `out` in field order; the spec is returned only if there were none.
fn validate(d: Draft, out: &mut Collector) -> Option<PlotSpec> {
    let mut r = Rules { out, failed: false };
    let kind = r.take(d.kind);
    let services = match r.take(d.services) {
        None => None,
        Some(items) if !(1..=MAX_SERVICES).contains(&items.len()) => {
            r.err(
                "services",
                format!("must list 1 to {MAX_SERVICES} services"),
            );
            None
        }
        Some(items) => {
            let n = items.len();
            let mut names: Vec<ServiceName> = Vec::with_capacity(n);
            for (i, item) in items.into_iter().enumerate() {
                match r.take(item) {
                    Some(s) if names.contains(&s) => {
                        r.err(&format!("services/{i}"), "is listed twice")
                    }
                    Some(s) => names.push(s),
                    None => {}
                }
            }
            if names.len() != n {
                None
            } else if n > 1 && kind.is_some_and(|k| !k.compares()) {
                r.err("services", COMPARE_PROBLEM);
                None
            } else {
                Some(names)
            }
        }
    };
    let metric = r.take(d.metric);
    let range = match r.take(d.range) {
        None => None,
        Some(RangeDraft::Last(w)) => Some(TimeRange::Last(w)),
        Some(RangeDraft::Between { from_ms, until_ms }) => {
            let from_ms = r.timestamp("from", from_ms);
            let until_ms = r.timestamp("until", until_ms);
            match (from_ms, until_ms) {
                (Some(from_ms), Some(until_ms)) => {
                    let (lo, hi) = (MIN_WINDOW_SECS as i64 * 1000, MAX_WINDOW_SECS as i64 * 1000);
                    match until_ms.checked_sub(from_ms) {
                        Some(span) if (lo..=hi).contains(&span) => {
                            Some(TimeRange::Between { from_ms, until_ms })
                        }
                        _ => {
                            r.err("until", SPAN_PROBLEM);
                            None
                        }
                    }
                }
                _ => None,
            }
        }
    };
    let width = r.bounded("width", d.width, WIDTH_RANGE);
    let height = r.bounded("height", d.height, HEIGHT_RANGE);
    let bins = r.bounded("bins", d.bins, BINS_RANGE);
    let title = match r.take(d.title) {
        Some(Some(t)) if t.chars().nth(MAX_TITLE_CHARS).is_some() => {
            r.err(
                "title",
                format!("must be at most {MAX_TITLE_CHARS} characters"),
            );
            None
        }
        Some(Some(t)) if t.chars().any(char::is_control) => {
            r.err("title", "must not contain control characters");
            None
        }
        title => title,
    };
    let theme = r.take(d.theme);
    let format = r.take(d.format);
    let log_x = r.take(d.log_x);
    let show_max = r.take(d.show_max);
    let scale = r.bounded("scale", d.scale, SCALE_RANGE);
    let labels = match d.by_label.labels {
        Ok(labels) => Some(labels),
        Err(errors) => {
            r.failed = true;
            r.out.extend_under(errors, "");
            None
        }
    };
    let group_by = r.take(d.by_label.group_by);
    if let Some(Some(group)) = &group_by {
        if kind.is_some_and(|k| !k.groups()) {
            r.err("group_by", GROUP_KIND_PROBLEM);
        } else if services.as_ref().is_some_and(|s| s.len() > 1) {
            r.err("group_by", GROUP_SERVICES_PROBLEM);
        } else if labels
            .as_ref()
            .is_some_and(|l| l.get(group.as_str()).is_some())
        {
            r.err(
                "group_by",
                format!("{group} is also filtered to one value by labels; leave one out"),
            );
        }
    }
    if let (Some(w), Some(h), Some(s)) = (width, height, scale)
        && (w / s < MIN_LAYOUT.0 || h / s < MIN_LAYOUT.1)
    {
        r.err(
            "scale",
            format!(
                "width/scale and height/scale must be at least {}x{} (the layout size)",
                MIN_LAYOUT.0, MIN_LAYOUT.1
            ),
        );
    }
    if let Some(kind) = kind {
        if log_x == Some(true) && !matches!(kind, PlotKind::Histogram | PlotKind::Cdf) {
            r.err("log_x", "applies to histogram and cdf only");
        }
        if show_max == Some(true) && kind != PlotKind::LatencyTimeseries {
            r.err("show_max", "applies to latency_timeseries only");
        }
    }
    let correlation = correlation(&mut r, kind, d.correlation, (&services, &metric, &range));
    let thresholds = match d.thresholds {
        Ok(list) if list.len() > MAX_THRESHOLDS => {
            r.err("thresholds", format!("the limit is {MAX_THRESHOLDS}"));
            None
        }
        Ok(list) => {
            for (i, t) in list.iter().enumerate() {
                if let Err((member, problem)) = t.check() {
                    r.err(&format!("thresholds/{i}/{member}"), problem);
                }
            }
            Some(list)
        }
        Err(errors) => {
            r.failed = true;
            r.out.extend_under(errors, "");
            None
        }
    };
    if r.failed {
        return None;
    }
    Some(PlotSpec {
        kind: kind?,
        services: services?,
        metric: metric?,
        range: range?,
        width: width?,
        height: height?,
        bins: bins?,
        title: title?,
        theme: theme?,
        format: format?,
        log_x: log_x?,
        show_max: show_max?,
        scale: scale?,
        labels: labels?,
        group_by: group_by?,
        correlation,
        thresholds: thresholds?,
    })
}

impl PlotSpec {
    /// Parses a client's JSON object, reporting every bad or unknown field (up to the
    /// cap). `now_ms` (clamped into the timestamp range) is `until` when only `from` is
    /// given.
    pub fn parse(body: &Value, now_ms: i64) -> Result<Self, FieldErrors> {
        let Value::Object(obj) = body else {
            return Err(FieldErrors::one("", "expected a JSON object"));
        };
        let mut errors = Collector::new();
        let mut listed = false;
        for key in obj.keys() {
            if errors.is_full() {
                break;
            }
            if !KNOWN_FIELDS.contains(&key.as_str()) {
                let problem = if listed {
                    "unknown field".to_owned()
                } else {
                    listed = true;
                    format!("unknown field; known fields: {}", KNOWN_FIELDS.join(", "))
                };
                errors.err(format!("/{}", pointer_segment(key)), problem);
            }
        }
        if errors.is_full() {
            return Err(errors.finish().unwrap_err());
        }
        let spec = validate(Draft::from_json(obj, clamp_timestamp(now_ms)), &mut errors);
        finish(errors, spec)
    }

    /// Checks a spec against the rules `parse` and deserialising apply (for specs built
    /// or edited in code).
    pub fn validate(&self) -> Result<(), FieldErrors> {
        let mut errors = Collector::new();
        validate(Draft::from_spec(self), &mut errors);
        errors.finish()
    }

    /// Validates a spec's serialised shape (the deserialising path).
    pub(crate) fn from_raw(raw: RawPlotSpec) -> Result<Self, FieldErrors> {
        let mut errors = Collector::new();
        let spec = validate(Draft::from_raw(raw), &mut errors);
        finish(errors, spec)
    }
}

/// The spec `validate` returned, or every problem it reported.
fn finish(errors: Collector, spec: Option<PlotSpec>) -> Result<PlotSpec, FieldErrors> {
    match (errors.finish(), spec) {
        (Ok(()), Some(spec)) => Ok(spec),
        (Err(e), _) => Err(e),
        (Ok(()), None) => Err(FieldErrors::one("", "invalid plot spec")),
    }
}

#[cfg(test)]
mod tests;
