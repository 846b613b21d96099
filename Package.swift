// swift-tools-version:6.1
import PackageDescription

let package = Package(
    name: "AuthRelay",
    platforms: [.macOS(.v15)],
    products: [
        .library(name: "ONCRPC", targets: ["ONCRPC"]),
        .library(name: "AuthRelay", targets: ["AuthRelay"]),
        .library(name: "AuthRelayCollector", targets: ["AuthRelayCollector"]),
        .executable(name: "authrelayd", targets: ["authrelayd"]),
        .executable(name: "authrelay", targets: ["authrelay"]),
        .executable(name: "legacy-collector", targets: ["legacy-collector"]),
        .executable(name: "legacy-reporter", targets: ["legacy-reporter"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-log", from: "1.6.0"),
        .package(url: "https://github.com/HdrHistogram/hdrhistogram-swift", from: "0.2.0"),
    ],
    targets: [
        // libtirpc itself, found through pkg-config.
        .systemLibrary(
            name: "CTIRPC",
            pkgConfig: "libtirpc",
            providers: [.apt(["libtirpc-dev"])]
        ),
        // Protocol-agnostic C shims over libtirpc's macros and variadic types.
        .target(name: "CONCRPC", dependencies: ["CTIRPC"]),
        // rpcgen output for rpcgen/authrelay.x (generated/, include/authrelay.h) plus its XDR routine constants.
        .target(name: "CAuthRelayRPC", dependencies: ["CTIRPC", "CONCRPC"]),
        // Linux calls Glibc's Swift module leaves out (eventfd, thread names, fanotify).
        .target(name: "CAuthRelayLinux"),
        // Typed Swift ONC RPC client and server; knows nothing of AuthRelay.
        .target(
            name: "ONCRPC",
            dependencies: [
                "CTIRPC", "CONCRPC",
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        // Events, the collector client, the sender and the auth pipeline.
        .target(
            name: "AuthRelay",
            dependencies: [
                "ONCRPC", "CAuthRelayRPC", "CAuthRelayLinux",
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        // The collector service: handlers, de-duplication, sinks.
        .target(
            name: "AuthRelayCollector",
            dependencies: [
                "AuthRelay", "ONCRPC", "CAuthRelayRPC",
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        // Auth sources for the agent: fanotify permission events and a synthetic generator.
        .target(
            name: "AuthRelayAgent",
            dependencies: [
                "AuthRelay", "CAuthRelayLinux",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Histogram", package: "hdrhistogram-swift"),
            ]
        ),
        // The scenarios behind `authrelay latency`: transports, batching, the auth path.
        .target(
            name: "AuthRelayLatency",
            dependencies: [
                "AuthRelay", "AuthRelayAgent", "ONCRPC", "CAuthRelayLinux",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Histogram", package: "hdrhistogram-swift"),
            ]
        ),
        // `authrelay demo`: collector, agent, accesses and a collector outage, on this machine.
        .target(
            name: "AuthRelayDemo",
            dependencies: [
                "AuthRelay", "AuthRelayAgent", "AuthRelayLatency", "ONCRPC",
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        // The value types both command-line programs parse (durations, addresses, program numbers).
        .target(
            name: "AuthRelayCLI",
            dependencies: [
                "AuthRelay", "ONCRPC",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .executableTarget(
            name: "authrelayd",
            dependencies: [
                "AuthRelayCollector", "AuthRelayCLI",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .executableTarget(
            name: "authrelay",
            dependencies: [
                "AuthRelay", "AuthRelayCLI", "AuthRelayCollector", "AuthRelayAgent", "AuthRelayLatency", "AuthRelayDemo", "ONCRPC",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Histogram", package: "hdrhistogram-swift"),
            ]
        ),
        // Plain C programs from the same generated code: what users run today.
        .executableTarget(name: "legacy-collector", dependencies: ["CAuthRelayRPC"]),
        .executableTarget(name: "legacy-reporter", dependencies: ["CAuthRelayRPC"]),

        .testTarget(name: "ONCRPCTests", dependencies: ["ONCRPC", "CAuthRelayRPC"]),
        .testTarget(name: "AuthRelayTests", dependencies: ["AuthRelay", "ONCRPC"]),
        // Starts the built programs (authrelayd, authrelay, legacy-*) over real sockets.
        .testTarget(
            name: "IntegrationTests",
            dependencies: ["AuthRelay", "AuthRelayCollector", "AuthRelayAgent", "ONCRPC"]
        ),
    ],
    swiftLanguageModes: [.v6]
)
