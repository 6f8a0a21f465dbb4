//! [`StoreEncryption`]: authenticated encryption (AES-256-GCM) of token sets at rest.

use std::fmt;
use std::path::Path;

use aes_gcm::aead::{Aead, Generate, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::Engine as _;
use base64::alphabet;
use base64::engine::DecodePaddingMode;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig, URL_SAFE_NO_PAD};
use secrecy::zeroize::{Zeroize as _, Zeroizing};
use secrecy::{ExposeSecret, SecretBox, SecretString};

use crate::error::{Error, Result};
use crate::store::StoredToken;

/// The prefix of every value sealed in the current format (version 1).
pub(crate) const SEALED_PREFIX: &str = "ts1:";

/// The length of an encryption key, in bytes (AES-256).
pub(crate) const KEY_LEN: usize = 32;

const NONCE_LEN: usize = 12;
const TAG_LEN: usize = 16;

/// Base64 decoders for keys: standard or URL-safe, padded or not.
const KEY_STANDARD: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);
const KEY_URL_SAFE: GeneralPurpose = GeneralPurpose::new(
    &alphabet::URL_SAFE,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// What a key should look like, for configuration errors.
const KEY_FORM: &str = "expected 32 random bytes in base64 (44 characters, standard or URL-safe, padding optional; \
     make one with `openssl rand -base64 32`)";

/// Seals and opens token sets with one AES-256-GCM key, so that a stolen token file or a dump of a
/// shared store yields no usable access or refresh token.
///
/// Each token set is sealed on its own, with a fresh random 96-bit nonce, and is bound to the store
/// key it is saved under: the key (with the format's version) is the AEAD's associated data, so a
/// sealed record copied under another key, changed in any byte, or opened with another encryption key
/// fails to open: [`Error::Store`] says what to check.
///
/// # The sealed form
///
/// `ts1:` followed by the URL-safe base64 (no padding) of `nonce (12 bytes) || ciphertext || tag (16
/// bytes)`. The associated data is `ts1:` followed by the store key's UTF-8 bytes. The `ts1` prefix
/// names the format's version, so that a later format can be told apart and read alongside.
///
/// # The key
///
/// 32 random bytes, given as base64 (standard or URL-safe, with or without padding) in an environment
/// variable or a file, or as a file of the 32 raw bytes. Make one with `openssl rand -base64 32`, or
/// with [`StoreEncryption::generate_key`].
///
/// # Use
///
/// Cheap to clone (the expanded key is copied; it is wiped from memory when dropped). `Debug` shows no
/// key material.
///
/// ```
/// use tokensmith_core::{store::StoreEncryption, store::StoredToken, AccessToken, RefreshToken};
///
/// # fn main() -> tokensmith_core::Result<()> {
/// // In production: StoreEncryption::from_env("MYAPP_TOKEN_KEY")? or ::from_file("/run/secrets/token-key")?
/// let key = StoreEncryption::generate_key()?;
/// let sealer = StoreEncryption::from_env_with("MYAPP_TOKEN_KEY", |_| {
///     Some(secrecy::ExposeSecret::expose_secret(&key).to_owned())
/// })?;
///
/// let token = AccessToken::builder("access-abc").refresh_token(Some(RefreshToken::new("refresh-xyz"))).build();
/// let sealed = sealer.seal_token("whitebit/my-client/general", &StoredToken::from(&token))?;
/// assert!(sealed.starts_with("ts1:") && !sealed.contains("access-abc"));
///
/// let opened = sealer.open_token("whitebit/my-client/general", &sealed)?;
/// assert_eq!(opened.access_token, "access-abc");
/// // Bound to its store key: under another key it does not open.
/// assert!(sealer.open_token("whitebit/other-client/general", &sealed).is_err());
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct StoreEncryption {
    cipher: Aes256Gcm,
}

impl fmt::Debug for StoreEncryption {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StoreEncryption")
            .field("algorithm", &"AES-256-GCM")
            .field("key", &crate::support::REDACTED)
            .finish()
    }
}

