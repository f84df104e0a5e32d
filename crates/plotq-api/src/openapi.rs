//! The OpenAPI 3.1 document's parts that are no route's: the schemas below (the JSON
//! shapes clients see), the document's title, components and tags ([`ApiInfo`]), and
//! the route that serves the document ([`openapi_router`]). Each route's entry comes
//! from its handler's `#[utoipa::path]`, registered with the route itself (the table
//! in `lib.rs`, whose `ApiDoc` is the whole document). The binary merges it with the
//! notifier's and the health routes' documents and serves the result at
//! `/api/v1/openapi.json`. This module uses no other of the crate.
//!
//! The schema types here only describe; the handlers build the same JSON from the
//! domain types. Request schemas state the domain's rules (name patterns, bounds, enums,
//! no unknown plot fields) so that what a client generates from them is accepted;
//! response schemas state what the server sends. `tests/e2e_contract.rs` fuzzes the
//! live server against this document (schemathesis), so a drift fails CI.

#![allow(dead_code)] // reason: fields exist to be described, never read

use axum::body::Bytes;
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use plotq_domain::names::MAX_NAME_LEN;
use plotq_domain::sample::MAX_BATCH;
use plotq_domain::timestamp::{MAX_TIMESTAMP_MS, MIN_EPOCH_MS};
use plotq_http::{KindDoc, ProblemCode, ProblemDoc, SecuritySchemes, StatDoc};
use serde::Serialize;
use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet};
use utoipa::openapi::RefOr;
use utoipa::openapi::schema::{
    ArrayBuilder, KnownFormat, ObjectBuilder, OneOfBuilder, Schema, SchemaFormat, Type,
};
use utoipa::{OpenApi, PartialSchema, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// What service and metric names look like (`plotq_domain::names`).
const NAME_PATTERN: &str = "^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$";
/// A window: a whole number and a unit (`plotq_domain::window`).
const WINDOW_PATTERN: &str = "^[0-9]+[smhd]$";

fn string_schema(pattern: &str, min: usize, max: usize, description: &str) -> ObjectBuilder {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .pattern(Some(pattern))
        .min_length(Some(min))
        .max_length(Some(max))
        .description(Some(description))
}

/// Implements `ToSchema` for a describing type whose schema is built by hand.
macro_rules! hand_schema {
    ($ty:ident, $name:literal, $schema:expr) => {
        impl PartialSchema for $ty {
            fn schema() -> RefOr<Schema> {
                $schema
            }
        }
        impl ToSchema for $ty {
            fn name() -> Cow<'static, str> {
                Cow::Borrowed($name)
            }
        }
    };
}

/// A service name.
#[derive(Serialize)]
pub struct ServiceNameDoc;
hand_schema!(
    ServiceNameDoc,
    "ServiceName",
    string_schema(
        NAME_PATTERN,
        1,
        MAX_NAME_LEN,
        "A service name: a letter or digit, then letters, digits, `_`, `-`, `.` or `:`"
    )
    .examples([serde_json::json!("checkout")])
    .into()
);

/// A metric name.
#[derive(Serialize)]
pub struct MetricNameDoc;
hand_schema!(
    MetricNameDoc,
    "MetricName",
    string_schema(
        NAME_PATTERN,
        1,
        MAX_NAME_LEN,
        "A metric name: a letter or digit, then letters, digits, `_`, `-`, `.` or `:`"
    )
    .examples([serde_json::json!("latency_ms")])
    .into()
);

/// A window length.
#[derive(Serialize)]
pub struct WindowDoc;
hand_schema!(
    WindowDoc,
    "Window",
    ObjectBuilder::new()
        .schema_type(Type::String)
        .pattern(Some(WINDOW_PATTERN))
        .description(Some(
            "A whole number of seconds, minutes, hours or days (`30s`, `10m`, `1h`, `7d`), from 10s to 90d"
        ))
        .examples([serde_json::json!("15m")])
        .into()
);

