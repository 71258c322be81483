// `swiftmalloc run -- COMMAND ARGS...`: runs a command with libswiftmalloc.so
// preloaded and profiling switched on, passes its standard streams through,
// prints the text report on stderr when it ends and exits with its status.

import ArgumentParser
import Foundation

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// The child to which signals sent to this process are passed on.
nonisolated(unsafe) private var forwardSignalsTo: pid_t = 0

/// Passes SIGTERM and SIGHUP on to the command, and SIGINT and SIGQUIT when a
/// process sent them to this one (kill, sigqueue: si_code ≤ 0). The terminal
/// sends Ctrl-C and Ctrl-\ to the whole foreground process group (si_code
/// SI_KERNEL), the command included: those are not sent a second time.
private let forwardSignal: @convention(c) (Int32, UnsafeMutablePointer<siginfo_t>?, UnsafeMutableRawPointer?) -> Void = {
    signal, info, _ in
    guard forwardSignalsTo > 0 else { return }
    if signal == SIGINT || signal == SIGQUIT {
        guard let info, info.pointee.si_code <= 0 else { return }
    }
    kill(forwardSignalsTo, signal)
}

struct RunCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run",
        abstract: "Run a command under the heap profiler and print its report when it ends.",
        discussion: """
            The command runs with LD_PRELOAD=libswiftmalloc.so and SWIFTMALLOC_PROFILE=1 \
            (or SWIFTMALLOC_PROFILE_SAMPLE=N with --sample). Its standard streams are its own; \
            the report goes to stderr after it exits, and swiftmalloc exits with its status \
            (or dies of the signal that killed it). \
            The library is found through SWIFTMALLOC_LIB, else next to this executable, else in \
            ../lib relative to it. Each process writes its own profile (%p in the path is its \
            pid); the one of the command's own process is shown, the others are listed.
            """
    )

    @Option(help: "Sample one allocation per N bytes allocated on average instead of recording all.")
    var sample: Int?

    @Option(help: "Where each process writes its profile; %p becomes the pid (default: swiftmalloc.%p.report).")
    var report: String?

    @Option(help: "Maximum frames recorded per stack, 1 to \(RecorderLimits.maxDepth) (default \(RecorderLimits.defaultDepth)).")
    var depth: Int?

    @Option(help: ArgumentHelp("Also rewrite each profile every N seconds while the command runs.",
                               discussion: "The file is replaced whole, so `swiftmalloc report FILE` can read it at any time."))
    var interval: Int?

    @Option(help: "Sites shown per ranking in the report.")
    var top: Int = 10

    @Flag(help: "Do not print the report; only write the profile file.")
    var quiet = false

    @Argument(parsing: .captureForPassthrough, help: "The command to run and its arguments (after --).")
    var command: [String] = []

    private var commandLine: [String] { command.first == "--" ? Array(command.dropFirst()) : command }

    func validate() throws {
        // The passthrough argument captures a leading --help too.
        if let first = command.first, first == "--help" || first == "-h" {
            throw CleanExit.helpRequest(self)
        }
        if commandLine.isEmpty {
            throw ValidationError("no command given: swiftmalloc run [options] -- COMMAND [ARGS...]")
        }
        if let sample, sample < 1 { throw ValidationError("--sample must be at least 1 (bytes)") }
        if let depth, depth < 1 { throw ValidationError("--depth must be at least 1") }
        if let depth, depth > RecorderLimits.maxDepth {
            throw ValidationError("--depth must be at most \(RecorderLimits.maxDepth), the most frames the library records")
        }
        if let interval, interval < 1 { throw ValidationError("--interval must be at least 1 (second)") }
        if top < 1 { throw ValidationError("--top must be at least 1") }
        if let report, report.isEmpty || report.hasSuffix("/") {
            throw ValidationError("--report must name a file (with %p for the process id), not '\(report)'")
        }
    }

    func run() throws {
        // This process's own messages failing (stderr closed or a broken pipe)
        // must not end it before the command's status is passed on.
        signal(SIGPIPE, SIG_IGN)
        let library = try RunCommand.findLibrary()
        let cwd = FileManager.default.currentDirectoryPath
        var template = report ?? "swiftmalloc.%p.report"
        if !template.hasPrefix("/") { template = (cwd as NSString).appendingPathComponent(template) }
        // The library keeps the path in fixed buffers (at most 190 bytes, 4 %p).
        if template.utf8.count > 190 || template.components(separatedBy: "%p").count - 1 > 4 {
            throw ProfileError("the profile path \(template) is longer than 190 bytes (or has more than 4 %p): "
                + "choose a shorter --report, or run in a directory with a shorter path")
        }
        let reportDirectory = (template as NSString).deletingLastPathComponent
        var isDirectory: ObjCBool = false
        if FileManager.default.fileExists(atPath: template, isDirectory: &isDirectory), isDirectory.boolValue {
            throw ProfileError("--report names a directory, \(template): give a file name (with %p for the process id)")
        }
        guard FileManager.default.fileExists(atPath: reportDirectory, isDirectory: &isDirectory), isDirectory.boolValue
        else {
            throw ProfileError("the directory for the profiles, \(reportDirectory), does not exist")
        }

        var environment = ProcessInfo.processInfo.environment
        if let existing = environment["LD_PRELOAD"], !existing.isEmpty {
            environment["LD_PRELOAD"] = existing + ":" + library
        } else {
            environment["LD_PRELOAD"] = library
        }
        if let sample {
            environment["SWIFTMALLOC_PROFILE_SAMPLE"] = String(sample)
            environment.removeValue(forKey: "SWIFTMALLOC_PROFILE")
        } else {
            environment["SWIFTMALLOC_PROFILE"] = "1"
            environment.removeValue(forKey: "SWIFTMALLOC_PROFILE_SAMPLE")
        }
        if let depth { environment["SWIFTMALLOC_PROFILE_DEPTH"] = String(depth) }
        if let interval { environment["SWIFTMALLOC_REPORT_INTERVAL"] = String(interval) }
        environment["SWIFTMALLOC_REPORT"] = template
        // This command prints the report itself; the library's one-line summary would repeat it.
        environment["SWIFTMALLOC_PROFILE_QUIET"] = "1"

        let before = ProfileSnapshot(template: template)
        let pid = try RunCommand.spawn(commandLine, environment: environment)
        guard let status = RunCommand.wait(for: pid) else { throw ExitCode(1) }

        if !quiet {
            showReport(written: before.written(), template: template, pid: pid, status: status, library: library)
        }
        switch status {
        case .exited(let code):
            throw ExitCode(code)
        case .signaled(let sig):
            // Die the same way, so that a shell or a parent's waitpid sees the command
            // as killed by that signal; with no core file of this tool's own for the
            // signals that dump core (as timeout(1) does). A signal whose default
            // action does not end a process leaves the exit status below.
            var noCore = rlimit(rlim_cur: 0, rlim_max: 0)
            _ = getrlimit(__rlimit_resource_t(RLIMIT_CORE.rawValue), &noCore)
            noCore.rlim_cur = 0
            _ = setrlimit(__rlimit_resource_t(RLIMIT_CORE.rawValue), &noCore)
            signal(sig, SIG_DFL)
            var set = sigset_t()
            sigemptyset(&set)
            sigaddset(&set, sig)
            sigprocmask(SIG_UNBLOCK, &set, nil)
            kill(getpid(), sig)
            throw ExitCode(128 + sig)
        }
    }

    // MARK: Finding the library

    static func findLibrary() throws -> String {
        let name = "libswiftmalloc.so"
        if let fromEnvironment = ProcessInfo.processInfo.environment["SWIFTMALLOC_LIB"], !fromEnvironment.isEmpty {
            guard FileManager.default.fileExists(atPath: fromEnvironment) else {
                throw ProfileError("SWIFTMALLOC_LIB is set to \(fromEnvironment), which does not exist")
            }
            guard let handle = RegularFile.open(fromEnvironment) else {
                throw ProfileError("SWIFTMALLOC_LIB is set to \(fromEnvironment), which is not a readable regular file")
            }
            guard isELF(handle) else {
                throw ProfileError("SWIFTMALLOC_LIB is set to \(fromEnvironment), which is not an ELF shared library")
            }
            return absolute(fromEnvironment)
        }
        // The directory of this executable, as invoked and with links resolved:
        // .build/release is a link to .build/<triple>/release.
        var directories: [String] = []
        let invoked = CommandLine.arguments[0]
        if invoked.contains("/") { directories.append(parentDirectory(absolute(invoked))) }
        if let resolved = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe") {
            let dir = parentDirectory(resolved)
            if !directories.contains(dir) { directories.append(dir) }
        }
        // Each directory with its ../lib before the next: an executable linked into
        // an install's bin/ takes that install's library, not its build folder's.
        var candidates: [String] = []
        for dir in directories {
            candidates.append("\(dir)/\(name)")
            let parent = parentDirectory(dir)
            candidates.append("\(parent)/lib/\(name)")
            #if arch(x86_64)
            candidates.append("\(parent)/lib/x86_64-linux-gnu/\(name)")
            #elseif arch(arm64)
            candidates.append("\(parent)/lib/aarch64-linux-gnu/\(name)")
            #endif
            candidates.append("\(parent)/lib64/\(name)")
        }
        for candidate in candidates {
            if let handle = RegularFile.open(candidate), isELF(handle) { return absolute(candidate) }
        }
        throw ProfileError("""
            cannot find \(name). Looked in:
            \(candidates.map { "  " + $0 }.joined(separator: "\n"))
            Set SWIFTMALLOC_LIB to the library's path (swift build -c release builds .build/release/\(name)).
            """)
    }

    /// Whether the file starts as an ELF object does ("\u{7f}ELF").
    private static func isELF(_ handle: FileHandle) -> Bool {
        (try? handle.read(upToCount: 4)).map { Array($0) == [0x7f, 0x45, 0x4c, 0x46] } ?? false
    }

    private static func parentDirectory(_ path: String) -> String {
        guard let slash = path.lastIndex(of: "/") else { return "." }
        return slash == path.startIndex ? "/" : String(path[..<slash])
    }

    /// An absolute path with `.` and `..` removed lexically: symbolic links
    /// are kept, so that an executable linked into bin/ finds ../lib from there.
    private static func absolute(_ path: String) -> String {
        let full = path.hasPrefix("/") ? path : FileManager.default.currentDirectoryPath + "/" + path
        var parts: [Substring] = []
        for part in full.split(separator: "/") {
            if part == "." { continue }
            if part == ".." { _ = parts.popLast(); continue }
            parts.append(part)
        }
        return "/" + parts.joined(separator: "/")
    }

    // MARK: Running the command

    enum Status {
        case exited(Int32)
        case signaled(Int32)
    }

    /// Starts the command (searched on PATH) with the given environment and
    /// this process's standard streams, and with default signal handling.
    /// A file that is executable but no binary or `#!` script (ENOEXEC) is run
    /// by /bin/sh, as execvp and a shell do.
    static func spawn(_ argv: [String], environment: [String: String]) throws -> pid_t {
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var defaults = sigset_t()
        sigemptyset(&defaults)
        for s in [SIGINT, SIGQUIT, SIGTERM, SIGHUP, SIGPIPE, SIGCHLD] { sigaddset(&defaults, s) }
        posix_spawnattr_setsigdefault(&attributes, &defaults)
        var mask = sigset_t()
        sigemptyset(&mask)
        posix_spawnattr_setsigmask(&attributes, &mask)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK))

        // Standard descriptors that were closed when this tool started are
        // closed for the command too (StandardStreams put /dev/null there).
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        for fd in StandardStreams.closedAtStart.sorted() { posix_spawn_file_actions_addclose(&actions, fd) }

        let cEnv = environment.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer { for p in cEnv { free(p) } }
        func start(_ path: String, _ arguments: [String], searchingPath: Bool) -> (pid_t, Int32) {
            let cArgs = arguments.map { strdup($0) } + [nil]
            defer { for p in cArgs { free(p) } }
            var pid: pid_t = 0
            let rc = searchingPath ? posix_spawnp(&pid, path, &actions, &attributes, cArgs, cEnv)
                : posix_spawn(&pid, path, &actions, &attributes, cArgs, cEnv)
            return (pid, rc)
        }
        // With SIGCHLD ignored (inherited), the kernel reaps the command itself
        // and waitpid finds no child: this process needs the default.
        signal(SIGCHLD, SIG_DFL)
        // Interrupts from the terminal reach the command too (same process
        // group); this process waits for it to end and then reports.
        signal(SIGINT, SIG_IGN)
        signal(SIGQUIT, SIG_IGN)
        var (pid, rc) = start(argv[0], argv, searchingPath: true)
        if rc == ENOEXEC, let file = RunCommand.executablePath(argv[0], environment: environment) {
            (pid, rc) = start("/bin/sh", ["sh", file] + argv.dropFirst(), searchingPath: false)
        }
        guard rc == 0 else {
            signal(SIGINT, SIG_DFL)
            signal(SIGQUIT, SIG_DFL)
            let reason = String(cString: strerror(rc))
            printError(rc == ENOENT ? "\(argv[0]): command not found" : "cannot run \(argv[0]): \(reason)")
            throw ExitCode(rc == ENOENT ? 127 : 126)
        }
        forwardSignalsTo = pid
        var action = sigaction()
        action.__sigaction_handler.sa_sigaction = forwardSignal
        action.sa_flags = SA_SIGINFO | SA_RESTART
        sigemptyset(&action.sa_mask)
        for s in [SIGTERM, SIGHUP, SIGINT, SIGQUIT] { sigaction(s, &action, nil) }
        return pid
    }

    /// The file execvp would run for `name`: itself when it has a slash, else
    /// the first executable regular file of that name on the command's PATH.
    static func executablePath(_ name: String, environment: [String: String]) -> String? {
        if name.contains("/") { return name }
        for dir in (environment["PATH"] ?? "/usr/bin:/bin").split(separator: ":", omittingEmptySubsequences: false) {
            let candidate = (dir.isEmpty ? "." : String(dir)) + "/" + name
            if RegularFile.isReadable(candidate), access(candidate, X_OK) == 0 { return candidate }
        }
        return nil
    }

    /// The command's end, or nil (with a message) when it cannot be waited for.
    static func wait(for pid: pid_t) -> Status? {
        var status: Int32 = 0
        while waitpid(pid, &status, 0) == -1 {
            if errno == EINTR { continue }
            printError("cannot wait for the command (pid \(pid)): \(String(cString: strerror(errno)))")
            return nil
        }
        for s in [SIGINT, SIGQUIT, SIGTERM, SIGHUP] { signal(s, SIG_DFL) }
        forwardSignalsTo = 0
        let low = status & 0x7f
        if low == 0 { return .exited((status >> 8) & 0xff) }
        return .signaled(low)
    }

    // MARK: Reporting

    /// Of the profiles written during the run, prints the command's own.
    private func showReport(written found: [WrittenProfile], template: String, pid: pid_t, status: Status,
                            library: String) {
        let own = template.replacingOccurrences(of: "%p", with: String(pid))
        let others = found.filter { $0.path != own }
        var chosen: String? = found.contains { $0.path == own } ? own : nil

        var notes: [String] = []
        if chosen == nil {
            var why = "no profile was written to \(own)"
            if case .signaled(let s) = status {
                why += ": the command was killed by signal \(s) before it could exit normally"
            } else if others.isEmpty {
                why += ". A process writes its profile when it exits (exit(), a return from main, _exit()) or "
                    + "when SIGINT, SIGTERM, SIGHUP or SIGPIPE ends it; one killed otherwise (SIGKILL, a crash) "
                    + "writes none, nor does one that ends with the exit_group system call itself, as Go programs "
                    + "do: --interval N writes the profile while it runs. Is \(library) built with the profiler?"
            }
            notes.append(why)
            if others.count == 1 {
                chosen = others[0].path
                notes.append("showing the only profile that was written, \(others[0].path) (pid \(others[0].pid))")
            }
        } else {
            notes.append("profile of pid \(pid): \(own)")
        }
        let rest = others.filter { $0.path != chosen }
        if !rest.isEmpty {
            notes.append("\(rest.count) other process\(rest.count == 1 ? "" : "es") wrote profiles "
                + "(swiftmalloc report FILE):")
            // A command that runs many others (a shell script, make) leaves one
            // profile per process: name a few, then say where the rest are.
            let shown = 5
            for r in rest.prefix(rest.count > shown + 1 ? shown : rest.count) { notes.append("  \(r.path)") }
            if rest.count > shown + 1 {
                let directory = (rest[shown].path as NSString).deletingLastPathComponent
                notes.append("  … and \(rest.count - shown) more in \(directory)")
            }
        }
        for n in notes { printError(n) }
        guard let chosen else { return }
        do {
            let symbolizer = Symbolizer()
            let analysis = try AnalyzedProfile.load(path: chosen, symbolizer: symbolizer)
            let text = TextReport(analysis: analysis, top: top).render(warnings: symbolizer.warnings)
            StandardStreams.writeMessage("\n" + text)
        } catch {
            printError("cannot read the profile: \(error)")
        }
    }
}
