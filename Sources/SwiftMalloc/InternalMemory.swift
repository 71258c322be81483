// The allocator's own memory: span descriptors, thread caches and per-block
// tracking arrays come from here, never from malloc. A bump region carved from
// 1 MiB mappings, with free lists for the fixed-size objects it recycles.
// Lock order: taken last (inside the page heap and class locks).
import SwiftMallocShims

let internalChunkBytes: UInt = 1 << 20
// Block-info arrays come in power-of-two sizes from 64 B to 2 KiB (a span holds at
// most 256 blocks of 8-byte records): six free lists, `infoFree`.

struct InternalMemory {
    var lock: Int32 = 0
    var cursor: UInt = 0
    var limit: UInt = 0
    var mappedBytes: UInt = 0
    var freeSpans: UnsafeMutablePointer<Span>? = nil
    /// Heads of the free lists of block-info arrays, 64 << i bytes each.
    var infoFree: (UInt, UInt, UInt, UInt, UInt, UInt) = (0, 0, 0, 0, 0, 0)

    /// `bytes` (rounded to 64) of zeroed memory, or nil when the system refuses.
    /// Caller holds `lock`.
    mutating func bump(_ bytes: UInt) -> UnsafeMutableRawPointer? {
        let size = (bytes &+ 63) & ~UInt(63)
        if cursor == 0 || limit &- cursor < size {
            let chunk = max(internalChunkBytes, (size &+ pageMask) & ~pageMask)
            guard let fresh = OSPages.map(chunk) else { return nil }
            mappedBytes &+= chunk
            cursor = UInt(bitPattern: fresh)
            limit = cursor &+ chunk
        }
        let p = cursor
        cursor &+= size
        return UnsafeMutableRawPointer(bitPattern: p)
    }
}

extension UnsafeMutablePointer where Pointee == InternalMemory {
    /// A fresh span descriptor, all fields at their defaults.
    func newSpan() -> UnsafeMutablePointer<Span>? {
        swm_lock(&pointee.lock)
        var span = pointee.freeSpans
        if let s = span {
            pointee.freeSpans = s.pointee.next
        } else {
            span = pointee.bump(UInt(MemoryLayout<Span>.stride))?.bindMemory(to: Span.self, capacity: 1)
        }
        swm_unlock(&pointee.lock)
        span?.initialize(to: Span())
        return span
    }

    func deleteSpan(_ span: UnsafeMutablePointer<Span>) {
        span.pointee.state = .freeRun
        span.pointee.start = 0
        swm_lock(&pointee.lock)
        span.pointee.next = pointee.freeSpans
        pointee.freeSpans = span
        swm_unlock(&pointee.lock)
    }

    /// A zeroed array of `count` BlockInfo records (count <= 256).
    func newInfo(count: Int) -> UnsafeMutablePointer<BlockInfo>? {
        let bytes = UInt(count) &* UInt(MemoryLayout<BlockInfo>.stride)
        var bucket = 0
        while (UInt(64) << UInt(bucket)) < bytes { bucket &+= 1 }
        let size = UInt(64) << UInt(bucket)
        swm_lock(&pointee.lock)
        var raw: UnsafeMutableRawPointer?
        withUnsafeMutableBytes(of: &pointee.infoFree) { heads in
            let h = heads.baseAddress!.assumingMemoryBound(to: UInt.self)
            if h[bucket] != 0 {
                raw = UnsafeMutableRawPointer(bitPattern: h[bucket])
                h[bucket] = nextFree(h[bucket])
            }
        }
        if raw == nil { raw = pointee.bump(size) } else { raw!.initializeMemory(as: UInt8.self, repeating: 0, count: Int(size)) }
        swm_unlock(&pointee.lock)
        return raw?.bindMemory(to: BlockInfo.self, capacity: count)
    }

    func deleteInfo(_ info: UnsafeMutablePointer<BlockInfo>, count: Int) {
        let bytes = UInt(count) &* UInt(MemoryLayout<BlockInfo>.stride)
        var bucket = 0
        while (UInt(64) << UInt(bucket)) < bytes { bucket &+= 1 }
        let p = UInt(bitPattern: info)
        swm_lock(&pointee.lock)
        withUnsafeMutableBytes(of: &pointee.infoFree) { heads in
            let h = heads.baseAddress!.assumingMemoryBound(to: UInt.self)
            setNextFree(p, h[bucket])
            h[bucket] = p
        }
        swm_unlock(&pointee.lock)
    }
}
