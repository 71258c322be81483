// The heap profiler, beside the allocator (never inside its fast paths): with
// SWIFTMALLOC_PROFILE=1 every allocation's stack is captured (libunwind's
// unw_backtrace, loaded at start-up) and deduplicated into a call-site table; each
// live block keeps its site id in the span's BlockInfo array (small blocks) or its
// descriptor (large and huge), so no block carries a header. Per site it counts
// allocations, frees, live blocks and bytes (requested and held), and the live
// bytes at the heap's peak. SWIFTMALLOC_PROFILE_SAMPLE=N samples one allocation per
// N bytes on average instead, with unbiased, scaled estimates.
//
// Profiling puts the heap in tracking mode (thread-cache limits 0), so the fast
// paths are unchanged, instruction for instruction, when it is off.
//
// Memory: the site table, the frames and the timeline live in mappings of their own,
// never in malloc. Lock order: the profile lock is taken with no other allocator
// lock held, except the internal memory lock it may take inside.
import SwiftMallocShims

/// Fraction bits of the block counts of a site in sampled mode (Profiler.scaled).
let sampledCountShift: UInt = 16

/// One call site: a distinct stack. Counters are exact in full mode and scaled
/// estimates in sampled mode (see ProfileMath), where the counts (not the bytes)
/// are in units of 2^-sampledCountShift blocks. 128 bytes, in an array that starts
/// on a page: what every allocation and free of the site reads and writes (the
/// epoch and the six counters) fills the first cache line of its entry.
struct Site {
    var seenEpoch: UInt = 0
    var allocCount: UInt = 0
    var allocBytes: UInt = 0
    var freeCount: UInt = 0
    var liveCount: UInt = 0
    var liveBytes: UInt = 0
    var liveHeld: UInt = 0
    /// Live bytes and blocks when the heap last reached its peak; valid when
    /// `seenEpoch` equals the profiler's `peakEpoch`, else the current values are.
    var peakLiveBytes: UInt = 0
    var peakLiveCount: UInt = 0
    var hash: UInt64 = 0
    var frames: UnsafeMutablePointer<UInt>? = nil
    var depth: UInt32 = 0
    private var padding: (UInt32, UInt, UInt, UInt) = (0, 0, 0, 0)

    init(hash: UInt64, frames: UnsafeMutablePointer<UInt>?, depth: UInt32) {
        self.hash = hash
        self.frames = frames
        self.depth = depth
    }

    init() {}
}

struct TimelineSample {
    var elapsed: UInt64 = 0
    var requested: UInt = 0
    var held: UInt = 0
}

let maxProfileDepth = Int(SWM_WALK_MEMO_DEPTH)
let timelineCapacity = 4096
/// The timeline's first grain: a point at most every millisecond. Each time the
/// timeline fills and every other point is dropped, the grain doubles, so points
/// stay evenly spread over the whole run.
let timelineFirstIntervalNanoseconds: UInt64 = 1_000_000

