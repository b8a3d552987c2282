import CompressNIO
import Foundation
import HTTPTypes
import HummingbirdTesting
import NIOCore
import XCTest

@testable import KedgeServer

/// The four modules (kedge.wasm, kedge-relaxed.wasm, kedge-full.wasm, kedge-full-relaxed.wasm): one URL hash,
/// the routes, what /api/models says, and what happens when some are missing.
final class WasmModuleTests: XCTestCase {
    static func state(_ dir: String, status: WasmState.Status = .current) throws -> WasmState {
        try XCTUnwrap(WasmBuilder(repositoryRoot: dir).describe(dir + "/kedge.wasm", status: status, message: nil))
    }

    static func error(_ r: TestResponse) -> String {
        ((try? JSONDecoder().decode([String: String].self, from: Data(r.body.bytes)))?["error"]) ?? r.body.text
    }

    func testAllFourModulesAreServedUnderOneHash() async throws {
        let box = try Sandbox()
        let dir = box.root + "/out"
        let bytes = try FakeWasm.write(to: dir)
        let state = try Self.state(dir)
        XCTAssertEqual(Set(state.modules.keys), Set(WasmVariant.allCases))
        XCTAssertNil(state.message)
        box.server.setWasm(state)
        try await box.test { client in
            let wasm = try await client.listing().wasm
            XCTAssertEqual(wasm.status, "current")
            // The fields the client reads today: kedge.wasm's.
            let url = try XCTUnwrap(wasm.url)
            XCTAssertTrue(url.hasPrefix("/wasm/") && url.hasSuffix("/kedge.wasm"), url)
            XCTAssertEqual(wasm.size, bytes[.slim]!.count)
            XCTAssertEqual(wasm.sha256, SHA256.hexDigest(bytes[.slim]!))
            let folder = String(url.dropLast("kedge.wasm".count))
            // The full build beside it, and every module by name.
            let full = try XCTUnwrap(wasm.full)
            XCTAssertEqual(full.url, folder + "kedge-full.wasm")
            XCTAssertEqual(full.size, bytes[.full]!.count)
            XCTAssertEqual(full.sha256, SHA256.hexDigest(bytes[.full]!))
            let modules = try XCTUnwrap(wasm.modules)
            XCTAssertEqual(Set(modules.keys), Set(WasmVariant.allCases.map(\.fileName)))
            for v in WasmVariant.allCases {
                let m = try XCTUnwrap(modules[v.fileName])
                // The client derives the siblings from kedge.wasm's URL by file name.
                XCTAssertEqual(m.url, folder + v.fileName)
                XCTAssertEqual(m.size, bytes[v]!.count, v.fileName)
                XCTAssertEqual(m.sha256, SHA256.hexDigest(bytes[v]!), v.fileName)

                let r = try await client.get(m.url)
                XCTAssertEqual(r.status, .ok, v.fileName)
                XCTAssertEqual(r.body.bytes, bytes[v]!, v.fileName)
                XCTAssertEqual(r.headers[.contentType], "application/wasm", v.fileName)
                XCTAssertEqual(r.headers[.cacheControl], "public, max-age=31536000, immutable", v.fileName)
                XCTAssertEqual(r.headers[.coop], "same-origin", v.fileName)
                XCTAssertEqual(r.headers[.coep], "require-corp", v.fileName)
                let etag = try XCTUnwrap(r.headers[.eTag])
                XCTAssertEqual(etag, "\"\(m.sha256.prefix(32))\"", v.fileName)
                try await assertEqualAsync(try await client.get(m.url, [.ifNoneMatch: etag]).status, .notModified, v.fileName)
                let part = try await client.get(m.url, [.range: "bytes=4-7"])
                XCTAssertEqual(part.status, .partialContent, v.fileName)
                XCTAssertEqual(part.headers[.contentRange], "bytes 4-7/\(bytes[v]!.count)", v.fileName)
                XCTAssertEqual(part.body.bytes, [1, 0, 0, 0], v.fileName)
                let gz = try await client.get(m.url, [.acceptEncoding: "gzip"])
                XCTAssertEqual(gz.headers[.contentEncoding], "gzip", v.fileName)
                var compressed = gz.body
                XCTAssertEqual(try compressed.decompress(with: .gzip()).bytes, bytes[v]!, v.fileName)
                let head = try await client.executeRequest(uri: m.url, method: .head, headers: [:], body: nil)
                XCTAssertEqual(head.status, .ok, v.fileName)
                XCTAssertEqual(head.headers[.contentLength], "\(bytes[v]!.count)", v.fileName)

                // The stable URL: same bytes, revalidated.
                let stable = try await client.get("/" + v.fileName)
                XCTAssertEqual(stable.status, .ok, v.fileName)
                XCTAssertEqual(stable.body.bytes, bytes[v]!, v.fileName)
                XCTAssertEqual(stable.headers[.contentType], "application/wasm", v.fileName)
                XCTAssertEqual(stable.headers[.cacheControl], "no-cache", v.fileName)
                XCTAssertEqual(stable.headers[.eTag], etag, v.fileName)

                // Another hash: 404, naming the module.
                let old = try await client.get("/wasm/0123456789abcdef/" + v.fileName)
                XCTAssertEqual(old.status, .notFound, v.fileName)
                XCTAssertTrue(Self.error(old).contains(v.fileName), Self.error(old))
            }
        }
    }

