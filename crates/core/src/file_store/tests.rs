//! Unit tests of [`FileStore`](super::FileStore) on real files in a temporary directory.

use super::*;
use crate::token::{RefreshToken, Scopes};
use secrecy::ExposeSecret as _;
use std::time::{Duration, SystemTime};

/// A fresh directory under the system temp dir, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> Self {
        let n: u64 = rand::rng().random();
        let dir = std::env::temp_dir().join(format!("tokensmith-file-store-{n:016x}"));
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn token(access: &str, refresh: &str) -> AccessToken {
    AccessToken::builder(access)
        .expires_in(SystemTime::now(), Duration::from_secs(300))
        .scopes(Scopes::parse("general,users.read"))
        .refresh_token(Some(RefreshToken::new(refresh)))
        .build()
}

#[tokio::test]
async fn round_trip_survives_a_new_store_instance() {
    let dir = TempDir::new();
    let path = dir.0.join("tokens.json");
    let store = FileStore::new(&path);
    assert!(store.load("k").await.unwrap().is_none());
    store.save("k", &token("at-1", "rt-1")).await.unwrap();
    store.save("other", &token("at-2", "rt-2")).await.unwrap();

    let reopened = FileStore::new(&path);
    let loaded = reopened.load("k").await.unwrap().unwrap();
    assert_eq!(loaded.secret().expose_secret(), "at-1");
    assert!(loaded.refresh_token().unwrap().same_as(&RefreshToken::new("rt-1")));
    assert_eq!(loaded.lifetime(), Duration::from_secs(300));
    assert!(loaded.scopes().contains("users.read"));
    assert!(reopened.load("other").await.unwrap().is_some());

    reopened.remove("k").await.unwrap();
    assert!(store.load("k").await.unwrap().is_none());
    assert!(store.load("other").await.unwrap().is_some());
    // The file is a plain map key -> StoredToken.
    let json: serde_json::Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    assert_eq!(json["other"]["refresh_token"], "rt-2");
}

#[cfg(unix)]
#[tokio::test]
async fn file_and_new_directory_are_owner_only() {
    use std::os::unix::fs::PermissionsExt as _;
    let dir = TempDir::new();
    let path = dir.0.join("nested").join("tokens.json");
    FileStore::new(&path).save("k", &token("a", "r")).await.unwrap();
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&path), 0o600);
    assert_eq!(mode(path.parent().unwrap()), 0o700);
    // A file left world-readable by someone else becomes owner-only on the next save.
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
    FileStore::new(&path).save("k", &token("b", "r")).await.unwrap();
    assert_eq!(mode(&path), 0o600);
    // No temporary file is left behind; the lock directory beside the file is owner-only too.
    let mut entries: Vec<String> = std::fs::read_dir(path.parent().unwrap())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    entries.sort();
    assert_eq!(entries, [".tokens.json.locks", "tokens.json"]);
    assert_eq!(mode(&path.parent().unwrap().join(".tokens.json.locks")), 0o700);
}

#[cfg(unix)]
#[tokio::test]
async fn a_file_readable_by_others_is_made_owner_only_when_read() {
    // Issue 15, item 11: a 0644 file that was only read stayed 0644.
    use std::os::unix::fs::PermissionsExt as _;
    let dir = TempDir::new();
    let path = dir.0.join("tokens.json");
    FileStore::new(&path).save("k", &token("a", "r")).await.unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
    let store = FileStore::new(&path);
    assert!(store.load("k").await.unwrap().is_some());
    assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
    // A directory at the path is not chmodded; it is the usual read error.
    std::fs::set_permissions(&dir.0, std::fs::Permissions::from_mode(0o755)).unwrap();
    assert!(FileStore::new(&dir.0).load("k").await.is_err());
    assert_eq!(std::fs::metadata(&dir.0).unwrap().permissions().mode() & 0o777, 0o755);
}

fn acquired(lock: RefreshLock) -> LockGuard {
    match lock {
        RefreshLock::Acquired(guard) => guard,
        other => panic!("expected the lock, got {other:?}"),
    }
}

const LEASE: Duration = Duration::from_secs(5);

