/// Typed access to a layer's Keras `config` object, with errors that name the layer and the key.
/// Keras writes tuples as lists and sometimes a bare int where a tuple is meant (`kernel_size: 3`);
/// these getters accept both, as Keras itself does.
public struct LayerConfig {
    public let layerName: String
    public let className: String
    public let json: JSONObject
    /// Set for a Keras 3 op node (`"module": "keras.src.ops.numpy"`, ...): the module it names. An op node's class
    /// name can be a layer's (`Add`, `Concatenate`) with other semantics, so layers that also run op nodes check it.
    public let opModule: String?

    public init(layerName: String, className: String, json: JSONObject, opModule: String? = nil) {
        self.layerName = layerName
        self.className = className
        self.json = json
        self.opModule = opModule
    }

    public subscript(key: String) -> JSON? {
        if let v = json[key], !v.isNull { return v }
        return nil
    }

    func error(_ key: String, _ what: String) -> KedgeError {
        KedgeError(.invalidConfig, "layer '\(layerName)' (\(className)): config key '\(key)' \(what)")
    }

    public func has(_ key: String) -> Bool { self[key] != nil }

    public func int(_ key: String) throws(KedgeError) -> Int {
        guard let v = self[key] else { throw error(key, "is missing") }
        var value: Int? = v.int
        if value == nil, let a = v.array, a.count == 1 { value = a[0].int }
        guard let i = value else { throw error(key, "must be an integer") }
        // GroupNormalization's groups=-1 means one group per channel (instance normalization), as Keras reads it.
        let keepsMinusOne = key == "groups" && className == "GroupNormalization" && i == -1
        if LayerConfig.sizeKeys.contains(key) && !keepsMinusOne {
            // Every layer reads its sizes here, so a hostile file's `units: -3` or `filters: 1e15` is refused once,
            // before any layer allocates or multiplies with it.
            guard i >= 1, i <= LayerConfig.maxSize else {
                throw error(key, "is \(i); it must be a size from 1 to \(LayerConfig.maxSize)")
            }
        }
        return i
    }

    /// Config keys that hold a count of units, channels, heads or features (Keras 1-3 spellings).
    static let sizeKeys: [String] = [
        "units", "output_dim", "input_dim", "filters", "nb_filter", "key_dim", "value_dim", "num_heads", "nb_feature",
        "depth_multiplier", "groups", "num_feature", "num_groups",
    ]
    /// The largest size accepted: 2^24 units or channels is far past any model, and keeps products of a few sizes
    /// well inside Int.
    static let maxSize = 1 << 24

    public func int(_ key: String, default d: Int) throws(KedgeError) -> Int {
        has(key) ? try int(key) : d
    }

    public func double(_ key: String) throws(KedgeError) -> Double {
        guard let v = self[key] else { throw error(key, "is missing") }
        guard let d = v.double else { throw error(key, "must be a number") }
        return d
    }

    public func double(_ key: String, default d: Double) throws(KedgeError) -> Double {
        has(key) ? try double(key) : d
    }

    public func float(_ key: String, default d: Float) throws(KedgeError) -> Float {
        has(key) ? Float(try double(key)) : d
    }

    public func bool(_ key: String, default d: Bool) throws(KedgeError) -> Bool {
        guard let v = self[key] else { return d }
        guard let b = v.bool else { throw error(key, "must be true or false") }
        return b
    }

    public func string(_ key: String) throws(KedgeError) -> String {
        guard let v = self[key] else { throw error(key, "is missing") }
        guard let s = v.string else { throw error(key, "must be a string") }
        return s
    }

    public func string(_ key: String, default d: String) throws(KedgeError) -> String {
        has(key) ? try string(key) : d
    }

    /// One of `allowed`, or an error that lists them.
    public func choice(_ key: String, _ allowed: [String], default d: String) throws(KedgeError) -> String {
        let s = try string(key, default: d)
        if allowed.contains(s) { return s }
        var list = ""
        for (i, a) in allowed.enumerated() { list += (i > 0 ? ", " : "") + a }
        throw error(key, "is '\(s)'; supported: \(list)")
    }

    /// A tuple of `count` ints, or one int repeated (`kernel_size: 3` means (3, 3) for Conv2D).
    public func ints(_ key: String, count: Int) throws(KedgeError) -> [Int] {
        guard let v = self[key] else { throw error(key, "is missing") }
        if let i = v.int { return [Int](repeating: i, count: count) }
        guard let a = v.array else { throw error(key, "must be an integer or a list of \(count) integers") }
        var out: [Int] = []
        for e in a {
            guard let i = e.int else { throw error(key, "must be a list of integers") }
            out.append(i)
        }
        if out.count == 1 && count > 1 { return [Int](repeating: out[0], count: count) }
        guard out.count == count else { throw error(key, "must have \(count) entries, has \(out.count)") }
        return out
    }

    public func ints(_ key: String, count: Int, default d: [Int]) throws(KedgeError) -> [Int] {
        has(key) ? try ints(key, count: count) : d
    }

    /// A list of ints of any length; `null` entries become -1 (unknown dimension).
    public func shape(_ key: String) throws(KedgeError) -> [Int] {
        guard let a = self[key]?.array else { throw error(key, "must be a list") }
        var out: [Int] = []
        for e in a {
            if e.isNull { out.append(-1); continue }
            guard let i = e.int else { throw error(key, "must be a list of integers or null") }
            out.append(i)
        }
        return out
    }

    /// `channels_last` (true) or `channels_first`; Keras 1 called it dim_ordering `tf`/`th`.
    public func channelsLast() throws(KedgeError) -> Bool {
        if has("data_format") {
            return try choice("data_format", ["channels_last", "channels_first"], default: "channels_last") == "channels_last"
        }
        if has("dim_ordering") {
            return try choice("dim_ordering", ["tf", "th", "default"], default: "tf") != "th"
        }
        return true
    }
}
