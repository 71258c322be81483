// A self-contained SVG: a flame graph of one metric over the call stacks
// (outermost frame at the bottom, width = share of the metric), and under it
// the heap's timeline, requested against held bytes.
//
// Everything is drawn statically, so any SVG renderer shows the full picture.
// In a browser a small embedded script adds: hovering a frame shows its name,
// value and share on the details line (a <title> tooltip works everywhere),
// clicking zooms into the frame, "Reset zoom" goes back.

import Foundation

enum SVGReport {
    static let width = 1200.0
    static let margin = 10.0
    static let frameHeight = 16.0
    static let charWidth = 7.0 // Verdana 12px, roughly
    static let minFrameWidth = 0.1

    /// The flame graph's tree, nodes in one array: stacks can be tens of
    /// thousands of frames deep, so nothing here (building, measuring, laying
    /// out, freeing) recurses. A profile can have a million stacks and millions
    /// of nodes: a node is a few words (its name is a label id of the frame
    /// store, its children are found in one table keyed by parent and label),
    /// and only the nodes drawn are sorted and named.
    private struct FlameTree {
        struct Node {
            let label: Int32
            let depth: Int32
            var value: Int64 = 0
            /// The one source location of its frames (displayPath), nil when none
            /// or several (`manyLocations`).
            var location: String?
            var manyLocations = false
            var module: String?
        }

        let store: FrameStore
        /// Index 0 is the root, "all".
        var nodes: [Node]
        /// (parent index << 32 | label id) → child index.
        private var childIndex: [UInt64: Int32] = [:]

        init(store: FrameStore) {
            self.store = store
            nodes = [Node(label: store.labelID("all"), depth: 0)]
        }

        /// The child of `parent` with the label `label`, added when missing.
        mutating func child(of parent: Int, label: Int32) -> Int {
            let key = UInt64(parent) << 32 | UInt64(UInt32(bitPattern: label))
            if let c = childIndex[key] { return Int(c) }
            nodes.append(Node(label: label, depth: nodes[parent].depth + 1))
            childIndex[key] = Int32(nodes.count - 1)
            return nodes.count - 1
        }

        /// Per node, its children (in no order): `children[start[i]..<start[i + 1]]`.
        func childLists() -> (start: [Int], children: [Int32]) {
            var start = [Int](repeating: 0, count: nodes.count + 1)
            for (key, _) in childIndex { start[Int(key >> 32) + 1] += 1 }
            for i in 0..<nodes.count { start[i + 1] += start[i] }
            var fill = start
            var children = [Int32](repeating: 0, count: childIndex.count)
            for (key, c) in childIndex {
                let parent = Int(key >> 32)
                children[fill[parent]] = c
                fill[parent] += 1
            }
            return (start, children)
        }

        func name(_ index: Int) -> String { store.labelStrings[Int(nodes[index].label)] }

        /// Levels of frames drawn, the root's included.
        var levels: Int { 1 + Int(nodes.map(\.depth).max() ?? 0) }
    }

