//! The keyed manager on paused tokio time, with the cache's test kit.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use secrecy::ExposeSecret as _;
use tokio::task::JoinSet;
use tokio::time::Instant;

use super::{TokenManager, TokenManagerBuilder};
use crate::cache::TokenSource;
use crate::cache::testkit::{FlakyStore, Source, exact, secret, token_for};
use crate::clock::Clock as _;
use crate::error::Error;
use crate::store::{MemoryStore, TokenStore};
use crate::token::{AccessToken, RefreshToken};

const S: fn(u64) -> Duration = Duration::from_secs;

/// A manager of users sharing `source`, on its clock, with `store` if given.
fn users(source: &Source, store: Option<Arc<dyn TokenStore>>) -> TokenManagerBuilder<String> {
    let builder = TokenManager::for_users(source.clone()).clock(Arc::new(source.0.clock)).policy(exact());
    match store {
        Some(store) => builder.store(store),
        None => builder,
    }
}

fn key(name: &str) -> String {
    name.to_owned()
}

/// Lets spawned tasks run until they wait on something (paused time does not move).
async fn settle() {
    for _ in 0..20 {
        tokio::task::yield_now().await;
    }
}

#[tokio::test(start_paused = true)]
async fn one_fetch_for_100_callers_of_one_cold_key_among_many() {
    let source = Source::new(S(300), true);
    let manager = users(&source, None).build();
    for i in 0..1_000 {
        manager.insert(&format!("user-{i}"), token_for(&source.0.clock, &format!("pre-{i}"), S(300))).await.unwrap();
    }
    *source.0.delay.lock().unwrap() = S(1);
    let mut callers = JoinSet::new();
    for i in 0..100 {
        let cold = manager.clone();
        callers.spawn(async move { cold.token(&key("cold")).await });
        // Other keys keep being served from memory meanwhile.
        let hot = manager.token(&format!("user-{i}")).await.unwrap();
        assert_eq!(secret(&hot), format!("pre-{i}"));
    }
    let tokens: Vec<AccessToken> = callers.join_all().await.into_iter().map(Result::unwrap).collect();
    assert_eq!(source.0.fetches(), 1, "one fetch for 100 callers of one key");
    assert!(tokens.iter().all(|t| secret(t) == "token-1"));
    assert_eq!(manager.len(), 1_001);
}

#[tokio::test(start_paused = true)]
async fn independent_keys_are_fetched_independently_and_at_once() {
    let sources: Arc<Mutex<HashMap<String, Source>>> = Arc::default();
    let made = sources.clone();
    let manager: TokenManager<String> = TokenManager::for_clients(move |tenant: &String| {
        let source = Source::new(S(300), false);
        *source.0.delay.lock().unwrap() = S(1);
        made.lock().unwrap().insert(tenant.clone(), source.clone());
        Ok(Arc::new(source) as Arc<dyn TokenSource>)
    })
    .policy(exact())
    .build();
    let start = Instant::now();
    let (a, b) = tokio::join!(manager.token(&key("a")), manager.token(&key("b")));
    assert_eq!(Instant::now() - start, S(1), "both fetches ran at once");
    assert_eq!((secret(&a.unwrap()), secret(&b.unwrap())), ("token-1".to_owned(), "token-1".to_owned()));
    {
        let made = sources.lock().unwrap();
        assert_eq!((made["a"].0.fetches(), made["b"].0.fetches()), (1, 1));
        made["a"].0.set_failing(true);
    }
    // One tenant's failure is its own: the other is still served, and fetched when due.
    manager.invalidate(&key("a"), &manager.cached_token(&key("a")).unwrap());
    let err = manager.token(&key("a")).await.unwrap_err();
    assert!(err.is_retryable(), "{err}");
    assert!(manager.token(&key("b")).await.is_ok());
    assert_eq!(sources.lock().unwrap()["b"].0.fetches(), 1);
}

