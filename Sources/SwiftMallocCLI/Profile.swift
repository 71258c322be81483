// The profile file written by libswiftmalloc.so (docs/PROFILE-FORMAT.md), read
// into memory as it is: raw return addresses, per-site statistics keyed by the
// recorder's site ids, size classes, heap totals, pinned pages and the timeline.
// Symbolization and aggregation happen later (Symbolizer.swift, SiteTable.swift).

import Foundation

struct ProfileError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// One executable mapping of the profiled process: addresses in
/// `[start, end)` are at file offset `address - start + fileOffset` in `path`.
struct ModuleRecord {
    var start: UInt64
    var end: UInt64
    var fileOffset: UInt64
    var path: String

    func contains(_ address: UInt64) -> Bool { address >= start && address < end }

    /// The file offset of an address in the mapping. Records are checked when
    /// read so that this does not wrap for an address the mapping contains; it
    /// wraps rather than traps for any other.
    func fileOffset(of address: UInt64) -> UInt64 { address &- start &+ fileOffset }
}

/// A site's counters (`stat` record). Exact in full mode, scaled estimates in
/// sampled mode. Signed, so that differences between two profiles fit.
struct SiteStats: Equatable {
    var allocCount: Int64 = 0
    var allocBytes: Int64 = 0
    var freeCount: Int64 = 0
    var liveCount: Int64 = 0
    var liveBytes: Int64 = 0
    var liveHeldBytes: Int64 = 0
    var peakLiveBytes: Int64 = 0
    var peakLiveCount: Int64 = 0

    static let zero = SiteStats()

    // Figures are bounded when read (Profile.checkFigures), so sums and differences
    // of a file's figures fit; they wrap rather than trap while a file is checked.
    static func + (a: SiteStats, b: SiteStats) -> SiteStats {
        SiteStats(allocCount: a.allocCount &+ b.allocCount, allocBytes: a.allocBytes &+ b.allocBytes,
                  freeCount: a.freeCount &+ b.freeCount, liveCount: a.liveCount &+ b.liveCount,
                  liveBytes: a.liveBytes &+ b.liveBytes, liveHeldBytes: a.liveHeldBytes &+ b.liveHeldBytes,
                  peakLiveBytes: a.peakLiveBytes &+ b.peakLiveBytes,
                  peakLiveCount: a.peakLiveCount &+ b.peakLiveCount)
    }

    static func - (a: SiteStats, b: SiteStats) -> SiteStats {
        SiteStats(allocCount: a.allocCount &- b.allocCount, allocBytes: a.allocBytes &- b.allocBytes,
                  freeCount: a.freeCount &- b.freeCount, liveCount: a.liveCount &- b.liveCount,
                  liveBytes: a.liveBytes &- b.liveBytes, liveHeldBytes: a.liveHeldBytes &- b.liveHeldBytes,
                  peakLiveBytes: a.peakLiveBytes &- b.peakLiveBytes,
                  peakLiveCount: a.peakLiveCount &- b.peakLiveCount)
    }

    var fields: [Int64] {
        [allocCount, allocBytes, freeCount, liveCount, liveBytes, liveHeldBytes, peakLiveBytes, peakLiveCount]
    }

    static func += (a: inout SiteStats, b: SiteStats) { a = a + b }
}

/// A small size class at report time (`class` record).
struct SizeClassRecord {
    var index: Int64
    var blockSize: Int64
    var pagesPerSpan: Int64
    var spans: Int64
    var liveBlocks: Int64
    var requestedLive: Int64
    var heldBytes: Int64
    var pagesReturned: Int64
    var peakSpans: Int64
}

/// Large or huge block totals (`large`, `huge` records).
struct BlockTotals {
    var liveCount: Int64
    var requestedLive: Int64
    var heldBytes: Int64
}

/// Whole-heap totals (`heap` record).
struct HeapRecord {
    var heldBytes: Int64
    var requestedBytes: Int64
    var peakHeldBytes: Int64
    var peakRequestedBytes: Int64
    var mappedBytes: Int64
    var dirtyBytes: Int64
    var returnedBytes: Int64
}

