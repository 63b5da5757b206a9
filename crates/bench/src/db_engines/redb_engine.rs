//! redb under the db-engines workloads: one write transaction per
//! read-modify-write, one read transaction per scan.

use std::path::Path;

use redb::{ReadableDatabase, ReadableTable, TableDefinition};

use super::{bump, initial_value, key, Engine, CACHE_BYTES};

const TABLE: TableDefinition<&[u8], &[u8]> = TableDefinition::new("objects");

/// A redb file preloaded with the benchmark records.
pub(super) struct RedbEngine {
    db: redb::Database,
    durability: redb::Durability,
}

impl RedbEngine {
    /// Creates `dir/meta.redb` and loads `keys` records in one durable commit.
    pub(super) fn open(dir: &Path, keys: u64, fsync: bool) -> anyhow::Result<Self> {
        let db = redb::Database::builder()
            .set_cache_size(CACHE_BYTES)
            .create(dir.join("meta.redb"))?;
        let mut wtx = db.begin_write()?;
        wtx.set_durability(redb::Durability::Immediate)?;
        {
            let mut table = wtx.open_table(TABLE)?;
            let value = initial_value();
            for i in 0..keys {
                table.insert(key(i).as_slice(), value.as_slice())?;
            }
        }
        wtx.commit()?;
        let durability = if fsync {
            redb::Durability::Immediate
        } else {
            redb::Durability::None
        };
        Ok(Self { db, durability })
    }
}

impl Engine for RedbEngine {
    fn rmw(&self, ids: &[u64]) -> anyhow::Result<u64> {
        let mut wtx = self.db.begin_write()?;
        wtx.set_durability(self.durability)?;
        {
            let mut table = wtx.open_table(TABLE)?;
            for &id in ids {
                let k = key(id);
                let mut v = match table.get(k.as_slice())? {
                    Some(g) => g.value().to_vec(),
                    None => initial_value(),
                };
                bump(&mut v);
                table.insert(k.as_slice(), v.as_slice())?;
            }
        }
        wtx.commit()?;
        Ok(0)
    }

    fn scan(&self, start: u64, len: usize) -> anyhow::Result<usize> {
        let rtx = self.db.begin_read()?;
        let table = rtx.open_table(TABLE)?;
        let first = key(start);
        let mut n = 0;
        let mut bytes = 0usize;
        for item in table.range::<&[u8]>(first.as_slice()..)?.take(len) {
            let (k, v) = item?;
            bytes += k.value().len() + v.value().len();
            n += 1;
        }
        std::hint::black_box(bytes);
        Ok(n)
    }
}
