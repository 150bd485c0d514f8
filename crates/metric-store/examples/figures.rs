//! Prints the metric store's figures: `cargo run --release -p metric-store
//! --example figures [-- <directory on the disk to measure>]`.

fn main() {
    let temporary = tempfile::tempdir().expect("temporary directory");
    let dir = std::env::args_os()
        .nth(1)
        .map(std::path::PathBuf::from)
        .map(|parent| tempfile::tempdir_in(parent).expect("directory to measure in"));
    let dir = dir.as_ref().unwrap_or(&temporary);
    let options = metric_store::figures::FigureOptions::default();
    println!("{options:?}");
    let figures = metric_store::figures::measure(dir.path(), options).expect("figures");
    println!("{figures}");
}
