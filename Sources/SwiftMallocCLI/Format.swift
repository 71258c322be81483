// Number formatting shared by the text, diff and SVG renderers.

import Foundation

enum Format {
    /// `1.5 KiB`, `12.0 MiB`, `512 B`; signed values keep their sign.
    static func bytes(_ value: Int64) -> String {
        let sign = value < 0 ? "-" : ""
        let v = Double(value.magnitude)
        let units = ["KiB", "MiB", "GiB", "TiB"]
        if v < 1024 { return "\(sign)\(value.magnitude) B" }
        // The unit and the precision follow the value as printed: 1,048,575 B
        // is "1.00 MiB", not "1024.0 KiB"; 10,239 B is "10.0 KiB", as 10,240 B.
        func rounded(_ x: Double, _ decimals: Double) -> Double { (x * decimals).rounded() / decimals }
        var scaled = v / 1024
        var unit = 0
        while rounded(scaled, 10) >= 1024 && unit < units.count - 1 {
            scaled /= 1024
            unit += 1
        }
        return sign + String(format: rounded(scaled, 100) < 10 ? "%.2f %@" : "%.1f %@", scaled, units[unit])
    }

    /// `+1.5 KiB` / `-3 B` / `0 B`.
    static func signedBytes(_ value: Int64) -> String {
        value > 0 ? "+" + bytes(value) : bytes(value)
    }

    /// `12,288`.
    static func count(_ value: Int64) -> String {
        let digits = String(value.magnitude)
        var out = ""
        for (i, c) in digits.enumerated() {
            if i > 0 && (digits.count - i) % 3 == 0 { out.append(",") }
            out.append(c)
        }
        return (value < 0 ? "-" : "") + out
    }

    /// `+12,288` / `-5` / `0`.
    static func signedCount(_ value: Int64) -> String {
        value > 0 ? "+" + count(value) : count(value)
    }

    /// `12,288 B`.
    static func exactBytes(_ value: Int64) -> String { count(value) + " B" }

    /// `1.5 KiB (1,536 B)`, or just `512 B` when the two would say the same.
    static func bytesWithExact(_ value: Int64) -> String {
        value.magnitude < 1024 ? bytes(value) : "\(bytes(value)) (\(exactBytes(value)))"
    }

    /// `93.8%`; `-` when the whole is zero.
    static func percent(_ part: Int64, of whole: Int64) -> String {
        guard whole != 0 else { return "-" }
        return String(format: "%.1f%%", Double(part) / Double(whole) * 100)
    }

    /// `1 block` / `3 blocks`.
    static func plural(_ value: Int64, _ noun: String) -> String {
        "\(count(value)) \(noun)\(value.magnitude == 1 ? "" : "s")"
    }

    /// `183 ms`, `2.50 s`, `12 µs`.
    static func duration(ns: Int64) -> String {
        if ns == 0 { return "0 s" }
        let v = Double(ns)
        if v >= 1e9 { return String(format: v >= 1e10 ? "%.1f s" : "%.2f s", v / 1e9) }
        if v >= 1e6 { return String(format: "%.0f ms", v / 1e6) }
        if v >= 1e3 { return String(format: "%.0f µs", v / 1e3) }
        return "\(ns) ns"
    }

    static func padLeft(_ s: String, _ width: Int) -> String {
        s.count >= width ? s : String(repeating: " ", count: width - s.count) + s
    }

    static func padRight(_ s: String, _ width: Int) -> String {
        s.count >= width ? s : s + String(repeating: " ", count: width - s.count)
    }

    /// Renders rows as columns; `rightAligned[i]` for numeric columns.
    static func table(_ header: [String], _ rows: [[String]], rightAligned: [Bool], indent: String = "  ") -> [String] {
        var widths = header.map(\.count)
        for row in rows {
            for (i, cell) in row.enumerated() where i < widths.count { widths[i] = max(widths[i], cell.count) }
        }
        func render(_ row: [String]) -> String {
            var parts: [String] = []
            for (i, cell) in row.enumerated() {
                let last = i == row.count - 1
                if rightAligned[i] {
                    parts.append(padLeft(cell, widths[i]))
                } else {
                    parts.append(last ? cell : padRight(cell, widths[i]))
                }
            }
            return indent + parts.joined(separator: "  ")
        }
        return [render(header)] + rows.map(render)
    }
}

extension Format {
    /// `s` with every character that a terminal would act on rather than show
    /// written as an escape: C0 and C1 controls and DEL as `\xNN` (line breaks
    /// too unless kept), bidirectional overrides and noncharacters as `\u{NNNN}`.
    /// Everything else, and so every string without such characters, is unchanged.
    static func visible(_ s: String, keepingLineBreaks: Bool = false) -> String {
        func needsEscape(_ c: Unicode.Scalar) -> Bool {
            switch c.value {
            case 0x0A: return !keepingLineBreaks
            case 0x00..<0x20, 0x7F...0x9F: return true
            case 0x202A...0x202E, 0x2066...0x2069, 0xFFFE, 0xFFFF: return true
            default: return false
            }
        }
        guard s.unicodeScalars.contains(where: needsEscape) else { return s }
        var out = String.UnicodeScalarView()
        for c in s.unicodeScalars {
            if !needsEscape(c) {
                out.append(c)
            } else if c.value < 0x100 {
                out.append(contentsOf: ("\\x" + String(format: "%02x", c.value)).unicodeScalars)
            } else {
                out.append(contentsOf: ("\\u{" + String(c.value, radix: 16) + "}").unicodeScalars)
            }
        }
        return String(out)
    }
}
