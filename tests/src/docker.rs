//! The local test image `shardlyn-test/busybox:latest`: `FROM scratch` plus Debian's
//! static busybox, built on demand (there is no image registry here).

use std::process::Command;

/// The test image's name.
pub const TEST_IMAGE: &str = "shardlyn-test/busybox:latest";

/// Builds the test image unless it exists.
///
/// # Panics
/// When Docker or `/bin/busybox` (package busybox-static) is missing: run
/// `scripts/dev-services`.
pub fn ensure_test_image() {
    let present = Command::new("docker")
        .args(["image", "inspect", TEST_IMAGE])
        .output()
        .is_ok_and(|o| o.status.success());
    if present {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::copy("/bin/busybox", dir.path().join("busybox"))
        .expect("/bin/busybox (busybox-static); run scripts/dev-services");
    std::fs::write(
        dir.path().join("Dockerfile"),
        "FROM scratch\nCOPY busybox /bin/busybox\nRUN [\"/bin/busybox\", \"--install\", \"-s\", \"/bin\"]\nENV PATH=/bin\nCMD [\"sh\"]\n",
    )
    .expect("Dockerfile");
    let out = Command::new("docker")
        .args(["build", "-q", "-t", TEST_IMAGE])
        .arg(dir.path())
        .output()
        .expect("docker build runs; run scripts/dev-services");
    assert!(
        out.status.success(),
        "docker build failed: {}",
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
