//! The structure ARCHITECTURE.md describes, held against the code of every crate of the
//! workspace: every crate, folder and top-level module is on the code map; crates depend only
//! in the directions the map allows; no crate has an import cycle; in the product crate and the
//! local platform every `use crate::…` respects the layers; ports do not reach into the use
//! cases that drive them, adapter families stay apart, and pure modules stay pure.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.push(path);
            }
        }
    }
    out.sort();
    out
}

/// `iotdp/src/ingest/service.rs` → `ingest::service`; `…/ingest/mod.rs` → `ingest`.
fn module_path(src: &Path, file: &Path) -> String {
    let relative = file.strip_prefix(src).unwrap().with_extension("");
    let mut parts: Vec<String> = relative
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    if parts.last().is_some_and(|p| p == "mod" || p == "lib") {
        parts.pop();
    }
    parts.join("::")
}

/// The code of a file without its comments (so prose may mention anything).
fn code_only(text: &str) -> String {
    text.lines()
        .map(|line| match line.find("//") {
            Some(i) if !line[..i].contains('"') => &line[..i],
            _ => line,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Every `crate::a::b…` path a file names, with `use crate::{…}` groups expanded, as its
/// first two segments (`ingest::ports`).
fn crate_imports(code: &str) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    let mut add = |path: &str| {
        let segments: Vec<&str> = path
            .split("::")
            .map(str::trim)
            .take_while(|s| s.chars().all(|c| c.is_alphanumeric() || c == '_') && !s.is_empty())
            .collect();
        if !segments.is_empty() {
            found.insert(
                segments
                    .iter()
                    .take(2)
                    .copied()
                    .collect::<Vec<_>>()
                    .join("::"),
            );
        }
    };
    let mut rest = code;
    while let Some(i) = rest.find("crate::") {
        let after = &rest[i + "crate::".len()..];
        if let Some(group) = after.strip_prefix('{') {
            let end = group.find("};").unwrap_or(group.len());
            let mut depth = 0;
            let mut item = String::new();
            for c in group[..end].chars() {
                match c {
                    '{' => depth += 1,
                    '}' => depth -= 1,
                    ',' if depth == 0 => {
                        add(&item);
                        item.clear();
                        continue;
                    }
                    _ => {}
                }
                item.push(c);
            }
            add(&item);
        } else {
            add(after);
        }
        rest = after;
    }
    found
}

/// The layer of a top-level module, as ARCHITECTURE.md's table gives it.
fn layer(top: &str) -> u8 {
    match top {
        "domain" | "retry" | "macros" => 0,
        "alerting" => 1,
        "devices" | "commands" => 2,
        "ingest" | "query" => 3,
        "rollup" => 4,
        "api" => 5,
        "config" | "lambda" => 6,
        "adapters" => 7,
        "stores" => 8,
        "wiring" => 9,
        other => panic!("module `{other}` has no layer: add it to ARCHITECTURE.md and here"),
    }
}

/// Features on the same layer that must not see each other.
fn siblings(a: &str, b: &str) -> bool {
    matches!(
        (a, b),
        ("ingest", "query")
            | ("query", "ingest")
            | ("config", "lambda")
            | ("lambda", "config")
            | ("devices", "commands")
            | ("commands", "devices")
    )
}

const USE_CASES: &[&str] = &[
    "alerting::evaluator",
    "alerting::admin",
    "devices::cache",
    "devices::silence",
    "devices::presence",
    "devices::provisioning",
    "ingest::service",
    "ingest::store_writer",
    "rollup::job",
    "rollup::late",
    "rollup::reads",
    "commands::service",
    "commands::shadow_events",
];

const PURE: &[&str] = &[
    "domain",
    "alerting::rule",
    "alerting::event",
    "alerting::state_machine",
    "alerting::notification",
    "alerting::iot_events",
    "devices::record",
    "devices::admission",
    "devices::heard",
    "ingest::envelope",
    "ingest::validation",
    "ingest::batch",
    "ingest::quarantine",
    "ingest::metrics",
    "query::model",
    "query::names",
    "rollup::tier",
    "rollup::aggregate",
    "rollup::finest",
    "rollup::model",
    "rollup::compute",
    "api::access",
    "api::routes",
    "commands::shadow",
    "commands::command",
];

/// Where Lambda's types may appear: its shapes stay out of the use cases.
const LAMBDA_SHAPES: &[&str] = &["lambda", "api::http_adapter"];

fn product_modules() -> Vec<(String, PathBuf, String)> {
    crate_modules("iotdp/src")
}

/// Every module of the crate whose sources are under `src` (relative to the repository):
/// its path, its file and its code without comments.
fn crate_modules(src: &str) -> Vec<(String, PathBuf, String)> {
    let src = repo_root().join(src);
    rust_files(&src)
        .into_iter()
        .map(|file| {
            let module = module_path(&src, &file);
            let code = code_only(&std::fs::read_to_string(&file).unwrap());
            (module, file, code)
        })
        .collect()
}

/// What is wrong with `module` importing `target` (both as `a::b` paths), if anything.
fn forbidden(module: &str, target: &str) -> Option<String> {
    let top = module.split("::").next().unwrap_or_default();
    let target_top = target.split("::").next().unwrap_or_default();
    if top.is_empty() || top == target_top {
        if top == "adapters" {
            let family = module.split("::").nth(1);
            let target_family = target.split("::").nth(1);
            if family.is_some() && target_family.is_some() && family != target_family {
                return Some("an adapter family imports another adapter family".into());
            }
        }
        if module.ends_with("::ports") && USE_CASES.contains(&target) {
            return Some("a port imports the use case that drives it".into());
        }
        return None;
    }
    if layer(target_top) > layer(top) {
        return Some(format!(
            "layer {} imports layer {} (`{target_top}` is above `{top}`)",
            layer(top),
            layer(target_top)
        ));
    }
    if siblings(top, target_top) {
        return Some(format!("`{top}` and `{target_top}` are separate features"));
    }
    if module.ends_with("::ports") && USE_CASES.contains(&target) {
        return Some("a port imports a use case".into());
    }
    None
}

#[test]
fn every_import_respects_the_layers() {
    let mut violations = Vec::new();
    for (module, file, code) in product_modules() {
        for target in crate_imports(&code) {
            if let Some(why) = forbidden(&module, &target) {
                violations.push(format!("{}: `crate::{target}`: {why}", file.display()));
            }
        }
    }
    assert!(
        violations.is_empty(),
        "imports ARCHITECTURE.md's layers forbid:\n{}",
        violations.join("\n")
    );
}

#[test]
fn the_layer_rules_catch_what_they_forbid() {
    // The rules themselves, on imports the crate must never contain.
    assert!(forbidden("domain", "devices::record").is_some());
    assert!(forbidden("alerting::ports", "alerting::evaluator").is_some());
    assert!(forbidden("adapters::timestream::query", "adapters::influxdb").is_some());
    assert!(forbidden("api", "adapters::influxdb").is_some());
    assert!(forbidden("ingest::service", "wiring").is_some());
    assert!(forbidden("query::names", "ingest::ports").is_some());
    // And allow what they allow.
    assert!(forbidden("ingest::service", "devices::ports").is_none());
    assert!(forbidden("adapters::influxdb::influxql", "adapters::influxdb").is_none());
    assert!(forbidden("wiring", "adapters::timestream").is_none());
}

/// The edges of a crate's import graph: a path resolves to the longest module it names (an
/// item re-exported at `domain` resolves to `domain`), and a module re-exporting a child
/// (`pub use place::*`) depends on that child.
fn import_edges(modules: &[(String, PathBuf, String)]) -> Vec<(String, String)> {
    let names: BTreeSet<&str> = modules.iter().map(|(m, _, _)| m.as_str()).collect();
    let resolve = |path: &str| -> Option<String> {
        let segments: Vec<&str> = path.split("::").collect();
        (1..=segments.len())
            .rev()
            .map(|n| segments[..n].join("::"))
            .find(|candidate| names.contains(candidate.as_str()))
    };
    let mut edges: Vec<(String, String)> = Vec::new();
    for (module, _, code) in modules {
        let mut targets: Vec<String> = crate_imports(code).into_iter().collect();
        for line in code.lines().map(str::trim) {
            if let Some(child) = line
                .strip_prefix("pub use ")
                .and_then(|rest| rest.split("::").next())
            {
                let prefix = if module.is_empty() {
                    String::new()
                } else {
                    format!("{module}::")
                };
                targets.push(format!("{prefix}{child}"));
            }
        }
        for target in targets {
            if let Some(to) = resolve(&target)
                && to != *module
            {
                edges.push((module.clone(), to));
            }
        }
    }
    edges
}

/// The modules that sit on an import cycle: peel off every module nothing in the remaining
/// set imports, or that imports nothing in it, until none is left to peel.
fn modules_on_cycles(modules: &[(String, PathBuf, String)]) -> BTreeSet<String> {
    let edges = import_edges(modules);
    let mut nodes: BTreeSet<String> = modules.iter().map(|(m, _, _)| m.clone()).collect();
    loop {
        let off_cycle = nodes
            .iter()
            .find(|n| {
                let imports = edges.iter().any(|(f, t)| f == *n && nodes.contains(t));
                let imported = edges.iter().any(|(f, t)| t == *n && nodes.contains(f));
                !imports || !imported
            })
            .cloned();
        match off_cycle {
            Some(n) => {
                nodes.remove(&n);
            }
            None => break,
        }
    }
    nodes
}

/// Every crate's sources, as the workspace's members lay them out.
const CRATE_SOURCES: &[&str] = &[
    "iotdp/src",
    "memory/src",
    "simulator/src",
    "cost/src",
    "local/src",
    "cli/src",
    "tests/src",
    "functions/ingest/src",
    "functions/lifecycle/src",
    "functions/silence-watch/src",
    "functions/api/src",
    "functions/rollup/src",
    "functions/commands/src",
];

#[test]
fn no_crate_has_an_import_cycle() {
    let edges = import_edges(&product_modules());
    assert!(
        edges
            .iter()
            .any(|(from, to)| from == "ingest::service" && to == "devices::ports"),
        "the import reader found no edge from ingest::service to devices::ports"
    );
    let local_edges = import_edges(&crate_modules("local/src"));
    assert!(
        local_edges
            .iter()
            .any(|(from, to)| from == "platform" && to == "broker"),
        "the import reader found no edge from the local platform to its broker"
    );
    let mut cycles = Vec::new();
    for src in CRATE_SOURCES {
        let on_cycles = modules_on_cycles(&crate_modules(src));
        if !on_cycles.is_empty() {
            cycles.push(format!("{src}: {on_cycles:?}"));
        }
    }
    assert!(
        cycles.is_empty(),
        "modules on an import cycle:\n{}",
        cycles.join("\n")
    );
}

#[test]
fn the_cycle_finder_finds_a_cycle() {
    let module = |name: &str, code: &str| (name.to_owned(), PathBuf::new(), code.to_owned());
    let modules = [
        module("broker", "use crate::shadows::answer;"),
        module("shadows", "use crate::broker::Broker;"),
        module("platform", "use crate::broker::Broker;"),
    ];
    assert_eq!(
        modules_on_cycles(&modules),
        BTreeSet::from(["broker".to_owned(), "shadows".to_owned()])
    );
}

/// The layer of a module of the local platform (`iotdp-local`), as ARCHITECTURE.md gives it:
/// the stand-ins for AWS services at the bottom, the platform that starts them on top.
fn local_layer(top: &str) -> u8 {
    match top {
        "" => 9,
        "template" | "rule_sql" | "iot_policy" | "moto" | "shadow_client" | "http_server" => 0,
        "provision" | "influxd" | "shadows" | "api_server" => 1,
        "broker" | "queues" => 2,
        "event_source" | "streams" => 3,
        "platform" => 4,
        other => panic!("local module `{other}` has no layer: add it to ARCHITECTURE.md and here"),
    }
}

#[test]
fn every_import_of_the_local_platform_respects_its_layers() {
    let mut violations = Vec::new();
    for (module, file, code) in crate_modules("local/src") {
        let top = module.split("::").next().unwrap_or_default();
        for target in crate_imports(&code) {
            let target_top = target.split("::").next().unwrap_or_default();
            if top != target_top && local_layer(target_top) >= local_layer(top) {
                violations.push(format!(
                    "{}: `crate::{target}`: layer {} imports layer {}",
                    file.display(),
                    local_layer(top),
                    local_layer(target_top)
                ));
            }
        }
    }
    assert!(
        violations.is_empty(),
        "imports ARCHITECTURE.md's local layers forbid:\n{}",
        violations.join("\n")
    );
}

/// The workspace crates each crate may depend on (normal dependencies), as ARCHITECTURE.md
/// gives them: the product depends on none, the Lambda binaries on the product alone, and
/// nothing but the CLI and the test kit reaches the local platform.
fn allowed_dependencies(manifest: &str) -> &'static [&'static str] {
    match manifest {
        "iotdp/Cargo.toml" => &[],
        "memory/Cargo.toml" | "simulator/Cargo.toml" => &["iotdp"],
        "cost/Cargo.toml" => &["iotdp", "iotdp-memory"],
        "local/Cargo.toml" => &["iotdp"],
        "cli/Cargo.toml" | "tests/Cargo.toml" => &[
            "iotdp",
            "iotdp-memory",
            "iotdp-simulator",
            "iotdp-cost",
            "iotdp-local",
        ],
        functions if functions.starts_with("functions/") => &["iotdp"],
        other => panic!("{other} is not on ARCHITECTURE.md's crate list: add it there and here"),
    }
}

/// The workspace crates a manifest's `[dependencies]` name.
fn workspace_dependencies(manifest: &str) -> Vec<String> {
    let mut in_dependencies = false;
    let mut found = Vec::new();
    for line in manifest.lines().map(str::trim) {
        if line.starts_with('[') {
            in_dependencies = line == "[dependencies]";
            continue;
        }
        let name = line.split(['=', '.', ' ']).next().unwrap_or_default();
        if in_dependencies && (name == "iotdp" || name.starts_with("iotdp-")) {
            found.push(name.to_owned());
        }
    }
    found
}

#[test]
fn crates_depend_only_in_the_directions_the_map_allows() {
    let root = repo_root();
    let mut violations = Vec::new();
    for src in CRATE_SOURCES {
        let manifest = src.trim_end_matches("/src").to_owned() + "/Cargo.toml";
        let text = std::fs::read_to_string(root.join(&manifest)).unwrap();
        for dependency in workspace_dependencies(&text) {
            if !allowed_dependencies(&manifest).contains(&dependency.as_str()) {
                violations.push(format!("{manifest} depends on {dependency}"));
            }
        }
    }
    assert!(
        workspace_dependencies(
            "[dependencies]\niotdp-memory.workspace = true\n[dev-dependencies]\niotdp-local = 1"
        ) == ["iotdp-memory"],
        "the manifest reader reads [dependencies] only"
    );
    assert!(
        violations.is_empty(),
        "dependencies ARCHITECTURE.md does not allow:\n{}",
        violations.join("\n")
    );
}

#[test]
fn lambda_shapes_stay_in_the_lambda_module() {
    for (module, file, code) in product_modules() {
        let allowed = LAMBDA_SHAPES
            .iter()
            .any(|p| module == *p || module.starts_with(&format!("{p}::")));
        for word in ["aws_lambda_events", "lambda_runtime", "lambda_http"] {
            assert!(
                allowed || !code.contains(word),
                "{} names `{word}`: Lambda's shapes belong in `lambda`",
                file.display()
            );
        }
    }
}

#[test]
fn pure_modules_have_no_async_and_no_aws_types() {
    for (module, file, code) in product_modules() {
        let pure = PURE
            .iter()
            .any(|p| module == *p || module.starts_with(&format!("{p}::")));
        if !pure {
            continue;
        }
        for word in ["async ", ".await", "tokio::", "aws_"] {
            assert!(
                !code.contains(word),
                "{} is pure but its code contains `{word}`",
                file.display()
            );
        }
    }
}

/// How the code map may name a module: by its file (`iotdp/src/ingest/service.rs`), by its
/// path when it has one (`ingest::service`), or, for a crate's top-level module, by its name
/// (`broker`). Modules deeper than two levels need only their folder on the map.
fn map_names(map: &str, src: &str, module: &str) -> bool {
    let depth = module.split("::").count();
    if module.is_empty() || depth > 2 {
        return true;
    }
    let file = format!("{src}/{}", module.replace("::", "/"));
    [
        format!("`{file}.rs`"),
        format!("`{file}/`"),
        format!("`{module}`"),
    ]
    .iter()
    .any(|name| map.contains(name.as_str()))
}

#[test]
fn the_code_map_names_every_crate_module_and_folder() {
    let root = repo_root();
    let map = std::fs::read_to_string(root.join("ARCHITECTURE.md")).unwrap();
    let mut missing = Vec::new();
    for src in CRATE_SOURCES {
        if src.starts_with("functions/") {
            continue;
        }
        for (module, file, _) in crate_modules(src) {
            if file.ends_with("main.rs") || file.parent().is_some_and(|p| p.ends_with("bin")) {
                continue;
            }
            if !map_names(&map, src, &module) {
                missing.push(format!("`{module}` ({src})"));
            }
            let folder = file.parent().unwrap().strip_prefix(&root).unwrap();
            let folder = format!("`{}/`", folder.display());
            if !map.contains(&folder) && !missing.contains(&folder) {
                missing.push(folder);
            }
        }
    }
    for folder in repository_folders(&root) {
        if !map.contains(&format!("{folder}/")) {
            missing.push(format!("{folder}/"));
        }
    }
    assert!(
        missing.is_empty(),
        "ARCHITECTURE.md's code map does not name: {}",
        missing.join(", ")
    );
}

/// The repository's folders, two levels deep, without build output and installed tools.
fn repository_folders(root: &Path) -> Vec<String> {
    const NOT_OURS: &[&str] = &[
        "target",
        ".git",
        ".venv",
        ".tools",
        ".local",
        ".aws-sam",
        "node_modules",
    ];
    let mut out = Vec::new();
    let list = |dir: &Path| -> Vec<PathBuf> {
        let mut dirs: Vec<PathBuf> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.is_dir())
            .filter(|p| {
                let name = p.file_name().unwrap().to_string_lossy();
                !NOT_OURS.contains(&name.as_ref()) && (name == ".ci" || !name.starts_with('.'))
            })
            .collect();
        dirs.sort();
        dirs
    };
    for top in list(root) {
        let name = top.file_name().unwrap().to_string_lossy().into_owned();
        for inner in list(&top) {
            out.push(format!(
                "{name}/{}",
                inner.file_name().unwrap().to_string_lossy()
            ));
        }
        out.push(name);
    }
    out
}
