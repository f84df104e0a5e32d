//! The Redis adapters' suite (`suite.rs`) against the single Redis on 127.0.0.1:6379
//! (fails if it is not running).

crate::suite::suite_tests!(crate::helpers::Single);