impl StoreEncryption {
    /// A sealer with the 32-byte `key`.
    pub fn from_bytes(key: SecretBox<[u8; KEY_LEN]>) -> Self {
        let key_ref: &[u8; KEY_LEN] = key.expose_secret();
        StoreEncryption { cipher: Aes256Gcm::new(key_ref.into()) }
    }

    /// A sealer with the key in the environment variable `var`, as base64 (see
    /// [`StoreEncryption`]).
    ///
    /// An unset or empty variable, bad base64 or a key that is not 32 bytes long gives
    /// [`Error::Config`] naming `var` (never its value); a `var` that is not a variable name (the key
    /// itself, given by mistake) gives one naming `encryption_key`, without `var`.
    pub fn from_env(var: &str) -> Result<Self> {
        Self::from_env_with(var, |name| std::env::var(name).ok())
    }

    /// [`from_env`](Self::from_env), looking the variable up with `env`.
    pub fn from_env_with(var: &str, env: impl Fn(&str) -> Option<String>) -> Result<Self> {
        // A "variable name" that is not one is likely the key itself: never echo it.
        crate::options::check_env_var_name("encryption_key", var)?;
        let value = Zeroizing::new(env(var).unwrap_or_default());
        if value.trim().is_empty() {
            return Err(Error::config(
                var,
                format!(
                    "the environment variable `{var}` that should hold the store encryption key is not set or empty; export it ({KEY_FORM})"
                ),
            ));
        }
        decode_key(value.as_bytes())
            .map(Self::from_bytes)
            .map_err(|problem| Error::config(var, format!("the store encryption key in `{var}` {problem}; {KEY_FORM}")))
    }

    /// A sealer with the key in the file at `path`: either base64 text (surrounding whitespace, such
    /// as a trailing newline, is ignored) or exactly the 32 raw bytes.
    ///
    /// A file that cannot be read, or that holds no valid key, gives [`Error::Config`] with the key
    /// `encryption_key`, naming the file (never its content).
    pub fn from_file(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let bytes = Zeroizing::new(std::fs::read(path).map_err(|e| {
            Error::config(
                "encryption_key",
                format!(
                    "cannot read the store encryption key file `{}` ({e}); check the path and its permissions",
                    path.display()
                ),
            )
        })?);
        // 32 bytes that are not all printable are a raw key; base64 text is printable (and a 32-character
        // base64 text would be a 24-byte key, refused below).
        if bytes.len() == KEY_LEN && !bytes.iter().all(|b| b.is_ascii_graphic()) {
            return Ok(Self::from_bytes(SecretBox::init_with_mut(|key: &mut [u8; KEY_LEN]| {
                key.copy_from_slice(&bytes)
            })));
        }
        decode_key(&bytes).map(Self::from_bytes).map_err(|problem| {
            Error::config(
                "encryption_key",
                format!(
                    "the store encryption key file `{}` {problem}; {KEY_FORM}, or exactly 32 raw bytes",
                    path.display()
                ),
            )
        })
    }

    /// A sealer with the base64 key `key` (given inline, e.g. read from a secret manager); `setting`
    /// names where it came from in errors (e.g. `store.encryption_key`).
    pub fn from_base64(key: &SecretString, setting: &str) -> Result<Self> {
        decode_key(key.expose_secret().as_bytes())
            .map(Self::from_bytes)
            .map_err(|problem| Error::config(setting, format!("the store encryption key {problem}; {KEY_FORM}")))
    }

    /// A new random key, in standard base64 (padded): what [`from_env`](Self::from_env) and
    /// [`from_file`](Self::from_file) read.
    pub fn generate_key() -> Result<SecretString> {
        let mut key = aes_gcm::Key::<Aes256Gcm>::try_generate()
            .map_err(|e| Error::store(format!("the system random number generator failed ({e})"), None))?;
        let text = SecretString::from(base64::engine::general_purpose::STANDARD.encode(key.as_slice()));
        key.as_mut_slice().zeroize();
        Ok(text)
    }

