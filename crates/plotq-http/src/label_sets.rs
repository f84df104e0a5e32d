//! The cap on label sets a series may have, per caller: a sample's labels are part of
//! its series' identity, so a client that puts a request id or a user id in a label makes
//! a new series per sample (a "label bomb"), each with its own chunks and rollups. Each
//! caller (tenant) may write at most `max_per_series` distinct label sets of one
//! (service, metric); past it a batch is refused whole with `422 too_many_label_sets`,
//! naming the first sample past the cap and the setting. Counted by this process (N api
//! replicas allow up to N× the cap, as the rate limits do), for at most `max_series`
//! (caller, service, metric) at once: past that, the oldest tracked is forgotten.

use crate::problem::{Problem, ProblemCode};
use plotq_domain::{FieldError, Labels, Sample};
use std::collections::hash_map::{Entry, RandomState};
use std::collections::{HashMap, HashSet, VecDeque};
use std::hash::BuildHasher;
use std::sync::Mutex;

/// (caller, service, metric).
type SeriesOf = (String, String, String);

/// The label sets each tracked series has been written with (as hashes).
#[derive(Debug)]
pub struct LabelSets {
    max_per_series: usize,
    max_series: usize,
    hasher: RandomState,
    seen: Mutex<Tracked>,
}

#[derive(Debug, Default)]
struct Tracked {
    sets: HashMap<SeriesOf, HashSet<u64>>,
    /// Tracked series, oldest first.
    order: VecDeque<SeriesOf>,
}

impl LabelSets {
    pub fn new(max_per_series: usize, max_series: usize) -> Self {
        Self {
            max_per_series,
            max_series: max_series.max(1),
            hasher: RandomState::new(),
            seen: Mutex::new(Tracked::default()),
        }
    }

    /// Counts the label sets of `samples` for caller `key`, or refuses the whole batch
    /// (counting nothing) when one series would pass the cap.
    pub fn admit(&self, key: &str, samples: &[Sample]) -> Result<(), Problem> {
        self.admit_series(
            key,
            samples
                .iter()
                .map(|s| (s.service.as_str(), s.metric.as_str(), &s.labels)),
        )
    }

    /// [`LabelSets::admit`] of a batch's items as (service, metric, labels), in order (a
    /// refusal names the index of the first item past the cap).
    pub fn admit_series<'a>(
        &self,
        key: &str,
        items: impl IntoIterator<Item = (&'a str, &'a str, &'a Labels)>,
    ) -> Result<(), Problem> {
        // Each labelled series of the batch, its sets and the first item of each.
        let mut batch: HashMap<(&str, &str), HashMap<u64, usize>> = HashMap::new();
        let mut previous: Option<(&Labels, u64)> = None;
        for (i, (service, metric, labels)) in items.into_iter().enumerate() {
            if labels.is_empty() {
                continue;
            }
            // A batch's samples usually share their sets (one allocation): hashed once.
            let hash = match previous {
                Some((p, hash)) if p.same(labels) => hash,
                _ => self.hasher.hash_one(labels),
            };
            previous = Some((labels, hash));
            batch
                .entry((service, metric))
                .or_default()
                .entry(hash)
                .or_insert(i);
        }
        if batch.is_empty() {
            return Ok(());
        }
        let mut seen = self.seen.lock().expect("label sets lock");
        for (&(service, metric), sets) in &batch {
            let series = (key.to_owned(), service.to_owned(), metric.to_owned());
            let known = seen.sets.get(&series);
            let mut new: Vec<usize> = sets
                .iter()
                .filter(|(hash, _)| !known.is_some_and(|k| k.contains(hash)))
                .map(|(_, &first)| first)
                .collect();
            let held = known.map_or(0, HashSet::len);
            if held + new.len() > self.max_per_series {
                new.sort_unstable();
                let past = new[self.max_per_series.saturating_sub(held)];
                return Err(self.refused(service, metric, held, past));
            }
        }
        for ((service, metric), sets) in batch {
            let series = (key.to_owned(), service.to_owned(), metric.to_owned());
            match seen.sets.entry(series.clone()) {
                Entry::Occupied(mut held) => held.get_mut().extend(sets.into_keys()),
                Entry::Vacant(new) => {
                    new.insert(sets.into_keys().collect());
                    seen.order.push_back(series);
                }
            }
            while seen.order.len() > self.max_series {
                if let Some(oldest) = seen.order.pop_front() {
                    seen.sets.remove(&oldest);
                }
            }
        }
        Ok(())
    }

    fn refused(&self, service: &str, metric: &str, held: usize, past: usize) -> Problem {
        let max = self.max_per_series;
        Problem {
            errors: vec![FieldError::new(
                format!("/{past}/labels"),
                format!("a label set past the {max} this caller may write for {service}/{metric}"),
            )],
            ..Problem::new(
                ProblemCode::TooManyLabelSets,
                format!(
                    "{service}/{metric} has {held} label sets from this caller and this batch adds more than the \
                     {max} allowed (PLOTQ_MAX_LABEL_SETS); labels are for bounded dimensions such as route, \
                     method or status, not ids; nothing of this batch was stored"
                ),
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use plotq_domain::{Labels, MetricName, ServiceName};

    fn sample(service: &str, route: &str) -> Sample {
        Sample {
            service: ServiceName::parse(service).unwrap(),
            metric: MetricName::parse("latency_ms").unwrap(),
            value: 1.0,
            timestamp_ms: 1_800_000_000_000,
            labels: Labels::from_pairs([("route", route)]).unwrap(),
        }
    }

    #[test]
    fn each_caller_may_write_so_many_sets_of_a_series() {
        let sets = LabelSets::new(3, 100);
        let batch: Vec<Sample> = ["/a", "/b", "/a", "/c"].map(|r| sample("s", r)).into();
        sets.admit("t1", &batch).unwrap();
        // Known sets and other series pass; a fourth set of the series does not.
        sets.admit("t1", &[sample("s", "/b"), sample("other", "/x")])
            .unwrap();
        let refused = sets
            .admit(
                "t1",
                &[sample("s", "/a"), sample("s", "/d"), sample("s", "/e")],
            )
            .unwrap_err();
        assert_eq!(refused.code, ProblemCode::TooManyLabelSets);
        assert_eq!(refused.errors[0].field, "/1/labels");
        assert!(
            refused.detail.contains("PLOTQ_MAX_LABEL_SETS"),
            "{refused:?}"
        );
        // Refused whole: /d was not counted, so another caller's and unlabelled
        // samples still pass, and /d is still refused.
        sets.admit("t2", &[sample("s", "/d")]).unwrap();
        let mut plain = sample("s", "/z");
        plain.labels = Labels::none();
        sets.admit("t1", &[plain]).unwrap();
        assert!(sets.admit("t1", &[sample("s", "/d")]).is_err());
    }

    #[test]
    fn tracking_is_bounded() {
        let sets = LabelSets::new(1, 2);
        for service in ["a", "b", "c"] {
            sets.admit("t", &[sample(service, "/1")]).unwrap();
        }
        // `a` was forgotten: its second set is taken as its first.
        sets.admit("t", &[sample("a", "/2")]).unwrap();
        assert!(sets.admit("t", &[sample("c", "/2")]).is_err());
        assert_eq!(sets.seen.lock().unwrap().sets.len(), 2);
    }
}