struct Profiler {
    var lock: Int32 = 0
    /// 0: every allocation; else the mean gap in bytes between samples.
    var sampleMean: UInt = 0
    var depth: Int = 32
    var libunwind = false
    /// SWIFTMALLOC_PROFILE_QUIET=1: no summary on stderr at exit (the report is still written).
    var quiet = false
    var sites: UnsafeMutablePointer<Site>? = nil
    var siteCount: Int = 1        // site 0 is "no stack"
    /// Full mode: the site of the library's own allocations (those libunwind and the
    /// dynamic loader make while the library loads libunwind or walks a stack, and
    /// glibc's as the library starts a thread of its own), kept
    /// apart from the program's sites in the report (`own`); 0 when none.
    var ownSite: UInt32 = 0
    var siteCapacity: Int = 0
    var table: UnsafeMutablePointer<UInt32>? = nil
    var tableCapacity: Int = 0
    var frameCursor: UInt = 0
    var frameLimit: UInt = 0
    var liveRequested: UInt = 0
    var peakRequested: UInt = 0
    /// Full mode: each small class's live requested bytes (smallClassCount words
    /// after this struct in its mapping), kept here under the lock rather than in
    /// the class's Central, whose line holds the class lock.
    var classRequested: UnsafeMutablePointer<UInt>? = nil
    var peakEpoch: UInt = 0
    var countdown: Int = 0
    var random = RandomStream(state: 0x9E37_79B9_7F4A_7C15)
    var timeline: UnsafeMutablePointer<TimelineSample>? = nil
    var timelineCount: Int = 0
    var lastSampleAt: UInt64 = 0
    var timelineInterval: UInt64 = timelineFirstIntervalNanoseconds
    var events: UInt = 0
    var startedAt: UInt64 = 0
    /// SWIFTMALLOC_REPORT_INTERVAL in nanoseconds (0: no interval reports), and
    /// the lock that orders the reporter thread's reports with the final one: once
    /// `finalStarted` is set (under it) no interval report is written or renamed
    /// over the report path (IntervalReport.swift).
    var reportInterval: UInt64 = 0
    var reportLock: Int32 = 0
    var finalStarted = false
    /// SWIFTMALLOC_REPORT; empty: swiftmalloc.%p.report.
    var reportTemplate = PathTemplate()
}

extension UnsafeMutablePointer where Pointee == Profiler {
    // ---- site table -------------------------------------------------------------------
    /// Hash of a stack (swm_hash_frames, the hash the profiled malloc entry's walk
    /// computes as it goes).
    @inline(__always) func hashFrames(_ frames: UnsafePointer<UInt>, _ n: Int) -> UInt64 {
        swm_hash_frames(frames, Int32(truncatingIfNeeded: n))
    }

    func growSites() -> Bool {
        let newSiteCapacity = pointee.siteCapacity == 0 ? 4096 : pointee.siteCapacity &* 2
        let newTableCapacity = newSiteCapacity &* 2
        guard let s = OSPages.map(UInt(newSiteCapacity &* MemoryLayout<Site>.stride)),
              let t = OSPages.map(UInt(newTableCapacity &* 4)) else { return false }
        let sites = s.bindMemory(to: Site.self, capacity: newSiteCapacity)
        let table = t.bindMemory(to: UInt32.self, capacity: newTableCapacity)
        if let old = pointee.sites {
            sites.update(from: old, count: pointee.siteCount)
            OSPages.unmap(UnsafeMutableRawPointer(old), UInt(pointee.siteCapacity &* MemoryLayout<Site>.stride))
        } else {
            sites.initialize(to: Site())
        }
        if let oldTable = pointee.table {
            OSPages.unmap(UnsafeMutableRawPointer(oldTable), UInt(pointee.tableCapacity &* 4))
        }
        // Rehash every site (ids are stable: they index `sites`).
        var id = 1
        while id < pointee.siteCount {
            var slot = Int(truncatingIfNeeded: sites[id].hash) & (newTableCapacity &- 1)
            while table[slot] != 0 { slot = (slot &+ 1) & (newTableCapacity &- 1) }
            table[slot] = UInt32(id)
            id &+= 1
        }
        pointee.sites = sites
        pointee.table = table
        pointee.siteCapacity = newSiteCapacity
        pointee.tableCapacity = newTableCapacity
        return true
    }

    private func storeFrames(_ frames: UnsafePointer<UInt>, _ n: Int) -> UnsafeMutablePointer<UInt>? {
        let bytes = UInt(n &* 8)
        if pointee.frameCursor == 0 || pointee.frameLimit &- pointee.frameCursor < bytes {
            guard let chunk = OSPages.map(1 << 20) else { return nil }
            pointee.frameCursor = UInt(bitPattern: chunk)
            pointee.frameLimit = pointee.frameCursor &+ (1 << 20)
        }
        let p = UnsafeMutablePointer<UInt>(bitPattern: pointee.frameCursor).unsafelyUnwrapped
        p.update(from: frames, count: n)
        pointee.frameCursor &+= bytes
        return p
    }

