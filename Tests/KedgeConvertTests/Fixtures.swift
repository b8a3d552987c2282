import Foundation
import KedgeCore
import Testing

@testable import KedgeConvert

/// Tests/Fixtures/converter, made by tools/fixtures/make_converter_cases.py.
enum Fixtures {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fixtures/converter")

    static func path(_ relative: String) -> String { root.appendingPathComponent(relative).path }

    static func bytes(_ relative: String) throws -> [UInt8] {
        [UInt8](try Data(contentsOf: root.appendingPathComponent(relative)))
    }

    static func npy(_ relative: String) throws -> Tensor { try NPY.parse(bytes(relative)) }

    struct ExpectedWeight {
        var layer: String
        var weight: String
        var shape: [Int]
        var file: String
    }

    struct Case {
        var folder: String
        var kerasVersion: String
        var inputs: [String]
        var weights: [ExpectedWeight]
    }

    static func expected(_ folder: String) throws -> Case {
        let obj = try JSONSerialization.jsonObject(with: Data(bytes(folder + "/expected.json"))) as! [String: Any]
        let ws = (obj["weights"] as! [[String: Any]]).map {
            ExpectedWeight(
                layer: $0["layer_name"] as! String, weight: $0["weight_name"] as! String, shape: $0["shape"] as! [Int],
                file: folder + "/" + ($0["file"] as! String))
        }
        return Case(
            folder: folder, kerasVersion: obj["keras_version"] as! String, inputs: obj["inputs"] as! [String],
            weights: ws)
    }

    /// A fresh folder under the system temp dir, removed by the caller.
    static func scratch() throws -> URL {
        let u = FileManager.default.temporaryDirectory.appendingPathComponent(
            "kedge-convert-tests-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: u, withIntermediateDirectories: true)
        return u
    }
}

/// Decodes one bundle entry back to floats the way FORMAT.md defines it (independently of the core).
func decode(_ e: BundleEntry, in buffer: [UInt8]) -> [Float] {
    let n = e.shape.reduce(1, *)
    var out: [Float] = []
    for i in 0..<n {
        switch e.dtype {
        case .float32:
            let p = e.offset + 4 * i
            let bits =
                UInt32(buffer[p]) | UInt32(buffer[p + 1]) << 8 | UInt32(buffer[p + 2]) << 16 | UInt32(buffer[p + 3])
                << 24
            out.append(Float(bitPattern: bits))
        case .float16:
            let p = e.offset + 2 * i
            out.append(halfToFloat(UInt16(buffer[p]) | UInt16(buffer[p + 1]) << 8))
        case .uint8:
            out.append(Float(buffer[e.offset + i]) * e.quantization!.scale + e.quantization!.min)
        }
    }
    return out
}

func maxAbsDiff(_ a: [Float], _ b: [Float]) -> Float {
    precondition(a.count == b.count)
    var m: Float = 0
    for i in a.indices { m = max(m, abs(a[i] - b[i])) }
    return m
}
