//! `AmqpQueue`'s one test binary, against the real RabbitMQ on 127.0.0.1:5672 (fails if
//! it is not running): publishing and its refusals (`publishing.rs`), reaching the
//! broker and keeping credentials out of errors (`brokers.rs`), retry tiers and dead
//! letters (`retries.rs`). Each test uses its own random namespace and deletes the
//! queues and exchange it created (`helpers.rs`).

mod brokers;
mod helpers;
mod publishing;
mod retries;
