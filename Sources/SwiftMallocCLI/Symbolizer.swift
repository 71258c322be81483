// Turns return addresses into function names and source lines.
//
// Each frame address is placed in its module (the profile's `module` records),
// turned into a file offset and then into the module's link-time address
// (ELF.swift). All addresses of one module go to a single
// `addr2line -f -C -e <module>` process, fed on stdin; results are cached per
// module file and link address, so the two profiles of a diff share the work
// even when their modules were loaded at different addresses. Swift names that
// addr2line leaves mangled go through swift-demangle when it is installed.
// Frames that cannot be resolved are shown as `module+0xoffset`.

import Foundation

/// One symbolized frame.
struct Frame {
    /// The return address as recorded.
    var address: UInt64
    /// The module's path, nil when the address is in no module.
    var modulePath: String?
    /// File offset of `address` in its module.
    var moduleOffset: UInt64?
    /// Function name (demangled); nil when unknown.
    var function: String?
    var file: String?
    var line: Int?

    /// The function, or `module+0xoffset`, or the bare address.
    var name: String {
        if let function { return function }
        if let modulePath, let moduleOffset {
            return "\(URL(fileURLWithPath: modulePath).lastPathComponent)+0x\(String(moduleOffset, radix: 16))"
        }
        return "0x\(String(address, radix: 16))"
    }

    /// `file:line`, or nil when the source position is unknown.
    var location: String? {
        guard let file else { return nil }
        if let line { return "\(file):\(line)" }
        return file
    }

    /// What sites are merged on: the same function at the same source line is
    /// the same frame, whatever the address (GCC duplicates call sites when it
    /// unrolls loops). Unresolved frames fall back to their module offset.
    var key: String {
        if function != nil, let location { return "\(name)\u{1}\(location)" }
        return name
    }

    /// A frame inside the allocator itself, never shown.
    var isAllocatorFrame: Bool {
        guard let modulePath else { return false }
        return Frame.isAllocatorModule(modulePath)
    }

    static func isAllocatorModule(_ path: String) -> Bool {
        URL(fileURLWithPath: path).lastPathComponent.hasPrefix("libswiftmalloc")
    }
}

/// The frames of the sites of one or more profiles, each distinct frame once,
/// with what every report needs of it worked out once: its name, what sites
/// are merged on, its folded-stack label. Sites hold indices into it, so that
/// a profile with a million sites of dozens of frames holds a few hundred
/// frames, not tens of millions of copies.
final class FrameStore: @unchecked Sendable {
    private(set) var frames: [Frame] = []
    /// Per frame: `Frame.name`.
    private(set) var names: [String] = []
    /// Per frame: the id of its `Frame.key` (equal keys, equal ids).
    private(set) var keyIDs: [Int32] = []
    /// Per frame: it lies in the allocator (dropped from every stack).
    private(set) var isAllocator: [Bool] = []
    /// Per frame: the id of its folded-stack label (equal labels, equal ids).
    private(set) var labelIDs: [Int32] = []
    /// Merge keys by id.
    private var keys = InternedStrings()
    var keyStrings: [String] { keys.strings }
    /// Folded-stack labels by id.
    private var labels = InternedStrings()
    var labelStrings: [String] { labels.strings }
    private var jsonTexts: [String?] = []
    private var displayLocations: [String??] = []
    private var moduleNames: [String??] = []

    /// The key that marks a stack cut at the maximum depth.
    private(set) lazy var truncatedKeyID: Int32 = keyID("\u{1}truncated")

    func add(_ frame: Frame) -> Int32 {
        let id = Int32(frames.count)
        let name = frame.name
        frames.append(frame)
        names.append(name)
        keyIDs.append(keyID(frame.key))
        isAllocator.append(frame.isAllocatorFrame)
        labelIDs.append(labelID(FoldedStacks.label(name: name)))
        jsonTexts.append(nil)
        displayLocations.append(nil)
        moduleNames.append(nil)
        return id
    }

    func keyID(_ key: String) -> Int32 { keys.id(of: key) }

    func labelID(_ label: String) -> Int32 { labels.id(of: label) }

    /// Per key id, its place among all keys in String order: comparing keys'
    /// ranks orders them as comparing the key strings would.
    func keyRanks() -> [Int32] {
        let keyStrings = keys.strings
        var ranks = [Int32](repeating: 0, count: keyStrings.count)
        let order = keyStrings.indices.sorted { keyStrings[$0] < keyStrings[$1] }
        var rank: Int32 = 0
        for (i, k) in order.enumerated() {
            if i > 0, keyStrings[k] != keyStrings[order[i - 1]] { rank += 1 }
            ranks[k] = rank
        }
        return ranks
    }