    /// Whether `value` looks like a sealed value (`ts<version>:...`, of any version), as opposed to
    /// a token set in the clear.
    pub fn is_sealed(value: &str) -> bool {
        sealed_version(value).is_some()
    }

    /// Seals `plaintext` for the store key `store_key`: returns `ts1:` and base64 text, safe to keep in
    /// JSON, Redis or a file.
    ///
    /// Fails ([`Error::Store`]) only if the system random number generator fails.
    pub fn seal(&self, store_key: &str, plaintext: &[u8]) -> Result<String> {
        let nonce = Nonce::try_generate()
            .map_err(|e| Error::store(format!("the system random number generator failed ({e})"), None))?;
        let aad = associated_data(store_key);
        let ciphertext = self
            .cipher
            .encrypt(&nonce, Payload { msg: plaintext, aad: &aad })
            .map_err(|_| Error::store("the token set could not be encrypted", None))?;
        let mut raw = Vec::with_capacity(NONCE_LEN.saturating_add(ciphertext.len()));
        raw.extend_from_slice(nonce.as_slice());
        raw.extend_from_slice(&ciphertext);
        let mut out =
            String::with_capacity(SEALED_PREFIX.len().saturating_add(raw.len().div_ceil(3).saturating_mul(4)));
        out.push_str(SEALED_PREFIX);
        URL_SAFE_NO_PAD.encode_string(&raw, &mut out);
        Ok(out)
    }

    /// Opens a value sealed by [`seal`](Self::seal) under the same `store_key`.
    ///
    /// A value sealed with another key, changed, moved from another store key, or not in the sealed
    /// form gives [`Error::Store`] saying what to do; the message holds no part of the value.
    pub fn open(&self, store_key: &str, sealed: &str) -> Result<SecretBox<Vec<u8>>> {
        let body = match sealed_version(sealed) {
            Some(("1", body)) => body,
            Some((version, _)) => {
                return Err(Error::store(
                    format!(
                        "the token set under `{store_key}` was encrypted in format `ts{version}`, which this version of tokensmith cannot read; upgrade tokensmith, or delete the key `{store_key}` from the store and authorize again"
                    ),
                    None,
                ));
            }
            None => {
                return Err(Error::store(
                    format!(
                        "the token set under `{store_key}` is not encrypted (it does not start with `{SEALED_PREFIX}`), but this store encrypts its token sets; it was written by a store without encryption: delete the key `{store_key}` from the store and authorize again"
                    ),
                    None,
                ));
            }
        };
        let raw = URL_SAFE_NO_PAD.decode(body).map_err(|_| damaged(store_key))?;
        if raw.len() < NONCE_LEN + TAG_LEN {
            return Err(damaged(store_key));
        }
        let (nonce, ciphertext) = raw.split_at(NONCE_LEN);
        let nonce = Nonce::try_from(nonce).map_err(|_| damaged(store_key))?;
        let aad = associated_data(store_key);
        let plaintext = self.cipher.decrypt(&nonce, Payload { msg: ciphertext, aad: &aad }).map_err(|_| {
            Error::store(
                format!(
                    "the token set under `{store_key}` could not be decrypted: it was encrypted with another key, or was changed, or was moved from another store key; check that the store's encryption key is the one it was written with, otherwise delete the key `{store_key}` from the store and authorize again"
                ),
                None,
            )
        })?;
        Ok(SecretBox::new(Box::new(plaintext)))
    }

    /// Seals a token set (its JSON form) for `store_key`.
    pub fn seal_token(&self, store_key: &str, token: &StoredToken) -> Result<String> {
        let mut json = Zeroizing::new(Vec::with_capacity(1024));
        serde_json::to_writer(&mut *json, token)
            .map_err(|e| Error::store(format!("the token set could not be serialized ({e})"), None))?;
        self.seal(store_key, &json)
    }