/// A point in time.
#[derive(Serialize)]
pub struct TimestampDoc;
hand_schema!(
    TimestampDoc,
    "Timestamp",
    OneOfBuilder::new()
        .description(Some(
            "Milliseconds since the epoch, or an RFC 3339 string; 1970-01-01T00:00:00Z to 9999-12-31T23:59:59.999Z. \
             Epoch numbers below 100000000000 (1973-03-03) are refused as epoch seconds, and plausible \
             microseconds or nanoseconds are refused naming their unit; earlier times as RFC 3339 strings"
        ))
        .item(
            ObjectBuilder::new()
                .schema_type(Type::Integer)
                .format(Some(SchemaFormat::KnownFormat(KnownFormat::Int64)))
                .minimum(Some(MIN_EPOCH_MS))
                .maximum(Some(MAX_TIMESTAMP_MS)),
        )
        .item(
            ObjectBuilder::new()
                .schema_type(Type::String)
                .format(Some(SchemaFormat::KnownFormat(KnownFormat::DateTime))),
        )
        .into()
);

/// A label set, or a plot's label filter (`plotq_domain::labels`).
#[derive(Serialize)]
pub struct LabelsDoc;
hand_schema!(
    LabelsDoc,
    "Labels",
    ObjectBuilder::new()
        .description(Some(
            "Up to 8 labels: names of letters, digits and '_' (not starting with a digit, at most 64) \
             to string values of 1 to 128 characters without control characters"
        ))
        .property_names(Some(
            ObjectBuilder::new()
                .schema_type(Type::String)
                .pattern(Some("^[A-Za-z_][A-Za-z0-9_]{0,63}$")),
        ))
        .additional_properties(Some(
            ObjectBuilder::new()
                .schema_type(Type::String)
                .min_length(Some(1))
                .max_length(Some(128))
                .pattern(Some("^[^\\x00-\\x1F\\x7F-\\x9F]+$")),
        ))
        .max_properties(Some(8))
        .examples([serde_json::json!({"route": "/pay", "method": "POST"})])
        .into()
);

/// One sample. `service_name`/`metric_name` are accepted as aliases of
/// `service`/`metric`; any other member is refused by name (`422 invalid_field`), never
/// dropped.
#[derive(Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SampleDoc {
    service: ServiceNameDoc,
    metric: MetricNameDoc,
    /// Any finite number.
    #[schema(example = 12.5)]
    value: f64,
    /// Defaults to the time received; at most 5 minutes in the future.
    #[schema(nullable = false)]
    timestamp: Option<TimestampDoc>,
    /// The sample's dimensions (part of its series); plots filter and group by them.
    #[schema(nullable = false)]
    labels: Option<LabelsDoc>,
}

/// A moment to mark on the time plots of some services (`POST /api/v1/annotations`).
#[derive(Serialize, ToSchema)]
pub struct AnnotationRequestDoc {
    /// 1 to 200 characters, no control characters (e.g. `deploy v42`).
    #[schema(min_length = 1, max_length = 200, example = "deploy v42")]
    text: String,
    /// The services whose plots show it: 1 to 8, distinct.
    #[schema(min_items = 1, max_items = 8)]
    services: Vec<ServiceNameDoc>,
    /// When it happened (default: when received); within the rollup retention.
    #[schema(nullable = false)]
    time: Option<TimestampDoc>,
}

/// A stored annotation.
#[derive(Serialize, ToSchema)]
pub struct AnnotationDoc {
    /// Issued when it was posted (a UUIDv7).
    #[schema(format = "uuid")]
    id: String,
    /// When it happened, epoch ms.
    #[schema(minimum = 0, maximum = 253402300799999_i64)]
    time_ms: i64,
    #[schema(min_length = 1, max_length = 200)]
    text: String,
    #[schema(min_items = 1, max_items = 8)]
    services: Vec<ServiceNameDoc>,
}

