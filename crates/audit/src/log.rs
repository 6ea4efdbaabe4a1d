//! The writing side: [`AuditLog`] (owner), [`Auditor`] (cheap handle for every component) and
//! the group-commit writer thread.
//!
//! Callers encode their record (JSON, redaction) on their own thread and send it over a
//! channel. One writer thread drains the channel into a batch, assigns sequence numbers,
//! chains and frames the records, issues **one write and one fsync per batch**, then
//! acknowledges every waiter of the batch. While a batch is being fsynced the next one
//! accumulates, so a burst of thousands of concurrent records costs a handful of fsyncs.
//!
//! Waking the writer: a record someone waits for ([`Auditor::record`]), a flush, a checkpoint
//! or the shutdown wakes it at once. Routine records ([`Auditor::record_routine`]) do not wake
//! a busy writer: it picks them up every [`ROUTINE_WAKE_INTERVAL`] (or with the next awaited
//! record, or as soon as [`ROUTINE_WAKE_BACKLOG`] of them wait), so a steady stream of routine
//! records costs neither a thread wakeup nor an fsync per record, only one batch per interval.
//! Only a writer that found nothing to do is woken by the first routine record after it.
//! Nobody waits for a routine record, so nothing acknowledged changes; the shutdown still
//! writes every record queued before it.
//!
//! Fail closed: once a write or fsync fails the writer refuses every later record with
//! [`ErrorKind::Failed`] (the state of a file after a failed fsync is unknown); callers of
//! [`Auditor::record`] refuse their operation. Reopening the log recovers.
//!
//! Checkpoints are signed by the writer thread after a batch is durable, every
//! [`AuditOptions::checkpoint_interval`] when the log grew, on demand and at shutdown; each is
//! also copied to [`AuditOptions::witness`] when set (rollback detection).

use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io::Write as _;
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver, Sender, TryRecvError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use tokio::sync::oneshot;

use crate::checkpoint::{self, Checkpoint, NoteError};
use crate::error::{AuditError, ErrorKind, Result};
use crate::keys::{self, Signer, VerifierKey};
use crate::merkle::{Frontier, Hash, leaf_hash};
use crate::record::{Decision, Record, write_payload};
use crate::recover::{Anchor, recover};
use crate::redact::Redactor;
use crate::segment::{self, FRAME_HEADER_LEN, HEADER_LEN, MAX_RECORD_BYTES};
use crate::time::Timestamp;

/// Name of the lock file that keeps a second writer out.
pub const LOCK_FILE: &str = "LOCK";

/// Most records in one batch.
const MAX_BATCH: usize = 16_384;
/// Routine records that may wait in the queue before new allowed ones are dropped.
const ROUTINE_QUEUE_LIMIT: usize = 1 << 18;
/// How often a busy writer picks up routine records that nobody waits for.
pub const ROUTINE_WAKE_INTERVAL: Duration = Duration::from_millis(10);
/// Routine records waiting in the queue that wake the writer before the interval is over.
pub const ROUTINE_WAKE_BACKLOG: usize = 4096;

/// What to do with routine (allowed) records given to [`Auditor::record_routine`].
/// Denied and failed actions are always recorded.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum RoutinePolicy {
    /// Record every routine record (buffered, not waited for).
    All,
    /// Record no allowed routine record.
    None,
    /// Record this fraction (0.0..=1.0) of allowed routine records.
    Sample(f64),
}

/// Options of [`AuditLog::open`].
#[derive(Clone, Debug)]
pub struct AuditOptions {
    /// How often a signed checkpoint is written while the log grows (default 10 s).
    pub checkpoint_interval: Duration,
    /// How long the writer waits for more records after the first of a batch (default 0:
    /// batches form naturally while the previous fsync runs).
    pub group_commit_max_delay: Duration,
    /// Size at which a new segment file is started (default 64 MiB, at least 4 KiB).
    pub segment_max_bytes: u64,
    /// Sampling of routine allowed records (default [`RoutinePolicy::All`]).
    pub routine: RoutinePolicy,
    /// A file outside the log directory (ideally another disk or host mount) that always holds
    /// a copy of the newest checkpoint. Open refuses a log that is shorter than, or diverges
    /// from, the witness (rollback), and `verify` checks it. Default: none.
    pub witness: Option<PathBuf>,
}

