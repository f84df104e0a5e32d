//! Dashboard views: one panel's plot (service, kind, window, theme, size), named by a
//! stable key so every notifier replica, the refresher and the browser agree on it.
//!
//! A view's key looks like `checkout/histogram/15m/light/800x450`.

use crate::job::{JobId, JobStatus};
use crate::names::ServiceName;
use crate::plot::{PlotKind, PlotSpec, Theme, TimeRange};
use crate::window::Window;
use crate::wire::PlotEvent;
use serde::{Deserialize, Serialize};

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
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
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
}
