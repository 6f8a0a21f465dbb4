//! [`FileStore`]: token sets in a JSON file, so that a CLI or a service keeps its tokens (and, above
//! all, its refresh tokens) across restarts.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use async_trait::async_trait;
use rand::Rng as _;

use crate::error::{Error, Result};
use crate::store::{Coordinator, LockGuard, RefreshLock, StoredToken, TokenStore, Versioned};
use crate::token::AccessToken;

mod disk;

use disk::{
    create_dir, dir_and_name, io_error, lock_for_write, read_map, refresh_lock_path, sealed_file_error, still_in_place,
    take_refresh_lock, write_map, write_new_file,
};

/// The file's content: store key -> token set.
type TokenMap = BTreeMap<String, FileRecord>;

/// One token set in the file, with the version the store gave it (absent in files written before
/// versions: read as 0): either the shared [`StoredToken`] form in the clear, or (a store with
/// encryption) that form sealed by [`StoreEncryption`](crate::store::StoreEncryption), with only the version
/// beside it.
///
/// A file holds records of one kind only: a store refuses a file of the other kind.
#[derive(serde::Serialize, serde::Deserialize)]
#[serde(untagged)]
enum FileRecord {
    Sealed {
        sealed: String,
        #[serde(default)]
        version: u64,
    },
    Plain {
        #[serde(flatten)]
        token: StoredToken,
        #[serde(default)]
        version: u64,
    },
}

impl FileRecord {
    fn version(&self) -> u64 {
        match self {
            FileRecord::Sealed { version, .. } | FileRecord::Plain { version, .. } => *version,
        }
    }
}

/// A [`TokenStore`] that keeps token sets in one JSON file: an object mapping each store key to a
/// [`StoredToken`].
///
/// - **Atomic saves**: the whole file is written to a temporary file in the same directory, flushed
///   to disk, then renamed over the old one, so a crash leaves either the old file or the new one,
///   never half of each. Saves from one process (through one `FileStore` or its clones) are
///   serialized, so two concurrent saves of different keys never lose one another.
/// - **Owner-only**: the file holds tokens (in the clear, unless the store encrypts them); on Unix it
///   is created with permissions `0600` (and a missing parent directory with `0700`), before anything
///   is written to it.
/// - **Optional encryption** (cargo feature `encryption`): with
///   `FileStore::with_encryption`, every token set is sealed with AES-256-GCM and
///   bound to its key; the file then shows only the keys and each set's version. A file written
///   without encryption is refused by a store with it, and the reverse, with an error saying so.
/// - **Never silently overwritten**: a file that cannot be read or is not a valid token file gives
///   [`Error::Store`] naming the path and what to do (fix or delete it); a save refuses to replace it.
/// - **Kept owner-only when read**: on Unix, a file that other users can read (mode `0644`, say) is
///   made owner-only (`0600`) before it is read, with a warning; if that is not allowed (someone
///   else owns it), it is not read and the error says what to do.
///
/// # Several processes sharing one file
///
/// Processes (two `tokensmith token --store F` runs, several services) may share one file; their
/// refreshes are coordinated the way the Redis store coordinates a fleet
/// ([`coordination`](TokenStore::coordination) is the store itself), with OS file locks (`flock` on Unix,
/// `LockFileEx` on Windows) on small lock files in a directory beside the token file,
/// `.<file name>.locks/` (created `0700`; the lock files are kept, never deleted):
/// - **One refresh per key at a time**: a refresh of a key runs under that key's lock (one lock file
///   per key, named by a hash of the key), taken without waiting; another process (or another
///   `FileStore` on the same file, even in the same process; clones share their locks) finds it
///   held and waits for the token set the holder saves (up to the cache's
///   [`lock_wait`](crate::cache::RefreshPolicy::lock_wait)), so that a rotating refresh token is sent once.
///   The lock is held from before the store is re-read until the new set is saved.
/// - **Fenced saves**: the lock comes with a fencing number larger than every version in the file
///   and every number handed out before for the key; a fenced save writes only if the key's set in
///   the file is older, and gives the set that number as its version.
/// - **No lease, crash-safe**: an OS lock is held until it is released or its process exits (even by
///   a crash or `kill -9`), so it never lapses while its holder runs, and a dead holder never blocks
///   the others.
/// - **Whole-file writes are serialized across processes** by a write lock, so that two processes
///   saving different keys at once never lose one another's save.
///
/// A rotating refresh token is never refreshed without its lock: if the lock file cannot be created
/// (a read-only directory), the refresh is refused with an error saying to make the directory
/// writable. The locks are advisory and as reliable as the file system's: keep the file on a local
/// disk (not NFS), and do not share it between machines.
///
/// ```
/// use std::sync::Arc;
/// use tokensmith_core::{AccessToken, store::FileStore, TokenStore};
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> tokensmith_core::Result<()> {
/// # let dir = std::env::temp_dir().join(format!("tokensmith-doc-{}", std::process::id()));
/// let store: Arc<dyn TokenStore> = Arc::new(FileStore::new(dir.join("tokens.json")));
/// store.save("demo", &AccessToken::builder("t").build()).await?;
/// assert!(store.load("demo").await?.is_some());
/// # std::fs::remove_dir_all(&dir).ok();
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct FileStore {
    path: Arc<PathBuf>,
    /// Serializes read-modify-write cycles within the process.
    lock: Arc<tokio::sync::Mutex<()>>,
    /// The refresh locks this store (and its clones) holds, by store key.
    held: Arc<Mutex<HashMap<String, HeldLock>>>,
    #[cfg(feature = "encryption")]
    encryption: Option<Arc<crate::seal::StoreEncryption>>,
}

impl fmt::Debug for FileStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FileStore").field("path", &self.path).field("encrypted", &self.encrypted()).finish()
    }
}

