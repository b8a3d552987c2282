import ArgumentParser
import Foundation
import KedgeConvert
import KedgeCore

struct CascadeRun: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "cascade",
        abstract: "Run a model cascade (cascade.json and its models) on a CT volume (.npy, z/y/x in HU).")

    @Argument(help: "Folder with cascade.json and the model files it names (Keras .h5, xgboost .json) or bundles.")
    var directory: String

    @Option(help: "The volume: a (z, y, x) .npy of Hounsfield units, int16 or float32.")
    var volume: String

    @Flag(help: "Print every stage's output as JSON (the format of tools/cascade/reference.py --json).")
    var json = false

    func run() throws {
        let cascade: Cascade
        do {
            cascade = try CascadeFolder.load(directory)
        } catch {
            throw RuntimeFailure(describe(error))
        }
        guard let bytes = FileManager.default.contents(atPath: volume) else { throw RuntimeFailure("cannot read \(volume)") }
        var timings: [(String, Double)] = []
        var current: (String, UInt64)? = nil
        func mark(_ next: String?) {
            let now = DispatchTime.now().uptimeNanoseconds
            if let (name, t0) = current { timings.append((name, Double(now - t0) / 1e6)) }
            current = next.map { ($0, now) }
        }
        let result: Cascade.Result
        do {
            let t = try NPY.parse([UInt8](bytes))
            result = try cascade.run(volume: t) { mark($0) }
            mark(nil)
        } catch {
            throw RuntimeFailure("\(volume): \(describe(error))")
        }
        if json {
            print(result.report(timings: timings).serialized(pretty: true))
        } else {
            print(String(format: "sex P(male) %.4f, %d candidates, %d nodules, cancer probability %.6f",
                         result.sexMaleProb, result.candidates.count, result.nodules.count, result.probability))
            for n in result.nodules {
                if let b = n.box {
                    print(String(format: "  nodule at z %d y %.1f x %.1f, %.1f mm, FP logit %.3f, malignancy %.4f",
                                 b.z, b.cy, b.cx, b.diameterMM, n.fpLogit, n.malignancy))
                }
            }
            print(timings.map { String(format: "%@ %.1f ms", $0.0, $0.1) }.joined(separator: ", "))
        }
    }
}