/// The annotations of some services in a window (`GET /api/v1/annotations`).
#[derive(Serialize, ToSchema)]
pub struct AnnotationsDoc {
    /// The latest 50 at most, in time order.
    #[schema(max_items = 50)]
    annotations: Vec<AnnotationDoc>,
}

/// One sample, or a batch of them.
#[derive(Serialize)]
pub struct SamplesDoc;

impl PartialSchema for SamplesDoc {
    fn schema() -> RefOr<Schema> {
        OneOfBuilder::new()
            .description(Some("One sample, or a batch of 1 to 50,000"))
            .item(SampleDoc::schema_ref())
            .item(
                ArrayBuilder::new()
                    .items(SampleDoc::schema_ref())
                    .min_items(Some(1))
                    .max_items(Some(MAX_BATCH)),
            )
            .into()
    }
}

impl ToSchema for SamplesDoc {
    fn name() -> Cow<'static, str> {
        Cow::Borrowed("SamplesDoc")
    }

    fn schemas(schemas: &mut Vec<(String, RefOr<Schema>)>) {
        schemas.push((SampleDoc::name().into(), SampleDoc::schema()));
        SampleDoc::schemas(schemas);
    }
}

/// What `ToSchema::schema_ref` would be if `utoipa` had it: a `$ref` to the component.
trait SchemaRef: ToSchema {
    fn schema_ref() -> RefOr<Schema> {
        RefOr::Ref(utoipa::openapi::Ref::from_schema_name(Self::name()))
    }
}

impl<T: ToSchema> SchemaRef for T {}

#[derive(Serialize, ToSchema)]
pub struct AcceptedDoc {
    /// How many samples were stored.
    #[schema(minimum = 1, maximum = 50000)]
    accepted: u64,
    /// Present when some of them are older than the raw retention
    /// (`PLOTQ_RAW_RETENTION`): stored in the one-minute rollups only, which every
    /// window reaching that far back is drawn from. Samples older than the rollup
    /// retention are refused (`422 sample_too_old`).
    #[schema(minimum = 1, maximum = 50000)]
    rollup_only: Option<u64>,
}

#[derive(Serialize, ToSchema)]
pub struct ServicesDoc {
    /// Sorted.
    services: BTreeSet<ServiceNameDoc>,
    /// Each service's metrics, sorted.
    #[schema(value_type = BTreeMap<String, Vec<String>>)]
    metrics: BTreeMap<String, BTreeSet<String>>,
}

#[derive(Serialize, ToSchema)]
pub struct TicketDoc {
    /// Pass as `?ticket=` on GET routes and `/api/v1/events`.
    #[schema(pattern = "^[A-Za-z0-9_-]+\\.[A-Za-z0-9_-]+$")]
    ticket: String,
    /// When the ticket stops being accepted, epoch ms.
    expires_at_ms: i64,
}

