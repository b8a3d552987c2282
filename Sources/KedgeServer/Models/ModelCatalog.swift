import Foundation
import NIOConcurrencyHelpers

enum ModelStatus: String, Codable, Sendable {
    case converting
    case ready
    case error
}

/// What the server knows about one model name.
struct ModelEntry: Sendable, Equatable {
    var name: String
    var kind: SourceItem.Kind
    var source: String
    var status: ModelStatus
    var error: String?
    /// The bundle being served; kept while a newer source converts or after it failed to.
    var bundle: BundleInfo?
    var signature: String?
    var sourceSHA256: String?
    var updated: Date
}

struct CascadeEntry: Sendable, Equatable {
    var name: String
    var file: String
    var path: String
    /// The sample volume served beside it (`demo_volume.npy`), if the models folder has one.
    var sampleFile: String? = nil
    var samplePath: String? = nil
}

/// The state of kedge.wasm as /api/models reports it.
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
    /// Real path of the module to serve.
    public var path: String?
    public var sha256: String?
    public var size: Int?
    public var message: String?
    /// The relaxed-SIMD build beside the module (`kedge-relaxed.wasm`), which kedge-fetch.js tries first where
    /// the browser validates relaxed SIMD: real path and SHA-256.
    public var relaxedPath: String?
    public var relaxedSHA256: String?

    public init(
        status: Status, path: String? = nil, sha256: String? = nil, size: Int? = nil, message: String? = nil,
        relaxedPath: String? = nil, relaxedSHA256: String? = nil
    ) {
        self.status = status
        self.path = path
        self.sha256 = sha256
        self.size = size
        self.message = message
        self.relaxedPath = relaxedPath
        self.relaxedSHA256 = relaxedSHA256
    }

    /// The folder of /wasm/HASH/kedge.wasm and /wasm/HASH/kedge-relaxed.wasm: the client finds the relaxed
    /// module beside the plain one, so one hash covers both, and changes when either does (immutable caching).
    var urlHash: String? {
        guard let sha256 else { return nil }
        guard let relaxedSHA256 else { return String(sha256.prefix(16)) }
        return String(SHA256.hexDigest(Array((sha256 + ":" + relaxedSHA256).utf8)).prefix(16))
    }
}

/// The published state that request handlers read: a lock-protected snapshot, and the /api/models body
/// rendered once per change (so the endpoint costs a dictionary lookup, and its ETag is stable).
final class ModelCatalog: Sendable {
    private struct State {
        var models: [String: ModelEntry] = [:]
        var cascades: [String: CascadeEntry] = [:]
        var wasm = WasmState(status: .missing)
        var api = ServedContent.memory(Data("{}".utf8), contentType: "application/json")
    }

    private let state = NIOLockedValueBox(State())

    init() {
        state.withLockedValue { $0.api = Self.render($0) }
    }

    func update(models: [String: ModelEntry], cascades: [String: CascadeEntry]) {
        state.withLockedValue { s in
            guard s.models != models || s.cascades != cascades else { return }
            s.models = models
            s.cascades = cascades
            s.api = Self.render(s)
        }
    }

    func update(wasm: WasmState) {
        state.withLockedValue { s in
            s.wasm = wasm
            s.api = Self.render(s)
        }
    }

    var wasm: WasmState { state.withLockedValue { $0.wasm } }
    var apiContent: ServedContent { state.withLockedValue { $0.api } }
    func model(named name: String) -> ModelEntry? { state.withLockedValue { $0.models[name] } }
    /// The file a /cascades/FILE URL names: a cascade.json or a cascade's sample volume; nil for anything else.
    func cascadeFile(named file: String) -> (path: String, contentType: String)? {
        state.withLockedValue { s in
            for c in s.cascades.values {
                if c.file == file { return (c.path, "application/json") }
                if c.sampleFile == file, let p = c.samplePath { return (p, "application/octet-stream") }
            }
            return nil
        }
    }
    var models: [String: ModelEntry] { state.withLockedValue { $0.models } }

    // MARK: the /api/models document

    struct APIFile: Encodable {
        var url: String
        var size: Int
        var sha256: String
    }

    struct APIModel: Encodable {
        var name: String
        var status: String
        var kind: String
        var source: String
        var error: String?
        var hash: String?
        var size: Int?
        var files: [String: APIFile]?
        var inputs: JSONValue?
        var outputs: JSONValue?
        var formatVersion: Int?
        var kerasVersion: String?
        var sourceFormat: String?
        var updated: String

        enum CodingKeys: String, CodingKey {
            case name, status, kind, source, error, hash, size, files, inputs, outputs, updated
            case formatVersion = "format_version"
            case kerasVersion = "keras_version"
            case sourceFormat = "source_format"
        }
    }

    struct APICascade: Encodable {
        var name: String
        var url: String
        var sample: String?
    }

    struct APIWasm: Encodable {
        var status: String
        var url: String?
        var size: Int?
        var sha256: String?
        var message: String?
    }

    struct APIDocument: Encodable {
        var models: [APIModel]
        var cascades: [APICascade]
        var wasm: APIWasm
    }

    static func bundleURL(name: String, hash: String, file: String) -> String { "/bundles/\(name)/\(hash)/\(file)" }

    static func apiModel(_ m: ModelEntry) -> APIModel {
        var files: [String: APIFile]?
        if let b = m.bundle {
            files = [:]
            for f in b.files {
                files![f.name] = APIFile(url: bundleURL(name: m.name, hash: b.hash, file: f.name), size: f.size, sha256: f.sha256)
            }
        }
        return APIModel(
            name: m.name, status: m.status.rawValue, kind: m.kind.rawValue, source: m.source, error: m.error,
            hash: m.bundle?.hash, size: m.bundle?.totalSize, files: files, inputs: m.bundle?.inputs,
            outputs: m.bundle?.outputs, formatVersion: m.bundle?.formatVersion,
            kerasVersion: m.bundle?.kerasVersion, sourceFormat: m.bundle?.sourceFormat,
            updated: m.updated.formatted(.iso8601))
    }

    private static func render(_ s: State) -> ServedContent {
        let iso = ISO8601DateFormatter()
        let models = s.models.values.sorted { $0.name < $1.name }.map(apiModel)
        let cascades = s.cascades.values.sorted { $0.name < $1.name }.map {
            APICascade(name: $0.name, url: "/cascades/\($0.file)", sample: $0.sampleFile.map { "/cascades/\($0)" })
        }
        let wasm = APIWasm(
            status: s.wasm.status.rawValue,
            url: s.wasm.urlHash.map { "/wasm/\($0)/kedge.wasm" },
            size: s.wasm.size, sha256: s.wasm.sha256, message: s.wasm.message)
        let data =
            (try? JSONOutput.encode(APIDocument(models: models, cascades: cascades, wasm: wasm)))
            ?? Data("{\"models\":[]}".utf8)
        return .memory(data, contentType: "application/json")
    }
}
