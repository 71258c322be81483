// Writes the profile (format: docs/PROFILE-FORMAT.md) at exit and on request, and a
// short summary on stderr at exit. Only mappings, fixed buffers and write(2): the
// report path never allocates, so it is safe at exit and inside any thread.
import SwiftMallocShims

/// Scratch memory for one report: the text buffer, the path, /proc files, pins.
private struct ReportScratch {
    static let textBytes = 1 << 16
    static let pathBytes = 4096
    static let procBytes = 4 << 20
}

/// What writing a profile to a path came to. A raw-value enum, as PointerError
/// (Diagnostics.swift): a plain one would import a glibc 2.36 symbol.
enum ProfileWrite: UInt8 {
    case written
    /// The file could not be created (open's errno).
    case notOpened
    /// A write or the close failed (their errno): the file is incomplete.
    case failed
}

extension UnsafeMutablePointer where Pointee == Heap {
    @inline(never)
    func writeProfileAtExit(reason: StaticString) {
        guard let profiler = pointee.profiler else { return }
        withStackBytes256 { raw in
            let path = raw.baseAddress.unsafelyUnwrapped.assumingMemoryBound(to: CChar.self)
            reportPath(into: path, capacity: raw.count, profiler: profiler)
            let ok = writeProfileReplacing(path, reason: reason)
            let error = ok ? 0 : swm_get_errno()
            if !profiler.pointee.quiet || !ok { printProfileSummary(path: path, written: ok, error: error) }
        }
    }

    /// The interval report (IntervalReport.swift), written as the exit report is.
    /// Caller holds the profiler's reportLock.
    func writeIntervalReport(profiler: UnsafeMutablePointer<Profiler>) {
        withStackBytes256 { raw in
            let path = raw.baseAddress.unsafelyUnwrapped.assumingMemoryBound(to: CChar.self)
            reportPath(into: path, capacity: raw.count, profiler: profiler)
            _ = writeProfileReplacing(path, reason: "interval")
        }
    }

    /// Writes the profile to `<path>.<pid>.<tid>.tmp` (created anew: whatever another
    /// user put at that predictable name is removed, a link never written through)
    /// and renames it over `path`, so
    /// that neither a reader nor another process or thread writing the same path (a
    /// report path without %p, shared by a program's children; two threads asking
    /// for a report) ever finds a partial or mixed file: the last writer to finish
    /// leaves its whole report. Writes `path` itself where it is not a regular file
    /// (/dev/null, a pipe, a symbolic link: replacing those would break them) and
    /// where no file can be made beside it (a directory that is not writable, a
    /// path too long for the suffix). A write that fails (a full disk, a file size
    /// limit) leaves whatever `path` held and returns false with write's errno.
    func writeProfileReplacing(_ path: UnsafePointer<CChar>, reason: StaticString) -> Bool {
        if swm_path_replaceable(path) == 0 { return writeProfile(to: path, reason: reason) == .written }
        return withStackBytes256 { raw in
            let temporary = raw.baseAddress.unsafelyUnwrapped.assumingMemoryBound(to: CChar.self)
            var i = 0
            while path[i] != 0 && i < raw.count &- 48 { temporary[i] = path[i]; i &+= 1 }
            if path[i] != 0 { return writeProfile(to: path, reason: reason) == .written }
            temporary[i] = 46   // "."
            i &+= 1
            appendDecimal(UInt(swm_getpid()), temporary, &i)
            temporary[i] = 46
            i &+= 1
            appendDecimal(UInt(swm_gettid()), temporary, &i)
            let suffix: StaticString = ".tmp"
            var k = 0
            while k < suffix.utf8CodeUnitCount { temporary[i] = CChar(bitPattern: suffix.utf8Start[k]); i &+= 1; k &+= 1 }
            temporary[i] = 0
            switch writeProfile(to: temporary, reason: reason, fresh: true) {
            case .written:
                if swm_rename(temporary, path) == 0 { return true }
                _ = swm_unlink(temporary)
                return writeProfile(to: path, reason: reason) == .written
            case .failed:
                let error = swm_get_errno()
                _ = swm_unlink(temporary)
                swm_set_errno(error)
                return false
            case .notOpened:
                return writeProfile(to: path, reason: reason) == .written
            }
        }
    }

