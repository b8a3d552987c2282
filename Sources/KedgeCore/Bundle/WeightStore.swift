/// The decoded weights of a bundle, keyed by layer path then weight name, all as Float32.
public struct WeightStore {
    var byLayer: [String: [String: Tensor]] = [:]

    public init() {}

    public init(metadata: BundleMetadata, buffer: [UInt8]) throws(KedgeError) {
        for e in metadata.entries {
            let count = Tensor.elementCount(e.shape)
            let size: Int
            switch e.dtype {
            case "float32": size = 4
            case "float16": size = 2
            default: size = 1
            }
            let what = "weight \(e.layerName)/\(e.weightName)"
            guard e.length == count * size else {
                throw KedgeError(
                    .invalidBundle,
                    "\(what): length \(e.length) bytes does not match shape \(describeShape(e.shape)) of \(e.dtype)")
            }
            guard e.offset >= 0, e.offset <= buffer.count, e.length <= buffer.count - e.offset else {
                throw KedgeError(
                    .invalidBundle,
                    "\(what): bytes \(e.offset)..<\(e.offset + e.length) lie outside model_weights.buf (\(buffer.count) bytes); the file is truncated or does not belong to this metadata"
                )
            }
            let data = buffer.withUnsafeBufferPointer { buf in
                WeightStore.decode(buf.baseAddress! + e.offset, count: count, entry: e)
            }
            byLayer[e.layerName, default: [:]][e.weightName] = Tensor(shape: e.shape, data: data)
        }
    }

    public mutating func set(layer: String, weight: String, _ t: Tensor) {
        byLayer[layer, default: [:]][weight] = t
    }

    public func weights(ofLayer path: String) -> [String: Tensor] { byLayer[path] ?? [:] }

    static func decode(_ p: UnsafePointer<UInt8>, count: Int, entry e: BundleMetadata.Entry) -> [Float] {
        [Float](unsafeUninitializedCapacity: count) { out, initialized in
            switch e.dtype {
            case "float32":
                for i in 0..<count {
                    let b = p + 4 * i
                    let bits = UInt32(b[0]) | UInt32(b[1]) << 8 | UInt32(b[2]) << 16 | UInt32(b[3]) << 24
                    out[i] = Float(bitPattern: bits)
                }
            case "float16":
                for i in 0..<count { out[i] = halfToFloat(UInt16(p[2 * i]) | UInt16(p[2 * i + 1]) << 8) }
            default:
                for i in 0..<count { out[i] = Float(p[i]) * e.quantScale + e.quantMin }
            }
            initialized = count
        }
    }
}

/// IEEE 754 binary16 to binary32, by bits (Float16 needs compiler-rt builtins in the wasm build).
public func halfToFloat(_ h: UInt16) -> Float {
    let sign = UInt32(h & 0x8000) << 16
    let exp = Int(h >> 10) & 0x1F
    let mant = UInt32(h & 0x3FF)
    if exp == 0 {
        if mant == 0 { return Float(bitPattern: sign) }
        // Subnormal half: value = mant * 2^-24.
        let v = Float(mant) * (1.0 / 16_777_216.0)
        return sign != 0 ? -v : v
    }
    if exp == 31 { return Float(bitPattern: sign | 0x7F80_0000 | (mant << 13)) }
    return Float(bitPattern: sign | UInt32(exp + 112) << 23 | (mant << 13))
}
