// Interval reports (SWIFTMALLOC_REPORT_INTERVAL=SECONDS): a long-running program's
// profile, rewritten every SECONDS at the report path while it runs, so that it
// can be read without stopping the program. One detached thread of the library's
// own (all signals blocked) sleeps, then writes the profile to `<path>.<pid>.<tid>.tmp` and
// renames it over `<path>`, so a reader always finds a whole file. The final
// report (at exit, or when a signal ends the process) takes `reportLock` and sets
// `finalStarted` first: a report the thread is writing finishes before it, and
// none is renamed over it afterwards.
//
// When the thread starts: like the purger (Purger.swift), from an allocation slow
// path after the constructor ran, with no lock held; the profiler marks it wanted
// when it starts, and a forked child (where it does not exist) marks it wanted again,
// as a pause for unshare or setns does (helper_threads.c).
import SwiftMallocShims

enum ReporterState: UInt8 {
    case off = 0         // no interval reports
    case wanted = 1      // the next allocation slow path starts the thread
    case running = 2
}

extension UnsafeMutablePointer where Pointee == Heap {
    @inline(never)
    func startReporter() {
        if !pointee.loaded || swm_tls_state_get() == 2 { return }
        guard let profiler = pointee.profiler else { return }
        swm_lock(&profiler.pointee.reportLock)
        let go = pointee.reporterState == .wanted
        if go { pointee.reporterState = .running }
        swm_unlock(&profiler.pointee.reportLock)
        if !go { return }
        let started = swm_start_reporter()
        if started != 0 {
            swm_lock(&profiler.pointee.reportLock)
            pointee.reporterState = started == 1 ? .wanted : .off
            swm_unlock(&profiler.pointee.reportLock)
        }
    }

    /// Before the final report: no interval report is written after this returns.
    func stopIntervalReports() {
        guard let profiler = pointee.profiler else { return }
        swm_lock(&profiler.pointee.reportLock)
        profiler.pointee.finalStarted = true
        swm_unlock(&profiler.pointee.reportLock)
    }
}

@_cdecl("swm_reporter_main")
func swm_reporter_main() {
    guard let heap = swm_heap_get()?.assumingMemoryBound(to: Heap.self), let profiler = heap.pointee.profiler else { return }
    let interval = profiler.pointee.reportInterval
    while true {
        if swm_helper_nap(interval) != 0 {
            // Paused (helper_threads.c): leave, and start again after the pause.
            swm_lock(&profiler.pointee.reportLock)
            if heap.pointee.reporterState == .running { heap.pointee.reporterState = .wanted }
            swm_unlock(&profiler.pointee.reportLock)
            return
        }
        swm_lock(&profiler.pointee.reportLock)
        let done = profiler.pointee.finalStarted
        if !done { heap.writeIntervalReport(profiler: profiler) }
        swm_unlock(&profiler.pointee.reportLock)
        if done { return }
    }
}