    /// The id of the site with these frames (hash `h`), creating it. Caller holds `lock`.
    private func siteID(_ frames: UnsafePointer<UInt>, _ n: Int, hash h: UInt64) -> UInt32 {
        if n == 0 { return 0 }
        if pointee.siteCount &* 2 >= pointee.tableCapacity && !growSites() { return 0 }
        let table = pointee.table.unsafelyUnwrapped
        let sites = pointee.sites.unsafelyUnwrapped
        let mask = pointee.tableCapacity &- 1
        var slot = Int(truncatingIfNeeded: h) & mask
        while table[slot] != 0 {
            let s = sites + Int(table[slot])
            if s.pointee.hash == h && Int(s.pointee.depth) == n {
                var i = 0
                while i < n && s.pointee.frames.unsafelyUnwrapped[i] == frames[i] { i &+= 1 }
                if i == n { return table[slot] }
            }
            slot = (slot &+ 1) & mask
        }
        if pointee.siteCount >= pointee.siteCapacity { return 0 }
        guard let stored = storeFrames(frames, n) else { return 0 }
        let id = pointee.siteCount
        (sites + id).initialize(to: Site(hash: h, frames: stored, depth: UInt32(n)))
        pointee.siteCount &+= 1
        table[slot] = UInt32(id)
        return UInt32(id)
    }

    /// Registers the site of the profiler's own allocations: one frame, an address
    /// in this library's code (where it loads libunwind), so no program stack is it.
    func registerOwnSite() {
        var frame = UInt(bitPattern: swm_own_site_address())
        let h = hashFrames(&frame, 1)
        swm_lock(&pointee.lock)
        pointee.ownSite = siteID(&frame, 1, hash: h)
        swm_unlock(&pointee.lock)
    }

    /// Bytes until the next sample: exponential with the configured mean.
    func nextGap() -> Int {
        swm_lock(&pointee.lock)
        let g = ProfileMath.gap(mean: pointee.sampleMean, random: &pointee.random)
        swm_unlock(&pointee.lock)
        return g
    }

    // ---- recording ------------------------------------------------------------------------
    /// The site for an allocation of `size` bytes by the calling thread: captures the
    /// stack (full mode, or when this allocation is sampled). Takes no allocator lock
    /// other than the profile lock.
    func capture(size: UInt) -> UInt32 {
        // An allocation the profiler's own work makes (swm_capturing_get): its site in
        // full mode; never sampled.
        if swm_capturing_get() != 0 { return pointee.sampleMean == 0 ? pointee.ownSite : 0 }
        if pointee.sampleMean != 0 {
            // The thread's countdown (shared with the malloc fast path), or the
            // process-wide one for a thread without a cache.
            let raw = swm_tls_cache_get()
            if raw != swm_empty_cache_get(), let tc = raw?.assumingMemoryBound(to: ThreadCache.self) {
                tc.pointee.sampleCountdown &-= Int(bitPattern: max(size, 1))
                if tc.pointee.sampleCountdown >= 0 { return 0 }   // as swm_malloc_sampled
                tc.pointee.sampleCountdown = nextGap()
            } else {
                swm_lock(&pointee.lock)
                pointee.countdown &-= Int(bitPattern: max(size, 1))
                let sampled = pointee.countdown <= 0
                if sampled { pointee.countdown = ProfileMath.gap(mean: pointee.sampleMean, random: &pointee.random) }
                swm_unlock(&pointee.lock)
                if !sampled { return 0 }
            }
        }
        let raw = swm_tls_cache_get()
        if raw != swm_empty_cache_get(), let tc = raw?.assumingMemoryBound(to: ThreadCache.self) {
            // Captured on entry to malloc (full profiling), into this same cache.
            if let pending = takePendingSite(tc) { return pending }
            return site(frames: tc.frames, memo: tc)
        }
        // A thread without a cache (being torn down): stack scratch, no memo.
        return withStackBytes256 { bytes in
            site(frames: bytes.baseAddress.unsafelyUnwrapped.assumingMemoryBound(to: UInt.self), memo: nil, capacity: bytes.count / 8)
        }
    }

