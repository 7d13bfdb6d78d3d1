//! The sandbox's matrix: traversal, symlinks, denylist, disk limit, place.

use super::*;

fn sandbox(deny: &[&str], limit: u64) -> (tempfile::TempDir, Sandbox) {
    let dir = tempfile::tempdir().expect("tempdir");
    let vol = dir.path().join("vol");
    std::fs::create_dir_all(&vol).expect("vol");
    let deny: Vec<String> = deny.iter().map(|s| (*s).to_owned()).collect();
    let sb = Sandbox::open(&vol, &deny, limit).expect("open");
    (dir, sb)
}

#[test]
fn traversal_and_symlinks_cannot_escape() {
    let (dir, sb) = sandbox(&[], 0);
    std::fs::write(dir.path().join("secret"), "outside").expect("secret");
    let vol = dir.path().join("vol");
    std::os::unix::fs::symlink("/etc", vol.join("etc-link")).expect("symlink");
    std::os::unix::fs::symlink("../secret", vol.join("up-link")).expect("symlink");
    std::os::unix::fs::symlink(dir.path(), vol.join("abs-link")).expect("symlink");
    for bad in [
        "../secret",
        "/../secret",
        "a/../../secret",
        "..",
        "a\\..\\secret",
        "a\0b",
    ] {
        assert!(
            matches!(sb.open_file(bad), Err(FileError::BadPath(_))),
            "{bad}"
        );
    }
    // Absolute paths are relative to the volume root.
    assert!(matches!(
        sb.open_file("/etc/passwd"),
        Err(FileError::NotFound(_))
    ));
    for link in ["etc-link/passwd", "up-link", "abs-link/secret"] {
        let r = sb.open_file(link);
        assert!(
            matches!(r, Err(FileError::Escape(_) | FileError::NotFound(_))),
            "{link}: {:?}",
            r.err()
        );
        assert!(sb.write_all(&format!("{link}/x"), b"x").is_err(), "{link}");
    }
    assert!(sb.list("etc-link", &ListOptions::default()).is_err());
    // The links themselves are listed and can be deleted (not their targets).
    let names: Vec<_> = sb
        .list("/", &ListOptions::default())
        .expect("list")
        .entries
        .into_iter()
        .map(|e| (e.name, e.kind))
        .collect();
    assert!(
        names.contains(&("etc-link".to_owned(), EntryKind::Symlink)),
        "{names:?}"
    );
    sb.remove("up-link").expect("remove link");
    assert!(dir.path().join("secret").exists());
    assert!(sb.rename("abs-link", "../moved").is_err());
    assert!(sb.copy("etc-link", "copied").is_err() || !vol.join("copied/passwd").exists());
}

#[test]
fn denylist_blocks_reads_writes_deletes_and_renames() {
    let (dir, sb) = sandbox(&["*.jar", "/config/", "!allowed.jar"], 0);
    let vol = dir.path().join("vol");
    std::fs::create_dir_all(vol.join("config")).expect("dir");
    std::fs::write(vol.join("server.jar"), "jar").expect("jar");
    std::fs::write(vol.join("allowed.jar"), "ok").expect("jar");
    std::fs::write(vol.join("config/a.yml"), "a").expect("yml");
    std::fs::create_dir_all(vol.join("plugins")).expect("dir");
    std::fs::write(vol.join("plugins/x.jar"), "x").expect("jar");
    for p in [
        "server.jar",
        "/server.jar",
        "plugins/x.jar",
        "config/a.yml",
        "./plugins/../server.jar",
    ] {
        assert!(
            matches!(sb.open_file(p), Err(FileError::Denied(_))),
            "read {p}"
        );
        assert!(
            matches!(sb.write_all(p, b"y"), Err(FileError::Denied(_))),
            "write {p}"
        );
        assert!(
            matches!(sb.remove(p), Err(FileError::Denied(_))),
            "delete {p}"
        );
        assert!(
            matches!(sb.rename(p, "renamed"), Err(FileError::Denied(_))),
            "rename {p}"
        );
    }
    assert!(matches!(
        sb.rename("allowed.jar", "plugins/new.jar"),
        Err(FileError::Denied(_))
    ));
    assert!(
        matches!(sb.remove("plugins"), Err(FileError::Denied(_))),
        "a directory holding a denied file"
    );
    sb.open_file("allowed.jar").expect("negated pattern");
    let list = sb.list("/", &ListOptions::default()).expect("list");
    let jar = list
        .entries
        .iter()
        .find(|e| e.name == "server.jar")
        .expect("listed");
    assert!(jar.denied && !jar.editable);
    assert_eq!(std::fs::read(vol.join("server.jar")).expect("jar"), b"jar");
}

