//! Only for the `tflite` feature: link LiteRT's `libLiteRt.so` (TensorFlow Lite's current C API)
//! from `LITERT_LIB_DIR` (scripts/tflite.sh fetches it from the ai-edge-litert wheel and sets it),
//! and put that directory and the binary's own on the rpath, so that edgesift and its tests find
//! the library without LD_LIBRARY_PATH.
fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=LITERT_LIB_DIR");
    if std::env::var_os("CARGO_FEATURE_TFLITE").is_none() {
        return;
    }
    match std::env::var("LITERT_LIB_DIR") {
        Ok(dir) if std::path::Path::new(&dir).join("libLiteRt.so").is_file() => {
            println!("cargo:rustc-link-search=native={dir}");
            println!("cargo:rustc-link-arg=-Wl,-rpath,{dir}");
        }
        Ok(dir) => {
            panic!("LITERT_LIB_DIR={dir} has no libLiteRt.so (scripts/tflite.sh fetches it)")
        }
        Err(_) => panic!(
            "the tflite feature links libLiteRt.so: set LITERT_LIB_DIR to its directory, or build \
             with scripts/tflite.sh, which fetches it"
        ),
    }
    println!("cargo:rustc-link-arg=-Wl,-rpath,$ORIGIN");
    println!("cargo:rustc-link-lib=dylib=LiteRt");
}
