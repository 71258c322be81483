// The text report: live memory at exit by site (the leak report), the top
// sites by bytes and calls allocated, who held the heap at its peak,
// fragmentation per size class with the sites that pin pages, and an ASCII
// timeline of requested against held bytes.

import Foundation

struct TextReport {
    var analysis: AnalyzedProfile
    /// How many sites each ranking shows.
    var top: Int
    /// Frames shown per stack.
    var maxFrames = 24

    private var profile: Profile { analysis.profile }
    private var table: SiteTable { analysis.table }

    func render(warnings: [String] = []) -> String {
        var out: [String] = []
        header(&out, warnings: warnings)
        liveSection(&out)
        allocationSections(&out)
        peakSection(&out)
        fragmentationSection(&out)
        timelineSection(&out)
        // Strings from the file (the command line, paths, names) may hold
        // characters a terminal would act on: every line is shown escaped.
        return out.map { Format.visible($0) }.joined(separator: "\n") + "\n"
    }

    // MARK: Header

    private func header(_ out: inout [String], warnings: [String]) {
        out.append("SwiftMalloc heap profile: \(profile.path)")
        if let command = profile.command { out.append("  command   \(command)") }
        var process: [String] = []
        if let pid = profile.pid { process.append("pid \(pid)") }
        let when = profile.writtenAtExit ? "written at exit"
            : profile.reason == "signal" ? "written as a signal ended it"
            : profile.reason == "interval" ? "written while it ran (interval report)"
            : "written on request (\(profile.reason ?? "?"))"
        if let ns = profile.elapsedNs { process.append("\(when) after \(Format.duration(ns: ns))") } else { process.append(when) }
        out.append("  process   " + process.joined(separator: ", "))
        switch profile.mode {
        case .full:
            out.append("  mode      full: every allocation recorded, figures are exact")
        case .sampled(let mean):
            out.append("  mode      sampled: one sample per \(Format.bytes(mean)) allocated on average; "
                + "figures are estimates")
        case .unknown(let text):
            out.append("  mode      \(text)")
        }
        var stacks: [String] = []
        if let unwinder = profile.unwinder { stacks.append(unwinder) }
        if let depth = profile.depth { stacks.append("at most \(depth) frames") }
        if !stacks.isEmpty { out.append("  stacks    " + stacks.joined(separator: ", ")) }
        for w in profile.warnings + warnings { out.append("  warning:  \(w)") }

        let t = table.totals
        out.append("")
        out.append("Totals: \(Format.plural(t.allocCount, "allocation")) of \(Format.bytesWithExact(t.allocBytes)), "
            + "\(Format.plural(t.freeCount, "free"))")
        out.append("        \(Format.plural(t.liveCount, "block")) live \(profile.writtenAtExit ? "at exit" : "at report"): "
            + "\(Format.bytesWithExact(t.liveBytes)) requested, \(Format.bytesWithExact(t.liveHeldBytes)) held")
        if let own = profile.ownStats, own.allocCount > 0 {
            out.append("        not counted: the library's own allocations (loading libunwind, its caches, its threads), "
                + "\(Format.plural(own.allocCount, "allocation")) of \(Format.bytesWithExact(own.allocBytes)), "
                + "\(Format.bytes(own.liveBytes)) live")
        }
    }

    // MARK: (a) live at exit

