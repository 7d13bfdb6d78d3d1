//! The local test image `shardlyn-test/busybox:latest`: `FROM scratch` plus Debian's
//! static busybox and a yolks-like `/entrypoint.sh`, built on demand (there is no image
//! registry here).

use std::process::Command;

/// The test image's name.
pub const TEST_IMAGE: &str = "shardlyn-test/busybox:latest";

/// Version label of the test image; bump it when the image changes so older images on
/// dev machines are rebuilt.
const IMAGE_VERSION: &str = "2";
const VERSION_LABEL: &str = "io.shardlyn.test-image-version";

/// A yolks-like entrypoint: `cd /home/container`, expand `{{VAR}}` in `$STARTUP` to
/// `${VAR}`, print it after `:/home/container$ ` and `eval` it. With arguments it runs
/// them instead (`docker run IMAGE sh -c ...`).
const ENTRYPOINT: &str = r#"#!/bin/sh
if [ "$#" -gt 0 ]; then exec "$@"; fi
cd /home/container || exit 1
MODIFIED_STARTUP=$(printf '%s' "${STARTUP}" | sed -e 's/{{/${/g' -e 's/}}/}/g')
echo ":/home/container$ ${MODIFIED_STARTUP}"
eval "${MODIFIED_STARTUP}"
"#;

/// Builds the test image unless it exists at the current version.
///
/// # Panics
/// When Docker or `/bin/busybox` (package busybox-static) is missing: run
/// `scripts/dev-services`.
pub fn ensure_test_image() {
    let format = format!("{{{{index .Config.Labels \"{VERSION_LABEL}\"}}}}");
    let present = Command::new("docker")
        .args(["image", "inspect", "-f", &format, TEST_IMAGE])
        .output()
        .is_ok_and(|o| {
            o.status.success() && String::from_utf8_lossy(&o.stdout).trim() == IMAGE_VERSION
        });
    if present {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::copy("/bin/busybox", dir.path().join("busybox"))
        .expect("/bin/busybox (busybox-static); run scripts/dev-services");
    std::fs::write(dir.path().join("entrypoint.sh"), ENTRYPOINT).expect("entrypoint");
    std::fs::write(
        dir.path().join("Dockerfile"),
        format!(
            "FROM scratch\nCOPY busybox /bin/busybox\nRUN [\"/bin/busybox\", \"--install\", \"-s\", \"/bin\"]\nCOPY entrypoint.sh /entrypoint.sh\nENV PATH=/bin\nLABEL {VERSION_LABEL}=\"{IMAGE_VERSION}\"\nENTRYPOINT [\"/bin/sh\", \"/entrypoint.sh\"]\nCMD []\n"
        ),
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
