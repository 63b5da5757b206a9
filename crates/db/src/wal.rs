//! The write-ahead log of commits that are not durable yet.
//!
//! The engine makes a commit durable only with an fsync. A commit made without
//! one (every commit when fsync is off, and [`crate::Db::transaction_unsynced`]
//! ones) lives in the engine's memory until the next durable commit, at most a
//! second later: a killed process would lose it, although the client was
//! answered. So the writer also appends every such commit's changes to this
//! log, with one `write` and no fsync, before anyone is answered. The
//! operating system keeps those bytes whatever happens to the process; at the
//! next start, the commits the engine lost are applied again from the log.
//!
//! Each durable commit records the sequence number of the last logged commit
//! it contains (`wal_seq` in the tree `_db_wal`), after which the log is
//! emptied. At start, records up to that number are skipped and the following
//! ones applied in order, as long as each is whole (its checksum matches) and
//! follows the previous one: after a machine crash the log's tail may be
//! missing or torn, and the database then stays at the last whole commit.
//!
//! Record: `len: u32 LE` (of what follows the checksum), `crc: u32 LE` (CRC-32C
//! of what follows it), `seq: u64 LE`, then the changes, each `name_len: u8`,
//! tree name, `key_len: u32 LE`, key, `op: u8` (0 remove, 1 insert), and for an
//! insert `value_len: u32 LE`, value.

use std::io;

use crate::disk::DiskFile;

/// The tree holding the log's bookkeeping.
pub(crate) const WAL_TREE: &str = "_db_wal";
/// Key of the last logged commit contained in the durable state.
pub(crate) const WAL_SEQ_KEY: &[u8] = b"wal_seq";

const HEADER_LEN: usize = 8;
/// A record larger than this is damaged (a batch holds at most 512
/// transactions of bounded size).
const RECORD_LEN_MAX: u32 = 1 << 30;

/// The changes of one commit, encoded as they are applied.
#[derive(Default)]
pub(crate) struct Changes(Vec<u8>);

impl Changes {
    /// Records that `key` of tree `tree` was set to `value` (`None`: removed).
    pub(crate) fn push(&mut self, tree: &str, key: &[u8], value: Option<&[u8]>) {
        let name = tree.as_bytes();
        let name_len = u8::try_from(name.len()).expect("tree names are short");
        self.0.push(name_len);
        self.0.extend_from_slice(name);
        self.push_bytes(key);
        match value {
            None => self.0.push(0),
            Some(v) => {
                self.0.push(1);
                self.push_bytes(v);
            }
        }
    }

    fn push_bytes(&mut self, b: &[u8]) {
        let len = u32::try_from(b.len()).expect("keys and values are under 4 GiB");
        self.0.extend_from_slice(&len.to_le_bytes());
        self.0.extend_from_slice(b);
    }

    /// Whether nothing was recorded.
    pub(crate) fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// One change read back from the log.
pub(crate) struct Change<'a> {
    pub(crate) tree: &'a str,
    pub(crate) key: &'a [u8],
    pub(crate) value: Option<&'a [u8]>,
}

/// Decodes the changes of one record; `None` if they are malformed.
pub(crate) fn decode_changes(mut b: &[u8]) -> Option<Vec<Change<'_>>> {
    fn take<'a>(b: &mut &'a [u8], n: usize) -> Option<&'a [u8]> {
        if b.len() < n {
            return None;
        }
        let (head, rest) = b.split_at(n);
        *b = rest;
        Some(head)
    }
    fn bytes<'a>(b: &mut &'a [u8]) -> Option<&'a [u8]> {
        let len = u32::from_le_bytes(take(b, 4)?.try_into().ok()?);
        take(b, usize::try_from(len).ok()?)
    }
    let mut out = Vec::new();
    while !b.is_empty() {
        let name_len = usize::from(take(&mut b, 1)?[0]);
        let tree = std::str::from_utf8(take(&mut b, name_len)?).ok()?;
        let key = bytes(&mut b)?;
        let value = match take(&mut b, 1)?[0] {
            0 => None,
            1 => Some(bytes(&mut b)?),
            _ => return None,
        };
        out.push(Change { tree, key, value });
    }
    Some(out)
}

/// The log file.
#[derive(Debug)]
pub(crate) struct Wal {
    file: Box<dyn DiskFile>,
    /// Where the next record goes.
    end: u64,
}

/// A whole record read back.
pub(crate) struct Record {
    pub(crate) seq: u64,
    pub(crate) changes: Vec<u8>,
}

fn crc(bytes: &[u8]) -> u32 {
    let c = crc_fast::checksum(crc_fast::CrcAlgorithm::Crc32Iscsi, bytes);
    u32::try_from(c).expect("a CRC-32 fits in 32 bits")
}

impl Wal {
    /// The log in `file`, appended to from its current end.
    pub(crate) fn new(file: Box<dyn DiskFile>) -> io::Result<Self> {
        let end = file.len()?;
        Ok(Wal { file, end })
    }

    /// Appends commit `seq`'s changes with one write (no fsync).
    pub(crate) fn append(&mut self, seq: u64, changes: &Changes) -> io::Result<()> {
        let body_len = 8 + changes.0.len();
        let len = u32::try_from(body_len)
            .ok()
            .filter(|l| *l <= RECORD_LEN_MAX)
            .ok_or_else(|| io::Error::other("commit too large for the write-ahead log"))?;
        let mut record = Vec::with_capacity(HEADER_LEN + body_len);
        record.extend_from_slice(&len.to_le_bytes());
        record.extend_from_slice(&[0; 4]);
        record.extend_from_slice(&seq.to_le_bytes());
        record.extend_from_slice(&changes.0);
        let sum = crc(&record[HEADER_LEN..]);
        record[4..HEADER_LEN].copy_from_slice(&sum.to_le_bytes());
        self.file.write_at(self.end, &record)?;
        self.end += record.len() as u64;
        Ok(())
    }

    /// Empties the log (its commits are all in the durable state).
    pub(crate) fn clear(&mut self) -> io::Result<()> {
        self.file.set_len(0)?;
        self.end = 0;
        Ok(())
    }

    /// Whether the log holds anything.
    pub(crate) fn is_empty(&self) -> bool {
        self.end == 0
    }

    /// The whole records that follow commit `after` without a gap, in order.
    /// Reading stops at the first damaged or missing one.
    pub(crate) fn records_after(&self, after: u64) -> io::Result<Vec<Record>> {
        let len = self.file.len()?;
        let mut out = Vec::new();
        let mut pos = 0u64;
        let mut expected = after + 1;
        while pos + HEADER_LEN as u64 <= len {
            let mut header = [0u8; HEADER_LEN];
            self.file.read_at(pos, &mut header)?;
            let body_len = u32::from_le_bytes(header[..4].try_into().expect("4 bytes"));
            let sum = u32::from_le_bytes(header[4..].try_into().expect("4 bytes"));
            if !(8..=RECORD_LEN_MAX).contains(&body_len)
                || pos + (HEADER_LEN as u64) + u64::from(body_len) > len
            {
                break;
            }
            let mut body = vec![0u8; body_len as usize];
            self.file.read_at(pos + HEADER_LEN as u64, &mut body)?;
            if crc(&body) != sum {
                break;
            }
            let seq = u64::from_le_bytes(body[..8].try_into().expect("8 bytes"));
            pos += HEADER_LEN as u64 + u64::from(body_len);
            if seq < expected {
                // Already in the durable state.
                continue;
            }
            if seq != expected {
                break;
            }
            body.drain(..8);
            out.push(Record { seq, changes: body });
            expected += 1;
        }
        Ok(out)
    }
}
