import Foundation
import KedgeConvert
import KedgeCore
import Testing

/// The sequence suites (sequence_k3, sequence_k2: Tests/Fixtures/index_sequence.json, written by
/// tools/fixtures/sequence.py from real Keras 3 and tf-keras). Cases already listed in index.json run in
/// ParityTests instead. Stateful cases are also run twice (the second call must continue from the first call's
/// states, as Keras's `out_<i>_call2.npy`) and again after `resetStates()`.
@Suite struct RecurrentParityTests {
    static let all: [Fixture] = loadSequenceFixtures()
    static let pending: [Fixture] = {
        let merged = Set(FixtureIndex.load().cases.map { $0.testDescription })
        return all.filter { !merged.contains($0.testDescription) }
    }()
    static let stateful: [Fixture] = all.filter { $0.hasSecondCall }

    @Test("sequence fixture matches real Keras", arguments: pending)
    func matchesKeras(_ fixture: Fixture) throws {
        let result = try fixture.run()
        ParityReport.sequence.record(fixture, result)
        #expect(
            result.failures.isEmpty,
            "\(fixture.id) (\(fixture.description)): \(result.failures.joined(separator: "; "))")
    }

    @Test("stateful layers keep their states across predict calls and reset", arguments: stateful)
    func statefulSecondCall(_ fixture: Fixture) throws {
        let bundle = try Converter.makeBundle(input: fixture.folder.appendingPathComponent(fixture.modelFile).path)
        let model = try Model(modelJSON: bundle.modelJSON, weights: bundle.weights, metadata: bundle.metadata)
        var named: [(String, Tensor)] = []
        for p in fixture.inputs { named.append((p.name, try fixture.readNPY(p.file))) }
        let first = try model.predict(named: named)
        let second = try model.predict(named: named)
        model.resetStates()
        let afterReset = try model.predict(named: named)
        for (i, p) in fixture.outputs.enumerated() {
            let want1 = try fixture.readNPY(p.file)
            let want2 = try fixture.readNPY(p.file.replacingOccurrences(of: ".npy", with: "_call2.npy"))
            #expect(maxError(first[i], want1) <= 1e-4, "\(fixture.id) first call, output \(p.name)")
            #expect(maxError(second[i], want2) <= 1e-4, "\(fixture.id) second call (states carried), output \(p.name)")
            #expect(maxError(afterReset[i], want1) <= 1e-4, "\(fixture.id) after resetStates, output \(p.name)")
        }
    }

    @Test("the sequence suites are present and large enough")
    func indexIsPresent() {
        #expect(Self.all.count >= 120, "found \(Self.all.count) sequence fixtures; the issue asks for at least 120")
        #expect(Self.stateful.count >= 4)
    }
}

func maxError(_ a: Tensor, _ b: Tensor) -> Float {
    guard a.shape == b.shape else { return .infinity }
    var m: Float = 0
    for k in 0..<a.count {
        let e = abs(a.data[k] - b.data[k]) / max(1, abs(b.data[k]))
        if !(e <= m) { m = e }
    }
    return m
}

func loadSequenceFixtures() -> [Fixture] {
    let base = repositoryRoot.appendingPathComponent("Tests/Fixtures")
    guard let data = FileManager.default.contents(atPath: base.appendingPathComponent("index_sequence.json").path),
        let list = try? JSONSerialization.jsonObject(with: data) as? [String]
    else { return [] }
    return list.compactMap { Fixture(folder: base.appendingPathComponent($0)) }
}

extension Fixture {
    var hasSecondCall: Bool {
        FileManager.default.fileExists(atPath: folder.appendingPathComponent("out_0_call2.npy").path)
    }
}
