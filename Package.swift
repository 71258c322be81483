// swift-tools-version:6.0
import PackageDescription

// The allocator core is Embedded Swift: no Swift runtime is loaded into the host
// process and `-no-allocations` makes the compiler reject anything that would
// allocate through the heap the core itself implements.
let package = Package(
    name: "SwiftMalloc",
    products: [
        .library(name: "swiftmalloc", type: .dynamic, targets: ["SwiftMalloc"]),
        .executable(name: "swiftmalloc-cli", targets: ["SwiftMallocCLI"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
    ],
    targets: [
        .target(
            name: "SwiftMallocShims",
            path: "Sources/SwiftMallocShims",
            cSettings: [.unsafeFlags(["-gdwarf-4"])]
        ),
        .target(
            name: "SwiftMalloc",
            dependencies: ["SwiftMallocShims"],
            path: "Sources/SwiftMalloc",
            swiftSettings: [
                .enableExperimentalFeature("Embedded"),
                // Leaf functions (the malloc/free fast paths) need no frame pointer; the
                // rest keep theirs, so frame-pointer stack walks still work. Debug
                // information without references into the module cache or a name
                // index, which gdb warns about (the linker concatenates the latter).
                .unsafeFlags(["-no-allocations", "-Xcc", "-momit-leaf-frame-pointer", "-Xfrontend", "-no-clang-module-breadcrumbs", "-Xllvm", "-accel-tables=Disable"]),
            ],
            // -z nodelete: a dlclose of the library never unmaps it. Its background
            // threads and the thread-exit destructors of every thread that used it
            // run its code after the program is done with it.
            linkerSettings: [
                .unsafeFlags(["-Xlinker", "--version-script=\(Context.packageDirectory)/Sources/SwiftMallocShims/exports.map",
                              "-Xlinker", "-z", "-Xlinker", "nodelete"]),
            ]
        ),
        // The `swiftmalloc` command (installed under that name; SwiftPM builds it as
        // swiftmalloc-cli): runs a program under the profiler and renders its report
        // files. Ordinary Swift with Foundation; it does not link the allocator.
        .executableTarget(
            name: "SwiftMallocCLI",
            dependencies: [.product(name: "ArgumentParser", package: "swift-argument-parser")],
            path: "Sources/SwiftMallocCLI"
        ),
    ]
)