impl FileStore {
    /// A store in the file at `path`. Nothing is read or created until the first load or save; a
    /// missing file is an empty store.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        FileStore {
            path: Arc::new(path.into()),
            lock: Arc::new(tokio::sync::Mutex::new(())),
            held: Arc::new(Mutex::new(HashMap::new())),
            #[cfg(feature = "encryption")]
            encryption: None,
        }
    }

    /// Encrypts every token set this store writes with `encryption`, and reads only encrypted ones.
    ///
    /// Each set is sealed on its own and bound to its key (see [`StoreEncryption`](crate::store::StoreEncryption));
    /// the file keeps the store keys and each set's version in the clear, so sets can be found and
    /// ordered, but no token, refresh token, scope or expiry. A file that holds sets in the clear is
    /// refused (with an error saying so), never silently encrypted or mixed: delete it and authorize
    /// again, or read it with a store without encryption.
    ///
    /// ```
    /// use tokensmith_core::{AccessToken, store::FileStore, store::StoreEncryption, TokenStore};
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> tokensmith_core::Result<()> {
    /// # let dir = std::env::temp_dir().join(format!("tokensmith-doc-enc-{}", std::process::id()));
    /// # let key = StoreEncryption::generate_key()?;
    /// # let env = |_: &str| Some(secrecy::ExposeSecret::expose_secret(&key).to_owned());
    /// // In production: StoreEncryption::from_env("MYAPP_TOKEN_KEY")?
    /// let sealer = StoreEncryption::from_env_with("MYAPP_TOKEN_KEY", env)?;
    /// let store = FileStore::new(dir.join("tokens.json")).with_encryption(sealer);
    /// store.save("demo", &AccessToken::builder("access-abc").build()).await?;
    /// assert!(!std::fs::read_to_string(store.path()).unwrap().contains("access-abc"));
    /// assert!(store.load("demo").await?.is_some());
    /// # std::fs::remove_dir_all(&dir).ok();
    /// # Ok(()) }
    /// ```
    #[cfg(feature = "encryption")]
    #[cfg_attr(docsrs, doc(cfg(feature = "encryption")))]
    pub fn with_encryption(mut self, encryption: crate::seal::StoreEncryption) -> Self {
        self.encryption = Some(Arc::new(encryption));
        self
    }

    /// Whether this store encrypts its token sets.
    pub fn encrypted(&self) -> bool {
        #[cfg(feature = "encryption")]
        return self.encryption.is_some();
        #[cfg(not(feature = "encryption"))]
        return false;
    }

    /// The token set of `record` (under `key`), opened if it is sealed.
    fn open(&self, key: &str, record: FileRecord) -> Result<Versioned> {
        match record {
            FileRecord::Plain { token, version } => Ok(Versioned::new(AccessToken::from(token), Some(version))),
            #[cfg(feature = "encryption")]
            FileRecord::Sealed { sealed, version } => match &self.encryption {
                Some(encryption) => {
                    let token = encryption.open_token(key, &sealed).map_err(|e| self.in_file(e))?;
                    Ok(Versioned::new(AccessToken::from(token), Some(version)))
                }
                None => Err(sealed_file_error(&self.path)),
            },
            #[cfg(not(feature = "encryption"))]
            FileRecord::Sealed { .. } => {
                let _ = key;
                Err(sealed_file_error(&self.path))
            }
        }
    }

    /// The record to write for `token` under `key`: sealed if the store encrypts.
    fn record(&self, key: &str, token: StoredToken) -> Result<FileRecord> {
        #[cfg(feature = "encryption")]
        if let Some(encryption) = &self.encryption {
            let sealed = encryption.seal_token(key, &token)?;
            return Ok(FileRecord::Sealed { sealed, version: 0 });
        }
        let _ = key;
        Ok(FileRecord::Plain { token, version: 0 })
    }

    /// Refuses to add a set sealed with this store's key to a file sealed with another key: opens one
    /// set already in the file (another key's, if there is one).
    fn check_same_key(&self, map: &TokenMap, key: &str) -> Result<()> {
        #[cfg(feature = "encryption")]
        if let Some(encryption) = &self.encryption {
            let existing = map.iter().find(|(k, _)| k.as_str() != key).or_else(|| map.get_key_value(key));
            if let Some((existing_key, FileRecord::Sealed { sealed, .. })) = existing {
                return encryption.open(existing_key, sealed).map(drop).map_err(|e| match self.in_file(e) {
                    Error::Store { message, source } => Error::store(
                        format!("{message}; the new token set was not saved, so that one file never mixes two keys"),
                        source,
                    ),
                    other => other,
                });
            }
        }
        let _ = (map, key);
        Ok(())
    }

    /// Names the file in a store error from sealing.
    #[cfg(feature = "encryption")]
    fn in_file(&self, error: Error) -> Error {
        match error {
            Error::Store { message, source } => {
                Error::store(format!("in the token file `{}`, {message}", self.path.display()), source)
            }
            other => other,
        }
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Runs `f` on the file's path on the blocking thread pool, holding the store's lock.
    async fn with_file<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Path) -> Result<T> + Send + 'static,
    {
        let _guard = self.lock.lock().await;
        let path = self.path.clone();
        tokio::task::spawn_blocking(move || f(&path)).await.map_err(|e| self.task_failed(e))?
    }

    /// The blocking task that reads or writes the file did not finish: it panicked, or its runtime
    /// shut down. That is no fault of the file, so it is [`Error::Runtime`], not [`Error::Store`]; the
    /// panic's message is left out (it is not ours to vouch for).
    fn task_failed(&self, e: tokio::task::JoinError) -> Error {
        let what = if e.is_panic() { "panicked" } else { "was cancelled (its runtime shut down)" };
        Error::Runtime {
            message: format!("the task accessing the token file `{}` {what}; try again", self.path.display()),
        }
    }

    /// The refresh locks held by this store (a panic elsewhere cannot leave the map inconsistent:
    /// every change is a single insert or remove).
    fn held(&self) -> std::sync::MutexGuard<'_, HashMap<String, HeldLock>> {
        self.held.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// A refresh lock held by a [`FileStore`]: the open lock file (closing it releases the OS lock) and
/// the owner value of its guard.
struct HeldLock {
    owner: String,
    file: Arc<File>,
}

impl fmt::Debug for HeldLock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // As `LockGuard`'s: the owner value is what lets a holder release the lock.
        f.debug_struct("HeldLock").field("owner", &crate::support::REDACTED).field("file", &self.file).finish()
    }
}

