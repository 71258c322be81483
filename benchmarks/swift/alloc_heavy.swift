// alloc_heavy: an ordinary Swift program (standard library only) whose time
// goes into allocation: class instances, arrays, strings and dictionaries.
//
//     alloc_heavy [SCALE]
//
// Built with `swiftc -O`. Deterministic: it prints one checksum line, the same
// under every allocator.

final class TreeNode {
    let left: TreeNode?
    let right: TreeNode?
    let value: Int
    init(_ left: TreeNode?, _ right: TreeNode?, _ value: Int) {
        self.left = left
        self.right = right
        self.value = value
    }
    func check() -> Int {
        var n = value & 1
        if let l = left { n &+= l.check() }
        if let r = right { n &+= r.check() }
        return n &+ 1
    }
}

func makeTree(_ depth: Int, _ value: Int) -> TreeNode {
    if depth == 0 { return TreeNode(nil, nil, value) }
    return TreeNode(makeTree(depth - 1, value &* 2), makeTree(depth - 1, value &* 2 &+ 1), value)
}

class Shape {
    func area() -> Double { 0 }
}

final class Rect: Shape {
    let w: Double, h: Double
    init(_ w: Double, _ h: Double) { self.w = w; self.h = h }
    override func area() -> Double { w * h }
}

final class Circle: Shape {
    let r: Double
    init(_ r: Double) { self.r = r }
    override func area() -> Double { 3.0 * r * r }
}

struct Rng {
    var s: UInt64
    mutating func next() -> UInt64 {
        s ^= s >> 12
        s ^= s << 25
        s ^= s >> 27
        return s &* 0x2545F4914F6CDD1D
    }
    mutating func below(_ n: Int) -> Int { Int(next() % UInt64(n)) }
}

let words = ["alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta",
             "iota", "kappa", "lambda", "mu", "nu", "xi", "omicron", "pi"]

/// Binary trees: many short-lived small objects, and a long-lived tree.
func trees(_ scale: Double) -> Int {
    let longLived = makeTree(14, 1)
    var sum = 0
    let iterations = max(1, Int(180.0 * scale))
    for i in 0..<iterations {
        sum &+= makeTree(12, i).check()
    }
    return sum &+ longLived.check()
}

/// Class hierarchy in arrays: append, map, filter, sort.
func shapes(_ scale: Double, _ rng: inout Rng) -> Int {
    var total = 0.0
    let rounds = max(1, Int(120.0 * scale))
    for _ in 0..<rounds {
        var list: [Shape] = []
        for _ in 0..<5000 {
            if rng.below(2) == 0 {
                list.append(Rect(Double(rng.below(100)), Double(rng.below(100))))
            } else {
                list.append(Circle(Double(rng.below(50))))
            }
        }
        let areas = list.map { $0.area() }.filter { $0 > 10 }.sorted()
        total += areas.count > 0 ? areas[areas.count / 2] : 0
    }
    return Int(total)
}

/// Strings and dictionaries: build, split, count, join.
func text(_ scale: Double, _ rng: inout Rng) -> Int {
    var counts: [String: Int] = [:]
    var index: [Int: [String]] = [:]
    var checksum = 0
    let lines = max(10, Int(180000.0 * scale))
    for i in 0..<lines {
        var parts: [String] = []
        for _ in 0..<(4 + rng.below(8)) {
            parts.append(words[rng.below(words.count)] + String(rng.below(1000)))
        }
        let line = parts.joined(separator: " ")
        for w in line.split(separator: " ") {
            counts[String(w), default: 0] += 1
        }
        index[i % 4096, default: []].append("\(i):\(line.count)")
        if i % 4096 == 4095 { index.removeAll(keepingCapacity: false) }
        checksum &+= line.utf8.count
    }
    let top = counts.sorted { $0.value != $1.value ? $0.value > $1.value : $0.key < $1.key }.prefix(10)
    for (k, v) in top { checksum &+= k.count &* v }
    return checksum &+ counts.count
}

/// Arrays of arrays that grow and are discarded.
func arrays(_ scale: Double, _ rng: inout Rng) -> Int {
    var sum = 0
    let rounds = max(1, Int(900.0 * scale))
    for _ in 0..<rounds {
        var rows: [[Int]] = []
        for _ in 0..<200 {
            var row: [Int] = []
            for _ in 0..<(rng.below(200)) { row.append(rng.below(1000)) }
            rows.append(row)
        }
        let flat = rows.flatMap { $0 }
        var set = Set<Int>()
        for v in flat where v % 3 == 0 { set.insert(v) }
        sum &+= flat.count &+ set.count
    }
    return sum
}

var scale = 1.0
if CommandLine.arguments.count > 1, let s = Double(CommandLine.arguments[1]), s > 0 { scale = s }
var rng = Rng(s: 0x9E3779B97F4A7C15)
let a = trees(scale)
let b = shapes(scale, &rng)
let c = text(scale, &rng)
let d = arrays(scale, &rng)
print("checksum=\(a &+ b &+ c &+ d)")
