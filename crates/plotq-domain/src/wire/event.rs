//! `PlotEvent`, the announcement of a plot's progress (queued, rendering, ready,
//! failed) fanned out to every notifier replica, and `EventKind`.

use super::codec::{DecodeError, check_version, decode_message};
use crate::error::{Collector, FieldErrors};
use crate::job::{
    DataSource, JobId, JobState, SeriesStats, StageTimings, TimeAxis, check_stats, check_time_axis,
    check_timings,
};
use crate::names::{MetricName, ServiceName};
use crate::plot::view::check_view_key;
use crate::plot::{ImageFormat, MAX_SERVICES, PlotKind};
use crate::timestamp::check_timestamp;
use serde::{Deserialize, Deserializer, Serialize};

/// Current version of `PlotEvent`.
pub const EVENT_VERSION: u32 = 1;

/// What kind of event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum EventKind {
    /// A view's refresh was queued.
    #[serde(rename = "plot.queued")]
    PlotQueued,
    /// A worker started a view's render.
    #[serde(rename = "plot.rendering")]
    PlotRendering,
    #[serde(rename = "plot.ready")]
    PlotReady,
    #[serde(rename = "plot.failed")]
    PlotFailed,
}

impl EventKind {
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::PlotQueued => "plot.queued",
            EventKind::PlotRendering => "plot.rendering",
            EventKind::PlotReady => "plot.ready",
            EventKind::PlotFailed => "plot.failed",
        }
    }
}

/// A "plot ready/failed" announcement, fanned out to every notifier replica.
/// Deserialising validates (see the `wire` module docs).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PlotEvent {
    pub v: u32,
    pub event: EventKind,
    pub id: JobId,
    /// The first service (the only one unless the plot compares services).
    pub service: String,
    pub services: Vec<String>,
    pub metric: String,
    pub kind: PlotKind,
    /// `last 10m`, or the absolute range.
    pub range: String,
    pub format: ImageFormat,
    /// `/api/v1/plots/{id}`.
    pub status_url: String,
    /// Where the image is, whatever its format (set on `plot.ready`): `{status_url}/image`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub image_url: Option<String>,
    /// `{status_url}/png`, for PNG plots on `plot.ready`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub png_url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The dashboard view the plot belongs to, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub view: Option<String>,
    /// What the plot was drawn from (on `plot.ready`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source: Option<DataSource>,
    /// Where the job's last attempt spent its time (on `plot.ready`; on `plot.failed`
    /// the stages the attempt reached, when a worker recorded them).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timings: Option<StageTimings>,
    /// Each service's numbers in the window, as the job state has them (on `plot.ready`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stats: Option<Vec<SeriesStats>>,
    /// Where the time axis is in the image (on `plot.ready` of time-axis kinds).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub time_axis: Option<TimeAxis>,
    /// The image's smallest text, image pixels, as the job state has it (on `plot.ready`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub text_px: Option<u32>,
    pub at_ms: i64,
}

/// `PlotEvent`'s serialised shape, before validation.
#[derive(Deserialize)]
pub(crate) struct RawPlotEvent {
    v: u32,
    event: EventKind,
    id: JobId,
    service: String,
    services: Vec<String>,
    metric: String,
    kind: PlotKind,
    range: String,
    format: ImageFormat,
    status_url: String,
    #[serde(default)]
    image_url: Option<String>,
    #[serde(default)]
    png_url: Option<String>,
    #[serde(default)]
    error: Option<String>,
    #[serde(default)]
    view: Option<String>,
    #[serde(default)]
    source: Option<DataSource>,
    #[serde(default)]
    timings: Option<StageTimings>,
    #[serde(default)]
    stats: Option<Vec<SeriesStats>>,
    #[serde(default)]
    time_axis: Option<TimeAxis>,
    #[serde(default)]
    text_px: Option<u32>,
    at_ms: i64,
}

fn status_url(id: JobId) -> String {
    format!("/api/v1/plots/{id}")
}

impl PlotEvent {
    pub fn for_job(state: &JobState, event: EventKind, now_ms: i64) -> Self {
        let status_url = status_url(state.id);
        Self {
            v: EVENT_VERSION,
            event,
            id: state.id,
            service: state.spec.service().to_string(),
            services: state
                .spec
                .services
                .iter()
                .map(ToString::to_string)
                .collect(),
            metric: state.spec.metric.to_string(),
            kind: state.spec.kind,
            range: state.spec.range.label(),
            format: state.spec.format,
            image_url: (event == EventKind::PlotReady).then(|| format!("{status_url}/image")),
            png_url: (event == EventKind::PlotReady && state.spec.format == ImageFormat::Png)
                .then(|| format!("{status_url}/png")),
            status_url,
            error: state.error.clone(),
            view: state.view.clone(),
            source: (event == EventKind::PlotReady)
                .then_some(state.source)
                .flatten(),
            timings: matches!(event, EventKind::PlotReady | EventKind::PlotFailed)
                .then_some(state.timings)
                .flatten(),
            stats: (event == EventKind::PlotReady)
                .then(|| state.stats.clone())
                .flatten(),
            time_axis: (event == EventKind::PlotReady)
                .then_some(state.time_axis)
                .flatten(),
            text_px: (event == EventKind::PlotReady)
                .then_some(state.text_px)
                .flatten(),
            at_ms: now_ms,
        }
    }

    pub fn encode(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("PlotEvent serialises")
    }

    pub fn decode(body: &[u8]) -> Result<Self, DecodeError> {
        decode_message(body, EVENT_VERSION, Self::from_raw)
    }

