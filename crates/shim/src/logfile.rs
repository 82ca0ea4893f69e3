//! The json-file log with Docker's rotation: when a write would take the file past
//! `max-size`, `LOG.1 … LOG.(N-2)` move up one, `LOG` becomes `LOG.1` and a new `LOG` starts
//! (`max-file` = N files in all; with one file it is truncated instead).

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

pub struct RotatingLog {
    path: PathBuf,
    file: File,
    size: u64,
    /// 0: no limit.
    max_size: u64,
    max_files: u32,
}

fn open(path: &Path) -> io::Result<File> {
    OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o640)
        .open(path)
}

fn numbered(path: &Path, n: u32) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(format!(".{n}"));
    PathBuf::from(s)
}

impl RotatingLog {
    pub fn open(path: &Path, max_size: u64, max_files: u32) -> io::Result<Self> {
        let file = open(path)?;
        let size = file.metadata()?.len();
        Ok(RotatingLog {
            path: path.to_path_buf(),
            file,
            size,
            max_size,
            max_files: max_files.max(1),
        })
    }

    /// Writes whole records (lines); rotates between records so that no file grows past
    /// `max-size` unless a single record is bigger.
    pub fn write_records(&mut self, data: &[u8]) -> io::Result<()> {
        if self.max_size == 0 {
            self.file.write_all(data)?;
            self.size += data.len() as u64;
            return Ok(());
        }
        let mut start = 0;
        let mut end = 0;
        while end < data.len() {
            let next = data[end..]
                .iter()
                .position(|b| *b == b'\n')
                .map(|i| end + i + 1)
                .unwrap_or(data.len());
            let pending = (end - start) as u64;
            let rec = (next - end) as u64;
            if self.size + pending + rec > self.max_size && self.size + pending > 0 {
                self.file.write_all(&data[start..end])?;
                self.size += pending;
                start = end;
                if self.size > 0 {
                    self.rotate()?;
                }
            }
            end = next;
        }
        self.file.write_all(&data[start..])?;
        self.size += (data.len() - start) as u64;
        Ok(())
    }

    fn rotate(&mut self) -> io::Result<()> {
        if self.max_files <= 1 {
            self.file.set_len(0)?;
            self.size = 0;
            return Ok(());
        }
        let last = self.max_files - 1;
        let _ = fs::remove_file(numbered(&self.path, last));
        for n in (1..last).rev() {
            let from = numbered(&self.path, n);
            if from.exists() {
                fs::rename(&from, numbered(&self.path, n + 1))?;
            }
        }
        fs::rename(&self.path, numbered(&self.path, 1))?;
        self.file = open(&self.path)?;
        self.size = 0;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rotates_into_numbered_files_and_keeps_n() {
        let d = std::env::temp_dir().join(format!("berth-logfile-{}", std::process::id()));
        let _ = fs::remove_dir_all(&d);
        fs::create_dir_all(&d).unwrap();
        let p = d.join("c-json.log");
        let mut l = RotatingLog::open(&p, 10, 3).unwrap();
        for i in 0..5 {
            l.write_records(format!("record-{i}\n").as_bytes()).unwrap();
        }
        assert_eq!(fs::read_to_string(&p).unwrap(), "record-4\n");
        assert_eq!(fs::read_to_string(numbered(&p, 1)).unwrap(), "record-3\n");
        assert_eq!(fs::read_to_string(numbered(&p, 2)).unwrap(), "record-2\n");
        assert!(!numbered(&p, 3).exists());
        let mut one = RotatingLog::open(&d.join("one.log"), 10, 1).unwrap();
        one.write_records(b"aaaaaaaa\n").unwrap();
        one.write_records(b"bbbbbbbb\n").unwrap();
        assert_eq!(fs::read_to_string(d.join("one.log")).unwrap(), "bbbbbbbb\n");
        // Many records in one write still rotate between records.
        let p2 = d.join("batch.log");
        let mut b = RotatingLog::open(&p2, 20, 2).unwrap();
        b.write_records(b"0123456789\nabcdefghij\nABCDEFGHIJ\n")
            .unwrap();
        assert_eq!(fs::read_to_string(&p2).unwrap(), "ABCDEFGHIJ\n");
        assert_eq!(
            fs::read_to_string(numbered(&p2, 1)).unwrap(),
            "abcdefghij\n"
        );
        assert!(!numbered(&p2, 2).exists());
        fs::remove_dir_all(&d).unwrap();
    }
}
