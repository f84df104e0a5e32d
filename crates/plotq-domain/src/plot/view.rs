//! `View`, one dashboard panel's plot, named by a stable key so every notifier replica,
//! the refresher and the browser agree on it (gathered with `ViewState` in the `view`
//! module).
//!
//! A view's key looks like `checkout/histogram/15m/light/800x450`, or with a comparison
//! and options `checkout~search/histogram/1h/dark/1200x675/log.bins100.dpr3`, or of
//! another metric than the kind's default `edge/histogram:http_request_duration_ms/…`:
//! `SERVICES/KIND[:METRIC]/WINDOW/THEME/WxH[/OPTS]`, at most [`MAX_VIEW_KEY_LEN`] bytes of
//! `[A-Za-z0-9_.:/~-]` (no `,`: clients list several views separated by commas).
//! SERVICES is one service or several separated by `~` (for kinds that compare); METRIC
//! (after the first `:`, present only when it is not the kind's default metric) is a
//! metric name, whose alphabet the key's includes; OPTS,
//! when any option differs from its default, lists in this order `log` (`log_x`), `max`
//! (`show_max`), `bins<N>`, `dpr<N>` (`scale`), `by<LABEL>` (`group_by`) and
//! `lb<SET>` (the `labels` filter: its canonical text, `Labels::key`, in unpadded
//! base64url, whose alphabet the key's includes), separated by `.`. The view's plot is
//! validated as a plot request would be (`PlotSpec::validate`). Keys are not required to
//! be canonical (`24h` and `1d` both parse), but `View::parse(&v.key()) == v` for every
//! view.

use super::kind::{PlotKind, Theme};
use super::range::TimeRange;
use super::spec::{DEFAULT_BINS, PlotSpec};
use crate::error::{Collector, FieldError};
use crate::labels::{LabelName, Labels};
use crate::names::{MetricName, ServiceName};
use crate::window::Window;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

/// One dashboard panel's plot.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct View {
    /// One service, or several for a comparison; never empty.
    pub services: Vec<ServiceName>,
    pub kind: PlotKind,
    /// The metric plotted (the kind's default unless the key names another).
    pub metric: MetricName,
    pub window: Window,
    pub theme: Theme,
    /// The image size in device pixels.
    pub width: u32,
    pub height: u32,
    pub log_x: bool,
    pub show_max: bool,
    pub bins: u32,
    /// Device pixels per layout pixel (`PlotSpec::scale`).
    pub scale: u32,
    /// The plot's label filter and the label it splits by (`PlotSpec::labels`,
    /// `PlotSpec::group_by`).
    pub labels: Labels,
    pub group_by: Option<LabelName>,
}

/// Most views one SSE connection may watch.
pub const MAX_VIEWS_PER_CONNECTION: usize = 32;

/// Longest view key accepted (a comparison of a few services with every option fits).
pub const MAX_VIEW_KEY_LEN: usize = 256;

const KEY_SHAPE: &str = "keys look like service/kind/window/theme/WIDTHxHEIGHT[/options]";

impl View {
    /// A one-service view with every option at its default.
    pub fn new(
        service: ServiceName,
        kind: PlotKind,
        window: Window,
        width: u32,
        height: u32,
    ) -> Self {
        Self {
            services: vec![service],
            kind,
            metric: default_metric(kind),
            window,
            theme: Theme::Light,
            width,
            height,
            log_x: false,
            show_max: false,
            bins: DEFAULT_BINS,
            scale: 1,
            labels: Labels::none(),
            group_by: None,
        }
    }

