//! The protocol's [`TaskStore`] on PostgreSQL: the same operations as the SQLite store,
//! each one serializable transaction (module docs of [`super`]).

use crate::store::Refusal;
use cairn_protocol::auth::{ClientId, ClientKey, ClientRecord};
use cairn_protocol::clock::Time;
use cairn_protocol::ids::{JobId, ReportId};
use cairn_protocol::ledger::LedgerEntry;
use cairn_protocol::scheme::Aggregate;
use cairn_protocol::store::{
    CommitOutcome, GarbageScope, JobAdmission, JobRecord, PutOutcome, RoundRecord, RoundState,
    RoundStatus, TaskStore, first_duplicate, report_bytes_digest, report_set_digest,
    stored_digest_matches,
};
use postgres::GenericClient;

use super::{PgStoreError, PgTaskStore};
use crate::store::encoding::{self, ids_to_blob, status_code};

pub(super) fn to_array<const N: usize>(bytes: &[u8], what: &str) -> Result<[u8; N], PgStoreError> {
    encoding::to_array(bytes, what).map_err(|e| Refusal::Corrupt(e).into())
}

fn blob_to_ids(blob: &[u8]) -> Result<Vec<ReportId>, PgStoreError> {
    encoding::blob_to_ids(blob).map_err(|e| Refusal::Corrupt(e).into())
}

pub(super) fn u32_of(v: i64, what: &str) -> Result<u32, PgStoreError> {
    u32::try_from(v).map_err(|_| Refusal::Corrupt(format!("{what}: {v}")).into())
}

impl PgTaskStore {
    fn round_in(
        &self,
        c: &mut impl GenericClient,
        round: u32,
    ) -> Result<Option<RoundRecord>, PgStoreError> {
        let Some(row) = c.query_opt(
            "SELECT status, opened_at, count, aggregate FROM rounds WHERE task = $1 AND round = $2",
            &[&self.t(), &i64::from(round)],
        )?
        else {
            return Ok(None);
        };
        let state = round_state(round, &row)?;
        let aggregate = Aggregate::decode(row.get::<_, &[u8]>(3), self.dimension)
            .map_err(|e| Refusal::Corrupt(format!("round {round} aggregate: {e}")))?;
        Ok(Some(RoundRecord {
            round,
            status: state.status,
            opened_at: state.opened_at,
            count: state.count,
            aggregate,
        }))
    }

    /// [`Self::round_in`] without the aggregate (which PostgreSQL keeps out of line
    /// and then never reads).
    fn round_state_in(
        &self,
        c: &mut impl GenericClient,
        round: u32,
    ) -> Result<Option<RoundState>, PgStoreError> {
        c.query_opt(
            "SELECT status, opened_at, count FROM rounds WHERE task = $1 AND round = $2",
            &[&self.t(), &i64::from(round)],
        )?
        .map(|row| round_state(round, &row))
        .transpose()
    }

    /// The digest recorded for a report id seen before, if any.
    fn seen_digest_in(
        &self,
        c: &mut impl GenericClient,
        report_id: ReportId,
    ) -> Result<Option<Vec<u8>>, PgStoreError> {
        Ok(c.query_opt(
            "SELECT digest FROM seen_reports WHERE task = $1 AND report_id = $2",
            &[&self.t(), &&report_id.0[..]],
        )?
        .map(|r| r.get(0)))
    }

    fn report_ids(
        &self,
        c: &mut impl GenericClient,
        sql: &str,
        round: u32,
    ) -> Result<Vec<ReportId>, PgStoreError> {
        c.query(sql, &[&self.t(), &i64::from(round)])?
            .iter()
            .map(|r| to_array::<16>(r.get(0), "report id").map(ReportId))
            .collect()
    }
}

/// A round's state from the first three columns of `row` (status, opened_at, count).
fn round_state(round: u32, row: &postgres::Row) -> Result<RoundState, PgStoreError> {
    let code = row.get::<_, i16>(0);
    Ok(RoundState {
        round,
        status: encoding::status_of(i64::from(code))
            .ok_or_else(|| Refusal::Corrupt(format!("round {round} status {code}")))?,
        opened_at: Time(
            u64::try_from(row.get::<_, i64>(1))
                .map_err(|_| Refusal::Corrupt("opened_at".into()))?,
        ),
        count: u32_of(row.get(2), "count")?,
    })
}

impl TaskStore for PgTaskStore {
    type Error = PgStoreError;