impl Default for AuditOptions {
    fn default() -> Self {
        Self {
            checkpoint_interval: Duration::from_secs(10),
            group_commit_max_delay: Duration::ZERO,
            segment_max_bytes: 64 << 20,
            routine: RoutinePolicy::All,
            witness: None,
        }
    }
}

impl AuditOptions {
    fn validate(&self) -> Result<()> {
        let bad = |name, reason: &str| -> Result<()> {
            Err(ErrorKind::InvalidOption {
                name,
                reason: reason.to_owned(),
            }
            .into())
        };
        if self.checkpoint_interval.is_zero() {
            return bad("checkpoint_interval", "must be greater than zero");
        }
        if self.segment_max_bytes < 4096 {
            return bad("segment_max_bytes", "must be at least 4096");
        }
        if let RoutinePolicy::Sample(p) = self.routine
            && !(0.0..=1.0).contains(&p)
        {
            return bad("routine", "sample rate must be within 0.0..=1.0");
        }
        Ok(())
    }
}

/// Proof that a record is durable: its id and leaf hash.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Receipt {
    /// Sequence number = leaf index = id for `show` and `prove`.
    pub seq: u64,
    /// The record's Merkle leaf hash.
    pub leaf_hash: Hash,
}

/// Counters of the log.
#[derive(Debug, Default)]
pub struct Stats {
    pending_routine: AtomicUsize,
    dropped_routine: AtomicU64,
    sampled_out: AtomicU64,
    batches: AtomicU64,
    records: AtomicU64,
    failed: AtomicBool,
}

/// A snapshot of [`Stats`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct StatsSnapshot {
    /// Routine records dropped because the queue was full.
    pub dropped_routine: u64,
    /// Routine records left out by sampling.
    pub sampled_out: u64,
    /// Batches written (= fsyncs of segment data).
    pub batches: u64,
    /// Records written.
    pub records: u64,
    /// Whether the writer failed and refuses records.
    pub failed: bool,
}

type Ack<T> = oneshot::Sender<Result<T>>;

enum Msg {
    Append {
        body: Vec<u8>,
        routine: bool,
        ack: Option<Ack<Receipt>>,
    },
    Flush(Ack<u64>),
    Checkpoint(Ack<Option<String>>),
    Shutdown(Ack<Option<String>>),
}

struct Shared {
    tx: Sender<Msg>,
    /// The writer thread (woken with `unpark`).
    writer: std::thread::Thread,
    /// Set by the writer before it sleeps with nothing to do: the next routine record wakes it.
    idle: Arc<AtomicBool>,
    redactor: Redactor,
    routine: RoutinePolicy,
    counter: AtomicU64,
    stats: Arc<Stats>,
    verifier: VerifierKey,
}

/// A handle to the audit log for a component: cheap to clone, `Send + Sync`.
#[derive(Clone)]
pub struct Auditor {
    shared: Arc<Shared>,
}

impl fmt::Debug for Auditor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Auditor")
            .field("log", &self.shared.verifier.name)
            .field("routine", &self.shared.routine)
            .finish_non_exhaustive()
    }
}

fn closed() -> AuditError {
    ErrorKind::Closed.into()
}

impl Shared {
    /// Sends `msg` and wakes the writer (someone waits for the answer).
    fn send_now(&self, msg: Msg) -> Result<()> {
        self.tx.send(msg).map_err(|_| closed())?;
        self.writer.unpark();
        Ok(())
    }

    /// After queueing a routine record (`pending` were queued before it): wakes the writer
    /// only if it sleeps with nothing to do, or the backlog reached [`ROUTINE_WAKE_BACKLOG`].
    fn nudge(&self, pending: usize) {
        // Pairs with the fence in `Writer::sleep_idle`: either the writer sees the record, or
        // this sees `idle`.
        std::sync::atomic::fence(Ordering::SeqCst);
        if self.idle.swap(false, Ordering::SeqCst) || pending + 1 == ROUTINE_WAKE_BACKLOG {
            self.writer.unpark();
        }
    }
}

