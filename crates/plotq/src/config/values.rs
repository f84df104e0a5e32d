//! What every settings group shares: one duration syntax for every duration setting
//! (`DurationParser`, the `clap` value parser they all use), the `Validate` trait each
//! group implements (the checks clap cannot make, naming the setting) and `at_least`.
//! Knows no settings group.
//!
//! A duration is `<n>ms`, `<n>s`, `<n>m`, `<n>h` or `<n>d` (`n` a whole number); a bare
//! number means the unit the setting's name says (`PLOTQ_PNG_TTL_SECS=600` is ten
//! minutes, as `10m` is), and is refused where the name says none (`PLOTQ_RAW_RETENTION`).

use clap::builder::TypedValueParser;
use clap::error::ErrorKind;
use std::time::Duration;

/// What a bare number (no unit) means for a setting: the unit its name says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BareUnit {
    /// The name says no unit (`PLOTQ_RAW_RETENTION`): a unit is required.
    None,
    /// `…_MS`.
    Millis,
    /// `…_SECS`, or a setting documented in seconds (`PLOTQ_RETRY_DELAYS`).
    Secs,
}

/// The value parser of every duration setting; see the module documentation. Bounds
/// are checked here only where the setting has always refused them while parsing (the
/// other bounds are the groups' `validate`, which can compare settings).
#[derive(Debug, Clone, Copy)]
pub struct DurationParser {
    bare: BareUnit,
    min: Duration,
    max: Duration,
}

/// Durations whose bare numbers are seconds (`…_SECS`).
pub const fn secs() -> DurationParser {
    DurationParser::new(BareUnit::Secs)
}

/// Durations whose bare numbers are milliseconds (`…_MS`).
pub const fn millis() -> DurationParser {
    DurationParser::new(BareUnit::Millis)
}

/// Durations that always carry a unit (`48h`).
pub const fn with_unit() -> DurationParser {
    DurationParser::new(BareUnit::None)
}

/// The accepted syntax, for help texts and errors.
pub const SYNTAX: &str = "<n>ms, <n>s, <n>m, <n>h or <n>d";

/// The note every role's `--help` ends with.
pub const DURATIONS_HELP: &str = "Durations are <n>ms, <n>s, <n>m, <n>h or <n>d (10m, 48h); \
     a bare number is in the unit the setting's name says (PLOTQ_PNG_TTL_SECS=600, \
     PLOTQ_RENDER_WAIT_MS=10000).";

impl DurationParser {
    const fn new(bare: BareUnit) -> Self {
        Self {
            bare,
            min: Duration::ZERO,
            max: Duration::MAX,
        }
    }

    /// Refuses durations shorter than `min` while parsing.
    pub const fn at_least(self, min: Duration) -> Self {
        Self { min, ..self }
    }

    /// Refuses durations longer than `max` while parsing.
    pub const fn at_most(self, max: Duration) -> Self {
        Self { max, ..self }
    }

    /// What a bare number means here.
    pub fn bare_unit(&self) -> BareUnit {
        self.bare
    }

    /// `raw` as a duration, or why not (without the setting's name, which the caller adds).
    pub fn parse(&self, raw: &str) -> Result<Duration, String> {
        let value = parse_duration(raw.trim(), self.bare).ok_or_else(|| {
            let bare = match self.bare {
                BareUnit::None => String::new(),
                BareUnit::Millis => ", or a bare number of milliseconds".to_owned(),
                BareUnit::Secs => ", or a bare number of seconds".to_owned(),
            };
            format!("expected a duration, {SYNTAX}{bare}; not {raw:?}")
        })?;
        if value < self.min {
            return Err(format!("must be at least {}, not {raw:?}", show(self.min)));
        }
        if value > self.max {
            return Err(format!("must be at most {}, not {raw:?}", show(self.max)));
        }
        Ok(value)
    }
}

impl TypedValueParser for DurationParser {
    type Value = Duration;

    fn parse_ref(
        &self,
        cmd: &clap::Command,
        arg: Option<&clap::Arg>,
        value: &std::ffi::OsStr,
    ) -> Result<Duration, clap::Error> {
        let raw = value.to_string_lossy();
        self.parse(&raw).map_err(|why| {
            let mut cmd = cmd.clone();
            cmd.error(
                ErrorKind::ValueValidation,
                format!("{}: {why}", setting_name(arg)),
            )
        })
    }
}

/// How an error names a setting: its env var and its flag (`PLOTQ_PNG_TTL_SECS
/// (--png-ttl-secs)`), or the flag alone.
fn setting_name(arg: Option<&clap::Arg>) -> String {
    let Some(arg) = arg else {
        return "a duration".to_owned();
    };
    let flag = arg
        .get_long()
        .map_or_else(|| arg.get_id().to_string(), |long| format!("--{long}"));
    match arg.get_env() {
        Some(env) => format!("{} ({flag})", env.to_string_lossy()),
        None => flag,
    }
}

