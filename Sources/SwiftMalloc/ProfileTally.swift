// Full profiling's per-thread counts: every allocation and free a thread records
// goes into its own tally, with plain stores and no atomic instruction, and the
// tally is merged into the profiler's shared counters under the profile lock a few
// hundred events later. An atomic instruction waits for every cache miss in flight,
// so a lock taken per event cost more than the rest of the record.
//
// A tally's counts are cumulative (they only grow, wrapping) and its `merged`
// copies say how much of them the shared counters already hold, so a merge adds
// the differences. The owner thread writes the counts; merges (the owner's, or a
// reporter's, or the retiring of a dead thread's cache) read them and write the
// `merged` copies, always under the profile lock. A reporter reads a running
// thread's counts without stopping it: each word it reads is a value that count
// really had (aligned words are read whole), so at worst a report taken while a
// thread records misses that thread's last event, which its next merge adds.
//
// With several threads the shared counters can be below zero for a while: a block
// allocated in one thread and freed in another is counted in two tallies, and the
// free's may be merged first. Comparisons with the peak are signed, a site's value
// at the peak is kept at zero or above, and the report writes no value below zero.
//
// Invariants: a slot's key is 0 (free) or its site id + 1, and a site is counted
// only in slot id % tallySlots (an event of a site whose slot counts another goes
// to the shared counters under the lock instead); a slot is freed, and its
// counts and copies zeroed, only under the profile lock by a merge of its owner
// (or of a thread that no longer runs); the owner sets a free slot's key without
// the lock, before counting into it, so a merge that sees the key sees counts
// that belong to it.
import SwiftMallocShims

/// `v` read as a signed count, or 0 when below zero (see above).
@inline(__always) func atLeastZero(_ v: UInt) -> UInt { Int(bitPattern: v) < 0 ? 0 : v }

/// Sites a thread counts between merges: a direct-mapped table by site id (ids are
/// given out in order, so a program's first 128 sites never share a slot), whose
/// used slots are the bits of `ProfileTally.used`.
let tallySlots = 128
/// Events a thread records between merges, at most.
let tallyMergeEvents: UInt = 512

/// One site's counts in a thread's tally: cumulative, and how much of each the
/// shared counters hold (the site's live count and bytes are the differences of
/// allocations and frees). 96 bytes.
struct TallySlot {
    var key: UInt = 0
    var allocCount: UInt = 0
    var allocBytes: UInt = 0
    var freeCount: UInt = 0
    var freeBytes: UInt = 0
    var liveHeld: UInt = 0
    var mergedAllocCount: UInt = 0
    var mergedAllocBytes: UInt = 0
    var mergedFreeCount: UInt = 0
    var mergedFreeBytes: UInt = 0
    var mergedLiveHeld: UInt = 0
    private var padding: UInt = 0
}

/// A thread's tally: this header, then `tallySlots` slots, then the requested bytes
/// of each small class counted and merged (`tallyClassWords` words each).
struct ProfileTally {
    /// Requested bytes allocated less freed, cumulative (wrapping), and merged.
    var live: UInt = 0
    var liveMerged: UInt = 0
    /// Events since the owner's last merge (the owner's alone).
    var events: UInt = 0
    /// Small classes counted into since the owner's last merge (bit `cls`).
    var classMask: UInt = 0
    /// Slots in use: bit i % 64 of word i / 64 is set when slot i has a key.
    var used: (UInt, UInt) = (0, 0)
    private var padding: (UInt, UInt) = (0, 0)
}

let tallyClassWords = 64
@inline(__always) var profileTallyBytes: Int {
    MemoryLayout<ProfileTally>.stride + tallySlots * MemoryLayout<TallySlot>.stride + 2 * tallyClassWords * 8
}

extension UnsafeMutablePointer where Pointee == ProfileTally {
    /// Word `w` (0 or 1) of the used-slot bits.
    @inline(__always) func usedWord(_ w: Int) -> UnsafeMutablePointer<UInt> {
        withUnsafeMutablePointer(to: &pointee.used) { UnsafeMutableRawPointer($0) }.assumingMemoryBound(to: UInt.self) + w
    }
    @inline(__always) func slot(_ i: Int) -> UnsafeMutablePointer<TallySlot> {
        (UnsafeMutableRawPointer(self) + MemoryLayout<ProfileTally>.stride + i &* MemoryLayout<TallySlot>.stride)
            .assumingMemoryBound(to: TallySlot.self)
    }
    /// Class `cls`'s requested bytes counted (cumulative) and, `tallyClassWords` words on, merged.
    @inline(__always) func classCounted(_ cls: Int) -> UnsafeMutablePointer<UInt> {
        (UnsafeMutableRawPointer(self) + MemoryLayout<ProfileTally>.stride + tallySlots * MemoryLayout<TallySlot>.stride)
            .assumingMemoryBound(to: UInt.self) + cls
    }
    @inline(__always) func classMerged(_ cls: Int) -> UnsafeMutablePointer<UInt> { classCounted(cls) + tallyClassWords }
}

