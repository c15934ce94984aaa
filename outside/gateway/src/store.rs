//! The spent-token store: each token nonce is spent at most once, across restarts and (with
//! Redis) across gateway replicas.
//!
//! One operation, [`SpentTokens::spend`], atomically marks a nonce spent and says whether it
//! was fresh. A reserve/commit/release protocol would let a token survive a failed first
//! flight, but the contract already makes a lost session cost a new token
//! ([`cloister_tunnel::PROBLEM_SESSION_LOST`]), and one atomic operation has no window in
//! which a crash leaves a token reserved. The gateway spends only after the token verified
//! and a live host was chosen, so refusals before that point cost the client nothing.
//!
//! * [`RedbStore`]: an embedded, file-backed table (the default for one gateway). Each
//!   committed transaction is fsync'd (~1.5k/s on these machines), so a writer thread
//!   batches the spends waiting at once into one transaction.
//! * [`RedisStore`]: `SET cloister:spent-token:<hex> 1 NX EX <retention>` on a shared Redis,
//!   for several gateways.
//!
//! Entries must outlive every token that could still verify: set the retention to at least
//! the issuer key's lifetime.

use std::future::Future;
use std::path::Path;
use std::pin::Pin;
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use redb::{ReadableDatabase as _, ReadableTable as _, TableDefinition};
use tokio::sync::oneshot;

/// The outcome of a spend.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Spend {
    /// The nonce was not spent before; it is now.
    Fresh,
    /// The nonce was already spent (a replayed token).
    AlreadySpent,
}

/// Why the store could not answer. The gateway refuses the request (503): it never lets a
/// token through on a store failure.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The database could not be opened.
    #[error("cannot open the spent-token store {path}: {why}")]
    Open {
        /// Where.
        path: String,
        /// Why.
        why: String,
    },
    /// A write transaction failed; nothing in it was committed.
    #[error("spent-token store write failed: {0}")]
    Write(String),
    /// Redis failed or is unreachable.
    #[error("spent-token store (redis): {0}")]
    Redis(String),
    /// The store's writer has stopped.
    #[error("the spent-token store has stopped")]
    Stopped,
}

/// A boxed spend future (object-safe `async fn`).
pub type SpendFuture<'a> = Pin<Box<dyn Future<Output = Result<Spend, StoreError>> + Send + 'a>>;

/// Remembers spent token nonces.
pub trait SpentTokens: Send + Sync {
    /// Atomically marks `nonce` spent; [`Spend::Fresh`] exactly once per nonce, however many
    /// callers race.
    fn spend<'a>(&'a self, nonce: &'a [u8; 32]) -> SpendFuture<'a>;
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Most spends in one redb transaction.
pub const MAX_BATCH: usize = 1024;
/// How often the redb writer drops entries older than the retention.
pub const PRUNE_EVERY: Duration = Duration::from_secs(3600);

/// nonce → unix second it was spent.
const SPENT: TableDefinition<&[u8; 32], u64> = TableDefinition::new("spent_tokens");

type Job = ([u8; 32], oneshot::Sender<Result<Spend, StoreError>>);

/// The embedded store: one redb file, one writer thread that batches spends.
pub struct RedbStore {
    tx: Option<mpsc::Sender<Job>>,
    writer: Option<JoinHandle<()>>,
}

impl RedbStore {
    /// Opens (or creates) the store at `path`. Entries older than `retention` are pruned
    /// hourly; `Duration::ZERO` keeps them forever.
    pub fn open(path: &Path, retention: Duration) -> Result<RedbStore, StoreError> {
        let open_err = |why: String| StoreError::Open {
            path: path.display().to_string(),
            why,
        };
        let db = redb::Database::create(path).map_err(|e| open_err(e.to_string()))?;
        // Create the table up front so that a bad file fails here, not on the first spend.
        let txn = db.begin_write().map_err(|e| open_err(e.to_string()))?;
        txn.open_table(SPENT)
            .map(drop)
            .map_err(|e| open_err(e.to_string()))?;
        txn.commit().map_err(|e| open_err(e.to_string()))?;
        let (tx, rx) = mpsc::channel::<Job>();
        let writer = std::thread::Builder::new()
            .name("spent-tokens".into())
            .spawn(move || redb_writer(db, rx, retention))
            .map_err(|e| open_err(format!("cannot start the writer thread: {e}")))?;
        Ok(RedbStore {
            tx: Some(tx),
            writer: Some(writer),
        })
    }

