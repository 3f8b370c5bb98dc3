//! `cargo xtask e2e` as a user runs it, on a machine without a Docker engine: asking for
//! Keycloak fails at once, in one line, before building or running anything.

use std::process::Command;

#[test]
fn e2e_at_keycloak_without_an_engine_says_so_in_one_line_and_fails() {
    let out = Command::new(env!("CARGO_BIN_EXE_xtask"))
        .args(["e2e", "--idp", "keycloak"])
        .env("DOCKER_HOST", "unix:///nonexistent/docker.sock")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains("Docker engine"), "{stderr}");
    assert!(out.stdout.is_empty());
}

#[test]
fn e2e_refuses_an_unknown_provider() {
    let out = Command::new(env!("CARGO_BIN_EXE_xtask"))
        .args(["e2e", "--idp", "auth0"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("--idp keycloak|local"), "{stderr}");
}
