import CompressNIO
import Foundation
import HTTPTypes
import HummingbirdTesting
import NIOCore
import XCTest

@testable import KedgeServer

/// The same server over a real loopback socket (HummingbirdTesting `.live`), shut down gracefully at the end.
final class LiveSocketTests: XCTestCase {
    func testOverARealSocket() async throws {
        let box = try Sandbox(modelFiles: ["live.h5": "over the wire"]) { $0.pollInterval = .milliseconds(100) }
        let all = FakeBundle.weights(seed: Array("over the wire".utf8), size: 65536)
        try await box.server.makeApplication().test(.live) { client in
            try await assertEqualAsync(try await client.get("/healthz").status, .ok)
            let m = try await client.settled("live")
            XCTAssertEqual(m.status, "ready")
            let url = m.files!["model_weights.buf"]!.url
            let whole = try await client.get(url)
            XCTAssertEqual(whole.body.bytes, all)
            let part = try await client.get(url, [.range: "bytes=100-199"])
            XCTAssertEqual(part.status, .partialContent)
            XCTAssertEqual(part.body.bytes, Array(all[100..<200]))
            try await assertEqualAsync(try await client.get(url, [.range: "bytes=70000-"]).status, .rangeNotSatisfiable)
            try await assertEqualAsync(try await client.get(url, [.ifNoneMatch: whole.headers[.eTag]!]).status, .notModified)
            var gz = try await client.get(m.files!["model.json"]!.url, [.acceptEncoding: "gzip"]).body
            XCTAssertTrue(try gz.decompress(with: .gzip()).text.hasPrefix("{\"class_name\":\"Sequential\""))
            let page = try await client.get("/")
            XCTAssertEqual(page.headers[.coep], "require-corp")
            for raw in ["/../secret.txt", "/%2e%2e/secret.txt", "/%252e%252e/secret.txt", "/link-out.txt"] {
                let r = try await client.get(raw)
                XCTAssertTrue([.badRequest, .notFound].contains(r.status), raw)
                XCTAssertFalse(r.body.text.contains(Sandbox.secret), raw)
            }
            let up = try await client.executeRequest(
                uri: "/api/models?name=wire.h5", method: .post, headers: [:], body: ByteBuffer(string: "sent"))
            XCTAssertEqual(up.status, .created)
            let bad = try await client.executeRequest(
                uri: "/api/models?name=wire2.h5", method: .post, headers: [:], body: ByteBuffer(string: "BROKEN"))
            XCTAssertEqual(bad.status, .unprocessableContent)
            try await assertEqualAsync(try await client.get("/healthz").status, .ok)
        }
    }
}
