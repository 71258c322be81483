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
    var frames: FrameList
    var stats: SiteStats
    /// Pages of small spans that this site's long-lived blocks keep (`pin` records).
    var pinnedPages: Int64
    /// What the site was merged on: one key per frame (ids of FrameStore's
    /// keys), and a last one for a cut stack.
    var key: [Int32]
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

    init(profile: Profile, frames: [UInt64: [Int32]], store: FrameStore) {
        var ids = Array(profile.stats.keys)
        ids.append(contentsOf: profile.siteFrames.keys)
        ids.append(contentsOf: profile.pins.keys)
        ids.sort()
        var distinct = 0
        for id in ids where distinct == 0 || ids[distinct - 1] != id {
            ids[distinct] = id
            distinct += 1
        }
        ids.removeLast(ids.count - distinct)

        // Sites are merged on their keys as arrays of small ids: hashing and
        // comparing those costs a few words per frame, where keys made of the
        // frames' strings cost a string per frame of every site.
        var index: [[Int32]: Int] = [:]
        var sites: [Site] = []
        index.reserveCapacity(ids.count)
        sites.reserveCapacity(ids.count)
        let truncatedKey = store.truncatedKeyID
        for raw in ids {
            var stack = frames[raw] ?? []
            if stack.contains(where: { store.isAllocator[Int($0)] }) {
                stack.removeAll { store.isAllocator[Int($0)] }
            }
            let truncated = profile.depth.map { d in d > 0 && Int64(profile.siteFrames[raw]?.count ?? 0) >= d } ?? false
            // A cut stack is not the same site as a complete one with the same frames.
            var key = stack.map { store.keyIDs[Int($0)] }
            if truncated { key.append(truncatedKey) }
            let stats = profile.stats[raw] ?? .zero
            let pinned = profile.pins[raw] ?? 0
            if let i = index[key] {
                sites[i].rawIDs.append(raw)
                sites[i].stats += stats
                sites[i].pinnedPages += pinned
            } else {
                index[key] = sites.count
                sites.append(Site(id: 0, rawIDs: [raw], frames: FrameList(ids: stack, store: store), stats: stats,
                                  pinnedPages: pinned, key: key, truncated: truncated))
            }
        }
        let ranks = store.keyRanks()
        let order = sites.indices.sorted { i, j in
            let a = sites[i].stats, b = sites[j].stats
            if a.liveBytes != b.liveBytes { return a.liveBytes > b.liveBytes }
            if a.allocBytes != b.allocBytes { return a.allocBytes > b.allocBytes }
            if a.allocCount != b.allocCount { return a.allocCount > b.allocCount }
            return SiteTable.keyPrecedes(sites[i].key, sites[j].key, ranks: ranks)
        }
        var sorted: [Site] = []
        sorted.reserveCapacity(sites.count)
        for i in order {
            sorted.append(sites[i])
            sorted[sorted.count - 1].id = sorted.count
        }
        self.sites = sorted
        totals = sorted.reduce(.zero) { $0 + $1.stats }
    }

    /// Whether key `a` comes before `b` in the order of their strings, frame by
    /// frame (`ranks`: FrameStore.keyRanks()).
    static func keyPrecedes(_ a: [Int32], _ b: [Int32], ranks: [Int32]) -> Bool {
        for (x, y) in zip(a, b) where x != y {
            let rx = ranks[Int(x)], ry = ranks[Int(y)]
            if rx != ry { return rx < ry }
        }
        return a.count < b.count
    }

    /// Sites holding memory at report time, most live bytes first.
    var live: SiteList {
        SiteList(sites: sites, order: sites.indices.filter { sites[$0].stats.liveBytes > 0 || sites[$0].stats.liveCount > 0 })
    }

    /// Sites ordered by a value, largest first, zero values left out.
    func ranked(by value: (Site) -> Int64) -> SiteList {
        var order: [Int] = []
        var values: [Int64] = []
        for i in sites.indices {
            let v = value(sites[i])
            if v > 0 {
                order.append(i)
                values.append(v)
            }
        }
        // Sites are in id order: the index breaks ties as the id does.
        var positions = Array(order.indices)
        positions.sort { a, b in values[a] != values[b] ? values[a] > values[b] : order[a] < order[b] }
        return SiteList(sites: sites, order: positions.map { order[$0] })
    }
}

/// Some of a table's sites in an order, read as sites: ranking a million
/// sites sorts indices, not copies of the sites.
struct SiteList: RandomAccessCollection {
    let sites: [Site]
    let order: [Int]

    var startIndex: Int { 0 }
    var endIndex: Int { order.count }
    subscript(position: Int) -> Site { sites[order[position]] }
}

/// A profile read, symbolized and merged: what every report format renders.
struct AnalyzedProfile {
    var profile: Profile
    var table: SiteTable

    static func load(path: String, symbolizer: Symbolizer) throws -> AnalyzedProfile {
        let profile = try Profile.load(path: path)
        let frames = symbolizer.frames(for: profile)
        return AnalyzedProfile(profile: profile,
                               table: SiteTable(profile: profile, frames: frames, store: symbolizer.store))
    }
}

/// Paths under the current directory are shown relative to it.
func displayPath(_ path: String) -> String {
    let cwd = FileManager.default.currentDirectoryPath
    let prefix = cwd.hasSuffix("/") ? cwd : cwd + "/"
    if path.hasPrefix(prefix) { return String(path.dropFirst(prefix.count)) }
    return path
}