/// The kinds that compare services.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum CompareKindDoc {
    Histogram,
    LatencyTimeseries,
    Throughput,
    ErrorRate,
    StatusCodes,
    Heatmap,
    Cdf,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ThemeDoc {
    Light,
    Dark,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum FormatDoc {
    Png,
    Svg,
}

/// The two shapes of a plot request share every field but the kind and the services.
macro_rules! plot_request_doc {
    ($(#[$meta:meta])* $name:ident { $($fields:tt)* }) => {
        #[derive(Serialize, ToSchema)]
        $(#[$meta])*
        #[serde(deny_unknown_fields)]
        pub struct $name {
            $($fields)*
            /// Defaults to `latency_ms` (`status_code` for status_codes and error_rate).
            #[schema(nullable = false)]
            metric: Option<MetricNameDoc>,
            /// The last `window` before the request (default `10m`); not with `from`/`until`.
            #[schema(nullable = false)]
            window: Option<WindowDoc>,
            /// Start of an absolute range (10 s to 7 d long); not with `window`.
            #[schema(nullable = false)]
            from: Option<TimestampDoc>,
            /// End of an absolute range (default: now); only with `from`.
            #[schema(nullable = false)]
            until: Option<TimestampDoc>,
            /// Pixels, default 1000.
            #[schema(nullable = false, minimum = 200, maximum = 4000)]
            width: Option<u32>,
            /// Pixels, default 600.
            #[schema(nullable = false, minimum = 150, maximum = 4000)]
            height: Option<u32>,
            /// Device pixels per layout pixel, default 1: the image is laid out at
            /// width/scale × height/scale (at least 200×150) and drawn `scale` times
            /// sharper, for screens with that `devicePixelRatio`.
            #[schema(nullable = false, minimum = 1, maximum = 4)]
            scale: Option<u32>,
            /// Histogram bins (and heatmap latency buckets), default 50.
            #[schema(nullable = false, minimum = 1, maximum = 1000)]
            bins: Option<u32>,
            /// Replaces the generated title; no control characters.
            #[schema(nullable = false, max_length = 120, pattern = "^[^\\x00-\\x1F\\x7F-\\x9F]*$")]
            title: Option<String>,
            /// Default `light`.
            #[schema(nullable = false)]
            theme: Option<ThemeDoc>,
            /// Default `png`.
            #[schema(nullable = false)]
            format: Option<FormatDoc>,
            /// Logarithmic latency axis; `true` only for histogram and cdf.
            #[schema(nullable = false)]
            log_x: Option<bool>,
            /// Also draw each bucket's maximum; `true` only for latency_timeseries.
            #[schema(nullable = false)]
            show_max: Option<bool>,
            /// Only the series with every one of these labels (exact match).
            #[schema(nullable = false)]
            labels: Option<LabelsDoc>,
            /// One line or curve per value of this label (the most frequent values, the
            /// rest as `other`): histogram, latency_timeseries, throughput, error_rate and
            /// cdf, of one service.
            #[schema(nullable = false, pattern = "^[A-Za-z_][A-Za-z0-9_]{0,63}$")]
            group_by: Option<String>,
            /// Correlation only: y's statistic per bucket (default `p95`).
            #[schema(nullable = false)]
            stat: Option<StatDoc>,
            /// Correlation only: x's metric (default: `metric`).
            #[schema(nullable = false)]
            x_metric: Option<MetricNameDoc>,
            /// Correlation only: x's statistic per bucket (default `rate`); not y's very
            /// statistic of the same series.
            #[schema(nullable = false)]
            x_stat: Option<StatDoc>,
            /// Correlation only: x's service (default: the plot's; the label filter then
            /// applies to y only).
            #[schema(nullable = false)]
            x_service: Option<ServiceNameDoc>,
            /// Correlation only: one point per `bucket` of time (default `1m`, 10s to 1d;
            /// the range must hold 3 to 10,080 buckets).
            #[schema(nullable = false)]
            bucket: Option<WindowDoc>,
            /// Values marked on the plot's value axis, each with its label.
            #[schema(nullable = false, max_items = 8)]
            thresholds: Option<Vec<ThresholdDoc>>,
        }
    };
}

plot_request_doc!(
    /// A plot of one service.
    #[schema(examples(
        json!({"kind": "histogram", "service": "checkout", "window": "15m"}),
        json!({"kind": "latency_timeseries", "service": "checkout", "theme": "dark", "format": "svg", "show_max": true}),
    ))]
    PlotOneDoc {
        kind: KindDoc,
        service: ServiceNameDoc,
    }
);

plot_request_doc!(
    /// A comparison of 1 to 8 distinct services (histogram, latency_timeseries, throughput,
    /// error_rate, cdf).
    #[schema(examples(json!({"kind": "cdf", "services": ["checkout", "payments"], "log_x": true})))]
    PlotCompareDoc {
        kind: CompareKindDoc,
        #[schema(min_items = 1, max_items = 8)]
        services: BTreeSet<ServiceNameDoc>,
    }
);

