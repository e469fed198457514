//! Handing freed memory back to the system. The binary's allocator (mimalloc, see main.rs) keeps
//! freed pages for reuse; after a rare burst of allocation that is memory the process holds for
//! good. The places that know such a burst just ended call [`give_back`].

/// A webhook body at least this large is rare (Alertmanager groups are small) and parsing it
/// allocates many times its size: give the pages back after answering it.
pub const LARGE_BODY: usize = 64 * 1024;

/// Return the freed pages of this thread (and, with `everywhere`, of abandoned threads and the
/// shared arenas) to the system. Costs a walk of the heap: call it after bursts, not per request.
pub fn give_back(everywhere: bool) {
    // SAFETY: mi_collect only frees pages no allocation uses; with another global allocator
    // (tests, benches) mimalloc's heap is empty and it finds nothing to do.
    unsafe { libmimalloc_sys::mi_collect(everywhere) };
}