#[tokio::test(start_paused = true)]
async fn each_key_is_refreshed_early_on_its_own_schedule() {
    let source = Source::new(S(300), false);
    let manager = users(&source, None).build();
    let a = manager.token(&key("a")).await.unwrap();
    tokio::time::advance(S(100)).await;
    let b = manager.token(&key("b")).await.unwrap();
    // A 300 s token is refreshed 60 s before it expires (no jitter): a at 240 s, b at 340 s.
    tokio::time::advance(S(141)).await;
    let a2 = manager.token(&key("a")).await.unwrap();
    assert!(!a2.same_token(&a), "a refreshed early");
    assert!(manager.token(&key("b")).await.unwrap().same_token(&b), "b not yet due");
    assert_eq!(source.0.fetches(), 3);
    tokio::time::advance(S(100)).await;
    assert!(!manager.token(&key("b")).await.unwrap().same_token(&b), "b refreshed at its own time");
    assert!(manager.token(&key("a")).await.unwrap().same_token(&a2));
    assert_eq!(source.0.fetches(), 4);
}

#[tokio::test(start_paused = true)]
async fn an_evicted_key_is_read_back_from_the_store_without_a_request() {
    let store = Arc::new(MemoryStore::new());
    let source = Source::new(S(3600), false);
    let manager = users(&source, Some(store.clone())).idle_timeout(S(60)).build();
    let first = manager.token(&key("a")).await.unwrap();
    tokio::time::advance(S(30)).await;
    assert_eq!(manager.evict_idle(), 0, "used 30 s ago");
    tokio::time::advance(S(31)).await;
    assert_eq!(manager.evict_idle(), 1);
    assert!(!manager.is_loaded(&key("a")) && manager.is_empty());
    let again = manager.token(&key("a")).await.unwrap();
    assert!(again.same_token(&first));
    assert_eq!(source.0.fetches(), 1, "no request after the eviction: the stored token is fresh");
    assert!(store.load("test-key/a").await.unwrap().is_some(), "one record per key");
}

#[tokio::test(start_paused = true)]
async fn a_token_rejected_after_its_key_was_evicted_is_not_served_again() {
    let store = Arc::new(MemoryStore::new());
    let source = Source::new(S(3600), false);
    let manager = users(&source, Some(store.clone())).idle_timeout(S(60)).build();
    let rejected = manager.token(&key("a")).await.unwrap();
    tokio::time::advance(S(61)).await;
    assert_eq!(manager.evict_idle(), 1);
    // The 401 arrives after the eviction: the store still holds the rejected set.
    manager.invalidate(&key("a"), &rejected);
    let next = manager.token(&key("a")).await.unwrap();
    assert!(!next.same_token(&rejected), "the rejected token is not read back from the store and served");
    assert_eq!(source.0.fetches(), 2);
}

#[tokio::test(start_paused = true)]
async fn a_used_key_is_not_evicted_and_misses_sweep_by_themselves() {
    let source = Source::new(S(3600), false);
    let manager = users(&source, None).idle_timeout(S(60)).build();
    manager.token(&key("idle")).await.unwrap();
    manager.token(&key("busy")).await.unwrap();
    for _ in 0..4 {
        tokio::time::advance(S(31)).await;
        manager.token(&key("busy")).await.unwrap();
        // A miss of another key runs the sweep when half an idle timeout has passed.
        manager.token(&format!("new-{}", source.0.fetches())).await.unwrap();
    }
    assert!(!manager.is_loaded(&key("idle")), "unused for 124 s: swept by a miss");
    assert!(manager.is_loaded(&key("busy")), "used every 31 s");
}

#[tokio::test(start_paused = true)]
async fn max_entries_bounds_memory_and_evicted_keys_reload_from_the_store() {
    let source = Source::new(S(3600), false);
    let manager = users(&source, None).max_entries(100).build();
    for i in 0..1_000 {
        manager.token(&format!("user-{i}")).await.unwrap();
        assert!(manager.len() <= 100, "{} entries", manager.len());
    }
    assert_eq!(source.0.fetches(), 1_000);
    for i in 0..1_000 {
        manager.token(&format!("user-{i}")).await.unwrap();
    }
    assert_eq!(source.0.fetches(), 1_000, "every evicted key came back from the store");
}