impl Auditor {
    fn encode(&self, mut rec: Record) -> Result<Vec<u8>> {
        rec.redact_pending(&self.shared.redactor);
        let body = rec.to_canonical_json().map_err(|e| {
            AuditError::from(ErrorKind::Record {
                what: "encode".into(),
                reason: e.to_string(),
            })
        })?;
        let max = MAX_RECORD_BYTES - 128;
        if body.len() > max {
            return Err(ErrorKind::RecordTooLarge {
                size: body.len(),
                max,
            }
            .into());
        }
        Ok(body)
    }

    fn send_append(&self, rec: Record) -> Result<oneshot::Receiver<Result<Receipt>>> {
        let body = self.encode(rec)?;
        let (tx, rx) = oneshot::channel();
        self.shared.send_now(Msg::Append {
            body,
            routine: false,
            ack: Some(tx),
        })?;
        Ok(rx)
    }

    /// Appends a record and waits until it is durable (fsynced).
    ///
    /// Use it for sensitive operations and denials, and refuse the operation when it fails
    /// (fail closed). If the returned future is dropped the record is still written.
    ///
    /// # Errors
    /// [`ErrorKind::Failed`] after a write failure, [`ErrorKind::Closed`] after shutdown,
    /// [`ErrorKind::RecordTooLarge`].
    pub async fn record(&self, rec: Record) -> Result<Receipt> {
        let rx = self.send_append(rec)?;
        rx.await.map_err(|_| closed())?
    }

    /// Like [`Auditor::record`], blocking the current thread. Do not call it from an async
    /// task (it would block the executor); it is meant for plain threads.
    ///
    /// # Errors
    /// As [`Auditor::record`].
    pub fn record_blocking(&self, rec: Record) -> Result<Receipt> {
        let rx = self.send_append(rec)?;
        rx.blocking_recv().map_err(|_| closed())?
    }

    /// Queues a routine record without waiting. Allowed records are subject to the
    /// [`RoutinePolicy`] and dropped (and counted) if the queue is very long; denied and
    /// failed records are always queued.
    pub fn record_routine(&self, rec: Record) {
        let s = &self.shared;
        let must = rec.decision != Decision::Allow;
        if !must {
            let keep = match s.routine {
                RoutinePolicy::All => true,
                RoutinePolicy::None => false,
                RoutinePolicy::Sample(p) => {
                    let n = s.counter.fetch_add(1, Ordering::Relaxed);
                    // splitmix64 of a counter: uniform, cheap, no shared RNG state.
                    let mut z = n.wrapping_add(0x9E37_79B9_7F4A_7C15);
                    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
                    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
                    z ^= z >> 31;
                    (z >> 11) as f64 / (1u64 << 53) as f64 <= p && p > 0.0
                }
            };
            if !keep {
                s.stats.sampled_out.fetch_add(1, Ordering::Relaxed);
                return;
            }
            if s.stats.pending_routine.load(Ordering::Relaxed) >= ROUTINE_QUEUE_LIMIT {
                s.stats.dropped_routine.fetch_add(1, Ordering::Relaxed);
                return;
            }
        }
        let body = match self.encode(rec) {
            Ok(b) => b,
            Err(e) => {
                tracing::error!(error = %e, "audit record could not be encoded");
                return;
            }
        };
        let pending = s.stats.pending_routine.fetch_add(1, Ordering::Relaxed);
        if s.tx
            .send(Msg::Append {
                body,
                routine: true,
                ack: None,
            })
            .is_err()
        {
            s.stats.pending_routine.fetch_sub(1, Ordering::Relaxed);
            if must {
                tracing::error!("audit log closed: a denied or failed action was not recorded");
            }
            return;
        }
        s.nudge(pending);
    }

    /// The redacted form (`hmac-sha256:<hex>`) of a sensitive value under this log's key.
    #[must_use]
    pub fn redact(&self, value: &str) -> String {
        self.shared.redactor.redact(value)
    }

    /// Waits until every record queued before this call is durable; returns the log size.
    ///
    /// # Errors
    /// If the log failed or is closed.
    pub async fn flush(&self) -> Result<u64> {
        let (tx, rx) = oneshot::channel();
        self.shared.send_now(Msg::Flush(tx))?;
        rx.await.map_err(|_| closed())?
    }

