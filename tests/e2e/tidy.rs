//! Invariants of `ARCHITECTURE.md` checked as ordinary tests (rust-analyzer's "tidy"
//! style). Without services: the pure crates depend on no runtime and no client library;
//! each client library belongs to exactly one adapter crate; the api and the notifier
//! never render; every Rust file opens with a `//!` saying what it is; no source file is
//! over 800 lines; no crate's modules import each other in a circle; every `allow` says
//! why; each crate has one integration-test binary at most; only `plotq_domain::wire`
//! defines versioned shapes; every route is registered with its OpenAPI entry. Against real Redis, after a pass through the distributed
//! pipeline: every key plotq wrote has a TTL except the capped event stream and the one
//! `since` key.
//!
//! The dependency checks read `cargo metadata` (normal dependencies only: dev-dependencies
//! are test harnesses), so they see what Cargo resolves, not what a manifest says.

use crate::support::app::{Backend, Options, TestApp};
use crate::support::samples;
use plotq_domain::JobId;
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The repository root (this crate is `crates/plotq`).
fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The workspace as Cargo resolves it for this host.
struct Metadata {
    /// Package id → name.
    names: BTreeMap<String, String>,
    /// Package id → ids of its normal (not dev, not build) dependencies.
    normal_deps: BTreeMap<String, Vec<String>>,
    /// Ids of the workspace's own crates.
    members: Vec<String>,
    /// Each target of the workspace's crates (name) → its kinds (`lib`, `bin`, `test`…).
    target_kinds: Vec<(String, Vec<String>)>,
}

fn host_triple() -> String {
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".to_owned());
    let out = std::process::Command::new(&rustc)
        .arg("-vV")
        .output()
        .unwrap_or_else(|e| panic!("{rustc} -vV: {e}"));
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .find_map(|l| l.strip_prefix("host: "))
        .expect("rustc -vV names the host")
        .trim()
        .to_owned()
}