    static func render(_ analysis: AnalyzedProfile, metric: Metric, store: FrameStore) -> String {
        let p = analysis.profile
        var tree = FlameTree(store: store)
        let noStackID = store.labelID(FoldedStacks.noStack), truncatedID = store.labelID(FoldedStacks.truncated)
        for site in analysis.table.sites {
            let value = metric.value(site.stats)
            guard value > 0 else { continue }
            let ids = site.frames.ids
            tree.nodes[0].value += value
            var node = 0
            if ids.isEmpty || site.truncated {
                node = tree.child(of: node, label: ids.isEmpty ? noStackID : truncatedID)
                tree.nodes[node].value += value
            }
            for id in ids.reversed() {
                node = tree.child(of: node, label: store.labelIDs[Int(id)])
                tree.nodes[node].value += value
                if let location = store.displayLocation(id), !tree.nodes[node].manyLocations {
                    if tree.nodes[node].location == nil {
                        tree.nodes[node].location = location
                    } else if tree.nodes[node].location != location {
                        tree.nodes[node].location = nil
                        tree.nodes[node].manyLocations = true
                    }
                }
                if tree.nodes[node].module == nil, let m = store.moduleName(id) {
                    tree.nodes[node].module = m
                }
            }
        }
        let rootValue = tree.nodes[0].value

        let levels = rootValue > 0 ? tree.levels : 1
        let flameTop = 72.0
        let flameBottom = flameTop + Double(levels) * frameHeight
        let detailsY = flameBottom + 20
        let chartTop = detailsY + 30
        let chartHeight = 260.0
        let height = chartTop + chartHeight + 50

        var svg = """
        <?xml version="1.0" encoding="UTF-8" standalone="no"?>
        <svg version="1.1" xmlns="http://www.w3.org/2000/svg" width="\(num(width))" height="\(num(height))" \
        viewBox="0 0 \(num(width)) \(num(height))" font-family="Verdana, DejaVu Sans, sans-serif" font-size="12">
        <style>
        g.f { cursor: pointer; }
        g.f:hover rect { stroke: #000; stroke-width: 0.6; }
        #reset { cursor: pointer; }
        </style>
        <script type="text/ecmascript"><![CDATA[\(script(flameTop: flameTop))]]></script>
        <rect x="0" y="0" width="\(num(width))" height="\(num(height))" fill="#ffffff"/>

        """

        // Titles.
        let total = metric.format(rootValue)
        svg += text(width / 2, 24, "SwiftMalloc heap profile: \(metric.title)", size: 17, anchor: "middle", weight: "bold")
        var subtitle = p.command.map { "\($0) — " } ?? ""
        subtitle += p.pid.map { "pid \($0) — " } ?? ""
        subtitle += "total \(total)"
        if case .sampled(let mean) = p.mode { subtitle += " — sampled every \(Format.bytes(mean)) on average (estimates)" }
        svg += text(width / 2, 44, subtitle, size: 12, anchor: "middle", fill: "#555")
        svg += "<text id=\"reset\" x=\"\(num(margin))\" y=\"24\" opacity=\"0\" onclick=\"unzoom()\">Reset zoom</text>\n"

        // The flame graph.
        svg += "<g id=\"flame\">\n"
        if rootValue == 0 {
            svg += text(width / 2, flameTop + frameHeight - 4, "no allocations with non-zero \(metric.rawValue)",
                        size: 12, anchor: "middle", fill: "#a00")
        } else {
            svg += layout(tree, bottom: flameBottom, metric: metric)
        }
        svg += "</g>\n"
        svg += "<text id=\"details\" x=\"\(num(margin))\" y=\"\(num(detailsY))\" fill=\"#333\"> </text>\n"

        svg += timeline(p, top: chartTop, height: chartHeight)
        svg += "</svg>\n"
        return svg
    }

    // MARK: Flame graph

