//! The helper's anti-replay record in a PostgreSQL task store: a job's digest and each
//! report it prepares, recorded before any verifier message leaves (see
//! `cairn_protocol::store::TaskStore::record_prepared`).

use cairn_protocol::auth::ClientId;
use cairn_protocol::ids::{JobId, ReportId};
use cairn_protocol::store::{Admission, JobAdmission};

use super::{PgStoreError, PgTaskStore};

impl PgTaskStore {
    pub(super) fn pg_record_prepared(
        &self,
        job_id: JobId,
        job_digest: &[u8; 32],
        round: u32,
        reports: &[(ReportId, ClientId)],
        max_reports: u32,
    ) -> Result<JobAdmission, PgStoreError> {
        let round = i64::from(round);
        self.serializable(|tx| {
            let recorded = tx.query_opt(
                "SELECT digest FROM prepared_jobs WHERE task = $1 AND job_id = $2",
                &[&self.t(), &&job_id.0[..]],
            )?;
            match recorded {
                Some(d) if d.get::<_, &[u8]>(0) != job_digest.as_slice() => {
                    return Ok(JobAdmission::Conflict);
                }
                Some(_) => {}
                None => {
                    tx.execute(
                        "INSERT INTO prepared_jobs (task, job_id, digest) VALUES ($1, $2, $3)",
                        &[&self.t(), &&job_id.0[..], &&job_digest[..]],
                    )?;
                }
            }
            let mut in_round: i64 = tx
                .query_one(
                    "SELECT COUNT(*) FROM prepared_reports WHERE task = $1 AND round = $2",
                    &[&self.t(), &round],
                )?
                .get(0);
            let mut verdicts = Vec::with_capacity(reports.len());
            for (report_id, client_id) in reports {
                let job_of_report = tx.query_opt(
                    "SELECT job_id FROM prepared_reports WHERE task = $1 AND report_id = $2",
                    &[&self.t(), &&report_id.0[..]],
                )?;
                let verdict = match job_of_report {
                    Some(j) if j.get::<_, &[u8]>(0) == job_id.0.as_slice() => Admission::Admitted,
                    Some(_) => Admission::Replay,
                    None => {
                        let client_used: bool = tx
                            .query_one(
                                "SELECT EXISTS (SELECT 1 FROM prepared_reports \
                                 WHERE task = $1 AND round = $2 AND client_id = $3)",
                                &[&self.t(), &round, &&client_id.0[..]],
                            )?
                            .get(0);
                        if client_used {
                            Admission::ClientAlreadySubmitted
                        } else if in_round >= i64::from(max_reports) {
                            Admission::RoundFull
                        } else {
                            tx.execute(
                                "INSERT INTO prepared_reports (task, report_id, job_id, round, client_id) \
                                 VALUES ($1, $2, $3, $4, $5)",
                                &[&self.t(), &&report_id.0[..], &&job_id.0[..], &round, &&client_id.0[..]],
                            )?;
                            in_round += 1;
                            Admission::Admitted
                        }
                    }
                };
                verdicts.push(verdict);
            }
            Ok(JobAdmission::Recorded(verdicts))
        })
    }
}
