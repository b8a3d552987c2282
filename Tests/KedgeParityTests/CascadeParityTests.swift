import Foundation
import KedgeConvert
import KedgeCore
import Testing

/// The lung-CT cascade natively against tools/cascade/reference.py (Keras + xgboost) on the held-out volumes of
/// Tests/Fixtures/cascade (made by tools/cascade/make_eval.py): final probability within 1e-4, and the same
/// candidates and nodules.
@Suite struct CascadeParityTests {
    static let fixtures = repositoryRoot.appendingPathComponent("Tests/Fixtures/cascade")
    static let models = repositoryRoot.appendingPathComponent("models/cascade")

    struct Reference {
        var file: String
        var probability: Double
        var cancer: Int
        var candidates: Int
        var nodules: Int
        var sex: Double
    }

    static func references() throws -> (tolerance: Double, auc: Double, volumes: [Reference]) {
        let url = fixtures.appendingPathComponent("reference.json")
        let data = try Data(contentsOf: url)
        let j = try JSONSerialization.jsonObject(with: data) as! [String: Any]
        var out: [Reference] = []
        for v in j["volumes"] as! [[String: Any]] {
            let r = v["result"] as! [String: Any]
            let label = v["label"] as! [String: Any]
            out.append(
                Reference(
                    file: v["file"] as! String, probability: r["probability"] as! Double,
                    cancer: (label["cancer"] as? Int) ?? ((label["cancer"] as? Bool) == true ? 1 : 0),
                    candidates: (r["candidates"] as! [Any]).count, nodules: (r["nodules"] as! [Any]).count,
                    sex: (r["sex"] as! [String: Any])["male_prob"] as! Double))
        }
        return (j["tolerance"] as? Double ?? 1e-4, j["auc"] as? Double ?? 0, out)
    }

    /// ROC AUC by the rank-sum rule (ties count half), as tools/cascade/train.py computes it.
    static func auc(_ labels: [Int], _ scores: [Double]) -> Double {
        var pos = 0.0, neg = 0.0, sum = 0.0
        for i in labels.indices where labels[i] == 1 {
            for j in labels.indices where labels[j] == 0 {
                sum += scores[i] > scores[j] ? 1 : (scores[i] == scores[j] ? 0.5 : 0)
            }
        }
        for l in labels { if l == 1 { pos += 1 } else { neg += 1 } }
        return pos * neg > 0 ? sum / (pos * neg) : 0
    }

    @Test func nativeCascadeMatchesTheKerasReference() throws {
        let refPath = Self.fixtures.appendingPathComponent("reference.json").path
        guard FileManager.default.fileExists(atPath: refPath),
            FileManager.default.fileExists(atPath: Self.models.appendingPathComponent("cascade.json").path)
        else {
            Issue.record("the cascade fixtures or models are missing: run tools/cascade/train.py and make_eval.py")
            return
        }
        let (tol, refAUC, volumes) = try Self.references()
        #expect(volumes.count >= 20)
        let cascade = try CascadeFolder.load(Self.models.path)
        var worst = 0.0
        var scores: [Double] = []
        for v in volumes {
            let bytes = try Data(contentsOf: Self.fixtures.appendingPathComponent(v.file))
            let r = try cascade.run(volume: try NPY.parse([UInt8](bytes)))
            worst = max(worst, abs(r.probability - v.probability))
            scores.append(r.probability)
            #expect(abs(r.probability - v.probability) <= tol, "\(v.file): kedge \(r.probability), keras \(v.probability)")
            #expect(abs(r.sexMaleProb - v.sex) <= 1e-5, "\(v.file): sex")
            #expect(r.candidates.count == v.candidates, "\(v.file): candidates")
            #expect(r.nodules.count == v.nodules, "\(v.file): nodules")
        }
        let kedgeAUC = Self.auc(volumes.map(\.cancer), scores)
        #expect(abs(kedgeAUC - refAUC) < 1e-9, "AUC kedge \(kedgeAUC) vs reference \(refAUC)")
        print("cascade parity: \(volumes.count) volumes, max |p_kedge - p_keras| = \(worst), AUC \(kedgeAUC) (reference \(refAUC))")
    }

    @Test func aSingleSliceGetsAClearMessage() throws {
        guard FileManager.default.fileExists(atPath: Self.models.appendingPathComponent("cascade.json").path) else {
            return
        }
        let cascade = try CascadeFolder.load(Self.models.path)
        do {
            _ = try cascade.run(volume: Tensor(shape: [1, 512, 512], repeating: -1000))
            Issue.record("a single slice must be refused")
        } catch {
            #expect(error.message.contains("single slice"))
        }
    }
}
