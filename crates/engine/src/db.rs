//! The metadata store: one redb file, one table per kind of record, JSON values.
//! Every change is its own durable transaction, so a `kill -9` at any point leaves
//! each record either wholly old or wholly new.

use std::path::Path;

use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};
use serde::{de::DeserializeOwned, Serialize};

use crate::{EngineError, Result};

pub const CONTAINERS: TableDefinition<&str, &[u8]> = TableDefinition::new("containers");
pub const IMAGES: TableDefinition<&str, &[u8]> = TableDefinition::new("images");
pub const VOLUMES: TableDefinition<&str, &[u8]> = TableDefinition::new("volumes");
pub const NETWORKS: TableDefinition<&str, &[u8]> = TableDefinition::new("networks");

pub struct Db {
    db: Database,
}

fn internal(what: &str, e: impl std::error::Error + Send + Sync + 'static) -> EngineError {
    EngineError::metadata(what, e)
}

impl Db {
    pub fn open(path: &Path) -> Result<Db> {
        let db =
            Database::create(path).map_err(|e| internal(&format!("open {}", path.display()), e))?;
        let txn = db.begin_write().map_err(|e| internal("begin", e))?;
        txn.open_table(CONTAINERS)
            .map_err(|e| internal("open table", e))?;
        txn.open_table(IMAGES)
            .map_err(|e| internal("open table", e))?;
        txn.open_table(VOLUMES)
            .map_err(|e| internal("open table", e))?;
        txn.open_table(NETWORKS)
            .map_err(|e| internal("open table", e))?;
        txn.commit().map_err(|e| internal("commit", e))?;
        Ok(Db { db })
    }

    pub fn put<T: Serialize>(
        &self,
        table: TableDefinition<&str, &[u8]>,
        key: &str,
        value: &T,
    ) -> Result<()> {
        let bytes = serde_json::to_vec(value).map_err(|e| internal("encode", e))?;
        let txn = self.db.begin_write().map_err(|e| internal("begin", e))?;
        {
            let mut t = txn
                .open_table(table)
                .map_err(|e| internal("open table", e))?;
            t.insert(key, bytes.as_slice())
                .map_err(|e| internal("insert", e))?;
        }
        txn.commit().map_err(|e| internal("commit", e))
    }

    pub fn delete(&self, table: TableDefinition<&str, &[u8]>, key: &str) -> Result<()> {
        let txn = self.db.begin_write().map_err(|e| internal("begin", e))?;
        {
            let mut t = txn
                .open_table(table)
                .map_err(|e| internal("open table", e))?;
            t.remove(key).map_err(|e| internal("remove", e))?;
        }
        txn.commit().map_err(|e| internal("commit", e))
    }

    pub fn all<T: DeserializeOwned>(&self, table: TableDefinition<&str, &[u8]>) -> Result<Vec<T>> {
        let txn = self
            .db
            .begin_read()
            .map_err(|e| internal("begin read", e))?;
        let t = txn
            .open_table(table)
            .map_err(|e| internal("open table", e))?;
        let mut out = Vec::new();
        for row in t.iter().map_err(|e| internal("iterate", e))? {
            let (key, value) = row.map_err(|e| internal("read row", e))?;
            match serde_json::from_slice(value.value()) {
                Ok(v) => out.push(v),
                Err(e) => {
                    tracing::error!(key = key.value(), error = %e, "skipping unreadable record")
                }
            }
        }
        Ok(out)
    }
}
