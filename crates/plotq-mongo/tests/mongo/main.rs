//! `MongoStore`'s one test binary. Against the MongoDB-wire server on 127.0.0.1:27017
//! (fails if it is not running), each test in a database of its own: window reads to
//! the millisecond (`windows.rs`), rollups merged per series and minute, and batches
//! counted once (`rollups.rs`), the retention TTL indexes (`indexes.rs`). Against a
//! private server of the test's own, killed: calls bounded while MongoDB is down
//! (`outage.rs`). `helpers.rs` builds the store, its queries and samples.

mod helpers;
mod indexes;
mod outage;
mod rollups;
mod windows;
