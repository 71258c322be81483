// Call sites as the reports show them: the recorder's raw sites (one per
// distinct list of return addresses) merged by their symbolized stack, so
// that two raw sites at the same function and line in every frame are one.

import Foundation

/// A call site after symbolization and merging.
struct Site {
    /// 1-based, in the table's order (most live bytes first).
    var id: Int
    /// The recorder's site ids merged into this one.
    var rawIDs: [UInt64]
    /// Innermost first (the caller of malloc first); the allocator's own frames removed.
    var frames: [Frame]
    var stats: SiteStats
    /// Pages of small spans that this site's long-lived blocks keep (`pin` records).
    var pinnedPages: Int64
    /// What the site was merged on: one key per frame.
    var key: [String]
    /// The recorded stack had the profile's maximum depth: outer frames are missing.
    var truncated = false

    /// The innermost frame as `function (file:line)`, or a placeholder for allocations with no stack.
    var title: String {
        guard let top = frames.first else { return "(no stack recorded)" }
        if let location = top.location { return "\(top.name)  \(displayPath(location))" }
        return top.name
    }

    /// The frame that names the site in one-line summaries: the innermost one
    /// that is not a language runtime's allocation wrapper (swift_allocObject,
    /// operator new, strdup, …), so that such sites are told apart by their
    /// callers. The full stack is always shown as recorded.
    var summaryFrameIndex: Int? {
        guard !frames.isEmpty else { return nil }
        return frames.firstIndex { !Site.isAllocationWrapper($0.name) } ?? 0
    }

    static func isAllocationWrapper(_ name: String) -> Bool {
        let prefixes = ["swift_slowAlloc", "swift_allocObject", "swift_allocBox", "swift_allocEmptyBox",
                        "operator new", "__gnu_cxx::new_allocator", "std::__new_allocator", "std::allocator",
                        "strdup", "__strdup", "strndup", "__strndup", "_ContiguousArrayBuffer"]
        if prefixes.contains(where: name.hasPrefix) { return true }
        return name.contains("Array._allocateUninitialized") || name.contains("_allocateBufferUninitialized")
    }
}

/// All sites of one profile, merged; most live bytes first.
struct SiteTable {
    var sites: [Site]
    var totals: SiteStats

    init(profile: Profile, frames: [UInt64: [Frame]]) {
        var ids = Set(profile.stats.keys)
        ids.formUnion(profile.siteFrames.keys)
        ids.formUnion(profile.pins.keys)

        var merged: [[String]: Site] = [:]
        for raw in ids.sorted() {
            let stack = (frames[raw] ?? []).filter { !$0.isAllocatorFrame }
            let truncated = profile.depth.map { d in d > 0 && Int64(profile.siteFrames[raw]?.count ?? 0) >= d } ?? false
            // A cut stack is not the same site as a complete one with the same frames.
            let key = stack.map(\.key) + (truncated ? ["\u{1}truncated"] : [])
            let stats = profile.stats[raw] ?? .zero
            let pinned = profile.pins[raw] ?? 0
            if var site = merged[key] {
                site.rawIDs.append(raw)
                site.stats += stats
                site.pinnedPages += pinned
                merged[key] = site
            } else {
                merged[key] = Site(id: 0, rawIDs: [raw], frames: stack, stats: stats, pinnedPages: pinned, key: key,
                                   truncated: truncated)
            }
        }
        var sites = Array(merged.values)
        sites.sort { a, b in
            if a.stats.liveBytes != b.stats.liveBytes { return a.stats.liveBytes > b.stats.liveBytes }
            if a.stats.allocBytes != b.stats.allocBytes { return a.stats.allocBytes > b.stats.allocBytes }
            if a.stats.allocCount != b.stats.allocCount { return a.stats.allocCount > b.stats.allocCount }
            return a.key.lexicographicallyPrecedes(b.key)
        }
        for i in sites.indices { sites[i].id = i + 1 }
        self.sites = sites
        totals = sites.reduce(.zero) { $0 + $1.stats }
    }

    /// Sites holding memory at report time, most live bytes first.
    var live: [Site] { sites.filter { $0.stats.liveBytes > 0 || $0.stats.liveCount > 0 } }

    /// Sites ordered by a value, largest first, zero values left out.
    func ranked(by value: (Site) -> Int64) -> [Site] {
        sites.filter { value($0) > 0 }.sorted { a, b in
            let va = value(a), vb = value(b)
            return va != vb ? va > vb : a.id < b.id
        }
    }
}

/// A profile read, symbolized and merged: what every report format renders.
struct AnalyzedProfile {
    var profile: Profile
    var table: SiteTable

    static func load(path: String, symbolizer: Symbolizer) throws -> AnalyzedProfile {
        let profile = try Profile.load(path: path)
        let frames = symbolizer.frames(for: profile)
        return AnalyzedProfile(profile: profile, table: SiteTable(profile: profile, frames: frames))
    }
}

/// Paths under the current directory are shown relative to it.
func displayPath(_ path: String) -> String {
    let cwd = FileManager.default.currentDirectoryPath
    let prefix = cwd.hasSuffix("/") ? cwd : cwd + "/"
    if path.hasPrefix(prefix) { return String(path.dropFirst(prefix.count)) }
    return path
}
