// swift-tools-version:5.9
// A small SwiftNIO HTTP server used by soak.sh to exercise an allocator under
// a long-running, multi-threaded, allocation-heavy workload.
import PackageDescription

let package = Package(
    name: "SoakServer",
    dependencies: [
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
    ],
    targets: [
        .executableTarget(
            name: "SoakServer",
            dependencies: [
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ]
        ),
    ]
)
