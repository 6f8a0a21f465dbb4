//! Every Rust code block in the Markdown docs is compiled: each Markdown file with a ```rust block is
//! included as a doctest (`#[cfg(doctest)] #[doc = include_str!(..)]`) by some crate, and no block
//! opts out with `ignore`. `cargo test --workspace --all-features` then compiles them all.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}

/// README.md, docs/*.md and crates/*/README.md, relative to the root.
fn markdown_files() -> Vec<PathBuf> {
    let root = root();
    let mut files = vec![PathBuf::from("README.md")];
    for dir in ["docs", "crates"] {
        for entry in std::fs::read_dir(root.join(dir)).unwrap() {
            let path = entry.unwrap().path();
            let candidate = if dir == "crates" { path.join("README.md") } else { path };
            if candidate.extension().is_some_and(|e| e == "md") && candidate.is_file() {
                files.push(candidate.strip_prefix(&root).unwrap().to_path_buf());
            }
        }
    }
    files.sort();
    files
}

/// The Markdown files the crates include as doctests, as paths from the root.
fn included() -> Vec<PathBuf> {
    let root = root();
    let mut found = Vec::new();
    for entry in std::fs::read_dir(root.join("crates")).unwrap() {
        let src = entry.unwrap().path().join("src");
        let Ok(files) = std::fs::read_dir(&src) else { continue };
        for file in files {
            let file = file.unwrap().path();
            if file.extension().is_none_or(|e| e != "rs") {
                continue;
            }
            let text = std::fs::read_to_string(&file).unwrap();
            let lines: Vec<&str> = text.lines().collect();
            for (i, line) in lines.iter().enumerate() {
                let Some(rest) = line.trim().strip_prefix("#[doc = include_str!(\"") else { continue };
                let Some(relative) = rest.split('"').next().filter(|r| r.ends_with(".md")) else { continue };
                let doctest = lines[..i].iter().rev().take(3).any(|l| l.contains("cfg(") && l.contains("doctest"));
                assert!(doctest, "{}: a Markdown include that is not under #[cfg(doctest)]", file.display());
                let path = src.join(relative);
                let path = std::fs::canonicalize(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
                found.push(path.strip_prefix(std::fs::canonicalize(&root).unwrap()).unwrap().to_path_buf());
            }
        }
    }
    found
}

#[test]
fn every_rust_block_in_the_docs_is_compiled() {
    let included = included();
    let mut problems = Vec::new();
    for file in markdown_files() {
        let text = std::fs::read_to_string(root().join(&file)).unwrap();
        let blocks: Vec<(usize, &str)> = text
            .lines()
            .enumerate()
            .filter_map(|(n, l)| l.strip_prefix("```rust").map(|attrs| (n + 1, attrs)))
            .collect();
        if blocks.is_empty() {
            continue;
        }
        if !included.contains(&file) {
            problems.push(format!("{}: has Rust blocks but no crate includes it as a doctest", file.display()));
        }
        for (line, attrs) in blocks {
            if attrs.split(',').any(|a| a.trim() == "ignore") {
                problems.push(format!("{}:{line}: a `rust,ignore` block is never compiled", file.display()));
            }
        }
    }
    assert!(problems.is_empty(), "doc samples that are not compiled:\n{}", problems.join("\n"));
}
