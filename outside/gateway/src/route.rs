//! The host pool: which host a tunnel session goes to.
//!
//! Hosts are an allow-list of tunnel base URLs (`http://addr:port`) from the configuration;
//! the gateway never sends to anything else. A session is pinned to the host that served its
//! first message (its TLS state lives there) until it idles out, the table is full, or the
//! host fails; a new session goes to the healthy host with the fewest sessions (round robin
//! among equals). Health is `GET /healthz` on each host every interval, and a host that
//! refuses a connection is marked unhealthy at once. A session whose host failed is dropped
//! (the client gets [`cloister_tunnel::PROBLEM_SESSION_LOST`] and starts over).

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use cloister_tunnel::SessionId;

/// Bounds on the session table.
#[derive(Debug, Clone, Copy)]
pub struct SessionLimits {
    /// Most sessions mapped at once. New sessions beyond it are refused (503) until some
    /// idle out; concurrent first messages may overshoot it by their number.
    pub max_sessions: usize,
    /// A session unused this long is forgotten.
    pub idle: Duration,
}

impl Default for SessionLimits {
    fn default() -> SessionLimits {
        SessionLimits {
            max_sessions: 100_000,
            idle: Duration::from_secs(600),
        }
    }
}

/// Why no host was chosen.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RouteError {
    /// A configured host URL is not `http://host:port`.
    #[error("host url {url:?}: {why}")]
    BadUrl {
        /// The URL.
        url: String,
        /// What is wrong.
        why: &'static str,
    },
    /// No host configured.
    #[error("no host configured")]
    NoHosts,
    /// Every host is unhealthy.
    #[error("no healthy host")]
    NoHealthyHost,
    /// The session table is full.
    #[error("the session table is full ({0} sessions)")]
    Full(usize),
}

struct Host {
    base: String,
    healthy: AtomicBool,
}

struct Slot {
    host: usize,
    last_used: Instant,
}

struct Table {
    map: HashMap<SessionId, Slot>,
    per_host: Vec<usize>,
}

impl Table {
    fn remove(&mut self, id: &SessionId) {
        if let Some(s) = self.map.remove(id) {
            if let Some(n) = self.per_host.get_mut(s.host) {
                *n = n.saturating_sub(1);
            }
        }
    }

    fn purge_idle(&mut self, idle: Duration) {
        let per_host = &mut self.per_host;
        self.map.retain(|_, s| {
            let keep = s.last_used.elapsed() < idle;
            if !keep {
                if let Some(n) = per_host.get_mut(s.host) {
                    *n = n.saturating_sub(1);
                }
            }
            keep
        });
    }
}

/// The allow-listed hosts and the session table.
pub struct HostPool {
    hosts: Vec<Host>,
    table: Mutex<Table>,
    next: AtomicUsize,
    limits: SessionLimits,
}

impl std::fmt::Debug for HostPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HostPool")
            .field("hosts", &self.hosts.len())
            .field("limits", &self.limits)
            .finish_non_exhaustive()
    }
}

/// Checks and normalizes a host base URL to `http://authority`.
fn normalize(url: &str) -> Result<String, RouteError> {
    let bad = |why| RouteError::BadUrl {
        url: url.to_owned(),
        why,
    };
    let uri: hyper::Uri = url.parse().map_err(|_| bad("not a URL"))?;
    if uri.scheme_str() != Some("http") {
        return Err(bad("only http:// (the body is TLS records already)"));
    }
    let auth = uri.authority().ok_or(bad("no host:port"))?;
    if !matches!(uri.path(), "" | "/") || uri.query().is_some() {
        return Err(bad("a host is http://host:port with no path"));
    }
    Ok(format!("http://{auth}"))
}

