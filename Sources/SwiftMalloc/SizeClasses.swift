// Layer 2a: the size-class table. 16-byte steps up to 128 B, four classes per
// doubling up to 1 KiB, then eight per doubling up to 32 KiB (60 classes). Index 0
// means "not a small class". Every class size is a multiple of 16, so every small
// block is 16-byte aligned.
// Why this table (measured internal waste in docs/DESIGN.md): the seed's powers of
// two waste up to 50% per block; four per doubling caps the waste at 20% (mean
// about 10%), eight per doubling at 11% (mean about 5%). Above 1 KiB a block is
// big enough that its waste, not the number of partly used spans, decides
// utilization (SQLite's 4368-byte page-cache entries sat in 5120-byte blocks), and
// a span's page count is chosen so the tail left over after the last block is at
// most 1/16 of the span.
import SwiftMallocShims

let smallClassCount = 61
let maxSmallSize: UInt = 32768
/// Sizes up to this use the per-thread lookup table on the fast path.
let lookupMaxSize: UInt = 1024
/// The size lookup table has an entry for every request size 0...lookupMaxSize, so
/// malloc indexes it with the size itself (no rounding step): each entry is its
/// class's bin offset in 8-byte units, which the bin access scales back for free.
let lookupEntries = 1025  // lookupMaxSize + 1
/// A thread cache keeps about this many bytes of each class at first.
let threadCacheBytesPerClass: UInt = 64 * 1024

/// One size class: its block size and the shape of the spans that hold it.
struct SizeClass {
    var size: UInt32
    var pages: UInt32         // pages per span
    var capacity: UInt32      // blocks per span
    var cacheLimit: UInt32    // blocks a thread cache keeps of this class at first
    var growthLimit: UInt32   // most blocks a bin's limit grows to while the bin thrashes
    var refillBatch: UInt32   // blocks moved per refill from the central lists
    var firstRefill: UInt32   // blocks a bin's first refill takes (doubling every second refill)
    var divisor: BlockDivisor // exact division by `size` (block index and block-start test)
}

/// Exact division by a block size d = m * 2^s (m odd) without a divide: for any
/// 64-bit x, rotr(x * m⁻¹ mod 2^64, s) equals x / d when d divides x, and is
/// greater than (2^64 - 1) / d otherwise (Granlund and Montgomery). So one multiply
/// and one rotate give "is x a block start, and which block", and a single compare
/// with a block count < 2^16 rejects every offset that is not a block start or lies
/// past the carved blocks, including addresses below the span (x wraps).
struct BlockDivisor {
    var inverse: UInt64 = 0   // m⁻¹ mod 2^64
    var shift: UInt8 = 0      // s

    init() {}

    init(_ d: UInt) {
        shift = UInt8(truncatingIfNeeded: d.trailingZeroBitCount)
        let m = UInt64(d >> UInt(shift))
        // Newton's iteration doubles the correct low bits each step; m is its own
        // inverse modulo 8, so five steps reach 96 bits.
        var y = m
        var i = 0
        while i < 5 { y = y &* (2 &- m &* y); i &+= 1 }
        inverse = y
    }

    /// x / d if d divides x; otherwise a value above (2^64 - 1) / d.
    @inline(__always) static func quotient(_ x: UInt, inverse: UInt64, shift: UInt8) -> UInt {
        let y = x &* UInt(inverse)
        let s = UInt(shift)
        return (y &>> s) | (y &<< (64 &- s))
    }
}

enum SizeClasses {
    /// The class for a request of `n` bytes, `n <= maxSmallSize`.
    @inline(__always) static func index(for n: UInt) -> Int {
        if n <= 128 { return n == 0 ? 1 : Int(truncatingIfNeeded: (n &+ 15) >> 4) }
        return index(forMedium: n)
    }

    /// The class for 128 < n <= maxSmallSize.
    @inline(__always) static func index(forMedium n: UInt) -> Int {
        if n > lookupMaxSize { return index(overLookup: n) }
        // Four classes per doubling: classes 9...20.
        let s = n &- 1
        let lg = UInt(swm_log2(UInt64(s)))
        let k = (s >> (lg &- 2)) &- 4
        return Int(truncatingIfNeeded: 9 &+ (lg &- 7) &* 4 &+ k)
    }

    /// The class for lookupMaxSize (1 KiB) < n <= maxSmallSize: eight classes per
    /// doubling, classes 21...60. The malloc fast path's formula for these sizes.
    @inline(__always) static func index(overLookup n: UInt) -> Int {
        let s = n &- 1
        let lg = UInt(swm_log2(UInt64(s)))
        let k = (s >> (lg &- 3)) &- 8
        return Int(truncatingIfNeeded: 21 &+ (lg &- 10) &* 8 &+ k)
    }

    /// Block size of class `i` (1...60).
    static func size(of i: Int) -> UInt {
        if i <= 8 { return UInt(i) &* 16 }
        if i <= 20 {
            let g = UInt(i &- 9) / 4
            let k = UInt(i &- 9) % 4
            let lg = 7 &+ g
            return (1 << lg) &+ (k &+ 1) &* (1 << (lg &- 2))
        }
        let g = UInt(i &- 21) / 8
        let k = UInt(i &- 21) % 8
        let lg = 10 &+ g
        return (1 << lg) &+ (k &+ 1) &* (1 << (lg &- 3))
    }

    /// Fills `table[1...60]` and the small-size lookup `lookup[0..<lookupEntries]`:
    /// for each request size, the offset of its class's bin among a thread cache's
    /// bins, in 8-byte units.
    static func build(table: UnsafeMutablePointer<SizeClass>, lookup: UnsafeMutablePointer<UInt8>) {
        table[0] = SizeClass(size: 0, pages: 0, capacity: 0, cacheLimit: 0, growthLimit: 0, refillBatch: 0, firstRefill: 0, divisor: BlockDivisor())
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
            // About threadCacheBytesPerClass of blocks (2 to 256), growing to at most
            // four times as many blocks and four times as many bytes.
            let limit = max(UInt(2), min(UInt(256), threadCacheBytesPerClass / size))
            let growth = min(limit &* 4, max(limit, 4 &* threadCacheBytesPerClass / size))
            table[i] = SizeClass(
                size: UInt32(size), pages: UInt32(bestPages), capacity: UInt32(capacity),
                cacheLimit: UInt32(limit), growthLimit: UInt32(growth), refillBatch: UInt32(max(UInt(1), limit / 2)),
                firstRefill: UInt32(max(UInt(1), min(UInt(8), pageSize / size))),
                divisor: BlockDivisor(size))
            i &+= 1
        }
        var e = 0
        while e < lookupEntries {
            lookup[e] = UInt8(truncatingIfNeeded: index(for: UInt(e)) &* MemoryLayout<CacheBin>.stride >> 3)
            e &+= 1
        }
    }
}