extension UnsafeMutablePointer where Pointee == Profiler {
    /// Full mode, a thread with a cache: counts one block of `site` allocated or freed
    /// into the thread's tally (or, when the site's slot counts another site, into
    /// the site's shared counters under the lock), and merges the tally every
    /// `tallyMergeEvents` events and when an allocation may take the heap past its
    /// peak (so the peak, and every site's share of it, is exact for a program whose
    /// other threads have merged; see `merge`).
    @inline(__always)
    func tally(site: UInt32, cls: Int, size: UInt, held: UInt, allocated: Bool,
               tc: UnsafeMutablePointer<ThreadCache>, heap: UnsafeMutablePointer<Heap>) {
        let t = tc.tally
        let i = Int(site) & (tallySlots &- 1)
        let slot = t.slot(i)
        let key = UInt(site) &+ 1
        if slot.pointee.key != key && slot.pointee.key != 0 {
            // The slot counts another site: this event goes to the site's shared
            // counters directly (the site has no counts in this tally, so they stay
            // exact). The heap's total, its classes and the peak test stay with the
            // tally, below.
            countLocked(site: site, size: size, held: held, allocated: allocated)
        } else {
            if slot.pointee.key == 0 {
                slot.pointee.key = key
                t.usedWord(i >> 6).pointee |= UInt(1) << UInt(i & 63)
            }
            if allocated {
                slot.pointee.allocCount &+= 1
                slot.pointee.allocBytes &+= size
                slot.pointee.liveHeld &+= held
            } else {
                slot.pointee.freeCount &+= 1
                slot.pointee.freeBytes &+= size
                slot.pointee.liveHeld &-= held
            }
        }
        t.pointee.live = allocated ? t.pointee.live &+ size : t.pointee.live &- size
        if cls > 0 {
            let c = t.classCounted(cls)
            c.pointee = allocated ? c.pointee &+ size : c.pointee &- size
            t.pointee.classMask |= UInt(1) << UInt(cls)
        }
        t.pointee.events &+= 1
        if t.pointee.events >= tallyMergeEvents {
            mergeOwn(t, heap: heap)
        } else if allocated {
            // The shared total, as of the last merges, plus what this thread has not merged.
            let unmerged = Int(bitPattern: t.pointee.live &- t.pointee.liveMerged)
            let total = Int(bitPattern: swm_load_relaxed(&pointee.liveRequested)) &+ unmerged
            if total > Int(bitPattern: swm_load_relaxed(&pointee.peakRequested)) { mergeOwn(t, heap: heap) }
        }
    }

    /// One block of `site` counted into the shared counters under the lock: out of
    /// line, so the tally's common path keeps its registers.
    @inline(never)
    func countLocked(site: UInt32, size: UInt, held: UInt, allocated: Bool) {
        swm_lock(&pointee.lock)
        count(site: site, size: size, held: held, allocated: allocated)
        swm_unlock(&pointee.lock)
    }

    /// Merges the calling thread's own tally and frees its slots.
    @inline(never)
    func mergeOwn(_ t: UnsafeMutablePointer<ProfileTally>, heap: UnsafeMutablePointer<Heap>) {
        swm_lock(&pointee.lock)
        merge(t, owned: true, heap: heap)
        swm_unlock(&pointee.lock)
    }

