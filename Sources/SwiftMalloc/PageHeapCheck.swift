// The page heap's invariants (PageHeap.swift, Span.swift), checked. Hardened mode
// (SWIFTMALLOC_CHECK=1) runs the check after page-heap allocations, releases and
// in-place growths: after every one while the heap has at most
// pageHeapCheckCredit free runs, so the fuzzer and the fault-injection runs in
// that mode stop at the first operation that breaks one; on a larger heap after
// every (runs / pageHeapCheckCredit)th, so the walks, O(runs) each, cost at most
// that many run visits per operation instead of growing with the heap (a program
// that freed a large heap block by block took quadratic time).
import SwiftMallocShims

/// Heaps with more free runs than this are not checked (the walk is O(runs)).
let pageHeapCheckMaxRuns = 20_000
/// Run visits each operation pays towards the next walk.
let pageHeapCheckCredit: UInt = 64

extension UnsafeMutablePointer where Pointee == PageHeap {
    /// Walks every bin and the dirty list and aborts, naming the broken invariant and
    /// the run's start, at the first violation. Caller holds `lock`.
    func verify(heap: UnsafeMutablePointer<Heap>) {
        pointee.checkCredit &+= pageHeapCheckCredit
        if pointee.checkCredit < pointee.checkedRuns { return }
        pointee.checkCredit = 0
        let bins = pointee.bins.unsafelyUnwrapped
        var freePages: UInt = 0, dirtyPages: UInt = 0
        var runs = 0, dirtyRuns = 0
        var b = 0
        while b < binCount {
            var prev: UnsafeMutablePointer<Span>? = nil
            var cursor = bins[b]
            let marked = withUnsafeBytes(of: pointee.binMask) { raw in
                raw.load(fromByteOffset: (b >> 6) &* 8, as: UInt64.self) & (UInt64(1) << UInt64(b & 63)) != 0
            }
            if marked != (cursor != nil) { internalFailure("page heap: bin mask disagrees with bin", UInt(b)) }
            while let r = cursor {
                runs &+= 1
                if runs > pageHeapCheckMaxRuns {
                    pointee.checkedRuns = UInt(runs)
                    return
                }
                let start = r.pointee.start, end = r.pointee.end
                if r.pointee.state != .freeRun { internalFailure("page heap: a binned run is not free", start) }
                if binIndex(r.pointee.pageCount) != b { internalFailure("page heap: run in the wrong bin", start) }
                if r.pointee.prev != prev { internalFailure("page heap: broken bin links at", start) }
                if spanOwning(start) != r || spanOwning(end &- pageSize) != r {
                    internalFailure("page heap: page map does not mark a free run's ends", start)
                }
                if let left = spanOwning(start &- pageSize), left.pointee.state == .freeRun, left.pointee.end == start {
                    internalFailure("page heap: adjacent free runs not merged", start)
                }
                if let right = spanOwning(end), right.pointee.state == .freeRun, right.pointee.start == end {
                    internalFailure("page heap: adjacent free runs not merged", end)
                }
                let hull = r.pointee.dirtyHullPages, count = r.pointee.dirtyPages
                if (count == 0) != (hull == 0) || count > hull || r.pointee.dirtyOffset &+ hull > r.pointee.pageCount {
                    internalFailure("page heap: dirty count outside its hull", start)
                }
                freePages &+= r.pointee.pageCount
                dirtyPages &+= count
                if count > 0 { dirtyRuns &+= 1 }
                prev = r
                cursor = r.pointee.next
            }
            b &+= 1
        }
        pointee.checkedRuns = UInt(runs)
        var onList = 0
        var prev: UnsafeMutablePointer<Span>? = nil
        var d = pointee.dirtyHead
        while let r = d {
            onList &+= 1
            if onList > runs { internalFailure("page heap: dirty list longer than the free runs", r.pointee.start) }
            if r.pointee.dirtyPages == 0 { internalFailure("page heap: clean run on the dirty list", r.pointee.start) }
            if r.pointee.dirtyPrev != prev { internalFailure("page heap: broken dirty list links at", r.pointee.start) }
            prev = r
            d = r.pointee.dirtyNext
        }
        if prev != pointee.dirtyTail { internalFailure("page heap: dirty list tail", UInt(onList)) }
        if onList != dirtyRuns { internalFailure("page heap: dirty runs missing from the dirty list", UInt(dirtyRuns &- onList)) }
        if freePages != pointee.freePagesTotal { internalFailure("page heap: free page total", freePages) }
        if dirtyPages != pointee.dirtyPagesTotal { internalFailure("page heap: dirty page total", dirtyPages) }
    }
}