    /// Writes a signed checkpoint now (if the log grew since the last one) and returns the
    /// newest checkpoint note, if any.
    ///
    /// # Errors
    /// If the log failed or is closed, or the checkpoint cannot be written.
    pub async fn checkpoint(&self) -> Result<Option<String>> {
        let (tx, rx) = oneshot::channel();
        self.shared.send_now(Msg::Checkpoint(tx))?;
        rx.await.map_err(|_| closed())?
    }

    /// The key that verifies this log's checkpoints.
    #[must_use]
    pub fn verifier_key(&self) -> &VerifierKey {
        &self.shared.verifier
    }

    /// Counters.
    #[must_use]
    pub fn stats(&self) -> StatsSnapshot {
        let s = &self.shared.stats;
        StatsSnapshot {
            dropped_routine: s.dropped_routine.load(Ordering::Relaxed),
            sampled_out: s.sampled_out.load(Ordering::Relaxed),
            batches: s.batches.load(Ordering::Relaxed),
            records: s.records.load(Ordering::Relaxed),
            failed: s.failed.load(Ordering::Relaxed),
        }
    }
}

/// The open audit log: owns the writer thread. Hand [`AuditLog::auditor`] handles to the
/// components and call [`AuditLog::shutdown`] at the end.
pub struct AuditLog {
    auditor: Auditor,
    thread: Option<JoinHandle<()>>,
    dir: PathBuf,
}

impl fmt::Debug for AuditLog {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuditLog")
            .field("dir", &self.dir)
            .field("auditor", &self.auditor)
            .finish_non_exhaustive()
    }
}

impl AuditLog {
    /// Opens (creating if needed) the log in `dir`: creates the directory (0700) and keys
    /// (0600), takes the writer lock, re-hashes and checks the segments, cuts a torn tail and
    /// starts the writer thread.
    ///
    /// # Errors
    /// Invalid options, I/O errors, [`ErrorKind::Locked`] if another process writes the log,
    /// [`ErrorKind::Corrupt`] if the log was damaged or rolled back.
    pub fn open(dir: impl AsRef<Path>, opts: AuditOptions) -> Result<Self> {
        opts.validate()?;
        let dir = dir.as_ref().to_owned();
        keys::ensure_private_dir(&dir)?;
        let lock_path = dir.join(LOCK_FILE);
        let lock = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(&lock_path)
            .map_err(|e| AuditError::io("open", &lock_path, e))?;
        // `File::try_lock` (Rust 1.89) is the only safe-Rust advisory lock available.
        let locked = lock.try_lock();
        locked.map_err(|_| {
            AuditError::from(ErrorKind::Locked {
                path: lock_path.clone(),
            })
        })?;
        let signer = Signer::load(&dir, true)?;
        let redactor = Redactor::new(&keys::redaction_key(&dir, true)?);
        let verifier = signer.verifier().clone();

        let newest = checkpoint::newest_valid(&dir, &verifier)?;
        let witness = match &opts.witness {
            Some(w) => read_witness(w, &verifier)?,
            None => None,
        };
        let mut anchors = Vec::new();
        if let Some((cp, _)) = &newest {
            anchors.push(Anchor {
                label: format!("checkpoint {}", checkpoint::file_name(cp.size)),
                checkpoint: cp,
            });
        }
        if let (Some(cp), Some(w)) = (&witness, &opts.witness) {
            anchors.push(Anchor {
                label: format!("witness {}", w.display()),
                checkpoint: cp,
            });
        }
        let rec = recover(&dir, &anchors)?;
        let (seg_first, seg_len) = match &rec.last {
            Some((s, len)) => (s.first, *len),
            None => {
                create_segment(&dir, 0)?;
                (0, HEADER_LEN as u64)
            }
        };
        let seg_path = dir.join(segment::file_name(seg_first));
        let file = OpenOptions::new()
            .append(true)
            .open(&seg_path)
            .map_err(|e| AuditError::io("open", &seg_path, e))?;

        let stats = Arc::new(Stats::default());
        let routine = opts.routine;
        let (tx, rx) = mpsc::channel();
        let last_ckpt_size = newest.as_ref().map_or(0, |(cp, _)| cp.size);
        let writer = Writer {
            dir: dir.clone(),
            opts,
            signer,
            file,
            seg_path,
            seg_len,
            frontier: rec.frontier,
            prev: rec.prev,
            buf: Vec::with_capacity(1 << 20),
            failed: None,
            last_ckpt_size,
            last_ckpt_at: Instant::now(),
            last_note: newest.map(|(_, t)| t),
            stats: Arc::clone(&stats),
            _lock: lock,
        };
        let idle = Arc::new(AtomicBool::new(false));
        let writer_idle = Arc::clone(&idle);
        let thread = std::thread::Builder::new()
            .name("rampart-audit-writer".into())
            .spawn(move || writer.run(&rx, &writer_idle))
            .map_err(|e| AuditError::io("spawn writer thread for", &dir, e))?;
        Ok(Self {
            auditor: Auditor {
                shared: Arc::new(Shared {
                    tx,
                    writer: thread.thread().clone(),
                    idle,
                    redactor,
                    routine,
                    counter: AtomicU64::new(0),
                    stats,
                    verifier,
                }),
            },
            thread: Some(thread),
            dir,
        })
    }

