// An ordinary Swift program (full Swift runtime, Foundation, Dispatch) used by
// run-program-tests.sh. Its output must be identical with and without the
// allocator preloaded. If the preloaded library exported Swift runtime symbols
// (swift_retain, swift_allocObject, ...), they would interpose on the real
// runtime's and this program would crash or misbehave.
import Dispatch
import Foundation

final class Node {
    let value: Int
    var children: [Node] = []
    weak var parent: Node?
    init(_ value: Int) { self.value = value }
}

class Shape {
    func area() -> Double { 0 }
    var name: String { "shape" }
}

final class Rect: Shape {
    let w: Double, h: Double
    init(_ w: Double, _ h: Double) { self.w = w; self.h = h }
    override func area() -> Double { w * h }
    override var name: String { "rect" }
}

final class Circle: Shape {
    let r: Double
    init(_ r: Double) { self.r = r }
    override func area() -> Double { 3.0 * r * r }
    override var name: String { "circle" }
}

struct Record: Codable, Equatable {
    var id: Int
    var title: String
    var tags: [String]
    var scores: [String: Int]
}

func fnv(_ s: String) -> UInt64 {
    var h: UInt64 = 1469598103934665603
    for b in s.utf8 { h = (h ^ UInt64(b)) &* 1099511628211 }
    return h
}

func hex(_ v: UInt64) -> String {
    let s = String(v, radix: 16)
    return String(repeating: "0", count: 16 - s.count) + s
}

// Classes, weak references, and a tree built and torn down.
func treePhase() {
    var all: [Node] = [Node(0)]
    var seed: UInt64 = 7
    for i in 1..<50_000 {
        seed = seed &* 6364136223846793005 &+ 1442695040888963407
        let parent = all[all.count - 1 - Int((seed >> 33) % UInt64(min(all.count, 32)))]
        let n = Node(i)
        n.parent = parent
        parent.children.append(n)
        all.append(n)
    }
    var depth = 0
    var cur: Node? = all.last
    while let c = cur?.parent { depth += 1; cur = c }
    let total = all.reduce(0) { $0 + $1.children.count }
    all.removeAll()
    print("tree: edges=\(total) depth=\(depth)")
}

// Polymorphic objects in arrays.
func shapePhase() {
    var shapes: [Shape] = []
    for i in 0..<100_000 {
        shapes.append(i % 2 == 0 ? Rect(Double(i % 10), 2) : Circle(Double(i % 5)))
    }
    let area = shapes.reduce(0.0) { $0 + $1.area() }
    let names = Dictionary(grouping: shapes, by: { $0.name }).mapValues { $0.count }
    print("shapes: area=\(Int(area)) names=\(names.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" })")
}

// Strings and dictionaries.
func stringPhase() {
    var dict: [String: [Int]] = [:]
    var text = ""
    for i in 0..<100_000 {
        let key = "key-\(i % 5000)-" + String(repeating: "z", count: i % 13)
        dict[key, default: []].append(i)
        if i % 10 == 0 { text += key; text += "," }
    }
    for (i, k) in dict.keys.sorted().enumerated() where i % 4 == 0 { dict.removeValue(forKey: k) }
    let keys = dict.keys.sorted()
    let parts = text.split(separator: ",")
    let joined = parts.reversed().joined(separator: "|")
    let upper = joined.uppercased()
    let words = Set(parts.map(String.init))
    print("strings: dict=\(dict.count) values=\(dict.values.reduce(0) { $0 + $1.count }) " +
          "first=\(keys.first!) text=\(text.count) upper=\(hex(fnv(upper))) unique=\(words.count)")
}

// Foundation: JSON round trip, NSString formatting, Data.
func foundationPhase() throws {
    var records: [Record] = []
    for i in 0..<5_000 {
        records.append(Record(id: i, title: "Record \(i) caf\u{e9}",
                              tags: (0..<(i % 5)).map { "tag\($0)" },
                              scores: ["a": i, "b": i * 2]))
    }
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.sortedKeys]
    let data = try encoder.encode(records)
    let back = try JSONDecoder().decode([Record].self, from: data)
    let formatted = String(format: "%05d|%.3f|%@", 42, 3.14159, "str" as NSString)
    let ns = NSMutableString(capacity: 16)
    for i in 0..<2_000 { ns.append("\(i);") }
    print("foundation: bytes=\(data.count) equal=\(back == records) fmt=\(formatted) ns=\(ns.length) " +
          "hash=\(hex(fnv(String(decoding: data, as: UTF8.self))))")
}

// Results shared between threads, guarded by a lock.
final class Collector: @unchecked Sendable {
    private let lock = NSLock()
    private var results = [Int](repeating: 0, count: 8)
    private var log: [String] = []
    func set(_ i: Int, _ v: Int) { lock.lock(); results[i] = v; lock.unlock() }
    func append(_ s: String) { lock.lock(); log.append(s); lock.unlock() }
    func snapshot() -> ([Int], [String]) { lock.lock(); defer { lock.unlock() }; return (results, log) }
}

// Threads: Foundation Thread and Dispatch, allocating concurrently.
func threadPhase() {
    let collector = Collector()
    let group = DispatchGroup()
    for t in 0..<4 {
        group.enter()
        let thread = Thread {
            var local: [String: String] = [:]
            for i in 0..<20_000 { local["t\(t)-\(i)"] = String(repeating: "v", count: i % 17) }
            collector.set(t, local.values.reduce(0) { $0 + $1.count })
            group.leave()
        }
        thread.start()
    }
    DispatchQueue.concurrentPerform(iterations: 4) { idx in
        var arr: [[Int]] = []
        for i in 0..<5_000 { arr.append(Array(0..<(i % 40))) }
        collector.set(4 + idx, arr.reduce(0) { $0 + $1.count })
    }
    group.wait()

    let outer = DispatchGroup()
    for i in 0..<200 {
        DispatchQueue.global().async(group: outer) {
            collector.append("item-\(i)-" + String(repeating: "q", count: i % 31))
        }
    }
    outer.wait()
    let (results, log) = collector.snapshot()
    print("threads: \(results) log=\(log.count) \(hex(fnv(log.sorted().joined())))")
}

treePhase()
shapePhase()
stringPhase()
do { try foundationPhase() } catch { print("foundation error: \(error)"); exit(1) }
threadPhase()
print("done")