    private func liveSection(_ out: inout [String]) {
        let live = table.live
        let t = table.totals
        out.append("")
        let title = profile.writtenAtExit ? "LIVE AT EXIT (leaks)" : "LIVE AT REPORT TIME"
        if live.isEmpty {
            out.append("\(title): nothing; every block was freed")
            return
        }
        out.append("\(title): \(Format.plural(Int64(live.count), "site")) \(live.count == 1 ? "holds" : "hold") "
            + "\(Format.bytesWithExact(t.liveBytes)) "
            + "requested in \(Format.plural(t.liveCount, "block"))")
        for site in live.prefix(top) {
            let s = site.stats
            out.append("  #\(site.id)  \(Format.bytes(s.liveBytes)) live: \(Format.exactBytes(s.liveBytes)) requested, "
                + "\(Format.exactBytes(s.liveHeldBytes)) held, \(Format.plural(s.liveCount, "block"))"
                + (s.allocCount > 0 ? " (of \(Format.count(s.allocCount)) allocated)" : ""))
            stackLines(site, &out)
        }
        if live.count > top {
            let rest = live.dropFirst(top)
            let bytes = rest.reduce(Int64(0)) { $0 + $1.stats.liveBytes }
            let count = rest.reduce(Int64(0)) { $0 + $1.stats.liveCount }
            out.append("  … \(Format.plural(Int64(rest.count), "more site")) \(rest.count == 1 ? "holds" : "hold") "
                + "\(Format.bytesWithExact(bytes)) in "
                + "\(Format.plural(count, "block")) (--top to show more)")
        }
    }

    /// The site's top frame, then the frames below it, indented.
    private func stackLines(_ site: Site, _ out: inout [String]) {
        guard !site.frames.isEmpty else {
            out.append("      (no stack recorded: allocated before profiling started, or not sampled)")
            return
        }
        for (i, frame) in site.frames.prefix(maxFrames).enumerated() {
            out.append((i == 0 ? "      " : "          ") + frameText(frame))
        }
        if site.frames.count > maxFrames {
            out.append("          … \(site.frames.count - maxFrames) more frames")
        }
        if site.truncated {
            // At the library's maximum depth no option records more.
            let more = (profile.depth ?? 0) < Int64(RecorderLimits.maxDepth) ? "; --depth records more" : ""
            out.append("          … (stack cut at \(Format.plural(Int64(profile.depth ?? 0), "frame"))\(more))")
        }
    }

    private func frameText(_ frame: Frame) -> String {
        if let location = frame.location { return "\(frame.name)  \(displayPath(location))" }
        if frame.function != nil, let module = frame.modulePath {
            return "\(frame.name)  (\(URL(fileURLWithPath: module).lastPathComponent))"
        }
        return frame.name
    }

    /// `leak_small  leaky.c:23  ← main`: the top frame and its caller.
    private func shortSite(_ site: Site) -> String {
        var text = "#\(site.id) "
        guard let i = site.summaryFrameIndex else { return text + site.title }
        let frame = site.frames[i]
        if i > 0 { text += "… " }
        text += frame.name
        if let file = frame.file {
            text += "  " + URL(fileURLWithPath: file).lastPathComponent + (frame.line.map { ":\($0)" } ?? "")
        }
        if i + 1 < site.frames.count { text += "  ← \(site.frames[i + 1].name)" }
        return text
    }

    // MARK: (b) top by bytes and count allocated

    private func allocationSections(_ out: inout [String]) {
        for (title, ranked) in [("TOP BY ALLOCATED BYTES", table.ranked { $0.stats.allocBytes }),
                                ("TOP BY ALLOCATION COUNT", table.ranked { $0.stats.allocCount })] {
            out.append("")
            guard !ranked.isEmpty else {
                out.append("\(title): no allocations recorded")
                continue
            }
            out.append("\(title)")
            let rows = ranked.prefix(top).map { site -> [String] in
                let s = site.stats
                return [Format.bytes(s.allocBytes), Format.count(s.allocBytes), Format.count(s.allocCount),
                        Format.count(s.freeCount), Format.count(s.liveCount), shortSite(site)]
            }
            out += Format.table(["allocated", "bytes", "allocs", "frees", "live", "site"], rows,
                                rightAligned: [true, true, true, true, true, false])
            if ranked.count > top { out.append("  … \(Format.plural(Int64(ranked.count - top), "more site"))") }
        }
    }

    // MARK: (c) at the heap's peak