/// A plot request: `service`, or `services` for a comparison; `window`, or `from`
/// (and optionally `until`). Unknown fields are refused.
#[derive(Serialize, ToSchema)]
#[serde(untagged)]
pub enum PlotSpecDoc {
    One(PlotOneDoc),
    Compare(PlotCompareDoc),
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum StatusDoc {
    Queued,
    Rendering,
    Done,
    Failed,
}

/// An absolute range, inclusive.
#[derive(Serialize, ToSchema)]
pub struct BetweenDoc {
    #[schema(minimum = 0, maximum = 253402300799999_i64)]
    from_ms: i64,
    #[schema(minimum = 0, maximum = 253402300799999_i64)]
    until_ms: i64,
}

/// The time a plot covers: the last `window` before `until_ms`, or an absolute range.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RangeDoc {
    Last(WindowDoc),
    Between(BetweenDoc),
}

/// A validated plot spec, every default filled in.
#[derive(Serialize, ToSchema)]
pub struct JobSpecDoc {
    kind: KindDoc,
    /// One, or several for a comparison.
    #[schema(min_items = 1, max_items = 8)]
    services: BTreeSet<ServiceNameDoc>,
    metric: MetricNameDoc,
    range: RangeDoc,
    #[schema(minimum = 200, maximum = 4000)]
    width: u32,
    #[schema(minimum = 150, maximum = 4000)]
    height: u32,
    #[schema(minimum = 1, maximum = 1000)]
    bins: u32,
    /// Only when the request set one.
    #[schema(nullable = false, max_length = 120)]
    title: Option<String>,
    theme: ThemeDoc,
    format: FormatDoc,
    log_x: bool,
    show_max: bool,
    /// Device pixels per layout pixel; absent when 1.
    #[schema(nullable = false, minimum = 2, maximum = 4)]
    scale: Option<u32>,
    /// The label filter; absent when none.
    #[schema(nullable = false)]
    labels: Option<LabelsDoc>,
    /// The label drawn apart; absent when none.
    #[schema(nullable = false)]
    group_by: Option<String>,
    /// Correlation only (every one filled in).
    #[schema(nullable = false)]
    stat: Option<StatDoc>,
    #[schema(nullable = false)]
    x_metric: Option<MetricNameDoc>,
    #[schema(nullable = false)]
    x_stat: Option<StatDoc>,
    /// Absent when x is the plot's own service.
    #[schema(nullable = false)]
    x_service: Option<ServiceNameDoc>,
    #[schema(nullable = false)]
    bucket: Option<WindowDoc>,
    /// Absent when none.
    #[schema(nullable = false, max_items = 8)]
    thresholds: Option<Vec<ThresholdDoc>>,
}

/// A value marked on a plot's value axis (`plotq_domain::plot::Threshold`), in its
/// units: the metric's for the distribution and latency kinds, per second for
/// throughput, percent for error rate, samples for status codes, y's statistic for a
/// correlation. Drawn as a dashed line, or named in the legend when beyond the axis.
#[derive(Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ThresholdDoc {
    /// A finite number.
    value: f64,
    /// Default `threshold`; 1 to 40 characters, no control characters.
    #[schema(
        nullable = false,
        min_length = 1,
        max_length = 40,
        pattern = "^[^\\x00-\\x1F\\x7F-\\x9F]*$"
    )]
    label: Option<String>,
}

/// Where a plot's time axis lies in its image: pixel columns `left_px` to `right_px`
/// show `from_ms` to `until_ms`, linearly (for turning a dragged span into a range).
#[derive(Serialize, ToSchema)]
pub struct TimeAxisDoc {
    #[schema(minimum = 0, maximum = 4000)]
    left_px: u32,
    #[schema(minimum = 1, maximum = 4000)]
    right_px: u32,
    #[schema(minimum = 0, maximum = 253402300799999_i64)]
    from_ms: i64,
    #[schema(minimum = 0, maximum = 253402300799999_i64)]
    until_ms: i64,
}

