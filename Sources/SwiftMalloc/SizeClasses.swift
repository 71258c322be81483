// Layer 2a: the size-class table. 16-byte steps up to 128 B, then four classes per
// doubling up to 32 KiB (40 classes). Index 0 means "not a small class". Every
// class size is a multiple of 16, so every small block is 16-byte aligned.
// Why this table (measured internal waste in docs/DESIGN.md): the seed's powers of
// two waste up to 50% per block; four per doubling caps the waste at 20% (mean
// about 10%), and a span's page count is chosen so the tail left over after the
// last block is at most 1/16 of the span.
import SwiftMallocShims

let smallClassCount = 41
let maxSmallSize: UInt = 32768
/// Sizes up to this use the per-thread lookup table on the fast path.
let lookupMaxSize: UInt = 1024
let lookupEntries = 65  // (lookupMaxSize + 15) >> 4 + 1

/// One size class: its block size and the shape of the spans that hold it.
struct SizeClass {
    var size: UInt32
    var pages: UInt32         // pages per span
    var capacity: UInt32      // blocks per span
    var reciprocal: UInt32    // ceil(2^32 / size): offset / size by multiply-shift
    var cacheLimit: UInt32    // most blocks a thread cache keeps of this class
    var refillBatch: UInt32   // blocks moved per refill from the central lists
}

enum SizeClasses {
    /// The class for a request of `n` bytes, `n <= maxSmallSize`.
    @inline(__always) static func index(for n: UInt) -> Int {
        if n <= 128 { return n == 0 ? 1 : Int(truncatingIfNeeded: (n &+ 15) >> 4) }
        let s = n &- 1
        let lg = UInt(swm_log2(UInt64(s)))
        let k = (s >> (lg &- 2)) &- 4
        return Int(truncatingIfNeeded: 9 &+ (lg &- 7) &* 4 &+ k)
    }

    /// Block size of class `i` (1...40).
    static func size(of i: Int) -> UInt {
        if i <= 8 { return UInt(i) &* 16 }
        let g = UInt(i &- 9) / 4
        let k = UInt(i &- 9) % 4
        let lg = 7 &+ g
        return (1 << lg) &+ (k &+ 1) &* (1 << (lg &- 2))
    }

    /// Fills `table[1...40]` and the small-size lookup `lookup[0..<65]`.
    static func build(table: UnsafeMutablePointer<SizeClass>, lookup: UnsafeMutablePointer<UInt8>) {
        table[0] = SizeClass(size: 0, pages: 0, capacity: 0, reciprocal: 0, cacheLimit: 0, refillBatch: 0)
        var i = 1
        while i < smallClassCount {
            let size = size(of: i)
            // Fewest pages whose tail waste is at most 1/16 of the span; else least waste.
            var bestPages: UInt = 1
            var bestWaste: UInt = UInt.max
            var pages: UInt = 1
            while pages <= 8 {
                let bytes = pages << pageShift
                if bytes >= size {
                    let waste = bytes % size
                    if waste &* 16 <= bytes { bestPages = pages; break }
                    if waste &* bestPages < bestWaste &* pages || bestWaste == UInt.max { bestWaste = waste; bestPages = pages }
                }
                pages &+= 1
            }
            let capacity = (bestPages << pageShift) / size
            let limit = max(UInt(4), min(UInt(256), UInt(64 * 1024) / size))
            table[i] = SizeClass(
                size: UInt32(size), pages: UInt32(bestPages), capacity: UInt32(capacity),
                reciprocal: UInt32(((UInt(1) << 32) &+ size &- 1) / size),
                cacheLimit: UInt32(limit), refillBatch: UInt32(max(UInt(1), limit / 2)))
            i &+= 1
        }
        var e = 0
        while e < lookupEntries {
            lookup[e] = UInt8(index(for: UInt(e) << 4))
            e &+= 1
        }
    }
}
