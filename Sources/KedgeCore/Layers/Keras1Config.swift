// The translation of Keras 1 config keys to their Keras 2 spelling. It is in every build, the small wasm build
// (kedge.wasm) included: a Keras 1 model of standard classes (Dense, pooling, ...) needs only this; the Keras 1
// classes themselves (Layers/Keras1.swift) are left out of that build.

/// Keras 1 configs of classes that kept their name in Keras 2 (Dense, pooling, padding, ...) spelled some keys
/// differently. `LayerCatalog` gives every builder the Keras 2 spelling, so the layer files need not know
/// Keras 1. A key is only renamed when its Keras 2 spelling is absent, so Keras 2 and 3 configs pass unchanged.
public enum Keras1Config {
    public static func translated(_ c: LayerConfig) -> LayerConfig {
        var o = c.json
        var changed = false
        func rename(_ old: String, _ new: String) {
            guard let v = o[old], o[new] == nil else { return }
            o[new] = v
            o[old] = nil
            changed = true
        }
        func set(_ key: String, _ v: JSON) {
            o[key] = v
            changed = true
        }
        if let d = o["dim_ordering"]?.string, o["data_format"] == nil {
            if d == "th" { set("data_format", .string("channels_first")) }
            if d == "tf" { set("data_format", .string("channels_last")) }
        }
        switch c.className {
        case "Dense":
            rename("output_dim", "units")
            rename("bias", "use_bias")
        case "Dropout", "SpatialDropout1D", "SpatialDropout2D", "SpatialDropout3D", "GaussianDropout":
            rename("p", "rate")
        case "GaussianNoise":
            rename("sigma", "stddev")
        case "MaxPooling1D", "AveragePooling1D":
            rename("pool_length", "pool_size")
            if o["stride"] != nil && o["strides"] == nil {
                // Keras 1: a null stride means the pool length.
                set("strides", o["stride"]!.isNull ? (o["pool_size"] ?? .null) : o["stride"]!)
                o["stride"] = nil
            }
            rename("border_mode", "padding")
        case "MaxPooling2D", "AveragePooling2D", "MaxPooling3D", "AveragePooling3D":
            rename("border_mode", "padding")
        case "UpSampling1D":
            rename("length", "size")
        case "SimpleRNN", "LSTM", "GRU":
            // Keras 1 recurrent layers; the converter joins their per-gate weights (W_i, U_i, b_i, ...) into
            // Keras 2's kernel, recurrent_kernel and bias. Keras 1's GRU applies the reset gate before the product.
            if o["output_dim"] != nil && o["units"] == nil {
                rename("output_dim", "units")
                rename("inner_activation", "recurrent_activation")
                if c.className == "GRU" { set("reset_after", .bool(false)) }
            }
        case "ZeroPadding2D":
            // Keras 1.2 also took (top, bottom, left, right).
            if let p = o["padding"]?.array, p.count == 4 {
                set("padding", .array([.array([p[0], p[1]]), .array([p[2], p[3]])]))
            } else if let p = o["padding"]?.object {
                func pad(_ k: String) -> JSON { p[k] ?? .number(0) }
                set(
                    "padding",
                    .array([.array([pad("top_pad"), pad("bottom_pad")]), .array([pad("left_pad"), pad("right_pad")])]))
            }
        default:
            break
        }
        return changed ? LayerConfig(layerName: c.layerName, className: c.className, json: o, opModule: c.opModule) : c
    }
}
