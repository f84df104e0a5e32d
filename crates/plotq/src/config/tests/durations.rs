//! One duration syntax for every duration setting: `<n>ms|s|m|h|d`, a bare number in the
//! unit the setting's name says, errors naming the setting and the syntax, and the
//! defaults as they always were.

use super::{in_child_with_env, parse};
use crate::config::cli::{Cli, Command};
use crate::config::values::{self, SYNTAX};
use clap::{CommandFactory, Parser};
use std::time::Duration;

const S: fn(u64) -> Duration = Duration::from_secs;
const MS: fn(u64) -> Duration = Duration::from_millis;

/// Every argument of every (sub)command, with the path of the command it belongs to.
fn all_args() -> Vec<(String, clap::Arg)> {
    fn walk(cmd: &clap::Command, path: &str, out: &mut Vec<(String, clap::Arg)>) {
        out.extend(cmd.get_arguments().map(|a| (path.to_owned(), a.clone())));
        for sub in cmd.get_subcommands() {
            walk(sub, &format!("{path} {}", sub.get_name()), out);
        }
    }
    let mut cli = Cli::command();
    cli.build();
    let mut out = Vec::new();
    walk(&cli, "plotq", &mut out);
    out
}

/// `value` given to `arg` alone, as its flag.
fn parse_one(arg: &clap::Arg, value: &str) -> Result<Duration, String> {
    let long = format!("--{}", arg.get_long().expect("duration settings are flags"));
    clap::Command::new("t")
        .arg(arg.clone())
        .try_get_matches_from(["t", long.as_str(), value])
        .map(|m| *m.get_one::<Duration>(arg.get_id().as_str()).expect("given"))
        .map_err(|e| e.to_string())
}

#[test]
fn every_duration_setting_takes_the_one_syntax() {
    let duration = clap::builder::ValueParser::new(values::secs()).type_id();
    let mut checked = 0;
    for (path, arg) in all_args() {
        let env = arg
            .get_env()
            .map(|e| e.to_string_lossy().into_owned())
            .unwrap_or_default();
        let long = arg.get_long().unwrap_or_default().to_owned();
        let named_in = |unit: &str| {
            env.ends_with(&format!("_{}", unit.to_uppercase()))
                || long.ends_with(&format!("-{unit}"))
        };
        let is_duration = arg.get_value_parser().type_id() == duration;
        // A name that says a unit is a duration setting.
        assert!(
            is_duration || !(named_in("secs") || named_in("ms")),
            "{path} --{long} says a unit but is not a duration"
        );
        // `plotq tail`'s intervals are Go durations (`500ms`, `1m30s`), as Caddy writes
        // them, through the Caddy parser its `args` module shares with the api.
        if !is_duration || path == "plotq tail" {
            continue;
        }
        checked += 1;
        // Every unit is read (a setting with bounds refuses, as bounds, what is outside).
        for (raw, expected) in [
            ("7ms", MS(7)),
            ("7s", S(7)),
            ("7m", S(420)),
            ("7h", S(25_200)),
            ("7d", S(7 * 86_400)),
        ] {
            match parse_one(&arg, raw) {
                Ok(value) => assert_eq!(value, expected, "{path} --{long} {raw}"),
                Err(e) => assert!(e.contains("must be at "), "{path} --{long} {raw}: {e}"),
            }
        }
        // A bare number: the unit the name says (retry delays are documented in seconds).
        let bare = parse_one(&arg, "700");
        if named_in("secs") || long == "retry-delays" {
            assert_eq!(bare, Ok(S(700)), "{path} --{long} 700");
        } else if named_in("ms") {
            assert_eq!(bare, Ok(MS(700)), "{path} --{long} 700");
        } else {
            let err = bare.expect_err(&format!("{path} --{long} 700 has no unit"));
            assert!(err.contains(SYNTAX), "{path} --{long}: {err}");
        }
        // Anything else: refused, naming the setting and the syntax.
        let err = parse_one(&arg, "7x").expect_err("7x is no duration");
        for says in [env.as_str(), &format!("--{long}"), SYNTAX, "\"7x\""] {
            assert!(err.contains(says), "{path} --{long}: {err} lacks {says}");
        }
    }
    // The roles' duration settings and the tools' (loadgen, bench fairness).
    assert!(checked >= 40, "only {checked} duration settings found");
}

#[test]
fn durations_in_any_unit_bare_numbers_in_the_settings_own() {
    let Command::Api(args) = parse(&[
        "api",
        "--png-ttl-secs",
        "10m",
        "--render-wait-ms",
        "10s",
        "--job-lease-secs",
        "90",
        "--breaker-cooldown-ms",
        "250",
        "--retry-delays",
        "500ms,5,1m",
    ]) else {
        panic!("api");
    };
    assert_eq!(args.cache.png_ttl, S(600));
    assert_eq!(args.api.render_wait, S(10));
    assert_eq!(args.api.job_lease, S(90));
    assert_eq!(args.rabbit.deps.breaker_cooldown, MS(250));
    assert_eq!(args.rabbit.queue.retry_delays, [MS(500), S(5), S(60)]);
}