    /// Every frame wide enough to see, parents before their children, children
    /// in name order; an explicit stack instead of recursion.
    private static func layout(_ tree: FlameTree, bottom: Double, metric: Metric) -> String {
        let total = tree.nodes[0].value
        let plotWidth = width - 2 * margin
        let (start, children) = tree.childLists()
        var out = ""
        // (node, left edge as a share of the whole)
        var pending: [(Int, Double)] = [(0, 0)]
        while let (index, x) = pending.popLast() {
            let node = tree.nodes[index]
            let depth = Int(node.depth)
            let fraction = Double(node.value) / Double(total)
            let w = fraction * plotWidth
            // A child is never wider than its parent: nothing under a hidden frame shows.
            guard w >= minFrameWidth else { continue }
            let name = tree.name(index)
            let px = margin + x * plotWidth
            let y = bottom - Double(depth + 1) * frameHeight
            let share = Format.percent(node.value, of: total)
            var tip = name
            if let location = node.location { tip += " — \(location)" }
            else if !node.manyLocations, let m = node.module, depth > 0 { tip += " — \(m)" }
            let detail = "\(metric.format(node.value)), \(share)"
            out += "<g class=\"f\" data-x=\"\(String(format: "%.8f", x))\" data-w=\"\(String(format: "%.8f", fraction))\" "
                + "data-d=\"\(depth)\" data-n=\"\(escape(name))\" data-i=\"\(escape(tip + " — " + detail))\" "
                + "onmouseover=\"show(this)\" onmouseout=\"hide()\" onclick=\"zoom(this)\">"
            out += "<title>\(escape(tip))\n\(escape(detail))</title>"
            out += "<rect x=\"\(num(px))\" y=\"\(num(y))\" width=\"\(num(w))\" height=\"\(num(frameHeight - 1))\" rx=\"2\" "
                + "fill=\"\(color(name, depth: depth))\"/>"
            out += "<text x=\"\(num(px + 3))\" y=\"\(num(y + frameHeight - 4.5))\">\(escape(fit(name, width: w)))</text>"
            out += "</g>\n"

            var cx = x
            var placed: [(Int, Double)] = []
            let sortedChildren = children[start[index]..<start[index + 1]].map { (Int($0), tree.name(Int($0))) }
                .sorted { $0.1 < $1.1 }
            for (child, _) in sortedChildren {
                placed.append((child, cx))
                cx += Double(tree.nodes[child].value) / Double(total)
            }
            pending += placed.reversed()
        }
        return out
    }

    /// The name cut to the frame's width, as the script does after a zoom.
    private static func fit(_ name: String, width: Double) -> String {
        let chars = Int((width - 6) / charWidth)
        if chars < 3 { return "" }
        if name.count <= chars { return name }
        return String(name.prefix(chars - 2)) + ".."
    }

    /// Warm colours, stable per name; grey for the root and for allocations without a stack.
    private static func color(_ name: String, depth: Int) -> String {
        if depth == 0 || name == FoldedStacks.noStack || name == FoldedStacks.truncated { return "rgb(190,190,190)" }
        var h: UInt64 = 0xcbf29ce484222325
        for b in name.utf8 {
            h ^= UInt64(b)
            h = h &* 0x100000001b3
        }
        let v1 = Double(h & 0xff) / 255, v2 = Double((h >> 8) & 0xff) / 255, v3 = Double((h >> 16) & 0xff) / 255
        return "rgb(\(205 + Int(50 * v3)),\(Int(40 + 190 * v1)),\(Int(55 * v2)))"
    }

    // MARK: Timeline