#[tokio::test]
async fn two_stores_on_one_file_lock_like_two_processes() {
    // Issue 15, item 10: two handles on one file (flock locks belong to an open file, so these
    // behave exactly as two processes would).
    let dir = TempDir::new();
    let path = dir.0.join("tokens.json");
    let a = FileStore::new(&path);
    let b = FileStore::new(&path);
    assert!(a.coordination().is_some() && b.coordination().is_some());
    let saved = a.save_versioned("k", &token("at-0", "rt-0")).await.unwrap().unwrap();
    a.save("other", &token("x", "y")).await.unwrap();

    let guard = acquired(a.lock_refresh("k", LEASE).await.unwrap());
    assert!(guard.fence() > saved + 1, "larger than every version in the file: {guard:?}");
    assert_eq!(b.lock_refresh("k", LEASE).await.unwrap(), RefreshLock::HeldElsewhere);
    // The same store (and its clones) cannot take it twice either: one refresh per key.
    assert_eq!(a.lock_refresh("k", LEASE).await.unwrap(), RefreshLock::HeldElsewhere);
    assert_eq!(a.clone().lock_refresh("k", LEASE).await.unwrap(), RefreshLock::HeldElsewhere);
    // Other keys have their own locks.
    let other = acquired(b.lock_refresh("other", LEASE).await.unwrap());
    b.unlock("other", &other).await.unwrap();

    assert!(a.extend_lock("k", &guard, LEASE).await.unwrap());
    assert!(!b.extend_lock("k", &guard, LEASE).await.unwrap(), "b does not hold it");
    let stranger = LockGuard::new("someone-else", guard.fence());
    assert!(!a.extend_lock("k", &stranger, LEASE).await.unwrap());
    a.unlock("k", &stranger).await.unwrap();
    assert_eq!(b.lock_refresh("k", LEASE).await.unwrap(), RefreshLock::HeldElsewhere, "not released by a stranger");

    assert!(a.save_fenced("k", &token("at-1", "rt-1"), &guard).await.unwrap());
    let stored = b.load_versioned("k").await.unwrap().unwrap();
    assert_eq!(stored.version, Some(guard.fence()));
    assert_eq!(stored.token.secret().expose_secret(), "at-1");
    a.unlock("k", &guard).await.unwrap();
    assert!(!a.extend_lock("k", &guard, LEASE).await.unwrap(), "released");

    let next = acquired(b.lock_refresh("k", LEASE).await.unwrap());
    assert!(next.fence() > guard.fence());
    assert_eq!(a.lock_refresh("k", LEASE).await.unwrap(), RefreshLock::HeldElsewhere);
    assert!(b.save_fenced("k", &token("at-2", "rt-2"), &next).await.unwrap());
    // A stale holder's save never overwrites a newer set.
    assert!(!a.save_fenced("k", &token("stale", "stale"), &guard).await.unwrap());
    assert_eq!(a.load("k").await.unwrap().unwrap().secret().expose_secret(), "at-2");
    b.unlock("k", &next).await.unwrap();
    // A plain save after fenced ones still gets a larger version.
    let after = a.save_versioned("k", &token("at-3", "rt-3")).await.unwrap().unwrap();
    assert!(after > next.fence());
}

#[tokio::test]
async fn fences_grow_without_saves_and_a_dropped_store_releases_its_lock() {
    let dir = TempDir::new();
    let path = dir.0.join("tokens.json");
    let a = FileStore::new(&path);
    let first = acquired(a.lock_refresh("k", LEASE).await.unwrap());
    a.unlock("k", &first).await.unwrap();
    // A refresh that failed saved nothing: the next fence is larger all the same.
    let second = acquired(a.lock_refresh("k", LEASE).await.unwrap());
    assert!(second.fence() > first.fence(), "{first:?} {second:?}");
    // The holder goes away without unlocking (as a process that dies): the lock is free.
    drop(a);
    let b = FileStore::new(&path);
    let third = acquired(b.lock_refresh("k", LEASE).await.unwrap());
    assert!(third.fence() > second.fence());
    // A lock file deleted under its holder no longer counts as held.
    std::fs::remove_dir_all(dir.0.join(".tokens.json.locks")).unwrap();
    assert!(!b.extend_lock("k", &third, LEASE).await.unwrap());
}

