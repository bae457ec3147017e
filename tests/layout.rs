#![cfg(not(target_arch = "wasm32"))]
//! The layout rules: no file in `src/` over 700 lines, and the browser driver (`src/web/`)
//! under 800 lines in all.

use std::path::Path;

fn rust_files(dir: &Path, out: &mut Vec<(String, usize)>) {
    for entry in std::fs::read_dir(dir).expect("readable src") {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            let lines = std::fs::read_to_string(&path).expect("utf-8 source").lines().count();
            out.push((path.display().to_string(), lines));
        }
    }
}

#[test]
fn no_source_file_is_over_700_lines_and_the_browser_driver_is_under_800() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    assert!(files.len() > 20, "found the sources: {files:?}");
    let long: Vec<_> = files.iter().filter(|f| f.1 > 700).collect();
    assert!(long.is_empty(), "over 700 lines: {long:?}");
    let web: usize = files.iter().filter(|f| Path::new(&f.0).starts_with(src.join("web"))).map(|f| f.1).sum();
    assert!(web > 0 && web < 800, "src/web: {web} lines");
}
