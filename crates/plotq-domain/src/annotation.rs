//! Annotations: a moment worth marking on time plots (a deploy, an incident, a config
//! change) with a short text and the services it concerns. What `POST
//! /api/v1/annotations` takes (parsed here, every bad member named), what stores keep,
//! what a plot of one of its services draws on a time axis, and what a done job lists.

use crate::error::{FieldError, FieldErrors, excerpt};
use crate::names::ServiceName;
use crate::timestamp::parse_sample_timestamp;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Longest text, in characters.
pub const MAX_TEXT_CHARS: usize = 200;
/// Most services one annotation names.
pub const MAX_SERVICES: usize = 8;
/// Most annotations a plot draws and a job lists: the latest of its window.
pub const MAX_DRAWN: usize = 50;

/// A marked moment, as stored and listed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Annotation {
    /// A UUIDv7 issued when it was posted.
    pub id: String,
    /// When it happened, epoch milliseconds.
    pub time_ms: i64,
    pub text: String,
    /// The services whose plots show it, distinct, in the order given.
    pub services: Vec<ServiceName>,
}

impl Annotation {
    /// Parses a request body `{"text", "services", "time"?}` (`time`: epoch ms or RFC
    /// 3339, `now_ms` when absent), naming every bad member. `id` is the caller's to
    /// issue.
    pub fn parse(body: &Value, id: String, now_ms: i64) -> Result<Self, FieldErrors> {
        let Some(object) = body.as_object() else {
            return Err(FieldErrors::one("", "must be an object"));
        };
        let mut errors = Vec::new();
        for key in object.keys() {
            if !matches!(key.as_str(), "text" | "services" | "time") {
                errors.push(FieldError::new(
                    format!("/{}", crate::error::pointer_segment(key)),
                    "unknown field; expected text, services or time",
                ));
            }
        }
        let text = match object.get("text") {
            Some(Value::String(t)) => match check_text(t) {
                Ok(()) => Some(t.clone()),
                Err(problem) => {
                    errors.push(FieldError::new("/text", problem));
                    None
                }
            },
            Some(_) => {
                errors.push(FieldError::new("/text", "must be a string"));
                None
            }
            None => {
                errors.push(FieldError::new("/text", "is required"));
                None
            }
        };
        let services = match object.get("services") {
            Some(Value::Array(items)) => parse_services(items, &mut errors),
            Some(_) => {
                errors.push(FieldError::new(
                    "/services",
                    "must be an array of service names",
                ));
                Vec::new()
            }
            None => {
                errors.push(FieldError::new("/services", "is required"));
                Vec::new()
            }
        };
        let time_ms = match object.get("time") {
            None | Some(Value::Null) => Some(now_ms),
            Some(v) => match parse_sample_timestamp(v) {
                Ok(ms) => Some(ms),
                Err(problem) => {
                    errors.push(FieldError::new("/time", problem));
                    None
                }
            },
        };
        match (text, time_ms, errors.is_empty()) {
            (Some(text), Some(time_ms), true) => Ok(Self {
                id,
                time_ms,
                text,
                services,
            }),
            _ => Err(FieldErrors(errors)),
        }
    }

    /// What decoding a stored or received annotation checks: the API's rules.
    pub fn validate(&self) -> Result<(), String> {
        check_text(&self.text)?;
        crate::timestamp::check_timestamp(self.time_ms)?;
        if self.services.is_empty() || self.services.len() > MAX_SERVICES {
            return Err(format!("must name 1 to {MAX_SERVICES} services"));
        }
        if self
            .services
            .iter()
            .enumerate()
            .any(|(i, s)| self.services[..i].contains(s))
        {
            return Err("names a service twice".into());
        }
        let id_char = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | ':');
        if self.id.is_empty() || self.id.len() > 64 || !self.id.chars().all(id_char) {
            return Err("id must be 1 to 64 letters, digits, '-', '_', '.' or ':'".into());
        }
        Ok(())
    }

    /// Whether it concerns `service`.
    pub fn concerns(&self, service: &str) -> bool {
        self.services.iter().any(|s| s.as_str() == service)
    }
}