    pub(crate) fn from_raw(raw: RawPlotEvent) -> Result<Self, FieldErrors> {
        let mut errors = Collector::new();
        check_version(&mut errors, raw.v, EVENT_VERSION);
        if !(1..=MAX_SERVICES).contains(&raw.services.len()) {
            errors.err(
                "/services",
                format!("must list 1 to {MAX_SERVICES} services"),
            );
        } else {
            for (i, s) in raw.services.iter().enumerate() {
                if let Err(p) = ServiceName::parse(s) {
                    errors.err(format!("/services/{i}"), p);
                } else if raw.services[..i].contains(s) {
                    errors.err(format!("/services/{i}"), "is listed twice");
                }
            }
            if raw.services.first() != Some(&raw.service) {
                errors.err("/service", "must be the first of services");
            }
        }
        if let Err(p) = MetricName::parse(&raw.metric) {
            errors.err("/metric", p);
        }
        let status = status_url(raw.id);
        if raw.status_url != status {
            errors.err(
                "/status_url",
                "must be /api/v1/plots/{id} of the event's job",
            );
        }
        if raw
            .image_url
            .as_ref()
            .is_some_and(|u| *u != format!("{status}/image"))
        {
            errors.err("/image_url", "must be {status_url}/image");
        }
        if raw
            .png_url
            .as_ref()
            .is_some_and(|u| *u != format!("{status}/png"))
        {
            errors.err("/png_url", "must be {status_url}/png");
        }
        check_view_key(&mut errors, "/view", raw.view.as_deref());
        if let Some(Err(p)) = raw.source.map(|s| s.check()) {
            errors.err("/source", p);
        }
        check_stats(&mut errors, raw.stats.as_deref());
        check_timings(&mut errors, raw.timings.as_ref());
        check_time_axis(&mut errors, raw.time_axis.as_ref());
        crate::job::check_text_px(&mut errors, raw.text_px);
        if let Err(p) = check_timestamp(raw.at_ms) {
            errors.err("/at_ms", p);
        }
        errors.finish()?;
        Ok(Self {
            v: raw.v,
            event: raw.event,
            id: raw.id,
            service: raw.service,
            services: raw.services,
            metric: raw.metric,
            kind: raw.kind,
            range: raw.range,
            format: raw.format,
            status_url: raw.status_url,
            image_url: raw.image_url,
            png_url: raw.png_url,
            error: raw.error,
            view: raw.view,
            source: raw.source,
            timings: raw.timings,
            stats: raw.stats,
            time_axis: raw.time_axis,
            text_px: raw.text_px,
            at_ms: raw.at_ms,
        })
    }
}

impl<'de> Deserialize<'de> for PlotEvent {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = RawPlotEvent::deserialize(deserializer)?;
        PlotEvent::from_raw(raw).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plot::PlotSpec;

    #[test]
    fn ready_event_names_the_png() {
        let spec = PlotSpec::new(PlotKind::Histogram, ServiceName::parse("a").unwrap());
        let state = JobState::queued(JobId::new_random(), spec, 1000);
        let ev = PlotEvent::for_job(&state, EventKind::PlotReady, 2000);
        let json: serde_json::Value = serde_json::from_slice(&ev.encode()).unwrap();
        assert_eq!(json["event"], "plot.ready");
        assert_eq!(json["png_url"], format!("/api/v1/plots/{}/png", state.id));
        assert_eq!(PlotEvent::decode(&ev.encode()).unwrap(), ev);
    }

    #[test]
    fn ready_and_failed_events_carry_timings_and_ready_ones_stats() {
        let spec = PlotSpec::new(PlotKind::Throughput, ServiceName::parse("a").unwrap());
        let mut state = JobState::queued(JobId::new_random(), spec, 1000);
        let timings = StageTimings {
            queue_wait_ms: 4.0,
            query_ms: Some(1.25),
            render_ms: Some(7.5),
            encode_ms: Some(0.5),
            store_ms: Some(0.25),
            total_ms: 9.75,
        };
        let summary = crate::stats::summarize(&[1.0, 2.0]).unwrap();
        state.timings = Some(timings);
        state.stats = Some(vec![SeriesStats::of("a", &summary).with_rates(0.2, 1.5)]);
        let ready = PlotEvent::for_job(&state, EventKind::PlotReady, 2000);
        assert_eq!(ready.timings, Some(timings));
        assert_eq!(ready.stats, state.stats);
        let json: serde_json::Value = serde_json::from_slice(&ready.encode()).unwrap();
        assert_eq!(json["timings"]["total"], 9.75);
        assert_eq!(json["stats"][0]["peak_rate_per_s"], 1.5);
        assert_eq!(PlotEvent::decode(&ready.encode()).unwrap(), ready);
        let failed = PlotEvent::for_job(&state, EventKind::PlotFailed, 2000);
        assert_eq!(
            (failed.timings, failed.stats.as_ref()),
            (Some(timings), None)
        );
        let queued = PlotEvent::for_job(&state, EventKind::PlotQueued, 2000);
        assert_eq!((queued.timings, queued.stats.as_ref()), (None, None));
        // Events written before the members existed decode; bad values are refused.
        let mut old = json.clone();
        old.as_object_mut().unwrap().remove("timings");
        old.as_object_mut().unwrap().remove("stats");
        assert_eq!(
            PlotEvent::decode(old.to_string().as_bytes())
                .unwrap()
                .timings,
            None
        );
        let mut bad = json.clone();
        bad["timings"]["render"] = f64::MAX.into();
        bad["timings"]["encode"] = (-1.0).into();
        bad["stats"][0]["rate_per_s"] = (-3.0).into();
        let Err(DecodeError::Invalid(errors)) = PlotEvent::decode(bad.to_string().as_bytes())
        else {
            panic!("accepted");
        };
        let fields: Vec<&str> = errors.0.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["/stats/0", "/timings/encode"]);
    }
}