    pub fn key(&self) -> String {
        let theme = match self.theme {
            Theme::Light => "light",
            Theme::Dark => "dark",
        };
        let services: Vec<&str> = self.services.iter().map(|s| s.as_str()).collect();
        let metric = if self.metric.as_str() == self.kind.default_metric() {
            String::new()
        } else {
            format!(":{}", self.metric)
        };
        let mut key = format!(
            "{}/{}{metric}/{}/{theme}/{}x{}",
            services.join("~"),
            self.kind.as_str(),
            self.window,
            self.width,
            self.height
        );
        let mut opts: Vec<String> = Vec::new();
        if self.log_x {
            opts.push("log".to_owned());
        }
        if self.show_max {
            opts.push("max".to_owned());
        }
        if self.bins != DEFAULT_BINS {
            opts.push(format!("bins{}", self.bins));
        }
        if self.scale != 1 {
            opts.push(format!("dpr{}", self.scale));
        }
        if let Some(group) = &self.group_by {
            opts.push(format!("by{group}"));
        }
        if !self.labels.is_empty() {
            opts.push(format!("lb{}", URL_SAFE_NO_PAD.encode(self.labels.key())));
        }
        if !opts.is_empty() {
            key.push('/');
            key.push_str(&opts.join("."));
        }
        key
    }

    /// Parses a key, validating its plot as a plot request would be.
    pub fn parse(key: &str) -> Result<Self, String> {
        if key.len() > MAX_VIEW_KEY_LEN {
            return Err(format!(
                "view key is {} bytes long; the limit is {MAX_VIEW_KEY_LEN}",
                key.len()
            ));
        }
        if let Some(bad) = key.chars().find(|c| {
            !(c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | ':' | '/' | '~'))
        }) {
            return Err(format!("view key contains {bad:?}; {KEY_SHAPE}"));
        }
        let parts: Vec<&str> = key.split('/').collect();
        let (services, kind, window, theme, size, opts) = match parts[..] {
            [a, b, c, d, e] => (a, b, c, d, e, None),
            [a, b, c, d, e, f] => (a, b, c, d, e, Some(f)),
            _ => {
                return Err(format!(
                    "view {key:?} must look like service/kind/window/theme/WIDTHxHEIGHT[/options]"
                ));
            }
        };
        let services = services
            .split('~')
            .map(ServiceName::parse)
            .collect::<Result<Vec<_>, _>>()?;
        let (kind, metric) = match kind.split_once(':') {
            Some((kind, metric)) => {
                let kind = PlotKind::parse(kind)?;
                (
                    kind,
                    MetricName::parse(metric).map_err(|p| format!("view {p}"))?,
                )
            }
            None => {
                let kind = PlotKind::parse(kind)?;
                (kind, default_metric(kind))
            }
        };
        let window = Window::parse(window)?;
        let theme = match theme {
            "light" => Theme::Light,
            "dark" => Theme::Dark,
            other => return Err(format!("view theme {other:?} must be light or dark")),
        };
        let (w, h) = size
            .split_once('x')
            .ok_or_else(|| format!("view size {size:?} must look like 800x450"))?;
        let px = |v: &str| {
            v.parse::<u32>()
                .map_err(|_| format!("view size {size:?} is out of bounds"))
        };
        // Every option at its default until the options part says otherwise.
        let defaults = Self::new(services[0].clone(), kind, window, px(w)?, px(h)?);
        let mut view = Self {
            services,
            metric,
            theme,
            ..defaults
        };
        for opt in opts.into_iter().flat_map(|o| o.split('.')) {
            let number = |prefix: &str| {
                opt.strip_prefix(prefix)
                    .filter(|n| !n.is_empty() && n.len() <= 4)
                    .and_then(|n| n.parse::<u32>().ok())
            };
            match opt {
                "log" => view.log_x = true,
                "max" => view.show_max = true,
                _ if number("bins").is_some() => view.bins = number("bins").unwrap_or(DEFAULT_BINS),
                _ if number("dpr").is_some() => view.scale = number("dpr").unwrap_or(1),
                _ if opt.starts_with("by") => {
                    let group =
                        LabelName::parse(&opt[2..]).map_err(|p| format!("view group: {p}"))?;
                    view.group_by = Some(group);
                }
                _ if opt.starts_with("lb") => {
                    let text = URL_SAFE_NO_PAD
                        .decode(&opt[2..])
                        .ok()
                        .and_then(|bytes| String::from_utf8(bytes).ok())
                        .ok_or("view labels are not base64url text")?;
                    view.labels =
                        Labels::from_key(&text).map_err(|p| format!("view labels: {p}"))?;
                }
                other => {
                    return Err(format!(
                        "view option {other:?} is unknown; options are log, max, bins<N>, dpr<N>, by<LABEL>, lb<SET>"
                    ));
                }
            }
        }
        if let Err(errors) = view.spec().validate() {
            let first = errors
                .0
                .first()
                .map(|e| {
                    let field = e.field.trim_start_matches('/');
                    if matches!(field, "width" | "height") {
                        format!("view size {size:?} is out of bounds")
                    } else {
                        format!("view {field}: {}", e.problem)
                    }
                })
                .unwrap_or_else(|| "invalid view".to_owned());
            return Err(first);
        }
        Ok(view)
    }

    /// The plot this view shows, over the window ending when it is requested.
    pub fn spec(&self) -> PlotSpec {
        let mut spec = PlotSpec::new(self.kind, self.services[0].clone());
        spec.services = self.services.clone();
        spec.metric = self.metric.clone();
        spec.range = TimeRange::Last(self.window);
        spec.theme = self.theme;
        spec.width = self.width;
        spec.height = self.height;
        spec.log_x = self.log_x;
        spec.show_max = self.show_max;
        spec.bins = self.bins;
        spec.scale = self.scale;
        spec.labels = self.labels.clone();
        spec.group_by = self.group_by.clone();
        // A correlation view is the default one (p95 against rate, by the minute) of
        // its metric.
        spec.correlation = spec
            .correlation
            .as_ref()
            .map(|_| super::spec::Correlation::of(&self.metric));
        spec
    }
}

