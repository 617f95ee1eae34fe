//! The console's one outside file set, uPlot, comes from the npm registry into
//! console/node_modules (`make console`); it is copied here so the binaries embed it. Without
//! it (a bare `cargo build`), the console still serves its pages and says charts need
//! `make console` instead of drawing them.

use std::path::Path;

fn main() {
    let out = std::env::var("OUT_DIR").expect("cargo sets OUT_DIR");
    let dist = Path::new("../console/node_modules/uplot/dist");
    // `make console` touches the lock file after installing, so a later install is picked up.
    println!("cargo:rerun-if-changed=../console/package-lock.json");
    println!("cargo:rerun-if-changed=build.rs");
    for (file, fallback) in [
        (
            "uPlot.iife.min.js",
            "/* uPlot is not installed: run `make console` and rebuild */",
        ),
        ("uPlot.min.css", ""),
    ] {
        let target = Path::new(&out).join(file);
        match std::fs::read(dist.join(file)) {
            Ok(bytes) => std::fs::write(&target, bytes),
            Err(_) => std::fs::write(&target, fallback),
        }
        .expect("OUT_DIR is writable");
    }
}
