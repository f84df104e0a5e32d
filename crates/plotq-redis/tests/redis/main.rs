//! The Redis adapters' one test binary. Against the shared services (each test fails if
//! its Redis is not running): the suite (`suite.rs`) on the single Redis on
//! 127.0.0.1:6379 (`single.rs`) and on the 3-master Redis Cluster on
//! 127.0.0.1:7101-7103 (`cluster.rs`, with what only a cluster shows). Against private
//! `redis-server`s of the tests' own, killed and restarted: outages (`outage.rs`) and a
//! cluster master lost for good (`failover.rs`). `helpers.rs` builds the adapters'
//! config, the raw connections and the private servers.

mod cluster;
mod failover;
mod helpers;
mod outage;
mod single;
mod suite;