/// A kind's default metric, as a name.
fn default_metric(kind: PlotKind) -> MetricName {
    MetricName::parse(kind.default_metric()).expect("default metric names are valid")
}

/// Checks an optional view key of a decoded message, reporting under `field`.
pub(crate) fn check_view_key(errors: &mut Collector, field: &str, key: Option<&str>) {
    if let Some(key) = key
        && let Err(p) = View::parse(key)
    {
        errors.push(FieldError::new(field, p));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_and_groups_ride_in_the_options() {
        let mut view = View::parse("checkout/latency_timeseries/15m/dark/800x450").unwrap();
        view.group_by = Some(LabelName::parse("route").unwrap());
        view.labels = Labels::from_pairs([("method", "GET"), ("path", "/a b?c=d&é")]).unwrap();
        let key = view.key();
        assert!(key.contains("/byroute.lb"), "{key}");
        assert_eq!(View::parse(&key).unwrap(), view);
        let spec = view.spec();
        assert_eq!(
            (spec.labels, spec.group_by),
            (view.labels.clone(), view.group_by.clone())
        );
        // Checked as a plot request is: a kind that draws one line, a bad set.
        let err = View::parse("checkout/correlation/15m/dark/800x450/byroute").unwrap_err();
        assert!(err.contains("group_by"), "{err}");
        let bad = URL_SAFE_NO_PAD.encode(r#"{"route":""}"#);
        assert!(View::parse(&format!("checkout/cdf/15m/dark/800x450/lb{bad}")).is_err());
        assert!(View::parse("checkout/cdf/15m/dark/800x450/lb!!").is_err());
        assert!(View::parse("checkout/cdf/15m/dark/800x450/by9x").is_err());
    }

    #[test]
    fn keys_round_trip() {
        let key = "checkout/latency_timeseries/15m/dark/800x450";
        let view = View::parse(key).unwrap();
        assert_eq!(view.key(), key);
        assert_eq!(view.spec().width, 800);
        assert_eq!(
            view.spec().range,
            TimeRange::Last(Window::parse("15m").unwrap())
        );
    }

    #[test]
    fn keys_are_short_and_plain() {
        let long = format!("{}/histogram/15m/light/800x450", "a~".repeat(200));
        assert!(View::parse(&long).unwrap_err().contains("limit"));
        for bad in [
            "a/histogram/ 15m/light/800x450",
            "a/histogram/15m/light/+800x450",
            "a/histogram/15m/light/800x450\n",
        ] {
            assert!(
                View::parse(bad).unwrap_err().contains("contains"),
                "{bad:?}"
            );
        }
        // Not canonical, but valid (the dashboard asks for 24h).
        let day = View::parse("a/histogram/24h/light/800x450").unwrap();
        assert_eq!(day.key(), "a/histogram/1d/light/800x450");
        assert_eq!(View::parse(&day.key()).unwrap(), day);
    }

    #[test]
    fn comparisons_and_options_round_trip() {
        let key = "checkout~search/histogram/1h/dark/1200x675/log.bins100.dpr3";
        let view = View::parse(key).unwrap();
        assert_eq!(view.key(), key);
        let spec = view.spec();
        assert_eq!(spec.services.len(), 2);
        assert!(spec.log_x);
        assert_eq!((spec.bins, spec.scale), (100, 3));
        assert_eq!(spec.layout_size(), (400, 225));
        let max = View::parse("a/latency_timeseries/15m/light/800x450/max").unwrap();
        assert!(max.spec().show_max);
        assert_eq!(max.key(), "a/latency_timeseries/15m/light/800x450/max");
    }

    #[test]
    fn a_metric_other_than_the_kinds_default_is_in_the_key() {
        let key = "edge/histogram:http_request_duration_ms.get/15m/light/800x450";
        let view = View::parse(key).unwrap();
        assert_eq!(view.metric.as_str(), "http_request_duration_ms.get");
        assert_eq!(view.spec().metric.as_str(), "http_request_duration_ms.get");
        assert_eq!(view.key(), key);
        // Names with ':' keep everything after the first one.
        let colon = View::parse("a/cdf:ns:latency/15m/light/800x450").unwrap();
        assert_eq!(colon.metric.as_str(), "ns:latency");
        assert_eq!(View::parse(&colon.key()).unwrap(), colon);
        // The default is never written, so existing keys stay as they were.
        let default = View::parse("a/status_codes:status_code/15m/light/800x450").unwrap();
        assert_eq!(default.key(), "a/status_codes/15m/light/800x450");
        assert_eq!(
            View::parse("a/histogram/15m/light/800x450")
                .unwrap()
                .metric
                .as_str(),
            "latency_ms"
        );
        assert!(
            View::parse("a/histogram:/15m/light/800x450")
                .unwrap_err()
                .contains("metric")
        );
        assert!(
            View::parse("a/pie:m/15m/light/800x450")
                .unwrap_err()
                .contains("pie")
        );
    }

    #[test]
    fn views_follow_the_plot_rules() {
        // Bad keys say why, and views are held to the plot rules.
        for (key, says) in [
            ("checkout/histogram", "must look like"),
            ("checkout/pie/15m/light/800x450", "pie"),
            ("checkout/histogram/15m/neon/800x450", "neon"),
            ("checkout/histogram/15m/light/9x9", "bounds"),
            ("a/correlation/1h/light/800x450/byroute", "group_by"),
            ("a~a/histogram/1h/light/800x450", "twice"),
            ("a,b/histogram/1h/light/800x450", "contains"),
            ("a/throughput/1h/light/800x450/log", "log_x"),
            ("a/histogram/1h/light/800x450/max", "show_max"),
            ("a/histogram/1h/light/800x450/bins0", "bins"),
            ("a/histogram/1h/light/800x450/dpr9", "scale"),
            ("a/histogram/1h/light/400x300/dpr3", "scale"),
            ("a/histogram/1h/light/800x450/pie", "unknown"),
            ("a/histogram/1h/light/800x450/dpr", "unknown"),
        ] {
            let err = View::parse(key).unwrap_err();
            assert!(err.contains(says), "{key}: {err}");
        }
    }
}
