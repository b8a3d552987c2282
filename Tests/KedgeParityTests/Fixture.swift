import Foundation
import KedgeConvert
import KedgeCore
import Testing

/// The repository root, found from this file's path so tests run from any working directory.
let repositoryRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    .deletingLastPathComponent()

struct FixtureIndex {
    var cases: [Fixture]

    static func load() -> FixtureIndex {
        let base = repositoryRoot.appendingPathComponent("Tests/Fixtures")
        guard let data = FileManager.default.contents(atPath: base.appendingPathComponent("index.json").path),
            let list = try? JSONSerialization.jsonObject(with: data) as? [Any]
        else { return FixtureIndex(cases: []) }
        var out: [Fixture] = []
        for item in list {
            let rel = (item as? String) ?? ((item as? [String: Any])?["path"] as? String) ?? ""
            if let f = Fixture(folder: base.appendingPathComponent(rel)) { out.append(f) }
        }
        return FixtureIndex(cases: out)
    }
}

struct Fixture: CustomTestStringConvertible, Sendable {
    struct Port: Sendable {
        var name: String
        var file: String
    }

    let folder: URL
    let id: String
    let suite: String
    let family: String
    let generator: String
    let description: String
    let modelFile: String
    let configFile: String?
    let inputs: [Port]
    let outputs: [Port]

    var testDescription: String { "\(suite)/\(id)" }

    init?(folder: URL) {
        guard let data = FileManager.default.contents(atPath: folder.appendingPathComponent("case.json").path),
            let j = try? JSONSerialization.jsonObject(with: data) as? [String: Any]
        else { return nil }
        self.folder = folder
        id = j["id"] as? String ?? folder.lastPathComponent
        suite = j["suite"] as? String ?? folder.deletingLastPathComponent().lastPathComponent
        family = j["family"] as? String ?? "unknown"
        generator = j["generator"] as? String ?? ""
        description = j["description"] as? String ?? ""
        modelFile = j["model"] as? String ?? "model.h5"
        configFile = j["config"] as? String
        func ports(_ k: String) -> [Port] {
            ((j[k] as? [[String: Any]]) ?? []).map { Port(name: $0["name"] as? String ?? "", file: $0["file"] as? String ?? "") }
        }
        inputs = ports("inputs")
        outputs = ports("outputs")
    }

    struct Result {
        var maxAbsError: Float = 0
        var maxRelError: Float = 0
        var failures: [String] = []
    }

    func readNPY(_ name: String) throws -> Tensor {
        let url = folder.appendingPathComponent(name)
        guard let d = FileManager.default.contents(atPath: url.path) else { throw FixtureError("cannot read \(url.path)") }
        return try NPY.parse([UInt8](d))
    }

    /// Converts the Keras file into a temporary bundle, loads it, predicts, compares.
    func run() throws -> Result {
        let tmp = FileManager.default.temporaryDirectory.appendingPathComponent("kedge-parity-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: tmp) }
        try convertFixture(
            folder.appendingPathComponent(modelFile).path, config: configFile.map { folder.appendingPathComponent($0).path },
            to: tmp.path)
        func bytes(_ n: String) throws -> [UInt8] {
            guard let d = FileManager.default.contents(atPath: tmp.appendingPathComponent(n).path) else {
                throw FixtureError("converter wrote no \(n)")
            }
            return [UInt8](d)
        }
        let model = try Model(
            modelJSON: bytes("model.json"), weights: bytes("model_weights.buf"), metadata: bytes("model_metadata.json"))
        var named: [(String, Tensor)] = []
        for p in inputs { named.append((p.name, try readNPY(p.file))) }
        let got = try model.predict(named: named)
        var r = Result()
        guard got.count == outputs.count else {
            r.failures.append("model gives \(got.count) outputs, Keras gave \(outputs.count)")
            return r
        }
        for (i, p) in outputs.enumerated() {
            let want = try readNPY(p.file)
            if model.outputs[i].name != p.name {
                r.failures.append("output \(i) is named '\(model.outputs[i].name)', Keras calls it '\(p.name)'")
            }
            guard got[i].shape == want.shape else {
                r.failures.append("output '\(p.name)' has shape \(got[i].shape), Keras gave \(want.shape)")
                continue
            }
            var worst = 0
            var worstExcess: Float = -1
            for k in 0..<want.count {
                let a = got[i].data[k]
                let b = want.data[k]
                let err = abs(a - b)
                if !(err <= 1e-4 + 1e-4 * abs(b)) && !(a.isNaN && b.isNaN) {
                    let excess = err.isNaN ? Float.infinity : err - 1e-4 * abs(b)
                    if excess > worstExcess { worstExcess = excess; worst = k }
                }
                if err.isFinite {
                    r.maxAbsError = max(r.maxAbsError, err)
                    r.maxRelError = max(r.maxRelError, err / max(abs(b), 1e-6))
                }
            }
            if worstExcess >= 0 {
                r.failures.append(
                    "output '\(p.name)' differs at flat index \(worst): kedge \(got[i].data[worst]), keras \(want.data[worst])")
            }
        }
        return r
    }
}

struct FixtureError: Error, CustomStringConvertible {
    var description: String
    init(_ d: String) { description = d }
}

/// Largest error per family, printed once all of a suite's parity tests ran (the issues ask the test output to
/// show it): one report for index.json (layers, graphs, bench models), one for the sequence suites.
final class ParityReport: @unchecked Sendable {
    static let shared = ParityReport(
        title: "parity with real Keras (index.json)", expected: { ParityTests.fixtures.cases.count })
    static let sequence = ParityReport(
        title: "sequence parity with real Keras (index_sequence.json)", expected: { RecurrentParityTests.pending.count })
    static let ops = ParityReport(
        title: "Keras 3 op-node parity with real Keras (index_ops.json)", expected: { OpNodeParityTests.all.count })

    private let title: String
    private let expected: () -> Int
    private let lock = NSLock()
    private var byFamily: [String: (cases: Int, failed: Int, maxAbs: Float)] = [:]
    private var seen = 0

    init(title: String, expected: @escaping () -> Int) {
        self.title = title
        self.expected = expected
    }

    func record(_ f: Fixture, _ r: Fixture.Result) {
        lock.lock()
        defer { lock.unlock() }
        var e = byFamily[f.family] ?? (0, 0, 0)
        e.cases += 1
        if !r.failures.isEmpty { e.failed += 1 }
        e.maxAbs = max(e.maxAbs, r.maxAbsError)
        byFamily[f.family] = e
        seen += 1
        if seen == expected() { printReport() }
    }

    private func printReport() {
        var lines = ["\(title), largest |kedge - keras| per family:"]
        for k in byFamily.keys.sorted() {
            let e = byFamily[k]!
            lines.append(
                "  \(k.padding(toLength: 28, withPad: " ", startingAt: 0)) \(e.cases) cases, \(e.failed) failed, max abs error \(String(format: "%.2e", e.maxAbs))"
            )
        }
        print(lines.joined(separator: "\n"))
    }
}

/// The one place the parity tests call the converter.
func convertFixture(_ input: String, config: String?, to output: String) throws {
    try Converter.convert(input: input, outputDirectory: output, options: ConvertOptions(configPath: config))
}
