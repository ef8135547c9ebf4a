//! mimalloc, as every Cairn binary builds it (the workspace's `mimalloc` dependency,
//! feature `no_thp`), never asks the kernel for transparent huge pages.
//!
//! Why it matters (BENCHMARKS.md, "Huge pages in the clients' process"): with huge
//! pages, the first touch of any byte of a 2 MiB region makes the kernel zero all of
//! it, and a process whose heap churns through report-sized buffers paid that again
//! and again. A node also turns huge pages off for its whole process
//! (`allocator::no_transparent_huge_pages`); the clients' side (an SDK host, the
//! Python module, `cairn-bench`'s load generator) only has the build's choice.
//!
//! What is checked: mimalloc asks with `madvise(MADV_HUGEPAGE)`, which marks the
//! mapping `hg` in its `VmFlags` (`/proc/self/smaps`) whatever the system's THP mode
//! (`always`, `madvise` or `never`). So a large allocation's mapping must not carry the
//! mark. Linux only: elsewhere there is no such flag to read.

#![cfg(target_os = "linux")]

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// The `VmFlags` of the mapping of `/proc/self/smaps` that holds `address`.
fn vm_flags_of(address: usize) -> Option<Vec<String>> {
    let smaps = std::fs::read_to_string("/proc/self/smaps").ok()?;
    let mut inside = false;
    for line in smaps.lines() {
        let first = line.split_whitespace().next().unwrap_or("");
        if let Some((start, end)) = first.split_once('-')
            && let (Ok(start), Ok(end)) = (
                usize::from_str_radix(start, 16),
                usize::from_str_radix(end, 16),
            )
        {
            inside = (start..end).contains(&address);
            continue;
        }
        if inside && let Some(flags) = line.strip_prefix("VmFlags:") {
            return Some(flags.split_whitespace().map(str::to_owned).collect());
        }
    }
    None
}

#[test]
fn large_allocations_are_not_marked_for_huge_pages() {
    // Report-sized and larger buffers, as a prepare or a node allocates them; each is
    // touched, as the kernel only backs touched memory.
    for size in [1 << 20, 8 << 20, 64 << 20] {
        let mut buffer = vec![0u8; size];
        for page in buffer.chunks_mut(4096) {
            page[0] = 1;
        }
        let address = buffer.as_ptr() as usize;
        let flags = vm_flags_of(address)
            .unwrap_or_else(|| panic!("no mapping in /proc/self/smaps holds {address:#x}"));
        assert!(
            !flags.iter().any(|f| f == "hg"),
            "a {size}-byte buffer's mapping is marked for huge pages: {flags:?}"
        );
        std::hint::black_box(&buffer);
    }
}
