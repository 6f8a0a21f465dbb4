//! Rescue files: a token set the configured store could not save is written to a file of its own
//! (owner-only, in the file store's format), so that a spent code or a rotated refresh token is never
//! lost when the process exits.

use std::path::PathBuf;
use std::time::SystemTime;

use tokensmith::config::StoreConfig;
use tokensmith::{AccessToken, Error, TokenStore as _, store::FileStore};

/// Where a rescue file may go, in order: beside a file store, then the system's temporary directory.
fn rescue_paths(store: &StoreConfig) -> Vec<PathBuf> {
    let stamp = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    let mut paths = Vec::new();
    if let StoreConfig::File { path } = store {
        let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "tokens".into());
        paths.push(path.with_file_name(format!("{name}.rescue-{stamp}.json")));
    }
    paths.push(std::env::temp_dir().join(format!("tokensmith-rescue-{}-{stamp}.json", std::process::id())));
    paths
}

/// Writes `token` under `key` to a rescue file and returns the error to report: what failed, where
/// the tokens are now, and how to use them.
pub(crate) async fn rescue(store: &StoreConfig, key: &str, token: &AccessToken, cause: Option<Error>) -> Error {
    let cause = cause.map(|e| format!(" ({e})")).unwrap_or_default();
    let mut tried = Vec::new();
    for path in rescue_paths(store) {
        match FileStore::new(&path).save(key, token).await {
            Ok(()) => {
                return Error::store(
                    format!(
                        "the new token set could not be saved in {store}{cause}; it was written to {} (readable by you only): fix the store, then run again with `--store {}` to use it",
                        path.display(),
                        path.display()
                    ),
                    None,
                );
            }
            Err(e) => tried.push(format!("{} ({e})", path.display())),
        }
    }
    Error::store(
        format!(
            "the new token set could not be saved in {store}{cause}, nor in a rescue file ({}); it is lost when this process exits",
            tried.join("; ")
        ),
        None,
    )
}
