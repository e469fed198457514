//! The journal step: append-only JSON lines under `data_dir`, one line per intent, per resolved
//! target and per outcome. Appends are fsynced before they are acknowledged, and a burst shares fsyncs:
//! the writer thread takes every line waiting, writes them, syncs once and acknowledges them all.

use crate::model::{Change, Template};
use crate::rules::Action;
use serde::{Deserialize, Serialize};
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, BufWriter, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tokio::sync::{mpsc, oneshot};

pub const JOURNAL_FILE: &str = "journal.jsonl";

/// The running journal is left alone below this size: ~6,000 actions at ~700 bytes each, so a
/// compaction (a read of the file, a rewrite of what is kept) is rare and quick.
pub const GROW_TO: u64 = 4 << 20;

mod compact;
pub mod history;

/// What compaction keeps of the journal (see `compact`): actions still needed and the last
/// `keep_actions`. It runs at start and again whenever the running journal has grown past
/// `grow_to` and to twice its size after the last compaction; the file is rewritten only when
/// that at least halves it, so compaction costs O(1) per line over the journal's life.
#[derive(Clone)]
pub struct Compaction {
    /// Unix milliseconds now (the pipeline's clock): cooldowns that end later are still needed.
    pub now_ms: Arc<dyn Fn() -> u64 + Send + Sync>,
    pub keep_actions: usize,
    /// Bytes below which the running journal is left alone.
    pub grow_to: u64,
}

impl Compaction {
    /// The size the running journal is compacted at, given its size after the last compaction.
    fn due_at(&self, compacted_len: u64) -> u64 {
        self.grow_to.max(compacted_len.saturating_mul(2))
    }
}

/// An admitted action, written before the webhook answers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Intent {
    pub id: String,
    /// Unix milliseconds (injected clock).
    pub time_ms: u64,
    pub rule: String,
    pub alert: String,
    pub fingerprint: String,
    pub starts_at: String,
    pub status: String,
    pub service: String,
    pub action: Action,
    pub cooldown_ms: u64,
    /// The absolute target when the service could be read at admission; `None` while Docker is
    /// unreachable (a `target` line follows once it is computed).
    pub change: Option<Change>,
}

/// How an admitted action ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// The swarm holds the target (sent now, or found already reached on a replay).
    Succeeded,
    /// Docker rejected the update.
    Failed,
    /// Docker stayed unreachable for `docker.retry_for`.
    Expired,
    /// A backup job did not finish within `backup.timeout`.
    TimedOut,
    /// At execution the action no longer applied (service gone, at bound, busy, not opted in).
    Skipped,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Succeeded => "succeeded",
            Outcome::Failed => "failed",
            Outcome::Expired => "expired",
            Outcome::TimedOut => "timed_out",
            Outcome::Skipped => "skipped",
        }
    }
}

/// One journal line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Entry {
    Intent(Intent),
    /// The absolute target computed at execution, written before the update is sent.
    Target {
        id: String,
        time_ms: u64,
        change: Change,
    },
    Outcome {
        id: String,
        time_ms: u64,
        outcome: Outcome,
        reason: String,
        change: Option<Change>,
    },
    /// A task template seen on a service for the first time, kept for rollback.
    Template {
        service: String,
        time_ms: u64,
        hash: u64,
        template: Template,
    },
}

impl Entry {
    /// The action an entry belongs to (templates belong to a service, not an action).
    pub fn id(&self) -> Option<&str> {
        match self {
            Entry::Intent(i) => Some(&i.id),
            Entry::Target { id, .. } | Entry::Outcome { id, .. } => Some(id),
            Entry::Template { .. } => None,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    #[error("journal {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("journal writer stopped")]
    Stopped,
}

struct Append {
    lines: Vec<u8>,
    /// One write failure answers a whole batch, and `io::Error` is not `Clone`: its kind (a full
    /// disk is `StorageFull`) and its message travel instead.
    done: oneshot::Sender<Result<(), (std::io::ErrorKind, String)>>,
}

/// The handle that appends; cheap to clone.
#[derive(Clone)]
pub struct Journal {
    tx: mpsc::UnboundedSender<Append>,
    path: PathBuf,
}

impl std::fmt::Debug for Journal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Journal").field("path", &self.path).finish()
    }
}

/// What a journal held when opened.
#[derive(Debug, Default)]
pub struct Replayed {
    pub entries: Vec<Entry>,
    /// Lines that could not be read (a torn tail from a crash, or damage), as `line: reason`.
    pub skipped: Vec<String>,
}

impl Journal {
    /// Open (creating `dir` and the file if needed), read what it holds, cut a torn last line,
    /// and start the writer thread. Tests and benchmarks only: `serve` opens it compacted.
    #[cfg(any(test, feature = "test-support"))]
    pub fn open(dir: &Path) -> Result<(Self, Replayed), JournalError> {
        Self::open_with(dir, None)
    }

