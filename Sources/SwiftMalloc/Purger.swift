// The background purger: a process that stops calling the allocator still gives its
// free pages back, so the page heap can keep freed pages for reuse while the program
// is busy. One detached thread (all signals blocked) wakes every quarter second and
// purges the runs unused for the decay time (1 s) (and, under an address-space
// limit, unmaps the page heap's chunks that lie in purged free runs), gives the spans of shard
// stashes unused for a whole interval back to the page heap, merges the mixed
// arenas' idle return stacks and gives back the pages inside their free ranges
// unchanged for a second (ReturnStack.swift); once nothing has been dirty for
// half a second it exits, so an idle process keeps no extra thread, and a program
// whose last thread calls pthread_exit is held up by at most about 1.75 seconds.
// Around a call that needs the process single-threaded (unshare, setns) it is
// paused: it leaves at once and starts again afterwards (helper_threads.c).
//
// When it may start: only from an allocation slow path (malloc, calloc, realloc,
// the aligned calls), after the library's constructor ran, with no allocator lock
// held. Never from free: glibc's thread teardown calls free while holding the
// stack-cache lock that pthread_create takes. Never from a thread being torn down.
// So it is wanted as soon as dirty pages appear, and also when the heap grows past
// the dirty reserve: a program that allocates a large working set and then only
// frees (and later allocates again) finds it running. A forked child starts its
// own. SWIFTMALLOC_BACKGROUND=0 turns it off.
//
// While it is not running the page heap keeps only the small reserve (see
// PageHeap.dirtyAllowance), so correctness never depends on it.
import SwiftMallocShims

enum PurgerState: UInt8 {
    case idle = 0        // no thread; one will be started when dirty pages appear or the heap grows past the reserve
    case wanted = 1      // the next allocation slow path starts it
    case running = 2     // the thread exists and will look at the dirty list again
    case disabled = 3    // turned off, or the thread could not be created
}

let purgerIntervalNanoseconds: UInt64 = 250_000_000
/// Wakes in a row that find nothing dirty before the purger exits (half a second).
let purgerIdleWakes = 2

extension UnsafeMutablePointer where Pointee == Heap {
    /// Called at the end of allocation slow paths, with no lock held.
    @inline(__always) func startPurgerIfWanted() {
        if pointee.purgerState == .wanted { startPurger() }
        if pointee.reporterState == .wanted { startReporter() }
    }

    @inline(never)
    private func startPurger() {
        if !pointee.loaded || swm_tls_state_get() == 2 { return }
        let pageHeap = pageHeapPointer
        swm_lock(&pageHeap.pointee.lock)
        let go = pointee.purgerState == .wanted
        if go { pointee.purgerState = .running }
        swm_unlock(&pageHeap.pointee.lock)
        if !go { return }
        let started = swm_start_purger()
        if started != 0 {
            swm_lock(&pageHeap.pointee.lock)
            pointee.purgerState = started == 1 ? .wanted : .disabled
            swm_unlock(&pageHeap.pointee.lock)
        }
    }
}

@_cdecl("swm_purger_main")
func swm_purger_main() {
    guard let heap = swm_heap_get()?.assumingMemoryBound(to: Heap.self) else { return }
    let pageHeap = heap.pageHeapPointer
    var idle = 0
    while true {
        if swm_helper_nap(purgerIntervalNanoseconds) != 0 {
            // Paused (helper_threads.c): leave, and start again after the pause.
            swm_lock(&pageHeap.pointee.lock)
            if heap.pointee.purgerState == .running { heap.pointee.purgerState = .wanted }
            swm_unlock(&pageHeap.pointee.lock)
            return
        }
        let stashed = heap.drainStashes(onlyIdle: true)
        let mixedPending = heap.purgeMixed(all: false)
        // Under an address-space limit, address space the heap does not use is what
        // the program's own mappings and new threads' stacks may be refused for:
        // chunks free since their purge are unmapped, as glibc unmaps freed chunks.
        let limited = swm_address_space_limited() != 0
        swm_lock(&pageHeap.pointee.lock)
        pageHeap.purgeExpired(now: swm_now_ns())
        if limited { _ = pageHeap.releaseFreeChunks(heap: heap, cleanOnly: true) }
        idle = pageHeap.pointee.dirtyPagesTotal == 0 && !stashed && !mixedPending ? idle &+ 1 : 0
        if idle >= purgerIdleWakes {
            if heap.pointee.purgerState == .running { heap.pointee.purgerState = .idle }
            swm_unlock(&pageHeap.pointee.lock)
            return
        }
        swm_unlock(&pageHeap.pointee.lock)
    }
}