/// One point of the timeline (`sample` record).
struct TimelineSample {
    var elapsedNs: Int64
    var requestedBytes: Int64
    var heldBytes: Int64
}

enum ProfileMode: Equatable {
    case full
    /// Sampled: one allocation per `meanBytes` requested bytes on average; stats are estimates.
    case sampled(meanBytes: Int64)
    case unknown(String)

    var isSampled: Bool { if case .sampled = self { return true } else { return false } }
}

struct Profile {
    /// Where the profile was read from.
    var path: String
    var version: Int64 = 0
    var pid: Int64?
    var command: String?
    var mode: ProfileMode = .full
    var depth: Int64?
    var unwinder: String?
    var elapsedNs: Int64?
    var reason: String?
    var modules: [ModuleRecord] = []
    /// Executable mappings of libraries unloaded before the report (`unloaded`
    /// records), oldest first: they name frames no current module holds.
    var unloadedModules: [ModuleRecord] = []
    /// Site id → return addresses, innermost first. Site 0 has no entry.
    var siteFrames: [UInt64: [UInt64]] = [:]
    var stats: [UInt64: SiteStats] = [:]
    var classes: [SizeClassRecord] = []
    var large: BlockTotals?
    var huge: BlockTotals?
    var heap: HeapRecord?
    /// Site id → pages (4 KiB) of small spans kept only by that site's long-lived blocks.
    var pins: [UInt64: Int64] = [:]
    /// The library's own allocations (the `own` record's site: what the loader,
    /// libunwind and glibc allocated for the profiler and the library's threads),
    /// set apart from `stats` when read.
    var ownStats: SiteStats?
    var ownSite: UInt64?
    var samples: [TimelineSample] = []
    /// The `end` record was seen (the file was not cut short).
    var complete = false
    /// Problems found while reading: malformed lines, a missing `end`.
    var warnings: [String] = []

    /// True when the report was written at exit (the usual case), false for
    /// `swiftmalloc_report_write` calls made while the program ran.
    var writtenAtExit: Bool { reason == nil || reason == "exit" }

    static let pageSize: Int64 = 4096
}

extension Profile {
    /// Reads and parses a profile file, or standard input for "-".
    static func load(path: String) throws -> Profile {
        let name = InputFile.displayName(path)
        let data = try InputFile.read(path) { try startsLikeProfile($0, atEnd: $1, path: name) }
        return try data.withUnsafeBytes { try parse(bytes: $0, path: name) }
    }

    static let headerRecord = "swiftmalloc-profile"

    /// Whether the first bytes of an input, `data`, show it is a profile: true
    /// once its first line that is not blank begins with the header record, false
    /// while that is still undecided; throws what `parse` would for any other
    /// first line (or, at the end, for none).
    static func startsLikeProfile(_ data: Data, atEnd: Bool, path: String) throws -> Bool {
        let blank: Set<UInt8> = [0x0A, 0x0D, 0x20, 0x09]
        guard let first = data.firstIndex(where: { !blank.contains($0) }) else {
            if atEnd { throw ProfileError("\(path): empty file, not a swiftmalloc profile") }
            return false
        }
        let lineEnd = data[first...].firstIndex(of: 0x0A)
        let line = data[first..<(lineEnd ?? data.endIndex)]
        if line.count < headerRecord.utf8.count && lineEnd == nil && !atEnd { return false }
        if line.starts(with: headerRecord.utf8) { return true }
        throw notAProfile(path, firstLine: Substring(String(decoding: line.prefix(240), as: UTF8.self)))
    }

    /// The error for an input whose first line is not the header; the line is shown
    /// as a terminal would not act on it (a binary file's bytes, escapes).
    static func notAProfile(_ path: String, firstLine line: Substring) -> ProfileError {
        ProfileError("\(path): not a swiftmalloc profile (the first line should be "
            + "'swiftmalloc-profile 1', found '\(Format.visible(String(line.prefix(60))))')")
    }

    /// Parses the text of a profile file.
    static func parse(_ text: String, path: String) throws -> Profile {
        var text = text
        return try text.withUTF8 { try parse(bytes: UnsafeRawBufferPointer($0), path: path) }
    }

