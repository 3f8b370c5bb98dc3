//! Tidy checks, run as ordinary tests: module docs everywhere, `bff-domain` stays pure, the HTTP
//! and OIDC adapters never depend on a store adapter, and the test provider stays a
//! dev-dependency.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The repository root, from the run-time `CARGO_MANIFEST_DIR` (see `xtask`'s `root`).
fn root() -> PathBuf {
    std::env::var_os("CARGO_MANIFEST_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")))
        .parent()
        .unwrap()
        .to_path_buf()
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

#[test]
fn every_module_starts_with_module_docs() {
    let mut files = Vec::new();
    for dir in ["crates", "xtask/src", "examples"] {
        rust_files(&root().join(dir), &mut files);
    }
    let missing: Vec<_> = files
        .iter()
        .filter(|f| !f.components().any(|c| c.as_os_str() == "target"))
        .filter(|f| {
            let text = fs::read_to_string(f).unwrap();
            !text.trim_start().starts_with("//!")
        })
        .map(|f| f.strip_prefix(root()).unwrap().display().to_string())
        .collect();
    assert!(files.len() > 10, "found only {} files", files.len());
    assert!(
        missing.is_empty(),
        "files without //! module docs: {missing:#?}"
    );
}

/// Normal (non-dev) dependencies of a package, transitively, as `cargo tree` prints them.
fn dependency_tree(package: &str) -> Vec<String> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let output = Command::new(cargo)
        .current_dir(root())
        .args([
            "tree",
            "--offline",
            "-p",
            package,
            "-e",
            "normal",
            "--prefix",
            "none",
        ])
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "cargo tree failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let mut names: Vec<String> = String::from_utf8(output.stdout)
        .unwrap()
        .lines()
        .filter_map(|l| l.split_whitespace().next().map(str::to_owned))
        .collect();
    names.sort();
    names.dedup();
    names
}

/// Direct `[dependencies]` of a crate's manifest.
fn direct_dependencies(krate: &str) -> Vec<String> {
    let manifest =
        fs::read_to_string(root().join("crates").join(krate).join("Cargo.toml")).unwrap();
    let mut in_deps = false;
    let mut deps = Vec::new();
    for line in manifest.lines() {
        let line = line.trim();
        if line.starts_with('[') {
            in_deps = line == "[dependencies]";
            continue;
        }
        if in_deps && !line.is_empty() && !line.starts_with('#') {
            let name = line.split(['=', '.', ' ']).next().unwrap().trim();
            deps.push(name.to_owned());
        }
    }
    deps
}

const FORBIDDEN_IN_DOMAIN: &[&str] = &[
    "tokio",
    "sqlx",
    "sqlx-core",
    "redis",
    "deadpool",
    "deadpool-redis",
    "poem",
    "poem-openapi",
    "reqwest",
    "hyper",
    "oauth2",
    "jsonwebtoken",
    "testcontainers",
    "ring",
];

#[test]
fn domain_dependencies_stay_inside_the_allowlist() {
    const ALLOWED: &[&str] = &[
        "async-trait",
        "thiserror",
        "serde",
        "serde_json",
        "sha2",
        "base64",
        "url",
        "futures-executor",
        "futures-util",
    ];
    for dep in direct_dependencies("bff-domain") {
        assert!(
            ALLOWED.contains(&dep.as_str()),
            "bff-domain gained dependency {dep}: keep it pure"
        );
    }
    let tree = dependency_tree("bff-domain");
    assert!(
        tree.iter().any(|d| d == "serde"),
        "cargo tree output looks wrong: {tree:?}"
    );
    for bad in FORBIDDEN_IN_DOMAIN {
        assert!(!tree.iter().any(|d| d == bad), "bff-domain pulls in {bad}");
    }
}

#[test]
fn the_test_provider_is_only_ever_a_dev_dependency() {
    let crates = fs::read_dir(root().join("crates")).unwrap();
    for entry in crates {
        let krate = entry.unwrap().file_name().to_string_lossy().into_owned();
        assert!(
            !direct_dependencies(&krate).contains(&"bff-test-op".to_owned()),
            "{krate} depends on bff-test-op outside [dev-dependencies]"
        );
    }
    // It must not depend on the code it tests: a dev-dependency cycle would compile that
    // crate twice, with two incompatible copies of its types.
    let own = direct_dependencies("bff-test-op");
    assert!(
        own.contains(&"poem".to_owned()),
        "manifest parse looks wrong: {own:?}"
    );
    let ours: Vec<_> = own.iter().filter(|d| d.starts_with("bff-")).collect();
    assert!(ours.is_empty(), "bff-test-op depends on {ours:?}");
}

#[test]
fn http_and_oidc_adapters_never_depend_on_a_store() {
    for krate in ["bff-http", "bff-oidc"] {
        let tree = dependency_tree(krate);
        assert!(
            tree.iter().any(|d| d == "bff-domain"),
            "{krate}: cargo tree output looks wrong"
        );
        let stores: Vec<_> = tree.iter().filter(|d| d.starts_with("bff-store")).collect();
        assert!(
            stores.is_empty(),
            "{krate} depends on store adapters {stores:?}"
        );
    }
}

