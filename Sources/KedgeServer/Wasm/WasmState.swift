import Foundation

/// The four modules wasm/build.sh writes into wasm/out: two builds, each in two SIMD flavours. The raw value is
/// the file name, in the output folder and in the URLs (/wasm/HASH/FILE, /FILE).
public enum WasmVariant: String, CaseIterable, Sendable, Hashable {
    /// The feed-forward and convolutional layer families; kedge.js starts with it.
    case slim = "kedge.wasm"
    case slimRelaxed = "kedge-relaxed.wasm"
    /// Everything: also the sequence layers, Keras 1 classes, tree ensembles and the cascade ABI.
    case full = "kedge-full.wasm"
    case fullRelaxed = "kedge-full-relaxed.wasm"

    public var fileName: String { rawValue }

    /// The relaxed-SIMD flavours are optional (`KEDGE_WASM_RELAXED=0 wasm/build.sh` skips them); a build
    /// always writes the two others.
    public var isRequired: Bool { simd128Flavour == self }

    /// The simd128 module of the same build (itself for the simd128 ones).
    public var simd128Flavour: WasmVariant {
        switch self {
        case .slim, .slimRelaxed: return .slim
        case .full, .fullRelaxed: return .full
        }
    }
}

/// One module on disk.
public struct WasmModule: Sendable, Equatable {
    /// Real path.
    public var path: String
    public var sha256: String
    public var size: Int

    public init(path: String, sha256: String, size: Int) {
        self.path = path
        self.sha256 = sha256
        self.size = size
    }
}

/// The state of the wasm modules as /api/models reports it.
public struct WasmState: Sendable, Equatable {
    public enum Status: String, Sendable {
        /// Built from the current sources (now, or earlier with the same source hash).
        case current
        /// The toolchain could not build it; a prebuilt module is served instead.
        case prebuilt
        /// The toolchain could not build it; an older build is served.
        case stale
        /// Nothing to serve.
        case missing
        /// Building was skipped (--skip-wasm-build); whatever exists is served.
        case unchecked
    }

    public var status: Status
    public var message: String?
    /// The modules there are to serve; a build without relaxed SIMD has only kedge.wasm and kedge-full.wasm.
    public var modules: [WasmVariant: WasmModule]

    public init(status: Status, message: String? = nil, modules: [WasmVariant: WasmModule] = [:]) {
        self.status = status
        self.message = message
        self.modules = modules
    }

    public subscript(variant: WasmVariant) -> WasmModule? { modules[variant] }

    /// kedge.wasm, the module the client starts with.
    public var path: String? { modules[.slim]?.path }
    public var sha256: String? { modules[.slim]?.sha256 }
    public var size: Int? { modules[.slim]?.size }

    /// The folder of /wasm/HASH/FILE: the client finds the other modules beside kedge.wasm by file name, so one
    /// hash covers all of them, and changes when any one does, appears or disappears (immutable caching).
    var urlHash: String? {
        guard !modules.isEmpty else { return nil }
        let lines = WasmVariant.allCases.compactMap { v in modules[v].map { "\(v.fileName)\t\($0.sha256)" } }
        return String(SHA256.hexDigest(Array(lines.joined(separator: "\n").utf8)).prefix(16))
    }

    static func url(hash: String, variant: WasmVariant) -> String { "/wasm/\(hash)/\(variant.fileName)" }

    /// Why `variant` cannot be served (a 404's message).
    func whyMissing(_ variant: WasmVariant) -> String {
        if modules.isEmpty { return message ?? "\(variant.fileName) is not built" }
        switch variant {
        case .slimRelaxed, .fullRelaxed:
            let base = variant.simd128Flavour.fileName
            return "\(variant.fileName) is not in this build (built with KEDGE_WASM_RELAXED=0, or older than "
                + "\(base)); use \(base)"
        case .slim, .full:
            return "\(variant.fileName) is not in this build; rebuild with wasm/build.sh"
        }
    }
}