    /// Parses the bytes of a profile file. Unknown records are skipped, as the
    /// format asks; a known record with missing or bad fields is skipped with a
    /// warning that names its line.
    ///
    /// A large program's profile has a million `site` and `stat` lines: those
    /// are read straight from the bytes (FastLine) when they hold nothing but
    /// numbers; any other line, or one the fast reader does not take, is read
    /// as text, field by field, with the same result.
    static func parse(bytes: UnsafeRawBufferPointer, path: String) throws -> Profile {
        var profile = Profile(path: path)
        var lineNumber = 0
        var sawHeader = false
        var badLines: [Int] = []

        // Lines are split on the byte: a String splits on Characters, and "\r\n"
        // is one Character, so a file with CRLF line ends would be one line.
        let all = bytes.assumingMemoryBound(to: UInt8.self)
        var start = 0
        let count = all.count
        while start <= count {
            var end = start
            if let base = all.baseAddress, start < count,
               let found = memchr(base + start, Int32(UInt8(ascii: "\n")), count - start) {
                end = base.distance(to: found.assumingMemoryBound(to: UInt8.self))
            } else {
                end = count
            }
            lineNumber += 1
            var bytes = UnsafeBufferPointer(rebasing: all[start..<end])
            start = end + 1
            if bytes.last == UInt8(ascii: "\r") { bytes = UnsafeBufferPointer(rebasing: bytes.dropLast()) }
            if bytes.isEmpty { continue }
            if sawHeader, profile.parseFast(bytes) { continue }
            let line = Substring(String(decoding: bytes, as: UTF8.self))
            let fields = line.split(separator: " ", omittingEmptySubsequences: true)
            guard let record = fields.first else { continue }
            if !sawHeader {
                guard record == headerRecord, fields.count >= 2, let version = number(fields[1]) else {
                    throw notAProfile(path, firstLine: line)
                }
                profile.version = version
                if version > 1 {
                    profile.warnings.append("format version \(version) is newer than this tool (1); "
                        + "records it does not know are skipped")
                }
                sawHeader = true
                continue
            }
            if !profile.parseRecord(String(record), fields: fields, line: line) {
                badLines.append(lineNumber)
            }
        }
        if !sawHeader {
            throw ProfileError("\(path): empty file, not a swiftmalloc profile")
        }
        if !badLines.isEmpty {
            let shown = badLines.prefix(5).map(String.init).joined(separator: ", ")
            profile.warnings.append("skipped \(badLines.count) malformed line\(badLines.count == 1 ? "" : "s") "
                + "(line \(shown)\(badLines.count > 5 ? ", …" : ""))")
        }
        if !profile.complete {
            profile.warnings.append("the file has no 'end' line: it was cut short, figures may be incomplete")
        }
        profile.samples.sort { $0.elapsedNs < $1.elapsedNs }
        profile.modules.sort { $0.start < $1.start }
        profile.setOwnSiteApart()
        profile.capTimelineAtPeak()
        try profile.checkFigures()
        return profile
    }

    /// The largest figure a record may carry (about 7e16: bytes of a 64-bit process,
    /// nanoseconds of years of running); a record with a larger or negative one is
    /// malformed. Bounded figures keep the tool's sums and differences from overflowing.
    static let maxFigure: Int64 = 1 << 56

    /// Each site's figures (a site may have several `stat` lines, which add), and
    /// their sums over all sites, within range; else the file is not a profile this
    /// tool can trust (a damaged or crafted file), and nothing is shown.
    private func checkFigures() throws {
        var sums = [Int64](repeating: 0, count: SiteStats.zero.fields.count)
        var pinned: Int64 = 0
        for (id, s) in stats {
            for (k, v) in s.fields.enumerated() {
                let (sum, overflow) = sums[k].addingReportingOverflow(v)
                guard v >= 0, v <= Profile.maxFigure, !overflow, sum <= Profile.maxFigure << 4 else {
                    throw ProfileError("\(path): the figures of site \(id) are out of range: the file is damaged")
                }
                sums[k] = sum
            }
        }
        for (id, pages) in pins {
            pinned &+= pages
            guard pages >= 0, pages <= Profile.maxFigure >> 12, pinned <= Profile.maxFigure >> 8 else {
                throw ProfileError("\(path): the pinned pages of site \(id) are out of range: the file is damaged")
            }
        }
    }

