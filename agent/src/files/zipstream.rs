//! A streaming zip writer over any [`Write`] (no `Seek`): the directory download writes
//! straight into the response body, so the first byte leaves at once and no temp copy
//! of the archive is made.
//!
//! Layout (PKWARE APPNOTE.TXT 6.3): every entry is a local file header with
//! general-purpose bit 3 (sizes and CRC follow the data, in a data descriptor) and bit
//! 11 (UTF-8 names); files are deflated while their CRC-32 and sizes are computed, then
//! a ZIP64 data descriptor (8-byte sizes) follows. Directories are stored, zero-length
//! entries named `dir/`. At the end come the central directory (every entry with a
//! ZIP64 extended information extra field: sizes and local header offset), the ZIP64
//! end of central directory record and locator, and the classic end of central
//! directory record. Unix modes go in the external attributes, modification times in
//! MS-DOS format (local time).

use std::io::{self, Read, Write};
use std::time::SystemTime;

use flate2::Compression;
use flate2::write::DeflateEncoder;

/// "Version needed to extract" (and made by): 4.5, ZIP64.
const VERSION: u16 = 45;
/// "Version made by": host system 3 (Unix) in the high byte.
const MADE_BY: u16 = (3 << 8) | VERSION;
/// General-purpose flags: bit 3 (data descriptor) and bit 11 (UTF-8 names).
const FLAGS: u16 = (1 << 3) | (1 << 11);
const STORED: u16 = 0;
const DEFLATED: u16 = 8;
/// A 32-bit size or offset that lives in the ZIP64 extra field instead.
const FULL32: u32 = u32::MAX;

/// One written entry, remembered for the central directory.
struct Record {
    name: Vec<u8>,
    method: u16,
    time: u16,
    date: u16,
    crc: u32,
    compressed: u64,
    size: u64,
    offset: u64,
    external: u32,
}

/// Counts the bytes written through it (the offset of the next record).
struct Counter<W> {
    inner: W,
    pos: u64,
}

impl<W: Write> Write for Counter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.pos += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// A zip archive being written front to back into `W`.
pub struct ZipStream<W: Write> {
    out: Counter<W>,
    records: Vec<Record>,
}

impl<W: Write> ZipStream<W> {
    /// Starts an empty archive.
    pub fn new(w: W) -> Self {
        Self {
            out: Counter { inner: w, pos: 0 },
            records: Vec::new(),
        }
    }

    /// Adds a directory entry (`name` without the trailing `/`).
    ///
    /// # Errors
    /// Writing to the output failed.
    pub fn add_dir(&mut self, name: &str, mode: u32, mtime: SystemTime) -> io::Result<()> {
        let name = format!("{}/", name.trim_end_matches('/'));
        let external = ((0o040_000 | (mode & 0o7777)) << 16) | 0x10; // + MS-DOS directory bit
        let mut rec = self.local_header(name.into_bytes(), STORED, mtime, external)?;
        // Empty data, then the descriptor.
        rec.crc = 0;
        self.descriptor(rec)
    }

