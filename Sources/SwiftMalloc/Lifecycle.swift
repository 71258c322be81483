// Process and thread life: configuration at start-up, statistics at exit, the
// thread-exit flush, and the fork protocol (every allocator lock is taken before
// fork and released — or reset in the child — after it, so the child inherits a
// consistent heap; caches of threads that do not exist in the child are flushed).
import SwiftMallocShims

@inline(__always) private func environment(_ name: StaticString) -> UnsafePointer<CChar>? {
    swm_getenv(UnsafeRawPointer(name.utf8Start).assumingMemoryBound(to: CChar.self))
}

/// Whether the C string `value` is `text`.
private func equals(_ value: UnsafePointer<CChar>?, _ text: StaticString) -> Bool {
    guard let value else { return false }
    let t = text.utf8Start
    var i = 0
    while i < text.utf8CodeUnitCount {
        if UInt8(bitPattern: value[i]) != t[i] { return false }
        i &+= 1
    }
    return value[i] == 0
}

/// Set, and neither empty nor "0".
@inline(__always) private func flag(_ name: StaticString) -> Bool {
    guard let v = environment(name) else { return false }
    return v[0] != 0 && v[0] != 48
}

/// A decimal environment value, or nil when unset or not a number.
private func number(_ name: StaticString) -> UInt? {
    guard let v = environment(name) else { return nil }
    return decimal(v)
}

/// The C string `v` as a decimal number, or nil when it is empty or holds anything
/// but digits; a number past UInt's range is UInt.max (callers clamp).
func decimal(_ v: UnsafePointer<CChar>) -> UInt? {
    if v[0] == 0 { return nil }
    var n: UInt = 0
    var i = 0
    while v[i] != 0 {
        let d = UInt8(bitPattern: v[i])
        if d < 48 || d > 57 { return nil }
        let (m, o1) = n.multipliedReportingOverflow(by: 10)
        let (a, o2) = m.addingReportingOverflow(UInt(d &- 48))
        n = o1 || o2 ? UInt.max : a
        i &+= 1
    }
    return n
}

extension UnsafeMutablePointer where Pointee == Heap {
    func readEnvironment() {
        pointee.config.statsAtExit = flag("SWIFTMALLOC_STATS")
        // The statistics into a file of each process's own (%p: its pid) rather
        // than stderr, which programs and their tests may read.
        if let path = environment("SWIFTMALLOC_STATS_FILE"), path[0] != 0 {
            pointee.config.statsAtExit = true
            pointee.statsTemplate.set(path, from: "SWIFTMALLOC_STATS_FILE", instead: "the statistics go to stderr")
        }
        pointee.config.check = flag("SWIFTMALLOC_CHECK")
        // One row of central lists per CPU the process may use (at most maxShards), so
        // threads running at once rarely share a class lock.
        let shards = number("SWIFTMALLOC_SHARDS") ?? UInt(swm_cpu_count())
        pointee.shardCount = Int(min(max(shards, 1), UInt(maxShards)))
        // A mean gap above 2^40 bytes (a sample per TiB) is taken as 2^40: the
        // sampling arithmetic (ProfileMath) stays far from overflow.
        let sample = min(number("SWIFTMALLOC_PROFILE_SAMPLE") ?? 0, UInt(1) << 40)
        if sample == 0, let v = environment("SWIFTMALLOC_PROFILE_SAMPLE"), v[0] != 0 {
            // A value that is no positive number of bytes names no sampling rate: say so
            // rather than leave the user waiting for a report.
            withLine { out in
                out.text("swiftmalloc: SWIFTMALLOC_PROFILE_SAMPLE is not a positive number of bytes: ")
                out.text(flag("SWIFTMALLOC_PROFILE") ? "every allocation is recorded\n" : "profiling is off\n")
            }
        }
        if flag("SWIFTMALLOC_PROFILE") || sample > 0 {
            configureProfiler(sampleMean: sample, depth: Int(min(number("SWIFTMALLOC_PROFILE_DEPTH") ?? 32, UInt(maxProfileDepth))),
                              reportTemplate: environment("SWIFTMALLOC_REPORT"), quiet: flag("SWIFTMALLOC_PROFILE_QUIET"))
        }
        // Check mode records requested sizes too: the overflow canary starts there.
        let fullProfile = pointee.profiler != nil && sample == 0
        pointee.config.tracking = pointee.config.statsAtExit || fullProfile || pointee.config.check
        pointee.config.direct = pointee.config.check
        pointee.config.requestedByProfiler = fullProfile
        pointee.config.mixed = flag("SWIFTMALLOC_MIXED") && !pointee.config.tracking && !pointee.config.direct
            && pointee.profiler == nil
        if pointee.config.tracking || pointee.profiler != nil { pointee.reportFD = swm_dup_stderr() }
        // Tracking with thread caches: free goes straight to the tracked path, which
        // the fast path would only reach through the slow path's second lookup.
        // Otherwise it reads the flat page map, where there is one.
        if pointee.config.tracking && !pointee.config.direct {
            swm_use_tracked_free()
        } else if swm_page_flat_get() != nil {
            swm_use_flat_free()
        }
        if let profiler = pointee.profiler {
            let walk = environment("SWIFTMALLOC_PROFILE_WALK")
            let mode = equals(walk, "libunwind") ? SWM_WALK_LIBUNWIND : equals(walk, "check") ? SWM_WALK_CHECK
                : equals(walk, "fp") ? SWM_WALK_FP : SWM_WALK_CACHED
            swm_set_capture(framesOffset, Int32(profiler.pointee.depth), Int32(mode))
        }
        // Sampling with the fast paths on: malloc switches to the byte-counting variant.
        if pointee.profiler != nil && !pointee.config.tracking {
            if let empty = swm_empty_cache_get()?.assumingMemoryBound(to: ThreadCache.self) {
                let field = withUnsafeMutablePointer(to: &empty.pointee.sampleCountdown) { UnsafeMutableRawPointer($0) }
                swm_set_sample_countdown_offset(field - UnsafeMutableRawPointer(empty))
            }
            swm_use_sampled_malloc()
        }
        // Full profiling: malloc captures its caller's stack on entry.
        if pointee.profiler != nil && fullProfile { swm_use_profiled_malloc() }
        // The profile rewritten every SWIFTMALLOC_REPORT_INTERVAL seconds while the program runs.
        if let profiler = pointee.profiler, let seconds = number("SWIFTMALLOC_REPORT_INTERVAL"), seconds > 0 {
            profiler.pointee.reportInterval = UInt64(min(seconds, 1 << 30)) &* 1_000_000_000
            pointee.reporterState = .wanted
        }
        if pointee.profiler != nil || pointee.config.statsAtExit { swm_exit_reports_want() }
        // Reports for a process that a signal ends (SWIFTMALLOC_PROFILE_SIGNALS=0: none).
        if pointee.profiler != nil || pointee.config.statsAtExit,
           !(environment("SWIFTMALLOC_PROFILE_SIGNALS").map { $0[0] == 48 } ?? false) {
            swm_install_signal_reports()
        }
        if let v = environment("SWIFTMALLOC_BACKGROUND"), v[0] == 48 { pointee.purgerState = .disabled }
        pointee.config.hugePages = flag("SWIFTMALLOC_THP")
        if let n = number("SWIFTMALLOC_GATHER_MAPPINGS") {
            if n == 0 { pageHeapPointer.pointee.gatherOff = true } else { pageHeapPointer.pointee.mappingLimit = n }
        }
    }

