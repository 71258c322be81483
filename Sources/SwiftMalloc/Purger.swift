// The background purger: a process that stops calling the allocator still gives its
// free pages back. One detached thread (signals blocked, 64 KiB stack) sleeps on a
// futex while nothing is dirty; once free pages are dirty it wakes every quarter
// second and purges the runs that have been unused for the decay time (1 s).
// It never allocates. It is started lazily from a slow path, after the library's
// constructor ran and with no allocator lock held; a forked child starts its own.
// SWIFTMALLOC_BACKGROUND=0 turns it off (the reserve limit and on-call decay remain).
import SwiftMallocShims

enum PurgerState: UInt8 {
    case notStarted = 0
    case wanted = 1      // dirty pages exist: start it at the end of this call
    case running = 2
    case disabled = 3    // turned off, or the thread could not be created
}

let purgerIntervalNanoseconds: UInt64 = 250_000_000

extension UnsafeMutablePointer where Pointee == Heap {
    /// Called at the end of slow paths, with no lock held.
    @inline(__always) func startPurgerIfWanted() {
        if pointee.purgerState == .wanted { startPurger() }
    }

    @inline(never)
    private func startPurger() {
        let pageHeap = pageHeapPointer
        swm_lock(&pageHeap.pointee.lock)
        let go = pointee.purgerState == .wanted && pointee.loaded
        if go { pointee.purgerState = .running }
        swm_unlock(&pageHeap.pointee.lock)
        if go && swm_start_purger() != 0 {
            swm_lock(&pageHeap.pointee.lock)
            pointee.purgerState = .disabled
            swm_unlock(&pageHeap.pointee.lock)
        }
    }

    /// Page heap hook, under its lock: dirty pages now exist.
    @inline(__always) func noteDirty() {
        switch pointee.purgerState {
        case .notStarted:
            pointee.purgerState = .wanted
        case .running:
            if pointee.purgerSleeping != 0 {
                pointee.purgerSleeping = 0
                swm_futex_wake(&pointee.purgerSleeping)
            }
        case .wanted, .disabled:
            break
        }
    }
}

@_cdecl("swm_purger_main")
func swm_purger_main() {
    guard let heap = swm_heap_get()?.assumingMemoryBound(to: Heap.self) else { return }
    let pageHeap = heap.pageHeapPointer
    while true {
        swm_lock(&pageHeap.pointee.lock)
        if pageHeap.pointee.dirtyPagesTotal == 0 {
            heap.pointee.purgerSleeping = 1
            swm_unlock(&pageHeap.pointee.lock)
            swm_futex_wait(&heap.pointee.purgerSleeping, 1, 0)
            continue
        }
        pageHeap.purgeExpired(now: swm_now_ns())
        swm_unlock(&pageHeap.pointee.lock)
        var nap: Int32 = 0
        swm_futex_wait(&nap, 0, purgerIntervalNanoseconds)
    }
}
