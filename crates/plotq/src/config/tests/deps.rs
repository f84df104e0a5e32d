//! Reaching the dependencies and listening: broker and Redis addresses checked address
//! by address, namespaces scoping every name, the listen address.

use super::{api, worker};
use crate::config::cli::Cli;
use clap::Parser;
use std::net::SocketAddr;

#[test]
fn broker_lists_are_checked_address_by_address() {
    let nodes = api(&["--amqp-url", "amqp://a:5672/%2f, amqps://u:p@b:5671/prod"]);
    assert!(nodes.validate().is_ok());
    let bad = api(&["--amqp-url", "amqp://a/%2f,redis://:hunter2@b"]);
    let err = bad.validate().unwrap_err().to_string();
    assert!(err.contains("address 2 of 2"), "{err}");
    assert!(!err.contains("hunter2"), "{err}");
}

#[test]
fn redis_clusters_are_named_by_their_seed_nodes() {
    let one = api(&[]);
    assert!(!one.redis.topology().unwrap().is_cluster());
    let forced = api(&["--redis-cluster", "yes"]);
    assert!(forced.redis.topology().unwrap().is_cluster());
    let seeds = api(&["--redis-url", "redis://a:7000, redis://b:7000"]);
    assert_eq!(
        seeds.redis.topology().unwrap(),
        plotq_redis::Topology::Cluster(vec![
            "redis://a:7000".to_owned(),
            "redis://b:7000".to_owned()
        ])
    );
    for (url, says) in [
        (
            "redis://a:7000,http://:hunter2@b",
            "address 2 of 2 is not a Redis URL",
        ),
        (
            "redis://:hunter2@a:7000/3,redis://b:7000",
            "only database 0",
        ),
        ("redis://a:7000,redis+unix:///tmp/hunter2.sock", "over TCP"),
        ("rediss://:hunter2@a:7000", "TLS"),
    ] {
        let err = api(&["--redis-url", url])
            .validate()
            .unwrap_err()
            .to_string();
        assert!(err.contains(says), "{url}: {err}");
        assert!(!err.contains("hunter2"), "{err}");
    }
    // One node may be a unix socket and any database.
    assert!(api(&["--redis-url", "redis://a:6379/3"]).validate().is_ok());
}

#[test]
fn namespaces_scope_names() {
    let args = api(&["--namespace", "t1"]);
    assert_eq!(args.rabbit.deps.scoped("."), "t1.plotq");
    assert_eq!(args.mongo.database(&args.rabbit.deps), "t1_plotq");
    let args = worker(&[]);
    assert_eq!(args.rabbit.deps.scoped(":"), "plotq");
    assert_eq!(args.mongo.database(&args.rabbit.deps), "plotq");
    assert!(worker(&["--namespace", "a b"]).validate().is_err());
    let err = Cli::parse_from(["plotq", "dlq", "list", "--namespace", "a b"])
        .into_command()
        .validate()
        .unwrap_err();
    assert!(err.to_string().contains("PLOTQ_NAMESPACE"), "{err}");
}

#[test]
fn http_addr_takes_host_and_port() {
    let args = api(&["--http-addr", "localhost:0"]);
    let addr = args.http.addr("127.0.0.1:8080").unwrap();
    assert!(addr.ip().is_loopback(), "{addr}");
    assert_eq!(addr.port(), 0);
    assert_eq!(
        api(&["--http-addr", "[::1]:9000"])
            .http
            .addr("127.0.0.1:8080")
            .unwrap(),
        "[::1]:9000".parse::<SocketAddr>().unwrap()
    );
    assert_eq!(
        api(&[]).http.addr("127.0.0.1:8080").unwrap(),
        "127.0.0.1:8080".parse::<SocketAddr>().unwrap()
    );
    // No port, or not a number: refused while parsing, naming the setting.
    for bad in ["localhost", "localhost:http", ":8080", "127.0.0.1:70000"] {
        let err = Cli::try_parse_from(["plotq", "api", "--http-addr", bad]).unwrap_err();
        assert!(err.to_string().contains("PLOTQ_HTTP_ADDR"), "{bad}: {err}");
    }
    // A name that does not resolve: refused at start, naming the setting.
    let err = api(&["--http-addr", "no-such-host.invalid:8080"])
        .http
        .addr("127.0.0.1:8080")
        .unwrap_err()
        .to_string();
    assert!(err.contains("PLOTQ_HTTP_ADDR"), "{err}");
}
