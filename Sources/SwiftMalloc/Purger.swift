// The background purger: a process that stops calling the allocator still gives its
// free pages back, so the page heap can keep freed pages for reuse while the program
// is busy. While free pages are dirty, one detached thread (all signals blocked)
// wakes every quarter second and purges the runs unused for the decay time (1 s);
// once nothing is dirty it exits, so an idle process keeps no extra thread, and a
// program whose last thread calls pthread_exit is held up by at most about a second.
//
// When it may start: only from an allocation slow path (malloc, calloc, realloc,
// the aligned calls), after the library's constructor ran, with no allocator lock
// held. Never from free: glibc's thread teardown calls free while holding the
// stack-cache lock that pthread_create takes. Never from a thread being torn down.
// A forked child starts its own. SWIFTMALLOC_BACKGROUND=0 turns it off.
//
// While it is not running the page heap keeps only the small reserve (see
// PageHeap.dirtyAllowance), so correctness never depends on it.
import SwiftMallocShims

enum PurgerState: UInt8 {
    case idle = 0        // no thread; one will be started when dirty pages appear
    case wanted = 1      // dirty pages exist: the next allocation slow path starts it
    case running = 2     // the thread exists and will look at the dirty list again
    case disabled = 3    // turned off, or the thread could not be created
}

let purgerIntervalNanoseconds: UInt64 = 250_000_000

extension UnsafeMutablePointer where Pointee == Heap {
    /// Called at the end of allocation slow paths, with no lock held.
    @inline(__always) func startPurgerIfWanted() {
        if pointee.purgerState == .wanted { startPurger() }
    }

    @inline(never)
    private func startPurger() {
        if !pointee.loaded || swm_tls_state_get() == 2 { return }
        let pageHeap = pageHeapPointer
        swm_lock(&pageHeap.pointee.lock)
        let go = pointee.purgerState == .wanted
        if go { pointee.purgerState = .running }
        swm_unlock(&pageHeap.pointee.lock)
        if go && swm_start_purger() != 0 {
            swm_lock(&pageHeap.pointee.lock)
            pointee.purgerState = .disabled
            swm_unlock(&pageHeap.pointee.lock)
        }
    }
}

@_cdecl("swm_purger_main")
func swm_purger_main() {
    guard let heap = swm_heap_get()?.assumingMemoryBound(to: Heap.self) else { return }
    let pageHeap = heap.pageHeapPointer
    while true {
        var nap: Int32 = 0
        swm_futex_wait(&nap, 0, purgerIntervalNanoseconds)
        swm_lock(&pageHeap.pointee.lock)
        pageHeap.purgeExpired(now: swm_now_ns())
        if pageHeap.pointee.dirtyPagesTotal == 0 {
            if heap.pointee.purgerState == .running { heap.pointee.purgerState = .idle }
            swm_unlock(&pageHeap.pointee.lock)
            return
        }
        swm_unlock(&pageHeap.pointee.lock)
    }
}