    /// SWIFTMALLOC_REPORT (or swiftmalloc.%p.report) with %p replaced by the pid.
    private func reportPath(into out: UnsafeMutablePointer<CChar>, capacity: Int, profiler: UnsafeMutablePointer<Profiler>) {
        profiler.pointee.reportTemplate.expand(fallback: "swiftmalloc.%p.report", into: out, capacity: capacity)
    }

    private func printProfileSummary(path: UnsafePointer<CChar>, written: Bool, error: Int32) {
        guard let profiler = pointee.profiler else { return }
        var liveBytes: UInt = 0, liveCount: UInt = 0, liveSites: UInt = 0
        swm_lock(&profiler.pointee.lock)
        let siteCount = profiler.pointee.siteCount
        if let sites = profiler.pointee.sites {
            var id = 1
            while id < siteCount {
                if sites[id].liveCount > 0 && UInt32(id) != profiler.pointee.ownSite {
                    liveSites &+= 1
                    liveBytes &+= sites[id].liveBytes
                    liveCount &+= sites[id].liveCount
                }
                id &+= 1
            }
        }
        // The program's peak: the heap's less the library's own blocks live then.
        var peak = atLeastZero(profiler.pointee.peakRequested)
        if profiler.pointee.ownSite != 0, let sites = profiler.pointee.sites {
            let own = sites + Int(profiler.pointee.ownSite)
            let ownAtPeak = atLeastZero(profiler.valuesAtPeak(own) ? own.pointee.peakLiveBytes : own.pointee.liveBytes)
            peak = peak > ownAtPeak ? peak &- ownAtPeak : 0
        }
        swm_unlock(&profiler.pointee.lock)
        let fd = pointee.reportFD
        withLine(fd: fd) { out in
            out.text("swiftmalloc: profile of pid ")
            out.decimal(UInt(swm_getpid()))
            out.text(profiler.pointee.sampleMean == 0 ? " (every allocation): " : " (sampled): ")
            out.decimal(UInt(siteCount &- (profiler.pointee.ownSite != 0 ? 2 : 1)))
            out.text(" call sites; live at exit ")
            out.bytes(liveBytes)
            out.text(" in ")
            out.decimal(profiler.reportedCount(liveCount))
            out.text(" blocks from ")
            out.decimal(liveSites)
            out.text(" sites; peak ")
            out.bytes(peak)
            out.byte(10)
        }
        withLine(fd: fd) { out in
            if written {
                out.text("swiftmalloc: report written to ")
                out.cString(path)
                out.text(" (view it with: swiftmalloc report ")
                out.cString(path)
                out.text(")\n")
            } else {
                writeFailureLine(&out, "report", path: path, error: error)
            }
        }
    }

    /// Writes the whole profile to `path`: `.notOpened` when the file cannot be
    /// created, `.failed` (errno set) when a write or the close fails. `fresh`: a
    /// temporary name, created anew (swm_open_new), never written through a link.
    func writeProfile(to path: UnsafePointer<CChar>, reason: StaticString, fresh: Bool = false) -> ProfileWrite {
        guard pointee.profiler != nil else { return .notOpened }
        // A file size limit makes a write fail (EFBIG), not end the process.
        let xfsz = swm_xfsz_hold()
        defer { swm_xfsz_release(xfsz) }
        return writeProfileNow(to: path, reason: reason, fresh: fresh)
    }