    /// The site of the frames the profiled malloc entry captured into `tc` for the
    /// allocation in progress (taking them), or nil when it captured none.
    @inline(__always) func takePendingSite(_ tc: UnsafeMutablePointer<ThreadCache>) -> UInt32? {
        let pending = Int(swm_pending_frames_take())
        if pending <= 0 { return nil }
        return site(captured: tc.frames, pending, hash: swm_pending_hash_get(), memo: tc)
    }

    /// Captures the calling thread's stack into `frames` and returns its site id,
    /// consulting the thread's memo of recent stacks before the shared table.
    private func site(frames: UnsafeMutablePointer<UInt>, memo tc: UnsafeMutablePointer<ThreadCache>?,
                      capacity: Int = maxProfileDepth) -> UInt32 {
        swm_capturing_set(1)
        let n = Int(swm_backtrace(frames, Int32(min(pointee.depth, capacity))))
        if tc != nil { swm_walk_memo_forget(frames, Int32(n)) }
        swm_capturing_set(0)
        return site(captured: frames, n, hash: hashFrames(frames, n), memo: tc)
    }

    /// The site id of `n` captured frames whose hash is `h` (0 when `n` is 0).
    func site(captured frames: UnsafeMutablePointer<UInt>, _ n: Int, hash h: UInt64,
                      memo tc: UnsafeMutablePointer<ThreadCache>?) -> UInt32 {
        if n == 0 { return 0 }
        let memo = tc?.siteCache(h)
        if let m = memo, m.pointee.hash == h, Int(m.pointee.depth) == n, m.pointee.site != 0 { return m.pointee.site }
        swm_lock(&pointee.lock)
        let id = siteID(frames, n, hash: h)
        swm_unlock(&pointee.lock)
        if let m = memo, id != 0 { m.pointee = SiteCacheEntry(hash: h, site: id, depth: UInt32(n)) }
        return id
    }

    /// Counter increments for one block: 1 and its bytes, or the sampled estimate,
    /// whose count is in units of 2^-sampledCountShift blocks (a sample of a block
    /// as large as the mean gap stands for about 1.58 blocks: a whole count would
    /// make that 2, a bias of 26%).
    @inline(__always) private func scaled(_ size: UInt, _ held: UInt, site: UInt32) -> (count: UInt, bytes: UInt, held: UInt) {
        if pointee.sampleMean == 0 || site == 0 { return (1, size, held) }
        let w = ProfileMath.weight(size: size, mean: pointee.sampleMean)
        return (UInt(w * Double(UInt(1) << sampledCountShift) + 0.5), UInt(Double(size) * w + 0.5), UInt(Double(held) * w + 0.5))
    }

    /// A site's block count as the report gives it: whole blocks (sampled mode
    /// keeps fractions of a block, see `scaled`).
    @inline(__always) func reportedCount(_ c: UInt) -> UInt {
        pointee.sampleMean == 0 ? c : (c &+ (UInt(1) << (sampledCountShift &- 1))) >> sampledCountShift
    }

    /// Whether the site's `peakLive…` fields hold its values at the heap's last peak;
    /// else it has not changed since, and its current values are those.
    @inline(__always) func valuesAtPeak(_ s: UnsafeMutablePointer<Site>) -> Bool {
        s.pointee.seenEpoch == pointee.peakEpoch
    }

    /// Saves the site's values as they were at the last peak before changing them.
    @inline(__always) func touch(_ s: UnsafeMutablePointer<Site>) {
        if !valuesAtPeak(s) {
            s.pointee.peakLiveBytes = atLeastZero(s.pointee.liveBytes)
            s.pointee.peakLiveCount = atLeastZero(s.pointee.liveCount)
            s.pointee.seenEpoch = pointee.peakEpoch
        }
    }

