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

enum FoldedStacks {
    static let noStack = "[no stack]"
    static let truncated = "[truncated]"

    /// A frame's name as a folded-stack field: no ';' and no line breaks.
    static func label(_ frame: Frame) -> String { label(name: frame.name) }

    static func label(name: String) -> String {
        var s = name
        if s.contains(";") { s = s.replacingOccurrences(of: ";", with: ":") }
        if s.contains("\n") { s = s.replacingOccurrences(of: "\n", with: " ") }
        return s
    }

    /// Each site with a non-zero value as (its labels' ids, outermost first,
    /// with the `[no stack]` or `[truncated]` root where it applies; its value).
    static func stacks(_ table: SiteTable, metric: Metric, store: FrameStore) -> [(labels: [Int32], value: Int64)] {
        let noStackID = store.labelID(noStack), truncatedID = store.labelID(truncated)
        var out: [(labels: [Int32], value: Int64)] = []
        for site in table.sites {
            let v = metric.value(site.stats)
            guard v > 0 else { continue }
            let ids = site.frames.ids
            var labels: [Int32] = []
            labels.reserveCapacity(ids.count + 1)
            if ids.isEmpty {
                labels.append(noStackID)
            } else if site.truncated {
                labels.append(truncatedID)
            }
            for id in ids.reversed() { labels.append(store.labelIDs[Int(id)]) }
            out.append((labels, v))
        }
        return out
    }

    /// One line per distinct stack, in the order of the lines' text. Stacks are
    /// added up on their labels' ids; only the distinct ones are joined into text.
    static func render(_ table: SiteTable, metric: Metric, store: FrameStore) -> String {
        var index: [[Int32]: Int] = [:]
        var merged: [(labels: [Int32], value: Int64)] = []
        for stack in stacks(table, metric: metric, store: store) {
            if let i = index[stack.labels] {
                merged[i].value += stack.value
            } else {
                index[stack.labels] = merged.count
                merged.append(stack)
            }
        }
        var lines = merged.map { stack -> (text: String, value: Int64) in
            var text = ""
            for (i, id) in stack.labels.enumerated() {
                if i > 0 { text += ";" }
                text += store.labelStrings[Int(id)]
            }
            return (text, stack.value)
        }
        lines.sort { $0.text < $1.text }
        var out = ""
        for line in lines {
            out += line.text
            out += " "
            out += String(line.value)
            out += "\n"
        }
        return out
    }
}