#[tokio::test]
async fn a_lock_file_that_cannot_be_created_is_an_error_saying_what_to_do() {
    // What a read-only directory gives (simulated with a file where the lock directory goes, so
    // that the test holds when run as root).
    let dir = TempDir::new();
    let path = dir.0.join("tokens.json");
    FileStore::new(&path).save("k", &token("a", "r")).await.unwrap();
    std::fs::remove_dir_all(dir.0.join(".tokens.json.locks")).unwrap();
    std::fs::write(dir.0.join(".tokens.json.locks"), b"").unwrap();
    let store = FileStore::new(&path);
    let err = store.lock_refresh("k", LEASE).await.unwrap_err();
    assert!(matches!(err, Error::Store { .. }), "{err:?}");
    let text = err.to_string();
    assert!(text.contains(".tokens.json.locks") && text.contains(&path.display().to_string()), "{text}");
    assert!(text.contains("rotating refresh token is never refreshed without it"), "{text}");
    assert!(text.contains(&format!("make the directory `{}` writable", dir.0.display())), "{text}");
    // Reading still works.
    assert!(store.load("k").await.unwrap().is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_stores_saving_different_keys_at_once_lose_nothing() {
    // Each store has its own in-process lock; only the cross-process write lock keeps one
    // store's read-modify-write from overwriting the other's.
    let dir = TempDir::new();
    let path = dir.0.join("tokens.json");
    let stores = [FileStore::new(&path), FileStore::new(&path)];
    let mut tasks = Vec::new();
    for i in 0..40 {
        let store = stores[i % 2].clone();
        tasks.push(tokio::spawn(async move { store.save(&format!("k{i}"), &token(&format!("a{i}"), "r")).await }));
    }
    for t in tasks {
        t.await.unwrap().unwrap();
    }
    let map = read_map(&path, false).unwrap();
    assert_eq!(map.len(), 40, "{:?}", map.keys().collect::<Vec<_>>());
}

#[tokio::test]
async fn probe_finds_an_unwritable_path_and_a_corrupt_file_before_anything_is_spent() {
    // Issue 15, item 9: `--store` under a regular file lost a spent code's tokens.
    let dir = TempDir::new();
    let good = FileStore::new(dir.0.join("sub").join("tokens.json"));
    good.probe().await.unwrap();
    let leftovers: Vec<_> = std::fs::read_dir(dir.0.join("sub")).unwrap().flatten().map(|e| e.file_name()).collect();
    assert!(leftovers.iter().all(|n| !n.to_string_lossy().ends_with(".probe")), "{leftovers:?}");
    std::fs::write(dir.0.join("regular"), b"x").unwrap();
    let under_a_file = FileStore::new(dir.0.join("regular").join("tokens.json"));
    let err = under_a_file.probe().await.unwrap_err();
    assert!(matches!(err, Error::Store { .. }) && err.to_string().contains("regular"), "{err}");
    std::fs::write(dir.0.join("corrupt.json"), b"{ nope").unwrap();
    assert!(FileStore::new(dir.0.join("corrupt.json")).probe().await.is_err());
}

#[tokio::test]
async fn corrupt_file_is_an_error_and_is_never_overwritten() {
    let dir = TempDir::new();
    let path = dir.0.join("tokens.json");
    std::fs::write(&path, b"{ not json").unwrap();
    let store = FileStore::new(&path);
    let err = store.load("k").await.unwrap_err();
    let text = err.to_string();
    assert!(matches!(err, Error::Store { .. }), "{err:?}");
    assert!(text.contains(&path.display().to_string()), "{text}");
    assert!(text.contains("fix it, or delete it"), "{text}");
    assert!(store.save("k", &token("a", "r")).await.is_err());
    assert!(store.remove("k").await.is_err());
    assert_eq!(std::fs::read(&path).unwrap(), b"{ not json");
    // Valid JSON of the wrong shape is refused the same way.
    std::fs::write(&path, br#"{"k": {"access_token": 5}}"#).unwrap();
    assert!(matches!(store.load("k").await, Err(Error::Store { .. })));
}

#[tokio::test]
async fn unreadable_path_is_a_clear_error() {
    let dir = TempDir::new();
    // A directory where the file should be cannot be read as a file.
    let err = FileStore::new(&dir.0).load("k").await.unwrap_err();
    assert!(matches!(err, Error::Store { .. }));
    assert!(err.to_string().contains(&dir.0.display().to_string()), "{err}");
}

#[tokio::test]
async fn empty_file_is_an_empty_store() {
    let dir = TempDir::new();
    let path = dir.0.join("tokens.json");
    std::fs::write(&path, b"\n").unwrap();
    let store = FileStore::new(&path);
    assert!(store.load("k").await.unwrap().is_none());
    store.save("k", &token("a", "r")).await.unwrap();
    assert!(store.load("k").await.unwrap().is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_saves_of_different_keys_are_all_kept() {
    let dir = TempDir::new();
    let store = FileStore::new(dir.0.join("tokens.json"));
    let mut tasks = Vec::new();
    for i in 0..20 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move { store.save(&format!("k{i}"), &token(&format!("a{i}"), "r")).await }));
    }
    for t in tasks {
        t.await.unwrap().unwrap();
    }
    for i in 0..20 {
        let t = store.load(&format!("k{i}")).await.unwrap().unwrap();
        assert_eq!(t.secret().expose_secret(), &format!("a{i}"));
    }
}

#[tokio::test]
async fn a_file_task_that_panicked_is_a_runtime_error_without_the_panic_message() {
    let store = FileStore::new("tokens.json");
    let join = tokio::task::spawn_blocking(|| panic!("secret-in-the-panic")).await.unwrap_err();
    let err = store.task_failed(join);
    let text = err.to_string();
    assert!(matches!(err, Error::Runtime { .. }), "{err:?}");
    assert!(text.contains("panicked") && text.contains("tokens.json") && !text.contains("secret-in-the-panic"));
}

#[test]
fn debug_shows_the_path_only() {
    let store = FileStore::new("/tmp/x.json");
    assert_eq!(format!("{store:?}"), "FileStore { path: \"/tmp/x.json\", encrypted: false }");
}

#[cfg(feature = "encryption")]
mod encrypted {
    use super::*;
    use crate::store::StoreEncryption;
    use secrecy::SecretBox;

    const ACCESS: &str = "access-Zq8wX3vKp1Lm";
    const REFRESH: &str = "refresh-Rt5yN7bQc2Hs";

    fn sealer(byte: u8) -> StoreEncryption {
        StoreEncryption::from_bytes(SecretBox::new(Box::new([byte; 32])))
    }

    /// Every run of 6 characters of `secret`.
    fn fragments(secret: &str) -> Vec<&str> {
        (0..=secret.len() - 6).map(|i| &secret[i..i + 6]).collect()
    }

    #[tokio::test]
    async fn the_file_holds_no_token_and_reads_back() {
        let dir = TempDir::new();
        let path = dir.0.join("tokens.json");
        let store = FileStore::new(&path).with_encryption(sealer(1));
        assert!(store.encrypted());
        store.save("whitebit/client/general", &token(ACCESS, REFRESH)).await.unwrap();
        store.save("other", &token("access-second-set", "refresh-second-set")).await.unwrap();

        let text = std::fs::read_to_string(&path).unwrap();
        for fragment in fragments(ACCESS).into_iter().chain(fragments(REFRESH)) {
            assert!(!text.contains(fragment), "`{fragment}` is in the file:\n{text}");
        }
        assert!(!text.contains("second-set") && !text.contains("users.read"), "{text}");
        // Keys and versions stay visible; everything else is sealed.
        let json: serde_json::Value = serde_json::from_str(&text).unwrap();
        let record = &json["whitebit/client/general"];
        assert!(record["sealed"].as_str().unwrap().starts_with("ts1:"), "{text}");
        assert_eq!(record["version"], 1);
        assert_eq!(record.as_object().unwrap().len(), 2, "{text}");

        let reopened = FileStore::new(&path).with_encryption(sealer(1));
        let loaded = reopened.load_versioned("whitebit/client/general").await.unwrap().unwrap();
        assert_eq!(loaded.version, Some(1));
        assert_eq!(loaded.token.secret().expose_secret(), ACCESS);
        assert_eq!(loaded.token.refresh_token().unwrap().secret().expose_secret(), REFRESH);
        assert_eq!(loaded.token.scopes(), &Scopes::parse("general,users.read"));
        reopened.remove("other").await.unwrap();
        assert!(reopened.load("other").await.unwrap().is_none());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        }
    }

    #[tokio::test]
    async fn another_key_or_a_moved_record_fails_and_leaves_the_file() {
        let dir = TempDir::new();
        let path = dir.0.join("tokens.json");
        FileStore::new(&path).with_encryption(sealer(1)).save("a", &token(ACCESS, REFRESH)).await.unwrap();
        let before = std::fs::read(&path).unwrap();

        let wrong = FileStore::new(&path).with_encryption(sealer(2));
        let err = wrong.load("a").await.unwrap_err();
        let text = err.to_string();
        assert!(matches!(err, Error::Store { .. }), "{err:?}");
        assert!(text.contains(&path.display().to_string()) && text.contains("another key"), "{text}");
        // Nor does it add a set sealed with its own key beside them.
        let err = wrong.save("c", &token("x", "y")).await.unwrap_err();
        assert!(err.to_string().contains("not saved"), "{err}");
        assert!(wrong.save("a", &token("x", "y")).await.is_err());
        assert_eq!(std::fs::read(&path).unwrap(), before);

        // The record copied under another key does not open there.
        let mut json: serde_json::Value = serde_json::from_slice(&before).unwrap();
        let record = json["a"].clone();
        json["b"] = record;
        std::fs::write(&path, serde_json::to_vec(&json).unwrap()).unwrap();
        let store = FileStore::new(&path).with_encryption(sealer(1));
        assert!(store.load("a").await.unwrap().is_some());
        let err = store.load("b").await.unwrap_err();
        assert!(err.to_string().contains("moved"), "{err}");
    }

    #[tokio::test]
    async fn plain_and_encrypted_files_are_not_mixed() {
        let dir = TempDir::new();
        let plain = dir.0.join("plain.json");
        FileStore::new(&plain).save("k", &token(ACCESS, REFRESH)).await.unwrap();
        let before = std::fs::read(&plain).unwrap();
        let store = FileStore::new(&plain).with_encryption(sealer(1));
        let err = store.load("k").await.unwrap_err();
        assert!(matches!(err, Error::Store { .. }), "{err:?}");
        let text = err.to_string();
        assert!(text.contains("in the clear") && text.contains("delete it"), "{text}");
        assert!(!text.contains(ACCESS), "{text}");
        // Neither a save nor a remove touches it: nothing is encrypted behind the user's back.
        assert!(store.save("other", &token("x", "y")).await.is_err());
        assert!(store.remove("k").await.is_err());
        assert_eq!(std::fs::read(&plain).unwrap(), before);

        let sealed = dir.0.join("sealed.json");
        FileStore::new(&sealed).with_encryption(sealer(1)).save("k", &token(ACCESS, REFRESH)).await.unwrap();
        let before = std::fs::read(&sealed).unwrap();
        let store = FileStore::new(&sealed);
        let err = store.load("k").await.unwrap_err();
        assert!(matches!(err, Error::Store { .. }), "{err:?}");
        assert!(err.to_string().contains("encrypted token sets") && err.to_string().contains("encryption_key"));
        assert!(store.save("k", &token("x", "y")).await.is_err());
        assert_eq!(std::fs::read(&sealed).unwrap(), before);
    }

    #[test]
    fn debug_says_encrypted_and_shows_no_key() {
        let store = FileStore::new("/tmp/x.json").with_encryption(sealer(0xAB));
        let debug = format!("{store:?}");
        assert_eq!(debug, "FileStore { path: \"/tmp/x.json\", encrypted: true }");
    }
}
