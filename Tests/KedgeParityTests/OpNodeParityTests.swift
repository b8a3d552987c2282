import Foundation
import KedgeConvert
import KedgeCore
import Testing

/// Keras 3 op nodes (`keras.src.ops.*` entries of a Functional config: `x + 3.0`, `2.0 - x`, broadcast operands,
/// `ops.concatenate`, MobileNetV3's hard-swish), from Tests/Fixtures/index_ops.json, written by
/// tools/fixtures/op_nodes.py with real Keras 3, in `.keras` and Keras 3 `.h5` (which drops the nodes' `module`).
/// And the op nodes Kedge does not run (Tests/Fixtures/ops_refused_k3): each must be refused at convert time with an
/// error naming the node and the op, never converted into something that computes another function.
@Suite struct OpNodeParityTests {
    static let all: [Fixture] = {
        let base = repositoryRoot.appendingPathComponent("Tests/Fixtures")
        guard let data = FileManager.default.contents(atPath: base.appendingPathComponent("index_ops.json").path),
            let list = try? JSONSerialization.jsonObject(with: data) as? [String]
        else { return [] }
        return list.compactMap { Fixture(folder: base.appendingPathComponent($0)) }
    }()

    struct Refused: CustomTestStringConvertible, Sendable {
        var folder: URL
        var model: String
        var node: String
        var expected: String
        var testDescription: String { folder.lastPathComponent }
    }

    static let refused: [Refused] = {
        let base = repositoryRoot.appendingPathComponent("Tests/Fixtures/ops_refused_k3")
        let names = (try? FileManager.default.contentsOfDirectory(atPath: base.path))?.sorted() ?? []
        return names.compactMap { n in
            let folder = base.appendingPathComponent(n)
            guard let d = FileManager.default.contents(atPath: folder.appendingPathComponent("case.json").path),
                let j = try? JSONSerialization.jsonObject(with: d) as? [String: Any],
                let model = j["model"] as? String, let node = j["node"] as? String,
                let expected = j["expected_error"] as? String
            else { return nil }
            return Refused(folder: folder, model: model, node: node, expected: expected)
        }
    }()

    @Test("Keras 3 op-node fixture matches real Keras", arguments: all)
    func matchesKeras(_ fixture: Fixture) throws {
        let result = try fixture.run()
        ParityReport.ops.record(fixture, result)
        #expect(result.failures.isEmpty, "\(fixture.id) (\(fixture.description)): \(result.failures.joined(separator: "; "))")
    }

    @Test("an op node Kedge does not run is refused at convert time, naming the node and the op", arguments: refused)
    func refusedAtConvert(_ r: Refused) {
        do {
            _ = try Converter.makeBundle(input: r.folder.appendingPathComponent(r.model).path)
            Issue.record("\(r.folder.lastPathComponent) converted; it must be refused")
        } catch {
            let message = "\(error)"
            #expect(message.contains("'\(r.node)'"), "the error does not name the node '\(r.node)': \(message)")
            #expect(message.contains(r.expected), "the error does not name '\(r.expected)': \(message)")
        }
    }

    @Test("the op-node suites are present")
    func present() {
        #expect(Self.all.count >= 29, "found \(Self.all.count) op-node fixtures")
        #expect(Self.refused.count >= 10, "found \(Self.refused.count) refused op-node cases")
        #expect(Self.all.contains { $0.id.hasPrefix("mobilenet_v3_small") } && Self.all.contains { $0.id.hasPrefix("mobilenet_v3_large") })
    }
}
