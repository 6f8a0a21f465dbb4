//! The machinery behind [`KEY_TABLE`](super::KEY_TABLE): the `config_keys!` macro that turns one
//! declaration per key into the `Config` struct, its `Debug`, the key table, `is_set` and the reading
//! of environment variables; the compile-time lists derived from the table; and "did you mean"
//! suggestions for unknown names.
//!
//! Each key is declared once, in `config.rs`, as
//!
//! ```text
//! /// What it means (the field's documentation, also `KeySpec::doc`).
//! field: Type = kind {
//!     key: "name",                         // the TOML key (`store.encryption_key` for one in `[store]`)
//!     env: ["TOKENSMITH_NAME"],           // its variables; a secret's `_ENV` and `_FILE` are added
//!     used_by: "custom",                  // the "used by" column of docs/configuration.md
//!     present: some,                      // `is_set`: `some`, or `nonblank` (not empty or blank)
//! },
//! ```
//!
//! where `kind` is `text`, `bool`, `seconds(RANGE)`, `secret` or `special(merge_fn)` (a value with a
//! syntax of its own, read from the environment by `merge_fn(&mut Config, key, get)`).

use super::{EnvVar, KEY_TABLE, KeyKind, KeySpec};

/// Declares `Config` and everything derived from its keys; see the module docs.
macro_rules! config_keys {
    // The variables of a key: a secret's value, `_ENV` (a variable name) and `_FILE` (a path).
    (@env secret $key:literal [$var:literal]) => {
        &[
            $crate::config::EnvVar { name: $var, key: $key },
            $crate::config::EnvVar { name: concat!($var, "_ENV"), key: $key },
            $crate::config::EnvVar { name: concat!($var, "_FILE"), key: $key },
        ]
    };
    (@env $kind:ident $key:literal [$($var:literal $(=> $sub:literal)?),*]) => {
        &[$($crate::config::EnvVar { name: $var, key: $crate::config::keys::config_keys!(@or $($sub)? $key) }),*]
    };
    (@or $sub:literal $key:literal) => { $sub };
    (@or $key:literal) => { $key };

    (@kind text) => { $crate::config::KeyKind::Text };
    (@kind bool) => { $crate::config::KeyKind::Bool };
    (@kind seconds($range:expr)) => { $crate::config::KeyKind::Seconds($range) };
    (@kind secret) => { $crate::config::KeyKind::Secret };
    (@kind special($merge:path)) => { $crate::config::KeyKind::Special };

    // Reading a key from the environment (`get` returns only non-empty values).
    (@merge $config:ident $get:ident text $field:ident $key:literal [$var:literal]) => {
        if let Some(value) = $get($var) {
            $config.$field = Some(value);
        }
    };
    (@merge $config:ident $get:ident bool $field:ident $key:literal [$var:literal]) => {
        if let Some(value) = $get($var) {
            $config.$field = Some(parse_bool_setting($var, &value)?);
        }
    };
    (@merge $config:ident $get:ident seconds($range:expr) $field:ident $key:literal [$var:literal]) => {
        if let Some(value) = $get($var) {
            $config.$field = Some(parse_seconds_setting($var, &value, $range)?.as_secs());
        }
    };
    (@merge $config:ident $get:ident secret $field:ident $key:literal [$var:literal]) => {
        if let Some(secret) = secret_from_env($get, $var)? {
            $config.$field = Some(secret);
        }
    };
    (@merge $config:ident $get:ident special($merge:path) $field:ident $key:literal [$($var:tt)*]) => {
        $merge($config, $key, $get)?;
    };

    (@present some $value:expr) => { $value.is_some() };
    (@present nonblank $value:expr) => { $value.as_ref().is_some_and(|v| !$crate::config::keys::Blank::is_blank(v)) };

    (
        $(#[$struct_attr:meta])*
        pub struct Config {
            $(
                $(#[doc = $doc:literal])*
                $(@serde($($serde:tt)*))?
                $field:ident: $ty:ty = $kind:ident $(($($kind_arg:tt)*))? {
                    key: $key:literal,
                    env: [$($var:literal $(=> $sub:literal)?),* $(,)?],
                    used_by: $used_by:literal,
                    present: $present:ident $(,)?
                }
            ),* $(,)?
        }
    ) => {
        $(#[$struct_attr])*
        pub struct Config {
            $(
                $(#[doc = $doc])*
                $(#[serde($($serde)*)])?
                pub $field: $ty,
            )*
        }

        impl fmt::Debug for Config {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                // Every field type's own `Debug` redacts secrets (`Secret`, `ExtraParam`, `StoreConfig`).
                f.debug_struct("Config")
                    $(.field(stringify!($field), &self.$field))*
                    .finish()
            }
        }

        /// Every configuration key, in documentation order: its TOML name, its environment variables,
        /// what uses it, its kind and its meaning. [`KEYS`], [`ENV_VARS`], [`SECONDS_KEYS`],
        /// [`Config::is_set`], `Config`'s `Debug` and the reading of the environment all come from
        /// this table, and a test holds `docs/configuration.md`'s table of keys to it.
        ///
        /// ```
        /// use tokensmith::config::KEY_TABLE;
        ///
        /// let secret = KEY_TABLE.iter().find(|spec| spec.key == "client_secret").unwrap();
        /// let vars: Vec<&str> = secret.env.iter().map(|var| var.name).collect();
        /// assert_eq!(
        ///     vars,
        ///     ["TOKENSMITH_CLIENT_SECRET", "TOKENSMITH_CLIENT_SECRET_ENV", "TOKENSMITH_CLIENT_SECRET_FILE"]
        /// );
        /// ```
        pub const KEY_TABLE: &[KeySpec] = &[
            $(
                KeySpec {
                    key: $key,
                    field: stringify!($field),
                    kind: $crate::config::keys::config_keys!(@kind $kind $(($($kind_arg)*))?),
                    env: $crate::config::keys::config_keys!(@env $kind $key [$($var $(=> $sub)?),*]),
                    used_by: $used_by,
                    doc: concat!($($doc, "\n"),*),
                },
            )*
        ];

        impl Config {
            /// Whether `key` (a name from [`KEY_TABLE`], e.g. `scope` or `store.encryption_key`) is
            /// set: `scope`, `extra_params` and `response` count only when not empty. An unknown key
            /// is not set.
            pub fn is_set(&self, key: &str) -> bool {
                match key {
                    $($key => $crate::config::keys::config_keys!(@present $present self.$field),)*
                    _ => false,
                }
            }
        }

        /// Applies every key's environment variables to `config`, in table order.
        fn merge_keys(config: &mut Config, get: &dyn Fn(&str) -> Option<String>) -> Result<()> {
            $(
                $crate::config::keys::config_keys!(@merge config get $kind $(($($kind_arg)*))? $field $key [$($var)*]);
            )*
            Ok(())
        }
    };
}

pub(super) use config_keys;

/// A value that is set but says nothing (`scope = " "`, an empty table): not counted by `is_set`.
pub(crate) trait Blank {
    /// Whether the value is empty or only whitespace.
    fn is_blank(&self) -> bool;
}

impl Blank for String {
    fn is_blank(&self) -> bool {
        self.trim().is_empty()
    }
}

impl<K, V> Blank for std::collections::BTreeMap<K, V> {
    fn is_blank(&self) -> bool {
        self.is_empty()
    }
}

// The lists derived from the table at compile time. These `const fn`s run only in the `const` items
// below: an index out of range or an overflow would fail the build, never a run.

/// Whether `key` is a top-level TOML key (not `store.encryption_key`).
const fn is_top_level(key: &str) -> bool {
    let mut bytes = key.as_bytes();
    while let [first, rest @ ..] = bytes {
        if *first == b'.' {
            return false;
        }
        bytes = rest;
    }
    true
}

pub(super) const fn count_top_level() -> usize {
    let mut count = 0usize;
    let mut specs = KEY_TABLE;
    while let [spec, rest @ ..] = specs {
        if is_top_level(spec.key) {
            count = count.saturating_add(1);
        }
        specs = rest;
    }
    count
}

#[allow(clippy::indexing_slicing, clippy::arithmetic_side_effects)] // compile time only (see above)
pub(super) const fn top_level_keys<const N: usize>() -> [&'static str; N] {
    let mut out = [""; N];
    let mut i = 0;
    let mut specs = KEY_TABLE;
    while let [spec, rest @ ..] = specs {
        if is_top_level(spec.key) {
            out[i] = spec.key;
            i += 1;
        }
        specs = rest;
    }
    assert!(i == N);
    out
}

pub(super) const fn count_env_vars() -> usize {
    let mut count = 0usize;
    let mut specs = KEY_TABLE;
    while let [spec, rest @ ..] = specs {
        count = count.saturating_add(spec.env.len());
        specs = rest;
    }
    count
}

#[allow(clippy::indexing_slicing, clippy::arithmetic_side_effects)] // compile time only (see above)
pub(super) const fn env_vars<const N: usize>() -> [(&'static str, &'static str); N] {
    let mut out = [("", ""); N];
    let mut i = 0;
    let mut specs = KEY_TABLE;
    while let [spec, rest @ ..] = specs {
        let mut vars: &[EnvVar] = spec.env;
        while let [var, more @ ..] = vars {
            out[i] = (var.name, var.key);
            i += 1;
            vars = more;
        }
        specs = rest;
    }
    assert!(i == N);
    out
}

pub(super) const fn count_seconds() -> usize {
    let mut count = 0usize;
    let mut specs = KEY_TABLE;
    while let [spec, rest @ ..] = specs {
        if let KeyKind::Seconds(_) = spec.kind {
            count = count.saturating_add(1);
        }
        specs = rest;
    }
    count
}

type SecondsKey = (&'static str, &'static str, std::ops::RangeInclusive<u64>);

#[allow(clippy::indexing_slicing, clippy::arithmetic_side_effects)] // compile time only (see above)
pub(super) const fn seconds_keys<const N: usize>() -> [SecondsKey; N] {
    const NONE: SecondsKey = ("", "", 0..=0);
    let mut out = [NONE; N];
    let mut i = 0;
    let mut specs = KEY_TABLE;
    while let [spec, rest @ ..] = specs {
        if let KeyKind::Seconds(range) = &spec.kind {
            let var = match spec.env {
                [first, ..] => first.name,
                [] => "",
            };
            out[i] = (spec.key, var, std::ops::RangeInclusive::new(*range.start(), *range.end()));
            i += 1;
        }
        specs = rest;
    }
    assert!(i == N);
    out
}

/// The spec of `key`, if it is in the table.
pub(super) fn spec(key: &str) -> Option<&'static KeySpec> {
    KEY_TABLE.iter().find(|spec| spec.key == key)
}

/// The number of single-character edits (insertions, deletions, substitutions) from `a` to `b`.
pub(super) fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut previous: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut current = Vec::with_capacity(previous.len());
        current.push(i.saturating_add(1));
        for (j, cb) in b.iter().enumerate() {
            let substitute = previous.get(j).map_or(usize::MAX, |d| d.saturating_add(usize::from(ca != *cb)));
            let delete = previous.get(j.saturating_add(1)).map_or(usize::MAX, |d| d.saturating_add(1));
            let insert = current.last().map_or(usize::MAX, |d: &usize| d.saturating_add(1));
            current.push(substitute.min(delete).min(insert));
        }
        previous = current;
    }
    previous.last().copied().unwrap_or(0)
}

/// The candidate nearest to `name`, if it is near enough to be a typo of it: at most one edit per
/// three characters (rounded up; at least one), compared without case.
pub(super) fn nearest<'a>(name: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    nearest_within(name, candidates, name.chars().count().div_ceil(3).max(1))
}

