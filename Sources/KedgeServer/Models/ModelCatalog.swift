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

    /// `url`, `size` and `sha256` are kedge.wasm's (what the client starts with); `full` is kedge-full.wasm, and
    /// `modules` every module there is, by file name, all under the same /wasm/HASH/ folder.
    struct APIWasm: Encodable {
        var status: String
        var url: String?
        var size: Int?
        var sha256: String?
        var message: String?
        var full: APIFile?
        var modules: [String: APIFile]
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
        var modules: [String: APIFile] = [:]
        if let hash = s.wasm.urlHash {
            for (v, m) in s.wasm.modules {
                modules[v.fileName] = APIFile(url: WasmState.url(hash: hash, variant: v), size: m.size, sha256: m.sha256)
            }
        }
        let wasm = APIWasm(
            status: s.wasm.status.rawValue, url: modules[WasmVariant.slim.fileName]?.url, size: s.wasm.size,
            sha256: s.wasm.sha256, message: s.wasm.message, full: modules[WasmVariant.full.fileName], modules: modules)
        let data =
            (try? JSONOutput.encode(APIDocument(models: models, cascades: cascades, wasm: wasm)))
            ?? Data("{\"models\":[]}".utf8)
        return .memory(data, contentType: "application/json")
    }
}
