//! [`FileStore`]: token sets in a JSON file, so that a CLI or a service keeps its tokens (and, above
//! all, its refresh tokens) across restarts.

use std::collections::BTreeMap;
use std::fmt;
use std::io::{self, Write as _};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use async_trait::async_trait;
use rand::Rng as _;

use crate::error::{BoxError, Error, Result};
use crate::store::{StoredToken, TokenStore, Versioned};
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
///
/// Several *processes* writing the same file at once are not coordinated: the last save wins. Give
/// each process its own file, or use a shared store made for it.
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
        tokio::task::spawn_blocking(move || f(&path)).await.map_err(|e| {
            Error::store(
                format!("the token file `{}` could not be accessed: the file task failed ({e})", self.path.display()),
                None,
            )
        })?
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
            let mut map = read_map(path, encrypted)?;
            if map.remove(&key).is_some() { write_map(path, &map) } else { Ok(()) }
        })
        .await
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
    let bytes = match std::fs::read(path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(TokenMap::new()),
        Err(e) => return Err(io_error(path, "read", "check that it is a file the current user may read", e)),
    };
    warn_if_readable_by_others(path);
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
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir.to_path_buf(),
        _ => PathBuf::from("."),
    };
    create_dir(&dir).map_err(|e| io_error(path, "create the directory of", "check the path and its permissions", e))?;
    let file_name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "tokens".into());
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

fn warn_if_readable_by_others(path: &Path) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        if let Ok(meta) = std::fs::metadata(path) {
            if meta.permissions().mode() & 0o077 != 0 {
                tracing::warn!(
                    path = %path.display(),
                    mode = format!("{:o}", meta.permissions().mode() & 0o777),
                    "the token file is readable by other users; it will be rewritten owner-only on the next save"
                );
            }
        }
    }
    #[cfg(not(unix))]
    let _ = path;
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
        // No temporary file is left behind.
        let entries: Vec<_> = std::fs::read_dir(path.parent().unwrap()).unwrap().collect();
        assert_eq!(entries.len(), 1);
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
