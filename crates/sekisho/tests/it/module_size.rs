//! Every module stays small enough to read in one sitting: at most 500 lines before its unit tests (inline, or
//! in a sibling `tests.rs`, which is not counted).

#![allow(
    unreachable_pub,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)] // test code

use std::path::{Path, PathBuf};

const MAX_NON_TEST_LINES: usize = 500;

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs")
            // A sibling test module (`#[cfg(test)] mod tests;`) is test code through and through.
            && path.file_name().is_none_or(|name| name != "tests.rs")
        {
            out.push(path);
        }
    }
}

/// Lines before the `#[cfg(test)]` that opens the file's `mod tests`.
fn non_test_lines(text: &str) -> usize {
    let lines: Vec<&str> = text.lines().collect();
    lines
        .windows(2)
        .position(|pair| pair[0].trim() == "#[cfg(test)]" && pair[1].starts_with("mod tests"))
        .unwrap_or(lines.len())
}

#[test]
fn no_module_has_more_than_500_lines_of_non_test_code() {
    // Every crate of the workspace: the core, the Worker and the CLI.
    let crates = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut files = Vec::new();
    for krate in std::fs::read_dir(&crates).unwrap() {
        let src = krate.unwrap().path().join("src");
        if src.is_dir() {
            rust_files(&src, &mut files);
        }
    }
    assert!(files.len() > 100, "found the sources of every crate");
    let too_long: Vec<String> = files
        .iter()
        .filter_map(|path| {
            let lines = non_test_lines(&std::fs::read_to_string(path).unwrap());
            (lines > MAX_NON_TEST_LINES).then(|| format!("{}: {lines}", path.display()))
        })
        .collect();
    assert!(too_long.is_empty(), "split these modules: {too_long:?}");
}

#[test]
fn the_count_stops_at_the_unit_tests() {
    let text = "a\nb\n#[cfg(test)]\nmod tests {\n x\n}\n";
    assert_eq!(non_test_lines(text), 2);
    assert_eq!(non_test_lines("a\nb\nc"), 3);
}