    /// Opens a token set sealed by [`seal_token`](Self::seal_token) under the same `store_key`.
    pub fn open_token(&self, store_key: &str, sealed: &str) -> Result<StoredToken> {
        let plaintext = self.open(store_key, sealed)?;
        // serde_json's message could quote a value: report only that the shape is wrong.
        serde_json::from_slice(plaintext.expose_secret()).map_err(|_| {
            Error::store(
                format!(
                    "the token set under `{store_key}` was decrypted but is not a token set; delete the key `{store_key}` from the store and authorize again"
                ),
                None,
            )
        })
    }
}

/// `ts1:` then the store key: binds a sealed value to its key and its format.
fn associated_data(store_key: &str) -> Vec<u8> {
    let mut aad = Vec::with_capacity(SEALED_PREFIX.len().saturating_add(store_key.len()));
    aad.extend_from_slice(SEALED_PREFIX.as_bytes());
    aad.extend_from_slice(store_key.as_bytes());
    aad
}

/// `Some((version, body))` for `ts<digits>:<body>`.
fn sealed_version(value: &str) -> Option<(&str, &str)> {
    let rest = value.strip_prefix("ts")?;
    let (version, body) = rest.split_once(':')?;
    (!version.is_empty() && version.bytes().all(|b| b.is_ascii_digit())).then_some((version, body))
}

fn damaged(store_key: &str) -> Error {
    Error::store(
        format!(
            "the encrypted token set under `{store_key}` is damaged (not valid base64, or too short); it was changed after it was written: delete the key `{store_key}` from the store and authorize again"
        ),
        None,
    )
}

