//! A stored report's bytes as a file of its own, beside a file-backed database.
//!
//! A report is about 1 MB at d = 10^5. As a blob in SQLite it was written to the
//! write-ahead log, copied into the database file by a checkpoint, read back page by
//! page for its job and freed page by page: a quarter of the leader's CPU in a
//! 100-client round, most of it while holding the store's one connection, which every
//! other upload and job waits for (BENCHMARKS.md, "Where the 100-client round's CPU
//! goes"). As a file it is written and synced once, read once and unlinked, and the
//! connection is held only for the few small rows of the upload's checks.
//!
//! **Durability.** [`ReportFiles::write`] (and [`ReportFiles::write_many`], for a
//! batch of uploads) syncs the file and then its folder before it returns, so the file is on disk before the transaction that records its name
//! commits, and the leader acknowledges an upload only after that commit: an
//! acknowledged report's bytes are never lost. A crash in between leaves a file no row
//! names; so does a failed unlink after a job's commit.
//! [`ReportFiles::remove_orphans`], run when a node opens its database and by
//! `cairn db gc`, deletes such files once they are older than [`ORPHAN_AGE`] (a younger
//! one may belong to an upload in flight in another process), holding the database's
//! write lock; an upload checks that its file is still there under the same lock, just
//! before its row names it. An upload stalled past the age while a sweep removed its
//! file therefore fails, and is retried, rather than being acknowledged without bytes.
//!
//! A refused upload (a retry, a replay, a client's second report, a closed or full
//! round) is answered from the checks, made under the connection's lock before the
//! file is written, and again in the transaction; a file written for an upload that
//! its transaction then refused is removed. A failed commit keeps its file: the commit
//! may have reached the disk all the same. A batch writes no file for an upload that an
//! earlier upload of the batch will refuse; should that upload pass after all (another
//! connection's upload refused its earlier twin in between), its bytes go into
//! `report_payloads`, in the same transaction as its rows, and are read and deleted
//! from there like those of a schema-5 database.
//!
//! **Names.** `<report id, hex>-<16 hex digits>`, created with `create_new`, so two
//! uploads of one report id (a retry, a replay) never write to the same file; the name
//! is what the row records. A name read back from the database is checked to have that
//! form before it becomes a path.
//!
//! The files hold the leader's share in the clear, as the database did: the folder is
//! created readable by its owner only, and so is each file.

use std::collections::HashSet;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use cairn_protocol::ids::ReportId;

use super::StoreError;

/// How old a file no row names must be before [`ReportFiles::remove_orphans`] deletes it.
pub const ORPHAN_AGE: Duration = Duration::from_secs(3600);

/// The folder of a database's report files: `<database file>.reports`.
#[derive(Debug, Clone)]
pub struct ReportFiles {
    dir: PathBuf,
}

impl ReportFiles {
    /// The report files of the database at `db`.
    pub fn beside(db: &Path) -> Self {
        let mut dir = db.as_os_str().to_owned();
        dir.push(".reports");
        Self {
            dir: PathBuf::from(dir),
        }
    }