    private func writeProfileNow(to path: UnsafePointer<CChar>, reason: StaticString, fresh: Bool) -> ProfileWrite {
        guard let profiler = pointee.profiler else { return .notOpened }
        settleProfileTallies()
        let (fd, room) = openMakingRoom { fresh ? swm_open_new(path) : swm_open_write(path) }
        defer { restoreRoom(room) }
        if fd < 0 { return .notOpened }
        let scratchBytes = UInt(ReportScratch.textBytes &+ ReportScratch.procBytes)
        var mapped = OSPages.map(scratchBytes)
        if mapped == nil {
            // No address space or mapping left (a program that ran into its limit and
            // freed its blocks): what the heap holds free goes back first.
            _ = trim()
            mapped = OSPages.map(scratchBytes)
        }
        guard let scratch = mapped else {
            _ = swm_close(fd)
            swm_set_errno(ENOMEM)
            return .failed
        }
        defer { OSPages.unmap(scratch, scratchBytes) }
        var out = TextBuffer(base: scratch.assumingMemoryBound(to: UInt8.self), capacity: ReportScratch.textBytes, fd: fd)
        let proc = (scratch + ReportScratch.textBytes).assumingMemoryBound(to: CChar.self)

        out.text("swiftmalloc-profile 1\npid ")
        out.decimal(UInt(swm_getpid()))
        out.text("\ncommand")
        let cmdline: StaticString = "/proc/self/cmdline"
        let n = swm_read_file(UnsafeRawPointer(cmdline.utf8Start).assumingMemoryBound(to: CChar.self), proc, ReportScratch.procBytes &- 1)
        var i = 0
        while i < n {
            out.byte(32)
            while i < n && proc[i] != 0 {
                let c = UInt8(bitPattern: proc[i])
                out.byte(c == 10 ? 32 : c)
                i &+= 1
            }
            i &+= 1
        }
        if profiler.pointee.sampleMean == 0 {
            out.text("\nmode full")
        } else {
            out.text("\nmode sampled ")
            out.decimal(profiler.pointee.sampleMean)
        }
        out.text("\ndepth ")
        out.decimal(UInt(profiler.pointee.depth))
        out.text(profiler.pointee.libunwind ? "\nunwinder libunwind" : "\nunwinder frame-pointer")
        // The report's moment: its elapsed time and the timeline's last point (a
        // report of a large profile takes a while to write).
        let takenAt = swm_now_ns()
        out.text("\nelapsed_ns ")
        out.decimal(UInt(takenAt &- profiler.pointee.startedAt))
        out.text("\nreason ")
        out.text(reason)
        out.byte(10)
        writeModules(&out, proc: proc)

        let pins = computePins(profiler)
        swm_lock(&profiler.pointee.lock)
        writeSites(&out, profiler)
        swm_unlock(&profiler.pointee.lock)
        writeClasses(&out)
        if let (units, count) = pins {
            var id = 0
            while id < count {
                let pages = (units[id] &+ 512) >> 10
                if pages > 0 {
                    out.text("pin "); out.decimal(UInt(id)); out.byte(32); out.decimal(pages); out.byte(10)
                }
                id &+= 1
            }
            OSPages.unmap(UnsafeMutableRawPointer(units), UInt(count &* 8))
        }
        swm_lock(&profiler.pointee.lock)
        if let t = profiler.pointee.timeline {
            var k = 0
            let end = takenAt &- profiler.pointee.startedAt
            while k < profiler.pointee.timelineCount && t[k].elapsed <= end {
                writeSample(&out, t[k])
                k &+= 1
            }
            // The timeline ends where the report is taken, however long ago the last
            // event-driven point was (points other threads added while it was written
            // come after it, and are left out).
            writeSample(&out, profiler.timelinePoint(at: takenAt, heap: self))
        }
        swm_unlock(&profiler.pointee.lock)
        out.text("end\n")
        out.flush()
        if out.failed {
            let error = swm_get_errno()
            _ = swm_close(fd)
            swm_set_errno(error)
            return .failed
        }
        return swm_close(fd) == 0 ? .written : .failed
    }

    private func writeSample(_ out: inout TextBuffer, _ sample: TimelineSample) {
        out.text("sample "); out.decimal(UInt(sample.elapsed))
        out.byte(32); out.decimal(sample.requested)
        out.byte(32); out.decimal(sample.held); out.byte(10)
    }

