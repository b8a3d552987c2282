import CompressNIO
import Foundation
import HTTPTypes
import HummingbirdTesting
import NIOCore
import XCTest

@testable import KedgeServer

/// Strong ETags and 304, byte ranges (206/416), gzip, MIME types, wasm, pages.
final class CachingRangeGzipTests: XCTestCase {
    static func weightsURL(_ client: any TestClientProtocol) async throws -> (String, APIListing.File) {
        let m = try await unwrapAsync(try await client.listing().model("w"))
        let f = try XCTUnwrap(m.files?["model_weights.buf"])
        return (f.url, f)
    }

    func testETagAnd304() async throws {
        let box = try Sandbox(modelFiles: ["w.h5": "weights"])
        try await box.test { client in
            let (url, file) = try await Self.weightsURL(client)
            let first = try await client.get(url)
            let etag = try XCTUnwrap(first.headers[.eTag])
            XCTAssertEqual(etag, "\"\(file.sha256.prefix(32))\"")
            XCTAssertFalse(etag.hasPrefix("W/"))
            let again = try await client.get(url, [.ifNoneMatch: etag])
            XCTAssertEqual(again.status, .notModified)
            XCTAssertEqual(again.body.readableBytes, 0)
            XCTAssertEqual(again.headers[.eTag], etag)
            try await assertEqualAsync(try await client.get(url, [.ifNoneMatch: "\"other\", W/\(etag)"]).status, .notModified)
            try await assertEqualAsync(try await client.get(url, [.ifNoneMatch: "\"other\""]).status, .ok)
            // The listing itself revalidates the same way.
            let api = try await client.get("/api/models")
            XCTAssertEqual(api.headers[.cacheControl], "no-cache")
            let apiTag = try XCTUnwrap(api.headers[.eTag])
            try await assertEqualAsync(try await client.get("/api/models", [.ifNoneMatch: apiTag]).status, .notModified)
            // A page too.
            let page = try await client.get("/index.html")
            try await assertEqualAsync(try await client.get("/index.html", [.ifNoneMatch: page.headers[.eTag]!]).status, .notModified)
        }
    }

    func testRanges() async throws {
        let box = try Sandbox(modelFiles: ["w.h5": "weights"])
        let all = FakeBundle.weights(seed: Array("weights".utf8), size: 65536)
        try await box.test { client in
            let (url, _) = try await Self.weightsURL(client)
            let r = try await client.get(url, [.range: "bytes=0-99"])
            XCTAssertEqual(r.status, .partialContent)
            XCTAssertEqual(r.headers[.contentRange], "bytes 0-99/65536")
            XCTAssertEqual(r.headers[.contentLength], "100")
            XCTAssertEqual(r.body.bytes, Array(all[0..<100]))
            let mid = try await client.get(url, [.range: "bytes=1000-1999"])
            XCTAssertEqual(mid.body.bytes, Array(all[1000..<2000]))
            let open = try await client.get(url, [.range: "bytes=65000-"])
            XCTAssertEqual(open.headers[.contentRange], "bytes 65000-65535/65536")
            XCTAssertEqual(open.body.bytes, Array(all[65000...]))
            let suffix = try await client.get(url, [.range: "bytes=-16"])
            XCTAssertEqual(suffix.headers[.contentRange], "bytes 65520-65535/65536")
            XCTAssertEqual(suffix.body.bytes, Array(all.suffix(16)))
            let clamped = try await client.get(url, [.range: "bytes=65530-99999999999999999999"])
            XCTAssertEqual(clamped.headers[.contentRange], "bytes 65530-65535/65536")
            // Past the end: 416 with the size.
            let past = try await client.get(url, [.range: "bytes=65536-"])
            XCTAssertEqual(past.status, .rangeNotSatisfiable)
            XCTAssertEqual(past.headers[.contentRange], "bytes */65536")
            try await assertEqualAsync(try await client.get(url, [.range: "bytes=-0"]).status, .rangeNotSatisfiable)
            // Several ranges, other units, nonsense: the whole file.
            for h in ["bytes=0-1,5-6", "items=0-1", "bytes=5-1", "bytes=abc", "bytes=-"] {
                let whole = try await client.get(url, [.range: h])
                XCTAssertEqual(whole.status, .ok, h)
                XCTAssertEqual(whole.body.readableBytes, 65536, h)
            }
            // If-Range with a stale validator: the whole (current) file.
            let stale = try await client.get(url, [.range: "bytes=0-9", .ifRange: "\"stale\""])
            XCTAssertEqual(stale.status, .ok)
            let etag = try await client.get(url).headers[.eTag]!
            try await assertEqualAsync(try await client.get(url, [.range: "bytes=0-9", .ifRange: etag]).status, .partialContent)
        }
    }