impl HostPool {
    /// A pool of `urls` (each `http://host:port`), all initially healthy.
    pub fn new(urls: &[String], limits: SessionLimits) -> Result<HostPool, RouteError> {
        if urls.is_empty() {
            return Err(RouteError::NoHosts);
        }
        let hosts = urls
            .iter()
            .map(|u| {
                Ok(Host {
                    base: normalize(u)?,
                    healthy: AtomicBool::new(true),
                })
            })
            .collect::<Result<Vec<_>, RouteError>>()?;
        Ok(HostPool {
            table: Mutex::new(Table {
                map: HashMap::new(),
                per_host: vec![0; hosts.len()],
            }),
            hosts,
            next: AtomicUsize::new(0),
            limits,
        })
    }

    fn table(&self) -> MutexGuard<'_, Table> {
        // A panic while holding the lock leaves a consistent map (no multi-step updates).
        self.table.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// How many hosts.
    pub fn len(&self) -> usize {
        self.hosts.len()
    }

    /// Whether there are none (never, for a constructed pool).
    pub fn is_empty(&self) -> bool {
        self.hosts.is_empty()
    }

    /// Host `i`'s base URL (`http://authority`).
    pub fn base(&self, i: usize) -> Option<&str> {
        self.hosts.get(i).map(|h| h.base.as_str())
    }

    /// Whether host `i` is considered live.
    pub fn is_healthy(&self, i: usize) -> bool {
        self.hosts
            .get(i)
            .is_some_and(|h| h.healthy.load(Ordering::Relaxed))
    }

    /// Marks host `i` live or not (health checks and failed forwards).
    pub fn set_healthy(&self, i: usize, healthy: bool) {
        if let Some(h) = self.hosts.get(i) {
            let was = h.healthy.swap(healthy, Ordering::Relaxed);
            if was != healthy {
                tracing::info!(host = i, healthy, "host health changed");
            }
        }
    }

    /// The host of a live session, refreshing its idle timer.
    pub fn lookup(&self, id: &SessionId) -> Option<usize> {
        let mut t = self.table();
        let host = match t.map.get_mut(id) {
            Some(s) if s.last_used.elapsed() < self.limits.idle => {
                s.last_used = Instant::now();
                Some(s.host)
            }
            Some(_) => None,
            None => return None,
        };
        if host.is_none() {
            t.remove(id);
        }
        host
    }

    /// Chooses a host for a new session: the healthy one with the fewest sessions, round
    /// robin among equals. Does not map anything yet (see [`HostPool::bind`]).
    pub fn choose(&self) -> Result<usize, RouteError> {
        let mut t = self.table();
        if t.map.len() >= self.limits.max_sessions {
            t.purge_idle(self.limits.idle);
            if t.map.len() >= self.limits.max_sessions {
                return Err(RouteError::Full(t.map.len()));
            }
        }
        let n = self.hosts.len();
        let start = self.next.fetch_add(1, Ordering::Relaxed) % n;
        (0..n)
            .map(|k| (start + k) % n)
            .filter(|&i| self.is_healthy(i))
            .min_by_key(|&i| t.per_host.get(i).copied().unwrap_or(0))
            .ok_or(RouteError::NoHealthyHost)
    }

    /// Maps a session to `host`; if it is mapped already (a concurrent first message),
    /// keeps and returns the existing host.
    pub fn bind(&self, id: SessionId, host: usize) -> usize {
        let mut t = self.table();
        if let Some(s) = t.map.get_mut(&id) {
            s.last_used = Instant::now();
            return s.host;
        }
        t.map.insert(
            id,
            Slot {
                host,
                last_used: Instant::now(),
            },
        );
        if let Some(n) = t.per_host.get_mut(host) {
            *n += 1;
        }
        host
    }

    /// Forgets a session if it is still mapped to `host`.
    pub fn drop_session(&self, id: &SessionId, host: usize) {
        let mut t = self.table();
        if t.map.get(id).is_some_and(|s| s.host == host) {
            t.remove(id);
        }
    }

    /// Forgets idle sessions now.
    pub fn purge_idle(&self) {
        self.table().purge_idle(self.limits.idle);
    }

    /// How many sessions are mapped.
    pub fn session_count(&self) -> usize {
        self.table().map.len()
    }

    /// Sessions per host.
    pub fn sessions_per_host(&self) -> Vec<usize> {
        self.table().per_host.clone()
    }
}