    /// One block of `site` allocated or freed, in the site's shared counters (full
    /// mode). Caller holds `lock`.
    @inline(__always) func count(site: UInt32, size: UInt, held: UInt, allocated: Bool) {
        let s = pointee.sites.unsafelyUnwrapped + Int(site)
        touch(s)
        if allocated {
            s.pointee.allocCount &+= 1
            s.pointee.allocBytes &+= size
            s.pointee.liveCount &+= 1
            s.pointee.liveBytes &+= size
            s.pointee.liveHeld &+= held
        } else {
            s.pointee.freeCount &+= 1
            s.pointee.liveCount &-= 1
            s.pointee.liveBytes &-= size
            s.pointee.liveHeld &-= held
        }
    }

    /// Full mode with its site table: allocations and frees are counted in
    /// per-thread tallies (ProfileTally.swift).
    @inline(__always) var countsInTallies: Bool { pointee.sampleMean == 0 && pointee.sites != nil }

    @inline(__always) func recordAllocation(site: UInt32, cls: Int, size: UInt, held: UInt, heap: UnsafeMutablePointer<Heap>) {
        record(site: site, cls: cls, size: size, held: held, allocated: true, heap: heap)
    }

    @inline(__always) func recordFree(site: UInt32, cls: Int, size: UInt, held: UInt, heap: UnsafeMutablePointer<Heap>) {
        record(site: site, cls: cls, size: size, held: held, allocated: false, heap: heap)
    }

    /// A small block allocated or freed through the tracked bins of `tc`, the calling
    /// thread's cache: in full mode straight into its tally, without looking the
    /// cache up again.
    @_transparent
    func recordTracked(site: UInt32, cls: Int, size: UInt, held: UInt, allocated: Bool,
                       tc: UnsafeMutablePointer<ThreadCache>, heap: UnsafeMutablePointer<Heap>) {
        if pointee.sampleMean == 0 { return tally(site: site, cls: cls, size: size, held: held, allocated: allocated, tc: tc, heap: heap) }
        record(site: site, cls: cls, size: size, held: held, allocated: allocated, heap: heap)
    }

    /// One block of `site` allocated or freed (of small class `cls`, 0 for a large
    /// or huge block): the site's counters, the live total and its peak epoch, the
    /// timeline and, in full mode, the heap's per-class requested bytes.
    @inline(__always)
    private func record(site: UInt32, cls: Int, size: UInt, held: UInt, allocated: Bool, heap: UnsafeMutablePointer<Heap>) {
        if pointee.sampleMean != 0 { return recordSampled(site: site, cls: cls, size: size, held: held, allocated: allocated, heap: heap) }
        // Full mode: every block is recorded once when allocated and once when
        // freed, so once every thread's tally is merged no counter is below zero.
        // `sites` holds `site` (ids come from siteID, and 0 is the entry for stacks
        // that could not be captured). A thread with a cache counts into its tally
        // (ProfileTally.swift); one without, here under the lock.
        let raw = swm_tls_cache_get()
        if raw != swm_empty_cache_get(), let tc = raw?.assumingMemoryBound(to: ThreadCache.self) {
            return tally(site: site, cls: cls, size: size, held: held, allocated: allocated, tc: tc, heap: heap)
        }
        swm_lock(&pointee.lock)
        count(site: site, size: size, held: held, allocated: allocated)
        if allocated {
            pointee.liveRequested &+= size
            if totalAbovePeak { notePeak(heap: heap) }
        } else {
            pointee.liveRequested &-= size
        }
        if cls > 0 { noteClassRequested(cls: cls, size: size, allocated: allocated, heap: heap) }
        sampleTimeline(heap: heap)
        swm_unlock(&pointee.lock)
    }

