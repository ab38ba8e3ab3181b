//! Embeds the official OCPP JSON schemas (`schemas/ocpp/`) into the binary.

use std::{env, fs, path::PathBuf};

fn main() {
    let root = PathBuf::from(env::var("CARGO_MANIFEST_DIR").unwrap_or_default()).join("../schemas/ocpp");
    println!("cargo:rerun-if-changed={}", root.display());
    let mut out = String::from(
        "/// (protocol directory, file stem, schema text)\npub static SCHEMAS: &[(&str, &str, &str)] = &[\n",
    );
    for dir in ["v16", "v201"] {
        let mut files: Vec<_> = fs::read_dir(root.join(dir))
            .map(|d| d.filter_map(Result::ok).map(|e| e.path()).collect())
            .unwrap_or_default();
        files.sort();
        for path in files.into_iter().filter(|p| p.extension().is_some_and(|e| e == "json")) {
            let stem = path.file_stem().and_then(|s| s.to_str()).unwrap_or_default().to_owned();
            out.push_str(&format!("    ({dir:?}, {stem:?}, include_str!({:?})),\n", path.display().to_string()));
        }
    }
    out.push_str("];\n");
    let dest = PathBuf::from(env::var("OUT_DIR").unwrap_or_default()).join("ocpp_schemas.rs");
    if let Err(e) = fs::write(&dest, out) {
        panic!("cannot write {}: {e}", dest.display());
    }
}
