// `swiftmalloc diff A B`: what grew between two profiles, per symbolized site.
// Sites are matched on their symbolized stacks, so two runs of the same
// program compare even though their modules were loaded at other addresses.

import ArgumentParser
import Foundation

struct SiteDiff {
    var frames: FrameList
    var key: [Int32]
    var a: SiteStats
    var b: SiteStats
    var inA: Bool
    var inB: Bool
    var delta: SiteStats { b - a }
}

struct ProfileDiff {
    var a: AnalyzedProfile
    var b: AnalyzedProfile
    /// Every site of either profile, most live-byte growth first.
    var sites: [SiteDiff]

    /// `store`: the frames of both profiles (one symbolizer read them), whose
    /// key ids the sites are matched on.
    init(a: AnalyzedProfile, b: AnalyzedProfile, store: FrameStore) {
        self.a = a
        self.b = b
        var index: [[Int32]: Int] = [:]
        var sites: [SiteDiff] = []
        for site in a.table.sites {
            index[site.key] = sites.count
            sites.append(SiteDiff(frames: site.frames, key: site.key, a: site.stats, b: .zero, inA: true, inB: false))
        }
        for site in b.table.sites {
            if let i = index[site.key] {
                sites[i].b = site.stats
                sites[i].inB = true
                sites[i].frames = site.frames
            } else {
                index[site.key] = sites.count
                sites.append(SiteDiff(frames: site.frames, key: site.key, a: .zero, b: site.stats, inA: false, inB: true))
            }
        }
        let ranks = store.keyRanks()
        self.sites = sites.sorted { x, y in
            let dx = x.delta, dy = y.delta
            if dx.liveBytes != dy.liveBytes { return dx.liveBytes > dy.liveBytes }
            if dx.allocBytes != dy.allocBytes { return dx.allocBytes > dy.allocBytes }
            return SiteTable.keyPrecedes(x.key, y.key, ranks: ranks)
        }
    }

    var grew: [SiteDiff] { sites.filter { $0.delta.liveBytes > 0 } }
    var shrank: [SiteDiff] { sites.filter { $0.delta.liveBytes < 0 }.reversed() }
    var allocatedMore: [SiteDiff] {
        sites.filter { $0.delta.liveBytes == 0 && $0.delta.allocBytes > 0 }
            .sorted { $0.delta.allocBytes > $1.delta.allocBytes }
    }
}

enum DiffFormat: String, CaseIterable, ExpressibleByArgument {
    case text, json
}