#[tokio::test(start_paused = true)]
async fn single_flight_per_key_holds_across_eviction() {
    let source = Source::new(S(300), true);
    let manager = users(&source, None).idle_timeout(S(1)).max_entries(2).build();
    *source.0.delay.lock().unwrap() = S(10);
    let mut callers = JoinSet::new();
    for _ in 0..50 {
        let manager = manager.clone();
        callers.spawn(async move { manager.token(&key("k")).await });
    }
    // A caller that gives up: the fetch it joined goes on, and still holds the entry.
    let quitter = {
        let manager = manager.clone();
        tokio::spawn(async move { manager.token(&key("k")).await })
    };
    settle().await;
    quitter.abort();
    tokio::time::advance(S(5)).await;
    assert_eq!(manager.evict_idle(), 0, "the fetch in flight keeps its entry");
    for i in 0..20 {
        // Past max_entries: eviction runs, and must leave `k` alone.
        manager.insert(&format!("other-{i}"), token_for(&source.0.clock, "other", S(300))).await.unwrap();
    }
    assert!(manager.is_loaded(&key("k")));
    for _ in 0..50 {
        let manager = manager.clone();
        callers.spawn(async move { manager.token(&key("k")).await });
    }
    let tokens: Vec<AccessToken> = callers.join_all().await.into_iter().map(Result::unwrap).collect();
    assert_eq!(source.0.fetches(), 1, "one fetch of `k`, across the eviction attempts");
    assert_eq!(tokens.len(), 100);
    assert!(tokens.iter().all(|t| secret(t) == "token-1"));
    // Once the fetch is done the entry can go, and comes back from the store.
    for _ in 0..2 {
        // The first sweep sees it used since the last one, the second a second later evicts it.
        tokio::time::advance(S(2)).await;
        manager.evict_idle();
    }
    assert!(!manager.is_loaded(&key("k")));
    assert_eq!(secret(&manager.token(&key("k")).await.unwrap()), "token-1");
    assert_eq!(source.0.fetches(), 1);
}

/// A user's first set, from an authorization: refresh token `refresh-0`.
fn authorized(source: &Source, lifetime: Duration) -> AccessToken {
    AccessToken::builder("from-the-code")
        .expires_in(source.0.clock.system_time(), lifetime)
        .refresh_token(Some(RefreshToken::new("refresh-0")))
        .build()
}

fn refresh_of(token: &AccessToken) -> String {
    token.refresh_token().map(|r| r.secret().expose_secret().to_owned()).unwrap_or_default()
}

#[tokio::test(start_paused = true)]
async fn a_rotated_refresh_token_is_saved_before_the_token_is_returned() {
    let store = Arc::new(FlakyStore::default());
    let source = Source::new(S(300), true);
    let manager = users(&source, Some(store.clone())).build();
    manager.insert(&key("u"), authorized(&source, S(300))).await.unwrap();
    let stored = store.load("test-key/u").await.unwrap().unwrap();
    assert_eq!(refresh_of(&stored), "refresh-0", "insert saved the set before it returned");
    tokio::time::advance(S(241)).await;
    let mut callers = JoinSet::new();
    for _ in 0..100 {
        let manager = manager.clone();
        callers.spawn(async move { manager.token(&key("u")).await.map(|t| secret(&t)) });
    }
    let got: Vec<String> = callers.join_all().await.into_iter().map(Result::unwrap).collect();
    assert!(got.iter().all(|t| t == "token-1"));
    assert_eq!(*source.0.used.lock().unwrap(), ["refresh-0"], "the spent refresh token was sent once");
    let stored = store.load("test-key/u").await.unwrap().unwrap();
    assert_eq!((secret(&stored), refresh_of(&stored)), ("token-1".to_owned(), "refresh-1".to_owned()));
}

