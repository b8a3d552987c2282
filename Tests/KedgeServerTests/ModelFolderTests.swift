import Foundation
import HTTPTypes
import HummingbirdTesting
import XCTest

@testable import KedgeServer

/// The models folder: dropped files converted, bundles served as they are, failures reported, removals seen.
final class ModelFolderTests: XCTestCase {
    func testDroppedFileIsConvertedAndListed() async throws {
        let box = try Sandbox(modelFiles: ["clf.h5": "keras model one"])
        try await box.test { client in
            let listing = try await client.listing()
            let m = try XCTUnwrap(listing.model("clf"))
            XCTAssertEqual(m.status, "ready")
            XCTAssertEqual(m.kind, "converted")
            XCTAssertEqual(m.source, "clf.h5")
            XCTAssertNil(m.error)
            let files = try XCTUnwrap(m.files)
            XCTAssertEqual(Set(files.keys), ["model.json", "model_weights.buf", "model_metadata.json"])
            XCTAssertEqual(files["model_weights.buf"]?.size, 65536)
            XCTAssertEqual(m.size, files.values.reduce(0) { $0 + $1.size })
            XCTAssertEqual(m.inputs, .array([.object(["name": .string("x"), "shape": .array([.null, .int(4)])])]))
            let url = try XCTUnwrap(files["model_weights.buf"]?.url)
            XCTAssertEqual(url, "/bundles/clf/\(m.hash!)/model_weights.buf")
            let r = try await client.get(url)
            XCTAssertEqual(r.status, .ok)
            XCTAssertEqual(r.body.bytes, FakeBundle.weights(seed: Array("keras model one".utf8), size: 65536))
            XCTAssertEqual(r.headers[.contentType], "application/octet-stream")
            XCTAssertEqual(r.headers[.cacheControl], "public, max-age=31536000, immutable")
            XCTAssertEqual(r.headers[.eTag], "\"\(files["model_weights.buf"]!.sha256.prefix(32))\"")
        }
        // Published under <models>/.kedge-bundles/<name>/<hash>/ with a stamp, nothing left in staging.
        let fm = FileManager.default
        let versions = try fm.contentsOfDirectory(atPath: box.models + "/.kedge-bundles/clf").sorted()
        XCTAssertEqual(versions.count, 2)
        XCTAssertTrue(versions.contains("current.json"))
        XCTAssertEqual(try fm.contentsOfDirectory(atPath: box.models + "/.kedge-bundles/.tmp"), [])
    }

    func testFailedConversionIsReportedAndServerStaysUp() async throws {
        let box = try Sandbox(modelFiles: ["bad.keras": "BROKEN bytes", "good.h5": "fine"])
        try await box.test { client in
            let listing = try await client.listing()
            let bad = try XCTUnwrap(listing.model("bad"))
            XCTAssertEqual(bad.status, "error")
            XCTAssertEqual(bad.error, "fake converter: bad.keras is not a Keras file")
            XCTAssertNil(bad.files)
            XCTAssertEqual(listing.model("good")?.status, "ready")
            let h = try await client.get("/healthz")
            XCTAssertEqual(h.status, .ok)
        }
        // Not retried while the file is unchanged.
        let calls = box.converter.calls.withLockedValue { $0 }
        await box.server.scanModels()
        XCTAssertEqual(box.converter.calls.withLockedValue { $0 }, calls)
    }

    func testTruncatedBundleFromConverterIsNeverServed() async throws {
        let box = try Sandbox(modelFiles: ["half.h5": "TRUNCATED"])
        try await box.test { client in
            let m = try await unwrapAsync(try await client.listing().model("half"))
            XCTAssertEqual(m.status, "error")
            XCTAssertTrue(m.error?.contains("model_weights.buf is 32768 bytes") == true, m.error ?? "")
            XCTAssertNil(m.files)
        }
    }

