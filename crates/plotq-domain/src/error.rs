//! Validation errors that name the offending field, so HTTP layers can report them
//! machine-readably (RFC 9457 `errors` extension). No HTTP knowledge lives here.
//!
//! Every parser and validator in this crate reports at most [`MAX_REPORTED_ERRORS`]
//! problems; when it finds more it ends the list with one final entry (field `""`,
//! problem [`STOPPED_PROBLEM`]) and stops checking, so an error body is bounded whatever
//! the input. Problems are short: input echoed in a field path or a problem is cut to a
//! few dozen characters ([`excerpt`], [`pointer_segment`]).

use serde::Serialize;

/// Most problems any parser in this crate reports for one input.
pub const MAX_REPORTED_ERRORS: usize = 100;

/// The problem of the final entry of a list that hit [`MAX_REPORTED_ERRORS`].
pub const STOPPED_PROBLEM: &str = "too many errors; stopped checking";

/// Most characters of client input echoed in one field path segment or problem.
pub const MAX_ECHOED_CHARS: usize = 40;

/// One problem with one input field. `field` is a JSON-pointer-like path (`/3/value`,
/// `/width`), `problem` a sentence a human can act on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FieldError {
    pub field: String,
    pub problem: String,
}

impl FieldError {
    pub fn new(field: impl Into<String>, problem: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            problem: problem.into(),
        }
    }

    /// The same problem, reported under a parent path (`/3` + `/value` → `/3/value`).
    pub fn under(mut self, parent: &str) -> Self {
        self.field = format!("{parent}{}", self.field);
        self
    }

    /// Whether this is the entry that ends a list cut at [`MAX_REPORTED_ERRORS`].
    pub fn is_stop_marker(&self) -> bool {
        self.field.is_empty() && self.problem == STOPPED_PROBLEM
    }
}

impl std::fmt::Display for FieldError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.field, self.problem)
    }
}

/// Every problem found in one input, in the order they were found; at most
/// [`MAX_REPORTED_ERRORS`] of them plus the final "stopped checking" entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, thiserror::Error)]
#[error("{}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))]
pub struct FieldErrors(pub Vec<FieldError>);

impl FieldErrors {
    pub fn one(field: impl Into<String>, problem: impl Into<String>) -> Self {
        Self(vec![FieldError::new(field, problem)])
    }
}

/// Collects problems up to the cap. Once full, it has appended the stop marker and
/// ignores everything else; parsers check [`Collector::is_full`] to stop scanning.
#[derive(Debug, Default)]
pub(crate) struct Collector {
    errors: Vec<FieldError>,
    full: bool,
}

impl Collector {
    pub(crate) fn new() -> Self {
        Self::default()
    }

    pub(crate) fn push(&mut self, error: FieldError) {
        if self.full {
            return;
        }
        if self.errors.len() == MAX_REPORTED_ERRORS {
            self.errors.push(FieldError::new("", STOPPED_PROBLEM));
            self.full = true;
        } else {
            self.errors.push(error);
        }
    }

    pub(crate) fn err(&mut self, field: impl Into<String>, problem: impl Into<String>) {
        if !self.full {
            self.push(FieldError::new(field, problem));
        }
    }

    /// Adds another list's problems under `parent` (its own stop marker included).
    pub(crate) fn extend_under(&mut self, errors: FieldErrors, parent: &str) {
        for e in errors.0 {
            if self.full {
                return;
            }
            if e.is_stop_marker() {
                // A nested list was cut: so is this one.
                while !self.full {
                    self.push(FieldError::new("", STOPPED_PROBLEM));
                }
                return;
            }
            self.push(e.under(parent));
        }
    }

    /// True once the cap was exceeded and the stop marker appended.
    pub(crate) fn is_full(&self) -> bool {
        self.full
    }

    /// `Ok(())` if nothing was collected.
    pub(crate) fn finish(self) -> Result<(), FieldErrors> {
        if self.errors.is_empty() {
            Ok(())
        } else {
            Err(FieldErrors(self.errors))
        }
    }
}

/// Client input quoted in a problem: Debug-quoted, cut to [`MAX_ECHOED_CHARS`]
/// characters (`"abc…"` when cut).
pub fn excerpt(raw: &str) -> String {
    match raw.char_indices().nth(MAX_ECHOED_CHARS) {
        None => format!("{raw:?}"),
        Some((cut, _)) => format!("{:?}…", &raw[..cut]),
    }
}

/// An object key as one JSON-pointer segment (RFC 6901: `~` → `~0`, `/` → `~1`; control
/// characters escaped), cut after about [`MAX_ECHOED_CHARS`] characters (then ending in `…`).
pub fn pointer_segment(key: &str) -> String {
    let mut out = String::new();
    let mut emitted = 0;
    for c in key.chars() {
        if emitted >= MAX_ECHOED_CHARS {
            out.push('…');
            break;
        }
        let before = out.len();
        match c {
            '~' => out.push_str("~0"),
            '/' => out.push_str("~1"),
            c if c.is_control() => out.extend(c.escape_default()),
            c => out.push(c),
        }
        emitted += out[before..].chars().count();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn collector_caps_and_marks_the_cut() {
        let mut c = Collector::new();
        for i in 0..MAX_REPORTED_ERRORS {
            c.err(format!("/{i}"), "bad");
        }
        assert!(!c.is_full());
        c.err("/x", "bad");
        c.err("/y", "bad");
        assert!(c.is_full());
        let errors = c.finish().unwrap_err().0;
        assert_eq!(errors.len(), MAX_REPORTED_ERRORS + 1);
        assert!(errors.last().unwrap().is_stop_marker());
    }

    #[test]
    fn nested_cut_lists_stay_cut() {
        let mut inner = Collector::new();
        for _ in 0..=MAX_REPORTED_ERRORS {
            inner.err("/a", "bad");
        }
        let mut outer = Collector::new();
        outer.err("/first", "bad");
        outer.extend_under(inner.finish().unwrap_err(), "/spec");
        let errors = outer.finish().unwrap_err().0;
        assert_eq!(errors.len(), MAX_REPORTED_ERRORS + 1);
        assert_eq!(errors[1].field, "/spec/a");
        assert!(errors.last().unwrap().is_stop_marker());
    }

    #[test]
    fn echoes_are_short() {
        assert_eq!(excerpt("pie"), "\"pie\"");
        assert_eq!(excerpt(&"é".repeat(100)).chars().count(), 43);
        assert_eq!(pointer_segment("a/b~c"), "a~1b~0c");
        assert_eq!(pointer_segment(&"k".repeat(1000)).chars().count(), 41);
        assert_eq!(pointer_segment("a\nb"), "a\\nb");
    }
}
