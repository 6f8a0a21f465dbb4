//! The guarantees ledger (`docs/guarantees.md`) is checked, so that a doc cannot promise what no test
//! holds:
//!
//! - every row names where the guarantee is stated (files that exist) and at least one test, each as
//!   `path::fn_name`, and each of those is a test function in that file (`#[test]`, `#[tokio::test]`, a
//!   `proptest!` property, or the `main` of a test without the libtest harness);
//! - every test a doc names as `file.rs::fn_name` exists, so a renamed or deleted test cannot stay cited.
//!
//! Two guarantees that no other test held are checked here too: the sandbox is never a normal
//! dependency of a provider crate, and a variable name is at most 128 characters.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};

/// The workspace root: this package is `tests/`.
fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

/// Whether `source` defines a test function `name`: `fn name` whose attributes (above it, past doc
/// comments and other attributes) include `#[test]` or `#[tokio::test..]`; or a property inside
/// `proptest!` (its arguments are strategies: `x in ..`); or `main` of a test file (a harness-less test).
fn defines_test(source: &str, name: &str, path: &str) -> bool {
    let lines: Vec<&str> = source.lines().collect();
    for (i, line) in lines.iter().enumerate() {
        let code = line.trim_start();
        let code = code.strip_prefix("pub ").unwrap_or(code);
        let code = code.strip_prefix("async ").unwrap_or(code);
        let Some(rest) = code.strip_prefix("fn ") else { continue };
        if !rest.strip_prefix(name).is_some_and(|after| after.starts_with(['(', '<'])) {
            continue;
        }
        if name == "main" && (path.contains("/tests/") || path.starts_with("tests/")) {
            return true;
        }
        if rest.contains(" in ") && source.contains("proptest!") {
            return true;
        }
        for above in lines[..i].iter().rev().map(|l| l.trim()) {
            if above.starts_with("#[test]") || above.starts_with("#[tokio::test") {
                return true;
            }
            if !(above.starts_with("#[") || above.starts_with("///") || above.starts_with("//")) {
                break;
            }
        }
    }
    false
}

/// The cells of a markdown table row, trimmed (`| a | b |` → `["a", "b"]`).
fn cells(row: &str) -> Vec<&str> {
    row.trim().trim_start_matches('|').trim_end_matches('|').split('|').map(str::trim).collect()
}

/// The backticked items of a cell, split on `, `.
fn items(cell: &str) -> Vec<&str> {
    cell.split(", ").map(|item| item.trim().trim_matches('`')).filter(|item| !item.is_empty()).collect()
}

#[test]
fn every_test_the_ledger_names_exists_and_is_a_test() {
    let root = root();
    let ledger = read(&root.join("docs/guarantees.md"));
    let mut rows = 0;
    let mut problems = Vec::new();
    let mut in_table = false;
    for (n, line) in ledger.lines().enumerate() {
        let line_no = n + 1;
        if !line.starts_with('|') {
            in_table = false;
            continue;
        }
        let row = cells(line);
        if !in_table {
            // A table's header: the ledger's tables all have these three columns.
            assert_eq!(row, ["guarantee", "stated in", "test"], "docs/guarantees.md line {line_no}: a table's header");
            in_table = true;
            continue;
        }
        if row.iter().all(|c| c.chars().all(|ch| ch == '-' || ch == ' ')) {
            continue;
        }
        let [guarantee, stated, tests] = row[..] else {
            problems.push(format!("line {line_no}: not three cells: {line}"));
            continue;
        };
        rows += 1;
        let what =
            format!("docs/guarantees.md line {line_no} (\"{}\")", guarantee.chars().take(70).collect::<String>());
        if items(stated).is_empty() {
            problems.push(format!("{what}: says nowhere where the guarantee is stated"));
        }
        for doc in items(stated) {
            if !root.join(doc).is_file() {
                problems.push(format!("{what}: `{doc}` (stated in) does not exist"));
            }
        }
        let tests = items(tests);
        if tests.is_empty() {
            problems.push(format!("{what}: names no test"));
        }
        for test in tests {
            let Some((path, name)) = test.rsplit_once("::") else {
                problems.push(format!("{what}: `{test}` is not `path::fn_name`"));
                continue;
            };
            let file = root.join(path);
            if !file.is_file() {
                problems.push(format!("{what}: `{test}`: there is no file {path}"));
            } else if !defines_test(&read(&file), name, path) {
                problems.push(format!("{what}: `{test}`: {path} has no test function `{name}`"));
            }
        }
    }
    assert!(problems.is_empty(), "the guarantees ledger names tests that do not hold it:\n{}", problems.join("\n"));
    // A ledger that parsed to nothing would pass the loop above.
    assert!(
        rows >= 60,
        "only {rows} rows read from docs/guarantees.md: is the table format still `| guarantee | stated in | test |`?"
    );
}

/// Every `.rs` file of the workspace (not build output), relative to the root.
fn rust_files(root: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut dirs = vec![root.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).unwrap().map(Result::unwrap) {
            let path = entry.path();
            let name = entry.file_name().to_string_lossy().into_owned();
            if path.is_dir() {
                if !(name.starts_with('.') || name == "target") {
                    dirs.push(path);
                }
            } else if name.ends_with(".rs") {
                out.push(path.strip_prefix(root).unwrap().to_string_lossy().replace('\\', "/"));
            }
        }
    }
    out
}