    /// As `Journal::open` (test-support builds), compacting first; `Replayed` holds what was kept.
    pub fn open_compacted(
        dir: &Path,
        compaction: Compaction,
    ) -> Result<(Self, Replayed), JournalError> {
        Self::open_with(dir, Some(compaction))
    }

    fn open_with(
        dir: &Path,
        compaction: Option<Compaction>,
    ) -> Result<(Self, Replayed), JournalError> {
        let path = dir.join(JOURNAL_FILE);
        let io = |source| JournalError::Io {
            path: path.clone(),
            source,
        };
        std::fs::create_dir_all(dir).map_err(io)?;
        let mut file = OpenOptions::new()
            .create(true)
            .read(true)
            .append(true)
            .open(&path)
            .map_err(io)?;
        let (mut replayed, good_len) = read_entries(&file).map_err(io)?;
        if good_len < file.metadata().map_err(io)?.len() {
            tracing::warn!(path = %path.display(), "journal ends in a torn line (crash mid-write); cutting it");
            file.set_len(good_len).map_err(io)?;
            file.sync_data().map_err(io)?;
        }
        if let Some(compaction) = &compaction {
            if let Some(compacted) =
                compact_file(&path, &mut replayed.entries, compaction).map_err(io)?
            {
                file = compacted;
            }
        }
        file.seek(SeekFrom::End(0)).map_err(io)?;
        let len = file.metadata().map_err(io)?.len();
        let (tx, rx) = mpsc::unbounded_channel();
        let writer = Writer {
            file,
            path: path.clone(),
            len,
            torn: false,
            compaction: compaction.map(|c| (c, len)),
        };
        std::thread::Builder::new()
            .name("journal".into())
            .spawn(move || writer.run(rx))
            .map_err(io)?;
        Ok((Self { tx, path }, replayed))
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// A journal whose writer is gone: every append fails, as on a dead disk.
    #[cfg(test)]
    pub(crate) fn stopped() -> Self {
        let (tx, _) = mpsc::unbounded_channel();
        Self {
            tx,
            path: PathBuf::from("stopped/journal.jsonl"),
        }
    }

    /// Append entries; returns once they are on disk.
    pub async fn append(&self, entries: &[Entry]) -> Result<(), JournalError> {
        let mut lines = Vec::new();
        for entry in entries {
            serde_json::to_writer(&mut lines, entry).map_err(|e| JournalError::Io {
                path: self.path.clone(),
                source: e.into(),
            })?;
            lines.push(b'\n');
        }
        let (done, ack) = oneshot::channel();
        self.tx
            .send(Append { lines, done })
            .map_err(|_| JournalError::Stopped)?;
        match ack.await {
            Ok(Ok(())) => Ok(()),
            Ok(Err((kind, message))) => Err(JournalError::Io {
                path: self.path.clone(),
                source: std::io::Error::new(kind, message),
            }),
            Err(_) => Err(JournalError::Stopped),
        }
    }
}

/// Drop what `compaction` does not keep, when that at least halves the journal: `entries` then
/// holds what was kept and the rewritten file is returned.
fn compact_file(
    path: &Path,
    entries: &mut Vec<Entry>,
    compaction: &Compaction,
) -> std::io::Result<Option<File>> {
    let started = std::time::Instant::now();
    let keep = compact::kept(entries, (compaction.now_ms)(), compaction.keep_actions);
    let (total, kept) = (keep.len(), keep.iter().filter(|k| **k).count());
    if total - kept < kept.max(1) {
        return Ok(None);
    }
    let mut keep = keep.into_iter();
    entries.retain(|_| keep.next().unwrap_or(true));
    let file = rewrite(path, entries)?;
    let took_ms = crate::clock::duration_ms(started.elapsed());
    tracing::info!(path = %path.display(), kept, dropped = total - kept, took_ms, "journal compacted");
    Ok(Some(file))
}

/// Replace the journal with `entries`: written to a new file, synced, renamed over the old one and
/// the directory synced, so a crash leaves either the old journal or the new one. The handle to
/// the new file is opened before the rename: once the rename is done, the old handle writes to a
/// file nobody will read.
fn rewrite(path: &Path, entries: &[Entry]) -> std::io::Result<File> {
    let fresh = path.with_extension("jsonl.compacting");
    let mut out = BufWriter::new(File::create(&fresh)?);
    for entry in entries {
        serde_json::to_writer(&mut out, entry)?;
        out.write_all(b"\n")?;
    }
    out.into_inner().map_err(|e| e.into_error())?.sync_all()?;
    let file = OpenOptions::new().read(true).append(true).open(&fresh)?;
    std::fs::rename(&fresh, path)?;
    if let Some(dir) = path.parent() {
        if let Err(e) = File::open(dir).and_then(|d| d.sync_all()) {
            tracing::error!(path = %path.display(), error = %e, "journal compacted, but its directory could not be synced");
        }
    }
    Ok(file)
}

/// Read every complete line; returns the entries and the byte length up to the last newline.
fn read_entries(file: &File) -> std::io::Result<(Replayed, u64)> {
    let mut reader = BufReader::new(file);
    reader.seek(SeekFrom::Start(0))?;
    let mut replayed = Replayed::default();
    let mut good_len = 0u64;
    let mut line = Vec::new();
    let mut number = 0;
    loop {
        line.clear();
        let n = reader.read_until(b'\n', &mut line)?;
        if n == 0 {
            break;
        }
        number += 1;
        if line.last() != Some(&b'\n') {
            replayed
                .skipped
                .push(format!("{number}: torn last line ({n} bytes)"));
            break;
        }
        good_len += n as u64;
        match serde_json::from_slice::<Entry>(&line) {
            Ok(entry) => replayed.entries.push(entry),
            Err(e) => replayed.skipped.push(format!("{number}: {e}")),
        }
    }
    Ok((replayed, good_len))
}

/// The thread that owns the file: appends in batches, one sync per batch, and compacts the
/// running journal when it has grown (appends wait meanwhile, so none can be lost).
struct Writer {
    file: File,
    path: PathBuf,
    /// The length of what has been acknowledged: the file holds exactly this many good bytes,
    /// except after a failed write that could not be cut back yet (`torn`).
    len: u64,
    /// A failed write left bytes past `len` and cutting them failed too: nothing more is written
    /// until they are cut, or the next line would join the fragment.
    torn: bool,
    /// What to keep, and the journal's length after it was last compacted.
    compaction: Option<(Compaction, u64)>,
}

impl Writer {
    fn run(mut self, mut rx: mpsc::UnboundedReceiver<Append>) {
        while let Some(first) = rx.blocking_recv() {
            let mut batch = vec![first];
            while let Ok(more) = rx.try_recv() {
                batch.push(more);
            }
            let result = self.write(&batch);
            if let Err(e) = &result {
                tracing::error!(path = %self.path.display(), error = %e, "journal write failed");
            }
            for append in batch {
                let _ = append.done.send(
                    result
                        .as_ref()
                        .map(|_| ())
                        .map_err(|e| (e.kind(), e.to_string())),
                );
            }
            if result.is_ok() {
                self.compact_if_grown();
            }
        }
    }