    /// How many nonces the store at `path` holds; it must not be open (for tests and
    /// operators).
    pub fn count_spent(path: &Path) -> Result<u64, StoreError> {
        use redb::ReadableTableMetadata as _;
        let err = |e: String| StoreError::Open {
            path: path.display().to_string(),
            why: e,
        };
        let db = redb::Database::open(path).map_err(|e| err(e.to_string()))?;
        let txn = db.begin_read().map_err(|e| err(e.to_string()))?;
        let table = txn.open_table(SPENT).map_err(|e| err(e.to_string()))?;
        table.len().map_err(|e| err(e.to_string()))
    }
}

impl Drop for RedbStore {
    /// Stops the writer after the queued spends and closes the file, so that the same path
    /// can be opened again at once.
    fn drop(&mut self) {
        drop(self.tx.take());
        if let Some(w) = self.writer.take() {
            let _ = w.join();
        }
    }
}

impl SpentTokens for RedbStore {
    fn spend<'a>(&'a self, nonce: &'a [u8; 32]) -> SpendFuture<'a> {
        Box::pin(async move {
            let (reply, rx) = oneshot::channel();
            self.tx
                .as_ref()
                .ok_or(StoreError::Stopped)?
                .send((*nonce, reply))
                .map_err(|_| StoreError::Stopped)?;
            rx.await.map_err(|_| StoreError::Stopped)?
        })
    }
}

fn redb_writer(db: redb::Database, rx: mpsc::Receiver<Job>, retention: Duration) {
    let mut last_prune: Option<Instant> = None;
    while let Ok(first) = rx.recv() {
        let mut jobs = vec![first];
        while jobs.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(j) => jobs.push(j),
                Err(_) => break,
            }
        }
        let prune = !retention.is_zero() && last_prune.is_none_or(|t| t.elapsed() >= PRUNE_EVERY);
        let started = Instant::now();
        match spend_batch(&db, &jobs, prune.then_some(retention)) {
            Ok(results) => {
                if prune {
                    last_prune = Some(Instant::now());
                }
                tracing::debug!(
                    batch = jobs.len(),
                    ms = started.elapsed().as_millis() as u64,
                    "spend batch"
                );
                for ((_, reply), r) in jobs.into_iter().zip(results) {
                    let _ = reply.send(Ok(r));
                }
            }
            Err(e) => {
                tracing::error!(error = %e, batch = jobs.len(), "spend batch failed");
                for (_, reply) in jobs {
                    let _ = reply.send(Err(StoreError::Write(e.clone())));
                }
            }
        }
    }
}

/// One write transaction for a batch. Later duplicates of a nonce in the same batch see the
/// first one's insert (reads in a write transaction see its writes).
fn spend_batch(
    db: &redb::Database,
    jobs: &[Job],
    prune: Option<Duration>,
) -> Result<Vec<Spend>, String> {
    let now = unix_now();
    let txn = db.begin_write().map_err(|e| e.to_string())?;
    let mut out = Vec::with_capacity(jobs.len());
    {
        let mut table = txn.open_table(SPENT).map_err(|e| e.to_string())?;
        if let Some(retention) = prune {
            let cutoff = now.saturating_sub(retention.as_secs());
            table
                .retain(|_, spent_at| spent_at >= cutoff)
                .map_err(|e| e.to_string())?;
        }
        for (nonce, _) in jobs {
            let seen = table.get(nonce).map_err(|e| e.to_string())?.is_some();
            if seen {
                out.push(Spend::AlreadySpent);
            } else {
                table.insert(nonce, now).map_err(|e| e.to_string())?;
                out.push(Spend::Fresh);
            }
        }
    }
    txn.commit().map_err(|e| e.to_string())?;
    Ok(out)
}

/// The key prefix of spent nonces in Redis.
pub const REDIS_PREFIX: &str = "cloister:spent-token:";

/// The shared store: Redis `SET NX` with an expiry.
#[derive(Clone)]
pub struct RedisStore {
    conn: redis::aio::ConnectionManager,
    ttl_secs: u64,
}

impl std::fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisStore")
            .field("ttl_secs", &self.ttl_secs)
            .finish_non_exhaustive()
    }
}

impl RedisStore {
    /// Connects to `url` (`redis://host:port[/db]`); entries expire after `retention` (at
    /// least one second).
    pub async fn connect(url: &str, retention: Duration) -> Result<RedisStore, StoreError> {
        let client = redis::Client::open(url)
            .map_err(|e| StoreError::Redis(format!("bad redis url: {e}")))?;
        // Fail fast: a spend waits at most a few seconds, then the request gets 503; the
        // manager reconnects in the background.
        let config = redis::aio::ConnectionManagerConfig::new()
            .set_number_of_retries(2)
            .set_max_delay(Duration::from_millis(500))
            .set_connection_timeout(Some(Duration::from_secs(2)))
            .set_response_timeout(Some(Duration::from_secs(2)));
        let conn = redis::aio::ConnectionManager::new_with_config(client, config)
            .await
            .map_err(|e| StoreError::Redis(format!("cannot connect: {e}")))?;
        Ok(RedisStore {
            conn,
            ttl_secs: retention.as_secs().max(1),
        })
    }
}

impl SpentTokens for RedisStore {
    fn spend<'a>(&'a self, nonce: &'a [u8; 32]) -> SpendFuture<'a> {
        Box::pin(async move {
            let mut conn = self.conn.clone();
            let reply: Option<String> = redis::cmd("SET")
                .arg(format!("{REDIS_PREFIX}{}", hex::encode(nonce)))
                .arg(1)
                .arg("NX")
                .arg("EX")
                .arg(self.ttl_secs)
                .query_async(&mut conn)
                .await
                .map_err(|e| StoreError::Redis(e.to_string()))?;
            Ok(match reply {
                Some(_) => Spend::Fresh,
                None => Spend::AlreadySpent,
            })
        })
    }
}