    /// The site an `own` record names is not the program's: its counters go to
    /// `ownStats`, and it leaves the sites every view is made from.
    /// The heap's requested bytes, now and at its peak, and the timeline's count
    /// the library's own blocks as well: what the program requested is those less
    /// the own site's. When the own site's bytes were at a point of the timeline
    /// is not recorded, so each point loses the most the record says it held (its
    /// live bytes at the peak or at the report, whichever is larger), and no point
    /// is shown above the program's peak.
    private mutating func setOwnSiteApart() {
        guard let id = ownSite else { return }
        let own = stats.removeValue(forKey: id) ?? .zero
        ownStats = own
        siteFrames.removeValue(forKey: id)
        pins.removeValue(forKey: id)
        // Within range before any arithmetic: figures are checked after this.
        func bounded(_ v: Int64) -> Int64 { max(0, min(v, Profile.maxFigure)) }
        if var h = heap {
            h.requestedBytes = max(0, bounded(h.requestedBytes) - bounded(own.liveBytes))
            h.peakRequestedBytes = max(0, bounded(h.peakRequestedBytes) - bounded(own.peakLiveBytes))
            heap = h
        }
        let ownMost = max(bounded(own.liveBytes), bounded(own.peakLiveBytes))
        for i in samples.indices {
            samples[i].requestedBytes = max(0, bounded(samples[i].requestedBytes) - ownMost)
        }
    }

    /// No point of the timeline above the heap's peak: the two are read at
    /// different moments from counters that threads merge in batches, and the
    /// peak is the figure every report states.
    private mutating func capTimelineAtPeak() {
        guard let peak = heap?.peakRequestedBytes else { return }
        for i in samples.indices where samples[i].requestedBytes > peak { samples[i].requestedBytes = peak }
    }

