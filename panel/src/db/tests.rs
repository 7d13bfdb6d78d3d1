//! A check over the panel's own source (read from disk at test time): rows are mapped by
//! `#[derive(sqlx::FromRow)]` and the decoders of [`super::row`], never by hand. A store
//! that goes back to `row.try_get("col")` or decodes a flag as `... != 0` fails this test
//! with the file and line. Only `panel/src/db/` may read columns by hand.

use std::path::{Path, PathBuf};

/// The panel's `src` directory.
fn src_dir() -> PathBuf {
    std::env::var_os("CARGO_MANIFEST_DIR")
        .map_or_else(|| env!("CARGO_MANIFEST_DIR").into(), PathBuf::from)
        .join("src")
}

/// Every `.rs` file under `dir`, sorted.
fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let entries = std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    for entry in entries {
        let path = entry.expect("dir entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
    out.sort();
}

/// The hand-written column reads in `source`, as `file:line: text`.
fn offences(file: &str, source: &str) -> Vec<String> {
    source
        .lines()
        .enumerate()
        .filter(|(_, line)| {
            let code = line.split("//").next().unwrap_or_default();
            let reads = code.contains(".try_get(") || code.contains(".try_get::<");
            let flag = code.contains("!= 0")
                && ["row", "try_get", "fetch", "r."]
                    .iter()
                    .any(|w| code.contains(w));
            reads || flag
        })
        .map(|(i, line)| format!("{file}:{}: {}", i + 1, line.trim()))
        .collect()
}

#[test]
fn rows_are_mapped_by_derive_outside_the_db_module() {
    let src = src_dir();
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    assert!(
        files.len() > 50,
        "found only {} files in {}",
        files.len(),
        src.display()
    );
    let db = src.join("db");
    let found: Vec<String> = files
        .iter()
        .filter(|f| !f.starts_with(&db))
        .flat_map(|f| {
            let text = std::fs::read_to_string(f).expect("read source");
            let name = f.strip_prefix(&src).unwrap_or(f).display().to_string();
            offences(&name, &text)
        })
        .collect();
    assert!(
        found.is_empty(),
        "{} columns read by hand; derive sqlx::FromRow (see db/row.rs) instead:\n{}",
        found.len(),
        found.join("\n")
    );
}

#[test]
fn the_check_sees_hand_written_reads() {
    let store = r#"
        id: row.try_get("id")?,
        locked: row.try_get::<i64, _>("locked")? != 0,
        let n: i64 = r.try_get::<i64, _>("n")?;
        let ok = map.len() != 0;
        // row.try_get("in a comment") is fine
    "#;
    assert_eq!(
        offences("x.rs", store),
        [
            "x.rs:2: id: row.try_get(\"id\")?,",
            "x.rs:3: locked: row.try_get::<i64, _>(\"locked\")? != 0,",
            "x.rs:4: let n: i64 = r.try_get::<i64, _>(\"n\")?;",
        ]
    );
}
