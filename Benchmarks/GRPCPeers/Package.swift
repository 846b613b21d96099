// swift-tools-version:6.1
import PackageDescription

// The gRPC peers of `authrelay latency`: grpc-collector and grpc-reporter, in
// a package of their own so that the AuthRelay package (README's two commands,
// scripts/test.sh) never builds gRPC, SwiftNIO, swift-nio-ssl and swift-protobuf.
//
// The protobuf and gRPC code under Sources/GRPCBenchProto/Generated is made
// once by generate.sh and committed: no protoc build plugin here (it would add
// many minutes to every first build).
let argumentParser = Target.Dependency.product(name: "ArgumentParser", package: "swift-argument-parser")
let grpcCore = Target.Dependency.product(name: "GRPCCore", package: "grpc-swift-2")
let grpcTransport = Target.Dependency.product(name: "GRPCNIOTransportHTTP2Posix", package: "grpc-swift-nio-transport")
let histogram = Target.Dependency.product(name: "Histogram", package: "hdrhistogram-swift")

let package = Package(
    name: "GRPCPeers",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "grpc-collector", targets: ["grpc-collector"]),
        .executable(name: "grpc-reporter", targets: ["grpc-reporter"]),
    ],
    dependencies: [
        .package(url: "https://github.com/grpc/grpc-swift-2.git", from: "2.0.0"),
        .package(url: "https://github.com/grpc/grpc-swift-nio-transport.git", from: "2.0.0"),
        .package(url: "https://github.com/grpc/grpc-swift-protobuf.git", from: "2.0.0"),
        .package(url: "https://github.com/apple/swift-protobuf.git", from: "1.39.0"),
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/HdrHistogram/hdrhistogram-swift", from: "0.2.0"),
    ],
    targets: [
        // protoc output for Protos/authrelay_bench.proto (Generated/, never edited).
        .target(
            name: "GRPCBenchProto",
            dependencies: [
                grpcCore,
                .product(name: "GRPCProtobuf", package: "grpc-swift-protobuf"),
                .product(name: "SwiftProtobuf", package: "swift-protobuf"),
            ]),
        // What both peers share: the benchmark event, endpoints, durations, clocks, number formatting.
        .target(name: "GRPCPeerSupport", dependencies: ["GRPCBenchProto", grpcCore, grpcTransport]),
        .executableTarget(
            name: "grpc-collector", dependencies: ["GRPCPeerSupport", "GRPCBenchProto", grpcCore, grpcTransport, argumentParser]),
        .executableTarget(
            name: "grpc-reporter",
            dependencies: ["GRPCPeerSupport", "GRPCBenchProto", grpcCore, grpcTransport, argumentParser, histogram]),
    ]
)
