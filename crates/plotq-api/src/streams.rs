//! Cumulative OTLP streams turned into deltas. A cumulative Sum or Histogram point
//! carries everything since its stream's start, so what happened since the previous
//! point is the difference of the two; plotq stores that difference (a sample, or a
//! summary merged into the rollups). A stream is identified as the OpenTelemetry data
//! model identifies it: its resource's attributes, the metric's name and kind, and the
//! point's attributes (hashed, with this process's random keys).
//!
//! - The first point of a stream this process sees counts whole when the stream
//!   started (`start_time_unix_nano`) after this process did — nothing of it can have
//!   been counted before — and is otherwise the baseline the next point counts from (it
//!   is reported as left out, with the reason). This is the OpenTelemetry Collector's
//!   `cumulativetodelta` rule (`initial_value: auto`).
//! - A reset — a new start time, a value or a bucket count lower than before, other
//!   bucket bounds — counts the point whole (what happened since the reset).
//! - A point not newer than the stream's last is a repeat (an exporter's retry of what
//!   was stored): left out, reported.
//! - A stream's state moves only once the store acknowledged what was derived from it
//!   ([`Streams::commit`]): an export answered `503` and retried counts once.
//!
//! The state is this process's: with several api replicas, an exporter's cumulative
//! stream must reach the same one (or be turned into deltas before plotq, by the
//! exporter's temporality preference or the Collector's `cumulativetodelta`), which the
//! README says. At most `max` streams are followed (`PLOTQ_OTLP_MAX_STREAMS`); streams
//! silent for [`STALE_MS`] are forgotten first, and past the bound a new stream's points
//! are refused with the reason (never counted wrongly).

use std::collections::hash_map::RandomState;
use std::collections::{BTreeMap, HashMap};
use std::hash::{BuildHasher, Hash};
use std::sync::Mutex;

/// A stream silent this long (by the api's clock) is forgotten when room is needed.
pub(crate) const STALE_MS: i64 = 15 * 60_000;

/// The value of a cumulative point, as far as differencing goes.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Cumulative {
    /// A monotonic Sum's value.
    Sum(f64),
    /// An explicit-bounds histogram's counts per bucket, its total count and sum.
    Buckets(Buckets),
    /// An exponential histogram's.
    Exponential(Exponential),
}

/// An exponential histogram point's counts: bucket `i` of `positive` holds values in
/// `(2^(i·2^-scale), 2^((i+1)·2^-scale)]`, `negative` their negatives, `zero` those within
/// the zero threshold.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Exponential {
    pub scale: i32,
    pub zero: u64,
    pub positive: BTreeMap<i32, u64>,
    pub negative: BTreeMap<i32, u64>,
    pub count: u64,
    pub sum: Option<f64>,
}

impl Exponential {
    /// The same counts at a scale `by` lower (each bucket merged into its parent).
    fn downscaled(&self, by: u32) -> Self {
        let down = |map: &BTreeMap<i32, u64>| {
            let mut out = BTreeMap::new();
            for (&i, &n) in map {
                *out.entry(i >> by.min(31)).or_default() += n;
            }
            out
        };
        Self {
            scale: self.scale - by as i32,
            positive: down(&self.positive),
            negative: down(&self.negative),
            ..self.clone()
        }
    }
}

/// A histogram point's buckets in a form two points of a stream can be subtracted in:
/// `key` says what the counts are of (the explicit bounds, or the exponential scale and
/// first index of each side), `counts` the counts in that layout.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Buckets {
    pub key: Vec<u64>,
    pub counts: Vec<u64>,
    pub count: u64,
    pub sum: Option<f64>,
}