    /// Executable file mappings from /proc/self/maps.
    private func writeModules(_ out: inout TextBuffer, proc: UnsafeMutablePointer<CChar>) {
        let maps: StaticString = "/proc/self/maps"
        let n = swm_read_file(UnsafeRawPointer(maps.utf8Start).assumingMemoryBound(to: CChar.self), proc, ReportScratch.procBytes)
        if n <= 0 { return }
        var line = 0
        while line < n {
            var end = line
            while end < n && proc[end] != 10 { end &+= 1 }
            // start-end perms offset dev inode path
            var field = 0, i = line
            var start: UInt = 0, stop: UInt = 0, offset: UInt = 0
            var executable = false
            var pathAt = -1
            while i < end && field < 5 {
                while i < end && proc[i] == 32 { i &+= 1 }
                let f = i
                while i < end && proc[i] != 32 { i &+= 1 }
                switch field {
                case 0:
                    var j = f
                    start = parseHex(proc, &j, i)
                    j &+= 1
                    stop = parseHex(proc, &j, i)
                case 1: executable = i &- f >= 3 && proc[f &+ 2] == 120   // "x"
                case 2:
                    var j = f
                    offset = parseHex(proc, &j, i)
                default: break
                }
                field &+= 1
            }
            while i < end && proc[i] == 32 { i &+= 1 }
            if i < end && proc[i] == 47 { pathAt = i }                       // "/"
            if executable && pathAt >= 0 {
                out.text("module "); out.hex(start); out.byte(32); out.hex(stop); out.byte(32); out.hex(offset); out.byte(32)
                var k = pathAt
                while k < end { out.byte(UInt8(bitPattern: proc[k])); k &+= 1 }
                out.byte(10)
            }
            line = end &+ 1
        }
        // Libraries unloaded before now (swm_dlclose): their mappings, to name
        // frames that lay in them. `proc` is free again.
        let unloaded = swm_unloaded_records(proc, ReportScratch.procBytes)
        var k = 0
        while k < unloaded { out.byte(UInt8(bitPattern: proc[k])); k &+= 1 }
    }

    private func parseHex(_ s: UnsafeMutablePointer<CChar>, _ i: inout Int, _ end: Int) -> UInt {
        var v: UInt = 0
        while i < end {
            let c = UInt8(bitPattern: s[i])
            var d: UInt8
            if c >= 48 && c <= 57 { d = c &- 48 } else if c >= 97 && c <= 102 { d = c &- 87 } else { break }
            v = (v << 4) | UInt(d)
            i &+= 1
        }
        return v
    }

    /// Caller holds the profile lock.
    private func writeSites(_ out: inout TextBuffer, _ profiler: UnsafeMutablePointer<Profiler>) {
        guard let sites = profiler.pointee.sites else { return }
        var id = 0
        while id < profiler.pointee.siteCount {
            let s = sites + id
            if id > 0, let frames = s.pointee.frames {
                out.text("site "); out.decimal(UInt(id)); out.byte(32); out.decimal(UInt(s.pointee.depth))
                var f = 0
                while f < Int(s.pointee.depth) { out.byte(32); out.hex(frames[f]); f &+= 1 }
                out.byte(10)
            }
            if id > 0 && UInt32(id) == profiler.pointee.ownSite {
                out.text("own "); out.decimal(UInt(id)); out.byte(10)
            }
            let atPeak = profiler.valuesAtPeak(s)
            out.text("stat "); out.decimal(UInt(id))
            out.byte(32); out.decimal(profiler.reportedCount(s.pointee.allocCount))
            out.byte(32); out.decimal(s.pointee.allocBytes)
            out.byte(32); out.decimal(profiler.reportedCount(s.pointee.freeCount))
            // Live values below zero are possible only while other threads have
            // counts not yet merged (ProfileTally.swift).
            out.byte(32); out.decimal(profiler.reportedCount(atLeastZero(s.pointee.liveCount)))
            out.byte(32); out.decimal(atLeastZero(s.pointee.liveBytes))
            out.byte(32); out.decimal(atLeastZero(s.pointee.liveHeld))
            out.byte(32); out.decimal(atLeastZero(atPeak ? s.pointee.peakLiveBytes : s.pointee.liveBytes))
            out.byte(32); out.decimal(profiler.reportedCount(atLeastZero(atPeak ? s.pointee.peakLiveCount : s.pointee.liveCount)))
            out.byte(10)
            id &+= 1
        }
    }