/// `<n><unit>`, or a bare `<n>` in `bare`'s unit; `None` for anything else or an overflow.
fn parse_duration(raw: &str, bare: BareUnit) -> Option<Duration> {
    let digits = raw.find(|c: char| !c.is_ascii_digit()).unwrap_or(raw.len());
    let (number, unit) = raw.split_at(digits);
    let n: u64 = number.parse().ok()?;
    let unit = match (unit, bare) {
        ("", BareUnit::None) => return None,
        ("", BareUnit::Millis) | ("ms", _) => return Some(Duration::from_millis(n)),
        ("", BareUnit::Secs) | ("s", _) => 1,
        ("m", _) => 60,
        ("h", _) => 3_600,
        ("d", _) => 86_400,
        _ => return None,
    };
    n.checked_mul(unit).map(Duration::from_secs)
}

/// A duration as the largest unit that writes it whole (`90d`, `48h`, `1500ms`).
pub fn show(value: Duration) -> String {
    if value == Duration::MAX {
        return "forever".to_owned();
    }
    let ms = value.as_millis();
    if ms == 0 || !ms.is_multiple_of(1000) {
        return format!("{ms}ms");
    }
    let secs = ms / 1000;
    [(86_400, "d"), (3_600, "h"), (60, "m")]
        .into_iter()
        .find(|(per, _)| secs.is_multiple_of(*per))
        .map_or_else(
            || format!("{secs}s"),
            |(per, unit)| format!("{}{unit}", secs / per),
        )
}

/// A group of settings checks, at start, what clap cannot, with messages naming the
/// setting. Most groups check something; the others keep the default.
pub trait Validate {
    fn validate(&self) -> anyhow::Result<()> {
        Ok(())
    }
}

/// `Err("<name> must be at least <min>")` when `value` is below `min`.
pub fn at_least<T: PartialOrd + std::fmt::Display>(
    value: T,
    min: T,
    name: &str,
) -> anyhow::Result<()> {
    anyhow::ensure!(value >= min, "{name} must be at least {min}");
    Ok(())
}

/// `Err("<name> must be at least <min>")` when the duration `value` is below `min`.
pub fn at_least_for(value: Duration, min: Duration, name: &str) -> anyhow::Result<()> {
    anyhow::ensure!(value >= min, "{name} must be at least {}", show(min));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: fn(u64) -> Duration = Duration::from_secs;

    #[test]
    fn every_unit_is_read() {
        for parser in [secs(), millis(), with_unit()] {
            for (raw, expected) in [
                ("250ms", Duration::from_millis(250)),
                ("90s", S(90)),
                ("10m", S(600)),
                ("48h", S(48 * 3_600)),
                ("90d", S(90 * 86_400)),
                ("0s", Duration::ZERO),
                (" 5m ", S(300)),
            ] {
                assert_eq!(parser.parse(raw), Ok(expected), "{raw}");
            }
        }
    }

    #[test]
    fn bare_numbers_are_in_the_settings_own_unit() {
        assert_eq!(secs().parse("600"), Ok(S(600)));
        assert_eq!(millis().parse("10000"), Ok(Duration::from_millis(10_000)));
        let err = with_unit().parse("48").unwrap_err();
        assert!(err.contains(SYNTAX) && !err.contains("bare"), "{err}");
    }

    #[test]
    fn anything_else_is_refused_with_the_syntax() {
        for raw in [
            "", "s", "10x", "1.5s", "-1s", "10 m", "1m30s", "ten", "10sec",
        ] {
            let err = secs().parse(raw).unwrap_err();
            assert!(
                err.contains(SYNTAX) && err.contains("bare number of seconds"),
                "{raw}: {err}"
            );
        }
        // Too large to hold.
        assert!(secs().parse(&format!("{}d", u64::MAX / 1000)).is_err());
    }

    #[test]
    fn bounds_are_named_in_the_settings_terms() {
        let parser = millis().at_least(Duration::from_millis(10)).at_most(S(600));
        assert_eq!(parser.parse("10"), Ok(Duration::from_millis(10)));
        assert_eq!(parser.parse("10m"), Ok(S(600)));
        assert_eq!(
            parser.parse("9ms").unwrap_err(),
            "must be at least 10ms, not \"9ms\""
        );
        assert_eq!(
            parser.parse("11m").unwrap_err(),
            "must be at most 10m, not \"11m\""
        );
    }

    #[test]
    fn durations_show_in_their_largest_whole_unit() {
        for (value, shown) in [
            (Duration::ZERO, "0ms"),
            (Duration::from_millis(1_500), "1500ms"),
            (S(1), "1s"),
            (S(90), "90s"),
            (S(600), "10m"),
            (S(48 * 3_600), "2d"),
            (S(36 * 3_600), "36h"),
        ] {
            assert_eq!(show(value), shown);
        }
    }
}