/// The latest [`MAX_DRAWN`] of `annotations`, in time order (ties by id).
pub fn latest(mut annotations: Vec<Annotation>) -> Vec<Annotation> {
    annotations.sort_by(|a, b| (a.time_ms, &a.id).cmp(&(b.time_ms, &b.id)));
    annotations.dedup_by(|a, b| a.id == b.id);
    let skip = annotations.len().saturating_sub(MAX_DRAWN);
    annotations.drain(..skip);
    annotations
}

fn check_text(text: &str) -> Result<(), String> {
    let chars = text.chars().count();
    if text.trim().is_empty() || chars > MAX_TEXT_CHARS {
        return Err(format!(
            "must be 1 to {MAX_TEXT_CHARS} characters, not blank"
        ));
    }
    if text.chars().any(char::is_control) {
        return Err("must not contain control characters (line breaks included)".into());
    }
    Ok(())
}

fn parse_services(items: &[Value], errors: &mut Vec<FieldError>) -> Vec<ServiceName> {
    if items.is_empty() || items.len() > MAX_SERVICES {
        errors.push(FieldError::new(
            "/services",
            format!("must name 1 to {MAX_SERVICES} services"),
        ));
        return Vec::new();
    }
    let mut services: Vec<ServiceName> = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let field = format!("/services/{i}");
        match item.as_str().map(ServiceName::parse) {
            Some(Ok(name)) if services.contains(&name) => {
                errors.push(FieldError::new(
                    field,
                    format!("{} is named twice", excerpt(name.as_str())),
                ));
            }
            Some(Ok(name)) => services.push(name),
            Some(Err(problem)) => errors.push(FieldError::new(field, problem)),
            None => errors.push(FieldError::new(field, "must be a service name (a string)")),
        }
    }
    services
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const NOW: i64 = 1_800_000_000_000;

    fn fields(body: Value) -> Vec<String> {
        Annotation::parse(&body, "id".into(), NOW)
            .unwrap_err()
            .0
            .into_iter()
            .map(|e| e.field)
            .collect()
    }

    #[test]
    fn parses_a_deploy_marker_with_and_without_a_time() {
        let a = Annotation::parse(
            &json!({"text": "deploy v42", "services": ["checkout", "payments"]}),
            "id".into(),
            NOW,
        )
        .unwrap();
        assert_eq!((a.time_ms, a.text.as_str()), (NOW, "deploy v42"));
        assert_eq!(a.services.len(), 2);
        a.validate().unwrap();
        let at = Annotation::parse(
            &json!({"text": "rollback", "services": ["checkout"], "time": "2026-12-07T10:00:00Z"}),
            "id".into(),
            NOW,
        )
        .unwrap();
        assert_eq!(at.time_ms, 1_796_637_600_000);
        assert!(at.concerns("checkout") && !at.concerns("payments"));
    }

    #[test]
    fn names_every_bad_member() {
        assert_eq!(fields(json!({})), ["/text", "/services"]);
        assert_eq!(
            fields(json!({"text": " ", "services": [], "time": "yesterday", "color": "red"})),
            ["/color", "/text", "/services", "/time"]
        );
        assert_eq!(
            fields(json!({"text": "a\nb", "services": ["ok", "a b", 3, "ok"]})),
            ["/text", "/services/1", "/services/2", "/services/3"]
        );
        assert_eq!(
            fields(json!({"text": "x".repeat(201), "services": vec!["a"; 9]})),
            ["/text", "/services"]
        );
        assert_eq!(fields(json!([1])), [""]);
    }

    #[test]
    fn the_latest_are_kept_in_time_order() {
        let at = |i: i64| Annotation {
            id: format!("{i:03}"),
            time_ms: NOW - i * 1_000,
            text: "t".into(),
            services: vec![ServiceName::parse("a").unwrap()],
        };
        let many: Vec<Annotation> = (0..80).map(at).collect();
        let kept = latest(many);
        assert_eq!(kept.len(), MAX_DRAWN);
        assert_eq!(kept.first().unwrap().time_ms, NOW - 49_000);
        assert_eq!(kept.last().unwrap().time_ms, NOW);
    }
}