    /// The folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn error(&self, path: &Path, source: std::io::Error) -> StoreError {
        StoreError::ReportFile {
            path: path.to_path_buf(),
            source,
        }
    }

    /// Writes `bytes` to a new file for `report_id` and syncs it and the folder. The
    /// file is removed again when the returned [`PendingFile`] is dropped, unless it
    /// was kept ([`PendingFile::keep`]).
    pub fn write(&self, report_id: ReportId, bytes: &[u8]) -> Result<PendingFile<'_>, StoreError> {
        let mut files = self.write_many(&[(report_id, bytes)])?;
        files.pop().ok_or_else(|| {
            self.error(
                &self.dir,
                std::io::Error::other("a report file went unwritten"),
            )
        })
    }

    /// [`ReportFiles::write`] for several reports, in order: every file is written,
    /// then each is synced, then the folder once. Syncing after all the writes lets
    /// the file system flush them together (the first sync's journal commit carries
    /// the others' new blocks), and the folder's entries take one sync for the batch.
    /// On an error every file of the batch is removed.
    pub fn write_many(
        &self,
        reports: &[(ReportId, &[u8])],
    ) -> Result<Vec<PendingFile<'_>>, StoreError> {
        let mut written = Vec::with_capacity(reports.len());
        for (report_id, bytes) in reports {
            let (pending, mut file) = self.create(*report_id)?;
            let path = self.dir.join(&pending.name);
            // A failure from here on removes this file, and the batch's others, as
            // their `PendingFile`s drop.
            file.write_all(bytes).map_err(|e| self.error(&path, e))?;
            written.push((pending, file));
        }
        for (pending, file) in &written {
            file.sync_all()
                .map_err(|e| self.error(&self.dir.join(&pending.name), e))?;
        }
        // The files' entries in the folder must be on disk too before a row names them.
        File::open(&self.dir)
            .and_then(|d| d.sync_all())
            .map_err(|e| self.error(&self.dir, e))?;
        Ok(written.into_iter().map(|(pending, _)| pending).collect())
    }

    /// A new, empty file for `report_id` (and the folder, for the first report),
    /// removed again when its [`PendingFile`] drops.
    fn create(&self, report_id: ReportId) -> Result<(PendingFile<'_>, File), StoreError> {
        let mut made_dir = false;
        loop {
            let name = new_name(report_id);
            let path = self.dir.join(&name);
            match private_new_file(&path) {
                Ok(file) => {
                    let pending = PendingFile {
                        files: self,
                        name,
                        keep: false,
                    };
                    return Ok((pending, file));
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
                // The first report (or the folder was removed): make the folder, retry
                // once.
                Err(e) if e.kind() == std::io::ErrorKind::NotFound && !made_dir => {
                    create_private_dir(&self.dir).map_err(|e| self.error(&self.dir, e))?;
                    made_dir = true;
                }
                Err(e) => return Err(self.error(&path, e)),
            }
        }
    }

    /// The bytes of report `report_id`'s file `name` (as its row recorded it); `None`
    /// if there is no such file.
    pub fn read(&self, report_id: ReportId, name: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let path = self.path_of(name)?;
        if !name.starts_with(&hex::encode(report_id.0)) {
            return Err(self.error(
                &path,
                std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    "the file is not named for the report its row belongs to",
                ),
            ));
        }
        match std::fs::read(&path) {
            Ok(bytes) => Ok(Some(bytes)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(self.error(&path, e)),
        }
    }

    /// Fails unless the file `name` exists (checked under the database's write lock,
    /// just before a row names it).
    pub fn check_present(&self, name: &str) -> Result<(), StoreError> {
        let path = self.path_of(name)?;
        std::fs::metadata(&path)
            .map(drop)
            .map_err(|e| self.error(&path, e))
    }

    /// Removes the files `names` (rows that named them were deleted and committed). A
    /// file that cannot be removed stays until [`ReportFiles::remove_orphans`] finds it.
    pub fn remove<I: IntoIterator<Item = String>>(&self, names: I) {
        for name in names {
            let Ok(path) = self.path_of(&name) else {
                tracing::warn!(name, "a report file name in the database is malformed");
                continue;
            };
            match std::fs::remove_file(&path) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => {
                    tracing::warn!(path = %path.display(), error = %e, "could not remove a report file");
                }
            }
        }
    }

    /// Removes the files of the folder that no name of `referenced` names and that were
    /// last modified more than `older_than` ago; returns how many it removed. The
    /// caller holds the database's write lock, which an upload takes to check that its
    /// file is there and name it. Housekeeping: a file it cannot remove (or a folder it
    /// cannot read) is logged and left.
    pub fn remove_orphans(&self, referenced: &HashSet<String>, older_than: Duration) -> usize {
        let entries = match std::fs::read_dir(&self.dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return 0,
            Err(e) => {
                tracing::warn!(dir = %self.dir.display(), error = %e, "could not list the report files");
                return 0;
            }
        };
        let now = SystemTime::now();
        let mut removed = 0;
        for entry in entries.flatten() {
            let Some(name) = entry.file_name().to_str().map(str::to_owned) else {
                continue;
            };
            if !is_report_file_name(&name) || referenced.contains(&name) {
                continue;
            }
            let old_enough = entry
                .metadata()
                .and_then(|m| m.modified())
                .ok()
                .and_then(|modified| now.duration_since(modified).ok())
                .is_some_and(|age| age > older_than);
            if old_enough {
                match std::fs::remove_file(entry.path()) {
                    Ok(()) => removed += 1,
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => {
                        tracing::warn!(path = %entry.path().display(), error = %e, "could not remove a report file no row names");
                    }
                }
            }
        }
        removed
    }

    fn path_of(&self, name: &str) -> Result<PathBuf, StoreError> {
        if is_report_file_name(name) {
            Ok(self.dir.join(name))
        } else {
            Err(self.error(
                &self.dir.join(name),
                std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    "not the name of a report file",
                ),
            ))
        }
    }
}

/// A report file written for an upload whose row is not committed yet: removed when
/// dropped, unless kept.
#[derive(Debug)]
pub struct PendingFile<'a> {
    files: &'a ReportFiles,
    name: String,
    keep: bool,
}

impl PendingFile<'_> {
    /// The file's name, for the row.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Keeps the file: a row names it now, or may (a commit that failed may still have
    /// reached the disk; if not, the file is an orphan).
    pub fn keep(mut self) {
        self.keep = true;
    }
}

impl Drop for PendingFile<'_> {
    fn drop(&mut self) {
        if !self.keep {
            self.files.remove([std::mem::take(&mut self.name)]);
        }
    }
}

/// `<report id, 32 hex digits>-<16 hex digits>`.
fn is_report_file_name(name: &str) -> bool {
    let b = name.as_bytes();
    b.len() == 32 + 1 + 16
        && b[32] == b'-'
        && b.iter()
            .enumerate()
            .all(|(i, c)| i == 32 || matches!(c, b'0'..=b'9' | b'a'..=b'f'))
}

/// A name for a new file of `report_id`: its id and 64 bits that differ from one call
/// to the next in this process and, by the clock and the process id, from other
/// processes and earlier runs (`create_new` refuses a name taken all the same).
fn new_name(report_id: ReportId) -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let count = COUNTER.fetch_add(1, Ordering::Relaxed);
    let nanos = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    let unique = nanos ^ (u64::from(std::process::id()) << 40) ^ count.rotate_left(20);
    format!("{}-{unique:016x}", hex::encode(report_id.0))
}

/// Creates the folder if it is missing, readable by its owner only, and syncs its
/// parent so that the new entry survives a power loss.
#[cfg(unix)]
fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    match std::fs::DirBuilder::new().mode(0o700).create(dir) {
        // Made a moment ago by another writer (a second process on the same database)
        // that may not have synced the parent yet: a report written into the folder
        // must not be acknowledged before its folder's entry is durable, so sync here
        // too.
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(e),
        Ok(()) => {}
    }
    match dir.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => File::open(parent)?.sync_all(),
        _ => File::open(".")?.sync_all(),
    }
}

#[cfg(not(unix))]
fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)
}

fn private_new_file(path: &Path) -> std::io::Result<File> {
    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    options.open(path)
}