    /// `record` in sampled mode: scaled estimates, which can undershoot a site's
    /// live values when its blocks are freed, so they stop at zero. The heap's live
    /// requested bytes, their peak and each small class's (`classRequested`) are
    /// estimates too, which the report gives unless statistics track them exactly
    /// (Heap.requestedNow).
    @inline(never)
    private func recordSampled(site: UInt32, cls: Int, size: UInt, held: UInt, allocated: Bool, heap: UnsafeMutablePointer<Heap>) {
        if site == 0 { return noteTimeline(heap: heap) }
        let (count, bytes, heldBytes) = scaled(size, held, site: site)
        swm_lock(&pointee.lock)
        if let sites = pointee.sites, Int(site) < pointee.siteCount {
            let s = sites + Int(site)
            touch(s)
            if allocated {
                s.pointee.allocCount &+= count
                s.pointee.allocBytes &+= bytes
                s.pointee.liveCount &+= count
                s.pointee.liveBytes &+= bytes
                s.pointee.liveHeld &+= heldBytes
            } else {
                s.pointee.freeCount &+= count
                s.pointee.liveCount &-= min(count, s.pointee.liveCount)
                s.pointee.liveBytes &-= min(bytes, s.pointee.liveBytes)
                s.pointee.liveHeld &-= min(heldBytes, s.pointee.liveHeld)
            }
        }
        if allocated {
            pointee.liveRequested &+= bytes
            if pointee.liveRequested > pointee.peakRequested { notePeak(heap: heap) }
        } else {
            pointee.liveRequested &-= min(bytes, pointee.liveRequested)
        }
        if cls > 0, let classes = pointee.classRequested {
            let c = classes + cls
            let now = swm_load_relaxed(c)
            swm_store_relaxed(c, allocated ? now &+ bytes : now &- min(bytes, now))
        }
        sampleTimeline(heap: heap)
        swm_unlock(&pointee.lock)
    }

    /// Class `cls`'s live requested bytes in full mode, where every tracked block
    /// passes through `record`: written only here, under the profile lock, so plain
    /// stores do (readers load them relaxed; Heap.classRequestedNow). The heap's
    /// total and its peak are the profiler's `liveRequested` and `peakRequested`
    /// then (Heap.requestedNow). Caller holds `lock`.
    @inline(__always) private func noteClassRequested(cls: Int, size: UInt, allocated: Bool, heap: UnsafeMutablePointer<Heap>) {
        let c = pointee.classRequested.unsafelyUnwrapped + cls
        let now = swm_load_relaxed(c)
        swm_store_relaxed(c, allocated ? now &+ size : now &- size)
    }

    private func noteTimeline(heap: UnsafeMutablePointer<Heap>) {
        swm_lock(&pointee.lock)
        sampleTimeline(heap: heap)
        swm_unlock(&pointee.lock)
    }

    /// The shared live total is above the heap's peak, compared signed: with
    /// several threads the total can be below zero for a while (ProfileTally.swift).
    @inline(__always) var totalAbovePeak: Bool {
        Int(bitPattern: pointee.liveRequested) > Int(bitPattern: pointee.peakRequested)
    }

    /// The live total is the heap's new peak: every site's current values are now
    /// its values at the peak (`peakEpoch`), and the timeline gets the point (at most
    /// one per `timelineInterval`, as every point), so that it shows the peak even
    /// in a program that allocates rarely. Caller holds `lock`.
    func notePeak(heap: UnsafeMutablePointer<Heap>) {
        pointee.peakRequested = pointee.liveRequested
        pointee.peakEpoch &+= 1
        sampleTimelineNow(heap: heap)
    }

    /// Appends a timeline point at most every `timelineInterval`; when full, drops every
    /// other point, doubles the interval and carries on. Caller holds `lock`.
    @inline(__always) private func sampleTimeline(heap: UnsafeMutablePointer<Heap>) {
        // Read the clock only every 32 events: a point is due at most every millisecond.
        pointee.events &+= 1
        if pointee.events & 31 == 0 { sampleTimelineNow(heap: heap) }
    }

