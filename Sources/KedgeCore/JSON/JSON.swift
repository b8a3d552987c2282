/// A JSON value. The core parses `model.json` and `model_metadata.json` itself because Foundation is not
/// available in the Embedded Swift build. Objects keep their key order, which Keras configs rely on for
/// readable error messages and for round-tripping.
public enum JSON {
    case null
    case bool(Bool)
    case number(Double)
    case string(String)
    case array([JSON])
    case object(JSONObject)

    public subscript(key: String) -> JSON? {
        if case .object(let o) = self { return o[key] }
        return nil
    }

    public subscript(index: Int) -> JSON? {
        if case .array(let a) = self, index >= 0, index < a.count { return a[index] }
        return nil
    }

    public var string: String? { if case .string(let s) = self { return s }; return nil }
    public var double: Double? { if case .number(let d) = self { return d }; return nil }
    public var bool: Bool? { if case .bool(let b) = self { return b }; return nil }
    public var array: [JSON]? { if case .array(let a) = self { return a }; return nil }
    public var object: JSONObject? { if case .object(let o) = self { return o }; return nil }
    public var isNull: Bool { if case .null = self { return true }; return false }

    /// An integer value; accepts `3.0` but not `3.5`.
    public var int: Int? {
        guard case .number(let d) = self, d == d.rounded(.towardZero), abs(d) < 9.0e15 else { return nil }
        return Int(d)
    }
}

/// An ordered JSON object.
public struct JSONObject {
    public private(set) var keys: [String] = []
    public private(set) var values: [JSON] = []

    public init() {}

    public subscript(key: String) -> JSON? {
        get {
            for i in keys.indices where keys[i] == key { return values[i] }
            return nil
        }
        set {
            if let i = keys.firstIndex(of: key) {
                if let v = newValue { values[i] = v } else { keys.remove(at: i); values.remove(at: i) }
            } else if let v = newValue {
                keys.append(key)
                values.append(v)
            }
        }
    }

    public var count: Int { keys.count }
}