#[async_trait]
impl TokenStore for FileStore {
    async fn load(&self, key: &str) -> Result<Option<AccessToken>> {
        Ok(self.load_versioned(key).await?.map(|v| v.token))
    }

    async fn save(&self, key: &str, token: &AccessToken) -> Result<()> {
        self.save_versioned(key, token).await.map(drop)
    }

    async fn load_versioned(&self, key: &str) -> Result<Option<Versioned>> {
        let owned_key = key.to_owned();
        let encrypted = self.encrypted();
        let record = self.with_file(move |path| Ok(read_map(path, encrypted)?.remove(&owned_key))).await?;
        record.map(|record| self.open(key, record)).transpose()
    }

    /// The version is one more than the largest in the file, so it grows with every save.
    async fn save_versioned(&self, key: &str, token: &AccessToken) -> Result<Option<u64>> {
        let mut record = self.record(key, StoredToken::from(token))?;
        let key = key.to_owned();
        let store = self.clone();
        self.with_file(move |path| {
            let _write = lock_for_write(path)?;
            let mut map = read_map(path, store.encrypted())?;
            store.check_same_key(&map, &key)?;
            let version = map.values().map(FileRecord::version).max().unwrap_or(0).saturating_add(1);
            match &mut record {
                FileRecord::Sealed { version: v, .. } | FileRecord::Plain { version: v, .. } => *v = version,
            }
            map.insert(key, record);
            write_map(path, &map).map(|()| Some(version))
        })
        .await
    }