/// What to store of a cumulative point.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Delta {
    /// This much happened since the stream's previous point (or since its start).
    Counted(Cumulative),
    /// Nothing to store, for this reason (a baseline, a repeat).
    Left(&'static str),
    /// Refused (no room for another stream).
    Refused(&'static str),
}

/// A stream's state once an export's deltas are stored.
#[derive(Debug, Clone)]
pub(crate) struct Update {
    id: u64,
    stream: Stream,
}

#[derive(Debug, Clone)]
struct Stream {
    start_unix_nano: u64,
    time_unix_nano: u64,
    last: Cumulative,
    /// When this process last saw the stream (epoch ms).
    seen_ms: i64,
}

/// The cumulative streams this process follows.
#[derive(Debug)]
pub struct Streams {
    max: usize,
    started_unix_nano: u64,
    hasher: RandomState,
    held: Mutex<HashMap<u64, Stream>>,
}

impl Streams {
    /// Follows at most `max` streams; `started_ms` is when this process started.
    pub fn new(max: usize, started_ms: i64) -> Self {
        Self {
            max: max.max(1),
            started_unix_nano: u64::try_from(started_ms).unwrap_or(0) * 1_000_000,
            hasher: RandomState::new(),
            held: Mutex::new(HashMap::new()),
        }
    }

    /// The id of the stream `parts` identify.
    pub(crate) fn id_of(&self, parts: impl Hash) -> u64 {
        self.hasher.hash_one(parts)
    }

    /// What to store of stream `id`'s point `current` (taken at `time`, its stream
    /// started at `start`), and the state to [`Streams::commit`] once it is stored.
    /// `pending` holds this export's earlier updates (an export may carry several points
    /// of one stream), which count as the stream's state.
    pub(crate) fn delta(
        &self,
        id: u64,
        (start, time): (u64, u64),
        current: Cumulative,
        now_ms: i64,
        pending: &mut Vec<Update>,
    ) -> Delta {
        let mut held = self.held.lock().expect("streams lock");
        let last = pending
            .iter()
            .rev()
            .find(|u| u.id == id)
            .map(|u| &u.stream)
            .or_else(|| held.get(&id))
            .cloned();
        let delta = match &last {
            None => {
                if held.len() >= self.max && !room(&mut held, self.max, now_ms) {
                    return Delta::Refused(
                        "points of a cumulative stream past PLOTQ_OTLP_MAX_STREAMS followed streams (send delta temporality)",
                    );
                }
                if start > 0 && start >= self.started_unix_nano {
                    Delta::Counted(current.clone())
                } else {
                    Delta::Left(
                        "first points of cumulative streams that started before this api (the baseline their next points count from)",
                    )
                }
            }
            Some(last) if time <= last.time_unix_nano && start == last.start_unix_nano => {
                return Delta::Left(
                    "points of cumulative streams not newer than the last one stored (repeats)",
                );
            }
            Some(last) if start != last.start_unix_nano => Delta::Counted(current.clone()),
            Some(last) => {
                Delta::Counted(difference(&current, &last.last).unwrap_or_else(|| current.clone()))
            }
        };
        pending.push(Update {
            id,
            stream: Stream {
                start_unix_nano: start,
                time_unix_nano: time,
                last: current,
                seen_ms: now_ms,
            },
        });
        delta
    }

    /// Records `updates` (their deltas were stored); a stream another export moved past
    /// meanwhile keeps the newer state.
    pub(crate) fn commit(&self, updates: Vec<Update>) {
        if updates.is_empty() {
            return;
        }
        let mut held = self.held.lock().expect("streams lock");
        for Update { id, stream } in updates {
            match held.get(&id) {
                Some(newer)
                    if newer.start_unix_nano == stream.start_unix_nano
                        && newer.time_unix_nano > stream.time_unix_nano => {}
                _ => {
                    if held.len() < self.max || held.contains_key(&id) {
                        held.insert(id, stream);
                    }
                }
            }
        }
        metrics::gauge!("plotq_otlp_streams").set(held.len() as f64);
    }

    /// How many streams are followed.
    #[cfg(test)]
    fn len(&self) -> usize {
        self.held.lock().expect("streams lock").len()
    }
}

/// Makes room by forgetting the streams silent for [`STALE_MS`]; whether there is room
/// for one more of `max` now.
fn room(held: &mut HashMap<u64, Stream>, max: usize, now_ms: i64) -> bool {
    held.retain(|_, s| s.seen_ms > now_ms - STALE_MS);
    held.len() < max
}

/// `current - last` of one stream, or `None` for a reset (a lower value or count,
/// another bucket layout).
fn difference(current: &Cumulative, last: &Cumulative) -> Option<Cumulative> {
    match (current, last) {
        (Cumulative::Sum(v), Cumulative::Sum(before)) => {
            (v >= before).then(|| Cumulative::Sum(v - before))
        }
        (Cumulative::Buckets(now), Cumulative::Buckets(before)) => {
            if now.key != before.key
                || now.counts.len() != before.counts.len()
                || now.count < before.count
            {
                return None;
            }
            let counts = now
                .counts
                .iter()
                .zip(&before.counts)
                .map(|(a, b)| a.checked_sub(*b))
                .collect::<Option<Vec<u64>>>()?;
            Some(Cumulative::Buckets(Buckets {
                key: now.key.clone(),
                counts,
                count: now.count - before.count,
                sum: now.sum.zip(before.sum).map(|(a, b)| a - b),
            }))
        }
        (Cumulative::Exponential(now), Cumulative::Exponential(before)) => {
            // Exporters lower a stream's scale as its range grows: both at the lower one.
            let scale = now.scale.min(before.scale);
            let now = now.downscaled((now.scale - scale) as u32);
            let before = before.downscaled((before.scale - scale) as u32);
            let minus = |a: &BTreeMap<i32, u64>, b: &BTreeMap<i32, u64>| {
                if b.keys().any(|i| !a.contains_key(i)) {
                    return None;
                }
                a.iter()
                    .map(|(i, n)| Some((*i, n.checked_sub(*b.get(i).unwrap_or(&0))?)))
                    .filter(|d| d.is_none_or(|(_, n)| n > 0))
                    .collect::<Option<BTreeMap<i32, u64>>>()
            };
            Some(Cumulative::Exponential(Exponential {
                scale,
                zero: now.zero.checked_sub(before.zero)?,
                positive: minus(&now.positive, &before.positive)?,
                negative: minus(&now.negative, &before.negative)?,
                count: now.count.checked_sub(before.count)?,
                sum: now.sum.zip(before.sum).map(|(a, b)| a - b),
            }))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: u64 = 1_000_000;

    fn streams() -> Streams {
        Streams::new(2, 1_000)
    }

    fn sum(v: f64) -> Cumulative {
        Cumulative::Sum(v)
    }

    #[test]
    fn sums_count_their_differences_and_resets_whole() {
        let streams = streams();
        let mut pending = Vec::new();
        let started = 2_000 * S; // after the process started (1,000 ms)
        let at = |t: u64, v: f64, pending: &mut Vec<Update>| {
            streams.delta(7, (started, t * S), sum(v), 0, pending)
        };
        assert_eq!(at(3_000, 5.0, &mut pending), Delta::Counted(sum(5.0)));
        assert_eq!(at(4_000, 12.0, &mut pending), Delta::Counted(sum(7.0)));
        // A repeat within the same export, and after the commit.
        assert!(matches!(at(4_000, 12.0, &mut pending), Delta::Left(_)));
        streams.commit(std::mem::take(&mut pending));
        assert!(matches!(at(4_000, 12.0, &mut pending), Delta::Left(_)));
        // A reset: the value dropped, so it counts whole.
        assert_eq!(at(5_000, 3.0, &mut pending), Delta::Counted(sum(3.0)));
        // Nothing committed (the store failed): the retry counts the same.
        pending.clear();
        assert_eq!(at(5_000, 3.0, &mut pending), Delta::Counted(sum(3.0)));
    }

    #[test]
    fn streams_older_than_the_process_start_from_a_baseline() {
        let streams = streams();
        let mut pending = Vec::new();
        let old = 500 * S;
        let first = streams.delta(1, (old, 2_000 * S), sum(100.0), 0, &mut pending);
        assert!(matches!(first, Delta::Left(_)), "{first:?}");
        let next = streams.delta(1, (old, 3_000 * S), sum(130.0), 0, &mut pending);
        assert_eq!(next, Delta::Counted(sum(30.0)));
        // A new start time is a restarted exporter: counted whole.
        let restarted = streams.delta(1, (2_500 * S, 4_000 * S), sum(4.0), 0, &mut pending);
        assert_eq!(restarted, Delta::Counted(sum(4.0)));
    }

    #[test]
    fn histograms_subtract_per_bucket_and_reset_on_other_bounds() {
        let b = |key: Vec<u64>, counts: Vec<u64>, sum| {
            let count = counts.iter().sum();
            Cumulative::Buckets(Buckets {
                key,
                counts,
                count,
                sum: Some(sum),
            })
        };
        let before = b(vec![1, 2], vec![1, 4, 0], 30.0);
        let now = b(vec![1, 2], vec![3, 4, 2], 70.0);
        assert_eq!(
            difference(&now, &before),
            Some(b(vec![1, 2], vec![2, 0, 2], 40.0))
        );
        assert_eq!(difference(&before, &now), None);
        assert_eq!(difference(&b(vec![9], vec![5, 5], 1.0), &before), None);
    }

    #[test]
    fn exponential_histograms_subtract_across_a_lowered_scale() {
        let e = |scale, positive: &[(i32, u64)], sum| {
            let positive: BTreeMap<i32, u64> = positive.iter().copied().collect();
            Cumulative::Exponential(Exponential {
                scale,
                zero: 1,
                count: 1 + positive.values().sum::<u64>(),
                positive,
                negative: BTreeMap::new(),
                sum: Some(sum),
            })
        };
        // At scale 1, buckets 4 and 5 are bucket 2 at scale 0, bucket 6 is bucket 3.
        let before = e(1, &[(4, 2), (5, 1), (6, 1)], 10.0);
        let now = e(0, &[(2, 5), (3, 1), (7, 2)], 30.0);
        assert_eq!(
            difference(&now, &before),
            Some(e(0, &[(2, 2), (7, 2)], 20.0)).map(|c| match c {
                Cumulative::Exponential(x) => Cumulative::Exponential(Exponential {
                    zero: 0,
                    count: 4,
                    ..x
                }),
                other => other,
            })
        );
        // Fewer in a bucket than before: a reset.
        assert_eq!(difference(&before, &now), None);
    }

    #[test]
    fn past_the_bound_new_streams_are_refused_until_old_ones_go_stale() {
        let streams = streams();
        let start = 2_000 * S;
        for id in [1, 2] {
            let mut pending = Vec::new();
            streams.delta(id, (start, 3_000 * S), sum(1.0), 0, &mut pending);
            streams.commit(pending);
        }
        assert_eq!(streams.len(), 2);
        let mut pending = Vec::new();
        let third = streams.delta(3, (start, 3_000 * S), sum(1.0), 60_000, &mut pending);
        assert!(matches!(third, Delta::Refused(_)), "{third:?}");
        // Stream 2 stays busy; stream 1 goes silent past STALE_MS and is forgotten.
        let mut pending = Vec::new();
        streams.delta(2, (start, 4_000 * S), sum(2.0), STALE_MS + 1, &mut pending);
        streams.commit(pending);
        let mut pending = Vec::new();
        let third = streams.delta(3, (start, 3_000 * S), sum(1.0), STALE_MS + 2, &mut pending);
        assert_eq!(third, Delta::Counted(sum(1.0)));
    }
}
