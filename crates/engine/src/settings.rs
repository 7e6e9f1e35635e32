//! Named settings shared by every front end, stored in the database.

use rusqlite::{params, Connection, OptionalExtension};

use crate::clock::Millis;
use crate::error::Result;
use crate::store::writer::{db, WriteOp};
use crate::store::Store;

pub(crate) async fn get(store: &Store, key: &'static str) -> Result<Option<String>> {
    store
        .read(move |c| c.prepare_cached("SELECT value FROM settings WHERE key = ?1")?.query_row([key], |r| r.get(0)).optional())
        .await
}

/// Set (or with `None`, clear) a setting.
pub(crate) struct Set {
    pub key: &'static str,
    pub value: Option<String>,
}

impl WriteOp for Set {
    type Output = ();
    fn apply(&mut self, conn: &Connection, _now: Millis) -> Result<()> {
        match &self.value {
            Some(v) => conn.execute(
                "INSERT INTO settings (key, value) VALUES (?1, ?2) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                params![self.key, v],
            ),
            None => conn.execute("DELETE FROM settings WHERE key = ?1", [self.key]),
        }
        .map_err(db)?;
        Ok(())
    }
}
