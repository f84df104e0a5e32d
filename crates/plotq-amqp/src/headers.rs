//! The AMQP headers plotq writes on retried and dead-lettered jobs, and reads back on
//! deliveries and dead letters (names in `wire::amqp_headers`): the attempt number,
//! the reason and time a job was dead-lettered, and the broker's own reason for
//! messages it dead-lettered itself. Pure: no I/O.

use lapin::types::{AMQPValue, FieldTable};
use plotq_domain::wire::amqp_headers::{ATTEMPT, BROKER_DEATH_REASON, DEAD_AT, REASON};
use plotq_ports::DeadLetter;

/// The headers of retry `attempt` (1-based).
pub(crate) fn retry(attempt: u32) -> FieldTable {
    let mut headers = FieldTable::default();
    headers.insert(ATTEMPT.into(), AMQPValue::LongUInt(attempt));
    headers
}

/// The headers of a job dead-lettered at `dead_at_ms` after `attempts`, for `reason`.
pub(crate) fn dead_letter(attempts: u32, reason: &str, dead_at_ms: i64) -> FieldTable {
    let mut headers = retry(attempts);
    headers.insert(REASON.into(), AMQPValue::LongString(reason.into()));
    headers.insert(DEAD_AT.into(), AMQPValue::LongLongInt(dead_at_ms));
    headers
}

/// The attempt a delivery is (0: the first, never retried).
pub(crate) fn attempt_of(headers: Option<&FieldTable>) -> u32 {
    headers.and_then(|h| header_u32(h, ATTEMPT)).unwrap_or(0)
}

/// A message of the dead-letter queue as a `DeadLetter`: plotq's headers, or the
/// broker's reason for one it dead-lettered itself.
pub(crate) fn dead_letter_of(body: Vec<u8>, headers: &FieldTable) -> DeadLetter {
    DeadLetter {
        body,
        reason: header_str(headers, REASON).unwrap_or_else(|| death_reason(headers)),
        attempts: header_u32(headers, ATTEMPT).unwrap_or(0),
        dead_at_ms: header_u64(headers, DEAD_AT)
            .and_then(|ms| i64::try_from(ms).ok())
            .unwrap_or(0),
    }
}

fn header_str(headers: &FieldTable, key: &str) -> Option<String> {
    match headers.inner().get(key)? {
        AMQPValue::LongString(s) => Some(String::from_utf8_lossy(s.as_bytes()).into_owned()),
        AMQPValue::ShortString(s) => Some(s.as_str().to_owned()),
        _ => None,
    }
}

fn header_u64(headers: &FieldTable, key: &str) -> Option<u64> {
    match headers.inner().get(key)? {
        AMQPValue::LongUInt(v) => Some(u64::from(*v)),
        AMQPValue::LongLongInt(v) => u64::try_from(*v).ok(),
        AMQPValue::LongInt(v) => u64::try_from(*v).ok(),
        AMQPValue::ShortUInt(v) => Some(u64::from(*v)),
        AMQPValue::ShortShortUInt(v) => Some(u64::from(*v)),
        AMQPValue::Timestamp(v) => Some(*v),
        _ => None,
    }
}

fn header_u32(headers: &FieldTable, key: &str) -> Option<u32> {
    header_u64(headers, key).and_then(|v| u32::try_from(v).ok())
}

/// The broker's own reason (`x-first-death-reason`, e.g. `delivery_limit`) for messages
/// it dead-lettered itself.
fn death_reason(headers: &FieldTable) -> String {
    header_str(headers, BROKER_DEATH_REASON)
        .map(|r| format!("dead-lettered by the broker: {r}"))
        .unwrap_or_else(|| "dead-lettered by the broker".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_plotq_writes_it_reads_back() {
        assert_eq!(attempt_of(Some(&retry(3))), 3);
        assert_eq!(attempt_of(None), 0, "a first delivery");
        let headers = dead_letter(2, "gave up: mongodb is unavailable", 1_700_000_000_000);
        assert_eq!(
            dead_letter_of(b"job".to_vec(), &headers),
            DeadLetter {
                body: b"job".to_vec(),
                reason: "gave up: mongodb is unavailable".to_owned(),
                attempts: 2,
                dead_at_ms: 1_700_000_000_000,
            }
        );
    }

    #[test]
    fn numbers_are_read_in_any_integer_type_and_text_in_either_string_type() {
        for value in [
            AMQPValue::LongUInt(7),
            AMQPValue::LongLongInt(7),
            AMQPValue::LongInt(7),
            AMQPValue::ShortUInt(7),
            AMQPValue::ShortShortUInt(7),
            AMQPValue::Timestamp(7),
        ] {
            let mut headers = FieldTable::default();
            headers.insert(ATTEMPT.into(), value.clone());
            assert_eq!(attempt_of(Some(&headers)), 7, "{value:?}");
        }
        let mut negative = FieldTable::default();
        negative.insert(ATTEMPT.into(), AMQPValue::LongInt(-1));
        assert_eq!(attempt_of(Some(&negative)), 0);
        let mut short = FieldTable::default();
        short.insert(REASON.into(), AMQPValue::ShortString("poison".into()));
        assert_eq!(dead_letter_of(Vec::new(), &short).reason, "poison");
    }

    #[test]
    fn a_message_the_broker_dead_lettered_gives_the_brokers_reason() {
        let mut headers = FieldTable::default();
        headers.insert(
            BROKER_DEATH_REASON.into(),
            AMQPValue::LongString("delivery_limit".into()),
        );
        let letter = dead_letter_of(Vec::new(), &headers);
        assert_eq!(letter.reason, "dead-lettered by the broker: delivery_limit");
        assert_eq!((letter.attempts, letter.dead_at_ms), (0, 0));
        assert_eq!(
            dead_letter_of(Vec::new(), &FieldTable::default()).reason,
            "dead-lettered by the broker"
        );
    }
}