    /// A handle for a component.
    #[must_use]
    pub fn auditor(&self) -> Auditor {
        self.auditor.clone()
    }

    /// The log directory.
    #[must_use]
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The key that verifies this log's checkpoints.
    #[must_use]
    pub fn verifier_key(&self) -> &VerifierKey {
        self.auditor.verifier_key()
    }

    /// Writes a final checkpoint, stops the writer and releases the lock. Returns the newest
    /// checkpoint note. Auditor handles refuse records afterwards ([`ErrorKind::Closed`]).
    ///
    /// # Errors
    /// If the log failed earlier, or the final checkpoint cannot be written.
    pub async fn shutdown(mut self) -> Result<Option<String>> {
        let (tx, rx) = oneshot::channel();
        self.auditor.shared.send_now(Msg::Shutdown(tx))?;
        let res = rx.await.map_err(|_| closed())?;
        if let Some(t) = self.thread.take() {
            // The writer exits right after acknowledging the shutdown.
            let _ = tokio::task::spawn_blocking(move || t.join()).await;
        }
        res
    }
}

impl Drop for AuditLog {
    fn drop(&mut self) {
        if self.thread.is_some() {
            let (tx, _rx) = oneshot::channel();
            let _ = self.auditor.shared.send_now(Msg::Shutdown(tx));
        }
    }
}

fn read_witness(path: &Path, key: &VerifierKey) -> Result<Option<Checkpoint>> {
    let text = match fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(AuditError::io("read", path, e)),
    };
    match checkpoint::verify_note(&text, key) {
        Ok(cp) => Ok(Some(cp)),
        Err(NoteError::UnknownKey | NoteError::WrongOrigin(_)) => Err(AuditError::checkpoint(
            format!("witness {}", path.display()),
            "signed by another key: the log or its key was replaced (remove the witness only if the log was reset on purpose)",
        )),
        Err(e) => Err(AuditError::checkpoint(
            format!("witness {}", path.display()),
            e.to_string(),
        )),
    }
}

fn create_segment(dir: &Path, first: u64) -> Result<File> {
    let path = dir.join(segment::file_name(first));
    let mut f = OpenOptions::new()
        .append(true)
        .create_new(true)
        .mode(0o600)
        .open(&path)
        .map_err(|e| AuditError::io("create", &path, e))?;
    f.write_all(&segment::encode_header(first))
        .and_then(|()| f.sync_all())
        .map_err(|e| AuditError::io("write", &path, e))?;
    keys::sync_dir(dir)?;
    Ok(f)
}

struct Writer {
    dir: PathBuf,
    opts: AuditOptions,
    signer: Signer,
    file: File,
    seg_path: PathBuf,
    seg_len: u64,
    frontier: Frontier,
    prev: Hash,
    buf: Vec<u8>,
    failed: Option<String>,
    last_ckpt_size: u64,
    last_ckpt_at: Instant,
    last_note: Option<String>,
    stats: Arc<Stats>,
    _lock: File,
}

