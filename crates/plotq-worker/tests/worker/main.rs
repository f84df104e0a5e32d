//! The worker over the in-memory ports, its store wrapped in `plotq_ports::faulty::Faulty`
//! (reads that fail, panic or are counted on demand), with renders that block or panic
//! and an acker that records how each delivery was settled. Every test asserts on job
//! states (their timings and statistics included), events, dead letters, settlements
//! and metrics (a recorder local to the test's thread), never on logs, and waits on
//! events or state under a deadline. One module per area; `helpers` is the `Harness`.

mod deadlines;
mod helpers;
mod lanes;
mod outages;
mod outcomes;
mod poison;
mod timings;