    private func peakSection(_ out: inout [String]) {
        out.append("")
        let ranked = table.ranked { $0.stats.peakLiveBytes }
        var title = "AT THE HEAP'S PEAK"
        let peak = profile.heap?.peakRequestedBytes ?? ranked.reduce(Int64(0)) { $0 + $1.stats.peakLiveBytes }
        if let heap = profile.heap {
            title += ": \(Format.bytesWithExact(heap.peakRequestedBytes)) requested, "
                + "\(Format.bytesWithExact(heap.peakHeldBytes)) held at most"
        }
        guard !ranked.isEmpty else {
            out.append(title)
            out.append("  no site held memory at the peak")
            return
        }
        out.append(title)
        let rows = ranked.prefix(top).map { site -> [String] in
            [Format.bytes(site.stats.peakLiveBytes), Format.count(site.stats.peakLiveBytes),
             Format.percent(site.stats.peakLiveBytes, of: peak), Format.count(site.stats.peakLiveCount),
             shortSite(site)]
        }
        out += Format.table(["at peak", "bytes", "share", "blocks", "site"], rows,
                            rightAligned: [true, true, true, true, false])
        if ranked.count > top { out.append("  … \(Format.plural(Int64(ranked.count - top), "more site"))") }
    }

    // MARK: (d) fragmentation

    private func fragmentationSection(_ out: inout [String]) {
        out.append("")
        out.append("FRAGMENTATION: requested against held bytes")
        let classes = profile.classes.filter { $0.spans > 0 || $0.pagesReturned > 0 || $0.peakSpans > 0 }
        // Sampled: requested bytes are estimates from the sampled blocks, held bytes
        // exact; per class the estimate is far off where few blocks were sampled,
        // so a utilization is marked as estimated and shown as at most 100%.
        let sampled = profile.mode.isSampled
        func utilization(_ requested: Int64, of held: Int64) -> String {
            guard sampled, held > 0 else { return Format.percent(requested, of: held) }
            return "~" + Format.percent(min(requested, held), of: held)
        }
        let estimated = sampled ? "~" : ""
        if classes.isEmpty {
            out.append("  no size-class records")
        } else {
            let rows = classes.map { c -> [String] in
                [String(c.index), Format.count(c.blockSize), String(c.pagesPerSpan), Format.count(c.spans),
                 Format.count(c.peakSpans), Format.count(c.liveBlocks), estimated + Format.count(c.requestedLive),
                 Format.count(c.heldBytes), utilization(c.requestedLive, of: c.heldBytes),
                 Format.count(c.pagesReturned)]
            }
            out += Format.table(["class", "block", "pages/span", "spans", "peak spans", "live blocks", "requested",
                                 "held", "util", "pages returned"], rows,
                                rightAligned: Array(repeating: true, count: 10))
            if sampled {
                out.append("  sampled: requested bytes (~) are estimates from the sampled blocks, far off for a class "
                    + "with few of them (its utilization is shown as at most 100%); held bytes are exact")
            }
        }
        for (name, totals) in [("large", profile.large), ("huge", profile.huge)] {
            guard let totals, totals.liveCount != 0 || totals.heldBytes != 0 else { continue }
            out.append("  \(name): \(Format.plural(totals.liveCount, "block")), "
                + "\(Format.bytesWithExact(totals.requestedLive)) requested, "
                + "\(Format.bytesWithExact(totals.heldBytes)) held, "
                + "utilization \(utilization(totals.requestedLive, of: totals.heldBytes))")
        }
        if let heap = profile.heap {
            out.append("  heap: \(estimated)\(Format.bytesWithExact(heap.requestedBytes)) requested in "
                + "\(Format.bytesWithExact(heap.heldBytes)) held, utilization "
                + "\(utilization(heap.requestedBytes, of: heap.heldBytes))")
            out.append("        peak \(estimated)\(Format.bytesWithExact(heap.peakRequestedBytes)) requested, "
                + "\(Format.bytesWithExact(heap.peakHeldBytes)) held "
                + "(utilization at most \(utilization(heap.peakRequestedBytes, of: heap.peakHeldBytes)))")
            out.append("        \(Format.bytesWithExact(heap.mappedBytes)) mapped, "
                + "\(Format.bytesWithExact(heap.dirtyBytes)) dirty free, "
                + "\(Format.bytesWithExact(heap.returnedBytes)) returned to the system")
        }
        let pins = table.ranked { $0.pinnedPages }
        out.append("")
        if pins.isEmpty {
            out.append("PINNED PAGES: no site keeps otherwise empty pages")
        } else {
            let pages = pins.reduce(Int64(0)) { $0 + $1.pinnedPages }
            out.append("PINNED PAGES: \(Format.plural(pages, "page")) "
                + "(\(Format.bytes(pages * Profile.pageSize))) kept by long-lived blocks in nearly empty spans")
            let rows = pins.prefix(top).map { site -> [String] in
                [Format.count(site.pinnedPages), Format.bytes(site.pinnedPages * Profile.pageSize),
                 Format.count(site.stats.liveCount), shortSite(site)]
            }
            out += Format.table(["pages", "bytes", "live blocks", "site"], rows,
                                rightAligned: [true, true, true, false])
        }
    }

