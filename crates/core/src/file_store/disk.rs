//! The file system side of [`FileStore`](super::FileStore): reading and atomically writing the token
//! file, its permissions, and the OS file locks beside it.

use std::fs::File;
use std::io::{self, Read as _, Seek as _, Write as _};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use fs4::TryLockError;
use rand::Rng as _;

use crate::error::{BoxError, Error, Result};

use super::{FileRecord, TokenMap};

/// The directory of the lock files beside the token file `path`: `.<file name>.locks`.
pub(super) fn locks_dir(path: &Path) -> PathBuf {
    let (dir, file_name) = dir_and_name(path);
    dir.join(format!(".{file_name}.locks"))
}

/// The refresh lock file of `key`: named by a hash of the key (keys may hold any character).
pub(super) fn refresh_lock_path(path: &Path, key: &str) -> PathBuf {
    use sha2::Digest as _;
    let digest = sha2::Sha256::digest(key.as_bytes());
    let name: String = digest.iter().take(16).map(|b| format!("{b:02x}")).collect();
    locks_dir(path).join(format!("{name}.lock"))
}

/// The directory of `path` (`.` if it has none) and its file name.
pub(super) fn dir_and_name(path: &Path) -> (PathBuf, String) {
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let file_name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "tokens".into());
    (dir, file_name)
}

/// An error about the lock file `lock` of the token file `path`, saying what to do.
pub(super) fn lock_error(path: &Path, lock: &Path, action: &str, e: io::Error) -> Error {
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
pub(super) fn open_lock_file(path: &Path, lock: &Path) -> Result<File> {
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
pub(super) fn lock_for_write(path: &Path) -> Result<File> {
    let lock = locks_dir(path).join("write.lock");
    let file = open_lock_file(path, &lock)?;
    fs4::FileExt::lock(&file).map_err(|e| lock_error(path, &lock, "lock", e))?;
    Ok(file)
}

/// Tries the refresh lock file `lock` without waiting: `None` if someone else holds it, or the open,
/// locked file and its fencing number, larger than every version in the token file and every fence
/// handed out before (the last one is kept in the lock file).
pub(super) fn take_refresh_lock(path: &Path, lock: &Path, encrypted: bool) -> Result<Option<(File, u64)>> {
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
pub(super) fn still_in_place(file: &File, lock: &Path) -> bool {
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

pub(super) fn io_error(path: &Path, action: &str, what_to_do: &str, e: io::Error) -> Error {
    Error::store(
        format!("could not {action} the token file `{}` ({e}); {what_to_do}", path.display()),
        Some(Arc::new(e) as BoxError),
    )
}

/// Reads the file; a missing file is an empty map. A file whose records are not all sealed (when
/// `encrypted`) or all in the clear (when not) is refused.
pub(super) fn read_map(path: &Path, encrypted: bool) -> Result<TokenMap> {
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
pub(super) fn sealed_file_error(path: &Path) -> Error {
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
pub(super) fn write_map(path: &Path, map: &TokenMap) -> Result<()> {
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

pub(super) fn write_new_file(path: &Path, contents: &[u8]) -> io::Result<()> {
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

pub(super) fn create_dir(dir: &Path) -> io::Result<()> {
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
pub(super) fn sync_dir(dir: &Path) {
    #[cfg(unix)]
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
    #[cfg(not(unix))]
    let _ = dir;
}

/// Makes the open token file `file` owner-only (Unix) if other users can read or write it, with a
/// warning; refuses to go on if that is not allowed.
pub(super) fn make_owner_only(path: &Path, file: &File) -> Result<()> {
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