    /// Applies one record; false when a known record is malformed.
    private mutating func parseRecord(_ record: String, fields: [Substring], line: Substring) -> Bool {
        // Numeric fields after the record name; nil if any is missing or bad.
        func numbers(_ count: Int) -> [Int64]? {
            guard fields.count >= count + 1 else { return nil }
            var out: [Int64] = []
            out.reserveCapacity(count)
            for f in fields[1...count] {
                guard let v = Profile.number(f), v >= 0, v <= Profile.maxFigure else { return nil }
                out.append(v)
            }
            return out
        }
        switch record {
        case "pid":
            guard let v = numbers(1) else { return false }
            pid = v[0]
        case "command":
            command = line.count > 8 ? String(line.dropFirst(8)) : ""
        case "mode":
            guard fields.count >= 2 else { return false }
            if fields[1] == "full" {
                mode = .full
            } else if fields[1] == "sampled" {
                guard fields.count >= 3, let mean = Profile.number(fields[2]), mean >= 1,
                      mean <= Profile.maxFigure else { return false }
                mode = .sampled(meanBytes: mean)
            } else {
                mode = .unknown(fields[1...].joined(separator: " "))
            }
        case "depth":
            guard let v = numbers(1) else { return false }
            depth = v[0]
        case "unwinder":
            guard fields.count >= 2 else { return false }
            unwinder = String(fields[1])
        case "elapsed_ns":
            guard let v = numbers(1) else { return false }
            elapsedNs = v[0]
        case "reason":
            guard fields.count >= 2 else { return false }
            reason = String(fields[1])
        case "module", "unloaded":
            guard fields.count >= 5, let start = Profile.address(fields[1]), let end = Profile.address(fields[2]),
                  let offset = Profile.address(fields[3]), start < end else { return false }
            // Every address in the mapping must have a file offset a file can have
            // (an off_t): offsets are computed as `address - start + offset`.
            let (last, overflow) = (end - 1 - start).addingReportingOverflow(offset)
            guard !overflow, last <= UInt64(Int64.max) else { return false }
            // The path is the rest of the line: it may contain spaces.
            var rest = line[...]
            for _ in 0..<4 {
                guard let space = rest.firstIndex(of: " ") else { return false }
                rest = rest[rest.index(after: space)...].drop(while: { $0 == " " })
            }
            var path = String(rest)
            if path.hasSuffix(" (deleted)") { path = String(path.dropLast(10)) }
            // A newline in a file name is written \012, as /proc/self/maps does.
            path = path.replacingOccurrences(of: "\\012", with: "\n")
            let record = ModuleRecord(start: start, end: end, fileOffset: offset, path: path)
            if fields[0] == "module" { modules.append(record) } else { unloadedModules.append(record) }
        case "site":
            guard fields.count >= 3, let id = Profile.address(fields[1]), let count = Profile.number(fields[2]),
                  count >= 0, count <= fields.count - 3 else { return false }
            var frames: [UInt64] = []
            frames.reserveCapacity(Int(count))
            for f in fields.dropFirst(3).prefix(Int(count)) {
                guard let a = Profile.address(f) else { return false }
                frames.append(a)
            }
            siteFrames[id] = frames
        case "stat":
            guard let all = numbers(9), let id = Profile.address(fields[1]) else { return false }
            let v = Array(all.dropFirst())
            // A site may in principle appear twice (a writer flushing in parts): add.
            stats[id, default: .zero] += SiteStats(
                allocCount: v[0], allocBytes: v[1], freeCount: v[2], liveCount: v[3], liveBytes: v[4],
                liveHeldBytes: v[5], peakLiveBytes: v[6], peakLiveCount: v[7])
        case "class":
            guard let v = numbers(9) else { return false }
            classes.append(SizeClassRecord(index: v[0], blockSize: v[1], pagesPerSpan: v[2], spans: v[3],
                                           liveBlocks: v[4], requestedLive: v[5], heldBytes: v[6],
                                           pagesReturned: v[7], peakSpans: v[8]))
        case "large", "huge":
            guard let v = numbers(3) else { return false }
            let totals = BlockTotals(liveCount: v[0], requestedLive: v[1], heldBytes: v[2])
            if record == "large" { large = totals } else { huge = totals }
        case "heap":
            guard let v = numbers(7) else { return false }
            heap = HeapRecord(heldBytes: v[0], requestedBytes: v[1], peakHeldBytes: v[2],
                              peakRequestedBytes: v[3], mappedBytes: v[4], dirtyBytes: v[5], returnedBytes: v[6])
        case "own":
            guard fields.count >= 2, let id = Profile.address(fields[1]), id != 0 else { return false }
            ownSite = id
        case "pin":
            guard fields.count >= 3, let id = Profile.address(fields[1]), let pages = Profile.number(fields[2]),
                  pages >= 0, pages <= Profile.maxFigure >> 12 else {
                return false
            }
            pins[id, default: 0] &+= pages
        case "sample":
            guard let v = numbers(3) else { return false }
            samples.append(TimelineSample(elapsedNs: v[0], requestedBytes: v[1], heldBytes: v[2]))
        case "end":
            complete = true
        default:
            break // a record this reader does not know
        }
        return true
    }

