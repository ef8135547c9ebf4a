//! The ledger and releases of a PostgreSQL task store: reading the hash-chained ledger,
//! and appending an entry with its release in one serializable transaction that
//! refuses an entry not extending the stored chain (module docs of [`super`]).

use crate::store::Refusal;
use crate::store::encoding::{blob_to_rdp, rdp_to_blob};
use cairn_protocol::clock::Time;
use cairn_protocol::ledger::LedgerEntry;

use super::task_store::{to_array, u32_of};
use super::{PgStoreError, PgTaskStore};

impl PgTaskStore {
    pub(super) fn pg_ledger(&self) -> Result<Vec<LedgerEntry>, PgStoreError> {
        self.read(|c| {
            let rows = c.query(
                "SELECT seq, round, time, report_count, rho_bits, rho_total_bits, prev_hash, hash, rdp \
                 FROM ledger WHERE task = $1 ORDER BY seq",
                &[&self.t()],
            )?;
            rows.iter()
                .map(|r| {
                    let rdp = r
                        .get::<_, Option<&[u8]>>(8)
                        .map(|blob| blob_to_rdp(blob).map_err(Refusal::Corrupt))
                        .transpose()?;
                    Ok(LedgerEntry {
                        seq: u64::try_from(r.get::<_, i64>(0))
                            .map_err(|_| Refusal::Corrupt("ledger seq".into()))?,
                        round: u32_of(r.get(1), "ledger round")?,
                        time: Time(
                            u64::try_from(r.get::<_, i64>(2))
                                .map_err(|_| Refusal::Corrupt("ledger time".into()))?,
                        ),
                        report_count: u32_of(r.get(3), "ledger report count")?,
                        rho: f64::from_bits(r.get::<_, i64>(4) as u64),
                        rho_total: f64::from_bits(r.get::<_, i64>(5) as u64),
                        rdp,
                        prev_hash: to_array(r.get(6), "ledger prev_hash")?,
                        hash: to_array(r.get(7), "ledger hash")?,
                    })
                })
                .collect()
        })
    }

    pub(super) fn pg_commit_release(
        &self,
        entry: &LedgerEntry,
        released: &[u8],
    ) -> Result<(), PgStoreError> {
        let seq = i64::try_from(entry.seq).map_err(|_| Refusal::Corrupt("ledger seq".into()))?;
        let rdp = entry.rdp.as_ref().map(rdp_to_blob);
        self.serializable(|tx| {
            let head = tx
                .query_opt(
                    "SELECT seq, hash FROM ledger WHERE task = $1 ORDER BY seq DESC LIMIT 1",
                    &[&self.t()],
                )?
                .map(|r| (r.get::<_, i64>(0), r.get::<_, Vec<u8>>(1)));
            let round_released: bool = tx
                .query_one(
                    "SELECT EXISTS (SELECT 1 FROM ledger WHERE task = $1 AND round = $2)",
                    &[&self.t(), &i64::from(entry.round)],
                )?
                .get(0);
            if !crate::store::encoding::extends_chain(head, entry) || round_released {
                return Err(Refusal::LedgerConflict { seq: entry.seq }.into());
            }
            tx.execute(
                "INSERT INTO ledger (task, seq, round, time, report_count, rho_bits, rho_total_bits, prev_hash, hash, rdp) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
                &[
                    &self.t(),
                    &seq,
                    &i64::from(entry.round),
                    &i64::try_from(entry.time.0).unwrap_or(i64::MAX),
                    &i64::from(entry.report_count),
                    &(entry.rho.to_bits() as i64),
                    &(entry.rho_total.to_bits() as i64),
                    &&entry.prev_hash[..],
                    &&entry.hash[..],
                    &rdp,
                ],
            )?;
            tx.execute(
                "INSERT INTO releases (task, round, payload) VALUES ($1, $2, $3)",
                &[&self.t(), &i64::from(entry.round), &released],
            )?;
            tx.execute(
                "UPDATE rounds SET status = 2 WHERE task = $1 AND round = $2",
                &[&self.t(), &i64::from(entry.round)],
            )?;
            Ok(())
        })
    }
}
