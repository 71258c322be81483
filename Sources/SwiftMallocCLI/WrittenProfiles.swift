// Which profiles a run of `swiftmalloc run` wrote: the files matching the
// report template are listed before the command starts and again after it
// ends, and only those that are new or changed count. A file's identity is
// its inode, size and modification time: the library writes a report beside
// its path and renames it over, so even a rewrite within the same clock tick
// has a new inode. A profile left by an earlier run, however recent, is never
// taken for this run's.

import Foundation

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

struct WrittenProfile {
    var path: String
    /// The pid in the file name; 0 when the template has no %p.
    var pid: Int
}

struct ProfileSnapshot {
    private struct Identity: Equatable {
        var device: UInt64
        var inode: UInt64
        var size: Int64
        var modifiedSeconds: Int
        var modifiedNanoseconds: Int

        init?(path: String) {
            var info = stat()
            guard stat(path, &info) == 0, (info.st_mode & S_IFMT) == S_IFREG else { return nil }
            device = UInt64(info.st_dev)
            inode = UInt64(info.st_ino)
            size = Int64(info.st_size)
            modifiedSeconds = Int(info.st_mtim.tv_sec)
            modifiedNanoseconds = Int(info.st_mtim.tv_nsec)
        }
    }

    let template: String
    private let before: [String: Identity]

    /// Lists the profiles matching `template` (an absolute path; `%p` = any pid) as they are now.
    init(template: String) {
        self.template = template
        var identities: [String: Identity] = [:]
        for profile in ProfileSnapshot.matching(template) {
            if let id = Identity(path: profile.path) { identities[profile.path] = id }
        }
        before = identities
    }

    /// The profiles written since the snapshot was taken, by pid.
    func written() -> [WrittenProfile] {
        ProfileSnapshot.matching(template).filter { profile in
            guard let now = Identity(path: profile.path) else { return false }
            return before[profile.path] != now
        }
    }

    /// Regular files whose names match the template, by pid.
    private static func matching(_ template: String) -> [WrittenProfile] {
        let dir = (template as NSString).deletingLastPathComponent
        let base = (template as NSString).lastPathComponent
        guard base.contains("%p"), !dir.contains("%p") else {
            // Without %p in the file name, every process writes the one file
            // (with %p only in the directories, the library's own choice of name).
            let path = template.replacingOccurrences(of: "%p", with: "")
            return (path == template ? [template] : [template, path])
                .filter { Identity(path: $0) != nil }.map { WrittenProfile(path: $0, pid: 0) }
        }
        let parts = base.components(separatedBy: "%p")
        let pattern = "^" + parts.map(NSRegularExpression.escapedPattern(for:)).joined(separator: "([0-9]+)") + "$"
        guard let regex = try? NSRegularExpression(pattern: pattern),
              let names = try? FileManager.default.contentsOfDirectory(atPath: dir.isEmpty ? "." : dir) else { return [] }
        var out: [WrittenProfile] = []
        for name in names {
            let range = NSRange(name.startIndex..., in: name)
            guard let m = regex.firstMatch(in: name, range: range), let r = Range(m.range(at: 1), in: name),
                  let pid = Int(name[r]) else { continue }
            out.append(WrittenProfile(path: (dir as NSString).appendingPathComponent(name), pid: pid))
        }
        return out.sorted { $0.pid < $1.pid }
    }
}