    /// The frame as a JSON object on one line (JSONReport.frame), made once.
    func json(_ id: Int32) -> String {
        if let text = jsonTexts[Int(id)] { return text }
        let text = JSONReport.frame(frames[Int(id)]).text()
        jsonTexts[Int(id)] = text
        return text
    }

    /// The frame's `file:line` as shown (displayPath), nil when unknown; made once.
    func displayLocation(_ id: Int32) -> String? {
        if let known = displayLocations[Int(id)] { return known }
        let text = frames[Int(id)].location.map(displayPath)
        displayLocations[Int(id)] = .some(text)
        return text
    }

    /// The file name of the frame's module, nil when in none; made once.
    func moduleName(_ id: Int32) -> String? {
        if let known = moduleNames[Int(id)] { return known }
        let text = frames[Int(id)].modulePath.map { URL(fileURLWithPath: $0).lastPathComponent }
        moduleNames[Int(id)] = .some(text)
        return text
    }
}

/// A site's frames: indices into a FrameStore, read as frames.
struct FrameList: RandomAccessCollection {
    let ids: [Int32]
    let store: FrameStore

    var startIndex: Int { 0 }
    var endIndex: Int { ids.count }
    subscript(position: Int) -> Frame { store.frames[Int(ids[position])] }
}

final class Symbolizer: @unchecked Sendable {
    private struct Resolved {
        var function: String?
        var file: String?
        var line: Int?
        /// Where the code at the address was inlined into, innermost first: the
        /// function that called the one above, at the line of that call, up to the
        /// function the address lies in (addr2line -i).
        var callers: [Resolved] = []
    }

    private let lock = NSLock()
    /// Module path → link-time address → result.
    private var cache: [String: [UInt64: Resolved]] = [:]
    private var layouts: [String: ELFLayout?] = [:]
    private var demangled: [String: String] = [:]
    private(set) var warnings: [String] = []
    private var warned: Set<String> = []
    /// Set to false to skip addr2line (every frame becomes module+offset).
    var enabled = true

    private lazy var addr2line: String? = Symbolizer.findTool(
        ProcessInfo.processInfo.environment["SWIFTMALLOC_ADDR2LINE"] ?? "addr2line")
    private lazy var swiftDemangle: String? = Symbolizer.findTool("swift-demangle")

    /// Every frame this symbolizer has built, each once; sites refer to them by index.
    let store = FrameStore()

    /// Symbolizes every site of a profile: site id → frames (indices into
    /// `store`), innermost first.
    ///
    /// A large program has up to millions of sites but few distinct return
    /// addresses: each address is placed, looked up and turned into frames
    /// once, and a site is a list of indices.
    func frames(for profile: Profile) -> [UInt64: [Int32]] {
        // 1. Place every address in its module and find what is not cached yet.
        // Return addresses point after the call: the byte before is looked up,
        // which is inside the call instruction and so on its line. Not so for a
        // return address that no call pushed (see EntryStub) and for the frame a
        // signal interrupted (the exact instruction).
        struct Placed { var module: ModuleRecord?; var offset: UInt64; var link: UInt64 }
        struct Key: Hashable { var address: UInt64; var exact: Bool }
        // Per distinct address: its module and the stub that starts there, if any.
        struct AddressInfo { var module: ModuleRecord?; var stub: EntryStub? }
        var addressInfo: [UInt64: AddressInfo] = [:]
        var keyIndex: [Key: Int32] = [:]
        var placed: [Placed] = []
        var placedKeys: [Key] = []
        var wanted: [String: Set<UInt64>] = [:]
        var keys: [UInt64: [Int32]] = [:]
        keys.reserveCapacity(profile.siteFrames.count)
        for (id, frames) in profile.siteFrames {
            var afterSignalFrame = false
            var siteKeys: [Int32] = []
            siteKeys.reserveCapacity(frames.count)
            for address in frames {
                let info: AddressInfo
                if let known = addressInfo[address] {
                    info = known
                } else {
                    let module = profile.module(containing: address)
                    // Without symbolization no module file is opened.
                    let stub = enabled ? module.flatMap { entryStub($0, address) } : nil
                    info = AddressInfo(module: module, stub: stub)
                    addressInfo[address] = info
                }
                let key = Key(address: address, exact: info.stub != nil || afterSignalFrame)
                afterSignalFrame = info.stub == .signalReturn
                if let index = keyIndex[key] {
                    siteKeys.append(index)
                    continue
                }
                let index = Int32(placed.count)
                keyIndex[key] = index
                siteKeys.append(index)
                placedKeys.append(key)
                guard let module = info.module else {
                    placed.append(Placed(module: nil, offset: 0, link: 0))
                    continue
                }
                let offset = module.fileOffset(of: address)
                if Frame.isAllocatorModule(module.path) {
                    // Dropped from every stack: nothing to look up.
                    placed.append(Placed(module: module, offset: offset, link: 0))
                    continue
                }
                let lookup = module.fileOffset(of: address > module.start && !key.exact ? address - 1 : address)
                let link = enabled ? layout(of: module.path)?.address(ofFileOffset: lookup) ?? lookup : lookup
                placed.append(Placed(module: module, offset: offset, link: link))
                if cached(module.path, link) == nil { wanted[module.path, default: []].insert(link) }
            }
            keys[id] = siteKeys
        }

        // 2. One addr2line per module, run side by side.
        let jobs = wanted.map { ($0.key, Array($0.value).sorted()) }
        let tool = jobs.isEmpty ? nil : addr2line
        DispatchQueue.concurrentPerform(iterations: jobs.count) { i in
            let (path, addresses) = jobs[i]
            let results = self.resolve(path: path, addresses: addresses, tool: tool)
            self.lock.lock()
            for (a, r) in zip(addresses, results) { self.cache[path, default: [:]][a] = r }
            self.lock.unlock()
        }
        demangleSwiftNames()

        // 3. Build the frames of each distinct address once, then each site's list.
        // A frame whose code was inlined is followed by the functions it was
        // inlined into, each a frame of its own at the same address.
        var expanded: [[Int32]] = []
        expanded.reserveCapacity(placed.count)
        for (p, key) in zip(placed, placedKeys) {
            let address = key.address
            guard let module = p.module else {
                expanded.append([store.add(Frame(address: address))])
                continue
            }
            var frame = Frame(address: address, modulePath: module.path, moduleOffset: p.offset)
            guard let r = cached(module.path, p.link) else {
                expanded.append([store.add(frame)])
                continue
            }
            var frames: [Frame] = []
            for part in [r] + r.callers {
                // The same function twice in a row (an alias inlined into itself) is one frame.
                if let previous = frames.last, part.function != nil,
                   previous.function == part.function.map({ demangled[$0] ?? $0 }) { continue }
                frame.function = part.function.map { demangled[$0] ?? $0 }
                frame.file = part.file
                frame.line = part.line
                frames.append(frame)
            }
            expanded.append(frames.map { store.add($0) })
        }
        var out: [UInt64: [Int32]] = [:]
        out.reserveCapacity(keys.count)
        for (id, siteKeys) in keys {
            if siteKeys.allSatisfy({ expanded[Int($0)].count == 1 }) {
                out[id] = siteKeys.map { expanded[Int($0)][0] }
            } else {
                out[id] = siteKeys.flatMap { expanded[Int($0)] }
            }
        }
        return out
    }

