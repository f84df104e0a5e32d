//! Dashboard views: one panel's plot (service, kind, window, theme, size), named by a
//! stable key so every notifier replica, the refresher and the browser agree on it.
//!
//! A view's key looks like `checkout/histogram/15m/light/800x450`: at most
//! [`MAX_VIEW_KEY_LEN`] bytes of `[A-Za-z0-9_.:/-]`, each part validated as a plot request
//! would be (width and height within the plot bounds). Keys are not required to be
//! canonical (`24h` and `1d` both parse), but `View::parse(&v.key()) == v` for every view.
//!
//! `ViewState` (stored by notifiers, shared between replicas) is validated when it is
//! deserialised: `requested_ms` within the timestamp range and `last_ready` a valid
//! `plot.ready` event.

use crate::error::{Collector, FieldError, FieldErrors};
use crate::job::{JobId, JobStatus};
use crate::names::ServiceName;
use crate::plot::{PlotKind, PlotSpec, Theme, TimeRange};
use crate::timestamp::check_timestamp;
use crate::window::Window;
use crate::wire::{EventKind, PlotEvent, RawPlotEvent};
use serde::{Deserialize, Deserializer, Serialize};

/// One dashboard panel's plot.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct View {
    pub service: ServiceName,
    pub kind: PlotKind,
    pub window: Window,
    pub theme: Theme,
    pub width: u32,
    pub height: u32,
}

/// Most views one SSE connection may watch.
pub const MAX_VIEWS_PER_CONNECTION: usize = 32;

/// Longest view key accepted (the longest canonical key is about 110 bytes).
pub const MAX_VIEW_KEY_LEN: usize = 128;

impl View {
    pub fn key(&self) -> String {
        let theme = match self.theme {
            Theme::Light => "light",
            Theme::Dark => "dark",
        };
        format!(
            "{}/{}/{}/{theme}/{}x{}",
            self.service,
            self.kind.as_str(),
            self.window,
            self.width,
            self.height
        )
    }

    /// Parses a key, validating each part as a plot request would.
    pub fn parse(key: &str) -> Result<Self, String> {
        if key.len() > MAX_VIEW_KEY_LEN {
            return Err(format!(
                "view key is {} bytes long; the limit is {MAX_VIEW_KEY_LEN}",
                key.len()
            ));
        }
        if let Some(bad) = key
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | ':' | '/')))
        {
            return Err(format!(
                "view key contains {bad:?}; keys look like service/kind/window/theme/WIDTHxHEIGHT"
            ));
        }
        let parts: Vec<&str> = key.split('/').collect();
        let [service, kind, window, theme, size] = parts[..] else {
            return Err(format!(
                "view {key:?} must look like service/kind/window/theme/WIDTHxHEIGHT"
            ));
        };
        let service = ServiceName::parse(service)?;
        let kind = PlotKind::parse(kind)?;
        let window = Window::parse(window)?;
        let theme = match theme {
            "light" => Theme::Light,
            "dark" => Theme::Dark,
            other => return Err(format!("view theme {other:?} must be light or dark")),
        };
        let (w, h) = size
            .split_once('x')
            .ok_or_else(|| format!("view size {size:?} must look like 800x450"))?;
        let parse_px = |v: &str, (lo, hi): (u32, u32)| {
            v.parse::<u32>()
                .ok()
                .filter(|v| (lo..=hi).contains(v))
                .ok_or_else(|| format!("view size {size:?} is out of bounds"))
        };
        Ok(Self {
            service,
            kind,
            window,
            theme,
            width: parse_px(w, crate::plot::WIDTH_RANGE)?,
            height: parse_px(h, crate::plot::HEIGHT_RANGE)?,
        })
    }

    /// The plot this view shows, over the window ending when it is requested.
    pub fn spec(&self) -> PlotSpec {
        let mut spec = PlotSpec::new(self.kind, self.service.clone());
        spec.range = TimeRange::Last(self.window);
        spec.theme = self.theme;
        spec.width = self.width;
        spec.height = self.height;
        spec
    }
}

/// What is known of a view's latest render (shared by all notifier replicas).
/// Deserialising validates (see the module docs).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ViewState {
    /// The most recent job requested for the view.
    pub job_id: JobId,
    pub status: JobStatus,
    /// When that job was requested (its data window ends here), epoch ms.
    pub requested_ms: i64,
    /// The last `plot.ready` of the view, so a new subscriber sees an image at once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_ready: Option<PlotEvent>,
    /// The last failure's reason, while the latest job is failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// `ViewState`'s serialised shape, before validation.
#[derive(Deserialize)]
struct RawViewState {
    job_id: JobId,
    status: JobStatus,
    requested_ms: i64,
    #[serde(default)]
    last_ready: Option<RawPlotEvent>,
    #[serde(default)]
    error: Option<String>,
}

impl ViewState {
    fn from_raw(raw: RawViewState) -> Result<Self, FieldErrors> {
        let mut errors = Collector::new();
        if let Err(p) = check_timestamp(raw.requested_ms) {
            errors.err("/requested_ms", p);
        }
        let last_ready = match raw.last_ready {
            None => None,
            Some(ev) => match PlotEvent::from_raw(ev) {
                Ok(ev) if ev.event == EventKind::PlotReady => Some(ev),
                Ok(_) => {
                    errors.err("/last_ready/event", "must be plot.ready");
                    None
                }
                Err(e) => {
                    errors.extend_under(e, "/last_ready");
                    None
                }
            },
        };
        errors.finish()?;
        Ok(Self {
            job_id: raw.job_id,
            status: raw.status,
            requested_ms: raw.requested_ms,
            last_ready,
            error: raw.error,
        })
    }
}

impl<'de> Deserialize<'de> for ViewState {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = RawViewState::deserialize(deserializer)?;
        ViewState::from_raw(raw).map_err(serde::de::Error::custom)
    }
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
    fn bad_keys_say_why() {
        assert!(
            View::parse("checkout/histogram")
                .unwrap_err()
                .contains("must look like")
        );
        assert!(
            View::parse("checkout/pie/15m/light/800x450")
                .unwrap_err()
                .contains("pie")
        );
        assert!(
            View::parse("checkout/histogram/15m/neon/800x450")
                .unwrap_err()
                .contains("neon")
        );
        assert!(
            View::parse("checkout/histogram/15m/light/9x9")
                .unwrap_err()
                .contains("bounds")
        );
    }

    #[test]
    fn keys_are_short_and_plain() {
        let long = format!("{}/histogram/15m/light/800x450", "a".repeat(200));
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
    fn view_states_are_validated_when_read() {
        let id = JobId::new_random();
        let ok = serde_json::json!({"job_id": id, "status": "queued", "requested_ms": 5});
        assert!(serde_json::from_value::<ViewState>(ok).is_ok());
        let bad = serde_json::json!({"job_id": id, "status": "queued", "requested_ms": -5});
        let err = serde_json::from_value::<ViewState>(bad).unwrap_err();
        assert!(err.to_string().contains("/requested_ms"), "{err}");
    }
}
