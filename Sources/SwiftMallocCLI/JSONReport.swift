// The JSON report: the whole analysis as one document. Every site with its
// symbolized frames and all its counters, the rankings of the text report as
// lists of site ids, size classes, heap totals and the timeline. Keys are
// snake_case; unknown values are null, never left out.

import Foundation

enum JSONReport {
    /// `top`: length of the ranking lists; nil for all sites.
    static func render(_ analysis: AnalyzedProfile, top: Int?, warnings: [String]) throws -> String {
        let p = analysis.profile
        let table = analysis.table
        func ids(_ sites: [Site]) -> [Int] { sites.prefix(top ?? sites.count).map(\.id) }

        var source: [String: Any] = [
            "path": p.path,
            "format_version": p.version,
            "pid": p.pid.map { $0 as Any } ?? NSNull(),
            "command": p.command ?? NSNull(),
            "depth": p.depth.map { $0 as Any } ?? NSNull(),
            "unwinder": p.unwinder ?? NSNull(),
            "elapsed_ns": p.elapsedNs.map { $0 as Any } ?? NSNull(),
            "reason": p.reason ?? NSNull(),
            "complete": p.complete,
            "warnings": p.warnings + warnings,
        ]
        switch p.mode {
        case .full:
            source["mode"] = "full"
            source["sample_mean_bytes"] = NSNull()
        case .sampled(let mean):
            source["mode"] = "sampled"
            source["sample_mean_bytes"] = mean
        case .unknown(let text):
            source["mode"] = text
            source["sample_mean_bytes"] = NSNull()
        }

        let document: [String: Any] = [
            "format": "swiftmalloc-report",
            "version": 1,
            "source": source,
            "totals": statsObject(table.totals),
            "sites": table.sites.map(siteObject),
            "live_sites": ids(table.live),
            "top_alloc_bytes": ids(table.ranked { $0.stats.allocBytes }),
            "top_alloc_count": ids(table.ranked { $0.stats.allocCount }),
            "top_peak_bytes": ids(table.ranked { $0.stats.peakLiveBytes }),
            "pinned_sites": ids(table.ranked { $0.pinnedPages }),
            "classes": p.classes.map { c -> [String: Any] in
                ["index": c.index, "block_size": c.blockSize, "pages_per_span": c.pagesPerSpan, "spans": c.spans,
                 "live_blocks": c.liveBlocks, "requested_live": c.requestedLive, "held_bytes": c.heldBytes,
                 "pages_returned": c.pagesReturned, "peak_spans": c.peakSpans,
                 "utilization": c.heldBytes > 0 ? Double(c.requestedLive) / Double(c.heldBytes) as Any : NSNull()]
            },
            "large": blocksObject(p.large),
            "huge": blocksObject(p.huge),
            "heap": p.heap.map { h -> Any in
                ["held_bytes": h.heldBytes, "requested_bytes": h.requestedBytes, "peak_held_bytes": h.peakHeldBytes,
                 "peak_requested_bytes": h.peakRequestedBytes, "mapped_bytes": h.mappedBytes,
                 "dirty_bytes": h.dirtyBytes, "returned_bytes": h.returnedBytes,
                 "utilization": h.heldBytes > 0 ? Double(h.requestedBytes) / Double(h.heldBytes) as Any : NSNull()]
            } ?? NSNull(),
            "timeline": p.samples.map { s -> [String: Any] in
                ["elapsed_ns": s.elapsedNs, "requested_bytes": s.requestedBytes, "held_bytes": s.heldBytes]
            },
        ]
        return try serialize(document)
    }

    static func serialize(_ document: Any) throws -> String {
        let data = try JSONSerialization.data(withJSONObject: document,
                                              options: [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes])
        return String(decoding: data, as: UTF8.self) + "\n"
    }

    static func statsObject(_ s: SiteStats) -> [String: Any] {
        ["alloc_count": s.allocCount, "alloc_bytes": s.allocBytes, "free_count": s.freeCount,
         "live_count": s.liveCount, "live_bytes": s.liveBytes, "live_held_bytes": s.liveHeldBytes,
         "peak_live_bytes": s.peakLiveBytes, "peak_live_count": s.peakLiveCount]
    }

    static func frameObject(_ f: Frame) -> [String: Any] {
        ["function": f.name,
         "resolved": f.function != nil,
         "file": f.file ?? NSNull(),
         "line": f.line.map { $0 as Any } ?? NSNull(),
         "module": f.modulePath ?? NSNull(),
         "address": "0x" + String(f.address, radix: 16),
         "module_offset": f.moduleOffset.map { "0x" + String($0, radix: 16) as Any } ?? NSNull()]
    }

    static func siteObject(_ site: Site) -> [String: Any] {
        var o = statsObject(site.stats)
        o["id"] = site.id
        o["raw_site_ids"] = site.rawIDs
        o["frames"] = site.frames.map(frameObject)
        o["pinned_pages"] = site.pinnedPages
        return o
    }

    private static func blocksObject(_ b: BlockTotals?) -> Any {
        guard let b else { return NSNull() }
        return ["live_count": b.liveCount, "requested_live": b.requestedLive, "held_bytes": b.heldBytes]
    }
}
