//! The ledger, releases and stored collect answers of a SQLite task store.

use super::*;
use crate::store::Refusal;
use crate::store::encoding::{blob_to_rdp, rdp_to_blob};

impl SqliteTaskStore {
    /// The ids of other tasks that have budget-ledger entries in this database, in hex.
    pub fn other_ledger_tasks(&self) -> Result<Vec<String>, StoreError> {
        let conn = self.lock();
        let mut stmt = conn.prepare("SELECT DISTINCT task FROM ledger WHERE task != ?1")?;
        let rows = stmt.query_map([self.t()], |r| r.get::<_, Vec<u8>>(0))?;
        rows.map(|r| Ok(hex::encode(r?))).collect()
    }

    pub(super) fn sqlite_ledger(&self) -> Result<Vec<LedgerEntry>, StoreError> {
        let conn = self.lock();
        let mut stmt = conn.prepare_cached(
            "SELECT seq, round, time, report_count, rho_bits, rho_total_bits, prev_hash, hash, rdp \
             FROM ledger WHERE task = ?1 ORDER BY seq",
        )?;
        let rows = stmt.query_map(params![self.t()], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, u32>(1)?,
                r.get::<_, i64>(2)?,
                r.get::<_, u32>(3)?,
                r.get::<_, i64>(4)?,
                r.get::<_, i64>(5)?,
                r.get::<_, Vec<u8>>(6)?,
                r.get::<_, Vec<u8>>(7)?,
                r.get::<_, Option<Vec<u8>>>(8)?,
            ))
        })?;
        let mut entries = Vec::new();
        for row in rows {
            let (seq, round, time, report_count, rho, rho_total, prev, hash, rdp) = row?;
            let rdp = rdp
                .map(|blob| blob_to_rdp(&blob).map_err(Refusal::Corrupt))
                .transpose()?;
            entries.push(LedgerEntry {
                seq: u64::try_from(seq).map_err(|_| Refusal::Corrupt("ledger seq".into()))?,
                round,
                time: Time(
                    u64::try_from(time).map_err(|_| Refusal::Corrupt("ledger time".into()))?,
                ),
                report_count,
                rho: f64::from_bits(rho as u64),
                rho_total: f64::from_bits(rho_total as u64),
                rdp,
                prev_hash: to_array(&prev, "ledger prev_hash")?,
                hash: to_array(&hash, "ledger hash")?,
            });
        }
        Ok(entries)
    }

    pub(super) fn sqlite_commit_release(
        &self,
        entry: &LedgerEntry,
        released: &[u8],
    ) -> Result<(), StoreError> {
        let mut conn = self.lock();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let head: Option<(i64, Vec<u8>)> = tx
            .query_row(
                "SELECT seq, hash FROM ledger WHERE task = ?1 ORDER BY seq DESC LIMIT 1",
                params![self.t()],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?;
        let round_released: bool = tx.query_row(
            "SELECT EXISTS (SELECT 1 FROM ledger WHERE task = ?1 AND round = ?2)",
            params![self.t(), entry.round],
            |r| r.get(0),
        )?;
        if !encoding::extends_chain(head, entry) || round_released {
            return Err(Refusal::LedgerConflict { seq: entry.seq }.into());
        }
        tx.execute(
            "INSERT INTO ledger (task, seq, round, time, report_count, rho_bits, rho_total_bits, prev_hash, hash, rdp) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
            params![
                self.t(),
                i64::try_from(entry.seq).map_err(|_| Refusal::Corrupt("ledger seq".into()))?,
                entry.round,
                i64::try_from(entry.time.0).unwrap_or(i64::MAX),
                entry.report_count,
                entry.rho.to_bits() as i64,
                entry.rho_total.to_bits() as i64,
                entry.prev_hash,
                entry.hash,
                entry.rdp.as_ref().map(rdp_to_blob)
            ],
        )?;
        tx.execute(
            "INSERT INTO releases (task, round, payload) VALUES (?1, ?2, ?3)",
            params![self.t(), entry.round, released],
        )?;
        tx.execute(
            "UPDATE rounds SET status = 2 WHERE task = ?1 AND round = ?2",
            params![self.t(), entry.round],
        )?;
        tx.commit()?;
        Ok(())
    }

    pub(super) fn sqlite_release(&self, round: u32) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self
            .lock()
            .query_row(
                "SELECT payload FROM releases WHERE task = ?1 AND round = ?2",
                params![self.t(), round],
                |r| r.get(0),
            )
            .optional()?)
    }

    pub(super) fn sqlite_put_collect_response(
        &self,
        round: u32,
        response: &[u8],
    ) -> Result<(), StoreError> {
        self.lock().execute(
            "INSERT OR IGNORE INTO collect_responses (task, round, payload) VALUES (?1, ?2, ?3)",
            params![self.t(), round, response],
        )?;
        Ok(())
    }

    pub(super) fn sqlite_collect_response(
        &self,
        round: u32,
    ) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self
            .lock()
            .query_row(
                "SELECT payload FROM collect_responses WHERE task = ?1 AND round = ?2",
                params![self.t(), round],
                |r| r.get(0),
            )
            .optional()?)
    }

    pub(super) fn sqlite_has_collect_response(&self, round: u32) -> Result<bool, StoreError> {
        Ok(self
            .lock()
            .query_row(
                "SELECT 1 FROM collect_responses WHERE task = ?1 AND round = ?2",
                params![self.t(), round],
                |_| Ok(()),
            )
            .optional()?
            .is_some())
    }
}