#[test]
fn durations_from_the_environment() {
    let env = [
        ("PLOTQ_PNG_TTL_SECS", "10m"),
        ("PLOTQ_STATE_TTL_SECS", "7200"),
        ("PLOTQ_RENDER_WAIT_MS", "10s"),
        ("PLOTQ_SLOW_REQUEST_MS", "250"),
        ("PLOTQ_RAW_RETENTION", "36h"),
    ];
    if !in_child_with_env(module_path!(), "durations_from_the_environment", &env) {
        return;
    }
    let Command::Standalone(args) = parse(&[]) else {
        panic!("plain plotq runs standalone");
    };
    assert_eq!(args.cache.png_ttl, S(600));
    assert_eq!(args.cache.state.state_ttl, S(7_200));
    assert_eq!(args.api.render_wait, S(10));
    assert_eq!(args.http.slow_request, MS(250));
    assert_eq!(args.retention.raw_retention, S(36 * 3_600));
    assert!(args.validate().is_ok());
}

#[test]
fn parse_time_bounds_are_kept() {
    for argv in [
        &["api", "--raw-retention", "0s"][..],
        &["api", "--rollup-after", "500ms"],
        &["worker", "--outage-budget", "0m"],
        &["api", "--breaker-cooldown-ms", "9"],
        &["api", "--breaker-cooldown-ms", "11m"],
        &["loadgen", "--duration", "0s"],
    ] {
        let err = Cli::try_parse_from(std::iter::once("plotq").chain(argv.iter().copied()))
            .expect_err(&format!("{argv:?} is refused"))
            .to_string();
        assert!(err.contains(argv[1]), "{argv:?}: {err}");
        assert!(err.contains("must be at"), "{argv:?}: {err}");
    }
}

#[test]
fn validation_bounds_name_the_setting_in_durations() {
    for (argv, says) in [
        (
            &["api", "--ticket-ttl-secs", "9"][..],
            "PLOTQ_TICKET_TTL_SECS must be at least 10s",
        ),
        (
            &["api", "--ticket-ttl-secs", "2h"],
            "PLOTQ_TICKET_TTL_SECS must be at most 1h",
        ),
        (&["api", "--render-wait-ms", "2m"], "PLOTQ_RENDER_WAIT_MS"),
        (&["api", "--render-wait-ms", "0"], "PLOTQ_RENDER_WAIT_MS"),
        (
            &["worker", "--render-deadline-secs", "500ms"],
            "PLOTQ_RENDER_DEADLINE_SECS must be at least 1s",
        ),
        (
            &["api", "--header-timeout-secs", "0"],
            "PLOTQ_HEADER_TIMEOUT_SECS",
        ),
        (&["api", "--grant-ttl-secs", "59"], "PLOTQ_GRANT_TTL_SECS"),
    ] {
        let err = parse(argv).validate().unwrap_err().to_string();
        assert!(err.contains(says), "{argv:?}: {err}");
    }
}

/// Every duration default is what it was when each setting was a number of its unit.
#[test]
fn defaults_are_unchanged() {
    let Command::Standalone(standalone) = parse(&[]) else {
        panic!("standalone");
    };
    let Command::Api(api) = parse(&["api"]) else {
        panic!("api");
    };
    let Command::Worker(worker) = parse(&["worker"]) else {
        panic!("worker");
    };
    let defaults = [
        (standalone.http.header_timeout, S(10)),
        (standalone.http.body_timeout, S(30)),
        (standalone.http.slow_request, MS(1_000)),
        (standalone.auth.ticket_ttl, S(300)),
        (standalone.auth.tokens_reload, S(10)),
        (standalone.api.dedupe, S(10)),
        (standalone.api.render_wait, MS(10_000)),
        (standalone.api.job_lease, S(120)),
        (standalone.api.grant_ttl, S(7 * 86_400)),
        (standalone.api.grant_max_ttl, S(90 * 86_400)),
        (standalone.events.refresh_debounce, S(3)),
        (standalone.worker.render_deadline, S(30)),
        (standalone.worker.slow_query, MS(1_000)),
        (standalone.worker.slow_render, MS(2_000)),
        (standalone.worker.sources.rollup_after, S(3 * 3_600)),
        (standalone.cache.png_ttl, S(600)),
        (standalone.cache.state.state_ttl, S(3_600)),
        (standalone.retention.raw_retention, S(48 * 3_600)),
        (standalone.retention.rollup_retention, S(90 * 86_400)),
        (api.rabbit.deps.dependency_timeout, S(5)),
        (api.rabbit.deps.breaker_cooldown, MS(1_000)),
        (api.sources.rollup_after, S(3 * 3_600)),
        (api.mongo.retention.raw_retention, S(48 * 3_600)),
        (worker.outage.outage_budget, S(120)),
    ];
    for (i, (value, expected)) in defaults.into_iter().enumerate() {
        assert_eq!(value, expected, "default {i}");
    }
    assert_eq!(standalone.queue.retry_delays, [S(1), S(5), S(25)]);
}
