//! Extraction through the sandbox, on a real temporary directory: crafted archives whose
//! links try to carry entries out of the volume.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use super::*;

/// One tar entry of a crafted archive.
enum Item<'a> {
    File(&'a str, &'a [u8], u32),
    Symlink(&'a str, &'a str),
    HardLink(&'a str, &'a str),
}

fn archive(items: &[Item<'_>]) -> Vec<u8> {
    let mut raw = Vec::new();
    let enc = zstd::stream::write::Encoder::new(&mut raw, 1).expect("zstd");
    let mut tar = tar::Builder::new(enc);
    for item in items {
        let mut h = tar::Header::new_gnu();
        match item {
            Item::File(path, data, mode) => {
                h.set_size(data.len() as u64);
                h.set_mode(*mode);
                tar.append_data(&mut h, path, *data).expect("file");
            }
            Item::Symlink(path, target) => {
                h.set_entry_type(tar::EntryType::Symlink);
                h.set_size(0);
                tar.append_link(&mut h, path, target).expect("symlink");
            }
            Item::HardLink(path, target) => {
                h.set_entry_type(tar::EntryType::Link);
                h.set_size(0);
                tar.append_link(&mut h, path, target).expect("hard link");
            }
        }
    }
    tar.into_inner().expect("tar").finish().expect("zstd");
    raw
}

/// A volume inside a parent directory that stands for "outside".
fn volume() -> (tempfile::TempDir, std::path::PathBuf, Dir) {
    let parent = tempfile::tempdir().expect("tmp");
    let volume = parent.path().join("volume");
    std::fs::create_dir(&volume).expect("mkdir");
    let dir = Dir::open_ambient_dir(&volume, cap_std::ambient_authority()).expect("dir");
    (parent, volume, dir)
}

/// Every path under `root` whose link resolves outside it.
fn escaping_links(root: &Path) -> Vec<String> {
    let canon = std::fs::canonicalize(root).expect("canon");
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for e in std::fs::read_dir(&dir).expect("read_dir").flatten() {
            let path = e.path();
            let meta = std::fs::symlink_metadata(&path).expect("meta");
            if meta.is_symlink() {
                if let Ok(target) = std::fs::canonicalize(&path)
                    && !target.starts_with(&canon)
                {
                    out.push(path.display().to_string());
                }
            } else if meta.is_dir() {
                stack.push(path);
            }
        }
    }
    out
}

#[test]
fn links_are_judged_where_they_land() {
    assert!(link_stays_inside(Path::new("a/b"), Path::new("../c")));
    assert!(!link_stays_inside(Path::new("a/b"), Path::new("../../c")));
    assert!(!link_stays_inside(Path::new("a"), Path::new("/etc/passwd")));
    assert!(link_stays_inside(Path::new("a"), Path::new(".")));
    assert!(!link_stays_inside(Path::new("x"), Path::new("..")));
}

#[test]
fn a_symlink_planted_earlier_cannot_carry_a_later_entry_out() {
    let (parent, volume, dir) = volume();
    let outside = parent.path().join("outside-dir");
    std::fs::create_dir(&outside).expect("mkdir");
    let victim = parent.path().join("victim");
    std::fs::write(&victim, b"precious").expect("victim");
    let raw = archive(&[
        // `a` points at the volume root, so `a/x` lands at `x`, and `..` from there is
        // the volume's parent.
        Item::Symlink("a", "."),
        Item::Symlink("a/x", ".."),
        Item::File("x/pwned", b"escaped", 0o644),
        Item::Symlink("link", outside.to_str().expect("utf8")),
        Item::File("link/pwned", b"escaped", 0o644),
        Item::Symlink("up", "../.."),
        Item::File("up/pwned", b"escaped", 0o644),
        Item::HardLink("hard", victim.to_str().expect("utf8")),
        Item::HardLink("hard2", "../victim"),
        Item::File("ok.txt", b"ok", 0o644),
    ]);
    let skipped = extract(&raw[..], &dir).expect("the restore completes");
    // a/x, link, up, hard, hard2.
    assert_eq!(skipped, 5);
    assert!(
        !parent.path().join("pwned").exists(),
        "written beside the volume"
    );
    assert_eq!(std::fs::read_dir(&outside).expect("ls").count(), 0);
    assert_eq!(std::fs::read(&victim).expect("victim"), b"precious");
    assert_eq!(escaping_links(&volume), Vec::<String>::new());
    assert_eq!(std::fs::read(volume.join("ok.txt")).expect("ok"), b"ok");
    // What could be placed safely landed inside, in real directories.
    assert_eq!(
        std::fs::read(volume.join("x/pwned")).expect("x"),
        b"escaped"
    );
    assert!(
        std::fs::symlink_metadata(volume.join("link"))
            .expect("link")
            .is_dir()
    );
    assert!(std::fs::symlink_metadata(volume.join("hard")).is_err());
}

#[test]
fn a_symlink_the_server_made_is_not_followed_out() {
    let (parent, volume, dir) = volume();
    let outside = parent.path().join("outside-dir");
    std::fs::create_dir(&outside).expect("mkdir");
    std::os::unix::fs::symlink(&outside, volume.join("world")).expect("symlink");
    std::os::unix::fs::symlink(parent.path().join("victim"), volume.join("motd")).expect("link");
    let raw = archive(&[
        Item::File("world/level.dat", b"level", 0o644),
        Item::File("motd", b"replaced", 0o644),
    ]);
    assert_eq!(extract(&raw[..], &dir).expect("restore"), 1);
    assert_eq!(std::fs::read_dir(&outside).expect("ls").count(), 0);
    assert!(
        !parent.path().join("victim").exists(),
        "a file replaces the link itself"
    );
    assert_eq!(
        std::fs::read(volume.join("motd")).expect("motd"),
        b"replaced"
    );
}

#[test]
fn modes_keep_only_permission_bits_and_truncate_removes_links_not_targets() {
    let (parent, volume, dir) = volume();
    let raw = archive(&[
        Item::File("bin/run.sh", b"#!/bin/sh\n", 0o4755),
        Item::File("data.txt", b"d", 0o600),
    ]);
    assert_eq!(extract(&raw[..], &dir).expect("restore"), 0);
    let mode = |p: &str| {
        std::fs::metadata(volume.join(p))
            .expect("meta")
            .permissions()
            .mode()
            & 0o7777
    };
    assert_eq!(mode("bin/run.sh"), 0o755);
    assert_eq!(mode("data.txt"), 0o600);
    let kept = parent.path().join("kept");
    std::fs::create_dir(&kept).expect("mkdir");
    std::fs::write(kept.join("file"), b"k").expect("w");
    std::os::unix::fs::symlink(&kept, volume.join("out")).expect("symlink");
    truncate(&dir).expect("truncate");
    assert_eq!(std::fs::read_dir(&volume).expect("ls").count(), 0);
    assert!(kept.join("file").exists());
}
