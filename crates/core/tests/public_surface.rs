//! The names at the root of `tokensmith_core`, written out by hand: adding, removing or renaming one
//! changes this list, so a change to the crate's surface is a visible diff in review.
//!
//! The names are read from the source text (`src/lib.rs` and the `#[macro_export]` macros), not from
//! the compiled crate: Rust has no stable way to list a crate's public items (rustdoc's JSON output
//! needs nightly), and a list the compiler would check by naming each item cannot notice an item that
//! was *added*. To keep the text complete, `lib.rs` may declare public names only with `pub mod` and
//! `pub use`; the test fails on any other `pub` item written there. Feature gates are ignored: the
//! list is the surface with every feature on.
#![allow(clippy::expect_used, clippy::indexing_slicing)]

use std::path::Path;

/// Every public name at the crate root, sorted.
const ROOT: &[&str] = &[
    "AccessToken",
    "AccessTokenBuilder",
    "AuthorizedClient",
    "CachedProvider",
    "ClientCredentials",
    "Error",
    "MemoryStore",
    "ProvideTokenFn",
    "RefreshToken",
    "Result",
    "RetryPolicy",
    "Scopes",
    "SharedTokenProvider",
    "TokenClient",
    "TokenClientBuilder",
    "TokenEndpoint",
    "TokenProvider",
    "TokenStore",
    "async_trait",
    "cache",
    "clock",
    "dialect",
    "error",
    "flows",
    "http",
    "manager",
    "parse",
    "provide_token_fn",
    "provider_option_setters",
    "request",
    "secrecy",
    "store",
    "style",
    "support",
    "testing",
];

fn src() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/src"))
}

/// The text of `lib.rs` without comments, attributes' contents kept.
fn lib_rs() -> String {
    let text = std::fs::read_to_string(src().join("lib.rs")).expect("src/lib.rs is readable");
    text.lines().filter(|l| !l.trim_start().starts_with("//")).collect::<Vec<_>>().join("\n")
}

/// The names one `pub use` item brings to the root: the last segment of each path, or its `as` name.
fn use_names(tree: &str, out: &mut Vec<String>) {
    let tree = tree.trim();
    if let Some(open) = tree.find('{') {
        let inner = &tree[open + 1..tree.rfind('}').expect("a `{` is closed")];
        let mut depth = 0;
        let mut start = 0;
        for (at, c) in inner.char_indices() {
            match c {
                '{' => depth += 1,
                '}' => depth -= 1,
                ',' if depth == 0 => {
                    use_names(&inner[start..at], out);
                    start = at + 1;
                }
                _ => {}
            }
        }
        use_names(&inner[start..], out);
    } else if !tree.is_empty() {
        let name = match tree.split_once(" as ") {
            Some((_, alias)) => alias,
            None => tree.rsplit("::").next().expect("a path has a last segment"),
        };
        out.push(name.trim().to_owned());
    }
}

fn root_names() -> Vec<String> {
    let lib = lib_rs();
    let mut names = Vec::new();
    for item in lib.split(';') {
        // The item's text after its attributes.
        let code = item.lines().filter(|l| !l.trim_start().starts_with("#[")).collect::<Vec<_>>().join(" ");
        let code = code.trim();
        if let Some(tree) = code.strip_prefix("pub use ") {
            use_names(tree, &mut names);
        } else if let Some(name) = code.strip_prefix("pub mod ") {
            names.push(name.trim().to_owned());
        } else {
            for word in ["pub fn", "pub struct", "pub enum", "pub trait", "pub type", "pub const", "pub static"] {
                assert!(!code.contains(word), "lib.rs declares `{code}`: declare items in a module and `pub use` them");
            }
        }
    }
    for entry in std::fs::read_dir(src())
        .expect("src/ is readable")
        .chain(std::fs::read_dir(src().join("http")).expect("src/http/ is readable"))
    {
        let path = entry.expect("a directory entry").path();
        if path.extension().is_some_and(|e| e == "rs") {
            let text = std::fs::read_to_string(&path).expect("a source file is readable");
            let mut lines = text.lines();
            while let Some(line) = lines.next() {
                if line.trim() == "#[macro_export]" {
                    let next = lines.next().unwrap_or_default();
                    let name =
                        next.trim().strip_prefix("macro_rules! ").expect("#[macro_export] precedes macro_rules!");
                    names.push(name.trim_end_matches(" {").trim().to_owned());
                }
            }
        }
    }
    names.sort();
    names
}

#[test]
fn the_root_holds_exactly_the_listed_names() {
    let found = root_names();
    let listed: Vec<String> = ROOT.iter().map(|s| (*s).to_owned()).collect();
    assert!(listed.windows(2).all(|w| w[0] < w[1]), "keep ROOT sorted and without repeats");
    let added: Vec<&String> = found.iter().filter(|n| !listed.contains(n)).collect();
    let removed: Vec<&String> = listed.iter().filter(|n| !found.contains(n)).collect();
    assert!(
        added.is_empty() && removed.is_empty(),
        "the root of tokensmith_core changed: new {added:?}, gone {removed:?}; update ROOT in this test if that is intended"
    );
}

#[test]
fn the_root_stays_small() {
    assert!(ROOT.len() <= 35, "{} root names: put what belongs to one topic in its module", ROOT.len());
}
