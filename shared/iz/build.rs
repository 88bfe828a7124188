//! Compresses the vendored NIST profiles (1.8 MB of XML) into `OUT_DIR` with
//! LZ4, so that every binary that validates messages carries about a fifth
//! of that; `profile::profile` decompresses a profile on its first use.

use std::path::Path;

const PROFILES: &str = "profiles/nist-iz-r1.5";

fn main() {
    println!("cargo::rerun-if-changed={PROFILES}");
    let out = std::env::var("OUT_DIR").expect("cargo sets OUT_DIR");
    let entries = std::fs::read_dir(PROFILES).expect("the vendored profiles");
    for entry in entries {
        let path = entry.expect("a profile file").path();
        if path.extension().and_then(|e| e.to_str()) != Some("xml") {
            continue;
        }
        let xml = std::fs::read(&path).expect("a readable profile file");
        let name = path.file_name().expect("a file name").to_string_lossy();
        let packed = lz4_flex::block::compress_prepend_size(&xml);
        std::fs::write(Path::new(&out).join(format!("{name}.lz4")), packed)
            .expect("OUT_DIR is writable");
    }
}