#[tokio::test(start_paused = true)]
async fn an_unsaved_rotated_set_is_never_evicted() {
    let store = Arc::new(FlakyStore::default());
    let source = Source::new(S(300), true);
    let manager = users(&source, Some(store.clone())).idle_timeout(S(10)).build();
    manager.insert(&key("u"), authorized(&source, S(300))).await.unwrap();
    tokio::time::advance(S(241)).await;
    store.fail_saves.store(true, Ordering::SeqCst);
    assert_eq!(secret(&manager.token(&key("u")).await.unwrap()), "token-1", "served though unsaved");
    tokio::time::advance(S(11)).await;
    assert_eq!(manager.evict_idle(), 0, "its only copy of refresh-1 is in memory");
    store.fail_saves.store(false, Ordering::SeqCst);
    tokio::time::sleep(S(2)).await; // the background re-save (1 s) lands
    tokio::time::advance(S(11)).await;
    assert_eq!(manager.evict_idle(), 1);
    let stored = store.load("test-key/u").await.unwrap().unwrap();
    assert_eq!(refresh_of(&stored), "refresh-1", "no grant lost");
}

#[tokio::test(start_paused = true)]
async fn remove_drops_the_key_from_memory_and_the_store() {
    let store = Arc::new(MemoryStore::new());
    let source = Source::new(S(300), true);
    let manager = users(&source, Some(store.clone())).build();
    manager.insert(&key("u"), authorized(&source, S(300))).await.unwrap();
    manager.insert(&key("v"), authorized(&source, S(300))).await.unwrap();
    manager.remove(&key("u")).await.unwrap();
    assert!(!manager.is_loaded(&key("u")) && manager.len() == 1);
    assert!(store.load("test-key/u").await.unwrap().is_none());
    assert!(store.load("test-key/v").await.unwrap().is_some());
    // A key not in memory is removed from the store too.
    tokio::time::advance(DEFAULT_IDLE + S(1)).await;
    assert_eq!(manager.evict_idle(), 1);
    manager.remove(&key("v")).await.unwrap();
    assert!(store.load("test-key/v").await.unwrap().is_none());
}

const DEFAULT_IDLE: Duration = super::builder::DEFAULT_IDLE_TIMEOUT;

#[tokio::test(start_paused = true)]
async fn keys_are_escaped_in_store_keys_and_clients_get_records_of_their_own() {
    let store = Arc::new(MemoryStore::new());
    let manager: TokenManager<String> =
        TokenManager::for_clients(|_: &String| Ok(Arc::new(Source::new(S(300), false)) as Arc<dyn TokenSource>))
            .store(store.clone())
            .build();
    manager.token(&key("a/b")).await.unwrap();
    manager.token(&key("a")).await.unwrap();
    assert!(store.load("test-key/a%2Fb").await.unwrap().is_some());
    assert!(store.load("test-key/a").await.unwrap().is_some());
    let failing: TokenManager<u64> = TokenManager::for_clients(|tenant: &u64| {
        Err(Error::config("tenant", format!("no client for tenant {tenant}")))
    })
    .build();
    let err = failing.token(&7).await.unwrap_err();
    assert!(matches!(err, Error::Config { .. }) && err.to_string().contains("tenant 7"), "{err}");
    assert!(failing.is_empty(), "no entry for a key whose source could not be made");
}

#[tokio::test(start_paused = true)]
async fn no_secret_or_key_in_debug_or_errors() {
    let source = Source::new(S(300), true);
    let manager = users(&source, None).build();
    let token = AccessToken::builder("SECRET-access")
        .expires_in(source.0.clock.system_time(), S(300))
        .refresh_token(Some(RefreshToken::new("SECRET-refresh")))
        .build();
    manager.insert(&key("alice@example.com"), token).await.unwrap();
    let debug = format!("{manager:?} {:?}", TokenManager::<String>::for_users(source.clone()));
    assert!(debug.contains("TokenManager") && debug.contains("entries: 1"), "{debug}");
    for needle in ["SECRET", "alice"] {
        assert!(!debug.contains(needle), "{needle} in {debug}");
    }
    source.0.set_failing(true);
    tokio::time::advance(S(299)).await;
    let err = manager.token(&key("alice@example.com")).await.unwrap_err();
    assert!(!format!("{err} {err:?}").contains("SECRET"), "{err:?}");
}

#[test]
fn the_manager_is_send_and_sync() {
    fn check<T: Send + Sync + Clone>() {}
    check::<TokenManager<String>>();
    check::<TokenManager<u64>>();
}
