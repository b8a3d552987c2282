// Where the channels sit in a (batch, spatial..., channels) or (batch, channels, spatial...) tensor, for every
// layer with a `data_format` (convolutions, pooling, cropping, padding, upsampling).

struct SpatialLayout {
    /// Number of spatial axes (1, 2 or 3).
    let rank: Int
    let channelsLast: Bool

    func checkRank(_ shape: [Int], _ layer: Layer) throws(KedgeError) {
        guard shape.count == rank + 2 else {
            throw layer.shapeError(
                "expects an input of rank \(rank + 2) ((batch, \(channelsLast ? "spatial..., channels" : "channels, spatial...")), got \(describeShape(shape))")
        }
    }

    func spatial(_ shape: [Int]) -> [Int] {
        channelsLast ? Array(shape[1..<(rank + 1)]) : Array(shape[2..<(rank + 2)])
    }

    func channels(_ shape: [Int]) -> Int { channelsLast ? shape[rank + 1] : shape[1] }

    func shape(batch: Int, spatial: [Int], channels: Int) -> [Int] {
        channelsLast ? [batch] + spatial + [channels] : [batch, channels] + spatial
    }

    /// The tensor moved to channels-last (a transpose when it is channels-first).
    func toChannelsLast(_ x: Tensor) -> Tensor {
        channelsLast ? x : transpose(x, axes: [0] + Array(2..<(rank + 2)) + [1])
    }

    /// A channels-last result moved back to this layout.
    func fromChannelsLast(_ y: Tensor) -> Tensor {
        channelsLast ? y : transpose(y, axes: [0, rank + 1] + Array(1..<(rank + 1)))
    }

    /// The tensor seen by a per-channel kernel without moving data: channels-first (b, c, spatial...) is the
    /// channels-last batch of b*c single-channel images. Returns (batch, spatial as Dims3, channels).
    func perChannelView(_ shape: [Int]) -> (batch: Int, spatial: Dims3, channels: Int) {
        let s = Dims3(trailing: spatial(shape), fill: 1)
        return channelsLast ? (shape[0], s, shape[rank + 1]) : (shape[0] * shape[1], s, 1)
    }
}

extension LayerConfig {
    func spatialLayout(rank: Int) throws(KedgeError) -> SpatialLayout {
        SpatialLayout(rank: rank, channelsLast: try channelsLast())
    }

    /// Keras's `padding` (any case, default "valid"), refused unless it is one of `allowed` (lower case).
    func padding(allowing allowed: [String] = ["valid", "same"]) throws(KedgeError) -> PaddingMode {
        let p = try string("padding", default: "valid").asciiLowercased()
        guard allowed.contains(p), let mode = PaddingMode.parse(p) else {
            throw error("padding", "is '\(p)'; supported: \(allowed.joined(separator: ", "))")
        }
        return mode
    }

    /// Ints that must all be positive (`kernel_size`, `strides`, `size`, ...).
    func positiveInts(_ key: String, count: Int, default d: [Int]? = nil) throws(KedgeError) -> [Int] {
        let v: [Int]
        if let d { v = try ints(key, count: count, default: d) } else { v = try ints(key, count: count) }
        for i in v where i <= 0 { throw error(key, "must hold positive integers, has \(describeShape(v))") }
        return v
    }
}
