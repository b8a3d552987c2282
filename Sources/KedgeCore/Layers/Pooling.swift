// Keras's pooling layers (keras/src/layers/pooling): MaxPooling1D/2D/3D and AveragePooling1D/2D/3D with
// TensorFlow's "same" padding (padded positions neither win a max nor count in an average), and the global
// poolings with keepdims. Keras 2 aliases (MaxPool2D, AvgPool2D, GlobalAvgPool2D, ...) map to the same layers.

let poolingBuilders: [LayerBuilder] = [
    LayerBuilder(["MaxPooling1D", "MaxPool1D"]) { s throws(KedgeError) in try Pooling(s, rank: 1, kind: .max) },
    LayerBuilder(["MaxPooling2D", "MaxPool2D"]) { s throws(KedgeError) in try Pooling(s, rank: 2, kind: .max) },
    LayerBuilder(["MaxPooling3D", "MaxPool3D"]) { s throws(KedgeError) in try Pooling(s, rank: 3, kind: .max) },
    LayerBuilder(["AveragePooling1D", "AvgPool1D"]) { s throws(KedgeError) in try Pooling(s, rank: 1, kind: .average) },
    LayerBuilder(["AveragePooling2D", "AvgPool2D"]) { s throws(KedgeError) in try Pooling(s, rank: 2, kind: .average) },
    LayerBuilder(["AveragePooling3D", "AvgPool3D"]) { s throws(KedgeError) in try Pooling(s, rank: 3, kind: .average) },
    LayerBuilder(["GlobalMaxPooling1D", "GlobalMaxPool1D"]) { s throws(KedgeError) in
        try GlobalPooling(s, rank: 1, kind: .max)
    },
    LayerBuilder(["GlobalMaxPooling2D", "GlobalMaxPool2D"]) { s throws(KedgeError) in
        try GlobalPooling(s, rank: 2, kind: .max)
    },
    LayerBuilder(["GlobalMaxPooling3D", "GlobalMaxPool3D"]) { s throws(KedgeError) in
        try GlobalPooling(s, rank: 3, kind: .max)
    },
    LayerBuilder(["GlobalAveragePooling1D", "GlobalAvgPool1D"]) { s throws(KedgeError) in
        try GlobalPooling(s, rank: 1, kind: .average)
    },
    LayerBuilder(["GlobalAveragePooling2D", "GlobalAvgPool2D"]) { s throws(KedgeError) in
        try GlobalPooling(s, rank: 2, kind: .average)
    },
    LayerBuilder(["GlobalAveragePooling3D", "GlobalAvgPool3D"]) { s throws(KedgeError) in
        try GlobalPooling(s, rank: 3, kind: .average)
    },
]

/// Max or average pooling over windows (base_pooling.py). Channels-first data is pooled in place as a batch of
/// single-channel images.
final class Pooling: Layer {
    let layout: SpatialLayout
    let kind: PoolKind
    let poolSize: [Int]
    let strides: [Int]
    let padding: PaddingMode

    init(_ s: LayerSpec, rank: Int, kind: PoolKind) throws(KedgeError) {
        let c = s.config
        layout = try c.spatialLayout(rank: rank)
        self.kind = kind
        poolSize = try c.positiveInts("pool_size", count: rank, default: [Int](repeating: 2, count: rank))
        strides = try c.positiveInts("strides", count: rank, default: poolSize)
        padding = try c.padding()
        super.init(spec: s)
    }

    func outputSpatial(_ spatial: [Int]) -> [Int] {
        (0..<layout.rank).map { i in
            spatial[i] < 0
                ? -1
                : convOutputLength(spatial[i], window: poolSize[i], stride: strides[i], dilation: 1, padding: padding)
                    .length
        }
    }

    override func outputShapes(_ inputShapes: [[Int]]) throws(KedgeError) -> [[Int]] {
        guard inputShapes.count == 1 else { throw arityError(inputShapes.count, expected: 1) }
        let s = inputShapes[0]
        try layout.checkRank(s, self)
        return [layout.shape(batch: s[0], spatial: outputSpatial(layout.spatial(s)), channels: layout.channels(s))]
    }

    override func forward(_ inputs: [Tensor]) throws(KedgeError) -> [Tensor] {
        guard inputs.count == 1 else { throw arityError(inputs.count, expected: 1) }
        let x = inputs[0]
        let outShape = try outputShapes([x.shape])[0]
        let v = layout.perChannelView(x.shape)
        let g = ConvGeometry(
            batch: v.batch, input: v.spatial, window: Dims3(trailing: poolSize, fill: 1),
            stride: Dims3(trailing: strides, fill: 1), dilation: Dims3(1, 1, 1), padding: padding)
        let k = kind
        return [
            Tensor(shape: outShape) { out in
                if out.isEmpty { return }
                x.data.withUnsafeBufferPointer { xp in
                    pool(xp.baseAddress!, channels: v.channels, geometry: g, kind: k, out: out.baseAddress!)
                }
            }
        ]
    }
}

/// Max or mean over every spatial position (base_global_pooling.py), optionally keeping size-1 spatial axes.
final class GlobalPooling: Layer {
    let layout: SpatialLayout
    let kind: PoolKind
    let keepDims: Bool

    init(_ s: LayerSpec, rank: Int, kind: PoolKind) throws(KedgeError) {
        layout = try s.config.spatialLayout(rank: rank)
        self.kind = kind
        keepDims = try s.config.bool("keepdims", default: false)
        super.init(spec: s)
    }

    override func outputShapes(_ inputShapes: [[Int]]) throws(KedgeError) -> [[Int]] {
        guard inputShapes.count == 1 else { throw arityError(inputShapes.count, expected: 1) }
        let s = inputShapes[0]
        try layout.checkRank(s, self)
        let c = layout.channels(s)
        if keepDims { return [layout.shape(batch: s[0], spatial: [Int](repeating: 1, count: layout.rank), channels: c)] }
        return [[s[0], c]]
    }

    override func forward(_ inputs: [Tensor]) throws(KedgeError) -> [Tensor] {
        guard inputs.count == 1 else { throw arityError(inputs.count, expected: 1) }
        let x = inputs[0]
        let outShape = try outputShapes([x.shape])[0]
        let v = layout.perChannelView(x.shape)
        let k = kind
        return [
            Tensor(shape: outShape) { out in
                if out.isEmpty { return }
                x.data.withUnsafeBufferPointer { xp in
                    globalPool(
                        xp.baseAddress!, batch: v.batch, pixels: v.spatial.product, channels: v.channels, kind: k,
                        out: out.baseAddress!)
                }
            }
        ]
    }
}