    func testNothingButTheFourNamesIsServedFromTheWasmFolder() async throws {
        let box = try Sandbox()
        let dir = box.root + "/out"
        try FakeWasm.write(to: dir)
        // What else an output folder holds (wasm/build.sh's intermediates, the server's stamp and log).
        for f in ["kedge.wasm.source-sha256", "build.log", "kedge.linked.wasm", "kedge-full.o", "kedge-simd128.log"] {
            try Data(Sandbox.secret.utf8).write(to: URL(fileURLWithPath: dir + "/" + f))
        }
        box.server.setWasm(try Self.state(dir))
        try await box.test { client in
            let url = try await unwrapAsync(try await client.listing().wasm.url)
            let folder = String(url.dropLast("kedge.wasm".count))
            for name in [
                "kedge.wasm.source-sha256", "build.log", "kedge.linked.wasm", "kedge-full.o", "kedge-simd128.log",
                "kedge.js", "KEDGE.WASM", "kedge-full.wasm%00", "kedge-full.wasm%2f", "%2e%2e%2fsecret.txt",
                "..%2f..%2fsecret.txt", "..%2fout%2fkedge.wasm", "kedge-full.wasm%2e", "%6bedge.wasm.source-sha256",
            ] {
                let r = try await client.get(folder + name)
                XCTAssertTrue([.badRequest, .notFound].contains(r.status), "\(name) -> \(r.status)")
                XCTAssertFalse(r.body.text.contains(Sandbox.secret), name)
            }
            let other = try await client.get(folder + "kedge.linked.wasm")
            XCTAssertTrue(Self.error(other).contains("kedge-full-relaxed.wasm"), Self.error(other))
            for raw in ["/wasm/..%2f..%2f/kedge-full.wasm", "/wasm/%2e%2e/kedge-relaxed.wasm", "/kedge.wasm.source-sha256"] {
                let r = try await client.get(raw)
                XCTAssertTrue([.badRequest, .notFound].contains(r.status), "\(raw) -> \(r.status)")
                XCTAssertFalse(r.body.text.contains(Sandbox.secret), raw)
            }
        }
    }

    func testTheHashChangesWhenAnyModuleChangesAppearsOrGoes() throws {
        let dir = NSTemporaryDirectory() + "kedge-wasm-hash-" + UUID().uuidString
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try FakeWasm.write(to: dir)
        let first = try Self.state(dir)
        let hash = try XCTUnwrap(first.urlHash)
        XCTAssertEqual(hash.count, 16)
        XCTAssertEqual(try Self.state(dir).urlHash, hash, "same files, same hash")
        var seen: Set<String> = [hash]
        for v in WasmVariant.allCases {
            try FakeWasm.write([v], to: dir, version: 2)
            // Its relaxed flavour rewritten as it was, so that it is not older and stays paired.
            if v.isRequired, let relaxed = WasmVariant.allCases.first(where: { $0 != v && $0.simd128Flavour == v }) {
                try FakeWasm.write([relaxed], to: dir, version: 1)
            }
            let s = try Self.state(dir)
            XCTAssertEqual(s.modules.count, 4)
            let h = try XCTUnwrap(s.urlHash)
            XCTAssertTrue(seen.insert(h).inserted, "\(v.fileName) changed but the hash did not")
        }
        for v in [WasmVariant.fullRelaxed, .slimRelaxed, .full] {
            try FileManager.default.removeItem(atPath: dir + "/" + v.fileName)
            let s = try Self.state(dir)
            XCTAssertNil(s[v])
            XCTAssertTrue(seen.insert(try XCTUnwrap(s.urlHash)).inserted, "\(v.fileName) went but the hash did not change")
        }
        XCTAssertNil(WasmState(status: .missing).urlHash)
    }

    func testABuildWithoutRelaxedSIMDServesWhatItHasAndSaysWhatIsMissing() async throws {
        let box = try Sandbox()
        let dir = box.root + "/out"
        let bytes = try FakeWasm.write([.slim, .full], to: dir)
        let state = try Self.state(dir)
        XCTAssertEqual(Set(state.modules.keys), [.slim, .full])
        XCTAssertNil(state.message, "relaxed SIMD is optional")
        box.server.setWasm(state)
        try await box.test { client in
            let wasm = try await client.listing().wasm
            XCTAssertEqual(Set(try XCTUnwrap(wasm.modules).keys), ["kedge.wasm", "kedge-full.wasm"])
            let url = try XCTUnwrap(wasm.url)
            let full = try await client.get(try XCTUnwrap(wasm.full?.url))
            XCTAssertEqual(full.body.bytes, bytes[.full]!)
            for (missing, use) in [("kedge-relaxed.wasm", "kedge.wasm"), ("kedge-full-relaxed.wasm", "kedge-full.wasm")] {
                for u in [url.replacingOccurrences(of: "kedge.wasm", with: missing), "/" + missing] {
                    let r = try await client.get(u)
                    XCTAssertEqual(r.status, .notFound, u)
                    let why = Self.error(r)
                    XCTAssertTrue(why.hasPrefix(missing + " is not in this build"), why)
                    XCTAssertTrue(why.hasSuffix("use " + use), why)
                    XCTAssertEqual(r.headers[.coep], "require-corp", u)
                }
            }
        }
    }

