fn main() -> std::process::ExitCode {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    bound_allocator_caches();
    lakehouse::cli::main()
}

/// glibc's allocator gives each thread that allocates concurrently an arena of its own (up to eight per
/// core) and raises its mmap threshold each time a large block is freed, so the buffers of model inference,
/// corpus builds and batch writes end up in arenas it never trims: a server that had built a 5,000-row
/// corpus and served a load sweep held several times its live memory. Two arenas and a fixed threshold
/// (large blocks are mapped and unmapped, never kept) bound that. The environment's `MALLOC_ARENA_MAX` and
/// `MALLOC_MMAP_THRESHOLD_` still win, for an operator who measures otherwise.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[allow(unsafe_code)]
fn bound_allocator_caches() {
    const ARENAS: libc::c_int = 2;
    const MMAP_THRESHOLD: libc::c_int = 256 * 1024;
    if std::env::var_os("MALLOC_ARENA_MAX").is_none() {
        // SAFETY: mallopt only sets allocator parameters; it is called before any other thread exists.
        unsafe { libc::mallopt(libc::M_ARENA_MAX, ARENAS) };
    }
    if std::env::var_os("MALLOC_MMAP_THRESHOLD_").is_none() {
        // SAFETY: as above.
        unsafe { libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD) };
    }
}
