/// `model_metadata.json` (docs/FORMAT.md): where each tensor lives in `model_weights.buf` and how to decode it.
public struct BundleMetadata {
    public struct Entry {
        public var layerName: String
        public var weightName: String
        public var dtype: String
        public var shape: [Int]
        public var offset: Int
        public var length: Int
        public var quantMin: Float
        public var quantScale: Float
    }

    public static let formatVersion = 1

    public var kerasVersion: String?
    public var entries: [Entry]
    public var inputNames: [String]
    public var outputNames: [String]

    public static func parse(_ bytes: [UInt8]) throws(KedgeError) -> BundleMetadata {
        let j = try JSONParser.parse(bytes, what: "model_metadata.json")
        guard j.object != nil else { throw KedgeError(.invalidBundle, "model_metadata.json is not a JSON object") }
        if let v = j["format_version"] {
            guard let n = v.int, n == formatVersion else {
                throw KedgeError(
                    .invalidBundle, "model_metadata.json has format_version \(v.int ?? -1); this Kedge reads version 1")
            }
        }
        guard let ws = j["weights"]?.array else {
            throw KedgeError(.invalidBundle, "model_metadata.json has no 'weights' list")
        }
        var entries: [Entry] = []
        for (i, w) in ws.enumerated() {
            func field(_ k: String) throws(KedgeError) -> JSON {
                guard let v = w[k], !v.isNull else {
                    throw KedgeError(.invalidBundle, "model_metadata.json: weights[\(i)] has no '\(k)'")
                }
                return v
            }
            guard let layer = try field("layer_name").string, let name = try field("weight_name").string,
                let dtype = try field("dtype").string, let shapeA = try field("shape").array,
                let offset = try field("offset").int, let length = try field("length").int
            else { throw KedgeError(.invalidBundle, "model_metadata.json: weights[\(i)] has a field of the wrong type") }
            var shape: [Int] = []
            for d in shapeA {
                guard let n = d.int, n >= 0 else {
                    throw KedgeError(.invalidBundle, "model_metadata.json: weight \(layer)/\(name) has a bad shape")
                }
                shape.append(n)
            }
            var qmin: Float = 0
            var qscale: Float = 1
            if dtype == "uint8" {
                guard let q = w["quantization"], let m = q["min"]?.double, let s = q["scale"]?.double else {
                    throw KedgeError(
                        .invalidBundle, "model_metadata.json: uint8 weight \(layer)/\(name) has no quantization min/scale")
                }
                qmin = Float(m)
                qscale = Float(s)
            } else if dtype != "float32" && dtype != "float16" {
                throw KedgeError(
                    .invalidBundle,
                    "model_metadata.json: weight \(layer)/\(name) has dtype '\(dtype)'; supported: float32, float16, uint8")
            }
            entries.append(
                Entry(
                    layerName: layer, weightName: name, dtype: dtype, shape: shape, offset: offset, length: length,
                    quantMin: qmin, quantScale: qscale))
        }
        var inputNames: [String] = []
        for e in j["inputs"]?.array ?? [] { if let n = e["name"]?.string { inputNames.append(n) } }
        var outputNames: [String] = []
        for e in j["outputs"]?.array ?? [] { if let n = e["name"]?.string { outputNames.append(n) } }
        return BundleMetadata(
            kerasVersion: j["keras_version"]?.string, entries: entries, inputNames: inputNames, outputNames: outputNames)
    }
}