#[test]
fn disk_limit_refuses_and_leaves_no_partial_file() {
    let (dir, sb) = sandbox(&[], 1024 * 1024);
    let vol = dir.path().join("vol");
    sb.write_all("a.bin", &vec![1u8; 700 * 1024]).expect("fits");
    let err = sb
        .write_all("b.bin", &vec![1u8; 400 * 1024])
        .expect_err("over");
    assert!(matches!(err, FileError::DiskLimit { .. }));
    assert!(!vol.join("b.bin").exists());
    let leftovers: Vec<_> = std::fs::read_dir(&vol)
        .expect("dir")
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert_eq!(leftovers.len(), 1, "{leftovers:?}");
    // Replacing a file counts only the difference.
    sb.write_all("a.bin", &vec![2u8; 900 * 1024])
        .expect("replace fits");
    sb.remove("a.bin").expect("remove");
    sb.write_all("b.bin", &vec![1u8; 1000 * 1024])
        .expect("room again");
    // A streamed write that fails midway leaves nothing either.
    let mut w = sb.create("c.bin").expect("create");
    assert!(w.write_chunk(&[0u8; 100 * 1024]).is_err());
    drop(w);
    assert!(!vol.join("c.bin").exists());
    assert_eq!(std::fs::read_dir(&vol).expect("dir").count(), 1);
}

#[test]
fn place_moves_an_agent_file_in_with_checks() {
    let (dir, sb) = sandbox(&["*.jar"], 1024);
    let tmp = dir.path().join("upload.part");
    std::fs::write(&tmp, b"hello").expect("tmp");
    assert_eq!(sb.place(&tmp, "/sub/../greeting.txt").expect("placed"), 5);
    assert!(!tmp.exists());
    assert_eq!(
        std::fs::read(dir.path().join("vol/greeting.txt")).expect("there"),
        b"hello"
    );
    std::fs::write(&tmp, b"x").expect("tmp");
    assert!(matches!(sb.place(&tmp, "a.jar"), Err(FileError::Denied(_))));
    assert!(matches!(
        sb.place(&tmp, "../a.txt"),
        Err(FileError::BadPath(_))
    ));
    std::fs::write(&tmp, vec![0u8; 2048]).expect("tmp");
    assert!(matches!(
        sb.place(&tmp, "big"),
        Err(FileError::DiskLimit { .. })
    ));
    assert!(!dir.path().join("vol/big").exists());
}

#[test]
fn archives_round_trip_and_refuse_zip_slip() {
    let (dir, sb) = sandbox(&[], 0);
    let vol = dir.path().join("vol");
    std::fs::create_dir_all(vol.join("d/e")).expect("dir");
    std::fs::write(vol.join("d/e/f.txt"), "deep").expect("f");
    for fmt in [
        ArchiveFormat::Zip,
        ArchiveFormat::TarGz,
        ArchiveFormat::TarZst,
    ] {
        let name = format!("a.{}", fmt.extension());
        let p = compress(&sb, "/", &["d".into()], fmt, Some(&name)).expect("compress");
        decompress(&sb, &p, &format!("/out-{}", fmt.extension())).expect("decompress");
        assert_eq!(
            std::fs::read(vol.join(format!("out-{}/d/e/f.txt", fmt.extension()))).expect("x"),
            b"deep"
        );
    }
    // A tar with ../ entries: they are skipped.
    let mut b = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_gnu();
    h.set_size(4);
    h.set_mode(0o644);
    h.set_entry_type(tar::EntryType::Regular);
    h.as_gnu_mut().expect("gnu").name[..12].copy_from_slice(b"../../escape");
    h.set_cksum();
    b.append(&h, &b"evil"[..]).expect("append");
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(&b.into_inner().expect("tar")).expect("gz");
    std::fs::write(vol.join("evil.tar.gz"), gz.finish().expect("gz")).expect("write");
    decompress(&sb, "evil.tar.gz", "/x").expect("extracts the rest");
    assert!(!dir.path().join("escape").exists());
}

