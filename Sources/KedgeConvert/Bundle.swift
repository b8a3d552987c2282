import KedgeCore

/// A model input or output: its name and shape, batch first, -1 where unknown; nil when the bundle was not
/// validated and the shape is not declared in the config (outputs).
public struct PortInfo: Equatable, Sendable {
    public var name: String
    public var shape: [Int]?
}

/// One tensor of `model_weights.buf`, as `model_metadata.json` describes it.
public struct BundleEntry: Equatable, Sendable {
    public var layerName: String
    public var weightName: String
    public var dtype: WeightStorage
    public var shape: [Int]
    /// Bytes into `model_weights.buf`; a multiple of 16.
    public var offset: Int
    /// Bytes: elements times the dtype's size.
    public var length: Int
    /// `min` and `scale` of a uint8 tensor (value = q * scale + min); nil for float32 and float16.
    public var quantization: (min: Float, scale: Float)?

    public static func == (a: BundleEntry, b: BundleEntry) -> Bool {
        a.layerName == b.layerName && a.weightName == b.weightName && a.dtype == b.dtype && a.shape == b.shape
            && a.offset == b.offset && a.length == b.length && a.quantization?.min == b.quantization?.min
            && a.quantization?.scale == b.quantization?.scale
    }
}

/// A converted model: the three files of docs/FORMAT.md as bytes, plus what they contain.
public struct ConvertedBundle: Sendable {
    public var modelJSON: [UInt8]
    public var weights: [UInt8]
    public var metadata: [UInt8]

    public var source: String
    public var sourceFormat: SourceFormat
    public var kerasVersion: String?
    public var backend: String?
    public var inputs: [PortInfo]
    public var outputs: [PortInfo]
    public var entries: [BundleEntry]
    /// True when the core loaded the bundle (config, weights and shapes all accepted) before it was returned.
    public var validated: Bool
}

/// Lays tensors out at 16-byte offsets (zero-filled gaps), so that a reader can map each one as aligned memory.
struct BufferBuilder {
    static let alignment = 16
    var bytes: [UInt8] = []
    var entries: [BundleEntry] = []

    mutating func append(layer: String, weight: String, shape: [Int], _ t: EncodedTensor) {
        let pad = (BufferBuilder.alignment - bytes.count % BufferBuilder.alignment) % BufferBuilder.alignment
        bytes += [UInt8](repeating: 0, count: pad)
        let q: (min: Float, scale: Float)? = t.dtype == .uint8 ? (t.quantMin, t.quantScale) : nil
        entries.append(
            BundleEntry(
                layerName: layer, weightName: weight, dtype: t.dtype, shape: shape, offset: bytes.count,
                length: t.bytes.count, quantization: q))
        bytes += t.bytes
    }
}

/// Writes `model_metadata.json` with FORMAT.md's key order, one weight per line.
enum MetadataWriter {
    struct Header {
        var producer: String
        var source: String
        var sourceFormat: SourceFormat
        var kerasVersion: String?
        var backend: String?
        var inputs: [PortInfo]
        var outputs: [PortInfo]
    }

    static func write(_ h: Header, entries: [BundleEntry]) -> [UInt8] {
        var s = "{\n"
        s += "  \"format\": \"kedge-bundle\",\n"
        s += "  \"format_version\": \(BundleMetadata.formatVersion),\n"
        s += "  \"producer\": \(string(h.producer)),\n"
        s += "  \"source\": \(string(h.source)),\n"
        s += "  \"source_format\": \(string(h.sourceFormat.rawValue)),\n"
        s += "  \"keras_version\": \(h.kerasVersion.map(string) ?? "null"),\n"
        s += "  \"backend\": \(h.backend.map(string) ?? "null"),\n"
        s += "  \"inputs\": \(ports(h.inputs)),\n"
        s += "  \"outputs\": \(ports(h.outputs)),\n"
        s += "  \"weights\": ["
        for (i, e) in entries.enumerated() {
            s += i == 0 ? "\n    " : ",\n    "
            s += "{\"layer_name\": \(string(e.layerName)), \"weight_name\": \(string(e.weightName)), "
            s += "\"dtype\": \"\(e.dtype.rawValue)\", \"shape\": \(ints(e.shape)), "
            s += "\"offset\": \(e.offset), \"length\": \(e.length), \"quantization\": "
            if let q = e.quantization {
                s += "{\"min\": \(number(q.min)), \"scale\": \(number(q.scale))}}"
            } else {
                s += "null}"
            }
        }
        s += entries.isEmpty ? "]\n}\n" : "\n  ]\n}\n"
        return Array(s.utf8)
    }

    static func ports(_ ps: [PortInfo]) -> String {
        "["
            + ps.map {
                "{\"name\": \(string($0.name)), \"shape\": \($0.shape.map { ints($0, unknownAsNull: true) } ?? "null")}"
            }.joined(separator: ", ")
            + "]"
    }

    static func ints(_ xs: [Int], unknownAsNull: Bool = false) -> String {
        "[" + xs.map { unknownAsNull && $0 < 0 ? "null" : String($0) }.joined(separator: ", ") + "]"
    }

    /// The shortest decimal that reads back as the same Float (through Double, as the core parses it).
    static func number(_ f: Float) -> String {
        let d = Double(f)
        if d == d.rounded(), abs(d) < 1e15 { return String(Int64(d)) }
        return "\(d)"
    }

    static func string(_ s: String) -> String {
        var out = "\""
        for u in s.unicodeScalars {
            switch u {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            default:
                if u.value < 0x20 {
                    let hex = String(u.value, radix: 16)
                    out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
                } else {
                    out.unicodeScalars.append(u)
                }
            }
        }
        return out + "\""
    }
}