    fn client(&self, id: ClientId) -> Result<Option<ClientRecord>, PgStoreError> {
        self.read(|c| {
            let Some(row) = c.query_opt(
                "SELECT key, revoked FROM clients WHERE task = $1 AND client_id = $2",
                &[&self.t(), &&id.0[..]],
            )?
            else {
                return Ok(None);
            };
            let mut key: Vec<u8> = row.get(0);
            let bytes = to_array::<32>(&key, "client key");
            zeroize::Zeroize::zeroize(&mut key);
            Ok(Some(ClientRecord {
                key: ClientKey::from_bytes(bytes?),
                revoked: row.get(1),
            }))
        })
    }

    fn add_client(&self, id: ClientId, key: &ClientKey) -> Result<bool, PgStoreError> {
        self.serializable(|tx| {
            Ok(tx.execute(
                "INSERT INTO clients (task, client_id, key) VALUES ($1, $2, $3) \
                 ON CONFLICT DO NOTHING",
                &[&self.t(), &&id.0[..], &&key.dangerous_as_bytes()[..]],
            )? == 1)
        })
    }

    fn revoke_client(&self, id: ClientId) -> Result<bool, PgStoreError> {
        self.serializable(|tx| {
            Ok(tx.execute(
                "UPDATE clients SET revoked = TRUE WHERE task = $1 AND client_id = $2",
                &[&self.t(), &&id.0[..]],
            )? == 1)
        })
    }

    fn put_report(
        &self,
        round: u32,
        report_id: ReportId,
        client_id: ClientId,
        report: &[u8],
        max_reports: u32,
    ) -> Result<PutOutcome, PgStoreError> {
        let digest = report_bytes_digest(report);
        let round = i64::from(round);
        let decided: Result<PutOutcome, Vec<u8>> = self.serializable(|tx| {
            if let Some(stored) = self.seen_digest_in(tx, report_id)? {
                return Ok(Err(stored));
            }
            let client_used: bool = tx
                .query_one(
                    "SELECT EXISTS (SELECT 1 FROM uploads WHERE task = $1 AND round = $2 AND client_id = $3)",
                    &[&self.t(), &round, &&client_id.0[..]],
                )?
                .get(0);
            if client_used {
                return Ok(Ok(PutOutcome::ClientAlreadySubmitted));
            }
            // FOR SHARE: a close of this round (an UPDATE of the row) waits until this
            // upload has committed, so a collect that closes the round and then looks
            // for reports in flight sees it. Without the lock a read after the close
            // could miss an upload that commits later, serialized before the close.
            let status: Option<i16> = tx
                .query_opt(
                    "SELECT status FROM rounds WHERE task = $1 AND round = $2 FOR SHARE",
                    &[&self.t(), &round],
                )?
                .map(|r| r.get(0));
            if status.is_some_and(|s| s != status_code(RoundStatus::Open)) {
                return Ok(Ok(PutOutcome::RoundClosed));
            }
            let in_round: i64 = tx
                .query_one(
                    "SELECT COUNT(*) FROM uploads WHERE task = $1 AND round = $2",
                    &[&self.t(), &round],
                )?
                .get(0);
            if in_round >= i64::from(max_reports) {
                return Ok(Ok(PutOutcome::RoundFull));
            }
            tx.execute(
                "INSERT INTO seen_reports (task, report_id, digest) VALUES ($1, $2, $3)",
                &[&self.t(), &&report_id.0[..], &&digest[..]],
            )?;
            tx.execute(
                "INSERT INTO uploads (task, round, client_id, report_id) VALUES ($1, $2, $3, $4)",
                &[&self.t(), &round, &&client_id.0[..], &&report_id.0[..]],
            )?;
            tx.execute(
                "INSERT INTO reports (task, report_id, round, job_id, payload) VALUES ($1, $2, $3, NULL, $4)",
                &[&self.t(), &&report_id.0[..], &round, &report],
            )?;
            Ok(Ok(PutOutcome::Stored))
        })?;
        // A report id seen before (`Err`, with its stored digest) is compared once the
        // transaction is over: a mismatch hashes the report again (digests stored by
        // earlier versions are SHA-256), which must not hold a pooled connection or be
        // repeated by a serialization retry.
        Ok(decided.unwrap_or_else(|stored| PutOutcome::Duplicate {
            identical: stored_digest_matches(&stored, &digest, report),
        }))
    }

    fn stored_report_matches(
        &self,
        report_id: ReportId,
        report: &[u8],
    ) -> Result<Option<bool>, PgStoreError> {
        let stored = self.read(|c| self.seen_digest_in(c, report_id))?;
        Ok(stored.map(|s| stored_digest_matches(&s, &report_bytes_digest(report), report)))
    }

