//! The cluster's job lease: one holder at a time, renewed by its holder, taken over once
//! it lapses (a replica killed without giving it back) or is given back (a replica
//! stopped). Time moves through the panel's clock.

use std::time::Duration;

use shardlyn_panel::jobs::lease::{self, CLUSTER_JOBS, TTL_MS};
use shardlyn_tests::{TestApp, both_engines, replicas, spawn_app};

both_engines! {
    async fn a_lease_has_one_holder_until_it_lapses_or_is_given_back(engine) {
        let app = spawn_app(engine).await;
        let pool = &app.state.db.pool;
        let name = "test-lease";
        let held = |holder: &'static str, at: i64| async move {
            lease::try_hold(pool, name, holder, at, TTL_MS).await.expect("try_hold")
        };
        assert!(held("a", 1_000).await, "a free lease is taken");
        assert!(!held("b", 1_000).await, "a running lease is another's");
        assert!(held("a", 20_000).await, "the holder renews it");
        assert!(!held("b", 20_000 + TTL_MS - 1).await, "renewed: it runs on");
        assert!(held("b", 20_000 + TTL_MS).await, "lapsed: b takes it");
        assert!(!held("a", 20_000 + TTL_MS + 1).await, "a lost it");
        let holder = lease::holder(pool, name, 20_000 + TTL_MS + 1).await.expect("holder");
        assert_eq!(holder.as_deref(), Some("b"));
        lease::release(pool, name, "a").await.expect("release");
        let holder = lease::holder(pool, name, 20_000 + TTL_MS + 1).await.expect("holder");
        assert_eq!(holder.as_deref(), Some("b"), "only the holder gives it back");
        lease::release(pool, name, "b").await.expect("release");
        assert_eq!(lease::holder(pool, name, 0).await.expect("holder"), None);
        assert!(held("a", 20_000 + TTL_MS + 2).await, "given back: free at once");
        app.stop().await;
    }
}

/// The holder of the cluster's job lease, polled until `want` says yes (10 s at most).
async fn holder_when(
    app: &TestApp,
    what: &str,
    want: impl Fn(Option<&str>) -> bool,
) -> Option<String> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let now = app.state.clock.now_ms();
        let holder = lease::holder(&app.state.db.pool, CLUSTER_JOBS, now)
            .await
            .expect("holder");
        if want(holder.as_deref()) {
            return holder;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{what}: the holder is {holder:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Two replicas: one holds the lease; a holder that died (its lease left behind) is
/// replaced once the lease lapses, and a holder that stops hands over at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_run_the_cluster_jobs_on_one_holder_at_a_time() {
    let apps = replicas(2, |c| c.jobs.poll_interval_ms = 20).await;
    let mut apps = apps.into_iter();
    let (a, b) = (apps.next().expect("a"), apps.next().expect("b"));
    let ids = [a.state.replica_id.clone(), b.state.replica_id.clone()];
    let first = holder_when(&a, "one replica takes the lease", |h| h.is_some())
        .await
        .expect("holder");
    assert!(ids.contains(&first), "{first} is one of {ids:?}");
    // It keeps it: both keep trying every 20 ms (some 25 tries each), nobody takes over.
    let until = tokio::time::Instant::now() + Duration::from_millis(500);
    while tokio::time::Instant::now() < until {
        holder_when(&a, "kept", |h| h == Some(first.as_str())).await;
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // A replica killed with its lease: the row stays until it lapses. Both replicas'
    // clocks are pinned, so the lapse comes when the test moves them.
    let now = a.state.clock.now_ms();
    for app in [&a, &b] {
        app.state.clock.set_ms(now);
    }
    sqlx::query("UPDATE job_leases SET holder = 'killed-replica', expires_at = $1 WHERE name = $2")
        .bind(now + TTL_MS)
        .bind(CLUSTER_JOBS)
        .execute(&a.state.db.pool)
        .await
        .expect("a dead holder's lease");
    let until = tokio::time::Instant::now() + Duration::from_millis(300);
    while tokio::time::Instant::now() < until {
        holder_when(&a, "the dead holder's lease runs on", |h| {
            h == Some("killed-replica")
        })
        .await;
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    for app in [&a, &b] {
        app.state.clock.set_ms(now + TTL_MS);
    }
    let next = holder_when(&a, "a live replica takes the lapsed lease", |h| {
        h.is_some_and(|h| ids.iter().any(|id| id == h))
    })
    .await
    .expect("holder");

    // The holder stops: it gives the lease back and the other takes it without a lapse.
    let (holder, other) = if next == ids[0] { (a, b) } else { (b, a) };
    holder.stop().await;
    let other_id = other.state.replica_id.clone();
    holder_when(&other, "the other replica takes over", |h| {
        h == Some(other_id.as_str())
    })
    .await;
}