    /// `n` events merged from a thread's tally: the timeline as if they had been
    /// recorded one by one. Caller holds `lock`.
    func noteEvents(_ n: UInt, heap: UnsafeMutablePointer<Heap>) {
        let before = pointee.events
        pointee.events &+= n
        if before >> 5 != pointee.events >> 5 { sampleTimelineNow(heap: heap) }
    }

    @inline(never) private func sampleTimelineNow(heap: UnsafeMutablePointer<Heap>) {
        let now = swm_now_ns()
        if now &- pointee.lastSampleAt < pointee.timelineInterval || pointee.timeline == nil { return }
        pointee.lastSampleAt = now
        let t = pointee.timeline.unsafelyUnwrapped
        if pointee.timelineCount == timelineCapacity {
            var i = 0
            while i < timelineCapacity / 2 { t[i] = t[i &* 2 &+ 1]; i &+= 1 }
            pointee.timelineCount = timelineCapacity / 2
            pointee.timelineInterval &*= 2
        }
        t[pointee.timelineCount] = timelinePoint(at: now, heap: heap)
        pointee.timelineCount &+= 1
    }

    /// The heap's requested and held bytes at `now` (ns, swm_now_ns), as a timeline
    /// point. Caller holds `lock`.
    func timelinePoint(at now: UInt64, heap: UnsafeMutablePointer<Heap>) -> TimelineSample {
        TimelineSample(
            elapsed: now &- pointee.startedAt,
            requested: heap.requestedNow.live,
            held: (heap.pageHeapPointer.pointee.usedPages << pageShift) &+ heap.pointee.hugeBytes)
    }
}

extension UnsafeMutablePointer where Pointee == Heap {
    /// Sets up profiling from the environment; called once at initialization.
    func configureProfiler(sampleMean: UInt, depth: Int, reportTemplate: UnsafePointer<CChar>?, quiet: Bool) {
        let classesAt = (UInt(MemoryLayout<Profiler>.stride) &+ 63) & ~63
        let bytes = (classesAt &+ UInt(smallClassCount &* 8) &+ pageMask) & ~pageMask
        guard let raw = OSPages.map(bytes) else { return }
        let profiler = raw.bindMemory(to: Profiler.self, capacity: 1)
        profiler.initialize(to: Profiler())
        profiler.pointee.classRequested = (raw + Int(classesAt)).bindMemory(to: UInt.self, capacity: smallClassCount)
        profiler.pointee.sampleMean = sampleMean
        profiler.pointee.depth = max(1, min(depth, maxProfileDepth))
        profiler.pointee.quiet = quiet
        profiler.pointee.random = RandomStream(state: UInt64(pointee.freeKey) | 1)
        profiler.pointee.countdown = sampleMean == 0 ? 0 : ProfileMath.gap(mean: sampleMean, random: &profiler.pointee.random)
        profiler.pointee.startedAt = swm_now_ns()
        profiler.pointee.lastSampleAt = profiler.pointee.startedAt
        // Full recording indexes the site table without a test: no table, no profiler.
        guard profiler.growSites() else {
            OSPages.unmap(raw, bytes)
            return
        }
        if sampleMean == 0 { profiler.registerOwnSite() }
        if let t = OSPages.map(UInt(timelineCapacity &* MemoryLayout<TimelineSample>.stride)) {
            profiler.pointee.timeline = t.bindMemory(to: TimelineSample.self, capacity: timelineCapacity)
        }
        if let template = reportTemplate {
            profiler.pointee.reportTemplate.set(template, from: "SWIFTMALLOC_REPORT",
                                                instead: "the profile goes to swiftmalloc.<pid>.report in the working directory")
        }
        pointee.profiler = profiler
    }

    /// The profiler when profiling is on.
    @inline(__always) var activeProfiler: UnsafeMutablePointer<Profiler>? { pointee.profiler }
}
