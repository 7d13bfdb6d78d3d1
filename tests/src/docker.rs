//! The local test image `shardlyn-test/busybox:latest` (built on demand by
//! `scripts/test-image`: there is no image registry here) and a `docker` runner.

use std::process::Command;

/// The test image's name.
pub const TEST_IMAGE: &str = "shardlyn-test/busybox:latest";

/// Builds the test image unless it exists at the current version, with
/// `scripts/test-image` (the one recipe, shared with `scripts/up`).
///
/// # Panics
/// When Docker or `/bin/busybox` (package busybox-static) is missing: run
/// `scripts/dev-services`.
pub fn ensure_test_image() {
    let script = crate::crate_path("../scripts/test-image");
    let out = Command::new(script)
        .output()
        .expect("scripts/test-image runs; run scripts/dev-services");
    assert!(
        out.status.success(),
        "scripts/test-image failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Runs `docker` with `args`, returning trimmed stdout.
///
/// # Panics
/// When the command fails.
pub fn docker(args: &[&str]) -> String {
    let out = Command::new("docker")
        .args(args)
        .output()
        .expect("docker runs");
    assert!(
        out.status.success(),
        "docker {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}