    func testBundleFolderIsServedAsItIs() async throws {
        let box = try Sandbox()
        try FakeBundle.write(to: box.models + "/ready", seed: [1, 2, 3], weightsSize: 1024)
        try await box.test { client in
            let m = try await unwrapAsync(try await client.listing().model("ready"))
            XCTAssertEqual(m.kind, "bundle")
            XCTAssertEqual(m.status, "ready")
            let r = try await client.get(m.files!["model_metadata.json"]!.url)
            XCTAssertEqual(r.status, .ok)
            XCTAssertEqual(r.body.bytes, Array(try Data(contentsOf: URL(fileURLWithPath: box.models + "/ready/model_metadata.json"))))
        }
        XCTAssertEqual(box.converter.calls.withLockedValue { $0 }, 0)
        XCTAssertFalse(FileManager.default.fileExists(atPath: box.models + "/.kedge-bundles/ready"))
    }

    func testChangedSourceGetsNewVersionAndOldURLStops() async throws {
        let box = try Sandbox(modelFiles: ["m.h5": "version one"])
        await box.server.scanModels()
        let first = try XCTUnwrap(box.server.catalog.model(named: "m")?.bundle)
        try box.write("m.h5", "version two")
        await box.server.scanModels()
        let second = try XCTUnwrap(box.server.catalog.model(named: "m")?.bundle)
        XCTAssertNotEqual(first.hash, second.hash)
        try await box.test { client in
            let old = try await client.get("/bundles/m/\(first.hash)/model_weights.buf")
            XCTAssertEqual(old.status, .notFound)
            let new = try await client.get("/bundles/m/\(second.hash)/model_weights.buf")
            XCTAssertEqual(new.body.bytes, FakeBundle.weights(seed: Array("version two".utf8), size: 65536))
        }
    }

    func testRemovedSourceIsForgotten() async throws {
        let box = try Sandbox(modelFiles: ["gone.h5": "soon gone"])
        await box.server.scanModels()
        XCTAssertNotNil(box.server.catalog.model(named: "gone"))
        try FileManager.default.removeItem(atPath: box.models + "/gone.h5")
        await box.server.scanModels()
        XCTAssertNil(box.server.catalog.model(named: "gone"))
        XCTAssertFalse(FileManager.default.fileExists(atPath: box.models + "/.kedge-bundles/gone"))
    }

    func testRestartReusesConvertedBundles() async throws {
        let box = try Sandbox(modelFiles: ["keep.h5": "stable"])
        await box.server.scanModels()
        XCTAssertEqual(box.converter.calls.withLockedValue { $0 }, 1)
        let again = FakeConverter()
        let server2 = try KedgeServer(
            options: box.server.options, converter: again, logger: box.server.logger)
        await server2.scanModels()
        XCTAssertEqual(again.calls.withLockedValue { $0 }, 0)
        XCTAssertEqual(server2.catalog.model(named: "keep")?.status, .ready)
        XCTAssertEqual(server2.catalog.model(named: "keep")?.bundle?.hash, box.server.catalog.model(named: "keep")?.bundle?.hash)
    }

    func testSameNameTwiceAndInvalidNamesAreReported() async throws {
        let box = try Sandbox(modelFiles: ["twin.h5": "a", "twin.keras": "b", "bad name.h5": "c", "notes.txt": "ignored"])
        try await box.test { client in
            let listing = try await client.listing()
            XCTAssertEqual(listing.model("twin")?.source, "twin.h5")
            XCTAssertEqual(listing.model("twin.keras")?.status, "error")
            XCTAssertTrue(listing.model("twin.keras")?.error?.contains("twin.h5 already provides") == true)
            XCTAssertEqual(listing.model("bad name.h5")?.status, "error")
            XCTAssertNil(listing.model("notes"))
        }
    }

