//! The point of this example, checked: it hosts `bff-domain` without `bff-server`'s HTTP surface
//! (`bff-http`, poem) or `bff-server` itself, and every one of its modules says what it is for.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::process::Command;

fn manifest_dir() -> PathBuf {
    std::env::var_os("CARGO_MANIFEST_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")))
}

/// Normal (non-dev) dependencies of this package, transitively, by name.
fn dependency_names() -> Vec<String> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let output = Command::new(cargo)
        .current_dir(manifest_dir())
        .args([
            "tree",
            "--offline",
            "-p",
            "bff-example-axum",
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

#[test]
fn hosts_the_domain_without_the_poem_surface() {
    let names = dependency_names();
    for expected in ["bff-domain", "bff-oidc", "bff-store-memory", "axum"] {
        assert!(
            names.iter().any(|n| n == expected),
            "cargo tree output looks wrong, no {expected}: {names:?}"
        );
    }
    for forbidden in ["bff-http", "bff-server", "poem", "poem-openapi"] {
        assert!(
            !names.iter().any(|n| n == forbidden),
            "the axum host pulls in {forbidden}"
        );
    }
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
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
    for dir in ["src", "tests"] {
        rust_files(&manifest_dir().join(dir), &mut files);
    }
    assert!(files.len() >= 9, "found only {files:?}");
    let missing: Vec<_> = files
        .iter()
        .filter(|f| {
            !std::fs::read_to_string(f)
                .unwrap()
                .trim_start()
                .starts_with("//!")
        })
        .collect();
    assert!(missing.is_empty(), "files without //! docs: {missing:?}");
}