impl Writer {
    fn run(mut self, rx: &Receiver<Msg>, idle: &AtomicBool) {
        let mut batch = Vec::with_capacity(1024);
        // Whether the last sleep was short and found work: then sleep short again (routine
        // records keep coming without waking the writer); otherwise sleep as idle.
        let mut busy = false;
        loop {
            match rx.try_recv() {
                Ok(m) => batch.push(m),
                Err(TryRecvError::Disconnected) => {
                    let _ = self.checkpoint_now();
                    return;
                }
                Err(TryRecvError::Empty) => {
                    self.maybe_checkpoint();
                    let until_checkpoint =
                        if self.frontier.size() > self.last_ckpt_size && self.failed.is_none() {
                            (self.last_ckpt_at + self.opts.checkpoint_interval)
                                .saturating_duration_since(Instant::now())
                        } else {
                            Duration::from_secs(3600)
                        };
                    if busy {
                        std::thread::park_timeout(until_checkpoint.min(ROUTINE_WAKE_INTERVAL));
                        busy = false;
                    } else if self.sleep_idle(idle, until_checkpoint) {
                        busy = true;
                    }
                    continue;
                }
            }
            busy = true;
            let deadline = Instant::now() + self.opts.group_commit_max_delay;
            while batch.len() < MAX_BATCH {
                match rx.try_recv() {
                    Ok(m) => batch.push(m),
                    Err(TryRecvError::Disconnected) => break,
                    Err(TryRecvError::Empty) => {
                        let left = deadline.saturating_duration_since(Instant::now());
                        if left.is_zero() {
                            break;
                        }
                        std::thread::park_timeout(left);
                    }
                }
            }
            if self.process(&mut batch) {
                return;
            }
            self.maybe_checkpoint();
        }
    }

    /// Sleeps with nothing to do, for at most `timeout`, until a record (routine ones too)
    /// arrives; returns true without sleeping when a routine record is already on its way.
    fn sleep_idle(&self, idle: &AtomicBool, timeout: Duration) -> bool {
        idle.store(true, Ordering::SeqCst);
        // Pairs with the fence in `Shared::nudge`: a record queued before this is seen by
        // `peek`, one queued after it sees `idle` and wakes the writer.
        std::sync::atomic::fence(Ordering::SeqCst);
        if self.stats.pending_routine.load(Ordering::SeqCst) > 0 {
            idle.store(false, Ordering::SeqCst);
            return true;
        }
        std::thread::park_timeout(timeout);
        idle.store(false, Ordering::SeqCst);
        false
    }

    /// Writes one batch; returns true on shutdown.
    fn process(&mut self, batch: &mut Vec<Msg>) -> bool {
        let mut acks: Vec<(Ack<Receipt>, Receipt)> = Vec::new();
        let mut controls = Vec::new();
        let mut routine_done = 0usize;
        let mut appended = 0u64;
        let mut result = Ok(());
        self.buf.clear();
        for msg in batch.drain(..) {
            match msg {
                Msg::Append { body, routine, ack } => {
                    if routine {
                        routine_done += 1;
                    }
                    if let Some(reason) = &self.failed {
                        if let Some(a) = ack {
                            let _ = a.send(Err(ErrorKind::Failed {
                                reason: reason.clone(),
                            }
                            .into()));
                        }
                        continue;
                    }
                    if result.is_ok() {
                        result = self.append(&body, ack, &mut acks);
                        appended += 1;
                    } else if let Some(a) = ack {
                        acks.push((
                            a,
                            Receipt {
                                seq: u64::MAX,
                                leaf_hash: [0; 32],
                            },
                        ));
                    }
                }
                other => controls.push(other),
            }
        }
        if result.is_ok() && !self.buf.is_empty() {
            result = self.write_buf();
        }
        if routine_done > 0 {
            self.stats
                .pending_routine
                .fetch_sub(routine_done, Ordering::Relaxed);
        }
        match result {
            Ok(()) => {
                if appended > 0 {
                    self.stats.batches.fetch_add(1, Ordering::Relaxed);
                    self.stats.records.fetch_add(appended, Ordering::Relaxed);
                }
                for (a, r) in acks {
                    let _ = a.send(Ok(r));
                }
            }
            Err(e) => {
                let reason = e.to_string();
                tracing::error!(error = %reason, "audit log write failed: refusing records from now on");
                self.stats.failed.store(true, Ordering::Relaxed);
                for (a, _) in acks {
                    let _ = a.send(Err(ErrorKind::Failed {
                        reason: reason.clone(),
                    }
                    .into()));
                }
                self.failed = Some(reason);
            }
        }
        let mut shutdown = false;
        for c in controls {
            match c {
                Msg::Flush(a) => {
                    let _ = a.send(self.check_ok().map(|()| self.frontier.size()));
                }
                Msg::Checkpoint(a) => {
                    let _ = a.send(self.checkpoint_now());
                }
                Msg::Shutdown(a) => {
                    let _ = a.send(self.checkpoint_now());
                    shutdown = true;
                }
                Msg::Append { .. } => {}
            }
        }
        shutdown
    }

