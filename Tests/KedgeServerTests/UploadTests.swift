import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import NIOEmbedded
import NIOCore
import XCTest

@testable import KedgeServer

/// POST /api/models?name=NAME: staged, converted, published atomically; limits and names enforced.
final class UploadTests: XCTestCase {
    static func post(_ client: any TestClientProtocol, _ query: String, _ body: [UInt8]) async throws -> TestResponse {
        try await client.executeRequest(
            uri: "/api/models?" + query, method: .post, headers: [.contentType: "application/octet-stream"],
            body: ByteBuffer(bytes: body))
    }

    func testUploadIsConvertedPublishedAndListed() async throws {
        let box = try Sandbox()
        try await box.test { client in
            let r = try await Self.post(client, "name=uploaded.h5", Array("uploaded model".utf8))
            XCTAssertEqual(r.status, .created, r.body.text)
            let entry = try JSONDecoder().decode(APIListing.Model.self, from: Data(r.body.bytes))
            XCTAssertEqual(entry.name, "uploaded")
            XCTAssertEqual(entry.status, "ready")
            XCTAssertEqual(entry.source, "uploaded.h5")
            let listed = try await unwrapAsync(try await client.listing().model("uploaded"))
            XCTAssertEqual(listed.hash, entry.hash)
            let w = try await client.get(listed.files!["model_weights.buf"]!.url)
            XCTAssertEqual(w.body.bytes, FakeBundle.weights(seed: Array("uploaded model".utf8), size: 65536))
        }
        // The source now lives in the models folder, and the watcher does not convert it again.
        XCTAssertEqual(try String(contentsOfFile: box.models + "/uploaded.h5", encoding: .utf8), "uploaded model")
        XCTAssertEqual(box.converter.calls.withLockedValue { $0 }, 1)
        await box.server.scanModels()
        XCTAssertEqual(box.converter.calls.withLockedValue { $0 }, 1)
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: box.models + "/.kedge-bundles/.tmp"), [])
    }

    func testFormatIsSniffedWhenTheNameHasNoExtension() async throws {
        let box = try Sandbox()
        try await box.test { client in
            let hdf5: [UInt8] = [0x89, 0x48, 0x44, 0x46, 0x0d, 0x0a, 0x1a, 0x0a] + Array("rest".utf8)
            try await assertEqualAsync(try await Self.post(client, "name=sniffed", hdf5).status, .created)
            try await assertEqualAsync(try await Self.post(client, "name=trees", Array("{\"learner\":{}}".utf8)).status, .created)
            try await assertEqualAsync(try await Self.post(client, "name=ubj", [UInt8(ascii: "{"), UInt8(ascii: "L"), 0, 0]).status, .created)
            try await assertEqualAsync(try await Self.post(client, "name=mystery", Array("plain text".utf8)).status, .unsupportedMediaType)
            try await assertEqualAsync(try await Self.post(client, "name=explicit&format=keras", Array("plain".utf8)).status, .created)
        }
        for f in ["sniffed.h5", "trees.json", "ubj.ubj", "explicit.keras"] {
            XCTAssertTrue(FileManager.default.fileExists(atPath: box.models + "/" + f), f)
        }
        XCTAssertFalse(FileManager.default.fileExists(atPath: box.models + "/mystery"))
    }

    func testReplacingAnUploadPublishesANewVersion() async throws {
        let box = try Sandbox()
        try await box.test { client in
            let a = try await Self.post(client, "name=v.h5", Array("one".utf8))
            let b = try await Self.post(client, "name=v.h5", Array("two".utf8))
            XCTAssertEqual(b.status, .created)
            let ha = try JSONDecoder().decode(APIListing.Model.self, from: Data(a.body.bytes)).hash
            let hb = try JSONDecoder().decode(APIListing.Model.self, from: Data(b.body.bytes)).hash
            XCTAssertNotEqual(ha, hb)
            try await assertEqualAsync(try await client.listing().model("v")?.hash, hb)
        }
    }

    func testOversizeUploadIsRefused() async throws {
        let box = try Sandbox { $0.maxUploadBytes = 1000 }
        try await box.test { client in
            let r = try await Self.post(client, "name=big.h5", [UInt8](repeating: 1, count: 5000))
            XCTAssertEqual(r.status, .contentTooLarge)
            XCTAssertTrue(r.body.text.contains("limit"))
            try await assertEqualAsync(try await Self.post(client, "name=fits.h5", [UInt8](repeating: 1, count: 1000)).status, .created)
            try await assertEqualAsync(try await client.get("/healthz").status, .ok)
        }
        XCTAssertFalse(FileManager.default.fileExists(atPath: box.models + "/big.h5"))
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: box.models + "/.kedge-bundles/.tmp"), [])
    }

    func testOversizeWithoutContentLengthIsRefusedWhileStreaming() async throws {
        let box = try Sandbox { $0.maxUploadBytes = 1000 }
        // Straight to the handler with a body that declares no length.
        let (body, source) = RequestBody.makeStream()
        Task {
            for _ in 0..<10 { await source.yield(ByteBuffer(bytes: [UInt8](repeating: 2, count: 300))) }
            source.finish()
        }
        let request = Request(
            head: HTTPRequest(method: .post, scheme: "http", authority: "localhost", path: "/api/models?name=stream.h5"),
            body: body)
        do {
            _ = try await box.server.handleUpload(request, context: .init(source: .init(channel: EmbeddedChannel(), logger: box.server.logger)))
            XCTFail("accepted 3000 bytes with a limit of 1000")
        } catch let e as HTTPError {
            XCTAssertEqual(e.status, .contentTooLarge)
        }
        XCTAssertFalse(FileManager.default.fileExists(atPath: box.models + "/stream.h5"))
    }

    func testBadNamesAreRefused() async throws {
        let box = try Sandbox()
        let bad = [
            "name=", "name=..", "name=.hidden", "name=../escape", "name=a/b", "name=a%2fb", "name=a%5cb", "name=x%00y",
            "name=sp%20ace", "name=" + String(repeating: "n", count: 129), "name=cascade", "name=%2e%2e", "name=caf%C3%A9", "",
            "other=x",
        ]
        try await box.test { client in
            for q in bad {
                let r = try await Self.post(client, q, Array("BROKEN".utf8))
                XCTAssertEqual(r.status, .badRequest, "\(q) -> \(r.status)")
            }
            try await assertEqualAsync(try await Self.post(client, "name=ok.h5&format=exe", Array("x".utf8)).status, .unsupportedMediaType)
            try await assertEqualAsync(try await Self.post(client, "name=empty.h5", []).status, .badRequest)
        }
        XCTAssertEqual(box.converter.calls.withLockedValue { $0 }, 0)
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: box.models).filter { !$0.hasPrefix(".") }, [])
    }

    func testCorruptUploadReportsTheErrorAndTheServerStaysUp() async throws {
        let box = try Sandbox(modelFiles: ["keep.h5": "existing"])
        try await box.test { client in
            let r = try await Self.post(client, "name=corrupt.h5", Array("BROKEN upload".utf8))
            XCTAssertEqual(r.status, .unprocessableContent)
            let message = try JSONDecoder().decode([String: String].self, from: Data(r.body.bytes))["error"]
            XCTAssertEqual(message, "conversion failed: fake converter: corrupt.h5 is not a Keras file")
            try await assertEqualAsync(try await client.get("/healthz").status, .ok)
            let listing = try await client.listing()
            XCTAssertNil(listing.model("corrupt"))
            XCTAssertEqual(listing.model("keep")?.status, "ready")
            // A later good upload of the same name works.
            try await assertEqualAsync(try await Self.post(client, "name=corrupt.h5", Array("fixed".utf8)).status, .created)
        }
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: box.models + "/.kedge-bundles/.tmp"), [])
    }

    func testUploadCannotShadowAnotherSource() async throws {
        let box = try Sandbox(modelFiles: ["taken.keras": "from disk"])
        try FakeBundle.write(to: box.models + "/folder", seed: [9], weightsSize: 64)
        try await box.test { client in
            try await assertEqualAsync(try await Self.post(client, "name=taken.h5", Array("new".utf8)).status, .conflict)
            try await assertEqualAsync(try await Self.post(client, "name=folder.h5", Array("new".utf8)).status, .conflict)
            try await assertEqualAsync(try await client.listing().model("taken")?.source, "taken.keras")
        }
    }

    func testUploadsCanBeTurnedOff() async throws {
        let box = try Sandbox { $0.uploadsEnabled = false }
        try await box.test { client in
            try await assertEqualAsync(try await Self.post(client, "name=x.h5", Array("x".utf8)).status, .forbidden)
        }
    }

    func testSniffing() {
        XCTAssertEqual(KedgeServer.sniffFormat([0x89, 0x48, 0x44, 0x46, 0x0d, 0x0a, 0x1a, 0x0a]), "h5")
        XCTAssertEqual(KedgeServer.sniffFormat([0x50, 0x4b, 0x03, 0x04, 0]), "keras")
        XCTAssertEqual(KedgeServer.sniffFormat(Array("  {\"a\":1}".utf8)), "json")
        XCTAssertEqual(KedgeServer.sniffFormat(Array("{}".utf8)), "json")
        XCTAssertEqual(KedgeServer.sniffFormat(Array("{i\u{7}learner".utf8)), "ubj")
        XCTAssertNil(KedgeServer.sniffFormat(Array("MZ\u{90}".utf8)))
        XCTAssertNil(KedgeServer.sniffFormat([]))
    }
}