    private static func timeline(_ p: Profile, top: Double, height: Double) -> String {
        let left = 90.0, right = width - 30
        let plotTop = top + 28, plotBottom = top + height
        var out = "<g id=\"timeline\">\n"
        out += text(margin, top + 4, "Heap over time: requested against held bytes", size: 14, weight: "bold")
        // Legend.
        out += "<rect x=\"\(num(right - 330))\" y=\"\(num(top - 6))\" width=\"14\" height=\"4\" fill=\"#1f77b4\"/>"
        out += text(right - 310, top, "requested (live, by the program)", size: 11)
        out += "<rect x=\"\(num(right - 110))\" y=\"\(num(top - 6))\" width=\"14\" height=\"4\" fill=\"#e07b00\"/>"
        out += text(right - 90, top, "held (allocator)", size: 11) + "\n"
        out += "<rect x=\"\(num(left))\" y=\"\(num(plotTop))\" width=\"\(num(right - left))\" "
            + "height=\"\(num(plotBottom - plotTop))\" fill=\"#fafafa\" stroke=\"#999\" stroke-width=\"1\"/>\n"

        let samples = p.samples
        guard !samples.isEmpty else {
            out += text((left + right) / 2, (plotTop + plotBottom) / 2, "no timeline samples in this profile",
                        size: 12, anchor: "middle", fill: "#a00")
            return out + "</g>\n"
        }
        // From the library's start to the report (or the last sample).
        let t0 = min(0, samples.first!.elapsedNs)
        let t1 = max(samples.last!.elapsedNs, p.elapsedNs ?? 0, t0 + 1)
        let maxBytes = max(1, samples.map { max($0.heldBytes, $0.requestedBytes) }.max()!)
        let yStep = niceByteStep(maxBytes)
        let yMax = max(yStep, ((maxBytes + yStep - 1) / yStep) * yStep)
        func sx(_ t: Int64) -> Double { left + Double(t - t0) / Double(t1 - t0) * (right - left) }
        func sy(_ b: Int64) -> Double { plotBottom - Double(b) / Double(yMax) * (plotBottom - plotTop) }

        // Axes: horizontal grid with byte labels, vertical ticks with times.
        var b: Int64 = 0
        while b <= yMax {
            let y = sy(b)
            out += "<line x1=\"\(num(left))\" y1=\"\(num(y))\" x2=\"\(num(right))\" y2=\"\(num(y))\" stroke=\"#ddd\"/>"
            out += text(left - 6, y + 4, Format.bytes(b), size: 10, anchor: "end") + "\n"
            b += yStep
        }
        let tStep = niceStep(t1 - t0)
        var t = (t0 + tStep - 1) / tStep * tStep
        while t <= t1 {
            let x = sx(t)
            out += "<line x1=\"\(num(x))\" y1=\"\(num(plotBottom))\" x2=\"\(num(x))\" y2=\"\(num(plotBottom + 5))\" stroke=\"#666\"/>"
            out += text(x, plotBottom + 18, Format.duration(ns: t), size: 10, anchor: "middle") + "\n"
            t += tStep
        }
        out += text((left + right) / 2, plotBottom + 36, "time since the library was loaded", size: 11,
                    anchor: "middle", fill: "#555")

        // The two series, each an area with a line on top.
        for (values, colour) in [(samples.map(\.heldBytes), "#e07b00"), (samples.map(\.requestedBytes), "#1f77b4")] {
            var points = ""
            for (s, v) in zip(samples, values) { points += "\(num(sx(s.elapsedNs))),\(num(sy(v))) " }
            if samples.count == 1 { points += "\(num(right)),\(num(sy(values[0]))) " }
            let lastX = samples.count == 1 ? right : sx(samples.last!.elapsedNs)
            // The area starts under the first sample: nothing is known before it.
            out += "<polygon points=\"\(num(sx(samples[0].elapsedNs))),\(num(plotBottom)) \(points)\(num(lastX)),\(num(plotBottom))\" "
                + "fill=\"\(colour)\" fill-opacity=\"0.15\" stroke=\"none\"/>\n"
            out += "<polyline points=\"\(points)\" fill=\"none\" stroke=\"\(colour)\" stroke-width=\"2\"/>\n"
        }
        return out + "</g>\n"
    }

    /// 1, 2 or 5 times a power of ten, about a fifth of `range`.
    private static func niceStep(_ range: Int64) -> Int64 {
        let raw = max(1, Double(range) / 5)
        let p = pow(10, floor(log10(raw)))
        let m = raw / p
        let f: Double = m <= 1 ? 1 : m <= 2 ? 2 : m <= 5 ? 5 : 10
        return max(1, Int64(f * p))
    }

    /// A step in whole units of B, KiB, MiB or GiB, about a quarter of `maxBytes`.
    private static func niceByteStep(_ maxBytes: Int64) -> Int64 {
        var unit: Int64 = 1
        while unit < (1 << 40) && maxBytes / unit >= 1024 { unit *= 1024 }
        let raw = max(1, Double(maxBytes) / Double(unit) / 4)
        let p = pow(10, floor(log10(raw)))
        let m = raw / p
        let f: Double = m <= 1 ? 1 : m <= 2 ? 2 : m <= 5 ? 5 : 10
        return max(1, Int64(f * p) * unit)
    }

