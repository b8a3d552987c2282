import ArgumentParser
import Foundation
import KedgeCore

struct Inspect: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Print a bundle's layers, output shapes, parameter counts and weight bytes.")

    @Argument(help: "The bundle folder.")
    var bundle: String

    func run() throws {
        let files = try BundleDirectory.read(bundle)
        let model = try BundleDirectory.load(bundle, fuse: false)
        let meta = try BundleMetadata.parse(files.metadata)
        var bytesByLayer: [String: Int] = [:]
        var dtypes: [String: Int] = [:]
        for e in meta.entries {
            let top = String(e.layerName.split(separator: "/").first ?? "")
            bytesByLayer[top, default: 0] += e.length
            dtypes[e.dtype, default: 0] += e.length
        }
        print("model \(model.config.name) (\(model.config.className), Keras \(meta.kerasVersion ?? "3"))")
        let header = ["layer", "class", "output shape", "params", "weight bytes"]
        var rows: [[String]] = []
        var totalParams = 0
        for l in model.layerSummaries {
            totalParams += l.parameters
            rows.append([
                l.name, l.className, l.outputShapes.map(describeShape).joined(separator: " "), String(l.parameters),
                String(bytesByLayer[l.name] ?? 0),
            ])
        }
        var widths = header.map(\.count)
        for r in rows { for (i, c) in r.enumerated() { widths[i] = max(widths[i], c.count) } }
        func line(_ r: [String]) -> String {
            r.enumerated().map { i, c in i >= 3 ? String(repeating: " ", count: widths[i] - c.count) + c : c.padding(toLength: widths[i], withPad: " ", startingAt: 0) }
                .joined(separator: "  ")
        }
        print(line(header))
        for r in rows { print(line(r)) }
        print("inputs:  \(model.inputs.map { "\($0.name) \(describeShape($0.shape))" }.joined(separator: ", "))")
        print("outputs: \(model.outputs.map { "\($0.name) \(describeShape($0.shape))" }.joined(separator: ", "))")
        let dt = dtypes.keys.sorted().map { "\($0) \(dtypes[$0]!) B" }.joined(separator: ", ")
        print("total: \(totalParams) parameters, \(files.weights.count) weight bytes (\(dt))")
    }
}
