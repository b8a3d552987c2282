import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Logging
import NIOConcurrencyHelpers
import XCTest

@testable import KedgeServer

/// A stand-in for the real converter: writes a small valid bundle whose weights depend on the input's bytes,
/// fails on inputs starting with "BROKEN", writes a truncated bundle for "TRUNCATED", and counts its calls.
final class FakeConverter: ModelConverter {
    let calls = NIOLockedValueBox(0)
    let weightsSize: Int

    init(weightsSize: Int = 65536) { self.weightsSize = weightsSize }

    func convert(input: String, outputDirectory: String) async throws {
        calls.withLockedValue { $0 += 1 }
        let data = try Data(contentsOf: URL(fileURLWithPath: input))
        if data.starts(with: Array("BROKEN".utf8)) {
            throw ConversionError("fake converter: \((input as NSString).lastPathComponent) is not a Keras file")
        }
        try FakeBundle.write(to: outputDirectory, seed: Array(data), weightsSize: weightsSize,
                             truncated: data.starts(with: Array("TRUNCATED".utf8)))
    }
}

enum FakeBundle {
    static func weights(seed: [UInt8], size: Int) -> [UInt8] {
        var state: UInt64 = 0x9E37_79B9_7F4A_7C15
        for b in seed { state = (state ^ UInt64(b)) &* 0x100_0000_01B3 }
        var out = [UInt8](repeating: 0, count: size)
        for i in 0..<size {
            state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            out[i] = UInt8(truncatingIfNeeded: state >> 33)
        }
        return out
    }

    static func write(to dir: String, seed: [UInt8], weightsSize: Int, truncated: Bool = false) throws {
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        // Long enough to be worth gzipping.
        let layers = (0..<40).map { "{\"class_name\":\"Dense\",\"config\":{\"name\":\"dense_\($0)\",\"units\":16}}" }
        let model = "{\"class_name\":\"Sequential\",\"config\":{\"name\":\"fake\",\"layers\":[\(layers.joined(separator: ","))]}}"
        try Data(model.utf8).write(to: URL(fileURLWithPath: dir + "/model.json"))
        let w = weights(seed: seed, size: weightsSize)
        try Data(truncated ? Array(w.prefix(weightsSize / 2)) : w).write(to: URL(fileURLWithPath: dir + "/model_weights.buf"))
        let meta = """
            {"format":"kedge-bundle","format_version":1,"source_format":"fake","keras_version":"3.15.1",
             "inputs":[{"name":"x","shape":[null,4]}],"outputs":[{"name":"y","shape":[null,2]}],
             "weights":[{"layer_name":"d","weight_name":"kernel","dtype":"float32","shape":[\(weightsSize / 4)],
                         "offset":0,"length":\(weightsSize),"quantization":null}]}
            """
        try Data(meta.utf8).write(to: URL(fileURLWithPath: dir + "/model_metadata.json"))
    }
}

/// Stand-ins for the modules wasm/build.sh writes: the wasm header, then bytes that differ per module and compress.
enum FakeWasm {
    static func bytes(_ variant: WasmVariant, version: UInt8 = 1) -> [UInt8] {
        let tag = UInt8(WasmVariant.allCases.firstIndex(of: variant)! + 1)
        return [0, 0x61, 0x73, 0x6d, 1, 0, 0, 0] + [UInt8](repeating: tag &* 16 &+ version, count: 1000 + Int(tag) * 100)
    }

    /// Writes `variants` into `dir` in the order given (by default each relaxed flavour after its simd128
    /// module, as the build writes them) and returns what each holds.
    @discardableResult
    static func write(
        _ variants: [WasmVariant] = WasmVariant.allCases, to dir: String, version: UInt8 = 1
    ) throws -> [WasmVariant: [UInt8]] {
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        var out: [WasmVariant: [UInt8]] = [:]
        for v in variants {
            let b = bytes(v, version: version)
            try Data(b).write(to: URL(fileURLWithPath: dir + "/" + v.fileName))
            out[v] = b
        }
        return out
    }
}

/// A temporary project: models/, web/ (with a page and a secret beside it), and a server over them.
final class Sandbox: Sendable {
    let root: String
    let models: String
    let web: String
    let converter: FakeConverter
    let server: KedgeServer
    static let secret = "TOP-SECRET-CONTENT"