    fn report(&self, report_id: ReportId) -> Result<Option<Vec<u8>>, PgStoreError> {
        self.read(|c| {
            Ok(c.query_opt(
                "SELECT payload FROM reports WHERE task = $1 AND report_id = $2",
                &[&self.t(), &&report_id.0[..]],
            )?
            .map(|r| r.get(0)))
        })
    }

    fn queued_reports(&self, round: u32, limit: usize) -> Result<Vec<ReportId>, PgStoreError> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.read(|c| {
            c.query(
                "SELECT report_id FROM reports WHERE task = $1 AND round = $2 AND job_id IS NULL \
                 ORDER BY report_id LIMIT $3",
                &[&self.t(), &i64::from(round), &limit],
            )?
            .iter()
            .map(|r| to_array::<16>(r.get(0), "report id").map(ReportId))
            .collect()
        })
    }

    fn queued_rounds(&self) -> Result<Vec<u32>, PgStoreError> {
        self.read(|c| {
            c.query(
                "SELECT DISTINCT round FROM reports WHERE task = $1 AND job_id IS NULL ORDER BY round",
                &[&self.t()],
            )?
            .iter()
            .map(|r| u32_of(r.get(0), "round"))
            .collect()
        })
    }

    fn create_job(&self, job: &JobRecord) -> Result<(), PgStoreError> {
        let reports = ids_to_blob(&job.reports);
        let accepted = job.accepted.as_deref().map(ids_to_blob);
        self.serializable(|tx| {
            tx.execute(
                "INSERT INTO jobs (task, job_id, round, report_ids, accepted) VALUES ($1, $2, $3, $4, $5)",
                &[&self.t(), &&job.job_id.0[..], &i64::from(job.round), &reports, &accepted],
            )?;
            for id in &job.reports {
                let claimed = tx.execute(
                    "UPDATE reports SET job_id = $4 WHERE task = $1 AND report_id = $2 \
                     AND round = $3 AND job_id IS NULL",
                    &[&self.t(), &&id.0[..], &i64::from(job.round), &&job.job_id.0[..]],
                )?;
                if claimed == 0 {
                    // Returning an error drops the transaction: the job row goes too.
                    return Err(Refusal::NotQueued(*id).into());
                }
            }
            Ok(())
        })
    }

    fn lease_job(
        &self,
        job_id: JobId,
        owner: [u8; 16],
        now: Time,
        until: Time,
    ) -> Result<bool, PgStoreError> {
        let now = i64::try_from(now.0).unwrap_or(i64::MAX);
        let until = i64::try_from(until.0).unwrap_or(i64::MAX);
        self.serializable(|tx| {
            Ok(tx.execute(
                "UPDATE jobs SET lease_owner = $3, lease_expires = $5 \
                 WHERE task = $1 AND job_id = $2 AND NOT committed \
                 AND (lease_owner IS NULL OR lease_owner = $3 OR lease_expires <= $4)",
                &[&self.t(), &&job_id.0[..], &&owner[..], &now, &until],
            )? == 1)
        })
    }

    fn decide_job(&self, job_id: JobId, accepted: &[ReportId]) -> Result<(), PgStoreError> {
        let blob = ids_to_blob(accepted);
        self.serializable(|tx| {
            let changed = tx.execute(
                "UPDATE jobs SET accepted = $3 WHERE task = $1 AND job_id = $2 AND NOT committed \
                 AND (accepted IS NULL OR accepted = $3)",
                &[&self.t(), &&job_id.0[..], &blob],
            )?;
            if changed == 0 {
                let open: bool = tx
                    .query_one(
                        "SELECT EXISTS (SELECT 1 FROM jobs WHERE task = $1 AND job_id = $2 \
                         AND NOT committed)",
                        &[&self.t(), &&job_id.0[..]],
                    )?
                    .get(0);
                return Err(if open {
                    Refusal::DecidedOtherwise
                } else {
                    Refusal::NotFound("job")
                }
                .into());
            }
            Ok(())
        })
    }

    fn open_jobs(&self) -> Result<Vec<JobRecord>, PgStoreError> {
        self.read(|c| {
            c.query(
                "SELECT job_id, round, report_ids, accepted FROM jobs WHERE task = $1 AND NOT committed",
                &[&self.t()],
            )?
            .iter()
            .map(|r| {
                Ok(JobRecord {
                    job_id: JobId(to_array(r.get(0), "job id")?),
                    round: u32_of(r.get(1), "round")?,
                    reports: blob_to_ids(r.get(2))?,
                    accepted: r.get::<_, Option<&[u8]>>(3).map(blob_to_ids).transpose()?,
                })
            })
            .collect()
        })
    }

    fn prepared_job_digest(&self, job_id: JobId) -> Result<Option<[u8; 32]>, PgStoreError> {
        self.read(|c| {
            c.query_opt(
                "SELECT digest FROM prepared_jobs WHERE task = $1 AND job_id = $2",
                &[&self.t(), &&job_id.0[..]],
            )?
            .map(|r| to_array(r.get(0), "job digest"))
            .transpose()
        })
    }

    fn record_prepared(
        &self,
        job_id: JobId,
        job_digest: &[u8; 32],
        round: u32,
        reports: &[(ReportId, ClientId)],
        max_reports: u32,
    ) -> Result<JobAdmission, PgStoreError> {
        self.pg_record_prepared(job_id, job_digest, round, reports, max_reports)
    }

    fn round(&self, round: u32) -> Result<Option<RoundRecord>, PgStoreError> {
        self.read(|c| self.round_in(c, round))
    }

    fn open_round(
        &self,
        round: u32,
        now: Time,
        dimension: usize,
    ) -> Result<RoundState, PgStoreError> {
        self.serializable(|tx| {
            if let Some(r) = self.round_state_in(tx, round)? {
                return Ok(r);
            }
            tx.execute(
                "INSERT INTO rounds (task, round, status, opened_at, count, aggregate) \
                 VALUES ($1, $2, $3, $4, 0, $5)",
                &[
                    &self.t(),
                    &i64::from(round),
                    &status_code(RoundStatus::Open),
                    &i64::try_from(now.0).unwrap_or(i64::MAX),
                    &Aggregate::zero(dimension).encode(),
                ],
            )?;
            Ok(RoundState {
                round,
                status: RoundStatus::Open,
                opened_at: now,
                count: 0,
            })
        })
    }

    fn close_round(&self, round: u32) -> Result<(), PgStoreError> {
        self.serializable(|tx| {
            tx.execute(
                "UPDATE rounds SET status = 1 WHERE task = $1 AND round = $2 AND status = 0",
                &[&self.t(), &i64::from(round)],
            )?;
            Ok(())
        })
    }

    fn latest_round(&self) -> Result<Option<u32>, PgStoreError> {
        self.read(|c| {
            c.query_one(
                "SELECT MAX(round) FROM rounds WHERE task = $1",
                &[&self.t()],
            )?
            .get::<_, Option<i64>>(0)
            .map(|r| u32_of(r, "round"))
            .transpose()
        })
    }

    fn latest_released_round(&self) -> Result<Option<u32>, PgStoreError> {
        self.read(|c| {
            c.query_one(
                "SELECT MAX(round) FROM rounds WHERE task = $1 AND status = $2",
                &[&self.t(), &status_code(RoundStatus::Released)],
            )?
            .get::<_, Option<i64>>(0)
            .map(|r| u32_of(r, "round"))
            .transpose()
        })
    }

    fn report_set_digest(&self, round: u32) -> Result<[u8; 32], PgStoreError> {
        self.read(|c| {
            let ids = self.report_ids(
                c,
                "SELECT report_id FROM aggregated WHERE task = $1 AND round = $2 ORDER BY report_id",
                round,
            )?;
            Ok(report_set_digest(&ids))
        })
    }

    fn is_aggregated(&self, report_id: ReportId) -> Result<bool, PgStoreError> {
        self.read(|c| {
            Ok(c.query_opt(
                "SELECT 1 FROM aggregated WHERE task = $1 AND report_id = $2",
                &[&self.t(), &&report_id.0[..]],
            )?
            .is_some())
        })
    }

    fn job_committed(&self, job_id: JobId) -> Result<Option<u32>, PgStoreError> {
        self.read(|c| {
            c.query_opt(
                "SELECT accepted_count FROM jobs WHERE task = $1 AND job_id = $2 AND committed",
                &[&self.t(), &&job_id.0[..]],
            )?
            .map(|r| u32_of(r.get(0), "accepted_count"))
            .transpose()
        })
    }

    fn commit_job(
        &self,
        round: u32,
        job_id: JobId,
        accepted: &[ReportId],
        contribution: &Aggregate,
    ) -> Result<CommitOutcome, PgStoreError> {
        if let Some(id) = first_duplicate(accepted) {
            // Checked before anything is read: a refusal changes nothing.
            return self.serializable(|tx| {
                let committed: Option<bool> = tx
                    .query_opt(
                        "SELECT committed FROM jobs WHERE task = $1 AND job_id = $2",
                        &[&self.t(), &&job_id.0[..]],
                    )?
                    .map(|r| r.get(0));
                if committed == Some(true) {
                    Ok(CommitOutcome::AlreadyCommitted)
                } else {
                    Err(Refusal::DuplicateInJob(id).into())
                }
            });
        }
        let count = i64::try_from(accepted.len()).unwrap_or(i64::MAX);
        self.serializable(|tx| {
            let committed: Option<bool> = tx
                .query_opt(
                    "SELECT committed FROM jobs WHERE task = $1 AND job_id = $2",
                    &[&self.t(), &&job_id.0[..]],
                )?
                .map(|r| r.get(0));
            if committed == Some(true) {
                return Ok(CommitOutcome::AlreadyCommitted);
            }
            let mut record = self
                .round_in(tx, round)?
                .ok_or(Refusal::NotFound("round"))?;
            if record.status == RoundStatus::Released {
                return Err(Refusal::RoundReleased(round).into());
            }
            for id in accepted {
                let inserted = tx.execute(
                    "INSERT INTO aggregated (task, report_id, round) VALUES ($1, $2, $3) \
                     ON CONFLICT DO NOTHING",
                    &[&self.t(), &&id.0[..], &i64::from(round)],
                )?;
                if inserted == 0 {
                    // Returning an error drops the transaction: everything rolls back.
                    return Err(Refusal::AlreadyAggregated(*id).into());
                }
            }
            crate::store::common::absorb_job(&mut record, contribution, accepted.len())?;
            tx.execute(
                "UPDATE rounds SET count = $3, aggregate = $4 WHERE task = $1 AND round = $2",
                &[
                    &self.t(),
                    &i64::from(round),
                    &i64::from(record.count),
                    &record.aggregate.encode(),
                ],
            )?;
            if committed.is_some() {
                tx.execute(
                    "DELETE FROM reports WHERE task = $1 AND job_id = $2",
                    &[&self.t(), &&job_id.0[..]],
                )?;
                tx.execute(
                    "UPDATE jobs SET committed = TRUE, accepted_count = $3, report_ids = '\\x' \
                     WHERE task = $1 AND job_id = $2",
                    &[&self.t(), &&job_id.0[..], &count],
                )?;
            } else {
                // A helper's job: the leader recorded it, the helper records its commit.
                tx.execute(
                    "INSERT INTO jobs (task, job_id, round, report_ids, committed, accepted_count) \
                     VALUES ($1, $2, $3, '\\x', TRUE, $4)",
                    &[&self.t(), &&job_id.0[..], &i64::from(round), &count],
                )?;
            }
            Ok(CommitOutcome::Applied)
        })
    }

    fn ledger(&self) -> Result<Vec<LedgerEntry>, PgStoreError> {
        self.pg_ledger()
    }

    fn commit_release(&self, entry: &LedgerEntry, released: &[u8]) -> Result<(), PgStoreError> {
        self.pg_commit_release(entry, released)
    }

    fn release(&self, round: u32) -> Result<Option<Vec<u8>>, PgStoreError> {
        self.read(|c| {
            Ok(c.query_opt(
                "SELECT payload FROM releases WHERE task = $1 AND round = $2",
                &[&self.t(), &i64::from(round)],
            )?
            .map(|r| r.get(0)))
        })
    }

    fn put_collect_response(&self, round: u32, response: &[u8]) -> Result<(), PgStoreError> {
        self.serializable(|tx| {
            tx.execute(
                "INSERT INTO collect_responses (task, round, payload) VALUES ($1, $2, $3) \
                 ON CONFLICT DO NOTHING",
                &[&self.t(), &i64::from(round), &response],
            )?;
            Ok(())
        })
    }

    fn collect_garbage(
        &self,
        through_round: u32,
        scope: GarbageScope,
    ) -> Result<u64, PgStoreError> {
        let released = status_code(RoundStatus::Released);
        let statements = encoding::garbage(scope);
        self.serializable(|tx| {
            let mut deleted = 0;
            for sql in &statements {
                deleted += tx.execute(
                    sql.as_str(),
                    &[&self.t(), &i64::from(through_round), &released],
                )?;
            }
            Ok(deleted)
        })
    }

    fn collect_response(&self, round: u32) -> Result<Option<Vec<u8>>, PgStoreError> {
        self.read(|c| {
            Ok(c.query_opt(
                "SELECT payload FROM collect_responses WHERE task = $1 AND round = $2",
                &[&self.t(), &i64::from(round)],
            )?
            .map(|r| r.get(0)))
        })
    }

    fn has_collect_response(&self, round: u32) -> Result<bool, PgStoreError> {
        self.read(|c| {
            Ok(c.query_opt(
                "SELECT 1 FROM collect_responses WHERE task = $1 AND round = $2",
                &[&self.t(), &i64::from(round)],
            )?
            .is_some())
        })
    }
}