    /// Adds a regular file, deflating everything `r` yields. Returns its size.
    ///
    /// # Errors
    /// Reading `r` or writing to the output failed (the archive is then unusable).
    pub fn add_file(
        &mut self,
        name: &str,
        mode: u32,
        mtime: SystemTime,
        r: &mut impl Read,
    ) -> io::Result<u64> {
        let external = (0o100_000 | (mode & 0o7777)) << 16;
        let mut rec = self.local_header(name.as_bytes().to_vec(), DEFLATED, mtime, external)?;
        let start = self.out.pos;
        let mut crc = crc32fast::Hasher::new();
        let mut enc = DeflateEncoder::new(&mut self.out, Compression::default());
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = match r.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            crc.update(&buf[..n]);
            enc.write_all(&buf[..n])?;
            rec.size += n as u64;
        }
        enc.finish()?;
        rec.crc = crc.finalize();
        rec.compressed = self.out.pos - start;
        let size = rec.size;
        self.descriptor(rec)?;
        Ok(size)
    }

    /// Writes a local file header (sizes and CRC unknown: in the descriptor).
    fn local_header(
        &mut self,
        name: Vec<u8>,
        method: u16,
        mtime: SystemTime,
        external: u32,
    ) -> io::Result<Record> {
        let (time, date) = dos_time(mtime);
        let name_len = u16::try_from(name.len())
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "name too long"))?;
        let mut h = Vec::with_capacity(30 + name.len() + 20);
        h.extend_from_slice(&0x0403_4b50u32.to_le_bytes());
        for v in [VERSION, FLAGS, method, time, date] {
            h.extend_from_slice(&v.to_le_bytes());
        }
        // CRC 0; sizes 0xFFFFFFFF: the ZIP64 extra below says the descriptor has 8-byte sizes.
        for v in [0, FULL32, FULL32] {
            h.extend_from_slice(&v.to_le_bytes());
        }
        h.extend_from_slice(&name_len.to_le_bytes());
        h.extend_from_slice(&20u16.to_le_bytes());
        h.extend_from_slice(&name);
        h.extend_from_slice(&1u16.to_le_bytes()); // ZIP64 extended information
        h.extend_from_slice(&16u16.to_le_bytes());
        h.extend_from_slice(&[0u8; 16]); // original and compressed size: in the descriptor
        let offset = self.out.pos;
        self.out.write_all(&h)?;
        Ok(Record {
            name,
            method,
            time,
            date,
            crc: 0,
            compressed: 0,
            size: 0,
            offset,
            external,
        })
    }

    /// Writes the ZIP64 data descriptor of `rec` and remembers it.
    fn descriptor(&mut self, rec: Record) -> io::Result<()> {
        let mut d = Vec::with_capacity(24);
        d.extend_from_slice(&0x0807_4b50u32.to_le_bytes());
        d.extend_from_slice(&rec.crc.to_le_bytes());
        d.extend_from_slice(&rec.compressed.to_le_bytes());
        d.extend_from_slice(&rec.size.to_le_bytes());
        self.out.write_all(&d)?;
        self.records.push(rec);
        Ok(())
    }

    /// Writes the central directory and the end records; returns the output (not
    /// flushed).
    ///
    /// # Errors
    /// Writing to the output failed.
    pub fn finish(mut self) -> io::Result<W> {
        let cd_start = self.out.pos;
        for rec in &self.records {
            let mut h = Vec::with_capacity(46 + rec.name.len() + 28);
            h.extend_from_slice(&0x0201_4b50u32.to_le_bytes());
            for v in [MADE_BY, VERSION, FLAGS, rec.method, rec.time, rec.date] {
                h.extend_from_slice(&v.to_le_bytes());
            }
            for v in [rec.crc, FULL32, FULL32] {
                h.extend_from_slice(&v.to_le_bytes());
            }
            // Name length (checked in local_header), extra 28, comment 0, disk 0, internal 0.
            for v in [rec.name.len() as u16, 28, 0, 0, 0] {
                h.extend_from_slice(&v.to_le_bytes());
            }
            h.extend_from_slice(&rec.external.to_le_bytes());
            h.extend_from_slice(&FULL32.to_le_bytes());
            h.extend_from_slice(&rec.name);
            h.extend_from_slice(&1u16.to_le_bytes());
            h.extend_from_slice(&24u16.to_le_bytes());
            for v in [rec.size, rec.compressed, rec.offset] {
                h.extend_from_slice(&v.to_le_bytes());
            }
            self.out.write_all(&h)?;
        }
        let cd_size = self.out.pos - cd_start;
        let count = self.records.len() as u64;
        let eocd64 = self.out.pos;
        let mut e = Vec::with_capacity(56 + 20 + 22);
        // ZIP64 end of central directory record (size counts what follows its 12 bytes).
        e.extend_from_slice(&0x0606_4b50u32.to_le_bytes());
        e.extend_from_slice(&44u64.to_le_bytes());
        e.extend_from_slice(&MADE_BY.to_le_bytes());
        e.extend_from_slice(&VERSION.to_le_bytes());
        e.extend_from_slice(&[0u8; 8]); // this disk, disk with the central directory
        for v in [count, count, cd_size, cd_start] {
            e.extend_from_slice(&v.to_le_bytes());
        }
        // ZIP64 end of central directory locator: disk 0, record offset, 1 disk.
        e.extend_from_slice(&0x0706_4b50u32.to_le_bytes());
        e.extend_from_slice(&0u32.to_le_bytes());
        e.extend_from_slice(&eocd64.to_le_bytes());
        e.extend_from_slice(&1u32.to_le_bytes());
        // Classic end of central directory: real values when they fit, else 0xFF...
        let n16 = u16::try_from(count).unwrap_or(u16::MAX);
        e.extend_from_slice(&0x0605_4b50u32.to_le_bytes());
        for v in [0, 0, n16, n16] {
            e.extend_from_slice(&v.to_le_bytes());
        }
        for v in [cd_size, cd_start] {
            e.extend_from_slice(&u32::try_from(v).unwrap_or(FULL32).to_le_bytes());
        }
        e.extend_from_slice(&0u16.to_le_bytes()); // comment length
        self.out.write_all(&e)?;
        Ok(self.out.inner)
    }
}

