// Sizes of a convolution or pooling window over channels-last (batch, depth, height, width, channels) data.
// 1D and 2D operations are 3D ones with size-1 leading spatial dimensions, so one kernel serves all three.

/// A size or offset per spatial axis, outermost first.
struct Dims3: Equatable {
    var d: Int
    var h: Int
    var w: Int

    init(_ d: Int, _ h: Int, _ w: Int) {
        self.d = d
        self.h = h
        self.w = w
    }

    /// The last `values.count` (1 to 3) axes from `values`, the others `fill`.
    init(trailing values: [Int], fill: Int) {
        let v = [Int](repeating: fill, count: 3 - values.count) + values
        self.init(v[0], v[1], v[2])
    }

    var product: Int { d * h * w }
    var array: [Int] { [d, h, w] }
}

/// Keras padding modes. `causal` (Conv1D only) pads the start by the dilated window minus one.
enum PaddingMode: Equatable {
    case valid
    case same
    case causal

    static func parse(_ s: String) -> PaddingMode? {
        switch s.asciiLowercased() {
        case "valid": return .valid
        case "same": return .same
        case "causal": return .causal
        default: return nil
        }
    }
}

/// Output length and padding before the first element, as TensorFlow computes them.
/// `same`: out = ceil(in / stride), padding split with the extra element at the end.
func convOutputLength(_ input: Int, window: Int, stride: Int, dilation: Int, padding: PaddingMode) -> (
    length: Int, padBefore: Int
) {
    let eff = (window - 1) * dilation + 1
    switch padding {
    case .valid:
        return (input >= eff ? (input - eff) / stride + 1 : 0, 0)
    case .same:
        let out = (input + stride - 1) / stride
        let total = max((out - 1) * stride + eff - input, 0)
        return (out, total / 2)
    case .causal:
        return ((input - 1) / stride + 1, eff - 1)
    }
}

/// Everything a convolution, pooling or transposed-convolution kernel needs to map output positions to input
/// positions: `in = out * stride - padBefore + tap * dilation`.
struct ConvGeometry {
    var batch: Int
    var input: Dims3
    var output: Dims3
    var window: Dims3
    var stride: Dims3
    var dilation: Dims3
    var padBefore: Dims3

    /// Forward geometry (convolution, pooling) for a concrete input size.
    init(batch: Int, input: Dims3, window: Dims3, stride: Dims3, dilation: Dims3, padding: PaddingMode) {
        self.batch = batch
        self.input = input
        self.window = window
        self.stride = stride
        self.dilation = dilation
        let d = convOutputLength(input.d, window: window.d, stride: stride.d, dilation: dilation.d, padding: padding)
        let h = convOutputLength(input.h, window: window.h, stride: stride.h, dilation: dilation.h, padding: padding)
        let w = convOutputLength(input.w, window: window.w, stride: stride.w, dilation: dilation.w, padding: padding)
        output = Dims3(d.length, h.length, w.length)
        padBefore = Dims3(d.padBefore, h.padBefore, w.padBefore)
    }

    init(batch: Int, input: Dims3, output: Dims3, window: Dims3, stride: Dims3, dilation: Dims3, padBefore: Dims3) {
        self.batch = batch
        self.input = input
        self.output = output
        self.window = window
        self.stride = stride
        self.dilation = dilation
        self.padBefore = padBefore
    }

    var outputPixels: Int { batch * output.product }
    var taps: Int { window.product }
}

/// Output length of a transposed convolution as Keras computes it (`compute_conv_transpose_output_shape`),
/// and the padding TensorFlow's `conv_transpose` then implies before the first output element:
/// `out[i * stride - padBefore + tap * dilation] += in[i] * w[tap]`.
func convTransposeOutputLength(
    _ input: Int, window: Int, stride: Int, dilation: Int, padding: PaddingMode, outputPadding: Int?
) -> (length: Int, padBefore: Int) {
    let eff = (window - 1) * dilation + 1
    let length: Int
    if padding == .same {
        if let op = outputPadding { length = (input - 1) * stride + eff % 2 + op } else { length = input * stride }
    } else {
        length = (input - 1) * stride + eff + (outputPadding ?? (max(eff, stride) - eff))
    }
    let padBefore = padding == .same ? max((input - 1) * stride + eff - length, 0) / 2 : 0
    return (length, padBefore)
}
