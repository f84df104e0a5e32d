//! Wire formats: the only definition of what crosses a process boundary or is stored.
//!
//! Queue messages (`JobMessage`), events (`PlotEvent`), stored job states
//! (`encode_state`/`decode_state`), stored view states (`ViewState`,
//! `encode_view_state`/`decode_view_state`), the claims of signed credentials
//! (`TicketClaims`, `GrantClaims`) and idempotency records (`IdempotencyRecord`) are JSON
//! objects carrying a `v` version field. A reader rejects versions it does not know
//! instead of guessing. The names of the AMQP headers plotq sets on queued jobs are in
//! [`amqp_headers`].
//!
//! Decoding validates, with the same rules as the HTTP API: a message's spec goes
//! through the rules of `PlotSpec::parse` (services, sizes, bins, title, options, range),
//! every timestamp must lie in the timestamp range (1970 to the end of year 9999), and
//! view keys must parse as `View`s. An event names 1 to `MAX_SERVICES` distinct valid
//! services (`service` being the first), a valid metric, and the canonical URLs of its
//! job; its `timings` and `stats`, when present, follow the job state's rules. Invalid
//! input is `DecodeError::Invalid`, naming every problem (up to the cap).
//!
//! Within a version, members may only be added, and only as optional ones: a reader
//! must accept what a writer of the same version wrote before the member existed (e.g.
//! `timings` and `stats` on events, `timings` on job states).
//!
//! `EventId` is the position of an event on the bus: a Redis stream id `<ms>-<seq>`,
//! ordered numerically. The ports hand out and take `EventId`s; only the Redis adapter
//! converts them to and from stream id strings (and the notifier reads a client's
//! `Last-Event-ID` with [`EventId::parse`]).
//!
//! The shapes import the domain types (`job`, `plot`, `view`), never the reverse.
//! Files: `codec.rs` (`DecodeError` and the version checks every shape shares), `job.rs`
//! (`JobMessage`, `Lane`), `event.rs` (`PlotEvent`, `EventKind`), `event_id.rs`,
//! `state.rs` (stored job and view states), `claims.rs`, `idempotency.rs`,
//! `amqp_headers.rs`.

pub mod amqp_headers;
mod claims;
mod codec;
mod event;
mod event_id;
mod idempotency;
mod job;
mod state;

pub use claims::{
    GRANT_CLAIMS_VERSION, GrantClaims, KEY_ID_LEN, QUERY_DIGEST_LEN, TICKET_CLAIMS_VERSION,
    TicketClaims,
};
pub use codec::DecodeError;
pub use event::{EVENT_VERSION, EventKind, PlotEvent};
pub use event_id::EventId;
pub use idempotency::{IDEMPOTENCY_RECORD_VERSION, IdempotencyRecord, MAX_FINGERPRINT_LEN};
pub use job::{JOB_MESSAGE_VERSION, JobMessage, Lane, MAX_LANE_LEN};
pub use state::{
    JOB_STATE_VERSION, VIEW_STATE_VERSION, ViewState, decode_state, decode_view_state,
    encode_state, encode_view_state,
};