fn metadata() -> Metadata {
    // Filtered to the host, so it needs no package that the build did not download.
    let out = std::process::Command::new(env!("CARGO"))
        .args(["metadata", "--format-version", "1", "--offline"])
        .args(["--filter-platform", &host_triple()])
        .arg("--manifest-path")
        .arg(root().join("Cargo.toml"))
        .output()
        .expect("cargo metadata runs");
    assert!(
        out.status.success(),
        "cargo metadata failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let doc: Value = serde_json::from_slice(&out.stdout).expect("cargo metadata prints JSON");
    let names = doc["packages"]
        .as_array()
        .expect("packages")
        .iter()
        .map(|p| {
            (
                p["id"].as_str().unwrap().to_owned(),
                p["name"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let normal_deps = doc["resolve"]["nodes"]
        .as_array()
        .expect("resolve nodes")
        .iter()
        .map(|node| {
            let deps = node["deps"]
                .as_array()
                .expect("deps")
                .iter()
                .filter(|d| {
                    d["dep_kinds"]
                        .as_array()
                        .expect("dep_kinds")
                        .iter()
                        .any(|k| k["kind"].is_null())
                })
                .map(|d| d["pkg"].as_str().unwrap().to_owned())
                .collect();
            (node["id"].as_str().unwrap().to_owned(), deps)
        })
        .collect();
    let members = members_of(&doc)
        .iter()
        .map(|id| id.as_str().unwrap().to_owned())
        .collect();
    let target_kinds = doc["packages"]
        .as_array()
        .expect("packages")
        .iter()
        .filter(|p| members_of(&doc).contains(&p["id"]))
        .flat_map(|p| p["targets"].as_array().expect("targets").iter())
        .map(|t| {
            let kinds = t["kind"].as_array().expect("kind").iter();
            let kinds = kinds.map(|k| k.as_str().unwrap().to_owned()).collect();
            (t["name"].as_str().unwrap().to_owned(), kinds)
        })
        .collect();
    Metadata {
        names,
        normal_deps,
        members,
        target_kinds,
    }
}

fn members_of(doc: &Value) -> &Vec<Value> {
    doc["workspace_members"]
        .as_array()
        .expect("workspace_members")
}

impl Metadata {
    fn id_of(&self, crate_name: &str) -> String {
        self.members
            .iter()
            .find(|id| self.names[*id] == crate_name)
            .unwrap_or_else(|| panic!("{crate_name} is a workspace member"))
            .clone()
    }

    /// The names of every crate `crate_name` needs at run time, itself excluded.
    fn transitive_normal_deps(&self, crate_name: &str) -> BTreeSet<String> {
        let start = self.id_of(crate_name);
        let mut seen = BTreeSet::from([start.clone()]);
        let mut todo = vec![start.clone()];
        while let Some(id) = todo.pop() {
            for dep in &self.normal_deps[&id] {
                if seen.insert(dep.clone()) {
                    todo.push(dep.clone());
                }
            }
        }
        seen.remove(&start);
        seen.into_iter().map(|id| self.names[&id].clone()).collect()
    }
}

/// `plotq-domain` and `plotq-render` do no I/O and know no async runtime: nothing they
/// depend on, however indirectly, is an async runtime, a client library or an HTTP stack.
#[test]
fn domain_and_render_depend_on_no_runtime_and_no_client_library() {
    const FORBIDDEN: [&str; 6] = ["tokio", "lapin", "mongodb", "redis", "axum", "hyper"];
    let metadata = metadata();
    for pure in ["plotq-domain", "plotq-render"] {
        let deps = metadata.transitive_normal_deps(pure);
        let found: Vec<_> = deps
            .iter()
            .filter(|name| FORBIDDEN.contains(&name.as_str()))
            .collect();
        assert!(
            found.is_empty(),
            "{pure} must not depend on {found:?} (directly or indirectly)"
        );
    }
}

/// Each client library is a (normal) dependency of exactly one crate of the workspace,
/// its adapter; the services see only the ports. Dev-dependencies (test harnesses) do
/// not count.
#[test]
fn each_client_library_belongs_to_one_adapter() {
    let metadata = metadata();
    for (library, adapter) in [
        ("lapin", "plotq-amqp"),
        ("mongodb", "plotq-mongo"),
        ("redis", "plotq-redis"),
    ] {
        let users: Vec<&str> = metadata
            .members
            .iter()
            .filter(|member| {
                metadata.normal_deps[*member]
                    .iter()
                    .any(|dep| metadata.names[dep] == library)
            })
            .map(|member| metadata.names[member].as_str())
            .collect();
        assert_eq!(
            users,
            [adapter],
            "{library} must be a dependency of {adapter} only"
        );
    }
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = entry.expect("directory entry").path();
        if path.is_dir() {
            // Build output and installed packages are not ours.
            if path
                .file_name()
                .is_some_and(|n| n == "target" || n == "node_modules")
            {
                continue;
            }
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// Every Rust file opens with a `//!` comment saying what it owns.
#[test]
fn every_rust_file_opens_with_a_module_comment() {
    let mut files = Vec::new();
    for dir in ["crates", "tests"] {
        rust_files(&root().join(dir), &mut files);
    }
    assert!(
        files.len() > 20,
        "found the sources ({} files)",
        files.len()
    );
    let missing: Vec<String> = files
        .iter()
        .filter(|path| {
            let text = std::fs::read_to_string(path).expect("readable source");
            let first = text.lines().find(|line| !line.trim().is_empty());
            !first.is_some_and(|line| line.starts_with("//!"))
        })
        .map(|path| {
            path.strip_prefix(root())
                .unwrap_or(path)
                .display()
                .to_string()
        })
        .collect();
    assert!(
        missing.is_empty(),
        "these files do not open with a `//!` comment: {missing:?}"
    );
}

/// The source files of each workspace crate (`crates/<name>/src`), by crate name.
fn crate_sources() -> BTreeMap<String, Vec<PathBuf>> {
    let mut out = BTreeMap::new();
    for entry in std::fs::read_dir(root().join("crates")).expect("crates/") {
        let dir = entry.expect("directory entry").path();
        let src = dir.join("src");
        if !src.is_dir() {
            continue;
        }
        let mut files = Vec::new();
        rust_files(&src, &mut files);
        files.sort();
        let name = dir.file_name().unwrap().to_string_lossy().into_owned();
        out.insert(name, files);
    }
    out
}

fn shown(path: &Path) -> String {
    path.strip_prefix(root())
        .unwrap_or(path)
        .display()
        .to_string()
}

/// No source file of a crate is longer than 800 lines (tests may be: a test file is a
/// list of cases). Longer files split by concern.
#[test]
fn no_source_file_is_longer_than_800_lines() {
    let long: Vec<String> = crate_sources()
        .values()
        .flatten()
        .filter_map(|path| {
            let lines = std::fs::read_to_string(path)
                .expect("readable")
                .lines()
                .count();
            (lines > 800).then(|| format!("{} ({lines} lines)", shown(path)))
        })
        .collect();
    assert!(long.is_empty(), "split these by concern: {long:?}");
}

/// The top-level module (`src/<m>.rs` or `src/<m>/`) a source file belongs to, if it is
/// not the crate root.
fn top_module(src: &Path, file: &Path) -> Option<String> {
    let rel = file.strip_prefix(src).ok()?;
    let first = rel.components().next()?.as_os_str().to_string_lossy();
    let name = first.trim_end_matches(".rs").to_owned();
    (name != "lib" && name != "main").then_some(name)
}

/// The top-level modules a file refers to: `crate::<m>` anywhere, and `super::<m>` in a
/// file directly below the crate root (whose parent is the root). Comments are skipped.
fn referenced_modules(text: &str, at_top: bool) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for line in text.lines() {
        let code = line.split("//").next().unwrap_or("");
        let mut prefixes = vec!["crate::"];
        if at_top {
            prefixes.push("super::");
        }
        for prefix in prefixes {
            let mut rest = code;
            while let Some(at) = rest.find(prefix) {
                let after = &rest[at + prefix.len()..];
                // `use crate::{a, b::c}`: every name of the group.
                let names: Vec<&str> = if let Some(group) = after.strip_prefix('{') {
                    group
                        .split('}')
                        .next()
                        .unwrap_or("")
                        .split(',')
                        .map(|n| n.trim())
                        .collect()
                } else {
                    vec![after]
                };
                for name in names {
                    let module: String = name
                        .chars()
                        .take_while(|c| c.is_alphanumeric() || *c == '_')
                        .collect();
                    if !module.is_empty() && name[module.len()..].starts_with("::") {
                        out.insert(module);
                    }
                }
                rest = after;
            }
        }
    }
    out
}

/// No module of a crate imports, directly or through others, a module that imports it:
/// each crate's top-level modules form a tree of uses (shared pieces live in leaves).
#[test]
fn no_crate_has_an_import_circle() {
    let mut circles = Vec::new();
    for (krate, files) in crate_sources() {
        let src = root().join("crates").join(&krate).join("src");
        let mut uses: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for file in &files {
            let Some(from) = top_module(&src, file) else {
                continue;
            };
            let at_top = file.parent() == Some(src.as_path());
            let text = std::fs::read_to_string(file).expect("readable");
            let text = text.split("#[cfg(test)]").next().unwrap_or("");
            let to = referenced_modules(text, at_top);
            uses.entry(from.clone())
                .or_default()
                .extend(to.into_iter().filter(|m| *m != from));
        }
        // A module that reaches itself through the uses is in a circle.
        for start in uses.keys() {
            let mut seen = BTreeSet::new();
            let mut todo: Vec<&String> = uses[start].iter().collect();
            while let Some(m) = todo.pop() {
                if m == start {
                    circles.push(format!("{krate}: {start}"));
                    break;
                }
                if seen.insert(m.clone())
                    && let Some(next) = uses.get(m)
                {
                    todo.extend(next.iter());
                }
            }
        }
    }
    assert!(
        circles.is_empty(),
        "these modules use a module that uses them back: {circles:?}"
    );
}

#[test]
fn the_circle_finder_reads_uses_and_groups() {
    let text = "use crate::{a::X, b};\nuse crate::c::Y; // crate::d::Z\nlet x = super::e::f();";
    assert_eq!(
        referenced_modules(text, true),
        BTreeSet::from(["a".to_owned(), "c".to_owned(), "e".to_owned()])
    );
    assert!(!referenced_modules(text, false).contains("e"));
}

/// Every `#[allow(..)]` carries its reason in a comment on the same line or the line
/// before.
#[test]
fn every_allow_says_why() {
    let mut files = Vec::new();
    for dir in ["crates", "tests"] {
        rust_files(&root().join(dir), &mut files);
    }
    let mut bare = Vec::new();
    for file in &files {
        let text = std::fs::read_to_string(file).expect("readable");
        let lines: Vec<&str> = text.lines().collect();
        for (i, line) in lines.iter().enumerate() {
            let attribute = line.trim_start();
            if !(attribute.starts_with("#[allow(") || attribute.starts_with("#![allow(")) {
                continue;
            }
            let commented_before = i > 0 && lines[i - 1].trim_start().starts_with("//");
            if !line.contains("//") && !commented_before {
                bare.push(format!("{}:{}", shown(file), i + 1));
            }
        }
    }
    assert!(bare.is_empty(), "say why with a comment: {bare:?}");
}

/// Each crate has at most one integration-test binary (`tests/<name>/main.rs` and its
/// modules): a file directly under `tests/` would be a binary of its own, and a link of
/// its own. The end-to-end suite is the binary crate's one (`tests/e2e/`, at the root).
#[test]
fn each_crate_has_one_integration_test_binary_at_most() {
    let mut binaries = vec!["plotq: tests/e2e".to_owned()];
    let mut stray = Vec::new();
    for entry in std::fs::read_dir(root().join("crates")).expect("crates/") {
        let dir = entry.expect("directory entry").path().join("tests");
        if !dir.is_dir() {
            continue;
        }
        let mut mains = Vec::new();
        for item in std::fs::read_dir(&dir).expect("tests/") {
            let path = item.expect("entry").path();
            if path.extension().is_some_and(|e| e == "rs") {
                stray.push(shown(&path));
            } else if path.join("main.rs").is_file() {
                mains.push(shown(&path));
            }
        }
        if mains.len() > 1 {
            stray.extend(mains.iter().skip(1).cloned());
        }
        binaries.extend(mains);
    }
    assert!(
        stray.is_empty(),
        "one test binary per crate; these would be more: {stray:?}"
    );
    assert!(
        binaries.len() <= 12,
        "{} test binaries: {binaries:?}",
        binaries.len()
    );
}

/// The workspace has no benches and no examples: CI lints every workspace crate as the
/// test build compiles it (clippy's driver as their compiler, `.ci/run`), which covers
/// `cargo clippy --all-targets` only while every target is one the test build compiles.
#[test]
fn every_target_is_built_by_the_test_build() {
    let meta = metadata();
    let unbuilt: Vec<_> = meta
        .target_kinds
        .iter()
        .filter(|(_, kinds)| kinds.iter().any(|k| k == "bench" || k == "example"))
        .collect();
    assert!(unbuilt.is_empty(), "not linted by CI: {unbuilt:?}");
    assert!(meta.target_kinds.iter().any(|(name, _)| name == "e2e"));
}

/// Only `plotq_domain::wire` defines versioned shapes (a `v` version field): what is
/// stored or crosses a process boundary is defined, versioned and validated in one place.
#[test]
fn only_wire_defines_versioned_shapes() {
    let wire = root().join("crates/plotq-domain/src/wire");
    let outside: Vec<String> = crate_sources()
        .values()
        .flatten()
        .filter(|path| !path.starts_with(&wire) && !path.ends_with("wire.rs"))
        // The OpenAPI documents describe the shapes; they never decode them.
        .filter(|path| !path.ends_with("openapi.rs"))
        .filter(|path| {
            let text = std::fs::read_to_string(path).expect("readable");
            let code = text.split("#[cfg(test)]").next().unwrap_or("");
            code.lines()
                .any(|l| l.trim_start().starts_with("pub v: u32") || l.trim() == "v: u32,")
        })
        .map(|path| shown(path))
        .collect();
    assert!(
        outside.is_empty(),
        "versioned shapes outside plotq_domain::wire: {outside:?}"
    );
}

/// Every route is registered with its OpenAPI entry (`utoipa-axum`'s `routes!` into an
/// `OpenApiRouter`): a plain `Router::route` would serve a route the document does not
/// know (the contract test checks the other way: every documented route is served).
#[test]
fn every_route_is_registered_with_its_document_entry() {
    let plain: Vec<String> = crate_sources()
        .values()
        .flatten()
        .filter(|path| {
            let text = std::fs::read_to_string(path).expect("readable");
            let code = text.split("#[cfg(test)]").next().unwrap_or("");
            code.lines()
                .any(|l| !l.trim_start().starts_with("//") && l.contains(".route(\""))
        })
        .map(|path| shown(path))
        .collect();
    assert!(
        plain.is_empty(),
        "routes registered without their document entry: {plain:?}"
    );
}

/// Job ids are UUIDv7, issued at the request (`JobId::issued_at`): no production code
/// issues a random one, so a job whose state is missing can always be told lost (`410`)
/// from unknown (`404`).
#[test]
fn every_job_id_is_issued_with_its_time() {
    let random: Vec<String> = crate_sources()
        .values()
        .flatten()
        // The ports' test support (feature `contract`, never in a release build).
        .filter(|path| !path.ends_with("contract.rs") && !path.ends_with("faulty.rs"))
        .filter(|path| {
            let text = std::fs::read_to_string(path).expect("readable");
            let code = text.split("#[cfg(test)]").next().unwrap_or("");
            code.contains("JobId::new_random()")
        })
        .map(|path| shown(path))
        .collect();
    assert!(random.is_empty(), "random job ids issued in {random:?}");
}

/// The api never renders: nothing it depends on draws plots.
#[test]
fn the_api_and_the_notifier_never_render() {
    let metadata = metadata();
    for role in ["plotq-api", "plotq-notifier"] {
        assert!(
            !metadata
                .transitive_normal_deps(role)
                .contains("plotq-render"),
            "{role} must not depend on plotq-render"
        );
    }
}

const READY: Duration = Duration::from_secs(60);
const RENDER: Duration = Duration::from_secs(60);

/// Every key in the namespace with its remaining lifetime in ms (`PTTL`: -1 = none).
async fn keys_with_ttl(
    conn: &mut redis::aio::MultiplexedConnection,
    ns: &str,
) -> BTreeMap<String, i64> {
    let mut cursor: u64 = 0;
    let mut keys = BTreeSet::new();
    loop {
        let (next, batch): (u64, Vec<String>) = redis::cmd("SCAN")
            .arg(cursor)
            .arg("MATCH")
            .arg(format!("{ns}:*"))
            .arg("COUNT")
            .arg(1000)
            .query_async(conn)
            .await
            .expect("SCAN");
        keys.extend(batch);
        if next == 0 {
            break;
        }
        cursor = next;
    }
    let mut out = BTreeMap::new();
    for key in keys {
        let ttl: i64 = redis::cmd("PTTL")
            .arg(&key)
            .query_async(conn)
            .await
            .expect("PTTL");
        // -2: expired between SCAN and PTTL, which is what a TTL is for.
        if ttl != -2 {
            out.insert(key, ttl);
        }
    }
    out
}

/// Every Redis key plotq writes has a TTL, except the event stream, which is capped, and
/// the one `since` key (when this Redis's data begins):
/// after ingesting, a plot of each kind (one that fails for lack of data, one requested
/// twice) and a watched dashboard view (leases, view states, refresh claims), every
/// key in the test's namespace but `<ns>:plotq:events` expires.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_redis_key_but_the_event_stream_expires() {
    // In process: one api, one notifier and one worker against the real services, in a
    // fresh namespace; the refresher re-renders a watched view at most once a second.
    let app = TestApp::spawn_with(
        Backend::Real,
        Options {
            workers: 1,
            notifiers: 1,
            notifier: vec!["--refresh-debounce-secs", "1"],
            ..Options::default()
        },
    )
    .await;
    let ns = app.ns.clone();
    let client = app.client.clone();
    app.wait_ready(READY).await;

    let mut batch = samples("checkout", 2_000, 5 * 60 * 1000);
    batch.extend(samples("payments", 1_000, 5 * 60 * 1000));
    for (i, mut sample) in samples("checkout", 700, 5 * 60 * 1000)
        .into_iter()
        .enumerate()
    {
        sample["metric"] = json!("status_code");
        sample["value"] = json!([200, 200, 201, 404, 500, 503, 200][i % 7]);
        batch.push(sample);
    }
    let r = client
        .post(app.url("/api/v1/metrics"))
        .json(&batch)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);

    // A dashboard view: the notifier leases it, the refresher claims and renders it, and
    // its state is recorded.
    let view = "checkout/histogram/10m/light/640x360";
    let mut viewer = app.events_on(0, &format!("?views={view}")).await;

    let requests = [
        json!({"kind": "histogram", "service": "checkout"}),
        // Twice: the second shares the first's job through a single-flight claim.
        json!({"kind": "histogram", "service": "checkout"}),
        json!({"kind": "latency_timeseries", "service": "checkout"}),
        json!({"kind": "throughput", "service": "checkout"}),
        json!({"kind": "status_codes", "service": "checkout"}),
        json!({"kind": "error_rate", "service": "checkout"}),
        json!({"kind": "heatmap", "service": "checkout"}),
        json!({"kind": "cdf", "services": ["checkout", "payments"]}),
        json!({"kind": "histogram", "service": "checkout", "format": "svg"}),
        // No samples: ends failed, and its state must expire too.
        json!({"kind": "histogram", "service": "nobody"}),
    ];
    let mut ids = Vec::new();
    for request in &requests {
        let r = client
            .post(app.url("/api/v1/plots"))
            .json(request)
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success(), "{request}: {}", r.status());
        ids.push(crate::support::job_id(r).await);
    }
    for id in &ids {
        app.wait_done(JobId::parse(id).unwrap(), RENDER).await;
    }
    let rendered = viewer
        .next_matching(RENDER, |e| {
            e.event == "plot.ready" && e.data["view"] == view
        })
        .await;
    assert_eq!(rendered.data["view"], view);

    let client_redis = redis::Client::open(crate::support::REDIS_URL).expect("Redis URL");
    let mut conn = client_redis
        .get_multiplexed_async_connection()
        .await
        .expect("Redis accepts connections");
    let keys = keys_with_ttl(&mut conn, &ns).await;
    let prefix = format!("{ns}:plotq:");
    // The pass wrote what it should have, so the check below is not vacuous.
    for family in [
        "state:", "img:", "views", "series", "view:", "events", "since",
    ] {
        assert!(
            keys.keys().any(|k| k
                .strip_prefix(&prefix)
                .is_some_and(|k| k.starts_with(family))),
            "no {prefix}{family}… key was written; keys: {keys:?}"
        );
    }
    let (stream, since) = (format!("{prefix}events"), format!("{prefix}since"));
    let without_ttl: Vec<&String> = keys
        .iter()
        .filter(|(key, ttl)| **key != stream && **key != since && **ttl <= 0)
        .map(|(key, _)| key)
        .collect();
    assert!(
        without_ttl.is_empty(),
        "keys without a TTL (only {stream} and {since} may have none): {without_ttl:?}"
    );
    drop(viewer);
    // Stops every role (each must stop cleanly) and removes the namespace.
    app.stop().await;
}