    func testFileBeingWrittenWaitsUntilItSettles() async throws {
        let box = try Sandbox { $0.settleTime = 3600 }
        try box.write("slow.h5", "partial")
        await box.server.scanModels()
        XCTAssertNil(box.server.catalog.model(named: "slow")?.bundle)
        XCTAssertEqual(box.server.catalog.model(named: "slow")?.status, .converting)
        XCTAssertEqual(box.converter.calls.withLockedValue { $0 }, 0)
        // Unchanged at the next look: converted.
        await box.server.scanModels()
        XCTAssertEqual(box.server.catalog.model(named: "slow")?.status, .ready)
    }

    func testWatcherConvertsFilesDroppedWhileRunning() async throws {
        let box = try Sandbox { $0.pollInterval = .milliseconds(50) }
        try await box.test { client in
            try await assertNilAsync(try await client.listing().model("late"))
            try box.write("late.h5", "arrived later")
            var status: String?
            for _ in 0..<200 {
                status = try await client.listing().model("late")?.status
                if status == "ready" { break }
                try await Task.sleep(for: .milliseconds(50))
            }
            XCTAssertEqual(status, "ready")
        }
    }

    func testCascadeFilesAreListedAndServed() async throws {
        let box = try Sandbox(modelFiles: ["lung.cascade.json": "{\"models\":[]}"])
        try await box.test { client in
            let listing = try await client.listing()
            XCTAssertEqual(listing.cascades.map(\.name), ["lung"])
            let r = try await client.get(listing.cascades[0].url)
            XCTAssertEqual(r.status, .ok)
            XCTAssertEqual(r.body.text, "{\"models\":[]}")
            XCTAssertNil(listing.model("lung.cascade"))
            XCTAssertNil(listing.cascades[0].sample)
        }
    }

    func testACascadesSampleVolumeIsServedAndNothingElseBesideIt() async throws {
        let box = try Sandbox(modelFiles: [
            "cascade.json": "{\"models\":[]}", "demo_volume.npy": "NPY-BYTES", "other.npy": "secret",
        ])
        try await box.test { client in
            let listing = try await client.listing()
            XCTAssertEqual(listing.cascades.first?.sample, "/cascades/demo_volume.npy")
            let r = try await client.get("/cascades/demo_volume.npy")
            XCTAssertEqual(r.status, .ok)
            XCTAssertEqual(r.body.text, "NPY-BYTES")
            XCTAssertEqual(r.headers[.contentType], "application/octet-stream")
            // Only what the catalog names is served from the models folder.
            let other = try await client.get("/cascades/other.npy")
            XCTAssertEqual(other.status, .notFound)
        }
    }
}

final class BundleEditedInPlaceTests: XCTestCase {
    func testOldURLStopsServingAsSoonAsTheBytesChange() async throws {
        let box = try Sandbox()
        try FakeBundle.write(to: box.models + "/live", seed: [1], weightsSize: 256)
        await box.server.scanModels()
        let hash = try XCTUnwrap(box.server.catalog.model(named: "live")?.bundle?.hash)
        // Rewritten in place with the same size and mtime (a scan cannot tell), so only the served bytes can.
        let path = box.models + "/live/model_weights.buf"
        var st = stat()
        XCTAssertEqual(stat(path, &st), 0)
        let handle = try XCTUnwrap(FileHandle(forWritingAtPath: path))
        try handle.write(contentsOf: FakeBundle.weights(seed: [2], size: 256))
        try handle.close()
        var times = [st.st_atim, st.st_mtim]
        XCTAssertEqual(utimensat(AT_FDCWD, path, &times, 0), 0)
        try await box.test { client in
            try await assertEqualAsync(
                try await client.get("/bundles/live/\(hash)/model_weights.buf").status, .notFound)
        }
        XCTAssertEqual(box.server.catalog.model(named: "live")?.bundle?.hash, hash)
        // Once the folder visibly changes, it gets a new version.
        try Data(FakeBundle.weights(seed: [3], size: 128)).write(to: URL(fileURLWithPath: path))
        try FakeBundle.write(to: box.models + "/live", seed: [3], weightsSize: 128)
        await box.server.scanModels()
        XCTAssertNotEqual(box.server.catalog.model(named: "live")?.bundle?.hash, hash)
    }
}
