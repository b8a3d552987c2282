import Foundation
import Logging
import XCTest

@testable import KedgeServer

final class HashAndHeaderTests: XCTestCase {
    func testSHA256KnownVectors() {
        XCTAssertEqual(SHA256.hexDigest([UInt8]()), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        XCTAssertEqual(SHA256.hexDigest(Array("abc".utf8)), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        XCTAssertEqual(
            SHA256.hexDigest(Array("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq".utf8)),
            "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1")
        // Fed in odd pieces: same digest as in one go.
        let data = (0..<1000).map { UInt8(truncatingIfNeeded: $0 &* 31) }
        var h = SHA256()
        var i = 0
        for step in [1, 63, 64, 65, 7, 300] where i < data.count {
            h.update(data[i..<min(data.count, i + step)])
            i += step
        }
        h.update(data[min(i, data.count)...])
        XCTAssertEqual(SHA256.hex(h.finalize()), SHA256.hexDigest(data))
    }

    func testRangeParsing() {
        XCTAssertEqual(ContentResponder.parseRange("bytes=0-0", size: 10), .range(0...0))
        XCTAssertEqual(ContentResponder.parseRange("bytes=5-", size: 10), .range(5...9))
        XCTAssertEqual(ContentResponder.parseRange("bytes=-3", size: 10), .range(7...9))
        XCTAssertEqual(ContentResponder.parseRange("bytes=-30", size: 10), .range(0...9))
        XCTAssertEqual(ContentResponder.parseRange("bytes=2-100", size: 10), .range(2...9))
        XCTAssertEqual(ContentResponder.parseRange("bytes=10-", size: 10), .unsatisfiable)
        XCTAssertEqual(ContentResponder.parseRange("bytes=0-1", size: 0), .unsatisfiable)
        XCTAssertEqual(ContentResponder.parseRange("bytes=3-2", size: 10), .ignore)
        XCTAssertEqual(ContentResponder.parseRange("bytes=0-1, 3-4", size: 10), .ignore)
        XCTAssertEqual(ContentResponder.parseRange("bytes=x-1", size: 10), .ignore)
        XCTAssertEqual(ContentResponder.parseRange("lines=1-2", size: 10), .ignore)
    }

    func testAcceptEncoding() {
        XCTAssertTrue(ContentResponder.acceptsGzip(["gzip, deflate, br"]))
        XCTAssertTrue(ContentResponder.acceptsGzip(["br", "GZIP;q=0.5"]))
        XCTAssertTrue(ContentResponder.acceptsGzip(["*"]))
        XCTAssertFalse(ContentResponder.acceptsGzip(["gzip;q=0"]))
        XCTAssertFalse(ContentResponder.acceptsGzip(["br, identity"]))
        XCTAssertFalse(ContentResponder.acceptsGzip([]))
    }

    func testModelNames() {
        for ok in ["a", "sex_v2", "roi-2d.v1", "A.B-C_D", String(repeating: "x", count: 128)] {
            XCTAssertTrue(ModelName.isValid(ok), ok)
        }
        for bad in ["", ".", "..", ".x", "a/b", "a\\b", "a b", "é", "a\u{0}", String(repeating: "x", count: 129)] {
            XCTAssertFalse(ModelName.isValid(bad), bad)
        }
    }
}

final class ConverterProcessTests: XCTestCase {
    func testChildFailureMessageIsReported() async throws {
        let c = SubprocessConverter(
            executable: "/bin/sh", arguments: ["-c", "echo \"cannot read $1: not an HDF5 file\" >&2; exit 3", "sh"])
        let dir = NSTemporaryDirectory() + UUID().uuidString
        do {
            try await c.convert(input: "/tmp/x.h5", outputDirectory: dir)
            XCTFail("no error")
        } catch let e as ConversionError {
            XCTAssertEqual(e.message, "cannot read /tmp/x.h5: not an HDF5 file")
        }
    }

    func testCrashingChildIsReported() async throws {
        let c = SubprocessConverter(executable: "/bin/sh", arguments: ["-c", "kill -SEGV $$", "sh"])
        do {
            try await c.convert(input: "in", outputDirectory: NSTemporaryDirectory() + UUID().uuidString)
            XCTFail("no error")
        } catch let e as ConversionError {
            XCTAssertTrue(e.message.contains("killed by signal 11"), e.message)
        }
    }

    /// `exec`: a child that forks keeps the parent waiting for its own children (they inherit the
    /// descriptor Foundation watches), which a real converter does not do.
    func testSlowChildIsStopped() async throws {
        let c = SubprocessConverter(executable: "/bin/sh", arguments: ["-c", "exec sleep 30", "sh"], timeout: .milliseconds(300))
        let start = Date()
        do {
            try await c.convert(input: "in", outputDirectory: NSTemporaryDirectory() + UUID().uuidString)
            XCTFail("no error")
        } catch let e as ConversionError {
            XCTAssertTrue(e.message.contains("took longer"), e.message)
        }
        XCTAssertLessThan(Date().timeIntervalSince(start), 20)
    }

    func testSuccessfulChild() async throws {
        let c = SubprocessConverter(executable: "/bin/sh", arguments: ["-c", "mkdir -p \"$3\" && echo ok > \"$3/made\"", "sh"])
        let dir = NSTemporaryDirectory() + UUID().uuidString
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try await c.convert(input: "in", outputDirectory: dir)
        XCTAssertTrue(FileManager.default.fileExists(atPath: dir + "/made"))
    }
}

final class WasmBuilderTests: XCTestCase {
    var root = ""
    let logger = Logger(label: "wasm.test")

    override func setUpWithError() throws {
        root = NSTemporaryDirectory() + "kedge-wasm-" + UUID().uuidString
        let fm = FileManager.default
        for d in ["Sources/KedgeCore", "Sources/KedgeWasm", "wasm"] {
            try fm.createDirectory(atPath: root + "/" + d, withIntermediateDirectories: true)
        }
        try "struct Core {}".write(toFile: root + "/Sources/KedgeCore/Core.swift", atomically: true, encoding: .utf8)
        try "@_cdecl(\"x\") func x() {}".write(toFile: root + "/Sources/KedgeWasm/ABI.swift", atomically: true, encoding: .utf8)
        // A stand-in build: counts its runs and writes the modules as wasm/build.sh does (kedge.wasm 8 bytes,
        // kedge-full.wasm 9, each relaxed flavour one more), less what the test switches off.
        try """
            #!/bin/sh
            set -e
            mkdir -p wasm/out
            echo run >> wasm/out/runs
            if [ -f wasm/FAIL ]; then echo "toolchain missing: swiftc cannot target wasm32" >&2; exit 1; fi
            printf '\\000asm\\001\\000\\000\\000' > wasm/out/kedge.wasm
            [ -f wasm/NOFULL ] || printf '\\000asm\\001\\000\\000\\000F' > wasm/out/kedge-full.wasm
            if [ -f wasm/NORELAXED ]; then
                rm -f wasm/out/kedge-relaxed.wasm wasm/out/kedge-full-relaxed.wasm
            else
                printf '\\000asm\\001\\000\\000\\000R' > wasm/out/kedge-relaxed.wasm
                [ -f wasm/NOFULL ] || printf '\\000asm\\001\\000\\000\\000FR' > wasm/out/kedge-full-relaxed.wasm
            fi
            """.write(toFile: root + "/wasm/build.sh", atomically: true, encoding: .utf8)
    }

    override func tearDownWithError() throws { try? FileManager.default.removeItem(atPath: root) }

    func runs() -> Int {
        ((try? String(contentsOfFile: root + "/wasm/out/runs", encoding: .utf8)) ?? "").split(separator: "\n").count
    }

    func testBuildsOnlyWhenSourcesChange() async throws {
        let b = WasmBuilder(repositoryRoot: root)
        let first = await b.ensure(logger: logger)
        XCTAssertEqual(first.status, .current)
        XCTAssertEqual(first.size, 8)
        XCTAssertEqual(runs(), 1)
        // Output files (including the build's own) do not count as sources.
        let again = await b.ensure(logger: logger)
        XCTAssertEqual(again.status, .current)
        XCTAssertEqual(runs(), 1)
        try "struct Core { var x = 1 }".write(toFile: root + "/Sources/KedgeCore/Core.swift", atomically: true, encoding: .utf8)
        _ = await b.ensure(logger: logger)
        XCTAssertEqual(runs(), 2)
        try "# tweak".write(toFile: root + "/wasm/flags.txt", atomically: true, encoding: .utf8)
        _ = await b.ensure(logger: logger)
        XCTAssertEqual(runs(), 3)
    }

    func testAllFourModulesAreDescribed() async throws {
        let s = await WasmBuilder(repositoryRoot: root).ensure(logger: logger)
        XCTAssertEqual(s.status, .current)
        XCTAssertNil(s.message)
        XCTAssertEqual(s[.slim]?.size, 8)
        XCTAssertEqual(s[.full]?.size, 9)
        XCTAssertEqual(s[.slimRelaxed]?.size, 9)
        XCTAssertEqual(s[.fullRelaxed]?.size, 10)
        XCTAssertEqual(s[.full]?.path, PathSafety.realPath(root + "/wasm/out/kedge-full.wasm"))
        XCTAssertEqual(s[.full]?.sha256, try SHA256.hexDigest(ofFile: root + "/wasm/out/kedge-full.wasm"))
    }

    /// An output folder from an older build (kedge.wasm only), or kedge-full.wasm removed, with the stored hash
    /// still matching: rebuilt rather than served as half a set.
    func testAMissingKedgeFullWasmTriggersARebuild() async throws {
        let b = WasmBuilder(repositoryRoot: root)
        _ = await b.ensure(logger: logger)
        XCTAssertEqual(runs(), 1)
        try FileManager.default.removeItem(atPath: root + "/wasm/out/kedge-full.wasm")
        try FileManager.default.removeItem(atPath: root + "/wasm/out/kedge-full-relaxed.wasm")
        let rebuilt = await b.ensure(logger: logger)
        XCTAssertEqual(runs(), 2)
        XCTAssertEqual(rebuilt.status, .current)
        XCTAssertEqual(rebuilt.modules.count, 4)
        // A missing relaxed flavour alone is not a reason to build (KEDGE_WASM_RELAXED=0 builds have none).
        try FileManager.default.removeItem(atPath: root + "/wasm/out/kedge-relaxed.wasm")
        let without = await b.ensure(logger: logger)
        XCTAssertEqual(runs(), 2)
        XCTAssertEqual(Set(without.modules.keys), [.slim, .full, .fullRelaxed])
        XCTAssertNil(without.message)
    }

    func testABuildWithoutRelaxedSIMDIsCurrent() async throws {
        try "x".write(toFile: root + "/wasm/NORELAXED", atomically: true, encoding: .utf8)
        let b = WasmBuilder(repositoryRoot: root)
        let s = await b.ensure(logger: logger)
        XCTAssertEqual(s.status, .current)
        XCTAssertEqual(Set(s.modules.keys), [.slim, .full])
        XCTAssertNil(s.message)
        _ = await b.ensure(logger: logger)
        XCTAssertEqual(runs(), 1)
    }

    /// A build that succeeds without writing kedge-full.wasm: what it wrote is served, the message says what is
    /// missing, and the next start builds again.
    func testABuildThatLeavesOutKedgeFullIsServedButNotRecorded() async throws {
        try "x".write(toFile: root + "/wasm/NOFULL", atomically: true, encoding: .utf8)
        let b = WasmBuilder(repositoryRoot: root)
        let s = await b.ensure(logger: logger)
        XCTAssertEqual(s.status, .current)
        XCTAssertEqual(Set(s.modules.keys), [.slim, .slimRelaxed])
        XCTAssertTrue(s.message?.contains("no kedge-full.wasm") == true, s.message ?? "")
        XCTAssertFalse(FileManager.default.fileExists(atPath: root + "/wasm/out/kedge.wasm.source-sha256"))
        try FileManager.default.removeItem(atPath: root + "/wasm/NOFULL")
        let again = await b.ensure(logger: logger)
        XCTAssertEqual(runs(), 2)
        XCTAssertEqual(again.modules.count, 4)
        XCTAssertNil(again.message)
    }

    func testUncheckedAndStaleServeWhatExists() async throws {
        let b = WasmBuilder(repositoryRoot: root)
        XCTAssertEqual(b.unchecked().status, .missing)
        try "x".write(toFile: root + "/wasm/NOFULL", atomically: true, encoding: .utf8)
        _ = await b.ensure(logger: logger)
        let unchecked = b.unchecked()
        XCTAssertEqual(unchecked.status, .unchecked)
        XCTAssertEqual(Set(unchecked.modules.keys), [.slim, .slimRelaxed])
        XCTAssertEqual(unchecked.message, "not checked against the sources; no kedge-full.wasm beside kedge.wasm")
        try "x".write(toFile: root + "/wasm/FAIL", atomically: true, encoding: .utf8)
        let stale = await b.ensure(logger: logger)
        XCTAssertEqual(stale.status, .stale)
        XCTAssertEqual(Set(stale.modules.keys), [.slim, .slimRelaxed])
        XCTAssertTrue(stale.message?.contains("toolchain missing") == true, stale.message ?? "")
        XCTAssertTrue(stale.message?.hasSuffix("no kedge-full.wasm beside kedge.wasm") == true, stale.message ?? "")
    }

    func testFailedBuildFallsBackToPrebuiltThenToStale() async throws {
        let b = WasmBuilder(repositoryRoot: root)
        try "x".write(toFile: root + "/wasm/FAIL", atomically: true, encoding: .utf8)
        let missing = await b.ensure(logger: logger)
        XCTAssertEqual(missing.status, .missing)
        XCTAssertTrue(missing.message?.contains("toolchain missing") == true, missing.message ?? "")
        try FileManager.default.createDirectory(atPath: root + "/wasm/prebuilt", withIntermediateDirectories: true)
        try Data([0, 0x61, 0x73, 0x6d, 1, 0, 0, 0, 0]).write(to: URL(fileURLWithPath: root + "/wasm/prebuilt/kedge.wasm"))
        let prebuilt = await b.ensure(logger: logger)
        XCTAssertEqual(prebuilt.status, .prebuilt)
        XCTAssertEqual(prebuilt.size, 9)
        try FileManager.default.removeItem(atPath: root + "/wasm/prebuilt")
        try Data([0, 0x61, 0x73, 0x6d, 1, 0, 0, 0, 0, 0]).write(to: URL(fileURLWithPath: root + "/wasm/out/kedge.wasm"))
        let stale = await b.ensure(logger: logger)
        XCTAssertEqual(stale.status, .stale)
        XCTAssertEqual(stale.size, 10)
    }

    func testMissingBuildScript() async throws {
        try FileManager.default.removeItem(atPath: root + "/wasm/build.sh")
        let s = await WasmBuilder(repositoryRoot: root).ensure(logger: logger)
        XCTAssertEqual(s.status, .missing)
        XCTAssertTrue(s.message?.contains("does not exist") == true)
    }
}

final class ConverterMessageTests: XCTestCase {
    func testCLIFramingIsRemoved() {
        let raw = "Error: /m/x.h5: libhdf5 cannot open it\nUsage: kedge <subcommand>\n  See 'kedge --help' for more information.\n"
        XCTAssertEqual(SubprocessConverter.cleanMessage(raw), "/m/x.h5: libhdf5 cannot open it")
        XCTAssertEqual(SubprocessConverter.cleanMessage("plain\nsecond line"), "plain\nsecond line")
    }
}