/// Decodes a base64 key (surrounding whitespace ignored); the error says what is wrong, without the
/// value.
fn decode_key(text: &[u8]) -> std::result::Result<SecretBox<[u8; KEY_LEN]>, String> {
    let text = text.trim_ascii();
    // Room for more than a key, to tell "too long" from "bad base64" without allocating.
    let mut buf = Zeroizing::new([0u8; 2 * KEY_LEN]);
    let decoded = KEY_STANDARD.decode_slice(text, &mut *buf).or_else(|_| KEY_URL_SAFE.decode_slice(text, &mut *buf));
    match decoded {
        // `buf` is twice the key's length, so its first KEY_LEN bytes always exist.
        Ok(KEY_LEN) => Ok(SecretBox::init_with_mut(|key: &mut [u8; KEY_LEN]| {
            key.iter_mut().zip(buf.iter()).for_each(|(k, b)| *k = *b)
        })),
        Ok(n) => Err(format!("decodes to {n} bytes, not {KEY_LEN}")),
        Err(base64::DecodeSliceError::OutputSliceTooSmall) => Err(format!("is longer than {KEY_LEN} bytes")),
        Err(base64::DecodeSliceError::DecodeError(_)) => Err("is not valid base64".to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::token::{AccessToken, RefreshToken, Scopes};
    use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE};
    use std::time::{Duration, SystemTime};

    const KEY_A: [u8; 32] = [7; 32];
    const KEY_B: [u8; 32] = [9; 32];

    fn sealer(key: [u8; 32]) -> StoreEncryption {
        StoreEncryption::from_bytes(SecretBox::new(Box::new(key)))
    }

    fn stored() -> StoredToken {
        let token = AccessToken::builder("access-token-0123456789")
            .expires_in(SystemTime::now(), Duration::from_secs(300))
            .scopes(Scopes::parse("read write"))
            .refresh_token(Some(RefreshToken::new("refresh-token-9876543210")))
            .build();
        StoredToken::from(&token)
    }

    fn env_of(pairs: &[(&'static str, String)]) -> impl Fn(&str) -> Option<String> + use<> {
        let pairs = pairs.to_vec();
        move |name| pairs.iter().find(|(k, _)| *k == name).map(|(_, v)| v.clone())
    }

    #[test]
    fn round_trip() {
        let s = sealer(KEY_A);
        let sealed = s.seal_token("p/c/s", &stored()).unwrap();
        assert!(sealed.starts_with("ts1:"), "{sealed}");
        assert!(StoreEncryption::is_sealed(&sealed));
        assert!(!sealed.contains("access-token") && !sealed.contains("refresh-token"));
        let back = s.open_token("p/c/s", &sealed).unwrap();
        assert_eq!(back.access_token, "access-token-0123456789");
        assert_eq!(back.refresh_token.as_deref(), Some("refresh-token-9876543210"));
        assert_eq!(back.scopes, stored().scopes);
        // A fresh nonce every time: the same set seals differently.
        assert_ne!(sealed, s.seal_token("p/c/s", &stored()).unwrap());
        // Bytes round trip too, including empty.
        assert_eq!(s.open("k", &s.seal("k", b"").unwrap()).unwrap().expose_secret().as_slice(), b"");
    }

    #[test]
    fn wrong_key_fails_with_what_to_do() {
        let sealed = sealer(KEY_A).seal_token("k", &stored()).unwrap();
        let err = sealer(KEY_B).open_token("k", &sealed).unwrap_err();
        assert!(matches!(err, Error::Store { .. }), "{err:?}");
        let text = err.to_string();
        assert!(text.contains("another key") && text.contains("authorize again"), "{text}");
        assert!(!text.contains(&sealed[4..20]), "{text}");
    }

    #[test]
    fn a_record_moved_to_another_store_key_fails() {
        let s = sealer(KEY_A);
        let sealed = s.seal_token("whitebit/alice/general", &stored()).unwrap();
        let err = s.open_token("whitebit/mallory/general", &sealed).unwrap_err();
        assert!(matches!(err, Error::Store { .. }), "{err:?}");
        assert!(err.to_string().contains("moved"), "{err}");
    }

    #[test]
    fn any_flipped_byte_fails() {
        let s = sealer(KEY_A);
        let sealed = s.seal("k", b"a token set").unwrap();
        let mut raw = URL_SAFE_NO_PAD.decode(&sealed[4..]).unwrap();
        for i in 0..raw.len() {
            raw[i] ^= 0x01;
            let tampered = format!("ts1:{}", URL_SAFE_NO_PAD.encode(&raw));
            assert!(matches!(s.open("k", &tampered), Err(Error::Store { .. })), "byte {i}");
            raw[i] ^= 0x01;
        }
        // Truncated, not base64, not sealed at all, a future version: all store errors.
        for bad in ["ts1:", "ts1:AAAA", "ts1:!!!", "{\"access_token\":\"x\"}", "ts2:AAAA"] {
            let err = s.open("k", bad).unwrap_err();
            assert!(matches!(err, Error::Store { .. }), "{bad}: {err:?}");
            assert!(err.to_string().contains("`k`"), "{err}");
        }
        assert!(s.open("k", "access-abc").unwrap_err().to_string().contains("not encrypted"));
        assert!(s.open("k", "ts2:AAAA").unwrap_err().to_string().contains("upgrade"));
    }

    #[test]
    fn keys_in_every_base64_form_are_the_same_key() {
        let key: [u8; 32] = std::array::from_fn(|i| (i * 37 + 250) as u8);
        let sealed = sealer(key).seal("k", b"x").unwrap();
        for engine in [STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD] {
            let text = format!("  {}\n", engine.encode(key));
            let s = StoreEncryption::from_env_with("KEY", env_of(&[("KEY", text.clone())])).unwrap();
            assert_eq!(s.open("k", &sealed).unwrap().expose_secret().as_slice(), b"x", "{text}");
        }
    }

    #[test]
    fn bad_env_keys_name_the_variable_and_never_the_value() {
        let cases = [
            STANDARD.encode([1u8; 16]),      // too short
            STANDARD.encode([1u8; 40]),      // too long
            STANDARD.encode([1u8; 200]),     // far too long
            "not*base64*at*all!".to_owned(), // bad base64
            "c2VjcmV0LXZhbHVl?".to_owned(),
        ];
        for value in cases {
            let err =
                StoreEncryption::from_env_with("MY_TOKEN_KEY", env_of(&[("MY_TOKEN_KEY", value.clone())])).unwrap_err();
            let Error::Config { key, message } = &err else { panic!("{err:?}") };
            assert_eq!(key, "MY_TOKEN_KEY");
            assert!(message.contains("MY_TOKEN_KEY") && message.contains("base64"), "{message}");
            assert!(!message.contains(value.trim_end_matches('=')), "{message}");
            assert!(!format!("{err:?}").contains(value.trim_end_matches('=')));
        }
        let err = StoreEncryption::from_env_with("MY_TOKEN_KEY", |_| None).unwrap_err();
        assert!(matches!(&err, Error::Config { key, message } if key == "MY_TOKEN_KEY" && message.contains("not set")));
        let err =
            StoreEncryption::from_env_with("MY_TOKEN_KEY", env_of(&[("MY_TOKEN_KEY", STANDARD.encode([1u8; 16]))]))
                .unwrap_err();
        assert!(err.to_string().contains("16 bytes, not 32"), "{err}");
    }

    #[test]
    fn a_key_given_as_the_variable_name_is_never_echoed() {
        let key = STANDARD.encode([7u8; 32]);
        let err = StoreEncryption::from_env_with(&key, |_| None).unwrap_err();
        let Error::Config { key: setting, message } = &err else { panic!("{err:?}") };
        assert_eq!(setting, "encryption_key");
        assert!(message.contains("not an environment variable name"), "{message}");
        assert!(!format!("{err} {err:?}").contains(key.trim_end_matches('=')), "{err:?}");
    }

    #[test]
    fn key_files_hold_base64_or_raw_bytes() {
        let dir = std::env::temp_dir().join(format!("tokensmith-seal-{:016x}", rand::random::<u64>()));
        std::fs::create_dir_all(&dir).unwrap();
        let sealed = sealer(KEY_A).seal("k", b"x").unwrap();
        let b64 = dir.join("key.b64");
        std::fs::write(&b64, format!("{}\n", STANDARD.encode(KEY_A))).unwrap();
        assert!(StoreEncryption::from_file(&b64).unwrap().open("k", &sealed).is_ok());
        let raw = dir.join("key.bin");
        let raw_key: [u8; 32] = std::array::from_fn(|i| i as u8);
        std::fs::write(&raw, raw_key).unwrap();
        let s = StoreEncryption::from_file(&raw).unwrap();
        assert!(s.open("k", &sealer(raw_key).seal("k", b"x").unwrap()).is_ok());

        let bad = dir.join("key.bad");
        std::fs::write(&bad, "hunter2-is-not-a-key").unwrap();
        let err = StoreEncryption::from_file(&bad).unwrap_err();
        let Error::Config { message, .. } = &err else { panic!("{err:?}") };
        assert!(message.contains(&bad.display().to_string()), "{message}");
        assert!(!message.contains("hunter2"), "{message}");
        let err = StoreEncryption::from_file(dir.join("missing")).unwrap_err();
        assert!(matches!(&err, Error::Config { message, .. } if message.contains("cannot read")), "{err:?}");
        std::fs::remove_dir_all(&dir).ok();
    }

    #[test]
    fn generated_keys_are_read_back() {
        let key = StoreEncryption::generate_key().unwrap();
        assert_eq!(key.expose_secret().len(), 44);
        let s = StoreEncryption::from_base64(&key, "store.encryption_key").unwrap();
        assert!(s.open("k", &s.seal("k", b"x").unwrap()).is_ok());
        let err = StoreEncryption::from_base64(&SecretString::from("short"), "store.encryption_key").unwrap_err();
        assert!(matches!(&err, Error::Config { key, .. } if key == "store.encryption_key"), "{err:?}");
    }

    #[test]
    fn debug_shows_no_key_bytes() {
        let key = [0xABu8; 32];
        let debug = format!("{:?}", sealer(key));
        assert_eq!(debug, "StoreEncryption { algorithm: \"AES-256-GCM\", key: \"[redacted]\" }");
        for fragment in ["171", "ab", "AB", &STANDARD.encode(&key[..6])] {
            assert!(!debug.contains(fragment), "{debug}");
        }
    }
}
