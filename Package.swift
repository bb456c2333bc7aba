// swift-tools-version: 6.0
// BAMBO — Pareto sets of merged LLMs by block-wise multi-objective Bayesian optimization.
// One target per concern (see README "Architecture"); pure cores, I/O at the edges.
import PackageDescription

let package = Package(
    name: "BAMBO",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "bambo", targets: ["bambo"]),
        .library(name: "SafeTensors", targets: ["SafeTensors"]),
        .library(name: "Partitioning", targets: ["Partitioning"]),
        .library(name: "Merging", targets: ["Merging"]),
        .library(name: "Optimization", targets: ["Optimization"]),
        .library(name: "ZeroMQ", targets: ["ZeroMQ"]),
        .library(name: "BamboProtocol", targets: ["BamboProtocol"]),
        .library(name: "Archive", targets: ["Archive"]),
        .library(name: "Evaluation", targets: ["Evaluation"]),
        .library(name: "Coordinator", targets: ["Coordinator"]),
        .library(name: "Worker", targets: ["Worker"]),
        .library(name: "Report", targets: ["Report"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/jpsim/Yams", from: "6.2.2"),
        .package(url: "https://github.com/groue/GRDB.swift", from: "7.10.0"),
        .package(url: "https://github.com/swift-server/async-http-client", from: "1.37.0"),
    ],
    targets: [
        // Format: header validation, mmap reader, streaming writer, dtypes, shard index.
        .target(name: "SafeTensors", dependencies: ["DynamicJSON"]),
        // Hybrid optimal block partitioning (paper Algorithm 1). Pure.
        .target(name: "Partitioning"),
        // Tensor-name → layer map, layer-difference profile, merge methods and engine.
        .target(name: "Merging", dependencies: ["SafeTensors", "Partitioning", .product(name: "Yams", package: "Yams")]),
        // GP, Sobol, Pareto tools, qEHVI. Pure numerics.
        .target(name: "Optimization"),
        // The system libzmq (4.3.x), found through pkg-config; cluster/bootstrap.sh installs it.
        .systemLibrary(
            name: "CZeroMQ",
            pkgConfig: "libzmq",
            providers: [.apt(["libzmq3-dev"]), .brew(["zeromq"])]
        ),
        // A small safe Swift wrapper over libzmq: sockets, options, poller, CURVE keys, ZAP, socket loop.
        .target(name: "ZeroMQ", dependencies: ["CZeroMQ"]),
        // Any JSON value (`JSONValue`): what the protocol passes through and the harness reads. Pure.
        .target(name: "DynamicJSON"),
        // Wire messages and their codec (spec: top-level Protocol/). Pure, Foundation only.
        .target(name: "BamboProtocol", dependencies: ["DynamicJSON"]),
        // SQLite archive (GRDB, WAL): schema, migrations, state transitions, queries, JSONL event log.
        .target(
            name: "Archive",
            dependencies: ["BamboProtocol", .product(name: "GRDB", package: "GRDB.swift")]
        ),
        // Benchmarks, prompts, answer extraction and grading, OpenAI-compatible client, inference
        // server backends (process lifecycle).
        .target(
            name: "Evaluation",
            dependencies: ["DynamicJSON", .product(name: "AsyncHTTPClient", package: "async-http-client")]
        ),
        // The study file, the dispatch/lease state machine (pure), proposals, objectives, and the
        // coordinator service (ROUTER/PUB sockets, archive) that runs a study.
        .target(
            name: "Coordinator",
            dependencies: [
                "Archive", "BamboProtocol", "ZeroMQ", "Optimization", "Partitioning", "Merging",
                .product(name: "Yams", package: "Yams"),
            ]
        ),
        // The worker runtime: pure state machine, merge + evaluate shell, `exec` evaluator.
        .target(name: "Worker", dependencies: ["BamboProtocol", "ZeroMQ", "Merging", "SafeTensors", "Evaluation"]),
        // The study report: plain values in, one self-contained HTML page (inline SVG) out. Pure.
        .target(name: "Report", dependencies: ["Optimization"]),
        // The command-line tool: parses arguments and wires the library targets.
        .executableTarget(
            name: "bambo",
            dependencies: [
                "SafeTensors", "Partitioning", "Merging", "Optimization", "Evaluation",
                "Coordinator", "Archive", "BamboProtocol", "ZeroMQ", "Worker", "Report",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Yams", package: "Yams"),
            ]
        ),
        // What the process tests share: finding and running the built `bambo` executable.
        .target(name: "BamboTestSupport", path: "Tests/BamboTestSupport"),
        .testTarget(name: "SafeTensorsTests", dependencies: ["SafeTensors"], resources: [.copy("Fixtures")]),
        .testTarget(name: "PartitioningTests", dependencies: ["Partitioning"]),
        .testTarget(name: "MergingTests", dependencies: ["Merging", "SafeTensors"]),
        .testTarget(name: "OptimizationTests", dependencies: ["Optimization"], exclude: ["Scripts"]),
        .testTarget(name: "ZeroMQTests", dependencies: ["ZeroMQ"]),
        .testTarget(name: "EvaluationTests", dependencies: ["Evaluation"], exclude: ["FakeServers"]),
        .testTarget(name: "BamboProtocolTests", dependencies: ["BamboProtocol"]),
        .testTarget(
            name: "ArchiveTests",
            dependencies: ["Archive", "BamboProtocol", "BamboTestSupport", .product(name: "GRDB", package: "GRDB.swift")]
        ),
        .testTarget(
            name: "CoordinatorTests",
            dependencies: [
                "Coordinator", "Archive", "BamboProtocol", "ZeroMQ", "Optimization", "Merging", "BamboTestSupport",
                .product(name: "Yams", package: "Yams"),
            ]
        ),
        // End-to-end: runs the built `bambo` executable as a user would.
        .testTarget(name: "CLITests", dependencies: ["SafeTensors", "BamboTestSupport"]),
        .testTarget(name: "ReportTests", dependencies: ["Report", "Optimization"]),
        // State machine without sockets; the `bambo worker` binary against a test coordinator peer.
        .testTarget(name: "WorkerTests", dependencies: ["Worker", "BamboProtocol", "ZeroMQ", "BamboTestSupport"]),
    ],
    swiftLanguageModes: [.v6]
)
