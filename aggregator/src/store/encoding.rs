//! How both stores (SQLite, PostgreSQL) write values the database has no type for:
//! round statuses as small integers, report-id lists as concatenated 16-byte ids,
//! fixed-size ids and hashes as byte strings checked on the way back, a ledger entry's
//! RDP curve as its values in little-endian `f64`s. A value that
//! does not decode is reported as text; each store wraps it in its `Corrupt` error.

use cairn_dp::rdp::RdpCurve;
use cairn_protocol::ids::ReportId;
use cairn_protocol::store::{GarbageScope, RoundStatus};

/// The stored code of a round status.
pub(super) fn status_code(s: RoundStatus) -> i16 {
    match s {
        RoundStatus::Open => 0,
        RoundStatus::Closed => 1,
        RoundStatus::Released => 2,
    }
}

/// The round status of a stored code.
pub(super) fn status_of(code: i64) -> Option<RoundStatus> {
    match code {
        0 => Some(RoundStatus::Open),
        1 => Some(RoundStatus::Closed),
        2 => Some(RoundStatus::Released),
        _ => None,
    }
}

/// `bytes` as an array of exactly `N` bytes.
pub(super) fn to_array<const N: usize>(bytes: &[u8], what: &str) -> Result<[u8; N], String> {
    bytes
        .try_into()
        .map_err(|_| format!("{what}: {} bytes, expected {N}", bytes.len()))
}

/// A list of report ids as one byte string.
pub(super) fn ids_to_blob(ids: &[ReportId]) -> Vec<u8> {
    ids.iter().flat_map(|id| id.0).collect()
}

/// The inverse of [`ids_to_blob`].
pub(super) fn blob_to_ids(blob: &[u8]) -> Result<Vec<ReportId>, String> {
    if !blob.len().is_multiple_of(16) {
        return Err("report id list".into());
    }
    blob.chunks_exact(16)
        .map(|c| to_array::<16>(c, "report id").map(ReportId))
        .collect()
}

/// A ledger entry's RDP curve: its values at the accountant's orders, 8 bytes each.
pub(super) fn rdp_to_blob(curve: &RdpCurve) -> Vec<u8> {
    curve
        .values()
        .iter()
        .flat_map(|v| v.to_le_bytes())
        .collect()
}

/// The inverse of [`rdp_to_blob`], with the curve's own checks.
pub(super) fn blob_to_rdp(blob: &[u8]) -> Result<RdpCurve, String> {
    if !blob.len().is_multiple_of(8) {
        return Err("ledger rdp curve".into());
    }
    let values = blob
        .chunks_exact(8)
        .map(|c| f64::from_le_bytes(c.try_into().unwrap_or([0xff; 8])))
        .collect();
    RdpCurve::from_values(values).map_err(|e| format!("ledger rdp curve: {e}"))
}

/// Whether a ledger entry extends the stored head `(seq, hash)` of the last entry
/// (`None` for an empty ledger): the next sequence number and the head's hash.
pub(super) fn extends_chain(
    head: Option<(i64, Vec<u8>)>,
    entry: &cairn_protocol::ledger::LedgerEntry,
) -> bool {
    match head {
        None => entry.seq == 0 && entry.prev_hash == [0; 32],
        Some((seq, hash)) => {
            u64::try_from(seq).is_ok_and(|s| entry.seq == s + 1) && entry.prev_hash[..] == hash[..]
        }
    }
}

/// Retention ([`TaskStore::collect_garbage`](cairn_protocol::store::TaskStore)): the
/// statements that delete what only aggregation needed of the task's (`$1`) released
/// (`$3`) rounds up to `$2` — with [`GarbageScope::Collected`], only of those whose
/// collect answer is stored — in an order that keeps every reference valid. Written for
/// PostgreSQL; SQLite runs them with `?n` for `$n`.
pub(super) fn garbage(scope: GarbageScope) -> [String; 6] {
    let rounds = garbage_rounds(scope);
    [
        format!(
            "DELETE FROM prepared_jobs WHERE task = $1 AND job_id IN (SELECT job_id FROM \
             prepared_reports WHERE task = $1 AND round IN ({rounds}))"
        ),
        format!("DELETE FROM prepared_reports WHERE task = $1 AND round IN ({rounds})"),
        format!("DELETE FROM reports WHERE task = $1 AND round IN ({rounds})"),
        format!("DELETE FROM uploads WHERE task = $1 AND round IN ({rounds})"),
        format!("DELETE FROM jobs WHERE task = $1 AND round IN ({rounds})"),
        format!("DELETE FROM aggregated WHERE task = $1 AND round IN ({rounds})"),
    ]
}

/// The rounds [`garbage`] deletes from (the same parameters).
pub(super) fn garbage_rounds(scope: GarbageScope) -> String {
    let released = "SELECT round FROM rounds WHERE task = $1 AND round <= $2 AND status = $3";
    match scope {
        GarbageScope::Released => released.to_owned(),
        GarbageScope::Collected => {
            format!("{released} AND round IN (SELECT round FROM collect_responses WHERE task = $1)")
        }
    }
}
