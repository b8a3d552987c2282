// swift-tools-version:6.0
// The module graph is the architecture (see docs/ARCHITECTURE.md): imports only point down this file.
import PackageDescription

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
    ],
    targets: [
        // Pure Swift, no Foundation, no Glibc: the same sources compile to wasm as Embedded Swift (wasm/build.sh).
        .target(
            name: "KedgeCore",
            swiftSettings: [.enableExperimentalFeature("Extern"), .swiftLanguageMode(.v5)],
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
        .executableTarget(
            name: "kedge",
            dependencies: [
                "KedgeCore", "KedgeConvert",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        .testTarget(name: "KedgeCoreTests", dependencies: ["KedgeCore"]),
        .testTarget(name: "KedgeConvertTests", dependencies: ["KedgeCore", "KedgeConvert"]),
        // Whole-model parity with real Keras over Tests/Fixtures (made by tools/fixtures/).
        .testTarget(name: "KedgeParityTests", dependencies: ["KedgeCore", "KedgeConvert"]),
    ]
)