/// A signed render link (`POST /api/v1/render/grants`).
#[derive(Serialize, ToSchema)]
pub struct GrantDoc {
    /// `/api/v1/render?<the plot parameters>&grant=<grant>`: prefix the api's origin
    /// and embed it (`<img src>`); it needs no other credential.
    #[schema(pattern = "^/api/v1/render\\?.*grant=")]
    url: String,
    /// The grant alone.
    #[schema(pattern = "^[A-Za-z0-9_-]+\\.[A-Za-z0-9_-]+$")]
    grant: String,
    /// When the link stops working, epoch ms.
    expires_at_ms: i64,
}

/// The numbers of services over a window (`GET /api/v1/stats`), as a plot of `kind`
/// would show them.
#[derive(Serialize, ToSchema)]
pub struct StatsDoc {
    kind: KindDoc,
    /// The services asked for, in the order given.
    #[schema(min_items = 1, max_items = 8)]
    services: Vec<ServiceNameDoc>,
    metric: MetricNameDoc,
    /// `last 10m`, or the absolute range.
    range: String,
    /// The window, inclusive at both ends, epoch ms.
    from_ms: i64,
    until_ms: i64,
    /// What the numbers were computed from.
    source: plotq_http::SourceDoc,
    /// Samples in the window, all services together (rollups count whole minutes).
    #[schema(minimum = 1)]
    samples: u64,
    /// Stored documents (raw chunks and rollups) read.
    #[schema(minimum = 0)]
    documents_read: u64,
    /// Each service's numbers (services without samples left out).
    #[schema(min_items = 1, max_items = 8)]
    stats: Vec<plotq_http::SeriesStatsDoc>,
    /// The annotations a time plot of the window draws (kinds with a time axis, when
    /// there are some: the latest 50, in time order).
    #[schema(nullable = false, max_items = 50)]
    annotations: Option<Vec<AnnotationDoc>>,
}

/// A plot job as clients see it.
#[derive(Serialize, ToSchema)]
pub struct JobStateDoc {
    #[schema(format = "uuid")]
    id: String,
    status: StatusDoc,
    /// Why it failed (`failed` only).
    #[schema(nullable = false)]
    error: Option<String>,
    spec: JobSpecDoc,
    /// The end of the data window, epoch ms.
    #[schema(minimum = 0, maximum = 253402300799999_i64)]
    until_ms: i64,
    #[schema(minimum = 0, maximum = 253402300799999_i64)]
    created_at_ms: i64,
    #[schema(minimum = 0, maximum = 253402300799999_i64)]
    updated_at_ms: i64,
    /// Samples drawn (`done` only).
    #[schema(nullable = false)]
    n_samples: Option<u64>,
    /// Render time in the worker, ms: drawing plus encoding (`done` only).
    #[schema(nullable = false, minimum = 0)]
    render_ms: Option<f64>,
    /// The dashboard view this job refreshes
    /// (`services/kind/window/theme/WIDTHxHEIGHT[/options]`).
    #[schema(nullable = false, max_length = 256, pattern = "^[A-Za-z0-9_.:/~-]+$")]
    view: Option<String>,
    /// How many times a worker started this job (1 on the first render; retries and
    /// redeliveries add to it). Absent while queued.
    #[schema(nullable = false)]
    attempts: Option<u32>,
    /// What the plot was drawn from (`done` only).
    #[schema(nullable = false)]
    source: Option<plotq_http::SourceDoc>,
    /// Stored documents (raw chunks and rollups) the worker read (`done` only).
    #[schema(nullable = false)]
    documents_read: Option<u64>,
    /// Each service's numbers in the window (`done` only; services without samples
    /// left out).
    #[schema(nullable = false, max_items = 8)]
    stats: Option<Vec<plotq_http::SeriesStatsDoc>>,
    /// Where the last attempt spent its time (`done`; `failed` jobs have the stages
    /// their attempt reached).
    #[schema(nullable = false)]
    timings: Option<plotq_http::TimingsDoc>,
    /// Where the time axis is in the image (`done` plots with one).
    #[schema(nullable = false)]
    time_axis: Option<TimeAxisDoc>,
    /// The size of the image's smallest text in image pixels (`done` plots): shown `w`
    /// CSS pixels wide, it is `text_px · w / width` CSS pixels.
    #[schema(nullable = false, minimum = 1, maximum = 4000)]
    text_px: Option<u32>,
    /// The annotations drawn on the time axis (`done` time plots with some in their
    /// window: the latest 50, in time order).
    #[schema(nullable = false, max_items = 50)]
    annotations: Option<Vec<AnnotationDoc>>,
    /// `/api/v1/plots/{id}`.
    #[schema(pattern = "^/api/v1/plots/[0-9a-f-]{36}$")]
    status_url: String,
    /// `/api/v1/plots/{id}/image` (`done` only).
    #[schema(nullable = false, pattern = "^/api/v1/plots/[0-9a-f-]{36}/image$")]
    image_url: Option<String>,
    /// `/api/v1/plots/{id}/png` (`done` PNG plots only).
    #[schema(nullable = false, pattern = "^/api/v1/plots/[0-9a-f-]{36}/png$")]
    png_url: Option<String>,
    /// Set when an identical request's job answered this one.
    #[schema(nullable = false)]
    deduplicated: Option<bool>,
}

