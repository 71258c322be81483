// The JSON report: the whole analysis as one document. Every site with its
// symbolized frames and all its counters, the rankings of the text report as
// lists of site ids, size classes, heap totals and the timeline. Keys are
// snake_case; unknown values are null, never left out.
//
//   format, version        "swiftmalloc-report", 1
//   source                 path, pid, command, mode ("full" | "sampled"),
//                          sample_mean_bytes, depth, unwinder, elapsed_ns, reason,
//                          complete, format_version, warnings
//   totals                 the counters summed over all sites
//   sites                  [{id, raw_site_ids, frames: [{function, resolved, file,
//                          line, module, address, module_offset}], alloc_count,
//                          alloc_bytes, free_count, live_count, live_bytes,
//                          live_held_bytes, peak_live_bytes, peak_live_count,
//                          pinned_pages, truncated}], most live bytes first;
//                          frames innermost first; truncated: the stack was cut
//                          at the maximum depth
//   live_sites, top_alloc_bytes, top_alloc_count, top_peak_bytes, pinned_sites
//                          site ids in ranking order
//   classes, large, huge, heap, timeline   as in the profile file

enum JSONReport {
    /// `top`: length of the ranking lists; nil for all sites.
    /// The document, its sites made as it is written (JSONValue.write(to:)).
    static func render(_ analysis: AnalyzedProfile, top: Int?, warnings: [String], store: FrameStore) -> JSONValue {
        let p = analysis.profile
        let table = analysis.table
        func ids(_ sites: SiteList) -> JSONValue { .array(sites.prefix(top ?? sites.count).map { JSONValue($0.id) }) }

        var mode: String
        var mean: JSONValue = .null
        switch p.mode {
        case .full: mode = "full"
        case .sampled(let m):
            mode = "sampled"
            mean = JSONValue(m)
        case .unknown(let text): mode = text
        }
        let source: JSONValue = .object([
            ("path", .string(p.path)),
            ("format_version", JSONValue(p.version)),
            ("pid", JSONValue(p.pid)),
            ("command", JSONValue(p.command)),
            ("mode", .string(mode)),
            ("sample_mean_bytes", mean),
            ("depth", JSONValue(p.depth)),
            ("unwinder", JSONValue(p.unwinder)),
            ("elapsed_ns", JSONValue(p.elapsedNs)),
            ("reason", JSONValue(p.reason)),
            ("complete", .bool(p.complete)),
            ("warnings", .array((p.warnings + warnings).map(JSONValue.string))),
        ])

        let document: JSONValue = .object([
            ("format", .string("swiftmalloc-report")),
            ("version", .int(1)),
            ("source", source),
            ("totals", stats(table.totals)),
            ("profiler_own", p.ownStats.map(stats) ?? .null),
            ("live_sites", ids(table.live)),
            ("top_alloc_bytes", ids(table.ranked { $0.stats.allocBytes })),
            ("top_alloc_count", ids(table.ranked { $0.stats.allocCount })),
            ("top_peak_bytes", ids(table.ranked { $0.stats.peakLiveBytes })),
            ("pinned_sites", ids(table.ranked { $0.pinnedPages })),
            ("classes", .array(p.classes.map { c in
                .object([
                    ("index", JSONValue(c.index)), ("block_size", JSONValue(c.blockSize)),
                    ("pages_per_span", JSONValue(c.pagesPerSpan)), ("spans", JSONValue(c.spans)),
                    ("peak_spans", JSONValue(c.peakSpans)), ("live_blocks", JSONValue(c.liveBlocks)),
                    ("requested_live", JSONValue(c.requestedLive)), ("held_bytes", JSONValue(c.heldBytes)),
                    ("utilization", ratio(c.requestedLive, c.heldBytes)),
                    ("pages_returned", JSONValue(c.pagesReturned)),
                ])
            })),
            ("large", blocks(p.large)),
            ("huge", blocks(p.huge)),
            ("heap", p.heap.map { h in
                .object([
                    ("held_bytes", JSONValue(h.heldBytes)), ("requested_bytes", JSONValue(h.requestedBytes)),
                    ("utilization", ratio(h.requestedBytes, h.heldBytes)),
                    ("peak_held_bytes", JSONValue(h.peakHeldBytes)),
                    ("peak_requested_bytes", JSONValue(h.peakRequestedBytes)),
                    ("mapped_bytes", JSONValue(h.mappedBytes)), ("dirty_bytes", JSONValue(h.dirtyBytes)),
                    ("returned_bytes", JSONValue(h.returnedBytes)),
                ])
            } ?? .null),
            ("timeline", .array(p.samples.map { s in
                .object([("elapsed_ns", JSONValue(s.elapsedNs)), ("requested_bytes", JSONValue(s.requestedBytes)),
                         ("held_bytes", JSONValue(s.heldBytes))])
            })),
            ("sites", .lazyArray(count: table.sites.count, containers: true) { site(table.sites[$0], store: store) }),
        ])
        return document
    }

    static func statsMembers(_ s: SiteStats) -> [(String, JSONValue)] {
        [("alloc_count", JSONValue(s.allocCount)), ("alloc_bytes", JSONValue(s.allocBytes)),
         ("free_count", JSONValue(s.freeCount)), ("live_count", JSONValue(s.liveCount)),
         ("live_bytes", JSONValue(s.liveBytes)), ("live_held_bytes", JSONValue(s.liveHeldBytes)),
         ("peak_live_bytes", JSONValue(s.peakLiveBytes)), ("peak_live_count", JSONValue(s.peakLiveCount))]
    }

    static func stats(_ s: SiteStats) -> JSONValue { .object(statsMembers(s)) }

    static func frame(_ f: Frame) -> JSONValue {
        .object([
            ("function", .string(f.name)),
            ("file", JSONValue(f.file)),
            ("line", JSONValue(f.line)),
            ("resolved", .bool(f.function != nil)),
            ("module", JSONValue(f.modulePath)),
            ("address", .string("0x" + String(f.address, radix: 16))),
            ("module_offset", f.moduleOffset.map { .string("0x" + String($0, radix: 16)) } ?? .null),
        ])
    }

    static func site(_ site: Site, store: FrameStore) -> JSONValue {
        var members: [(String, JSONValue)] = [
            ("id", JSONValue(site.id)),
            ("raw_site_ids", .array(site.rawIDs.map { .int(Int64(bitPattern: $0)) })),
        ]
        members += statsMembers(site.stats)
        members.append(("pinned_pages", JSONValue(site.pinnedPages)))
        members.append(("truncated", .bool(site.truncated)))
        members.append(("frames", frames(site.frames, store: store)))
        return .object(members)
    }

    /// Frames as a JSON array; each distinct frame is serialized once (FrameStore.json).
    static func frames(_ frames: FrameList, store: FrameStore) -> JSONValue {
        .array(frames.ids.map { .raw(store.json($0), container: true) })
    }

    private static func ratio(_ a: Int64, _ b: Int64) -> JSONValue {
        b > 0 ? .double(Double(a) / Double(b)) : .null
    }

    private static func blocks(_ b: BlockTotals?) -> JSONValue {
        guard let b else { return .null }
        return .object([("live_count", JSONValue(b.liveCount)), ("requested_live", JSONValue(b.requestedLive)),
                        ("held_bytes", JSONValue(b.heldBytes))])
    }
}