    /// Module path and file offset → the stub that starts there, if any.
    private var stubs: [String: [UInt64: EntryStub?]] = [:]
    private var openModules: [String: FileHandle?] = [:]

    /// The stub whose first instruction is at `address`, read from the module's
    /// file, as debuggers recognize a signal frame.
    private func entryStub(_ module: ModuleRecord, _ address: UInt64) -> EntryStub? {
        #if arch(x86_64)
        let offset = module.fileOffset(of: address)
        if let known = stubs[module.path]?[offset] { return known }
        var found: EntryStub? = nil
        if openModules[module.path] == nil { openModules[module.path] = RegularFile.open(module.path) }
        if offset <= UInt64(Int64.max), let handle = openModules[module.path] ?? nil,
           (try? handle.seek(toOffset: offset)) != nil,
           let bytes = try? handle.read(upToCount: EntryStub.longestCode) {
            found = EntryStub.starting(Array(bytes))
        }
        stubs[module.path, default: [:]][offset] = .some(found)
        return found
        #else
        return nil
        #endif
    }

    private func cached(_ path: String, _ link: UInt64) -> Resolved? {
        lock.lock()
        defer { lock.unlock() }
        return cache[path]?[link]
    }

    private func layout(of path: String) -> ELFLayout? {
        if let known = layouts[path] { return known }
        let l = ELFLayout.read(path: path)
        layouts[path] = l
        return l
    }

    private func warn(_ message: String) {
        lock.lock()
        defer { lock.unlock() }
        if warned.insert(message).inserted { warnings.append(message) }
    }

