// `swiftmalloc`: runs a program under SwiftMalloc's heap profiler and renders
// the profile files the library writes (docs/PROFILE-FORMAT.md).
//
//   swiftmalloc run [--sample N] [--report PATH] [--depth N] [--top N] -- COMMAND ARGS...
//   swiftmalloc report FILE [--format text|json|collapsed|svg] [--metric M] [--top N] [--output PATH]
//   swiftmalloc diff A B [--top N] [--format text|json]

import ArgumentParser
import Foundation

@main
struct SwiftMallocTool: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "swiftmalloc",
        abstract: "Heap profiler for programs running on SwiftMalloc.",
        discussion: """
            `run` preloads libswiftmalloc.so into a command with profiling on and prints where \
            its memory went when it ends. `report` renders a profile file (text, JSON, folded \
            stacks or an SVG flame graph with a timeline), and `diff` shows what grew between two.
            """,
        subcommands: [RunCommand.self, ReportCommand.self, DiffCommand.self]
    )

    static func main() {
        StandardStreams.claimClosedDescriptors()
        main(nil)
    }
}

/// Report formats of `swiftmalloc report`.
enum OutputFormat: String, CaseIterable, ExpressibleByArgument {
    case text, json, collapsed, svg
}

/// Renders an analyzed profile in one of the report formats.
func renderReport(_ analysis: AnalyzedProfile, format: OutputFormat, metric: Metric, top: Int?,
                  warnings: [String], store: FrameStore, to output: ReportOutput) throws {
    switch format {
    case .text: try output.write(TextReport(analysis: analysis, top: top ?? 10).render(warnings: warnings))
    case .json: try JSONReport.render(analysis, top: top, warnings: warnings, store: store).write(to: output)
    case .collapsed: try output.write(FoldedStacks.render(analysis.table, metric: metric, store: store))
    case .svg: try output.write(SVGReport.render(analysis, metric: metric, store: store))
    }
}

/// Writes `text` to `path`, or to standard output when `path` is nil or "-".
func emit(_ text: String, to path: String?) throws {
    try emit(to: path) { try $0.write(text) }
}

/// Writes what `body` makes to `path`, or to standard output when `path` is
/// nil or "-", as it is made (ReportOutput).
func emit(to path: String?, _ body: (ReportOutput) throws -> Void) throws {
    let output = try ReportOutput.open(path)
    do {
        try body(output)
        try output.finish()
    } catch {
        output.abandon()
        throw error
    }
}

/// One message on stderr, `swiftmalloc: ` first; characters that would act on a
/// terminal are shown escaped (Format.visible), line breaks are kept. A failure
/// to write it is ignored.
func printError(_ message: String) {
    StandardStreams.writeMessage("swiftmalloc: \(Format.visible(message, keepingLineBreaks: true))\n")
}

struct ReportCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "report",
        abstract: "Render a profile file written by libswiftmalloc.so.",
        discussion: """
            Frames are symbolized with addr2line (one process per module); sites with the same \
            function and line in every frame are merged. Formats: text (leaks, top sites, peak, \
            fragmentation, timeline), json (all of it), collapsed (folded stacks, outermost frame \
            first, for flame graph tools), svg (flame graph and timeline in one file).
            """
    )

    @Argument(help: "A profile file (swiftmalloc.<pid>.report), or - for standard input.")
    var file: String

    @Option(help: "Sites shown per ranking (text: 10 by default; json: all by default).")
    var top: Int?

    @Option(help: "Output format: text, json, collapsed or svg.")
    var format: OutputFormat = .text

    @Option(help: "What collapsed and svg output measure: live-bytes (the default), alloc-bytes, alloc-count or peak-bytes.")
    var metric: Metric?

    @Option(name: [.short, .long], help: "Write the output to this file instead of standard output.")
    var output: String?

    @Flag(help: "Do not run addr2line; show frames as module+offset.")
    var noSymbolize = false

    func validate() throws {
        if let top, top < 1 { throw ValidationError("--top must be at least 1") }
    }

    func run() throws {
        let symbolizer = Symbolizer()
        symbolizer.enabled = !noSymbolize
        let analysis = try AnalyzedProfile.load(path: file, symbolizer: symbolizer)
        let warnings = symbolizer.warnings
        if format != .text {
            for w in analysis.profile.warnings + warnings { printError("warning: \(w)") }
        }
        // Options the chosen format has no use for are named, not dropped silently.
        if top != nil, format == .collapsed || format == .svg {
            printError("warning: --top has no effect on \(format.rawValue) output, which has every stack")
        }
        if metric != nil, format == .text || format == .json {
            printError("warning: --metric has no effect on \(format.rawValue) output, which shows every measure")
        }
        try emit(to: output) {
            try renderReport(analysis, format: format, metric: metric ?? .liveBytes, top: top, warnings: warnings,
                             store: symbolizer.store, to: $0)
        }
    }
}