    private func writeClasses(_ out: inout TextBuffer) {
        var cls = 1
        while cls < smallClassCount {
            let s = snapshot(cls)
            let info = pointee.classTable[cls]
            if s.spans != 0 || s.spansReleased != 0 {
                out.text("class "); out.decimal(UInt(cls))
                out.byte(32); out.decimal(UInt(info.size))
                out.byte(32); out.decimal(UInt(info.pages))
                out.byte(32); out.decimal(s.spans)
                out.byte(32); out.decimal(s.liveBlocks &- min(s.cachedBlocks, s.liveBlocks))
                out.byte(32); out.decimal(s.requested)
                out.byte(32); out.decimal(s.spans &* UInt(info.pages) << pageShift)
                out.byte(32); out.decimal(s.spansReleased &* UInt(info.pages))
                out.byte(32); out.decimal(s.peakSpans)
                out.byte(10)
            }
            cls &+= 1
        }
        let t = totals()
        out.text("large "); out.decimal(t.largeCount); out.byte(32); out.decimal(pointee.largeRequested)
        out.byte(32); out.decimal(t.largeBytes); out.byte(10)
        out.text("huge "); out.decimal(t.hugeCount); out.byte(32); out.decimal(pointee.hugeRequested)
        out.byte(32); out.decimal(t.hugeBytes); out.byte(10)
        out.text("heap "); out.decimal(t.smallHeld &+ t.largeBytes &+ t.hugeBytes)
        out.byte(32); out.decimal(t.requested)
        out.byte(32); out.decimal(pointee.peakHeldBytes)
        out.byte(32); out.decimal(requestedNow.peak)
        out.byte(32); out.decimal(t.mappedBytes &+ t.hugeBytes)
        out.byte(32); out.decimal(t.dirtyBytes)
        out.byte(32); out.decimal(t.purgedBytes &+ pointee.hugeUnmappedBytes)
        out.byte(10)
    }

    /// Pages kept only by long-lived blocks: every small span at most a quarter
    /// occupied charges its pages to the sites of its live blocks, by their bytes.
    /// Returns per-site units of 1/1024 page (a mapping the caller unmaps).
    private func computePins(_ profiler: UnsafeMutablePointer<Profiler>) -> (UnsafeMutablePointer<UInt>, Int)? {
        swm_lock(&profiler.pointee.lock)
        let count = profiler.pointee.siteCount
        swm_unlock(&profiler.pointee.lock)
        guard let raw = OSPages.map(UInt(count &* 8)) else { return nil }
        let units = raw.bindMemory(to: UInt.self, capacity: count)
        let pageHeap = pageHeapPointer
        lockAll()
        if let chunks = pageHeap.pointee.chunks {
            var c = 0
            while c < pageHeap.pointee.chunkCount {
                let start = chunks[c &* 2]
                let end = start &+ (chunks[c &* 2 &+ 1] << pageShift)
                var page = start
                while page < end {
                    guard let span = spanOwning(page), span.pointee.start == page else { page &+= pageSize; continue }
                    if span.pointee.state == .small { chargePins(span, units, count) }
                    page = span.pointee.end > page ? span.pointee.end : page &+ pageSize
                }
                c &+= 1
            }
        }
        unlockAll()
        return (units, count)
    }

    private func chargePins(_ span: UnsafeMutablePointer<Span>, _ units: UnsafeMutablePointer<UInt>, _ count: Int) {
        let live = UInt(span.pointee.live)
        guard live > 0, live &* 4 <= UInt(span.pointee.capacity), let info = span.pointee.blockInfo else { return }
        var total: UInt = 0
        var i = 0
        while i < Int(span.pointee.carved) { total &+= UInt(info[i].requested); i &+= 1 }
        if total == 0 { return }
        let spanUnits = span.pointee.pageCount << 10
        i = 0
        while i < Int(span.pointee.carved) {
            let r = UInt(info[i].requested)
            if info[i].isLive && r != 0 && Int(info[i].site) < count { units[Int(info[i].site)] &+= spanUnits &* r / total }
            i &+= 1
        }
    }
}

@_cdecl("swiftmalloc_report_write")
public func swiftmalloc_report_write(_ path: UnsafePointer<CChar>?) -> Int32 {
    guard let heap = currentHeap(), heap.pointee.profiler != nil else {
        swm_set_errno(ENOTSUP)
        return -1
    }
    guard let path else {
        swm_set_errno(EINVAL)
        return -1
    }
    return heap.writeProfileReplacing(path, reason: "request") ? 0 : -1
}
