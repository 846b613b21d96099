// swift-tools-version:6.1
import PackageDescription

// Docs/Architecture.md describes each module's job and where new code goes.
// Dependencies point one way: the two seams (SystemSupport for the system,
// CONCRPC for libtirpc) at the bottom, the executables at the top.
let logging = Target.Dependency.product(name: "Logging", package: "swift-log")
let histogram = Target.Dependency.product(name: "Histogram", package: "hdrhistogram-swift")
let argumentParser = Target.Dependency.product(name: "ArgumentParser", package: "swift-argument-parser")

let package = Package(
    name: "AuthRelay",
    platforms: [.macOS(.v15)],
    products: [
        .library(name: "ONCRPC", targets: ["ONCRPC"]),
        .library(name: "AuthRelayProtocol", targets: ["AuthRelayProtocol"]),
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
        // MARK: The seams

        // libtirpc itself, found through pkg-config.
        .systemLibrary(name: "CTIRPC", pkgConfig: "libtirpc", providers: [.apt(["libtirpc-dev"])]),
        // The libtirpc seam: one C shim per libtirpc macro or variadic API (clnt_call, xdr_free, ...).
        .target(name: "CONCRPC", dependencies: ["CTIRPC"]),
        // Linux calls Glibc's Swift module lacks (eventfd, thread names, SO_PEERCRED, fanotify, signal routing).
        .target(name: "CSystemSupport"),
        // libpq, PostgreSQL's own C client, found through pkg-config (libpq).
        .systemLibrary(name: "CLibPQ", pkgConfig: "libpq", providers: [.apt(["libpq-dev"])]),
        // The system seam: every libc call the Swift code makes, one error type, owned descriptors.
        .target(name: "SystemSupport", dependencies: ["CSystemSupport", logging]),

        // MARK: RPC and the protocol

        // rpcgen output for rpcgen/authrelay.x (generated/, never edited) plus its XDR routine constants.
        .target(name: "CAuthRelayRPC", dependencies: ["CTIRPC", "CONCRPC"]),
        // Typed Swift ONC RPC client and server over libtirpc; knows nothing of AuthRelay.
        .target(name: "ONCRPC", dependencies: ["CTIRPC", "CONCRPC", "SystemSupport", logging]),
        // The AuthRelay protocol as Swift values: Event and its bounds, batches, replies, wire conversion.
        .target(name: "AuthRelayProtocol", dependencies: ["CAuthRelayRPC", "ONCRPC", "SystemSupport"]),

        // MARK: The runtime

        // The agent sender's disk spool: per boot, segments of framed records, bounded, recovered at open.
        .target(name: "AuthRelaySpool", dependencies: ["AuthRelayProtocol", "SystemSupport"]),
        // The sender side: CollectorClient, the queue, EventSender (with its spooler and delivery threads), Policy, AuthPipeline.
        .target(name: "AuthRelay", dependencies: ["AuthRelayProtocol", "AuthRelaySpool", "ONCRPC", "SystemSupport", logging]),
        // The collector: handlers, de-duplication, loss accounting, sinks, the daemon's wiring.
        .target(name: "AuthRelayCollector",
                dependencies: ["AuthRelayProtocol", "AuthRelayPostgres", "ONCRPC", "CAuthRelayRPC", "SystemSupport", logging]),
        // The PostgreSQL store: schema and migration, batches committed in one round trip, failures classified.
        .target(name: "AuthRelayPostgres", dependencies: ["CLibPQ", "SystemSupport"]),
        // The agent: auth sources (fanotify, synthetic) wired to the pipeline and the sender.
        .target(name: "AuthRelayAgent", dependencies: ["AuthRelay", "AuthRelayProtocol", "SystemSupport", logging, histogram]),

        // MARK: Tools around the runtime

        // What benchmarks, the demo and the tests share: child processes, built programs, collectors started for a run.
        .target(name: "AuthRelayHarness", dependencies: ["AuthRelayProtocol", "ONCRPC", "SystemSupport"]),
        // The scenarios behind `authrelay latency`: transports, batching, the auth path, the sender.
        .target(name: "AuthRelayLatency",
                dependencies: ["AuthRelay", "AuthRelayAgent", "AuthRelayHarness", "AuthRelayProtocol", "ONCRPC",
                               "SystemSupport", logging, histogram]),
        // `authrelay demo`: collector, agent, accesses and a collector outage, on this machine.
        .target(name: "AuthRelayDemo",
                dependencies: ["AuthRelay", "AuthRelayAgent", "AuthRelayHarness", "AuthRelayProtocol", "ONCRPC",
                               "SystemSupport", logging]),
        // The typed flags both programs parse, and stats rendering.
        .target(name: "AuthRelayCLI",
                dependencies: ["AuthRelay", "AuthRelayCollector", "AuthRelayProtocol", "ONCRPC", "SystemSupport",
                               argumentParser, logging]),

        // MARK: Executables: flags, then one call into a library

        .executableTarget(name: "authrelayd", dependencies: ["AuthRelayCollector", "AuthRelayCLI", "SystemSupport", argumentParser, logging]),
        .executableTarget(
            name: "authrelay",
            dependencies: ["AuthRelay", "AuthRelayCLI", "AuthRelayCollector", "AuthRelayAgent", "AuthRelayLatency",
                           "AuthRelayDemo", "AuthRelayProtocol", "ONCRPC", "SystemSupport", argumentParser, logging]),
        // Benchmarks/postgres.sh: events/s into a temporary PostgreSQL cluster, beside psql \copy.
        .executableTarget(name: "authrelay-postgres-bench", dependencies: ["AuthRelayPostgres", "AuthRelayHarness", "SystemSupport"],
                          path: "Benchmarks/PostgresBench"),
        // Plain C programs from the same generated code: what users run today.
        .executableTarget(name: "legacy-collector", dependencies: ["CAuthRelayRPC"]),
        .executableTarget(name: "legacy-reporter", dependencies: ["CAuthRelayRPC"]),

        // MARK: Tests, mirroring the modules

        // What every test target shares: wire bytes, sample events, started daemons, bounded waits.
        .target(name: "TestSupport",
                dependencies: ["AuthRelayHarness", "AuthRelayProtocol", "ONCRPC", "CAuthRelayRPC", "SystemSupport"],
                path: "Tests/TestSupport"),
        .testTarget(name: "SystemSupportTests", dependencies: ["SystemSupport", logging]),
        .testTarget(name: "ONCRPCTests", dependencies: ["ONCRPC", "CAuthRelayRPC", "SystemSupport", "TestSupport", logging]),
        .testTarget(name: "AuthRelayProtocolTests", dependencies: ["AuthRelayProtocol", "CAuthRelayRPC", "TestSupport"]),
        .testTarget(name: "AuthRelayTests",
                    dependencies: ["AuthRelay", "AuthRelayHarness", "AuthRelayProtocol", "ONCRPC", "SystemSupport", "TestSupport"]),
        .testTarget(name: "AuthRelayCollectorTests",
                    dependencies: ["AuthRelayCollector", "AuthRelayHarness", "AuthRelayProtocol", "ONCRPC", "SystemSupport", logging]),
        .testTarget(name: "AuthRelaySpoolTests", dependencies: ["AuthRelaySpool", "AuthRelayHarness", "SystemSupport"],
                    exclude: ["Writer"]),
        // What the spool's kill -9 test starts, lets append, and kills.
        .executableTarget(name: "authrelay-spool-writer", dependencies: ["AuthRelaySpool", "SystemSupport"],
                          path: "Tests/AuthRelaySpoolTests/Writer"),
        // Against a real server: a temporary cluster per suite (TemporaryPostgres).
        .testTarget(name: "AuthRelayPostgresTests", dependencies: ["AuthRelayPostgres", "AuthRelayHarness", "SystemSupport"]),
        .testTarget(name: "AuthRelayAgentTests",
                    dependencies: ["AuthRelayAgent", "AuthRelay", "AuthRelayProtocol", "SystemSupport", "TestSupport", logging]),
        .testTarget(name: "AuthRelayCLITests",
                    dependencies: ["AuthRelayCLI", "AuthRelayCollector", "AuthRelayProtocol", "ONCRPC", argumentParser]),
        // Starts the built programs (authrelayd, authrelay, legacy-*) over real sockets.
        .testTarget(
            name: "IntegrationTests",
            dependencies: ["AuthRelay", "AuthRelayHarness", "AuthRelayProtocol", "ONCRPC", "SystemSupport", "TestSupport", logging]),
    ],
    swiftLanguageModes: [.v6]
)