/// The docs that state guarantees: README.md, docs/*.md, crates/*/README.md.
fn docs(root: &Path) -> Vec<String> {
    let mut docs = vec!["README.md".to_owned()];
    for dir in ["docs", "crates"] {
        for entry in std::fs::read_dir(root.join(dir)).unwrap().map(Result::unwrap) {
            let name = entry.file_name().to_string_lossy().into_owned();
            if dir == "docs" && name.ends_with(".md") {
                docs.push(format!("docs/{name}"));
            } else if dir == "crates" && entry.path().join("README.md").is_file() {
                docs.push(format!("crates/{name}/README.md"));
            }
        }
    }
    docs.sort();
    docs
}

#[test]
fn every_test_a_doc_names_as_file_and_function_exists() {
    let root = root();
    let files = rust_files(&root);
    let docs = docs(&root);
    assert!(docs.len() > 10, "{docs:?}");
    let mut problems = Vec::new();
    let mut checked = 0;
    for doc in &docs {
        let text = read(&root.join(doc));
        for (at, _) in text.match_indices(".rs::") {
            let file_start = text[..at]
                .rfind(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '/' || c == '-' || c == '.'))
                .map_or(0, |i| i + 1);
            let file = &text[file_start..at + 3];
            let after = &text[at + 5..];
            let name: String = after.chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect();
            if name.is_empty() {
                continue;
            }
            checked += 1;
            // `crates/x/tests/y.rs` is a path from the root; `y.rs` (or `tests/y.rs`) any file so named.
            let candidates: Vec<&String> = files
                .iter()
                .filter(|f| {
                    if file.starts_with("crates/") {
                        *f == file
                    } else {
                        f.ends_with(&format!("/{file}")) || *f == file
                    }
                })
                .collect();
            let found = candidates.iter().any(|f| defines_test(&read(&root.join(f.as_str())), &name, f.as_str()));
            if !found {
                let line = text[..at].lines().count();
                problems.push(format!("{doc}:{line}: `{file}::{name}`: no test function `{name}` in {candidates:?}"));
            }
        }
    }
    assert!(checked > 30, "only {checked} `file.rs::test` references found in the docs");
    assert!(problems.is_empty(), "docs cite tests that do not exist:\n{}", problems.join("\n"));
}

/// The dependency tables of a `Cargo.toml` that name `package`, e.g. `["dev-dependencies"]`.
fn sections_naming(manifest: &str, package: &str) -> Vec<String> {
    let mut section = String::new();
    let mut found = Vec::new();
    for line in manifest.lines().map(str::trim) {
        if let Some(header) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            section = header.trim_matches(['[', ']']).to_owned();
        } else if line.starts_with(&format!("{package} ")) || line.starts_with(&format!("{package}.")) {
            found.push(section.clone());
        }
    }
    found
}

/// README.md and docs/architecture.md: the sandbox is for tests, never a normal dependency of a
/// provider (the CLI, which runs it as `tokensmith sandbox`, and the examples are not providers).
#[test]
fn the_sandbox_is_never_a_normal_dependency_of_a_provider() {
    let root = root();
    let providers = ["core", "tokensmith", "probit", "generic-django", "ruby-style", "whitebit", "redis"];
    let mut dev_only = 0;
    for krate in providers {
        let manifest = read(&root.join(format!("crates/{krate}/Cargo.toml")));
        for section in sections_naming(&manifest, "tokensmith-sandbox") {
            assert_eq!(section, "dev-dependencies", "crates/{krate}/Cargo.toml has the sandbox in [{section}]");
            dev_only += 1;
        }
    }
    // The check above must have seen the sandbox somewhere, or it proves nothing.
    assert!(dev_only >= 5, "the sandbox was found in only {dev_only} provider manifests");
    let cli = read(&root.join("crates/cli/Cargo.toml"));
    assert_eq!(sections_naming(&cli, "tokensmith-sandbox"), ["dependencies"], "the parser reads a normal dependency");
}

/// docs/configuration.md and docs/security.md: a variable name is `[A-Za-z_][A-Za-z0-9_]*` of at most
/// 128 characters; anything else given where a name is expected is refused without being shown.
#[test]
fn a_variable_name_is_at_most_128_characters_and_a_longer_one_is_not_shown() {
    let env_with = |name: String| {
        move |var: &str| -> Option<String> {
            match var {
                "TOKENSMITH_PROVIDER" => Some("custom".to_owned()),
                "TOKENSMITH_CLIENT_ID" => Some("id".to_owned()),
                "TOKENSMITH_TOKEN_URL" => Some("https://auth.example.com/token".to_owned()),
                "TOKENSMITH_CLIENT_SECRET_ENV" => Some(name.clone()),
                _ => None,
            }
        }
    };
    // 128 characters: a name, looked up (it is not set, and the error names it).
    let longest = format!("V{}", "A".repeat(127));
    let err = tokensmith::from_env_with(env_with(longest.clone())).unwrap_err().to_string();
    assert!(err.contains(&longest), "{err}");
    assert!(!err.contains("not an environment variable name"), "{err}");
    // 129 characters: not a name, refused, and not shown.
    let too_long = format!("W{}", "B".repeat(128));
    let err = tokensmith::from_env_with(env_with(too_long.clone())).unwrap_err();
    let text = format!("{err} {err:?}");
    assert!(text.contains("not an environment variable name"), "{text}");
    assert!(!text.contains(&"B".repeat(20)), "{text}");
}
