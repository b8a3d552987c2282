import Foundation
import HTTPTypes
import HummingbirdTesting
import XCTest

@testable import KedgeServer

/// Path traversal in every spelling, symlinks out of the roots, hidden files, CORS.
final class SecurityTests: XCTestCase {
    static let traversals = [
        "/../secret.txt",
        "/../../../../etc/passwd",
        "/..%2fsecret.txt",
        "/..%2Fsecret.txt",
        "/%2e%2e/secret.txt",
        "/%2E%2E/secret.txt",
        "/%2e%2e%2fsecret.txt",
        "/.%2e/secret.txt",
        "/%252e%252e/secret.txt",
        "/%252e%252e%252fsecret.txt",
        "/sub/../../secret.txt",
        "/sub/%2e%2e/%2e%2e/secret.txt",
        "/..\\secret.txt",
        "/%5c..%5csecret.txt",
        "/sub%5c..%5c..%5csecret.txt",
        "/index.html%00.js",
        "/%00",
        "/secret.txt%00",
        "//etc/passwd",
        "/%2fetc%2fpasswd",
        "/%2F..%2F..%2Fsecret.txt",
        "/link-out.txt",
        "/link-dir/secret.txt",
        "/.env",
        "/%2eenv",
        "/sub/./../.env",
        "/%c0%ae%c0%ae/secret.txt",
        "/%zz",
        "/bundles/..%2f..%2fsecret.txt/x/model.json",
        "/bundles/t/..%2f..%2f..%2fsecret.txt/model.json",
        "/bundles/t/HASH/..%2fcurrent.json",
        "/bundles/t/HASH/%2e%2e%2f%2e%2e%2fsecret.txt",
        "/bundles/t/HASH/current.json",
        "/bundles/..%2ft/HASH/model.json",
        "/cascades/..%2fsecret.txt",
        "/cascades/%2e%2e%2f%2e%2e%2fsecret.txt",
        "/wasm/..%2f..%2f/kedge.wasm",
    ]

    func testTraversalVariantsNeverLeaveTheRoots() async throws {
        let box = try Sandbox(modelFiles: ["t.h5": "model t"])
        try await box.test { client in
            let hash = try await unwrapAsync(try await client.listing().model("t")?.hash)
            for raw in Self.traversals {
                let uri = raw.replacingOccurrences(of: "HASH", with: hash)
                let r = try await client.get(uri)
                XCTAssertTrue([.badRequest, .notFound].contains(r.status), "\(uri) -> \(r.status)")
                XCTAssertFalse(r.body.text.contains(Sandbox.secret), uri)
                XCTAssertFalse(r.body.text.contains("root:"), uri)
                XCTAssertFalse(r.body.text.contains("sourceSHA256"), uri)
            }
            // The server is still fine afterwards.
            try await assertEqualAsync(try await client.get("/healthz").status, .ok)
        }
    }

    func testClearTraversalsAreBadRequests() {
        for raw in ["/../x", "/%2e%2e/x", "/%252e%252e/x", "/a\\b", "/a%5cb", "/a%00b", "/a%zzb", "/.hidden"] {
            if case .success = PathSafety.segments(ofRawPath: raw) { XCTFail(raw) }
        }
        XCTAssertEqual(try? PathSafety.segments(ofRawPath: "/a/b%20c/d.js").get(), ["a", "b c", "d.js"])
        XCTAssertEqual(try? PathSafety.segments(ofRawPath: "//a//b/").get(), ["a", "b"])
    }

    func testSymlinkInsideTheRootIsServed() async throws {
        let box = try Sandbox()
        try FileManager.default.createSymbolicLink(atPath: box.web + "/alias.js", withDestinationPath: box.web + "/kedge.js")
        try await box.test { client in
            try await assertEqualAsync(try await client.get("/alias.js").status, .ok)
        }
    }

    func testSymlinkedModelPointingOutsideIsIgnored() async throws {
        let box = try Sandbox()
        try Data("outside model".utf8).write(to: URL(fileURLWithPath: box.root + "/outside.h5"))
        try FileManager.default.createSymbolicLink(atPath: box.models + "/sneaky.h5", withDestinationPath: box.root + "/outside.h5")
        await box.server.scanModels()
        XCTAssertNil(box.server.catalog.model(named: "sneaky"))
        XCTAssertEqual(box.converter.calls.withLockedValue { $0 }, 0)
    }

    func testNoCORSByDefault() async throws {
        let box = try Sandbox()
        try await box.test { client in
            let r = try await client.get("/api/models", [.origin: "https://elsewhere.example"])
            XCTAssertNil(r.headers[.accessControlAllowOrigin])
        }
    }

    func testConfiguredCORSOrigins() async throws {
        let box = try Sandbox(modelFiles: ["c.h5": "cors"]) { $0.corsOrigins = ["https://app.example"] }
        try await box.test { client in
            let ok = try await client.get("/api/models", [.origin: "https://app.example"])
            XCTAssertEqual(ok.headers[.accessControlAllowOrigin], "https://app.example")
            XCTAssertTrue(ok.headers[values: .vary].contains("Origin"))
            XCTAssertTrue(ok.headers[.accessControlExposeHeaders]?.contains("Content-Range") == true)
            XCTAssertEqual(ok.headers[.crossOriginResourcePolicy], "cross-origin")
            let other = try await client.get("/api/models", [.origin: "https://evil.example"])
            XCTAssertNil(other.headers[.accessControlAllowOrigin])
            let pre = try await client.executeRequest(
                uri: "/bundles/c/x/model_weights.buf", method: .options,
                headers: [.origin: "https://app.example", .accessControlRequestMethod: "GET",
                          .accessControlRequestHeaders: "range"],
                body: nil)
            XCTAssertEqual(pre.status, .noContent)
            XCTAssertEqual(pre.headers[.accessControlAllowOrigin], "https://app.example")
            XCTAssertTrue(pre.headers[.accessControlAllowHeaders]?.contains("Range") == true)
            XCTAssertTrue(pre.headers[.accessControlAllowMethods]?.contains("GET") == true)
            let prEvil = try await client.executeRequest(
                uri: "/api/models", method: .options,
                headers: [.origin: "https://evil.example", .accessControlRequestMethod: "POST"], body: nil)
            XCTAssertNil(prEvil.headers[.accessControlAllowOrigin])
            XCTAssertNil(prEvil.headers[.accessControlAllowMethods])
        }
    }

    func testWildcardCORS() async throws {
        let box = try Sandbox { $0.corsOrigins = ["*"] }
        try await box.test { client in
            let r = try await client.get("/healthz", [.origin: "https://any.example"])
            XCTAssertEqual(r.headers[.accessControlAllowOrigin], "*")
        }
    }
}