    /// Every lock, in the documented order.
    func lockAll() {
        swm_lock(&pointee.threadsLock)
        var i = 0
        while i < pointee.shardCount &* smallClassCount { swm_lock(&(pointee.centrals.unsafelyUnwrapped + i).pointee.lock); i &+= 1 }
        i = 0
        while i < pointee.shardCount &* returnStacksPerShard { swm_lock(&returnStackAt(i).pointee.lock); i &+= 1 }
        i = 0
        while i < pointee.shardCount { swm_lock(&mixedArena(i).pointee.lock); i &+= 1 }
        i = 0
        while i < pointee.shardCount { swm_lock(&stash(i).pointee.lock); i &+= 1 }
        swm_lock(&pageHeapPointer.pointee.lock)
        swm_lock(&internalPointer.pointee.lock)
    }

    func unlockAll() {
        swm_unlock(&internalPointer.pointee.lock)
        swm_unlock(&pageHeapPointer.pointee.lock)
        var i = pointee.shardCount
        while i > 0 { i &-= 1; swm_unlock(&stash(i).pointee.lock) }
        i = pointee.shardCount
        while i > 0 { i &-= 1; swm_unlock(&mixedArena(i).pointee.lock) }
        i = pointee.shardCount &* returnStacksPerShard
        while i > 0 { i &-= 1; swm_unlock(&returnStackAt(i).pointee.lock) }
        i = pointee.shardCount &* smallClassCount
        while i > 0 { i &-= 1; swm_unlock(&(pointee.centrals.unsafelyUnwrapped + i).pointee.lock) }
        swm_unlock(&pointee.threadsLock)
    }

    func resetAllLocks() {
        swm_lock_reset(&internalPointer.pointee.lock)
        swm_lock_reset(&pageHeapPointer.pointee.lock)
        var i = 0
        while i < pointee.shardCount &* smallClassCount { swm_lock_reset(&(pointee.centrals.unsafelyUnwrapped + i).pointee.lock); i &+= 1 }
        i = 0
        while i < pointee.shardCount { swm_lock_reset(&stash(i).pointee.lock); i &+= 1 }
        i = 0
        while i < pointee.shardCount { swm_lock_reset(&mixedArena(i).pointee.lock); i &+= 1 }
        i = 0
        while i < pointee.shardCount &* returnStacksPerShard { swm_lock_reset(&returnStackAt(i).pointee.lock); i &+= 1 }
        swm_lock_reset(&pointee.threadsLock)
    }
}

