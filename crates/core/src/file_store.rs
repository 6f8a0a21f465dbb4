//! [`FileStore`]: token sets in a JSON file, so that a CLI or a service keeps its tokens (and, above
//! all, its refresh tokens) across restarts.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::fs::File;
use std::io::{self, Read as _, Seek as _, Write as _};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use async_trait::async_trait;
use fs4::TryLockError;
use rand::Rng as _;

use crate::error::{BoxError, Error, Result};
use crate::store::{Coordinator, LockGuard, RefreshLock, StoredToken, TokenStore, Versioned};
use crate::token::AccessToken;

/// The file's content: store key -> token set.
type TokenMap = BTreeMap<String, FileRecord>;

/// One token set in the file, with the version the store gave it (absent in files written before
/// versions: read as 0): either the shared [`StoredToken`] form in the clear, or (a store with
/// encryption) that form sealed by [`StoreEncryption`](crate::StoreEncryption), with only the version
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
///   [`lock_wait`](crate::RefreshPolicy::lock_wait)), so that a rotating refresh token is sent once.
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
/// use tokensmith_core::{AccessToken, FileStore, TokenStore};
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
    /// Each set is sealed on its own and bound to its key (see [`StoreEncryption`](crate::StoreEncryption));
    /// the file keeps the store keys and each set's version in the clear, so sets can be found and
    /// ordered, but no token, refresh token, scope or expiry. A file that holds sets in the clear is
    /// refused (with an error saying so), never silently encrypted or mixed: delete it and authorize
    /// again, or read it with a store without encryption.
    ///
    /// ```
    /// use tokensmith_core::{AccessToken, FileStore, StoreEncryption, TokenStore};
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
        f.debug_struct("HeldLock").field("owner", &"** redacted **").field("file", &self.file).finish()
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

/// The directory of the lock files beside the token file `path`: `.<file name>.locks`.
fn locks_dir(path: &Path) -> PathBuf {
    let (dir, file_name) = dir_and_name(path);
    dir.join(format!(".{file_name}.locks"))
}

/// The refresh lock file of `key`: named by a hash of the key (keys may hold any character).
fn refresh_lock_path(path: &Path, key: &str) -> PathBuf {
    use sha2::Digest as _;
    let digest = sha2::Sha256::digest(key.as_bytes());
    let name: String = digest.iter().take(16).map(|b| format!("{b:02x}")).collect();
    locks_dir(path).join(format!("{name}.lock"))
}

/// The directory of `path` (`.` if it has none) and its file name.
fn dir_and_name(path: &Path) -> (PathBuf, String) {
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let file_name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "tokens".into());
    (dir, file_name)
}

/// An error about the lock file `lock` of the token file `path`, saying what to do.
fn lock_error(path: &Path, lock: &Path, action: &str, e: io::Error) -> Error {
    let (dir, _) = dir_and_name(path);
    Error::store(
        format!(
            "could not {action} the lock file `{}` of the token file `{}` ({e}); processes sharing a token file take this lock to refresh and save one at a time, and a rotating refresh token is never refreshed without it: make the directory `{}` writable by this user (saving the token file needs that too), or keep the token file in a directory that is",
            lock.display(),
            path.display(),
            dir.display()
        ),
        Some(Arc::new(e) as BoxError),
    )
}

/// Opens (creating it, owner-only, with its directory) the lock file `lock` of the token file `path`.
fn open_lock_file(path: &Path, lock: &Path) -> Result<File> {
    if let Some(dir) = lock.parent() {
        create_dir(dir).map_err(|e| lock_error(path, lock, "create the directory of", e))?;
    }
    let mut options = std::fs::OpenOptions::new();
    options.read(true).write(true).create(true).truncate(false);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600);
    }
    options.open(lock).map_err(|e| lock_error(path, lock, "open", e))
}

/// Takes the lock serializing whole-file writes across processes (waiting for it: it is held only
/// while a file is written); released when the returned file is dropped.
fn lock_for_write(path: &Path) -> Result<File> {
    let lock = locks_dir(path).join("write.lock");
    let file = open_lock_file(path, &lock)?;
    fs4::FileExt::lock(&file).map_err(|e| lock_error(path, &lock, "lock", e))?;
    Ok(file)
}

/// Tries the refresh lock file `lock` without waiting: `None` if someone else holds it, or the open,
/// locked file and its fencing number, larger than every version in the token file and every fence
/// handed out before (the last one is kept in the lock file).
fn take_refresh_lock(path: &Path, lock: &Path, encrypted: bool) -> Result<Option<(File, u64)>> {
    let mut file = open_lock_file(path, lock)?;
    match fs4::FileExt::try_lock(&file) {
        Ok(()) => {}
        Err(TryLockError::WouldBlock) => return Ok(None),
        Err(TryLockError::Error(e)) => return Err(lock_error(path, lock, "lock", e)),
    }
    let mut text = String::new();
    file.read_to_string(&mut text).map_err(|e| lock_error(path, lock, "read", e))?;
    let last_fence: u64 = text.trim().parse().unwrap_or(0);
    let max_version = read_map(path, encrypted)?.values().map(FileRecord::version).max().unwrap_or(0);
    let fence = last_fence.max(max_version).saturating_add(1);
    file.set_len(0)
        .and_then(|()| file.rewind())
        .and_then(|()| writeln!(file, "{fence}"))
        .map_err(|e| lock_error(path, lock, "write", e))?;
    Ok(Some((file, fence)))
}

