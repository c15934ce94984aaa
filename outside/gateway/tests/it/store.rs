//! The spent-token stores: one Fresh per nonce under races, across restarts (redb) and across
//! gateways sharing one Redis.

use std::sync::Arc;
use std::time::Duration;

use cloister_gateway::{RedbStore, RedisStore, Spend, SpentTokens};

use crate::common::RedisServer;

fn nonce(i: u32) -> [u8; 32] {
    let mut n = [0u8; 32];
    getrandom::fill(&mut n).expect("random");
    n[..4].copy_from_slice(&i.to_be_bytes());
    n
}

/// `n` concurrent spends of one nonce over `stores` (round robin); the outcomes.
async fn race(stores: &[Arc<dyn SpentTokens>], n: usize, nonce: [u8; 32]) -> Vec<Spend> {
    let mut set = tokio::task::JoinSet::new();
    for i in 0..n {
        let s = Arc::clone(&stores[i % stores.len()]);
        set.spawn(async move { s.spend(&nonce).await.expect("spend") });
    }
    let mut out = Vec::new();
    while let Some(r) = set.join_next().await {
        out.push(r.expect("task"));
    }
    out
}

fn fresh(v: &[Spend]) -> usize {
    v.iter().filter(|s| **s == Spend::Fresh).count()
}

async fn all_distinct_fresh(store: Arc<dyn SpentTokens>, n: u32) {
    let mut set = tokio::task::JoinSet::new();
    for i in 0..n {
        let s = Arc::clone(&store);
        set.spawn(async move { s.spend(&nonce(i)).await.expect("spend") });
    }
    let mut count = 0;
    while let Some(r) = set.join_next().await {
        assert_eq!(r.expect("task"), Spend::Fresh);
        count += 1;
    }
    assert_eq!(count, n);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn redb_one_fresh_per_nonce_and_survives_restart() {
    let dir = tempfile::tempdir().expect("tmp");
    let path = dir.path().join("spent.redb");
    let store: Arc<dyn SpentTokens> =
        Arc::new(RedbStore::open(&path, Duration::from_secs(3600)).expect("open"));
    let n = nonce(u32::MAX);
    let outcomes = race(std::slice::from_ref(&store), 64, n).await;
    assert_eq!(outcomes.len(), 64);
    assert_eq!(fresh(&outcomes), 1, "{outcomes:?}");
    all_distinct_fresh(Arc::clone(&store), 500).await;
    assert_eq!(store.spend(&n).await.expect("spend"), Spend::AlreadySpent);

    // Restart: drop the store (its writer closes the file) and open the same file again.
    drop(store);
    assert_eq!(RedbStore::count_spent(&path).expect("count"), 501);
    let again = RedbStore::open(&path, Duration::from_secs(3600)).expect("reopen");
    assert_eq!(again.spend(&n).await.expect("spend"), Spend::AlreadySpent);
    assert_eq!(again.spend(&nonce(7)).await.expect("spend"), Spend::Fresh);
    // The file is locked while open: a second store on it is refused with a clear error.
    let e = RedbStore::open(&path, Duration::ZERO)
        .err()
        .expect("locked")
        .to_string();
    assert!(e.contains("spent.redb"), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn redis_one_fresh_per_nonce_across_two_gateways() {
    let redis = RedisServer::start();
    let a: Arc<dyn SpentTokens> = Arc::new(
        RedisStore::connect(&redis.url, Duration::from_secs(3600))
            .await
            .expect("connect a"),
    );
    let b: Arc<dyn SpentTokens> = Arc::new(
        RedisStore::connect(&redis.url, Duration::from_secs(3600))
            .await
            .expect("connect b"),
    );
    // One client, 64 racing spends.
    let outcomes = race(std::slice::from_ref(&a), 64, nonce(1)).await;
    assert_eq!(fresh(&outcomes), 1, "{outcomes:?}");
    // Two clients ("two gateways") racing on one nonce.
    let outcomes = race(&[Arc::clone(&a), Arc::clone(&b)], 64, nonce(2)).await;
    assert_eq!(fresh(&outcomes), 1, "{outcomes:?}");
    // A nonce spent through one is spent for the other.
    let n = nonce(3);
    assert_eq!(a.spend(&n).await.expect("a"), Spend::Fresh);
    assert_eq!(b.spend(&n).await.expect("b"), Spend::AlreadySpent);
    all_distinct_fresh(Arc::clone(&b), 300).await;

    // The entry expires with the retention.
    let client = redis::Client::open(redis.url.as_str()).expect("client");
    let mut conn = client
        .get_multiplexed_async_connection()
        .await
        .expect("conn");
    let ttl: i64 = redis::cmd("TTL")
        .arg(format!(
            "{}{}",
            cloister_gateway::store::REDIS_PREFIX,
            hex::encode(n)
        ))
        .query_async(&mut conn)
        .await
        .expect("ttl");
    assert!((3000..=3600).contains(&ttl), "ttl {ttl}");
}

#[tokio::test]
async fn redis_unreachable_is_a_clear_error() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("port")
        .port();
    let e = RedisStore::connect(
        &format!("redis://127.0.0.1:{port}/"),
        Duration::from_secs(60),
    )
    .await
    .expect_err("nobody listens")
    .to_string();
    assert!(e.contains("redis") && e.contains("connect"), "{e}");
    let e = RedisStore::connect("not a url", Duration::from_secs(60))
        .await
        .expect_err("bad url")
        .to_string();
    assert!(e.contains("bad redis url"), "{e}");
}
