// The linear memory's initial size: 512 MiB (a multiple of 64 KiB pages).
fn main() {
    println!("cargo:rustc-link-arg=--initial-memory=536870912");
}