@_cdecl("swm_on_load")
func swm_on_load() {
    guard let heap = currentHeap() else { return }
    heap.pointee.loaded = true
    if let profiler = heap.pointee.profiler { profiler.pointee.libunwind = swm_unwinder_open() != 0 }
}

@_cdecl("swm_on_exit")
func swm_on_exit() { writeFinalReports(reason: "exit") }

/// A signal whose action was the default is ending the process (shims.c): the
/// exit reports, written now, with the profile's reason "signal".
@_cdecl("swm_on_signal")
func swm_on_signal(_ signal: Int32) { writeFinalReports(reason: "signal") }

/// The statistics and the profile a process leaves when it ends.
func writeFinalReports(reason: StaticString) {
    guard let heap = swm_heap_get()?.assumingMemoryBound(to: Heap.self) else { return }
    // The program may have closed the reports' descriptor and opened a file of its
    // own under that number: then the exit reports go to fd 2 if that is still the
    // same stderr, else nowhere (the profile file is still written).
    let fd = heap.pointee.reportFD
    if fd >= 0 && swm_report_fd_intact(fd) == 0 { heap.pointee.reportFD = swm_report_fd_intact(2) != 0 ? 2 : -1 }
    if heap.pointee.config.statsAtExit {
        if heap.pointee.statsTemplate.isEmpty { heap.printStats(fd: heap.pointee.reportFD) } else { heap.writeStatsFile() }
    }
    if heap.pointee.profiler != nil {
        heap.stopIntervalReports()
        swm_walk_check_report(heap.pointee.reportFD)
        heap.writeProfileAtExit(reason: reason)
    }
}

@_cdecl("swm_thread_exit")
func swm_thread_exit(_ cache: UnsafeMutableRawPointer?) {
    guard let cache, let heap = swm_heap_get()?.assumingMemoryBound(to: Heap.self) else { return }
    // From here on this thread's calls bypass caching (other keys' destructors may still run).
    swm_tls_state_set(2)
    // An odd value is a cacheless thread's row (Heap.cachelessShard), not a cache.
    if UInt(bitPattern: cache) & 1 != 0 { return heap.releaseCachelessShard() }
    swm_tls_cache_set(swm_empty_cache_get())
    heap.retireThreadCache(cache.assumingMemoryBound(to: ThreadCache.self))
}


@_cdecl("swm_fork_prepare")
func swm_fork_prepare() {
    guard let heap = swm_heap_get()?.assumingMemoryBound(to: Heap.self) else { return }
    if let profiler = heap.pointee.profiler {
        // Before any lock: a thread inside libunwind may still allocate.
        swm_unwind_fork_prepare()
        swm_lock(&profiler.pointee.lock)
    }
    heap.lockAll()
}

@_cdecl("swm_fork_parent")
func swm_fork_parent() {
    guard let heap = swm_heap_get()?.assumingMemoryBound(to: Heap.self) else { return }
    heap.unlockAll()
    if let profiler = heap.pointee.profiler {
        swm_unlock(&profiler.pointee.lock)
        swm_unwind_fork_parent()
    }
}

@_cdecl("swm_fork_child")
func swm_fork_child() {
    guard let heap = swm_heap_get()?.assumingMemoryBound(to: Heap.self) else { return }
    // The thread's count of held locks stays the one inherited from the fork until
    // everything is reset, so an ending signal that comes meanwhile is noted, not
    // handled: its handler would wait for a lock not reset yet (the profiler's).
    // The child's last fork handler delivers it (shims.c).
    defer { swm_locks_reset() }
    heap.resetAllLocks()
    swm_helpers_fork_child()
    if let profiler = heap.pointee.profiler {
        swm_lock_reset(&profiler.pointee.lock)
        // The reporter thread does not exist in the child: the child starts its own.
        swm_lock_reset(&profiler.pointee.reportLock)
        if heap.pointee.reporterState == .running { heap.pointee.reporterState = .wanted }
        swm_stackwalk_fork_child()
        swm_unwind_fork_child()
    }
    heap.pointee.forkCount &+= 1
    // The purger thread does not exist in the child; a later allocation starts one.
    if heap.pointee.purgerState == .running { heap.pointee.purgerState = .wanted }
    // Only the forking thread exists in the child: recycle every other thread's cache.
    let mine = swm_tls_cache_get()?.assumingMemoryBound(to: ThreadCache.self)  // may be the empty cache
    var tc = heap.pointee.threads
    while let t = tc {
        tc = t.pointee.next
        if t != mine { heap.retireThreadCache(t, interrupted: true) }
    }
}