    // MARK: (e) timeline

    private func timelineSection(_ out: inout [String]) {
        out.append("")
        let samples = profile.samples
        guard samples.count >= 1 else {
            out.append("TIMELINE: no samples")
            return
        }
        let width = 64, height = 10
        // From the library's start to the report (or the last sample).
        let t0 = min(0, samples.first!.elapsedNs)
        let t1 = max(samples.last!.elapsedNs, profile.elapsedNs ?? 0, t0 + 1)
        // Per column, the largest value of the samples in its time slice; a
        // column with no sample repeats the one before.
        var held = [Int64](repeating: -1, count: width)
        var requested = [Int64](repeating: -1, count: width)
        for s in samples {
            let col = min(width - 1, Int(Double(s.elapsedNs - t0) / Double(t1 - t0) * Double(width)))
            held[col] = max(held[col], s.heldBytes)
            requested[col] = max(requested[col], s.requestedBytes)
        }
        for c in 1..<width where held[c] < 0 {
            held[c] = held[c - 1]
            requested[c] = requested[c - 1]
        }
        let maxValue = max(1, held.max() ?? 1, requested.max() ?? 1)
        out.append("TIMELINE: requested (#) against held (.) bytes, \(Format.plural(Int64(samples.count), "sample")) over "
            + "\(Format.duration(ns: t1 - t0)) (each column: the largest sample in its time slice)")
        let topLabel = Format.bytes(maxValue), middleLabel = Format.bytes(maxValue / 2)
        let labelWidth = max(topLabel.count, middleLabel.count, 3)
        for row in stride(from: height, through: 1, by: -1) {
            var line = ""
            for c in 0..<width {
                let h = held[c] < 0 ? 0 : Int((Double(held[c]) / Double(maxValue) * Double(height)).rounded())
                let r = requested[c] < 0 ? 0 : Int((Double(requested[c]) / Double(maxValue) * Double(height)).rounded())
                line.append(row <= r ? "#" : row <= h ? "." : " ")
            }
            let label = row == height ? topLabel : row == (height + 1) / 2 ? middleLabel : ""
            out.append("  " + Format.padLeft(label, labelWidth) + " |" + line)
        }
        out.append("  " + Format.padLeft("0", labelWidth) + " +" + String(repeating: "-", count: width))
        let start = Format.duration(ns: t0), end = Format.duration(ns: t1)
        out.append("  " + String(repeating: " ", count: labelWidth + 2) + start
            + String(repeating: " ", count: max(1, width - start.count - end.count)) + end)
    }
}
