import ArgumentParser
import Foundation
import KedgeCore

struct Bench: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Time inference on a bundle: median and min milliseconds per predict, after warm-up.")

    @Argument(help: "The bundle folder.")
    var bundle: String

    @Option(help: "Timed runs.") var runs = 20
    @Option(help: "Untimed warm-up runs.") var warmup = 3
    @Option(help: "Batch size for inputs with an unknown batch dimension.") var batch = 1
    @Option(name: .customLong("input"), help: "NAME=FILE.npy to time on real data (default: uniform random in [-1, 1]).")
    var inputs: [String] = []

    func run() throws {
        let model = try BundleDirectory.load(bundle)
        var x: [Tensor] = []
        var rng = SplitMix64(seed: 42)
        for info in model.inputs {
            if let spec = inputs.first(where: { $0.hasPrefix(info.name + "=") }) {
                let file = String(spec.dropFirst(info.name.count + 1))
                guard let d = FileManager.default.contents(atPath: file) else { throw RuntimeFailure("cannot read \(file)") }
                x.append(try NPY.parse([UInt8](d)))
                continue
            }
            var shape = info.shape
            if shape[0] < 0 { shape[0] = batch }
            guard !shape.contains(where: { $0 < 0 }) else {
                throw ValidationError("input '\(info.name)' has unknown dims \(describeShape(info.shape)); pass --input")
            }
            let n = Tensor.elementCount(shape)
            x.append(Tensor(shape: shape, data: (0..<n).map { _ in rng.nextUniform() * 2 - 1 }))
        }
        for _ in 0..<warmup { _ = try model.predict(x) }
        var times: [Double] = []
        for _ in 0..<max(runs, 1) {
            let t0 = DispatchTime.now().uptimeNanoseconds
            _ = try model.predict(x)
            times.append(Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e6)
        }
        times.sort()
        let median = times.count % 2 == 1 ? times[times.count / 2] : (times[times.count / 2 - 1] + times[times.count / 2]) / 2
        print(String(format: "%@: median %.3f ms, min %.3f ms over %d runs (warm-up %d)", bundle, median, times[0], times.count, warmup))
    }
}

/// A small seeded generator so bench inputs are the same run to run.
struct SplitMix64 {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
    mutating func nextUniform() -> Float { Float(next() >> 40) / Float(1 << 24) }
}
