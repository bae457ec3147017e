//! `rings`: the native node and its client (see `rings --help`; the code is in
//! `rings_node::native::cli`).

#[cfg(not(target_arch = "wasm32"))]
fn main() -> std::process::ExitCode {
    rings_node::native::cli::main()
}

// The wasm build has no native node (and `cargo test --target wasm32-unknown-unknown`
// builds every bin).
#[cfg(target_arch = "wasm32")]
fn main() {}
