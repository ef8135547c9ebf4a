//! The leader's side of an upload: authenticate, size-check and store one report.

use super::*;

impl<S: TaskStore> Leader<S> {
    /// Accepts an upload: task, client and tag, sizes, round window — all before
    /// anything is written — then the round open and not expired, then the atomic
    /// insert (anti-replay, one report per client per round, `max_clients`). `Ok`
    /// means stored: it will be counted once. (Encodes the request and takes the
    /// path of [`Leader::handle_upload_frame`], which a node uses.)
    pub fn handle_upload(&self, req: UploadRequest, now: Time) -> Result<UploadResponse, Reject> {
        // The frame holds the leader's share in the clear: wiped when dropped.
        let frame = SecretVec::new(Message::UploadRequest(req).encode());
        self.handle_upload_frame(frame.expose_secret(), now)
    }

    /// [`Leader::handle_upload`] for an upload frame as received: the report is
    /// decoded without copying its share, and the bytes stored are the frame's own
    /// (the report's encoding within it). A frame that does not decode is refused
    /// with [`ErrorCode::for_decode_error`]'s code.
    pub fn handle_upload_frame(&self, frame: &[u8], now: Time) -> Result<UploadResponse, Reject> {
        self.handle_upload_frames(&[frame], now)
            .pop()
            .unwrap_or_else(|| {
                Err(Reject::new(
                    ErrorCode::Internal,
                    "an upload went unanswered",
                ))
            })
    }

    /// [`Leader::handle_upload_frame`] for several uploads at once, answered in the
    /// order of `frames`, each exactly as it would be alone after the ones before it.
    /// Every frame is checked on its own; the reports that pass are stored together
    /// ([`TaskStore::put_reports`]), so that a store that commits a batch with one
    /// sync makes the uploads that queued while it synced wait for one more sync, not
    /// one each. A storage error is the answer of the uploads the store failed (all of
    /// its batch, for a store that commits a batch at once), never of those refused
    /// before the store was asked.
    pub fn handle_upload_frames(
        &self,
        frames: &[&[u8]],
        now: Time,
    ) -> Vec<Result<UploadResponse, Reject>> {
        let checked: Vec<Result<Checked<'_>, Reject>> = frames
            .iter()
            .map(|frame| self.check_upload(frame, now))
            .collect();
        let to_store: Vec<NewReport<'_>> = checked
            .iter()
            .filter_map(|c| match c {
                Ok(Checked::Store(report)) => Some(*report),
                _ => None,
            })
            .collect();
        let mut outcomes = self
            .core
            .store
            .put_reports(&to_store, self.core.task.max_clients())
            .into_iter();
        checked
            .into_iter()
            .map(|c| match c? {
                Checked::Answered(ack) => Ok(ack),
                Checked::Store(report) => self.put_answer(&report, outcomes.next()),
            })
            .collect()
    }