    /// Adds what tally `t` counted since its last merge to the shared counters.
    /// `owned`: the caller is `t`'s thread, or that thread no longer runs, so the
    /// slots are freed as well. `checkPeak`: then sees whether the heap is at a new
    /// peak (see below); off while a caller merges every tally, which checks once
    /// they all are. Caller holds `lock`, and holds threadsLock only with `checkPeak` off.
    func merge(_ t: UnsafeMutablePointer<ProfileTally>, owned: Bool, heap: UnsafeMutablePointer<Heap>,
               checkPeak: Bool = true) {
        let sites = pointee.sites.unsafelyUnwrapped
        var w = 0
        while w < tallySlots / 64 {
            var used = swm_load_relaxed(t.usedWord(w))
            if owned { t.usedWord(w).pointee = 0 }
            while used != 0 {
                let slot = t.slot(w &* 64 &+ used.trailingZeroBitCount)
                used &= used &- 1
                let key = swm_load_relaxed(&slot.pointee.key)
                if key == 0 || Int(key) > pointee.siteCount { continue }
                let allocCount = swm_load_relaxed(&slot.pointee.allocCount)
                let allocBytes = swm_load_relaxed(&slot.pointee.allocBytes)
                let freeCount = swm_load_relaxed(&slot.pointee.freeCount)
                let freeBytes = swm_load_relaxed(&slot.pointee.freeBytes)
                let liveHeld = swm_load_relaxed(&slot.pointee.liveHeld)
                let allocs = allocCount &- slot.pointee.mergedAllocCount
                let allocated = allocBytes &- slot.pointee.mergedAllocBytes
                let frees = freeCount &- slot.pointee.mergedFreeCount
                let freed = freeBytes &- slot.pointee.mergedFreeBytes
                let s = sites + Int(key &- 1)
                touch(s)
                s.pointee.allocCount &+= allocs
                s.pointee.allocBytes &+= allocated
                s.pointee.freeCount &+= frees
                s.pointee.liveCount &+= allocs &- frees
                s.pointee.liveBytes &+= allocated &- freed
                s.pointee.liveHeld &+= liveHeld &- slot.pointee.mergedLiveHeld
                if owned {
                    slot.pointee = TallySlot()
                } else {
                    slot.pointee.mergedAllocCount = allocCount
                    slot.pointee.mergedAllocBytes = allocBytes
                    slot.pointee.mergedFreeCount = freeCount
                    slot.pointee.mergedFreeBytes = freeBytes
                    slot.pointee.mergedLiveHeld = liveHeld
                }
            }
            w &+= 1
        }
        let live = swm_load_relaxed(&t.pointee.live)
        pointee.liveRequested &+= live &- t.pointee.liveMerged
        t.pointee.liveMerged = live
        var mask = swm_load_relaxed(&t.pointee.classMask)
        if owned { t.pointee.classMask = 0 }
        if let shared = pointee.classRequested {
            while mask != 0 {
                let cls = mask.trailingZeroBitCount
                mask &= mask &- 1
                let counted = swm_load_relaxed(t.classCounted(cls))
                let c = shared + cls
                swm_store_relaxed(c, swm_load_relaxed(c) &+ (counted &- t.classMerged(cls).pointee))
                t.classMerged(cls).pointee = counted
            }
        }
        // Signed: with several threads the shared total can be below zero for a
        // while (a block freed and merged by one thread, its allocation not yet by
        // another), and such a total is no peak. It can be above the heap's, too: a
        // thread that freed blocks and then waits leaves those frees unmerged while
        // others merge allocations (threads taking turns with one large block each
        // showed a peak of all of them). So a total above the peak is a new peak only
        // once every other thread's tally is merged as well.
        if checkPeak && totalAbovePeak {
            mergeOthers(t, heap: heap)
            if totalAbovePeak { notePeak(heap: heap) }
        }
        if owned {
            let events = t.pointee.events
            t.pointee.events = 0
            noteEvents(events, heap: heap)
        }
    }
}

extension UnsafeMutablePointer where Pointee == Profiler {
    /// Merges every running thread's tally but `t` (as a reporter does, see
    /// `settleProfileTallies`). Caller holds `lock`, not threadsLock.
    @inline(never)
    func mergeOthers(_ t: UnsafeMutablePointer<ProfileTally>, heap: UnsafeMutablePointer<Heap>) {
        swm_lock(&heap.pointee.threadsLock)
        var tc = heap.pointee.threads
        while let c = tc {
            if c.tally != t { merge(c.tally, owned: false, heap: heap, checkPeak: false) }
            tc = c.pointee.next
        }
        swm_unlock(&heap.pointee.threadsLock)
    }
}

extension UnsafeMutablePointer where Pointee == Heap {
    /// Brings the profiler's shared counters up to date with every thread's tally
    /// (full mode): before a report or statistics read them. Takes the profile lock,
    /// then the threads lock; call with no allocator lock held.
    func settleProfileTallies() {
        guard let profiler = pointee.profiler, profiler.countsInTallies else { return }
        let mine = swm_tls_cache_get()?.assumingMemoryBound(to: ThreadCache.self)
        swm_lock(&profiler.pointee.lock)
        swm_lock(&pointee.threadsLock)
        var tc = pointee.threads
        while let t = tc {
            profiler.merge(t.tally, owned: t == mine, heap: self, checkPeak: false)
            tc = t.pointee.next
        }
        swm_unlock(&pointee.threadsLock)
        if profiler.totalAbovePeak { profiler.notePeak(heap: self) }
        swm_unlock(&profiler.pointee.lock)
    }
}