    func testWithoutKedgeFullTheRestIsServedAndTheMessageSaysSo() async throws {
        let box = try Sandbox()
        let dir = box.root + "/out"
        try FakeWasm.write([.slim, .slimRelaxed], to: dir)
        let state = try Self.state(dir, status: .unchecked)
        XCTAssertEqual(Set(state.modules.keys), [.slim, .slimRelaxed])
        box.server.setWasm(state)
        try await box.test { client in
            let wasm = try await client.listing().wasm
            XCTAssertEqual(wasm.status, "unchecked")
            XCTAssertNil(wasm.full)
            XCTAssertTrue(wasm.message?.contains("no kedge-full.wasm") == true, wasm.message ?? "")
            let url = try XCTUnwrap(wasm.url)
            try await assertEqualAsync(try await client.get(url).status, .ok)
            try await assertEqualAsync(try await client.get(url.replacingOccurrences(of: "kedge.wasm", with: "kedge-relaxed.wasm")).status, .ok)
            for u in [url.replacingOccurrences(of: "kedge.wasm", with: "kedge-full.wasm"), "/kedge-full.wasm"] {
                let r = try await client.get(u)
                XCTAssertEqual(r.status, .notFound, u)
                XCTAssertEqual(Self.error(r), "kedge-full.wasm is not in this build; rebuild with wasm/build.sh")
            }
            // kedge-full-relaxed.wasm without its kedge-full.wasm is not served either.
            try await assertEqualAsync(try await client.get("/kedge-full-relaxed.wasm").status, .notFound)
        }
    }

    func testNoModulesAtAll() async throws {
        let box = try Sandbox()
        box.server.setWasm(WasmState(status: .missing, message: "the wasm build failed: no swiftc"))
        try await box.test { client in
            let wasm = try await client.listing().wasm
            XCTAssertEqual(wasm.status, "missing")
            XCTAssertNil(wasm.url)
            XCTAssertNil(wasm.full)
            XCTAssertEqual(wasm.modules?.isEmpty, true)
            for v in WasmVariant.allCases {
                let r = try await client.get("/" + v.fileName)
                XCTAssertEqual(r.status, .notFound)
                XCTAssertEqual(Self.error(r), "the wasm build failed: no swiftc")
            }
        }
    }

    func testARelaxedModuleOlderThanItsBuildIsNotPaired() throws {
        let dir = NSTemporaryDirectory() + "kedge-wasm-pair-" + UUID().uuidString
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try FakeWasm.write(to: dir)
        let fm = FileManager.default
        let old = Date().addingTimeInterval(-3600)
        try fm.setAttributes([.modificationDate: old], ofItemAtPath: dir + "/kedge-full-relaxed.wasm")
        // kedge-full.wasm older than kedge.wasm is fine: the build makes the two side by side, in either order.
        try fm.setAttributes([.modificationDate: old.addingTimeInterval(-60)], ofItemAtPath: dir + "/kedge-full.wasm")
        XCTAssertEqual(Set(try Self.state(dir).modules.keys), [.slim, .slimRelaxed, .full, .fullRelaxed])
        try fm.setAttributes([.modificationDate: Date()], ofItemAtPath: dir + "/kedge-full.wasm")
        let s = try Self.state(dir)
        XCTAssertEqual(Set(s.modules.keys), [.slim, .slimRelaxed, .full])
        XCTAssertTrue(s.whyMissing(.fullRelaxed).contains("older than kedge-full.wasm"), s.whyMissing(.fullRelaxed))
        try fm.setAttributes([.modificationDate: old], ofItemAtPath: dir + "/kedge-relaxed.wasm")
        XCTAssertEqual(Set(try Self.state(dir).modules.keys), [.slim, .full])
    }

    func testAModuleReplacedOnDiskIsNotServedUnderItsOldHash() async throws {
        let box = try Sandbox()
        let dir = box.root + "/out"
        try FakeWasm.write(to: dir)
        box.server.setWasm(try Self.state(dir))
        try await box.test { client in
            let full = try await unwrapAsync(try await client.listing().wasm.full)
            try await assertEqualAsync(try await client.get(full.url).status, .ok)
            // Another size, so that the file cache sees the change whatever the clock's resolution.
            let newer = FakeWasm.bytes(.full, version: 3) + [9]
            try Data(newer).write(to: URL(fileURLWithPath: dir + "/kedge-full.wasm"))
            let r = try await client.get(full.url)
            XCTAssertEqual(r.status, .notFound)
            XCTAssertTrue(Self.error(r).contains("kedge-full.wasm changed on disk"), Self.error(r))
            // The stable URL revalidates, so it serves what is there.
            try await assertEqualAsync(try await client.get("/kedge-full.wasm").body.bytes, newer)
        }
    }
}
