// Just enough ELF to turn a file offset into the address that addr2line wants.
//
// A profile gives each frame as a file offset in its module. addr2line takes
// addresses in the object's own link-time address space, which equals the file
// offset only when the linker laid segments out that way (GNU ld usually does,
// lld and non-PIE executables often do not). The loadable segments say how
// the two relate: `vaddr = offset - p_offset + p_vaddr`.

import Foundation

struct ELFLayout {
    struct Segment {
        var offset: UInt64
        var vaddr: UInt64
        var fileSize: UInt64
    }

    var segments: [Segment]

    /// The link-time address of a file offset; the offset itself when no
    /// loadable segment covers it (or the file could not be read).
    func address(ofFileOffset offset: UInt64) -> UInt64 {
        for s in segments where offset >= s.offset && offset < s.offset &+ s.fileSize {
            return offset - s.offset &+ s.vaddr
        }
        return offset
    }

    /// Reads the program headers of a 64-bit little-endian ELF file; nil for
    /// anything else (the caller then uses offsets unchanged).
    static func read(path: String) -> ELFLayout? {
        guard let handle = RegularFile.open(path) else { return nil }
        defer { try? handle.close() }
        guard let header = try? handle.read(upToCount: 64), header.count == 64 else { return nil }
        let h = [UInt8](header)
        // "\x7fELF", ELFCLASS64, ELFDATA2LSB
        guard h[0] == 0x7f, h[1] == 0x45, h[2] == 0x4c, h[3] == 0x46, h[4] == 2, h[5] == 1 else { return nil }
        let phoff = le64(h, 32)
        let phentsize = UInt64(le16(h, 54))
        let phnum = UInt64(le16(h, 56))
        // The table's offset comes from the file: one past an off_t cannot be sought.
        guard phentsize >= 56, phnum > 0, phnum < 4096, phoff <= UInt64(Int64.max) else { return nil }
        guard (try? handle.seek(toOffset: phoff)) != nil,
              let table = try? handle.read(upToCount: Int(phentsize * phnum)),
              table.count == Int(phentsize * phnum) else { return nil }
        let t = [UInt8](table)
        var segments: [Segment] = []
        for i in 0..<Int(phnum) {
            let base = i * Int(phentsize)
            let type = le32(t, base)
            guard type == 1 else { continue } // PT_LOAD
            segments.append(Segment(offset: le64(t, base + 8), vaddr: le64(t, base + 16),
                                    fileSize: le64(t, base + 32)))
        }
        return ELFLayout(segments: segments)
    }

    private static func le16(_ b: [UInt8], _ at: Int) -> UInt16 {
        UInt16(b[at]) | UInt16(b[at + 1]) << 8
    }

    private static func le32(_ b: [UInt8], _ at: Int) -> UInt32 {
        (0..<4).reduce(UInt32(0)) { $0 | UInt32(b[at + $1]) << (8 * UInt32($1)) }
    }

    private static func le64(_ b: [UInt8], _ at: Int) -> UInt64 {
        (0..<8).reduce(UInt64(0)) { $0 | UInt64(b[at + $1]) << (8 * UInt64($1)) }
    }
}