    func testGzipForTextJSONAndWasmOnly() async throws {
        let box = try Sandbox(modelFiles: ["w.h5": "weights"])
        let wasmPath = box.root + "/kedge.wasm"
        // A wasm-like body that compresses: magic, version, then repetitive bytes.
        try Data([0, 0x61, 0x73, 0x6d, 1, 0, 0, 0] + [UInt8](repeating: 7, count: 4000)).write(to: URL(fileURLWithPath: wasmPath))
        box.server.setWasm(WasmBuilder(repositoryRoot: box.root).describe(wasmPath, status: .current, message: nil)!)
        try await box.test { client in
            let m = try await unwrapAsync(try await client.listing().model("w"))
            let modelURL = m.files!["model.json"]!.url
            let plain = try await client.get(modelURL)
            XCTAssertNil(plain.headers[.contentEncoding])
            XCTAssertEqual(plain.headers[.contentType], "application/json")
            XCTAssertEqual(plain.headers[.vary], "Accept-Encoding")
            for url in [modelURL, "/api/models", "/index.html", "/kedge.wasm"] {
                let identity = try await client.get(url)
                let gz = try await client.get(url, [.acceptEncoding: "br;q=1.0, gzip;q=0.8, *;q=0.1"])
                XCTAssertEqual(gz.headers[.contentEncoding], "gzip", url)
                XCTAssertLessThan(gz.body.readableBytes, identity.body.readableBytes, url)
                var compressed = gz.body
                let inflated = try compressed.decompress(with: .gzip())
                XCTAssertEqual(inflated.bytes, identity.body.bytes, url)
                XCTAssertNotEqual(gz.headers[.eTag], identity.headers[.eTag], url)
                // Either representation's tag revalidates.
                let tag = gz.headers[.eTag]!
                try await assertEqualAsync(
                    try await client.get(url, [.acceptEncoding: "gzip", .ifNoneMatch: tag]).status, .notModified, url)
            }
            try await assertNilAsync(try await client.get(modelURL, [.acceptEncoding: "gzip;q=0"]).headers[.contentEncoding])
            // Float weights do not compress: always identity.
            let w = try await client.get(m.files!["model_weights.buf"]!.url, [.acceptEncoding: "gzip"])
            XCTAssertNil(w.headers[.contentEncoding])
            XCTAssertEqual(w.body.readableBytes, 65536)
            // A range is of the identity form even when gzip is accepted.
            let part = try await client.get(modelURL, [.acceptEncoding: "gzip", .range: "bytes=0-9"])
            XCTAssertEqual(part.status, .partialContent)
            XCTAssertNil(part.headers[.contentEncoding])
            XCTAssertEqual(part.body.text, String(plain.body.text.prefix(10)))
        }
    }

    func testWasmTypesVersionsAndMissing() async throws {
        let box = try Sandbox()
        try await box.test { client in
            try await assertEqualAsync(try await client.get("/kedge.wasm").status, .notFound)
            try await assertEqualAsync(try await client.listing().wasm.status, "missing")
        }
        let wasmPath = box.root + "/kedge.wasm"
        try Data([0, 0x61, 0x73, 0x6d, 1, 0, 0, 0]).write(to: URL(fileURLWithPath: wasmPath))
        box.server.setWasm(WasmBuilder(repositoryRoot: box.root).describe(wasmPath, status: .current, message: nil)!)
        try await box.test { client in
            let listing = try await client.listing()
            XCTAssertEqual(listing.wasm.status, "current")
            let url = try XCTUnwrap(listing.wasm.url)
            let r = try await client.get(url)
            XCTAssertEqual(r.status, .ok)
            XCTAssertEqual(r.headers[.contentType], "application/wasm")
            XCTAssertEqual(r.headers[.cacheControl], "public, max-age=31536000, immutable")
            XCTAssertEqual(r.body.bytes, [0, 0x61, 0x73, 0x6d, 1, 0, 0, 0])
            let stable = try await client.get("/kedge.wasm")
            XCTAssertEqual(stable.headers[.contentType], "application/wasm")
            XCTAssertEqual(stable.headers[.cacheControl], "no-cache")
            try await assertEqualAsync(try await client.get("/wasm/0123456789abcdef/kedge.wasm").status, .notFound)
            // No relaxed-SIMD build beside it: the client's try of kedge-relaxed.wasm gets a 404 and falls back.
            let relaxed = url.replacingOccurrences(of: "kedge.wasm", with: "kedge-relaxed.wasm")
            try await assertEqualAsync(try await client.get(relaxed).status, .notFound)
        }
    }

    func testPagesHeadersAndMIME() async throws {
        let box = try Sandbox()
        try await box.test { client in
            let root = try await client.get("/")
            XCTAssertEqual(root.status, .ok)
            XCTAssertEqual(root.headers[.contentType], "text/html; charset=utf-8")
            XCTAssertTrue(root.body.text.hasPrefix("<!doctype html>"))
            XCTAssertEqual(root.headers[.coop], "same-origin")
            XCTAssertEqual(root.headers[.coep], "require-corp")
            XCTAssertEqual(root.headers[.crossOriginResourcePolicy], "same-origin")
            XCTAssertEqual(root.headers[.xContentTypeOptions], "nosniff")
            try await assertEqualAsync(try await client.get("/kedge.js").headers[.contentType], "text/javascript; charset=utf-8")
            try await assertEqualAsync(try await client.get("/sub/").body.text, "inner page")
            try await assertEqualAsync(try await client.get("/sub").body.text, "inner page")
            // Errors carry the isolation headers as well, and a JSON body.
            let missing = try await client.get("/nope.js")
            XCTAssertEqual(missing.status, .notFound)
            XCTAssertEqual(missing.headers[.coep], "require-corp")
            XCTAssertEqual(missing.headers[.contentType], "application/json")
            let head = try await client.executeRequest(uri: "/index.html", method: .head, headers: [:], body: nil)
            XCTAssertEqual(head.status, .ok)
            XCTAssertEqual(head.body.readableBytes, 0)
            XCTAssertEqual(head.headers[.contentLength], root.headers[.contentLength])
            let health = try await client.get("/healthz")
            XCTAssertEqual(health.body.text, "{\"status\":\"ok\"}")
        }
    }
}
