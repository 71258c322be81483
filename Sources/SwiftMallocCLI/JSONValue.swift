// A small JSON value and writer. Foundation's JSONSerialization needs minutes
// and gigabytes for a profile of a large program (tens of thousands of sites
// with dozens of frames each); this writes the same document in a fraction of
// that. Keys keep the order given; containers that hold only scalars (a
// frame, a counter set) are written on one line, the rest indented.

enum JSONValue {
    case null
    case bool(Bool)
    case int(Int64)
    case double(Double)
    case string(String)
    case array([JSONValue])
    case object([(String, JSONValue)])
    /// An array whose items are made one at a time as it is written, so that
    /// an array of a million sites is never held whole; `containers`: whether
    /// its items are arrays or objects (which decides its layout).
    case lazyArray(count: Int, containers: Bool, item: (Int) -> JSONValue)
    /// Text already serialized (a value made once and written many times);
    /// `container`: whether it is an array or an object.
    case raw(String, container: Bool)

    init(_ v: Int64) { self = .int(v) }
    init(_ v: Int) { self = .int(Int64(v)) }
    init(_ v: String?) { self = v.map(JSONValue.string) ?? .null }
    init(_ v: Int64?) { self = v.map(JSONValue.int) ?? .null }
    init(_ v: Int?) { self = v.map { .int(Int64($0)) } ?? .null }

    private var isContainer: Bool {
        switch self {
        case .array, .object: return true
        case .lazyArray: return true
        case .raw(_, let container): return container
        default: return false
        }
    }

    /// The document as text, ending with a newline.
    func serialized() -> String {
        var out = ""
        // Without a flush nothing is written out, and nothing throws.
        try! write(into: &out, indent: 0, flush: nil)
        out += "\n"
        return out
    }

    /// The value as text with no newline after it (one line when it holds
    /// no containers).
    func text() -> String {
        var out = ""
        try! write(into: &out, indent: 0, flush: nil)
        return out
    }

    /// Writes the document, ending with a newline, as it is made: the text
    /// goes out every megabyte or so.
    func write(to output: ReportOutput) throws {
        var out = ""
        out.reserveCapacity(ReportOutput.chunk + (1 << 16))
        try write(into: &out, indent: 0) { text in
            guard text.utf8.count >= ReportOutput.chunk else { return }
            try output.write(text)
            text.removeAll(keepingCapacity: true)
        }
        out += "\n"
        try output.write(out)
    }

    private func write(into out: inout String, indent: Int, flush: ((inout String) throws -> Void)?) throws {
        switch self {
        case .null: out += "null"
        case .bool(let b): out += b ? "true" : "false"
        case .int(let i): out += String(i)
        case .double(let d): out += d.isFinite ? "\(d)" : "null"
        case .string(let s): JSONValue.writeString(s, into: &out)
        case .raw(let text, _): out += text
        case .lazyArray(let count, let containers, let item):
            if count == 0 { out += "[]"; return }
            if !containers {
                out += "["
                for i in 0..<count {
                    if i > 0 { out += ", " }
                    try item(i).write(into: &out, indent: indent, flush: flush)
                }
                out += "]"
                return
            }
            let pad = String(repeating: "  ", count: indent + 1)
            out += "[\n"
            for i in 0..<count {
                out += pad
                try item(i).write(into: &out, indent: indent + 1, flush: flush)
                out += i == count - 1 ? "\n" : ",\n"
                try flush?(&out)
            }
            out += String(repeating: "  ", count: indent) + "]"
        case .array(let items):
            if items.isEmpty { out += "[]"; return }
            if !items.contains(where: \.isContainer) {
                out += "["
                for (i, item) in items.enumerated() {
                    if i > 0 { out += ", " }
                    try item.write(into: &out, indent: indent, flush: flush)
                }
                out += "]"
                return
            }
            let pad = String(repeating: "  ", count: indent + 1)
            out += "[\n"
            for (i, item) in items.enumerated() {
                out += pad
                try item.write(into: &out, indent: indent + 1, flush: flush)
                out += i == items.count - 1 ? "\n" : ",\n"
            }
            out += String(repeating: "  ", count: indent) + "]"
        case .object(let members):
            if members.isEmpty { out += "{}"; return }
            if !members.contains(where: { $0.1.isContainer }) {
                out += "{"
                for (i, (key, value)) in members.enumerated() {
                    if i > 0 { out += ", " }
                    JSONValue.writeString(key, into: &out)
                    out += ": "
                    try value.write(into: &out, indent: indent, flush: flush)
                }
                out += "}"
                return
            }
            let pad = String(repeating: "  ", count: indent + 1)
            out += "{\n"
            for (i, (key, value)) in members.enumerated() {
                out += pad
                JSONValue.writeString(key, into: &out)
                out += ": "
                try value.write(into: &out, indent: indent + 1, flush: flush)
                out += i == members.count - 1 ? "\n" : ",\n"
            }
            out += String(repeating: "  ", count: indent) + "}"
        }
    }

    private static func writeString(_ s: String, into out: inout String) {
        // Most strings (names, paths) need no escape: written whole.
        if !s.utf8.contains(where: { $0 < 0x20 || $0 == UInt8(ascii: "\"") || $0 == UInt8(ascii: "\\") }) {
            out += "\""
            out += s
            out += "\""
            return
        }
        out += "\""
        for c in s.unicodeScalars {
            switch c {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            default:
                if c.value < 0x20 {
                    let hex = String(c.value, radix: 16)
                    out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
                } else {
                    out.unicodeScalars.append(c)
                }
            }
        }
        out += "\""
    }
}