    /// Runs addr2line once for all `addresses` of one module.
    private func resolve(path: String, addresses: [UInt64], tool: String?) -> [Resolved] {
        let none = [Resolved](repeating: Resolved(), count: addresses.count)
        guard enabled else { return none }
        guard RegularFile.isReadable(path) else {
            // Pseudo-files such as [vdso] have no symbols to read: no warning.
            if path.hasPrefix("[") { return none }
            if RegularFile.existsAndIsNotRegular(path) {
                warn("\(path) is not a regular file: its frames are shown as module+offset")
            } else {
                warn("cannot read \(path): its frames are shown as module+offset")
            }
            return none
        }
        guard let tool else {
            warn("addr2line not found (install binutils): frames are shown as module+offset")
            return none
        }
        let input = addresses.map { "0x" + String($0, radix: 16) }.joined(separator: "\n") + "\n"
        // -a: each address's answer starts with the address itself; -i: then a
        // function and location for the code there and one more for each function
        // it was inlined into.
        guard let output = Symbolizer.runTool(tool, ["-a", "-i", "-f", "-C", "-e", path], input: input) else {
            warn("addr2line failed on \(path): its frames are shown as module+offset")
            return none
        }
        var groups: [[Substring]] = []
        for line in output.split(separator: "\n", omittingEmptySubsequences: false) {
            if line.hasPrefix("0x") { groups.append([]) } else if !groups.isEmpty { groups[groups.count - 1].append(line) }
        }
        guard groups.count == addresses.count, groups.allSatisfy({ $0.count >= 2 }) else {
            warn("addr2line gave unexpected output for \(path): its frames are shown as module+offset")
            return none
        }
        return groups.map { group in
            var parts: [Resolved] = []
            var i = 0
            while i + 1 < group.count {
                parts.append(Symbolizer.resolved(function: group[i], location: group[i + 1]))
                i += 2
            }
            var r = parts[0]
            r.callers = Array(parts.dropFirst())
            return r
        }
    }

    /// One function and `file:line` pair of addr2line's answer.
    private static func resolved(function: Substring, location whole: Substring) -> Resolved {
        var r = Resolved()
        if function != "??" && !function.isEmpty { r.function = String(function) }
        var location = whole
        if let cut = location.range(of: " (discriminator") { location = location[..<cut.lowerBound] }
        if let colon = location.lastIndex(of: ":") {
            let file = location[..<colon]
            let line = location[location.index(after: colon)...]
            if file != "??" && !file.isEmpty {
                r.file = String(file)
                if let n = Int(line), n > 0 { r.line = n }
            }
        }
        return r
    }

    /// Demangles the Swift names addr2line returned (it does not know Swift's
    /// mangling), in one swift-demangle run.
    private func demangleSwiftNames() {
        var names: Set<String> = []
        for perModule in cache.values {
            for r in perModule.values {
                for part in [r] + r.callers {
                    if let f = part.function, demangled[f] == nil, Symbolizer.looksSwiftMangled(f) { names.insert(f) }
                }
            }
        }
        guard !names.isEmpty, let tool = swiftDemangle else { return }
        let ordered = Array(names)
        guard let output = Symbolizer.runTool(tool, ["--simplified"], input: ordered.joined(separator: "\n") + "\n")
        else { return }
        let lines = output.split(separator: "\n", omittingEmptySubsequences: false)
        guard lines.count >= ordered.count else { return }
        for (name, plain) in zip(ordered, lines) where !plain.isEmpty { demangled[name] = String(plain) }
    }

    static func looksSwiftMangled(_ name: String) -> Bool {
        name.hasPrefix("$s") || name.hasPrefix("_$s") || name.hasPrefix("$S") || name.hasPrefix("_$S")
            || name.hasPrefix("$e") || name.hasPrefix("_$e") || name.hasPrefix("_T0")
    }

    /// The executable for `name`: itself when it contains a slash, else the first on PATH.
    static func findTool(_ name: String) -> String? {
        if name.contains("/") { return FileManager.default.isExecutableFile(atPath: name) ? name : nil }
        let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin"
        for dir in path.split(separator: ":") {
            let candidate = "\(dir)/\(name)"
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
        }
        return nil
    }

    /// Runs a tool with `input` on stdin (through a temporary file, so a large
    /// input cannot dead-lock against the output pipe) and returns its stdout,
    /// or nil when it could not run or failed.
    static func runTool(_ tool: String, _ arguments: [String], input: String) -> String? {
        let inputURL = FileManager.default.temporaryDirectory
            .appendingPathComponent("swiftmalloc-sym-\(getpid())-\(UUID().uuidString)")
        guard FileManager.default.createFile(atPath: inputURL.path, contents: Data(input.utf8)),
              let stdin = FileHandle(forReadingAtPath: inputURL.path) else { return nil }
        defer {
            try? stdin.close()
            try? FileManager.default.removeItem(at: inputURL)
        }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: tool)
        process.arguments = arguments
        process.standardInput = stdin
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = FileHandle.nullDevice
        do { try process.run() } catch { return nil }
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        guard process.terminationReason == .exit, process.terminationStatus == 0 else { return nil }
        return String(decoding: data, as: UTF8.self)
    }
}

/// Distinct strings numbered in the order they were first seen: equal strings,
/// equal ids, and `strings[id]` gives the string back.
struct InternedStrings {
    private(set) var strings: [String] = []
    private var ids: [String: Int32] = [:]

    mutating func id(of string: String) -> Int32 {
        if let id = ids[string] { return id }
        let id = Int32(strings.count)
        strings.append(string)
        ids[string] = id
        return id
    }
}