    fn check_ok(&self) -> Result<()> {
        match &self.failed {
            Some(reason) => Err(ErrorKind::Failed {
                reason: reason.clone(),
            }
            .into()),
            None => Ok(()),
        }
    }

    fn append(
        &mut self,
        body: &[u8],
        ack: Option<Ack<Receipt>>,
        acks: &mut Vec<(Ack<Receipt>, Receipt)>,
    ) -> Result<()> {
        let frame_est = (FRAME_HEADER_LEN + body.len() + 100) as u64;
        let pending = self.buf.len() as u64;
        if self.seg_len + pending + frame_est > self.opts.segment_max_bytes
            && self.seg_len + pending > HEADER_LEN as u64
            && let Err(e) = self.rotate()
        {
            if let Some(a) = ack {
                // Answered with the error by the caller of `append`.
                acks.push((
                    a,
                    Receipt {
                        seq: u64::MAX,
                        leaf_hash: [0; 32],
                    },
                ));
            }
            return Err(e);
        }
        let seq = self.frontier.size();
        let start = self.buf.len();
        self.buf.extend_from_slice(&[0u8; FRAME_HEADER_LEN]);
        write_payload(&mut self.buf, seq, &self.prev, body);
        let leaf = leaf_hash(self.buf.get(start + FRAME_HEADER_LEN..).unwrap_or_default());
        segment::seal_frame(&mut self.buf, start);
        self.frontier.push(leaf);
        self.prev = leaf;
        if let Some(a) = ack {
            acks.push((
                a,
                Receipt {
                    seq,
                    leaf_hash: leaf,
                },
            ));
        }
        Ok(())
    }

    /// One write and one fsync of the pending frames.
    fn write_buf(&mut self) -> Result<()> {
        self.file
            .write_all(&self.buf)
            .map_err(|e| AuditError::io("write", &self.seg_path, e))?;
        self.file
            .sync_data()
            .map_err(|e| AuditError::io("fsync", &self.seg_path, e))?;
        self.seg_len += self.buf.len() as u64;
        self.buf.clear();
        Ok(())
    }

    fn rotate(&mut self) -> Result<()> {
        if !self.buf.is_empty() {
            self.write_buf()?;
        }
        let first = self.frontier.size();
        let file = create_segment(&self.dir, first)?;
        self.file = file;
        self.seg_path = self.dir.join(segment::file_name(first));
        self.seg_len = HEADER_LEN as u64;
        Ok(())
    }

    fn maybe_checkpoint(&mut self) {
        if self.failed.is_none()
            && self.frontier.size() > self.last_ckpt_size
            && self.last_ckpt_at.elapsed() >= self.opts.checkpoint_interval
            && let Err(e) = self.checkpoint_now()
        {
            tracing::error!(error = %e, "audit checkpoint failed");
            // Try again after another interval.
            self.last_ckpt_at = Instant::now();
        }
    }

    fn checkpoint_now(&mut self) -> Result<Option<String>> {
        self.check_ok()?;
        let size = self.frontier.size();
        if size == 0 || (size == self.last_ckpt_size && self.last_note.is_some()) {
            return Ok(self.last_note.clone());
        }
        let cp = Checkpoint {
            origin: self.signer.verifier().name.clone(),
            size,
            root: self.frontier.root(),
            timestamp: Timestamp::now(),
        };
        let text = cp.sign(&self.signer);
        checkpoint::store(&self.dir, size, &text)?;
        if let Some(w) = &self.opts.witness {
            if let Some(parent) = w.parent().filter(|p| !p.as_os_str().is_empty()) {
                keys::ensure_private_dir(parent)?;
            }
            checkpoint::write_atomic(w, &text)?;
        }
        self.last_ckpt_size = size;
        self.last_ckpt_at = Instant::now();
        self.last_note = Some(text.clone());
        Ok(Some(text))
    }
}
