//! The `cairn` command-line tool: a thin shell over [`cairn_aggregator::cli`].

use std::process::ExitCode;

use clap::Parser;

/// mimalloc instead of glibc's malloc: report-sized buffers are reused instead of
/// being returned to the kernel and faulted in again for every report (`Cargo.toml`).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    // A node reuses the pages it frees instead of faulting them in again, and faults
    // in 4 KiB pages rather than 2 MiB ones (`allocator`).
    cairn_aggregator::allocator::keep_freed_pages();
    if let Err(e) = cairn_aggregator::allocator::no_transparent_huge_pages() {
        eprintln!("warning: could not turn transparent huge pages off ({e}); running with them");
    }
    let cli = cairn_aggregator::cli::Cli::parse();
    match cairn_aggregator::cli::run(cli) {
        Ok(out) => {
            print!("{out}");
            if !out.ends_with('\n') {
                println!();
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