    init(
        converter: FakeConverter = FakeConverter(), modelFiles: [String: String] = [:],
        configure: (inout ServerOptions) -> Void = { _ in }
    ) throws {
        root = NSTemporaryDirectory() + "kedge-server-tests-" + UUID().uuidString
        models = root + "/models"
        web = root + "/web"
        let fm = FileManager.default
        try fm.createDirectory(atPath: models, withIntermediateDirectories: true)
        try fm.createDirectory(atPath: web + "/sub", withIntermediateDirectories: true)
        try Data("<!doctype html><title>kedge</title><p>\(String(repeating: "hello kedge ", count: 40))</p>".utf8)
            .write(to: URL(fileURLWithPath: web + "/index.html"))
        try Data("export const x = 1;\n".utf8).write(to: URL(fileURLWithPath: web + "/kedge.js"))
        try Data("inner page".utf8).write(to: URL(fileURLWithPath: web + "/sub/index.html"))
        try Data("hidden".utf8).write(to: URL(fileURLWithPath: web + "/.env"))
        try Data(Self.secret.utf8).write(to: URL(fileURLWithPath: root + "/secret.txt"))
        try fm.createSymbolicLink(atPath: web + "/link-out.txt", withDestinationPath: root + "/secret.txt")
        try fm.createSymbolicLink(atPath: web + "/link-dir", withDestinationPath: root)
        for (name, content) in modelFiles {
            try Data(content.utf8).write(to: URL(fileURLWithPath: models + "/" + name))
        }
        self.converter = converter
        var options = ServerOptions(modelsDirectory: models, webDirectory: web)
        options.port = 0
        options.pollInterval = nil
        options.settleTime = 0
        configure(&options)
        var logger = Logger(label: "kedge.test")
        logger.logLevel = .warning
        server = try KedgeServer(options: options, converter: converter, logger: logger)
    }

    deinit { try? FileManager.default.removeItem(atPath: root) }

    func write(_ name: String, _ content: String) throws {
        try Data(content.utf8).write(to: URL(fileURLWithPath: models + "/" + name))
    }

    /// Runs requests against the router (no socket).
    func test<T: Sendable>(_ body: @Sendable (any TestClientProtocol) async throws -> T) async throws -> T {
        try await server.makeApplication().test(.router, body)
    }
}

struct APIListing: Decodable {
    struct File: Decodable { var url: String; var size: Int; var sha256: String }
    struct Model: Decodable {
        var name: String
        var status: String
        var kind: String
        var source: String
        var error: String?
        var hash: String?
        var size: Int?
        var files: [String: File]?
        var inputs: JSONValue?
        var outputs: JSONValue?
    }
    struct Wasm: Decodable {
        var status: String
        var url: String?
        var size: Int?
        var sha256: String?
        var message: String?
        var full: File?
        var modules: [String: File]?
    }
    struct Cascade: Decodable { var name: String; var url: String; var sample: String? }
    var models: [Model]
    var cascades: [Cascade]
    var wasm: Wasm

    func model(_ name: String) -> Model? { models.first { $0.name == name } }
}

extension TestClientProtocol {
    func get(_ uri: String, _ headers: HTTPFields = [:]) async throws -> TestResponse {
        try await executeRequest(uri: uri, method: .get, headers: headers, body: nil)
    }

    func listing() async throws -> APIListing {
        let r = try await get("/api/models")
        XCTAssertEqual(r.status, .ok)
        return try JSONDecoder().decode(APIListing.self, from: Data(r.body.bytes))
    }
}

extension ByteBuffer {
    var bytes: [UInt8] { getBytes(at: readerIndex, length: readableBytes) ?? [] }
    var text: String { String(decoding: bytes, as: UTF8.self) }
}

extension HTTPField.Name {
    static var coop: Self { .init("Cross-Origin-Opener-Policy")! }
    static var coep: Self { .init("Cross-Origin-Embedder-Policy")! }
}

// XCTest's assertions take synchronous autoclosures; these take asynchronous ones.
func assertEqualAsync<T: Equatable>(
    _ a: @autoclosure () async throws -> T, _ b: @autoclosure () throws -> T, _ message: @autoclosure () -> String = "",
    file: StaticString = #filePath, line: UInt = #line
) async throws {
    let va = try await a()
    XCTAssertEqual(va, try b(), message(), file: file, line: line)
}

func assertNilAsync<T>(
    _ a: @autoclosure () async throws -> T?, _ message: @autoclosure () -> String = "", file: StaticString = #filePath,
    line: UInt = #line
) async throws {
    let va = try await a()
    XCTAssertNil(va, message(), file: file, line: line)
}

func unwrapAsync<T>(
    _ a: @autoclosure () async throws -> T?, _ message: @autoclosure () -> String = "", file: StaticString = #filePath,
    line: UInt = #line
) async throws -> T {
    let va = try await a()
    return try XCTUnwrap(va, message(), file: file, line: line)
}

extension TestClientProtocol {
    /// Polls /api/models until `name` is no longer converting (the watcher converts in the background).
    func settled(_ name: String) async throws -> APIListing.Model {
        for _ in 0..<400 {
            if let m = try await listing().model(name), m.status != "converting" { return m }
            try await Task.sleep(for: .milliseconds(25))
        }
        throw XCTSkip("\(name) still converting after 10 s")
    }
}
