// swift-tools-version:6.1
import PackageDescription

// libFuzzer targets for what authrelayd parses from anyone who reaches it: the
// stream record framer, the call header, the incremental batch decoder, the view decoder against rpcgen's, and
// the collector's handling of a sequence of calls. A package of its own, so the
// AuthRelay package (README's two commands, scripts/test.sh) never builds them:
// scripts/fuzz.sh builds them with -sanitize=fuzzer,address and
// -enable-testing (they reach the modules' internal and package API through
// @testable import), and runs one. Docs/Operations.md, "Fuzzing and sanitizers".
let authRelay = "AuthRelay"
let support: [Target.Dependency] = [
    "FuzzSupport", "CFuzzerDriver",
    .product(name: "ONCRPC", package: authRelay),
    .product(name: "AuthRelayProtocol", package: authRelay),
]

let package = Package(
    name: "AuthRelayFuzz",
    dependencies: [
        .package(name: authRelay, path: ".."),
        .package(url: "https://github.com/apple/swift-log", from: "1.6.0"),
    ],
    targets: [
        // libFuzzer's LLVMFuzzerRunDriver, and a stand-in that replays files when libFuzzer is not linked.
        .target(name: "CFuzzerDriver"),
        // What every target shares: the driver call, reading choices from an input, seeds as RPC calls.
        .target(name: "FuzzSupport", dependencies: [
            "CFuzzerDriver",
            .product(name: "ONCRPC", package: authRelay),
            .product(name: "AuthRelayProtocol", package: authRelay),
        ]),
        .executableTarget(name: "fuzz-framer", dependencies: support),
        .executableTarget(name: "fuzz-call-header", dependencies: support),
        .executableTarget(name: "fuzz-batch-decoder",
                          dependencies: support + [.product(name: "AuthRelayCollector", package: authRelay)]),
        .executableTarget(name: "fuzz-view-decoder",
                          dependencies: support + [.product(name: "AuthRelayCollector", package: authRelay)]),
        .executableTarget(name: "fuzz-collector",
                          dependencies: support + [.product(name: "AuthRelayCollector", package: authRelay),
                                                   .product(name: "Logging", package: "swift-log")]),
    ],
    swiftLanguageModes: [.v6]
)
