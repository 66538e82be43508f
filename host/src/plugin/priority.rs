//! Compiling a plugin is the one heavy job the engine does besides taking
//! messages: Cranelift spends seconds of every core on a Python or
//! JavaScript component. Compiles therefore run on threads with a lower
//! scheduling priority (nice 10), so a plugin dropped into the folder
//! under load slows down its own compile, not the ACKs.

/// Niceness of compile threads: the kernel then gives ACK work about ten
/// times their share of a busy core.
const COMPILE_NICENESS: libc::c_int = 10;

/// Makes wasmtime's parallel compiles (rayon's global pool) run at the
/// lower priority. Idempotent: the pool is built once per process.
pub fn lower_compile_pool_priority() {
    let built = rayon::ThreadPoolBuilder::new().thread_name(|i| format!("sluice-compile-{i}")).start_handler(|_| lower_this_thread()).build_global();
    // Already built: by an earlier call, which set the same handler.
    drop(built);
}

/// Lowers the calling thread's priority (on Linux, niceness is per thread).
pub fn lower_this_thread() {
    // SAFETY: plain syscalls on the calling thread; no memory is shared.
    let result = unsafe {
        let tid = libc::syscall(libc::SYS_gettid) as libc::id_t;
        libc::setpriority(libc::PRIO_PROCESS, tid, COMPILE_NICENESS)
    };
    if result != 0 {
        tracing::debug!("cannot lower the compile thread's priority: {}", std::io::Error::last_os_error());
    }
}