/// Whether the held lock file `file` is still the file at `lock` (not deleted or replaced, which
/// would let another process lock a new file there).
fn still_in_place(file: &File, lock: &Path) -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt as _;
        match (file.metadata(), std::fs::metadata(lock)) {
            (Ok(held), Ok(there)) => held.dev() == there.dev() && held.ino() == there.ino(),
            _ => false,
        }
    }
    #[cfg(not(unix))]
    {
        let _ = file;
        lock.exists()
    }
}

fn io_error(path: &Path, action: &str, what_to_do: &str, e: io::Error) -> Error {
    Error::store(
        format!("could not {action} the token file `{}` ({e}); {what_to_do}", path.display()),
        Some(Arc::new(e) as BoxError),
    )
}

/// Reads the file; a missing file is an empty map. A file whose records are not all sealed (when
/// `encrypted`) or all in the clear (when not) is refused.
fn read_map(path: &Path, encrypted: bool) -> Result<TokenMap> {
    let read_error = |e| io_error(path, "read", "check that it is a file the current user may read", e);
    let mut file = match File::open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(TokenMap::new()),
        Err(e) => return Err(read_error(e)),
    };
    make_owner_only(path, &file)?;
    let mut bytes = Vec::new();
    file.read_to_end(&mut bytes).map_err(read_error)?;
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(TokenMap::new());
    }
    // Only the position of the problem is reported: serde_json's own message may quote a value,
    // which could be a token.
    let map: TokenMap = serde_json::from_slice(&bytes).map_err(|e| {
        let what = match e.classify() {
            serde_json::error::Category::Syntax | serde_json::error::Category::Eof => "is not valid JSON",
            _ => "is JSON but not a map of token sets",
        };
        Error::store(
            format!(
                "the token file `{}` {what} (line {}, column {}); it was left untouched: fix it, or delete it and authorize again",
                path.display(),
                e.line(),
                e.column()
            ),
            None,
        )
    })?;
    let sealed = |r: &FileRecord| matches!(r, FileRecord::Sealed { .. });
    if encrypted && !map.values().all(sealed) {
        return Err(Error::store(
            format!(
                "the token file `{}` holds token sets in the clear, but this store is configured to encrypt them; it was left untouched: delete it and authorize again to start an encrypted file, or read it without an encryption key",
                path.display()
            ),
            None,
        ));
    }
    if !encrypted && map.values().any(sealed) {
        return Err(sealed_file_error(path));
    }
    Ok(map)
}

/// A file of sealed token sets read by a store without encryption.
fn sealed_file_error(path: &Path) -> Error {
    Error::store(
        format!(
            "the token file `{}` holds encrypted token sets, but this store has no encryption key; it was left untouched: give the store the key they were written with (`encryption_key` in `[store]`), or delete the file and authorize again",
            path.display()
        ),
        None,
    )
}

/// Writes the map to a temporary file beside `path` (owner-only from creation), then renames it over
/// `path`.
fn write_map(path: &Path, map: &TokenMap) -> Result<()> {
    let json = serde_json::to_vec_pretty(map).map_err(|e| {
        Error::store(format!("the tokens could not be serialized ({e})"), Some(Arc::new(e) as BoxError))
    })?;
    let (dir, file_name) = dir_and_name(path);
    create_dir(&dir).map_err(|e| io_error(path, "create the directory of", "check the path and its permissions", e))?;
    let suffix: u64 = rand::rng().random();
    let tmp = dir.join(format!(".{file_name}.{suffix:016x}.tmp"));
    let result = write_new_file(&tmp, &json).and_then(|()| std::fs::rename(&tmp, path));
    if let Err(e) = result {
        let _ = std::fs::remove_file(&tmp);
        return Err(io_error(path, "write", "check that its directory exists and is writable", e));
    }
    sync_dir(&dir);
    Ok(())
}

fn write_new_file(path: &Path, contents: &[u8]) -> io::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600);
    }
    let mut file = options.open(path)?;
    file.write_all(contents)?;
    file.sync_all()
}

fn create_dir(dir: &Path) -> io::Result<()> {
    if dir.is_dir() {
        return Ok(());
    }
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt as _;
        builder.mode(0o700);
    }
    builder.create(dir)
}

/// Makes the rename durable (best effort; not possible on every platform).
fn sync_dir(dir: &Path) {
    #[cfg(unix)]
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
    #[cfg(not(unix))]
    let _ = dir;
}

/// Makes the open token file `file` owner-only (Unix) if other users can read or write it, with a
/// warning; refuses to go on if that is not allowed.
fn make_owner_only(path: &Path, file: &File) -> Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let Ok(meta) = file.metadata() else { return Ok(()) };
        let mode = meta.permissions().mode() & 0o777;
        if !meta.is_file() || mode & 0o077 == 0 {
            return Ok(());
        }
        if let Err(e) = file.set_permissions(std::fs::Permissions::from_mode(mode & 0o700)) {
            return Err(Error::store(
                format!(
                    "the token file `{}` can be read by other users (mode {mode:o}) and could not be made owner-only ({e}); it was not read: make it owner-only as its owner (`chmod 600 {}`), or delete it and authorize again",
                    path.display(),
                    path.display()
                ),
                Some(Arc::new(e) as BoxError),
            ));
        }
        tracing::warn!(
            path = %path.display(),
            mode = format!("{mode:o}"),
            "the token file was readable by other users; it was made owner-only (0600). Whoever could read it may have copied its tokens: authorize again to replace them if that matters"
        );
    }
    #[cfg(not(unix))]
    let _ = (path, file);
    Ok(())
}

#[cfg(test)]
mod tests {
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
        let leftovers: Vec<_> =
            std::fs::read_dir(dir.0.join("sub")).unwrap().flatten().map(|e| e.file_name()).collect();
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
        use crate::StoreEncryption;
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
}
