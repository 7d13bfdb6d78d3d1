//! Fetches the browser libraries the web pages embed (xterm.js and its fit addon, see
//! `web/package.json`) from the npm registry at build time, at the exact versions and
//! integrity hashes of `web/package-lock.json`: `npm ci` in `$OUT_DIR/web`, so nothing
//! is written under the source tree and no copy of them lives in the repository.
//! `panel/src/web/assets.rs` embeds the files from there.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The manifest and lock, relative to this crate.
const FILES: [&str; 2] = ["package.json", "package-lock.json"];
/// A file the install must have produced.
const PROBE: &str = "node_modules/@xterm/xterm/lib/xterm.js";

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=NPM");
    // Read when the script runs, not when it was compiled: a target directory shared by
    // several checkouts (`.ci/run` keeps one) reuses this script's binary for all of them.
    let manifest_dir =
        std::env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR");
    let source = Path::new(&manifest_dir).join("../web");
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR")).join("web");
    std::fs::create_dir_all(&out).unwrap_or_else(|e| panic!("creating {}: {e}", out.display()));
    let mut changed = false;
    for name in FILES {
        let from = source.join(name);
        println!("cargo:rerun-if-changed={}", from.display());
        let bytes =
            std::fs::read(&from).unwrap_or_else(|e| panic!("reading {}: {e}", from.display()));
        let to = out.join(name);
        if std::fs::read(&to).ok().as_deref() != Some(bytes.as_slice()) {
            std::fs::write(&to, &bytes).unwrap_or_else(|e| panic!("writing {}: {e}", to.display()));
            changed = true;
        }
    }
    if changed || !out.join(PROBE).exists() {
        install(&out);
    }
    assert!(
        out.join(PROBE).exists(),
        "npm ci in {} did not install {PROBE}",
        out.display()
    );
}

/// `npm ci` in `dir`: installs exactly the lock's packages, checking their integrity
/// hashes, without running any package script.
fn install(dir: &Path) {
    let npm = std::env::var_os("NPM").unwrap_or_else(|| "npm".into());
    let output = Command::new(&npm)
        .args([
            "ci",
            "--no-audit",
            "--no-fund",
            "--ignore-scripts",
            "--loglevel=error",
        ])
        .env("npm_config_update_notifier", "false")
        .current_dir(dir)
        .output();
    let output = match output {
        Ok(output) => output,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => panic!(
            "building shardlyn-panel needs npm to fetch xterm.js (web/package-lock.json): \
             install it (Debian: apt-get install npm; scripts/dev-services does), or point \
             NPM at it"
        ),
        Err(e) => panic!("running {}: {e}", npm.to_string_lossy()),
    };
    assert!(
        output.status.success(),
        "npm ci in {} failed ({}):\n{}\n{}",
        dir.display(),
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}