/// The api's part of the document but its paths: its title and description, the
/// components every route refers to, the security schemes and the tags. The paths are
/// added by the routers that serve them (`ApiDoc`, in `lib.rs`, puts it together).
#[derive(OpenApi)]
#[openapi(
    info(
        title = "plotq",
        description = "High-frequency metrics in, live plots out. Errors are RFC 9457 problem+json with a stable `code` (on the OTLP paths, a google.rpc.Status whose ErrorInfo reason is that code)."
    ),
    components(schemas(ProblemDoc, ProblemCode)),
    modifiers(&SecuritySchemes),
    tags(
        (name = "metrics", description = "Ingest samples; read their statistics"),
        (name = "plots", description = "Plot jobs and their images"),
        (name = "auth", description = "Browser read tickets"),
        (name = "dashboard", description = "The live dashboard page and its assets"),
        (name = "meta", description = "This document"),
    )
)]
pub(crate) struct ApiInfo;

/// This document.
#[utoipa::path(get, path = "/api/v1/openapi.json", tag = "meta",
    responses((status = 200, description = "The OpenAPI 3.1 document of every route", content_type = "application/json", body = Object)))]
async fn openapi_json(State(json): State<Bytes>) -> Response {
    ([(header::CONTENT_TYPE, "application/json")], json).into_response()
}

fn routes() -> OpenApiRouter<Bytes> {
    OpenApiRouter::default().routes(routes!(openapi_json))
}

/// The document's entry of `GET /api/v1/openapi.json`.
pub(crate) fn served() -> utoipa::openapi::OpenApi {
    routes().into_openapi()
}

/// `GET /api/v1/openapi.json` serving `document` (the merged document of the roles).
pub fn openapi_router(document: &utoipa::openapi::OpenApi) -> axum::Router {
    let json = document.to_json().expect("the OpenAPI document serialises");
    let (router, _) = routes().split_for_parts();
    router.with_state(Bytes::from(json))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The bounds written as literals above are the domain's.
    #[test]
    fn literal_bounds_are_the_domains() {
        assert_eq!(MAX_TIMESTAMP_MS, 253_402_300_799_999);
        assert_eq!(plotq_domain::plot::MAX_SERVICES, 8);
        assert_eq!(plotq_domain::plot::MAX_TITLE_CHARS, 120);
        assert_eq!(MAX_BATCH, 50_000);
        assert_eq!(plotq_domain::plot::WIDTH_RANGE, (200, 4000));
        assert_eq!(plotq_domain::plot::HEIGHT_RANGE, (150, 4000));
        assert_eq!(plotq_domain::plot::BINS_RANGE, (1, 1000));
    }
}
