// swift-tools-version:6.0
// The module graph is the architecture (see docs/ARCHITECTURE.md): imports only point down this file.
import PackageDescription

// Native builds of the core use AVX2 + FMA on x86-64 (every x86-64-v3 CPU since 2013/2015): the GEMM's 6x16 FMA
// micro-kernel is ~4x faster than the SSE2 one (tools/bench/kernels.sh). KEDGE_PORTABLE=1 builds for any x86-64.
// The wasm build (wasm/build.sh) compiles the same sources with its own flags and never sees these.
#if arch(x86_64)
let nativeSIMD: [SwiftSetting] =
    Context.environment["KEDGE_PORTABLE"] == nil
    ? [.unsafeFlags(["-Xcc", "-mavx2", "-Xcc", "-mfma"]), .define("KEDGE_FMA")] : []
#else
let nativeSIMD: [SwiftSetting] = []
#endif

// The core is optimized in debug builds too: the tests run ~600 whole Keras models, the cascade on 20 volumes and
// the debug CLI against the wasm module, and at -Onone the cascade alone takes 18 s a volume instead of 0.5 s.
// Everything else (converter, server, tests) stays debuggable.
let optimizedCore: [SwiftSetting] = [.unsafeFlags(["-O"], .when(configuration: .debug))]

let package = Package(
    name: "Kedge",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "kedge", targets: ["kedge"]),
        .library(name: "KedgeCore", targets: ["KedgeCore"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/weichsel/ZIPFoundation", from: "0.9.19"),
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.1"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
        .package(url: "https://github.com/adam-fowler/compress-nio", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-http-types", from: "1.8.0"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.13.0"),
    ],
    targets: [
        // Pure Swift, no Foundation, no Glibc: the same sources compile to wasm as Embedded Swift (wasm/build.sh).
        .target(
            name: "KedgeCore",
            swiftSettings: [.enableExperimentalFeature("Extern"), .swiftLanguageMode(.v5)] + nativeSIMD + optimizedCore,
            linkerSettings: [.linkedLibrary("m", .when(platforms: [.linux]))]
        ),
        .systemLibrary(
            name: "CHDF5",
            pkgConfig: "hdf5-serial",
            providers: [.apt(["libhdf5-dev"])]
        ),
        .target(
            name: "KedgeConvert",
            dependencies: ["KedgeCore", "CHDF5", .product(name: "ZIPFoundation", package: "ZIPFoundation")]
        ),
        // The build server (Hummingbird 2): converts models in a child `kedge convert`, so it needs no KedgeConvert.
        .target(
            name: "KedgeServer",
            dependencies: [
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "_NIOFileSystem", package: "swift-nio"),
                .product(name: "CompressNIO", package: "compress-nio"),
            ]
        ),
        .executableTarget(
            name: "kedge",
            dependencies: [
                "KedgeCore", "KedgeConvert", "KedgeServer",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        .testTarget(name: "KedgeCoreTests", dependencies: ["KedgeCore"]),
        .testTarget(
            name: "KedgeServerTests",
            dependencies: [
                "KedgeServer",
                .product(name: "HummingbirdTesting", package: "hummingbird"),
                .product(name: "CompressNIO", package: "compress-nio"),
            ]
        ),
        .testTarget(name: "KedgeConvertTests", dependencies: ["KedgeCore", "KedgeConvert"]),
        // Whole-model parity with real Keras over Tests/Fixtures (made by tools/fixtures/).
        .testTarget(name: "KedgeParityTests", dependencies: ["KedgeCore", "KedgeConvert"]),
    ]
)