    /// Everything about one upload short of storing it: task, client and tag, sizes,
    /// round window — all before anything is written — then the round open and not
    /// expired (or a retry of a report stored before it closed, answered here).
    fn check_upload<'a>(&self, frame: &'a [u8], now: Time) -> Result<Checked<'a>, Reject> {
        let upload = UploadView::decode(frame, &self.core.limits())
            .map_err(|e| Reject::new(ErrorCode::for_decode_error(&e), e.to_string()))?;
        self.core.check_task(&upload.task_id)?;
        let report = &upload.report;
        let bytes = upload.report_bytes;
        self.authenticate(report)?;
        let limits = self.core.limits();
        let sealed_len = limits.helper_plaintext() + crate::hpke::HPKE_TAG_LEN;
        if report.public_share.len() != limits.public_share
            || report.leader_share.len() != limits.leader_share
            || report.helper_shares.len() != limits.helpers
            || report
                .helper_shares
                .iter()
                .any(|c| c.payload.len() != sealed_len)
        {
            return Err(Reject::new(
                ErrorCode::WrongSize,
                "report sizes do not match the task",
            ));
        }
        if let Err(refusal) = self.check_round_takes_reports(report.round, now) {
            // A retry of a report stored before the round closed or expired (its
            // acknowledgement was lost) is acknowledged again: it is stored and will be
            // counted, and a refusal would tell its client otherwise.
            let stored = self
                .core
                .store
                .stored_report_matches(report.report_id, bytes)
                .map_err(Reject::storage)?;
            if stored == Some(true) {
                return Ok(Checked::Answered(UploadResponse {
                    report_id: report.report_id,
                }));
            }
            return Err(refusal);
        }
        Ok(Checked::Store(NewReport {
            round: report.round,
            report_id: report.report_id,
            client_id: report.client_id,
            report: bytes,
        }))
    }

    /// The answer to an upload the store was asked to keep, from its outcome (`None`:
    /// the store answered fewer uploads than it was given).
    fn put_answer(
        &self,
        report: &NewReport<'_>,
        outcome: Option<Result<PutOutcome, S::Error>>,
    ) -> Result<UploadResponse, Reject> {
        let ack = UploadResponse {
            report_id: report.report_id,
        };
        match outcome.transpose().map_err(Reject::storage)? {
            None => Err(Reject::new(
                ErrorCode::Internal,
                "the store answered a batch of uploads with another count",
            )),
            Some(PutOutcome::Stored) => Ok(ack),
            // A retry of the same report (its acknowledgement was lost): acknowledge
            // again; it is still stored, and counted, once.
            Some(PutOutcome::Duplicate { identical: true }) => Ok(ack),
            Some(PutOutcome::Duplicate { identical: false }) => Err(Reject::new(
                ErrorCode::Replay,
                format!("report id {} was used before", report.report_id),
            )),
            Some(PutOutcome::ClientAlreadySubmitted) => Err(Reject::new(
                ErrorCode::AlreadySubmitted,
                format!(
                    "client {} already submitted another report for round {} (one per round)",
                    report.client_id, report.round
                ),
            )),
            Some(PutOutcome::RoundClosed) => Err(Reject::new(
                ErrorCode::RoundClosed,
                format!("round {} no longer accepts reports", report.round),
            )),
            Some(PutOutcome::RoundFull) => Err(Reject::new(
                ErrorCode::RoundClosed,
                format!(
                    "round {} already holds max_clients = {} reports",
                    report.round,
                    self.core.task.max_clients()
                ),
            )),
        }
    }

    /// Refuses ([`ErrorCode::RoundClosed`]) a round outside the window, closed, or
    /// expired; opens it if it is new.
    fn check_round_takes_reports(&self, round: u32, now: Time) -> Result<(), Reject> {
        self.core.check_round_window(round)?;
        let state = self
            .core
            .store
            .open_round(round, now, self.core.scheme.dimension())
            .map_err(Reject::storage)?;
        let expires = state
            .opened_at
            .plus_secs(self.core.task.round_duration_secs());
        if state.status != RoundStatus::Open || now >= expires {
            return Err(Reject::new(
                ErrorCode::RoundClosed,
                format!("round {round} no longer accepts reports"),
            ));
        }
        Ok(())
    }

    /// Checks that the report comes from a registered, unrevoked client: its tag for
    /// the leader must verify under the key registered for its client id.
    fn authenticate(&self, report: &ReportView<'_>) -> Result<(), Reject> {
        let unauthorized = || Reject::new(ErrorCode::Unauthorized, "client not accepted");
        let client = self
            .core
            .store
            .client(report.client_id)
            .map_err(Reject::storage)?
            .ok_or_else(unauthorized)?;
        let task_id = self.core.task_id();
        let context = TagContext {
            task_id: &task_id,
            client_id: &report.client_id,
            round: report.round,
            report_id: &report.report_id,
            public_share: report.public_share,
            aggregator: 0,
        };
        if client.revoked || !client.key.verify(&context, &report.leader_tag) {
            return Err(unauthorized());
        }
        Ok(())
    }
}

/// An upload that passed [`Leader::check_upload`].
enum Checked<'a> {
    /// Answered without storing anything (a retry of a report already stored).
    Answered(UploadResponse),
    /// To be stored.
    Store(NewReport<'a>),
}