/// MS-DOS (time, date) of `t` in local time, clamped to 1980..=2107.
fn dos_time(t: SystemTime) -> (u16, u16) {
    use chrono::{Datelike, Timelike};
    let dt: chrono::DateTime<chrono::Local> = t.into();
    if dt.year() < 1980 {
        return (0, (1 << 5) | 1); // 1980-01-01 00:00
    }
    let year = dt.year().min(2107) - 1980;
    let time = (dt.hour() << 11) | (dt.minute() << 5) | (dt.second() / 2);
    let date = ((year as u32) << 9) | (dt.month() << 5) | dt.day();
    (time as u16, date as u16)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;
    use std::time::{Duration, UNIX_EPOCH};

    /// A sample archive: several files, an empty one, nested directories, a non-ASCII
    /// name and some incompressible data.
    fn sample() -> (Vec<u8>, Vec<u8>) {
        let noise: Vec<u8> = (0..200_000u32)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
            .collect();
        let t = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let mut z = ZipStream::new(Vec::new());
        z.add_file("server.properties", 0o644, t, &mut &b"motd=hi\n"[..])
            .unwrap();
        z.add_file("empty.txt", 0o600, t, &mut io::empty()).unwrap();
        z.add_dir("world", 0o755, t).unwrap();
        z.add_dir("world/region", 0o750, t).unwrap();
        z.add_file("world/region/r.0.0.mca", 0o644, t, &mut &noise[..])
            .unwrap();
        z.add_file("plugins/Grüße ✓.yml", 0o755, t, &mut &b"a: 1\n"[..])
            .unwrap();
        (z.finish().unwrap(), noise)
    }

    #[test]
    fn the_zip_crate_reads_it_back() {
        let (bytes, noise) = sample();
        let mut zip = zip::ZipArchive::new(Cursor::new(bytes)).unwrap();
        assert_eq!(zip.len(), 6);
        let read = |zip: &mut zip::ZipArchive<Cursor<Vec<u8>>>, name: &str| {
            let mut f = zip.by_name(name).unwrap();
            let mut out = Vec::new();
            f.read_to_end(&mut out).unwrap();
            (out, f.unix_mode(), f.is_dir())
        };
        assert_eq!(
            read(&mut zip, "server.properties"),
            (b"motd=hi\n".to_vec(), Some(0o100_644), false)
        );
        assert_eq!(
            read(&mut zip, "empty.txt"),
            (vec![], Some(0o100_600), false)
        );
        assert!(read(&mut zip, "world/").2);
        assert_eq!(read(&mut zip, "world/region/").1, Some(0o040_750));
        assert_eq!(read(&mut zip, "world/region/r.0.0.mca").0, noise);
        assert_eq!(read(&mut zip, "plugins/Grüße ✓.yml").0, b"a: 1\n");
        let f = zip.by_name("server.properties").unwrap();
        assert_eq!(f.compression(), zip::CompressionMethod::Deflated);
        let m = f.last_modified().unwrap();
        assert!(m.year() == 2023 && m.month() == 11, "{m:?}");
    }

    #[test]
    fn zip64_records_are_present() {
        let (bytes, _) = sample();
        let find = |sig: u32| {
            bytes
                .windows(4)
                .rposition(|w| w == sig.to_le_bytes())
                .unwrap()
        };
        let eocd = find(0x0605_4b50);
        let locator = find(0x0706_4b50);
        let eocd64 = find(0x0606_4b50);
        assert_eq!(eocd, bytes.len() - 22);
        assert_eq!(locator, eocd - 20);
        assert_eq!(eocd64, locator - 56);
        let at = |i: usize| u64::from_le_bytes(bytes[i..i + 8].try_into().unwrap());
        assert_eq!(at(locator + 8), eocd64 as u64);
        assert_eq!(at(eocd64 + 24), 6, "entries");
        // Every central header carries a ZIP64 extra with size, compressed size, offset.
        let cd = usize::try_from(at(eocd64 + 48)).unwrap();
        assert_eq!(&bytes[cd..cd + 4], &0x0201_4b50u32.to_le_bytes());
        assert_eq!(&bytes[cd + 20..cd + 28], &[0xff; 8]);
        assert_eq!(&bytes[cd + 42..cd + 46], &[0xff; 4]);
        let name_len = usize::from(u16::from_le_bytes([bytes[cd + 28], bytes[cd + 29]]));
        let extra = cd + 46 + name_len;
        assert_eq!(&bytes[extra..extra + 4], &[1, 0, 24, 0]);
        assert_eq!(at(extra + 4), 8, "server.properties size");
        assert_eq!(at(extra + 20), 0, "first local header offset");
        // Local headers: bits 3 and 11 set.
        assert_eq!(&bytes[6..8], &FLAGS.to_le_bytes());
    }

    #[test]
    fn python_and_unzip_accept_it() {
        let (bytes, _) = sample();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.zip");
        std::fs::write(&path, bytes).unwrap();
        let out = std::process::Command::new("python3")
            .args([
                "-c",
                "import zipfile,sys; z=zipfile.ZipFile(sys.argv[1]); \
                 assert z.testzip() is None; print(len(z.namelist()))",
            ])
            .arg(&path)
            .output()
            .expect("python3 runs");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "6");
        if let Ok(out) = std::process::Command::new("unzip")
            .arg("-t")
            .arg(&path)
            .output()
        {
            let text = String::from_utf8_lossy(&out.stdout);
            assert!(out.status.success(), "{text}");
            assert!(text.contains("No errors detected"), "{text}");
        }
    }

    #[test]
    fn an_empty_archive_is_valid() {
        let bytes = ZipStream::new(Vec::new()).finish().unwrap();
        assert_eq!(zip::ZipArchive::new(Cursor::new(bytes)).unwrap().len(), 0);
    }

    #[test]
    fn old_times_are_clamped() {
        assert_eq!(dos_time(UNIX_EPOCH), (0, 0x21));
    }
}