    /// Reads a `site` or `stat` line made only of the record name, spaces,
    /// and decimal or `0x` hexadecimal numbers that fit, and applies it as
    /// parseRecord would; false (nothing applied) for any other line, which is
    /// then read as text. Only lines whose every byte is a space, a digit or
    /// one of `abcdefxABCDEFX` after the name are taken, so that splitting the
    /// bytes on spaces gives the same fields as splitting the text.
    private mutating func parseFast(_ line: UnsafeBufferPointer<UInt8>) -> Bool {
        let isSite: Bool
        if line.starts(with: "site ".utf8) {
            isSite = true
        } else if line.starts(with: "stat ".utf8) {
            isSite = false
        } else {
            return false
        }
        var i = 5
        let n = line.count
        /// The next field as a number; nil at the end of the line or for a
        /// field the fast reader does not take.
        func next() -> UInt64?? {
            while i < n, line[i] == UInt8(ascii: " ") { i += 1 }
            if i == n { return .some(nil) }
            var value: UInt64 = 0
            if line[i] == UInt8(ascii: "0"), i + 1 < n, line[i + 1] | 0x20 == UInt8(ascii: "x") {
                i += 2
                var digits = 0
                while i < n, line[i] != UInt8(ascii: " ") {
                    let c = line[i]
                    let d: UInt8
                    switch c {
                    case UInt8(ascii: "0")...UInt8(ascii: "9"): d = c - UInt8(ascii: "0")
                    case UInt8(ascii: "a")...UInt8(ascii: "f"): d = c - UInt8(ascii: "a") + 10
                    case UInt8(ascii: "A")...UInt8(ascii: "F"): d = c - UInt8(ascii: "A") + 10
                    default: return nil
                    }
                    digits += 1
                    if digits > 16 { return nil }
                    value = value << 4 | UInt64(d)
                    i += 1
                }
                if digits == 0 { return nil }
            } else {
                var digits = 0
                while i < n, line[i] != UInt8(ascii: " ") {
                    let c = line[i]
                    guard c >= UInt8(ascii: "0"), c <= UInt8(ascii: "9") else { return nil }
                    digits += 1
                    if digits > 18 { return nil }
                    value = value * 10 + UInt64(c - UInt8(ascii: "0"))
                    i += 1
                }
            }
            return .some(value)
        }
        // The rest of the line: the fields are read before anything is applied.
        for c in line[5...] {
            switch c {
            case UInt8(ascii: " "), UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "a")...UInt8(ascii: "f"),
                 UInt8(ascii: "A")...UInt8(ascii: "F"), UInt8(ascii: "x"), UInt8(ascii: "X"):
                continue
            default:
                return false
            }
        }
        if isSite {
            guard case let id?? = next(), case let count?? = next(), count <= UInt64(n) else { return false }
            var frames: [UInt64] = []
            frames.reserveCapacity(Int(count))
            for _ in 0..<Int(count) {
                guard case let a?? = next() else { return false }
                frames.append(a)
            }
            siteFrames[id] = frames
        } else {
            var v: [Int64] = []
            v.reserveCapacity(9)
            for _ in 0..<9 {
                guard case let x?? = next(), x <= UInt64(Profile.maxFigure) else { return false }
                v.append(Int64(x))
            }
            // A site may in principle appear twice (a writer flushing in parts): add.
            stats[UInt64(v[0]), default: .zero] += SiteStats(
                allocCount: v[1], allocBytes: v[2], freeCount: v[3], liveCount: v[4], liveBytes: v[5],
                liveHeldBytes: v[6], peakLiveBytes: v[7], peakLiveCount: v[8])
        }
        return true
    }

    /// A number field: decimal, or hexadecimal written `0x…`. Sampled-mode
    /// estimates written with a fraction are rounded.
    static func number(_ s: Substring) -> Int64? {
        if s.hasPrefix("0x") || s.hasPrefix("0X") {
            guard let v = UInt64(s.dropFirst(2), radix: 16) else { return nil }
            return Int64(bitPattern: v)
        }
        if let v = Int64(s) { return v }
        if let d = Double(s), d.isFinite, abs(d) < 9.2e18 { return Int64(d.rounded()) }
        return nil
    }

    /// An address or id field: hexadecimal `0x…` or decimal, unsigned.
    static func address(_ s: Substring) -> UInt64? {
        if s.hasPrefix("0x") || s.hasPrefix("0X") { return UInt64(s.dropFirst(2), radix: 16) }
        return UInt64(s)
    }

    /// The module holding `address`, by binary search over the sorted modules.
    func module(containing address: UInt64) -> ModuleRecord? {
        var lo = 0, hi = modules.count
        while lo < hi {
            let mid = (lo + hi) / 2
            if modules[mid].end <= address { lo = mid + 1 } else { hi = mid }
        }
        if lo < modules.count, modules[lo].contains(address) { return modules[lo] }
        // Overlapping records (should not happen): fall back to a scan; then the
        // libraries unloaded before the report, the most recently unloaded first.
        return modules.first { $0.contains(address) } ?? unloadedModules.last { $0.contains(address) }
    }
}