#[test]
fn every_page_together_is_the_whole_sorted_directory() {
    let (dir, sb) = sandbox(&[], 0);
    let vol = dir.path().join("vol");
    // Names in scrambled order, sizes that tie, and a few directories.
    for i in 0..203u32 {
        let n = (i * 7919) % 1000;
        std::fs::write(vol.join(format!("e{n:03}")), vec![0u8; (n % 5) as usize]).expect("f");
    }
    for d in ["d2", "d1", "d3"] {
        std::fs::create_dir(vol.join(d)).expect("d");
    }
    for sort in [SortKey::Name, SortKey::Size] {
        for desc in [false, true] {
            let all = |per_page| {
                (1..)
                    .map(|page| {
                        sb.list(
                            "/",
                            &ListOptions {
                                page,
                                per_page,
                                sort,
                                desc,
                            },
                        )
                        .expect("list")
                        .entries
                    })
                    .take_while(|e| !e.is_empty())
                    .flatten()
                    .map(|e| (e.name, e.size, e.kind))
                    .collect::<Vec<_>>()
            };
            let whole = all(1000);
            assert_eq!(whole.len(), 206);
            assert!(whole[..3].iter().all(|e| e.2 == EntryKind::Directory));
            for w in whole[3..].windows(2) {
                let ord = match sort {
                    SortKey::Size => w[0].1.cmp(&w[1].1).then(w[0].0.cmp(&w[1].0)),
                    _ => w[0].0.cmp(&w[1].0),
                };
                let want = if desc {
                    std::cmp::Ordering::Greater
                } else {
                    std::cmp::Ordering::Less
                };
                assert_eq!(ord, want, "{sort:?} desc={desc}: {w:?}");
            }
            for per_page in [1, 7, 50, 205] {
                assert_eq!(
                    all(per_page),
                    whole,
                    "{sort:?} desc={desc} per_page={per_page}"
                );
            }
        }
    }
}

#[test]
fn listing_pages_sorted_dirs_first() {
    let (dir, sb) = sandbox(&[], 0);
    let vol = dir.path().join("vol");
    for i in 0..250 {
        std::fs::write(vol.join(format!("f{i:04}")), vec![0u8; i]).expect("f");
    }
    std::fs::create_dir(vol.join("zdir")).expect("d");
    let opts = ListOptions {
        page: 1,
        per_page: 100,
        sort: SortKey::Name,
        desc: false,
    };
    let l = sb.list("/", &opts).expect("list");
    assert_eq!((l.total, l.entries.len()), (251, 100));
    assert_eq!(l.entries[0].name, "zdir");
    assert_eq!(l.entries[1].name, "f0000");
    let l = sb
        .list("/", &ListOptions { page: 3, ..opts })
        .expect("list");
    assert_eq!(l.entries.len(), 51);
    let l = sb
        .list(
            "/",
            &ListOptions {
                sort: SortKey::Size,
                desc: true,
                ..opts
            },
        )
        .expect("list");
    assert_eq!(l.entries[1].name, "f0249");
    let found = search(&sb, "/", "f01?9", 10).expect("search");
    assert_eq!(found.len(), 10);
}

#[test]
fn a_big_directory_sorts_by_size_with_stats_spread_over_threads() {
    let (dir, sb) = sandbox(&[], 0);
    let vol = dir.path().join("vol");
    // More than two `STAT_CHUNK`s, so the keys are filled by several threads.
    let n = 9_000u32;
    let mut expected: Vec<(u64, String)> = Vec::new();
    for i in 0..n {
        let name = format!("f{:05}", (i * 7919) % n);
        let size = u64::from((i * 31) % 97);
        std::fs::write(
            vol.join(&name),
            vec![1u8; usize::try_from(size).expect("small")],
        )
        .expect("f");
        expected.push((size, name));
    }
    expected.sort();
    expected.reverse();
    let listed: Vec<(u64, String)> = (1..=9)
        .flat_map(|page| {
            sb.list(
                "/",
                &ListOptions {
                    page,
                    per_page: 1000,
                    sort: SortKey::Size,
                    desc: true,
                },
            )
            .expect("list")
            .entries
        })
        .map(|e| (e.size, e.name))
        .collect();
    assert_eq!(listed.len(), expected.len());
    assert!(
        listed == expected,
        "size order differs from the expected one"
    );
}