/// The candidate nearest to `name` with at most `limit` edits, compared without case.
pub(super) fn nearest_within<'a>(
    name: &str,
    candidates: impl IntoIterator<Item = &'a str>,
    limit: usize,
) -> Option<&'a str> {
    let lower = name.to_ascii_lowercase();
    candidates
        .into_iter()
        .map(|candidate| (edit_distance(&lower, &candidate.to_ascii_lowercase()), candidate))
        .filter(|(distance, _)| *distance <= limit)
        .min_by_key(|(distance, _)| *distance)
        .map(|(_, candidate)| candidate)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn edit_distances() {
        assert_eq!(edit_distance("", ""), 0);
        assert_eq!(edit_distance("abc", ""), 3);
        assert_eq!(edit_distance("", "abc"), 3);
        assert_eq!(edit_distance("client_secrt", "client_secret"), 1);
        assert_eq!(edit_distance("kitten", "sitting"), 3);
        assert_eq!(edit_distance("scope", "scope"), 0);
    }

    #[test]
    fn nearest_is_a_typo_or_nothing() {
        let keys = ["client_id", "client_secret", "scope", "store"];
        assert_eq!(nearest("client_secrt", keys), Some("client_secret"));
        assert_eq!(nearest("CLIENT_ID", keys), Some("client_id"));
        assert_eq!(nearest("client-id", keys), Some("client_id"));
        assert_eq!(nearest("scoep", keys), Some("scope"));
        assert_eq!(nearest("colour", keys), None);
        assert_eq!(nearest("x", keys), None);
    }
}
