//! A correlation's members in a spec: read (`CorrelationDraft`, from a client's strings
//! or a serialised spec), then defaulted and checked against the rest of the spec
//! (`correlation`), or refused by name on any other kind.

use super::{Rules, field_error, string};
use crate::error::FieldError;
use crate::names::{MetricName, ServiceName};
use crate::plot::kind::PlotKind;
use crate::plot::range::TimeRange;
use crate::plot::spec::Correlation;
use crate::plot::stat::{MAX_POINTS, MIN_POINTS, Stat};
use crate::window::Window;
use serde_json::{Map, Value};

/// The members only a correlation has.
const CORRELATION_FIELDS: [&str; 5] = ["stat", "x_metric", "x_stat", "x_service", "bucket"];
/// Longest time bucket of a correlation.
const MAX_BUCKET_SECS: u64 = 86_400;

/// A correlation's members as read (each absent, given or wrong).
#[derive(Default)]
pub(super) struct CorrelationDraft {
    stat: Option<Result<Stat, FieldError>>,
    x_metric: Option<Result<MetricName, FieldError>>,
    x_stat: Option<Result<Stat, FieldError>>,
    x_service: Option<Result<ServiceName, FieldError>>,
    bucket: Option<Result<Window, FieldError>>,
}

impl CorrelationDraft {
    /// From text members (a client's strings or a serialised spec's).
    pub(super) fn read(
        stat: Option<&str>,
        x_metric: Option<&str>,
        x_stat: Option<&str>,
        x_service: Option<&str>,
        bucket: Option<&str>,
    ) -> Self {
        Self {
            stat: stat.map(|s| Stat::parse(s).map_err(|p| field_error("stat", p))),
            x_metric: x_metric
                .map(|m| MetricName::parse(m).map_err(|p| field_error("x_metric", p))),
            x_stat: x_stat.map(|s| Stat::parse(s).map_err(|p| field_error("x_stat", p))),
            x_service: x_service
                .map(|s| ServiceName::parse(s).map_err(|p| field_error("x_service", p))),
            bucket: bucket.map(|b| {
                Window::parse(b)
                    .ok()
                    .filter(|w| w.secs() <= MAX_BUCKET_SECS)
                    .ok_or_else(|| field_error("bucket", BUCKET_PROBLEM))
            }),
        }
    }

    pub(super) fn from_spec(c: Option<&Correlation>) -> Self {
        let Some(c) = c else {
            return Self::default();
        };
        Self {
            stat: Some(Ok(c.stat)),
            x_metric: Some(Ok(c.x_metric.clone())),
            x_stat: Some(Ok(c.x_stat)),
            x_service: c.x_service.clone().map(Ok),
            bucket: Some(Ok(c.bucket)),
        }
    }

    /// The members given, by name.
    fn given(&self) -> [(&'static str, bool); 5] {
        [
            ("stat", self.stat.is_some()),
            ("x_metric", self.x_metric.is_some()),
            ("x_stat", self.x_stat.is_some()),
            ("x_service", self.x_service.is_some()),
            ("bucket", self.bucket.is_some()),
        ]
    }
}

const BUCKET_PROBLEM: &str = "must be a duration from 10s to 1d, e.g. 1m";

/// A client's correlation members: each a string, else named.
pub(super) fn json_correlation(obj: &Map<String, Value>) -> CorrelationDraft {
    let mut text: [Option<&str>; 5] = [None; 5];
    let mut wrong = Vec::new();
    for (slot, name) in text.iter_mut().zip(CORRELATION_FIELDS) {
        match string(obj, name) {
            Ok(v) => *slot = v,
            Err(e) => wrong.push((name, e)),
        }
    }
    let [stat, x_metric, x_stat, x_service, bucket] = text;
    let mut draft = CorrelationDraft::read(stat, x_metric, x_stat, x_service, bucket);
    for (name, e) in wrong {
        match name {
            "stat" => draft.stat = Some(Err(e)),
            "x_metric" => draft.x_metric = Some(Err(e)),
            "x_stat" => draft.x_stat = Some(Err(e)),
            "x_service" => draft.x_service = Some(Err(e)),
            _ => draft.bucket = Some(Err(e)),
        }
    }
    draft
}

/// A correlation's members for a spec of `kind`: defaulted and checked for a
/// correlation (its bucket against the range, x against y), each refused by name for any
/// other kind.
pub(super) fn correlation(
    r: &mut Rules<'_>,
    kind: Option<PlotKind>,
    d: CorrelationDraft,
    (services, metric, range): (
        &Option<Vec<ServiceName>>,
        &Option<MetricName>,
        &Option<TimeRange>,
    ),
) -> Option<Correlation> {
    if kind != Some(PlotKind::Correlation) {
        if kind.is_some() {
            for (name, given) in d.given() {
                if given {
                    r.err(name, "applies to correlation only");
                }
            }
        }
        return None;
    }
    let metric = metric.as_ref()?;
    let defaults = Correlation::of(metric);
    let stat = d.stat.map_or(Some(defaults.stat), |v| r.take(v));
    let x_metric = d.x_metric.map_or(Some(defaults.x_metric), |v| r.take(v));
    let x_stat = d.x_stat.map_or(Some(defaults.x_stat), |v| r.take(v));
    let x_service = d.x_service.map_or(Some(None), |v| r.take(v).map(Some));
    if services.as_ref().is_some_and(|s| s.len() > 1)
        && x_service.as_ref().is_some_and(Option::is_some)
    {
        r.err(
            "x_service",
            "compared services each correlate with their own x; give one service to correlate with another's",
        );
    }
    let bucket = d.bucket.map_or(Some(defaults.bucket), |v| r.take(v));
    let c = Correlation {
        stat: stat?,
        x_metric: x_metric?,
        x_stat: x_stat?,
        // The spec's own service as x is no other service.
        x_service: x_service?.filter(|x| services.as_ref().is_none_or(|s| !s.contains(x))),
        bucket: bucket?,
    };
    if let Some(range) = range {
        let bucket = i128::from(c.bucket.millis().max(1));
        // Whole buckets, aligned to multiples of the bucket, in the (inclusive) range: of
        // an absolute range exactly; of a window ending whenever it is asked, the fewest
        // it can hold (one less than its span over the bucket, unless aligned).
        let whole = match *range {
            TimeRange::Last(w) => (i128::from(w.millis()) / bucket - 1).max(0),
            TimeRange::Between { from_ms, until_ms } => {
                let first = i128::from(from_ms).div_euclid(bucket) * bucket
                    + if i128::from(from_ms).rem_euclid(bucket) == 0 {
                        0
                    } else {
                        bucket
                    };
                ((i128::from(until_ms) + 1 - first) / bucket).max(0)
            }
        };
        let most = match *range {
            TimeRange::Last(w) => i128::from(w.millis()) / bucket,
            TimeRange::Between { .. } => whole,
        };
        if whole < i128::from(MIN_POINTS) || most > i128::from(MAX_POINTS) {
            r.err(
                "bucket",
                format!(
                    "must cut the range into {MIN_POINTS} to {MAX_POINTS} whole buckets; this one holds {}",
                    if whole < i128::from(MIN_POINTS) { whole } else { most }
                ),
            );
        }
    }
    if c.x_service.is_none() && c.x_metric == *metric && c.x_stat == c.stat {
        r.err(
            "x_stat",
            "x and y are the same statistic of the same series; choose another x_stat, x_metric or x_service",
        );
    }
    Some(c)
}
