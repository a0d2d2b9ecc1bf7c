//! Embeds every `templates/*.yaml` of the repository into the binary, so that `ibert data
//! generate` works with no files around it, and links DuckDB (see `ibert-build`).

use std::path::PathBuf;

fn main() {
    ibert_build::link_duckdb();
    let manifest = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap());
    let templates = manifest.join("../../templates").canonicalize().expect("templates/ folder at the repository root");
    // Relative to this package, so that another clone sharing the target folder reruns this
    // script against its own templates instead of reusing the embedded list of the first.
    println!("cargo:rerun-if-changed=../../templates");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&templates)
        .expect("readable templates/ folder")
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "yaml" || ext == "yml"))
        .collect();
    files.sort();
    let mut code = String::from("/// (file name, contents) of the templates shipped with iBERT.\npub const EMBEDDED_TEMPLATES: &[(&str, &str)] = &[\n");
    // The contents themselves, not `include_str!` of absolute paths: the generated file must not
    // point into whichever clone last ran this script when clones share a target folder.
    for file in files {
        let name = file.file_name().unwrap().to_string_lossy().into_owned();
        let text = std::fs::read_to_string(&file).unwrap_or_else(|e| panic!("reading {}: {e}", file.display()));
        code.push_str(&format!("    ({name:?}, {text:?}),\n"));
    }
    code.push_str("];\n");
    let out = PathBuf::from(std::env::var("OUT_DIR").unwrap()).join("embedded_templates.rs");
    std::fs::write(out, code).unwrap();
}