    async fn remove(&self, key: &str) -> Result<()> {
        let key = key.to_owned();
        let encrypted = self.encrypted();
        self.with_file(move |path| {
            if !path.exists() {
                return Ok(());
            }
            let _write = lock_for_write(path)?;
            let mut map = read_map(path, encrypted)?;
            if map.remove(&key).is_some() { write_map(path, &map) } else { Ok(()) }
        })
        .await
    }

    /// The file can be read (and decrypted, with encryption) and its directory written: a temporary
    /// file is created there and removed, and the write lock taken, so that an authorization fails
    /// before its code is spent rather than after.
    async fn probe(&self) -> Result<()> {
        let encrypted = self.encrypted();
        self.with_file(move |path| {
            read_map(path, encrypted)?;
            let (dir, file_name) = dir_and_name(path);
            create_dir(&dir)
                .map_err(|e| io_error(path, "create the directory of", "check the path and its permissions", e))?;
            let suffix: u64 = rand::rng().random();
            let probe = dir.join(format!(".{file_name}.{suffix:016x}.probe"));
            write_new_file(&probe, b"").map_err(|e| {
                io_error(path, "write beside", "make its directory writable by this user, or choose another path", e)
            })?;
            let _ = std::fs::remove_file(&probe);
            lock_for_write(path).map(drop)
        })
        .await
    }

    /// Refreshes are coordinated across processes with OS file locks (see [`FileStore`]).
    fn coordination(&self) -> Option<&dyn Coordinator> {
        Some(self)
    }
}

#[async_trait]
impl Coordinator for FileStore {
    /// Tries the key's lock file, without waiting. `lease` is not used: an OS lock is held until it
    /// is released or its process exits.
    async fn lock_refresh(&self, key: &str, lease: Duration) -> Result<RefreshLock> {
        let _ = lease;
        if self.held().contains_key(key) {
            return Ok(RefreshLock::HeldElsewhere);
        }
        let lock_path = refresh_lock_path(&self.path, key);
        let encrypted = self.encrypted();
        let Some((file, fence)) = self.with_file(move |path| take_refresh_lock(path, &lock_path, encrypted)).await?
        else {
            return Ok(RefreshLock::HeldElsewhere);
        };
        let owner = format!("{:032x}", rand::rng().random::<u128>());
        self.held().insert(key.to_owned(), HeldLock { owner: owner.clone(), file: Arc::new(file) });
        Ok(RefreshLock::Acquired(LockGuard::new(owner, fence)))
    }

    /// `Ok(true)` while this store holds the lock of `guard` and its lock file is still the one in the
    /// lock directory (not deleted or replaced since). `lease` is not used.
    async fn extend_lock(&self, key: &str, guard: &LockGuard, lease: Duration) -> Result<bool> {
        let _ = lease;
        let file = match self.held().get(key) {
            Some(held) if held.owner == guard.owner() => held.file.clone(),
            _ => return Ok(false),
        };
        let lock_path = refresh_lock_path(&self.path, key);
        tokio::task::spawn_blocking(move || still_in_place(&file, &lock_path)).await.map_err(|e| self.task_failed(e))
    }

    /// Writes only if the key's set in the file has a version below `guard.fence()`; the set written
    /// gets that version.
    async fn save_fenced(&self, key: &str, token: &AccessToken, guard: &LockGuard) -> Result<bool> {
        let mut record = self.record(key, StoredToken::from(token))?;
        let fence = guard.fence();
        match &mut record {
            FileRecord::Sealed { version, .. } | FileRecord::Plain { version, .. } => *version = fence,
        }
        let key = key.to_owned();
        let store = self.clone();
        self.with_file(move |path| {
            let _write = lock_for_write(path)?;
            let mut map = read_map(path, store.encrypted())?;
            if map.get(&key).is_some_and(|stored| stored.version() >= fence) {
                return Ok(false);
            }
            store.check_same_key(&map, &key)?;
            map.insert(key, record);
            write_map(path, &map).map(|()| true)
        })
        .await
    }

    /// Releases the key's lock file if `guard` holds it.
    async fn unlock(&self, key: &str, guard: &LockGuard) -> Result<()> {
        let released = {
            let mut held = self.held();
            match held.get(key) {
                Some(h) if h.owner == guard.owner() => held.remove(key),
                _ => None,
            }
        };
        if let Some(held) = released {
            // Closing the file releases the lock too (once no renewal still has it open).
            if let Err(e) = fs4::FileExt::unlock(&*held.file) {
                tracing::debug!(key = %key, error = %e, "the refresh lock file could not be unlocked; closing it releases it");
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