    // MARK: Helpers

    private static func text(_ x: Double, _ y: Double, _ s: String, size: Double, anchor: String = "start",
                             fill: String = "#000", weight: String = "normal") -> String {
        "<text x=\"\(num(x))\" y=\"\(num(y))\" font-size=\"\(num(size))\" text-anchor=\"\(anchor)\" "
            + "fill=\"\(fill)\" font-weight=\"\(weight)\">\(escape(s))</text>"
    }

    static func num(_ v: Double) -> String {
        if v == v.rounded() && abs(v) < 1e15 { return String(Int64(v)) }
        return String(format: "%.2f", v)
    }

    static func escape(_ s: String) -> String {
        var out = ""
        out.reserveCapacity(s.count)
        for c in s.unicodeScalars {
            switch c {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            case "'": out += "&apos;"
            case "\n": out += "&#10;"
            default:
                // XML 1.0 allows tab, line feed, carriage return, and U+0020 up,
                // less U+FFFE and U+FFFF (Swift strings hold no surrogates): the
                // other controls become spaces, the two non-characters U+FFFD.
                if c.value < 0x20 && c != "\t" && c != "\r" {
                    out += " "
                } else if c.value == 0xFFFE || c.value == 0xFFFF {
                    out.unicodeScalars.append("\u{FFFD}")
                } else {
                    out.unicodeScalars.append(c)
                }
            }
        }
        return out
    }

    private static func script(flameTop: Double) -> String {
        """

        var W = \(num(width)), M = \(num(margin)), CW = \(num(charWidth));
        function attr(e, n) { return parseFloat(e.getAttribute(n)); }
        function fit(g, w) {
          var t = g.getElementsByTagName('text')[0], n = g.getAttribute('data-n');
          var c = Math.floor((w - 6) / CW);
          t.textContent = c < 3 ? '' : (n.length <= c ? n : n.substring(0, c - 2) + '..');
        }
        function place(g, x, w) {
          var r = g.getElementsByTagName('rect')[0], t = g.getElementsByTagName('text')[0];
          r.setAttribute('x', x); r.setAttribute('width', w); t.setAttribute('x', x + 3); fit(g, w);
        }
        function show(g) { document.getElementById('details').textContent = g.getAttribute('data-i'); }
        function hide() { document.getElementById('details').textContent = ' '; }
        function frames() { return document.querySelectorAll('g.f'); }
        function zoom(g) {
          var zx = attr(g, 'data-x'), zw = attr(g, 'data-w'), zd = attr(g, 'data-d'), e = 1e-9;
          var scale = (W - 2 * M) / zw, fs = frames();
          for (var i = 0; i < fs.length; i++) {
            var f = fs[i], x = attr(f, 'data-x'), w = attr(f, 'data-w'), d = attr(f, 'data-d');
            if (d >= zd && x >= zx - e && x + w <= zx + zw + e) {
              f.style.display = ''; f.style.opacity = ''; place(f, M + (x - zx) * scale, w * scale);
            } else if (d < zd && x <= zx + e && x + w >= zx + zw - e) {
              f.style.display = ''; f.style.opacity = '0.6'; place(f, M, W - 2 * M);
            } else {
              f.style.display = 'none';
            }
          }
          document.getElementById('reset').setAttribute('opacity', '1');
        }
        function unzoom() {
          var fs = frames();
          for (var i = 0; i < fs.length; i++) {
            var f = fs[i];
            f.style.display = ''; f.style.opacity = '';
            place(f, M + attr(f, 'data-x') * (W - 2 * M), attr(f, 'data-w') * (W - 2 * M));
          }
          document.getElementById('reset').setAttribute('opacity', '0');
        }

        """
    }
}
