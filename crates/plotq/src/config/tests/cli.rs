//! The command line's shape: plain `plotq` is standalone, each role's `--help` lists
//! only its settings, every option is described, booleans take the usual spellings and
//! validation names the setting.

use super::{help, in_child_with_env, parse};
use crate::config::cli::{Cli, Command};
use clap::{CommandFactory, Parser};

#[test]
fn validation_names_the_setting() {
    let cases: [(&[&str], &str); 4] = [
        (&["worker", "--prefetch", "0"], "PLOTQ_PREFETCH"),
        (
            &["worker", "--png-ttl-secs", "60", "--state-ttl-secs", "30"],
            "PLOTQ_STATE_TTL_SECS",
        ),
        (&["api", "--ingest-burst", "10"], "PLOTQ_INGEST_BURST"),
        (&["notifier", "--log-format", "xml"], "PLOTQ_LOG_FORMAT"),
    ];
    for (args, setting) in cases {
        let err = parse(args).validate().unwrap_err().to_string();
        assert!(err.contains(setting), "{args:?}: {err}");
    }
}

/// Without a subcommand plotq runs standalone, and flags given then are standalone's.
#[test]
fn plain_plotq_is_standalone_with_its_flags() {
    let Command::Standalone(args) =
        Cli::parse_from(["plotq", "--no-demo", "--workers", "3"]).into_command()
    else {
        panic!("plain plotq runs standalone");
    };
    assert!(args.standalone.no_demo);
    assert_eq!(args.standalone.workers, 3);
    // Role options belong after the role.
    assert!(Cli::try_parse_from(["plotq", "--no-demo", "api"]).is_err());
    assert!(Cli::try_parse_from(["plotq", "worker", "--no-demo"]).is_err());
}

#[test]
fn plain_plotq_honours_the_standalone_env() {
    let env = [("PLOTQ_NO_DEMO", "1"), ("PLOTQ_STANDALONE_WORKERS", "5")];
    if !in_child_with_env(
        module_path!(),
        "plain_plotq_honours_the_standalone_env",
        &env,
    ) {
        return;
    }
    for argv in [&["plotq"][..], &["plotq", "standalone"]] {
        let cli = Cli::try_parse_from(argv).unwrap();
        let Command::Standalone(args) = cli.into_command() else {
            panic!("{argv:?} runs standalone");
        };
        assert!(
            args.standalone.no_demo,
            "{argv:?}: PLOTQ_NO_DEMO=1 is honoured"
        );
        assert_eq!(
            args.standalone.workers, 5,
            "{argv:?}: PLOTQ_STANDALONE_WORKERS"
        );
    }
}

/// Boolean settings read from the environment accept the usual spellings: the
/// value parser of `--no-demo` (the one PLOTQ_NO_DEMO goes through), given values.
#[test]
fn booleans_accept_the_usual_spellings() {
    let cli = Cli::command();
    let flag = cli
        .get_arguments()
        .find(|a| a.get_id() == "no_demo")
        .expect("the top level has --no-demo")
        .clone()
        .action(clap::ArgAction::Set);
    let parse = |value: &str| {
        clap::Command::new("t")
            .arg(flag.clone())
            .try_get_matches_from(["t", "--no-demo", value])
            .map(|m| m.get_one::<bool>("no_demo").copied())
    };
    for (value, expected) in [
        ("1", true),
        ("true", true),
        ("yes", true),
        ("on", true),
        ("0", false),
        ("false", false),
        ("no", false),
        ("off", false),
    ] {
        let parsed = parse(value).unwrap_or_else(|e| panic!("PLOTQ_NO_DEMO={value}: {e}"));
        assert_eq!(parsed, Some(expected), "{value}");
    }
    assert!(parse("maybe").is_err());
}

#[test]
fn each_role_lists_only_its_settings() {
    let worker = help("worker");
    for absent in ["PLOTQ_NO_DEMO", "PLOTQ_MAX_BODY_BYTES", "PLOTQ_EVENTS_URL"] {
        assert!(!worker.contains(absent), "worker help lists {absent}");
    }
    // A worker serves health, readiness and metrics (tokens guard `/metrics`).
    for present in [
        "PLOTQ_PREFETCH",
        "PLOTQ_AMQP_URL",
        "PLOTQ_MONGODB_URL",
        "PLOTQ_REDIS_URL",
        "PLOTQ_HTTP_ADDR",
        "PLOTQ_TOKENS",
    ] {
        assert!(worker.contains(present), "worker help lacks {present}");
    }
    let api = help("api");
    for present in ["PLOTQ_TOKENS", "PLOTQ_HTTP_ADDR", "PLOTQ_MONGODB_URL"] {
        assert!(api.contains(present), "api help lacks {present}");
    }
    assert!(
        !api.contains("PLOTQ_PREFETCH"),
        "api help lists PLOTQ_PREFETCH"
    );
    let notifier = help("notifier");
    assert!(notifier.contains("PLOTQ_HTTP_ADDR"));
    assert!(!notifier.contains("PLOTQ_MONGODB_URL"));
    let standalone = help("standalone");
    assert!(standalone.contains("PLOTQ_NO_DEMO"));
    assert!(!standalone.contains("PLOTQ_AMQP_URL"));
}

/// Every option of every (sub)command says what it is for.
#[test]
fn every_option_has_a_description() {
    fn check(cmd: &clap::Command, path: &str) {
        for arg in cmd.get_arguments() {
            let id = arg.get_id().as_str();
            if matches!(id, "help" | "version") {
                continue;
            }
            assert!(
                arg.get_help().is_some() || arg.get_long_help().is_some(),
                "{path} {id} has no description"
            );
        }
        for sub in cmd.get_subcommands() {
            check(sub, &format!("{path} {}", sub.get_name()));
        }
    }
    let mut cli = Cli::command();
    cli.build();
    check(&cli, "plotq");
}
