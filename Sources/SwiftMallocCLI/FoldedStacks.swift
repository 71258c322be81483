// Folded stacks ("collapsed" format) for flame graph tools: one line per
// stack, outermost frame first, frames joined by ';', a space, then the value.

import ArgumentParser
import Foundation

/// The value a flame graph or folded-stack output measures.
enum Metric: String, CaseIterable, ExpressibleByArgument {
    case liveBytes = "live-bytes"
    case allocBytes = "alloc-bytes"
    case allocCount = "alloc-count"
    case peakBytes = "peak-bytes"

    func value(_ s: SiteStats) -> Int64 {
        switch self {
        case .liveBytes: return s.liveBytes
        case .allocBytes: return s.allocBytes
        case .allocCount: return s.allocCount
        case .peakBytes: return s.peakLiveBytes
        }
    }

    var isBytes: Bool { self != .allocCount }

    var title: String {
        switch self {
        case .liveBytes: return "live bytes at exit"
        case .allocBytes: return "bytes allocated"
        case .allocCount: return "allocations"
        case .peakBytes: return "live bytes at the heap's peak"
        }
    }

    func format(_ v: Int64) -> String {
        isBytes ? Format.bytesWithExact(v) : Format.plural(v, "allocation")
    }
}

/// One stack of the folded output.
struct FoldedStack {
    /// Outermost first.
    var frames: [Frame]
    var value: Int64
    /// The recorded stack was cut at the maximum depth: its outermost frames
    /// are missing, so it is shown under a `[truncated]` root.
    var truncated: Bool

    /// Frame names, outermost first, with the `[truncated]` root where it applies.
    var labels: [String] {
        if frames.isEmpty { return [FoldedStacks.noStack] }
        return (truncated ? [FoldedStacks.truncated] : []) + frames.map(FoldedStacks.label)
    }
}

enum FoldedStacks {
    static let noStack = "[no stack]"
    static let truncated = "[truncated]"

    /// Sites as root-first stacks with their values; zero values are left out.
    static func stacks(_ table: SiteTable, metric: Metric) -> [FoldedStack] {
        table.sites.compactMap { site in
            let v = metric.value(site.stats)
            return v > 0 ? FoldedStack(frames: site.frames.reversed(), value: v, truncated: site.truncated) : nil
        }
    }

    /// A frame's name as a folded-stack field: no ';' and no line breaks.
    static func label(_ frame: Frame) -> String {
        var s = frame.name
        if s.contains(";") { s = s.replacingOccurrences(of: ";", with: ":") }
        if s.contains("\n") { s = s.replacingOccurrences(of: "\n", with: " ") }
        return s
    }

    static func render(_ table: SiteTable, metric: Metric) -> String {
        var lines: [String: Int64] = [:]
        for stack in stacks(table, metric: metric) {
            let key = stack.labels.joined(separator: ";")
            lines[key, default: 0] += stack.value
        }
        return lines.keys.sorted().map { "\($0) \(lines[$0]!)\n" }.joined()
    }
}
