//! The node's disk (redb): the records it holds, as the store changes them (written
//! before the node sends anything that follows from the change, so an acknowledged put
//! is on disk), and the bootstrap URLs that worked. Read back at start.

use std::path::Path;

use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};

use crate::store::Record;
use crate::Did;

/// Slot (ring key ‖ writer, 40 bytes) → the record (postcard).
const RECORDS: TableDefinition<&[u8], &[u8]> = TableDefinition::new("records");
/// A bootstrap URL that linked → when, in wall-clock ms.
const SEEDS: TableDefinition<&str, u64> = TableDefinition::new("seeds");
/// Bootstrap URLs remembered (the least recently linked go).
pub const MAX_SEEDS: usize = 16;

pub struct Disk {
    db: Database,
}

fn slot_key(slot: (Did, Did)) -> [u8; 40] {
    let mut k = [0u8; 40];
    k[..20].copy_from_slice(&slot.0.to_bytes());
    k[20..].copy_from_slice(&slot.1.to_bytes());
    k
}

fn err(path: &str) -> impl Fn(redb::Error) -> String + '_ {
    move |e| format!("{path}: {e}")
}

impl Disk {
    /// Opens (or creates) the database at `path`.
    pub fn open(path: &Path) -> Result<Disk, String> {
        let db = Database::create(path).map_err(|e| format!("cannot open the storage {}: {e}", path.display()))?;
        let d = Disk { db };
        // Both tables exist from the first start on.
        d.write(|_, _| Ok(()))?;
        Ok(d)
    }

    fn write(&self, f: impl FnOnce(&mut redb::Table<&[u8], &[u8]>, &mut redb::Table<&str, u64>) -> Result<(), redb::Error>) -> Result<(), String> {
        let run = || -> Result<(), redb::Error> {
            let tx = self.db.begin_write()?;
            {
                let mut records = tx.open_table(RECORDS)?;
                let mut seeds = tx.open_table(SEEDS)?;
                f(&mut records, &mut seeds)?;
            }
            tx.commit()?;
            Ok(())
        };
        run().map_err(err("storage write"))
    }

    /// Every record on disk (those that no longer decode are skipped and counted).
    pub fn records(&self) -> Result<(Vec<Record>, usize), String> {
        let run = || -> Result<(Vec<Record>, usize), redb::Error> {
            let tx = self.db.begin_read()?;
            let t = tx.open_table(RECORDS)?;
            let (mut out, mut bad) = (Vec::new(), 0);
            for row in t.iter()? {
                let (_, v) = row?;
                match postcard::from_bytes::<Record>(v.value()) {
                    Ok(r) => out.push(r),
                    Err(_) => bad += 1,
                }
            }
            Ok((out, bad))
        };
        run().map_err(err("storage read"))
    }

    /// Writes what the slots hold now (`None`: dropped) in one transaction.
    pub fn apply<'a>(&self, changes: impl IntoIterator<Item = ((Did, Did), Option<&'a Record>)>) -> Result<(), String> {
        let changes: Vec<([u8; 40], Option<Vec<u8>>)> =
            changes.into_iter().map(|(slot, r)| (slot_key(slot), r.and_then(|r| postcard::to_allocvec(r).ok()))).collect();
        self.write(|records, _| {
            for (k, v) in &changes {
                match v {
                    Some(v) => drop(records.insert(&k[..], &v[..])?),
                    None => drop(records.remove(&k[..])?),
                }
            }
            Ok(())
        })
    }

    /// The bootstrap URLs that linked, most recent first.
    pub fn seeds(&self) -> Result<Vec<String>, String> {
        let run = || -> Result<Vec<(String, u64)>, redb::Error> {
            let tx = self.db.begin_read()?;
            let t = tx.open_table(SEEDS)?;
            let mut out = Vec::new();
            for row in t.iter()? {
                let (k, v) = row?;
                out.push((k.value().to_string(), v.value()));
            }
            Ok(out)
        };
        let mut s = run().map_err(err("storage read"))?;
        s.sort_by(|a, b| b.1.cmp(&a.1));
        Ok(s.into_iter().map(|(u, _)| u).collect())
    }

    /// Remembers that `url` linked at `wall_ms` (keeping the [`MAX_SEEDS`] latest).
    pub fn linked_through(&self, url: &str, wall_ms: u64) -> Result<(), String> {
        let mut keep = self.seeds()?;
        keep.retain(|u| u != url);
        let drop_these: Vec<String> = keep.into_iter().skip(MAX_SEEDS - 1).collect();
        self.write(|_, seeds| {
            seeds.insert(url, wall_ms)?;
            for u in &drop_these {
                seeds.remove(u.as_str())?;
            }
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seeds_are_kept_newest_first_and_bounded() {
        let dir = std::env::temp_dir().join(format!("rings-disk-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let d = Disk::open(&dir.join("db.redb")).unwrap();
        for i in 0..20u64 {
            d.linked_through(&format!("http://127.0.0.1:{}", 1000 + i), i).unwrap();
        }
        d.linked_through("http://127.0.0.1:1003", 99).unwrap();
        let s = d.seeds().unwrap();
        assert_eq!(s.len(), MAX_SEEDS);
        assert_eq!(s[0], "http://127.0.0.1:1003");
        assert_eq!(s[1], "http://127.0.0.1:1019");
        assert!(!s.contains(&"http://127.0.0.1:1000".to_string()));
        assert_eq!(d.records().unwrap(), (Vec::new(), 0));
        drop(d);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