    /// Write and sync a batch, or leave the file as it was: a full disk can take part of a
    /// buffer before `write_all` fails, and a failed sync says nothing of what reached the disk,
    /// so on any failure the file is cut back to the last acknowledged byte.
    fn write(&mut self, batch: &[Append]) -> std::io::Result<()> {
        self.cut_if_torn()?;
        let result = self.write_synced(batch);
        match &result {
            Ok(written) => self.len += written,
            Err(_) => {
                self.torn = true;
                if let Err(e) = self.cut_if_torn() {
                    tracing::error!(path = %self.path.display(), error = %e, "could not cut a failed journal write back; appends are refused until it can be");
                }
            }
        }
        result.map(drop)
    }

    fn write_synced(&mut self, batch: &[Append]) -> std::io::Result<u64> {
        let mut written = 0;
        for append in batch {
            self.file.write_all(&append.lines)?;
            written += append.lines.len() as u64;
        }
        self.file.sync_data()?;
        Ok(written)
    }

    /// Cut what a failed write left past the acknowledged length (the file is opened for
    /// appending, so the next write starts right there).
    fn cut_if_torn(&mut self) -> std::io::Result<()> {
        if self.torn {
            self.file.set_len(self.len)?;
            self.file.sync_data()?;
            self.torn = false;
        }
        Ok(())
    }

    fn compact_if_grown(&mut self) {
        let Some((compaction, compacted_len)) = &mut self.compaction else {
            return;
        };
        if self.len < compaction.due_at(*compacted_len) {
            return;
        }
        let result = read_entries(&self.file).and_then(|(mut replayed, _)| {
            compact_file(&self.path, &mut replayed.entries, compaction)
        });
        match result {
            Ok(Some(file)) => self.file = file,
            Ok(None) => {}
            Err(e) => {
                tracing::error!(path = %self.path.display(), error = %e, "journal compaction failed; appending to the uncompacted journal");
                let _ = std::fs::remove_file(self.path.with_extension("jsonl.compacting"));
            }
        }
        self.len = self.file.metadata().map_or(self.len, |m| m.len());
        // Not worth it yet, or failed: try again once the journal has doubled from here.
        *compacted_len = self.len;
        crate::memory::give_back(false);
    }
}

#[cfg(test)]
mod tests;