/// The public API of `bff-domain`, one line per `pub` item, in file order: the crate root's
/// re-exports and every `pub` declaration (items, fields, variants are covered by their enum's
/// line). The crate's modules are private and `unreachable_pub` is denied, so every `pub` item
/// found here is reachable from outside. The testkit (test support) and test files are left out.
fn domain_public_api() -> String {
    let src = root().join("crates/bff-domain/src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    files.sort();
    let mut out = String::from(
        "# bff-domain public API: checked by xtask/tests/tidy.rs; `cargo xtask codegen` rewrites it.\n",
    );
    for file in files {
        let rel = file.strip_prefix(&src).unwrap().display().to_string();
        if rel.starts_with("testkit") || rel.ends_with("tests.rs") {
            continue;
        }
        let text = fs::read_to_string(&file).unwrap();
        let mut items = Vec::new();
        let mut pending: Option<String> = None;
        let mut after_cfg_test = false;
        let mut in_test_module = false;
        for line in text.lines() {
            let trimmed = line.trim();
            if in_test_module {
                // An inline `#[cfg(test)] mod tests { .. }` runs to the end of the file.
                continue;
            }
            if trimmed == "#[cfg(test)]" {
                after_cfg_test = true;
                continue;
            }
            if std::mem::take(&mut after_cfg_test) {
                // `#[cfg(test)] mod tests;` names a file (left out above); an inline module
                // starts test code.
                in_test_module = !trimmed.ends_with(';');
                continue;
            }
            if let Some(mut acc) = pending.take() {
                acc.push(' ');
                acc.push_str(trimmed);
                if ends_declaration(&acc, trimmed) {
                    items.push(clean_declaration(&acc));
                } else {
                    pending = Some(acc);
                }
                continue;
            }
            if trimmed.starts_with("pub ") {
                let indent = " ".repeat(line.len() - line.trim_start().len());
                let acc = format!("{indent}{trimmed}");
                if ends_declaration(&acc, trimmed) {
                    items.push(clean_declaration(&acc));
                } else {
                    pending = Some(acc);
                }
            }
        }
        if !items.is_empty() {
            out.push_str(&format!("\n## {rel}\n"));
            for item in items {
                out.push_str(&item);
                out.push('\n');
            }
        }
    }
    out
}

/// Whether `last_line` ends the declaration collected in `so_far`: a function signature runs to
/// its body or `;`; a field or anything else ends at `,`, `;` or a brace.
fn ends_declaration(so_far: &str, last_line: &str) -> bool {
    if so_far.contains(" fn ") || so_far.trim_start().starts_with("pub fn") {
        return last_line.ends_with('{') || last_line.ends_with(';');
    }
    last_line.ends_with('{')
        || last_line.ends_with(';')
        || last_line.ends_with(',')
        || last_line.ends_with('}')
}

fn clean_declaration(text: &str) -> String {
    let text = text.trim_end_matches(['{', ' ']).trim_end();
    text.replace("( ", "(")
        .replace(" )", ")")
        .replace(", )", ")")
        .replace(",)", ")")
}

#[test]
fn domain_public_api_listing_is_current() {
    let path = root().join("crates/bff-domain/public-api.txt");
    let current = domain_public_api();
    if std::env::var_os("UPDATE_PUBLIC_API").is_some() {
        fs::write(&path, &current).unwrap();
        return;
    }
    let committed = fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == current,
        "bff-domain's public API changed: run `cargo xtask codegen` and review the diff of \
         crates/bff-domain/public-api.txt.\n--- committed\n+++ current\n{}",
        first_difference(&committed, &current)
    );
}

fn first_difference(a: &str, b: &str) -> String {
    let (a, b): (Vec<_>, Vec<_>) = (a.lines().collect(), b.lines().collect());
    let at = a
        .iter()
        .zip(&b)
        .position(|(x, y)| x != y)
        .unwrap_or(a.len().min(b.len()));
    format!(
        "line {}: -{:?} +{:?}",
        at + 1,
        a.get(at).copied().unwrap_or(""),
        b.get(at).copied().unwrap_or("")
    )
}

/// The second host proves `bff-domain` stands without `bff-server`: it must not pull in the
/// poem surface or the server.
#[test]
fn the_axum_host_needs_neither_bff_http_nor_bff_server() {
    let tree = dependency_tree("bff-example-axum");
    for expected in ["bff-domain", "bff-oidc", "bff-store-memory", "axum"] {
        assert!(
            tree.iter().any(|d| d == expected),
            "cargo tree output looks wrong, no {expected}: {tree:?}"
        );
    }
    for forbidden in ["bff-http", "bff-server", "poem", "poem-openapi"] {
        assert!(
            !tree.iter().any(|d| d == forbidden),
            "the axum host pulls in {forbidden}"
        );
    }
}
