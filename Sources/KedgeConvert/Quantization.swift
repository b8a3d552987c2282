import KedgeCore

/// How tensors are stored in `model_weights.buf` (docs/FORMAT.md).
public enum WeightStorage: String, CaseIterable, Sendable {
    case float32
    /// IEEE half precision: halves the size; about 3 significant digits.
    case float16
    /// Per-tensor affine uint8, `q * scale + min`, with 0.0 exactly representable: a quarter of the size.
    case uint8
}

/// One tensor encoded for the buffer.
struct EncodedTensor {
    var bytes: [UInt8]
    var dtype: WeightStorage
    /// For uint8: the `min` and `scale` of FORMAT.md.
    var quantMin: Float = 0
    var quantScale: Float = 0
}

enum TensorEncoder {
    /// `what` names the weight for errors (`model.h5: layer 'd' weight 'kernel'`).
    static func encode(_ data: [Float], as storage: WeightStorage, what: String) throws -> EncodedTensor {
        switch storage {
        case .float32:
            var out = [UInt8](repeating: 0, count: data.count * 4)
            for (i, v) in data.enumerated() {
                let b = v.bitPattern
                out[4 * i] = UInt8(truncatingIfNeeded: b)
                out[4 * i + 1] = UInt8(truncatingIfNeeded: b >> 8)
                out[4 * i + 2] = UInt8(truncatingIfNeeded: b >> 16)
                out[4 * i + 3] = UInt8(truncatingIfNeeded: b >> 24)
            }
            return EncodedTensor(bytes: out, dtype: .float32)
        case .float16:
            var out = [UInt8](repeating: 0, count: data.count * 2)
            for (i, v) in data.enumerated() {
                let h = floatToHalfBits(v)
                if h & 0x7FFF == 0x7C00 && v.isFinite {
                    throw KedgeError(
                        .invalidInput,
                        "\(what) holds \(v), beyond float16's largest value 65504; convert it without --quantize float16"
                    )
                }
                out[2 * i] = UInt8(truncatingIfNeeded: h)
                out[2 * i + 1] = UInt8(truncatingIfNeeded: h >> 8)
            }
            return EncodedTensor(bytes: out, dtype: .float16)
        case .uint8:
            let (m, s) = try uint8Parameters(data, what: what)
            let z = -m / s
            var out = [UInt8](repeating: 0, count: data.count)
            for (i, v) in data.enumerated() {
                let q = (v / s + z).rounded(.toNearestOrEven)
                out[i] = UInt8(min(max(q, 0), 255))
            }
            return EncodedTensor(bytes: out, dtype: .uint8, quantMin: m, quantScale: s)
        }
    }

    /// `min = -z * scale` for an integer zero point `z` in 0...255, over a range widened to contain 0, so that
    /// 0.0 (padding, ReLU outputs, pruned weights) dequantizes to exactly 0.
    static func uint8Parameters(_ data: [Float], what: String) throws -> (min: Float, scale: Float) {
        var lo: Float = 0
        var hi: Float = 0
        for v in data {
            guard v.isFinite else {
                throw KedgeError(.invalidInput, "\(what) holds \(v); uint8 quantization needs finite values")
            }
            lo = min(lo, v)
            hi = max(hi, v)
        }
        if hi == lo { return (0, 1) }
        let scale = (hi - lo) / 255
        let z = min(max((-lo / scale).rounded(.toNearestOrEven), 0), 255)
        return (z == 0 ? 0 : -z * scale, scale)
    }
}
