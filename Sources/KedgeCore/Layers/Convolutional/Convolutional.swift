// Keras's convolutional layers (keras/src/layers/convolutional), with the Keras 2 aliases that Keras 1's
// converter layer (Layers/Keras1.swift) does not already claim.

let convolutionalBuilders: [LayerBuilder] = [
    LayerBuilder(["Conv1D"], weights: kernelAndBias) { s throws(KedgeError) in try Conv(s, rank: 1) },
    LayerBuilder(["Conv2D"], weights: kernelAndBias) { s throws(KedgeError) in try Conv(s, rank: 2) },
    LayerBuilder(["Conv3D"], weights: kernelAndBias) { s throws(KedgeError) in try Conv(s, rank: 3) },
    LayerBuilder(["Conv1DTranspose", "Convolution1DTranspose"], weights: kernelAndBias) { s throws(KedgeError) in
        try ConvTranspose(s, rank: 1)
    },
    LayerBuilder(["Conv2DTranspose", "Convolution2DTranspose"], weights: kernelAndBias) { s throws(KedgeError) in
        try ConvTranspose(s, rank: 2)
    },
    LayerBuilder(["Conv3DTranspose", "Convolution3DTranspose", "Deconvolution3D"], weights: kernelAndBias) {
        s throws(KedgeError) in try ConvTranspose(s, rank: 3)
    },
    LayerBuilder(["SeparableConv1D", "SeparableConvolution1D"], weights: separableWeights) { s throws(KedgeError) in
        try SeparableConv(s, rank: 1)
    },
    LayerBuilder(["SeparableConv2D"], weights: separableWeights) { s throws(KedgeError) in
        try SeparableConv(s, rank: 2)
    },
    LayerBuilder(["DepthwiseConv1D"], weights: depthwiseWeights) { s throws(KedgeError) in
        try DepthwiseConv(s, rank: 1)
    },
    LayerBuilder(["DepthwiseConv2D"], weights: depthwiseWeights) { s throws(KedgeError) in
        try DepthwiseConv(s, rank: 2)
    },
]

private func kernelAndBias(_ c: LayerConfig) throws(KedgeError) -> [String] {
    try c.bool("use_bias", default: true) ? ["kernel", "bias"] : ["kernel"]
}

private func depthwiseWeights(_ c: LayerConfig) throws(KedgeError) -> [String] {
    try c.bool("use_bias", default: true) ? ["depthwise_kernel", "bias"] : ["depthwise_kernel"]
}

private func separableWeights(_ c: LayerConfig) throws(KedgeError) -> [String] {
    try c.bool("use_bias", default: true)
        ? ["depthwise_kernel", "pointwise_kernel", "bias"] : ["depthwise_kernel", "pointwise_kernel"]
}