struct DiffCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "diff",
        abstract: "Show what grew between two profile files.",
        discussion: "Per symbolized site: the change in live bytes and blocks and in bytes allocated, "
            + "largest growth first, then the sites that shrank, then totals."
    )

    @Argument(help: "The earlier profile (the baseline).")
    var a: String

    @Argument(help: "The later profile.")
    var b: String

    @Option(help: "Sites shown per list (text only).")
    var top: Int = 10

    @Option(help: "Output format: text or json.")
    var format: DiffFormat = .text

    @Option(name: [.short, .long], help: "Write the output to this file instead of standard output.")
    var output: String?

    @Flag(help: "Do not run addr2line; match and show frames as module+offset.")
    var noSymbolize = false

    func validate() throws {
        if top < 1 { throw ValidationError("--top must be at least 1") }
    }

    func run() throws {
        let symbolizer = Symbolizer()
        symbolizer.enabled = !noSymbolize
        let pa = try AnalyzedProfile.load(path: a, symbolizer: symbolizer)
        let pb = try AnalyzedProfile.load(path: b, symbolizer: symbolizer)
        let diff = ProfileDiff(a: pa, b: pb, store: symbolizer.store)
        var warnings = pa.profile.warnings.map { "\(a): \($0)" } + pb.profile.warnings.map { "\(b): \($0)" }
            + symbolizer.warnings
        if pa.profile.mode.isSampled != pb.profile.mode.isSampled {
            let (full, sampled) = pa.profile.mode.isSampled ? ("B", "A") : ("A", "B")
            warnings.append("\(full) records every allocation and \(sampled) is sampled: "
                + "the diff compares exact figures with estimates")
        }
        for w in warnings { printError("warning: \(w)") }
        switch format {
        case .text: try emit(renderText(diff), to: output)
        case .json: try emit(to: output) { try renderJSON(diff, store: symbolizer.store).write(to: $0) }
        }
    }

    private func renderText(_ diff: ProfileDiff) -> String {
        var out: [String] = []
        let ta = diff.a.table.totals, tb = diff.b.table.totals
        out.append("SwiftMalloc profile diff")
        for (label, p) in [("A", diff.a.profile), ("B", diff.b.profile)] {
            var line = "  \(label)  \(p.path)"
            if let c = p.command { line += "  (\(c)" + (p.pid.map { ", pid \($0)" } ?? "") + ")" }
            out.append(line)
        }
        out.append("")
        out.append("  live        \(Format.bytesWithExact(ta.liveBytes)) → \(Format.bytesWithExact(tb.liveBytes))  "
            + "\(Format.signedBytes(tb.liveBytes - ta.liveBytes)) (\(Format.signedCount(tb.liveBytes - ta.liveBytes)) B), "
            + "\(Format.signedCount(tb.liveCount - ta.liveCount)) blocks")
        out.append("  allocated   \(Format.bytesWithExact(ta.allocBytes)) → \(Format.bytesWithExact(tb.allocBytes))  "
            + "\(Format.signedBytes(tb.allocBytes - ta.allocBytes)), "
            + "\(Format.signedCount(tb.allocCount - ta.allocCount)) allocations")
        if let ha = diff.a.profile.heap, let hb = diff.b.profile.heap {
            out.append("  heap held   \(Format.bytesWithExact(ha.heldBytes)) → \(Format.bytesWithExact(hb.heldBytes))  "
                + "\(Format.signedBytes(hb.heldBytes - ha.heldBytes)); peak "
                + "\(Format.bytes(ha.peakRequestedBytes)) → \(Format.bytes(hb.peakRequestedBytes)) requested")
        }

        func section(_ title: String, _ list: [SiteDiff], allocation: Bool = false) {
            out.append("")
            guard !list.isEmpty else {
                out.append("\(title): none")
                return
            }
            let sum = list.reduce(Int64(0)) { $0 + (allocation ? $1.delta.allocBytes : $1.delta.liveBytes) }
            out.append("\(title): \(Format.plural(Int64(list.count), "site")), \(Format.signedBytes(sum))")
            for d in list.prefix(top) {
                let delta = d.delta
                var line = "  "
                if allocation {
                    line += "\(Format.signedBytes(delta.allocBytes)) allocated (\(Format.signedCount(delta.allocBytes)) B, "
                        + "\(Format.signedCount(delta.allocCount)) allocations)"
                } else {
                    line += "\(Format.signedBytes(delta.liveBytes)) live (\(Format.signedCount(delta.liveBytes)) B, "
                        + "\(Format.signedCount(delta.liveCount)) block\(delta.liveCount.magnitude == 1 ? "" : "s"): "
                        + "\(Format.count(d.a.liveBytes)) → "
                        + "\(Format.count(d.b.liveBytes)) B); allocated \(Format.signedCount(delta.allocBytes)) B"
                }
                if !d.inA { line += "  [new]" }
                if !d.inB { line += "  [gone]" }
                out.append(line)
                if d.frames.isEmpty {
                    out.append("      (no stack recorded)")
                }
                for (i, f) in d.frames.prefix(12).enumerated() {
                    let text = f.location.map { "\(f.name)  \(displayPath($0))" } ?? f.name
                    out.append((i == 0 ? "      " : "          ") + text)
                }
                if d.frames.count > 12 { out.append("          … \(d.frames.count - 12) more frames") }
            }
            if list.count > top { out.append("  … \(Format.plural(Int64(list.count - top), "more site"))") }
        }
        section("GREW (live bytes)", diff.grew)
        section("SHRANK (live bytes)", diff.shrank)
        section("ALLOCATED MORE (live unchanged)", diff.allocatedMore, allocation: true)
        // Strings from the files may hold characters a terminal would act on.
        return out.map { Format.visible($0) }.joined(separator: "\n") + "\n"
    }

    private func renderJSON(_ diff: ProfileDiff, store: FrameStore) -> JSONValue {
        func side(_ p: AnalyzedProfile) -> JSONValue {
            .object([("path", .string(p.profile.path)), ("command", JSONValue(p.profile.command)),
                     ("pid", JSONValue(p.profile.pid)), ("totals", JSONReport.stats(p.table.totals))])
        }
        let document: JSONValue = .object([
            ("format", .string("swiftmalloc-diff")),
            ("version", .int(1)),
            ("a", side(diff.a)),
            ("b", side(diff.b)),
            ("delta", JSONReport.stats(diff.b.table.totals - diff.a.table.totals)),
            ("sites", .lazyArray(count: diff.sites.count, containers: true) { i in
                let d = diff.sites[i]
                return .object([
                    ("status", .string(d.inA && d.inB ? "both" : d.inA ? "gone" : "new")),
                    ("delta", JSONReport.stats(d.delta)),
                    ("a", JSONReport.stats(d.a)),
                    ("b", JSONReport.stats(d.b)),
                    ("frames", JSONReport.frames(d.frames, store: store)),
                ])
            }),
        ])
        return document
    }
}
