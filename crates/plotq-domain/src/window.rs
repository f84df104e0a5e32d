//! Time windows (`30s`, `10m`, `1h`, `7d`, `90d`): how far back a plot looks, from
//! [`MIN_WINDOW_SECS`] to [`MAX_WINDOW_SECS`]. A plot of window `w` requested at `t` draws
//! the samples of `[t - w, t]` (inclusive). Problems quote at most a short excerpt of the
//! input.

use crate::error::excerpt;
use serde::{Deserialize, Serialize};
use std::fmt;

/// Shortest window a plot may ask for.
pub const MIN_WINDOW_SECS: u64 = 10;
/// Longest window a plot may ask for (90 days: the default rollup retention; windows
/// past two days are drawn from hour rollups).
pub const MAX_WINDOW_SECS: u64 = 90 * 24 * 3600;

/// A look-back duration, kept in whole seconds and shown in the largest exact unit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Window {
    secs: u64,
}

impl Window {
    pub fn from_secs(secs: u64) -> Result<Self, String> {
        if !(MIN_WINDOW_SECS..=MAX_WINDOW_SECS).contains(&secs) {
            return Err(format!(
                "window must be between {} and {}",
                Window {
                    secs: MIN_WINDOW_SECS
                },
                Window {
                    secs: MAX_WINDOW_SECS
                }
            ));
        }
        Ok(Self { secs })
    }

    /// Parses `<integer><unit>` with unit `s`, `m`, `h` or `d` (surrounding whitespace is
    /// ignored).
    pub fn parse(raw: &str) -> Result<Self, String> {
        let raw = raw.trim();
        let quoted = || excerpt(raw);
        let split = raw.find(|c: char| !c.is_ascii_digit()).ok_or_else(|| {
            format!(
                "window {} has no unit; use e.g. 30s, 10m, 1h or 7d",
                quoted()
            )
        })?;
        let (digits, unit) = raw.split_at(split);
        let n: u64 = digits.parse().map_err(|_| {
            format!(
                "window {} must start with a whole number, e.g. 10m",
                quoted()
            )
        })?;
        let mult = match unit {
            "s" => 1,
            "m" => 60,
            "h" => 3600,
            "d" => 86_400,
            _ => {
                return Err(format!(
                    "window {} has unknown unit {}; use s, m, h or d",
                    quoted(),
                    excerpt(unit)
                ));
            }
        };
        Self::from_secs(n.saturating_mul(mult))
    }

    pub fn secs(self) -> u64 {
        self.secs
    }

    /// The window in milliseconds (at most 90 days' worth, so it fits any arithmetic on
    /// bounded timestamps).
    pub fn millis(self) -> i64 {
        (self.secs * 1000) as i64
    }
}

impl Default for Window {
    fn default() -> Self {
        Self { secs: 600 }
    }
}

impl fmt::Display for Window {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&format_secs(self.secs))
    }
}

/// Whole seconds in the largest exact unit, as windows and settings are written
/// (`90d`, `48h`, `90s`).
pub fn format_secs(s: u64) -> String {
    for (unit, size) in [("d", 86_400), ("h", 3600), ("m", 60)] {
        if s.is_multiple_of(size) && s > 0 {
            return format!("{}{unit}", s / size);
        }
    }
    format!("{s}s")
}

impl TryFrom<String> for Window {
    type Error = String;
    fn try_from(raw: String) -> Result<Self, String> {
        Self::parse(&raw)
    }
}

impl From<Window> for String {
    fn from(w: Window) -> String {
        w.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_normalises() {
        assert_eq!(Window::parse("10m").unwrap().secs(), 600);
        assert_eq!(Window::parse("90s").unwrap().to_string(), "90s");
        assert_eq!(Window::parse("120m").unwrap().to_string(), "2h");
        assert_eq!(Window::parse("7d").unwrap().secs(), 604_800);
    }

    #[test]
    fn rejects_out_of_bounds_and_garbage() {
        assert!(
            Window::parse("5s")
                .unwrap_err()
                .contains("between 10s and 90d")
        );
        assert!(Window::parse("91d").is_err());
        assert_eq!(Window::parse("90d").unwrap().secs(), 90 * 86_400);
        assert!(Window::parse("10").unwrap_err().contains("no unit"));
        assert!(Window::parse("10w").unwrap_err().contains("unknown unit"));
        assert!(Window::parse("m").is_err());
        assert!(Window::parse("99999999999999999999d").is_err());
    }
}
