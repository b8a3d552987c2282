import Foundation
import Testing

@testable import KedgeCore

/// Tree ensembles against real xgboost (fixtures from tools/fixtures/make_xgboost_cases.py): the margin must
/// match xgboost's `output_margin=True` to float32 precision, from both the JSON and the UBJSON file.
@Suite struct XGBoostTests {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fixtures/xgboost")
    static let cases = ["binary_logistic", "binary_logistic_base_score", "binary_deep_no_missing", "reg_squarederror", "multi_softprob"]

    static func bytes(_ c: String, _ f: String) throws -> [UInt8] {
        let path = root.appendingPathComponent(c).appendingPathComponent(f).path
        guard let d = FileManager.default.contents(atPath: path) else { throw KedgeError(.invalidFile, "missing \(path)") }
        return [UInt8](d)
    }

    static func model(from imported: XGBoostImport.Result) throws -> Model {
        let config = try ModelConfig.parse(try JSONParser.parse(imported.modelJSON), kerasVersion: nil)
        var w = WeightStore()
        for (layer, name, t) in imported.tensors { w.set(layer: layer, weight: name, t) }
        return try Model(config: config, weights: w)
    }

    @Test(arguments: cases, ["model.json", "model.ubj"])
    func marginAndPredictionMatchXGBoost(_ c: String, _ file: String) throws {
        let imported = try XGBoostImport.convert(try Self.bytes(c, file))
        let m = try Self.model(from: imported)
        #expect(m.inputs.map(\.name) == ["features"])
        #expect(m.outputs.map(\.name) == ["probability", "margin"])
        let x = try NPY.parse(try Self.bytes(c, "features.npy"))
        let wantMargin = try NPY.parse(try Self.bytes(c, "margin.npy"))
        let wantPred = try NPY.parse(try Self.bytes(c, "prediction.npy"))
        let out = try m.predict([x])
        #expect(out[1].shape == wantMargin.shape)
        #expect(out[0].shape == wantPred.shape)
        var worstMargin: Float = 0
        for i in 0..<wantMargin.count {
            // float32 precision: at most one unit in the last place of the margin.
            let tol = max(abs(wantMargin.data[i]).ulp, Float.leastNormalMagnitude)
            let err = abs(out[1].data[i] - wantMargin.data[i])
            worstMargin = max(worstMargin, err / tol)
        }
        #expect(worstMargin <= 1, "\(c)/\(file): margin differs by \(worstMargin) ulp")
        for i in 0..<wantPred.count {
            #expect(abs(out[0].data[i] - wantPred.data[i]) <= 1e-6, "\(c): prediction \(i)")
        }
    }

    @Test func rejectsNonXGBoostAndCorruptFiles() throws {
        #expect(throws: KedgeError.self) { try XGBoostImport.convert(Array(#"{"a": 1}"#.utf8)) }
        var ubj = try Self.bytes("binary_logistic", "model.ubj")
        ubj.removeLast(ubj.count / 2)
        #expect(throws: KedgeError.self) { try XGBoostImport.convert(ubj) }
    }

    @Test func treesWithOutOfRangeChildrenAreRejectedAtLoad() throws {
        var imported = try XGBoostImport.convert(try Self.bytes("binary_logistic", "model.json"))
        for i in imported.tensors.indices where imported.tensors[i].1 == "left_children" {
            imported.tensors[i].2.data[0] = 100_000
        }
        #expect(throws: KedgeError.self) { try Self.model(from: imported) }
    }

    /// A bundle's tree tensors are float32: NaN, infinities, fractions and values beyond Int32 in an index tensor,
    /// and non-finite thresholds or base margins, are load errors naming the weight (they used to trap converting
    /// to Int32, natively and in wasm).
    @Test(arguments: [
        ("left_children", Float.nan), ("right_children", Float.infinity), ("split_indices", 1e15),
        ("tree_offsets", -Float.infinity), ("tree_groups", 0.5), ("split_conditions", Float.nan),
        ("base_margin", Float.infinity), ("split_indices", -3e9),
    ])
    func hostileTreeValuesAreLoadErrors(_ weight: String, _ value: Float) throws {
        var imported = try XGBoostImport.convert(try Self.bytes("binary_logistic", "model.json"))
        for i in imported.tensors.indices where imported.tensors[i].1 == weight {
            imported.tensors[i].2.data[0] = value
        }
        do {
            _ = try Self.model(from: imported)
            Issue.record("\(weight) = \(value) loaded")
        } catch let e as KedgeError {
            let named = e.message.contains(weight) || e.message.contains("split condition") || e.message.contains("base margin")
                || e.message.contains("tree_offsets") || e.message.contains("class")
            #expect(named, "\(e.message)")
        }
    }

    @Test func hugeIndicesInTheJSONAreConvertErrorsNotTraps() throws {
        var text = String(decoding: try Self.bytes("binary_logistic", "model.json"), as: UTF8.self)
        guard let r = text.range(of: "\"split_indices\":[") ?? text.range(of: "\"split_indices\": [") else {
            Issue.record("no split_indices in the fixture")
            return
        }
        // The first node's feature index becomes 1e15: a number the JSON holds exactly, far beyond Int32.
        guard let comma = text[r.upperBound...].firstIndex(where: { $0 == "," || $0 == "]" }) else { return }
        text.replaceSubrange(r.upperBound..<comma, with: "1000000000000000")
        let imported = try XGBoostImport.convert(Array(text.utf8))
        #expect(throws: KedgeError.self) { try Self.model(from: imported) }
    }
}
