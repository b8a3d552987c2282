// The Keras config keys each supported layer class honours, with the values it supports, and the keys it reads
// past because they do not change inference. docs/LAYERS.md is this table joined with the core's catalog
// (LayerDocs.swift); it lives here, not in KedgeCore, so that the wasm module does not carry the prose.
//
// Keep it true to the layer code (Sources/KedgeCore/Layers): Tests/KedgeConvertTests/LayerOptionsTests.swift checks
// that every catalog class has exactly one entry and that every config key found in Tests/Fixtures is listed.

/// One config key a layer reads, with the other spellings that mean the same (Keras 1 names, Keras 2 names).
public struct LayerOption: Sendable {
    public let key: String
    public let aliases: [String]
    /// The supported values and defaults, as Markdown; refusals say "refused".
    public let values: String

    init(_ key: String, _ values: String, aka aliases: [String] = []) {
        self.key = key
        self.values = values
        self.aliases = aliases
    }

    var allKeys: [String] { [key] + aliases }
}

/// Keys a layer reads past (beyond the global `LayerOptions.ignoredEverywhere`), and why they do not matter.
public struct IgnoredKeys: Sendable {
    public let keys: [String]
    public let why: String

    init(_ keys: [String], _ why: String) {
        self.keys = keys
        self.why = why
    }
}

/// The options of one catalog row: one layer builder, i.e. a class and its aliases.
public struct LayerOptionsEntry: Sendable {
    /// Exactly the class names of one `LayerCatalog` builder, in its order.
    public let classes: [String]
    public let options: [LayerOption]
    public let ignored: [IgnoredKeys]
    /// Configs whose weight names docs/LAYERS.md shows (asked of `LayerCatalog.weightNames`): a label ("" for the
    /// default) and a config as JSON text.
    public let weightConfigs: [(label: String, config: String)]
    public let note: String?

    init(
        _ classes: [String], _ options: [LayerOption] = [], ignored: [IgnoredKeys] = [],
        weights: [(label: String, config: String)] = [("", "{}")], note: String? = nil
    ) {
        self.classes = classes
        self.options = options
        self.ignored = ignored
        self.weightConfigs = weights
        self.note = note
    }

    /// Every key this entry names, honoured or ignored.
    var documentedKeys: Set<String> {
        var s = Set<String>()
        for o in options { s.formUnion(o.allKeys) }
        for i in ignored { s.formUnion(i.keys) }
        return s
    }
}

// MARK: - shared options

private let activation = LayerOption("activation", "any of the [activations](#activations); default linear")
private let useBias = LayerOption("use_bias", "true (default) / false")
private let keras1Bias = LayerOption("bias", "true (default) / false")
private let dataFormat = LayerOption(
    "data_format", "channels_last (default) / channels_first (Keras 1: tf / th)", aka: ["dim_ordering"])
private let kernelSize = LayerOption("kernel_size", "int or one int per spatial axis, > 0")
private let strides = LayerOption("strides", "int or one per axis, > 0; default 1")
private let dilation = LayerOption("dilation_rate", "int or one per axis, > 0; default 1")
private let padding = LayerOption("padding", "valid (default) / same, any case; others refused")
private let causalPadding = LayerOption("padding", "valid (default) / same / causal, any case; others refused")
private let filters = LayerOption("filters", "int")
private let depthMultiplier = LayerOption("depth_multiplier", "int; default 1")
private let groupsOne = LayerOption("groups", "1 only (what Keras saves); other values refused")
private let withoutBias = [("", "{}"), ("use_bias=false", #"{"use_bias":false}"#)]

private let trainingOnlyNoise = "training only (inference is the identity)"
private let rnnCommon: [LayerOption] = [
    LayerOption("return_sequences", "true / false (default)"),
    LayerOption("return_state", "true / false (default)"),
    LayerOption("go_backwards", "true / false (default); a returned sequence stays in processing order, as in Keras"),
    LayerOption("stateful", "true / false (default); states kept between predictions until `resetStates()`"),
    LayerOption("zero_output_for_mask", "true / false (default): masked steps output zeros instead of the last output"),
    LayerOption("time_major", "false (default); true refused"),
]
private func rnnIgnored(keras1: Bool) -> [IgnoredKeys] {
    [
        IgnoredKeys(["unroll"], "same result unrolled or not"),
        IgnoredKeys(["dropout", "recurrent_dropout"] + (keras1 ? ["dropout_W", "dropout_U"] : []), "training only"),
        IgnoredKeys(
            ["implementation"] + (keras1 ? ["consume_less"] : []),
            keras1 ? "kernel layout choices (the converter joins Keras 1 per-gate weights)" : "a kernel layout choice"),
    ]
}
/// `keras1`: the class existed in Keras 1, whose spellings `LayerCatalog` translates (`output_dim`, `inner_activation`).
private func recurrentActivation(keras1: Bool) -> LayerOption {
    LayerOption(
        "recurrent_activation", "pointwise activation; default sigmoid (Keras 3), hard_sigmoid (Keras 1/2)",
        aka: keras1 ? ["inner_activation"] : [])
}
private func units(keras1: Bool) -> LayerOption { LayerOption("units", "int", aka: keras1 ? ["output_dim"] : []) }
private let cellActivation = LayerOption("activation", "pointwise activation (softmax refused); default tanh")
private let unitForgetBias = IgnoredKeys(["unit_forget_bias"], "initializer only")

private func pooling(_ classes: [String], oneD: Bool) -> LayerOptionsEntry {
    LayerOptionsEntry(
        classes,
        [
            LayerOption("pool_size", "int or one per axis, > 0; default 2", aka: oneD ? ["pool_length"] : []),
            LayerOption("strides", "int or one per axis, > 0; default (and null) = pool_size", aka: oneD ? ["stride"] : []),
            LayerOption("padding", "valid (default) / same, any case; padded cells never win a max or count in an average", aka: ["border_mode"]),
            dataFormat,
        ])
}

private func globalPooling(_ classes: [String], note: String? = nil) -> LayerOptionsEntry {
    LayerOptionsEntry(
        classes, [dataFormat, LayerOption("keepdims", "true / false (default)")], note: note)
}

private let dropoutIgnored = IgnoredKeys(["rate", "p", "noise_shape"], trainingOnlyNoise)

private func spatialDropout(_ cls: String, rank: Int) -> LayerOptionsEntry {
    LayerOptionsEntry(
        [cls], ignored: [IgnoredKeys(["rate", "noise_shape", "data_format", "p"], trainingOnlyNoise)],
        note: "the input must have rank \(rank), as in Keras")
}

private func conv(_ cls: String, causal: Bool) -> LayerOptionsEntry {
    LayerOptionsEntry(
        [cls],
        [
            filters, kernelSize, strides, causal ? causalPadding : padding, dataFormat, dilation,
            LayerOption("groups", "int, default 1; filters must be a multiple (refused otherwise)"), activation, useBias,
        ], weights: withoutBias)
}

private func convTranspose(_ classes: [String]) -> LayerOptionsEntry {
    LayerOptionsEntry(
        classes,
        [
            filters, kernelSize, strides, padding, LayerOption("output_padding", "null (default) or ints >= 0"),
            dataFormat, dilation, activation, useBias, groupsOne,
        ], weights: withoutBias)
}

private func separable(_ classes: [String], causal: Bool) -> LayerOptionsEntry {
    LayerOptionsEntry(
        classes,
        [filters, kernelSize, strides, causal ? causalPadding : padding, dataFormat, dilation, depthMultiplier, activation, useBias, groupsOne],
        weights: withoutBias)
}

private func depthwise(_ cls: String, causal: Bool) -> LayerOptionsEntry {
    LayerOptionsEntry(
        [cls], [kernelSize, strides, causal ? causalPadding : padding, dataFormat, dilation, depthMultiplier, activation, useBias, groupsOne],
        weights: withoutBias)
}

private func region(_ cls: String, _ key: String, _ values: String, dataFormat df: Bool) -> LayerOptionsEntry {
    LayerOptionsEntry([cls], [LayerOption(key, values)] + (df ? [dataFormat] : []))
}

private func convLSTM(_ cls: String) -> LayerOptionsEntry {
    LayerOptionsEntry(
        [cls],
        [
            filters, LayerOption("kernel_size", "int or one per spatial axis"),
            LayerOption("strides", "int or one per axis; default 1; not with dilation_rate > 1 (refused)"),
            LayerOption("dilation_rate", "int or one per axis; default 1"),
            LayerOption("padding", "valid (default) / same, lower case; others refused"), dataFormat, cellActivation,
            recurrentActivation(keras1: false), useBias,
        ] + rnnCommon, ignored: rnnIgnored(keras1: false) + [unitForgetBias], weights: withoutBias)
}

private func lstmOptions(keras1: Bool) -> [LayerOption] {
    [units(keras1: keras1), cellActivation, recurrentActivation(keras1: keras1), useBias]
}
private func gruOptions(keras1: Bool) -> [LayerOption] {
    lstmOptions(keras1: keras1) + [
        LayerOption(
            "reset_after",
            "true / false; when absent: true in Keras 3 files, false in Keras 1/2" + (keras1 ? " (Keras 1 GRU: always false)" : ""))
    ]
}

// MARK: - the table

public enum LayerOptions {
    /// Keys the model loader reads for any class (the layer itself does not).
    public static let readByModelLoader: [LayerOption] = [
        LayerOption("name", "the layer's name (inbound nodes and weights refer to it)"),
        LayerOption("batch_input_shape", "the input shape, on the first layer of a Sequential without InputLayer"),
        LayerOption("input_shape", "the same without the batch axis"),
        LayerOption("input_dim", "Keras 1: the same for a rank-2 input (Embedding reads it as its vocabulary size)"),
    ]

    /// Keys that never change inference, for every class that does not list them as an option.
    public static let ignoredEverywhere: [IgnoredKeys] = [
        IgnoredKeys(["trainable"], "training only"),
        IgnoredKeys(["dtype", "input_dtype"], "Kedge computes in float32 (except `Cast`, which reads `dtype`)"),
        IgnoredKeys(["input_length"], "a shape declaration; Kedge takes shapes from the inputs"),
        IgnoredKeys(["seed", "init"], "randomness and initialization, training only"),
    ]

    /// Key suffixes that are ignored everywhere: initializers, regularizers and constraints (Keras 1 `*_init`,
    /// `W_regularizer`, `W_constraint`, ...) only matter for training.
    public static let ignoredSuffixes = ["_initializer", "_regularizer", "_constraint", "_init"]

    /// True when `key` is ignored by every class (unless an entry lists it as an option).
    public static func isIgnoredEverywhere(_ key: String) -> Bool {
        for i in ignoredEverywhere where i.keys.contains(key) { return true }
        for s in ignoredSuffixes where key.hasSuffix(s) { return true }
        for o in readByModelLoader where o.key == key { return true }
        return false
    }

    /// One entry per catalog builder.
    public static let entries: [LayerOptionsEntry] = [
        // core
        LayerOptionsEntry(
            ["Dense"],
            [
                units(keras1: true), activation, LayerOption("use_bias", "true (default) / false", aka: ["bias"]),
                LayerOption("quantization_config", "null only; quantized Dense layers refused"),
            ],
            weights: withoutBias),
        LayerOptionsEntry(
            ["Flatten"],
            [
                LayerOption(
                    "data_format", "channels_last (default) / channels_first: channels move last before flattening, as in Keras",
                    aka: ["dim_ordering"])
            ]),
        LayerOptionsEntry(["Reshape"], [LayerOption("target_shape", "list of ints; at most one -1")]),
        LayerOptionsEntry(["Permute"], [LayerOption("dims", "a permutation of 1...n for an input of rank n + 1; refused otherwise")]),
        LayerOptionsEntry(["RepeatVector"], [LayerOption("n", "int")]),
        LayerOptionsEntry(["Identity"]),

        // activations
        LayerOptionsEntry(
            ["Activation"],
            [LayerOption("activation", "any of the [activations](#activations); softmax and log_softmax over the last axis")]),
        LayerOptionsEntry(
            ["ReLU"],
            [
                LayerOption("max_value", "number >= 0 or null (default: no cap); negative refused"),
                LayerOption("negative_slope", "number >= 0, default 0; negative refused"),
                LayerOption("threshold", "number >= 0, default 0; negative refused"),
            ]),
        LayerOptionsEntry(["LeakyReLU"], [LayerOption("negative_slope", "number, default 0.3", aka: ["alpha"])]),
        LayerOptionsEntry(["ELU"], [LayerOption("alpha", "number, default 1 (Keras 3 does not save it)")]),
        LayerOptionsEntry(["ThresholdedReLU"], [LayerOption("theta", "number >= 0, default 1; negative refused")]),
        LayerOptionsEntry(
            ["PReLU"],
            ignored: [IgnoredKeys(["shared_axes"], "follows from the shape of `alpha`, whose size-1 axes broadcast")],
            weights: [("", "{}")]),
        LayerOptionsEntry(["Softmax"], [LayerOption("axis", "int or list of ints; default -1")]),

        // regularization
        LayerOptionsEntry(["Dropout"], ignored: [dropoutIgnored]),
        spatialDropout("SpatialDropout1D", rank: 3),
        spatialDropout("SpatialDropout2D", rank: 4),
        spatialDropout("SpatialDropout3D", rank: 5),
        LayerOptionsEntry(["GaussianNoise"], ignored: [IgnoredKeys(["stddev", "sigma"], trainingOnlyNoise)]),
        LayerOptionsEntry(["GaussianDropout"], ignored: [IgnoredKeys(["rate", "p"], trainingOnlyNoise)]),
        LayerOptionsEntry(["AlphaDropout"], ignored: [dropoutIgnored]),
        LayerOptionsEntry(["ActivityRegularization"], ignored: [IgnoredKeys(["l1", "l2"], trainingOnlyNoise)]),

        // reshaping
        region("Cropping1D", "cropping", "int or [before, after]", dataFormat: false),
        region("Cropping2D", "cropping", "int, one int per axis, or [before, after] per axis; >= 0", dataFormat: true),
        region("Cropping3D", "cropping", "int, one int per axis, or [before, after] per axis; >= 0", dataFormat: true),
        region("ZeroPadding1D", "padding", "int or [before, after]; default 1", dataFormat: true),
        region(
            "ZeroPadding2D", "padding",
            "int, one int per axis, or [before, after] per axis (>= 0); Keras 1.2 [top, bottom, left, right] or {top_pad, ...}; default 1",
            dataFormat: true),
        region("ZeroPadding3D", "padding", "int, one int per axis, or [before, after] per axis; >= 0; default 1", dataFormat: true),
        LayerOptionsEntry(["UpSampling1D"], [LayerOption("size", "int > 0; default 2", aka: ["length"])]),
        LayerOptionsEntry(
            ["UpSampling2D"],
            [
                LayerOption("size", "int or 2 ints > 0; default 2"),
                LayerOption("interpolation", "nearest (default) / bilinear / bicubic, any case; others (lanczos3, area, ...) refused"),
                dataFormat,
            ]),
        LayerOptionsEntry(["UpSampling3D"], [LayerOption("size", "int or 3 ints > 0; default 2"), dataFormat]),

        // convolutional
        conv("Conv1D", causal: true),
        conv("Conv2D", causal: false),
        conv("Conv3D", causal: false),
        convTranspose(["Conv1DTranspose", "Convolution1DTranspose"]),
        convTranspose(["Conv2DTranspose", "Convolution2DTranspose"]),
        convTranspose(["Conv3DTranspose", "Convolution3DTranspose", "Deconvolution3D"]),
        separable(["SeparableConv1D", "SeparableConvolution1D"], causal: true),
        separable(["SeparableConv2D"], causal: false),
        depthwise("DepthwiseConv1D", causal: true),
        depthwise("DepthwiseConv2D", causal: false),

        // pooling
        pooling(["MaxPooling1D", "MaxPool1D"], oneD: true),
        pooling(["MaxPooling2D", "MaxPool2D"], oneD: false),
        pooling(["MaxPooling3D", "MaxPool3D"], oneD: false),
        pooling(["AveragePooling1D", "AvgPool1D"], oneD: true),
        pooling(["AveragePooling2D", "AvgPool2D"], oneD: false),
        pooling(["AveragePooling3D", "AvgPool3D"], oneD: false),
        globalPooling(["GlobalMaxPooling1D", "GlobalMaxPool1D"]),
        globalPooling(["GlobalMaxPooling2D", "GlobalMaxPool2D"]),
        globalPooling(["GlobalMaxPooling3D", "GlobalMaxPool3D"]),
        globalPooling(
            ["GlobalAveragePooling1D", "GlobalAvgPool1D"], note: "with channels_last, a masked input averages over unmasked steps"),
        globalPooling(["GlobalAveragePooling2D", "GlobalAvgPool2D"]),
        globalPooling(["GlobalAveragePooling3D", "GlobalAvgPool3D"]),

        // normalization
        LayerOptionsEntry(
            ["BatchNormalization"],
            [
                LayerOption("axis", "int or list of ints (Keras 2); default -1; the batch axis refused"),
                LayerOption("epsilon", "number; default 0.001"),
                LayerOption("center", "true (default) / false: with or without `beta`"),
                LayerOption("scale", "true (default) / false: with or without `gamma`"),
                LayerOption("renorm", "true / false (default): true adds three weights, read and unused (inference uses the moving statistics)"),
                LayerOption("mode", "Keras 1: 0 (default); 1 and 2 refused (they use batch statistics)"),
            ],
            ignored: [IgnoredKeys(["momentum", "renorm_clipping", "renorm_momentum", "synchronized", "fused"], "training only")],
            weights: [
                ("", "{}"), ("center=scale=false", #"{"center":false,"scale":false}"#),
                ("renorm=true", #"{"renorm":true}"#), ("Keras 1", #"{"mode":0}"#),
            ]),
        LayerOptionsEntry(
            ["LayerNormalization"],
            [
                LayerOption("axis", "int or list of ints; default -1"), LayerOption("epsilon", "number; default 0.001"),
                LayerOption("center", "true (default) / false"), LayerOption("scale", "true (default) / false"),
                LayerOption("rms_scaling", "true / false (default): scale by rsqrt(variance), no centring, `gamma` only"),
            ],
            weights: [("", "{}"), ("rms_scaling=true", #"{"rms_scaling":true}"#)]),
        LayerOptionsEntry(
            ["GroupNormalization"],
            [
                LayerOption("groups", "int > 0 or -1 (one group per channel); default 32"),
                LayerOption("axis", "int (a non-batch axis); default -1"), LayerOption("epsilon", "number; default 0.001"),
                LayerOption("center", "true (default) / false"), LayerOption("scale", "true (default) / false"),
            ]),
        LayerOptionsEntry(
            ["RMSNormalization"],
            [LayerOption("axis", "int or list of ints; default -1"), LayerOption("epsilon", "number; default 1e-6")]),
        LayerOptionsEntry(
            ["UnitNormalization"], [LayerOption("axis", "int or list of ints; default -1")],
            note: "Keras 2 and Keras 3 files get their own formula near zero"),

        // merging
        LayerOptionsEntry(["Add"], note: "inputs broadcast as in Keras (lower ranks get size-1 axes after the batch)"),
        LayerOptionsEntry(["Subtract"]),
        LayerOptionsEntry(["Multiply"]),
        LayerOptionsEntry(["Average"]),
        LayerOptionsEntry(["Maximum"]),
        LayerOptionsEntry(["Minimum"]),
        LayerOptionsEntry(["Concatenate"], [LayerOption("axis", "int, any axis; default -1")]),
        LayerOptionsEntry(
            ["Dot"],
            [
                LayerOption("axes", "int or [int, int], required; never the batch axis"),
                LayerOption("normalize", "true / false (default): cosine similarity"),
            ]),

        // preprocessing
        LayerOptionsEntry(
            ["Rescaling"],
            [
                LayerOption("scale", "number or one per channel (last axis); default 1"),
                LayerOption("offset", "number or one per channel; default 0"),
            ]),
        LayerOptionsEntry(
            ["Normalization"],
            [
                LayerOption("axis", "int, list of ints, or null (one mean for all); default -1"),
                LayerOption("mean", "number or (nested) list; then `variance` too and no weights"),
                LayerOption("variance", "number or (nested) list, with `mean`"),
                LayerOption("invert", "true / false (default)"),
            ],
            weights: [("", "{}"), ("mean and variance in the config", #"{"mean":0,"variance":1}"#)]),

        // sequence: embedding
        LayerOptionsEntry(
            ["Embedding"],
            [
                LayerOption("input_dim", "int: ids outside 0..<input_dim are an error"),
                LayerOption("output_dim", "int"), LayerOption("mask_zero", "true / false (default)"),
                LayerOption("quantization_config", "null only; quantized embeddings refused", aka: ["quantization_mode"]),
            ],
            ignored: [IgnoredKeys(["dropout"], "Keras 1, training only")]),
        LayerOptionsEntry(["Masking"], [LayerOption("mask_value", "number; default 0")]),

        // sequence: recurrent
        LayerOptionsEntry(
            ["SimpleRNN"], [units(keras1: true), cellActivation, useBias] + rnnCommon,
            ignored: rnnIgnored(keras1: true), weights: withoutBias),
        LayerOptionsEntry(
            ["LSTM"], lstmOptions(keras1: true) + rnnCommon, ignored: rnnIgnored(keras1: true) + [unitForgetBias], weights: withoutBias,
            note: "Keras 1 files: per-gate `W_*`, `U_*`, `b_*`, joined by the converter"),
        LayerOptionsEntry(
            ["GRU"], gruOptions(keras1: true) + rnnCommon, ignored: rnnIgnored(keras1: true),
            weights: [("", "{}"), ("reset_after=false", #"{"reset_after":false}"#), ("use_bias=false", #"{"use_bias":false}"#)],
            note: "with reset_after, `bias` is (2, 3·units); Keras 1 files: per-gate weights, joined by the converter"),
        convLSTM("ConvLSTM1D"),
        convLSTM("ConvLSTM2D"),
        convLSTM("ConvLSTM3D"),
        LayerOptionsEntry(
            ["RNN"],
            [LayerOption("cell", "a serialized SimpleRNNCell, LSTMCell, GRUCell or StackedRNNCells of them (see [cells](#rnn-cells)); others refused")]
                + rnnCommon,
            ignored: [IgnoredKeys(["unroll"], "same result unrolled or not")],
            weights: [
                ("LSTMCell", #"{"cell":{"class_name":"LSTMCell","config":{"units":4}}}"#),
                (
                    "StackedRNNCells of two",
                    #"{"cell":{"class_name":"StackedRNNCells","config":{"cells":[{"class_name":"GRUCell","config":{"units":4}},{"class_name":"GRUCell","config":{"units":4}}]}}}"#
                ),
            ]),
        LayerOptionsEntry(
            ["Bidirectional"],
            [
                LayerOption("layer", "a serialized SimpleRNN, LSTM, GRU, ConvLSTM1D/2D/3D or RNN; others refused"),
                LayerOption(
                    "backward_layer",
                    "the same, or absent: then the forward config with go_backwards flipped (Keras 2) or set (Keras 3)"),
                LayerOption("merge_mode", "concat (default) / sum / mul / ave / null (two outputs); others refused"),
            ],
            weights: [("layer LSTM", #"{"layer":{"class_name":"LSTM","config":{"units":4}}}"#)],
            note: "the two layers must differ in go_backwards and agree on return_sequences and return_state"),
        LayerOptionsEntry(
            ["TimeDistributed"],
            [LayerOption("layer", "a serialized supported layer, or a Sequential / Functional model")],
            weights: [("layer Dense", #"{"layer":{"class_name":"Dense","config":{"units":4}}}"#)],
            note: "the wrapped layer must have one output"),

        // sequence: attention
        LayerOptionsEntry(
            ["Attention"],
            [
                LayerOption("use_scale", "true / false (default)"),
                LayerOption("score_mode", "dot (default) / concat; others refused"),
                LayerOption("causal", "Keras 2: true / false (default); also the call's `use_causal_mask`"),
            ],
            ignored: [IgnoredKeys(["dropout"], "training only")],
            weights: [("", "{}"), ("use_scale, score_mode=concat", #"{"use_scale":true,"score_mode":"concat"}"#)]),
        LayerOptionsEntry(
            ["AdditiveAttention"],
            [
                LayerOption("use_scale", "true (default) / false"),
                LayerOption("causal", "Keras 2: true / false (default); also the call's `use_causal_mask`"),
            ],
            ignored: [IgnoredKeys(["dropout"], "training only")],
            weights: [("", "{}"), ("use_scale=false", #"{"use_scale":false}"#)]),
        LayerOptionsEntry(
            ["MultiHeadAttention"],
            [
                LayerOption("num_heads", "int"), LayerOption("key_dim", "int"),
                LayerOption("value_dim", "int; default key_dim"), LayerOption("use_bias", "true (default) / false"),
                LayerOption("use_gate", "true / false (default): a gated value projection"),
                LayerOption(
                    "dropout",
                    "no dropout at inference; in Keras 3 files a non-zero value picks the masked softmax Keras uses then (it differs only on fully masked rows)"),
                LayerOption("sliding_window", "int or null (default)"),
                LayerOption("attention_axes", "null (default) or all axes between batch and features; others refused"),
                LayerOption("softmax_robust_masking", "false (default) only; true refused"),
            ],
            ignored: [
                IgnoredKeys(["output_shape"], "follows from the shape of `attention_output/kernel`"),
                IgnoredKeys(["query_shape", "key_shape", "value_shape"], "build shapes; Kedge takes shapes from the inputs"),
            ],
            weights: [("", "{}"), ("use_gate, use_bias=false", #"{"use_gate":true,"use_bias":false}"#)]),

        // sequence: Keras 3 op nodes that carry masks
        LayerOptionsEntry(
            ["NotEqual", "Equal", "Greater", "GreaterEqual", "Less", "LessEqual", "LogicalAnd", "LogicalOr"],
            note: "two tensors, or one tensor and a numeric constant from the call"),
        LayerOptionsEntry(
            ["Any", "All", "LogicalNot", "ExpandDims", "Squeeze", "ZerosLike", "OnesLike", "ConvertToTensor", "Cast"],
            [
                LayerOption("axis", "Any, All, Squeeze: int, list or null (all; Squeeze: size-1 axes); ExpandDims: int, required"),
                LayerOption("keepdims", "Any, All: true / false (default)"),
                LayerOption("dtype", "Cast: bool (0/1), int* / uint* (truncation); others change nothing"),
            ],
            ignored: [IgnoredKeys(["sparse", "ragged"], "ConvertToTensor: dense tensors only")]),

        // trees
        LayerOptionsEntry(
            ["XGBoostTrees"], [LayerOption("num_feature", "int"), LayerOption("num_groups", "int; default 1")],
            note: "written by `kedge convert` from an xgboost model, not by Keras"),
        LayerOptionsEntry(
            ["XGBoostObjective"],
            [
                LayerOption(
                    "objective",
                    "binary:logistic / reg:logistic (sigmoid), multi:softprob (softmax), reg:squarederror / reg:linear / binary:logitraw / reg:pseudohubererror / reg:absoluteerror (identity); others refused"
                )
            ]),

        // Keras 1
        LayerOptionsEntry(
            ["Highway"], [activation, keras1Bias],
            ignored: [IgnoredKeys(["transform_bias"], "initializer of `b_carry`")],
            weights: [("", "{}"), ("bias=false", #"{"bias":false}"#)]),
        LayerOptionsEntry(
            ["MaxoutDense"],
            [LayerOption("output_dim", "int"), LayerOption("nb_feature", "int; default 4"), keras1Bias],
            weights: [("", "{}"), ("bias=false", #"{"bias":false}"#)]),
        LayerOptionsEntry(
            ["TimeDistributedDense"], [LayerOption("output_dim", "int"), activation, keras1Bias],
            weights: [("", "{}"), ("bias=false", #"{"bias":false}"#)]),
        LayerOptionsEntry(["ParametricSoftplus"]),
        LayerOptionsEntry(["SReLU"]),
        LayerOptionsEntry(
            ["Merge"],
            [
                LayerOption("mode", "sum (default) / mul / ave / max / concat / dot / cos; others refused"),
                LayerOption("mode_type", "raw; a Python function (lambda mode) refused"),
                LayerOption("concat_axis", "int; default -1"),
                LayerOption("dot_axes", "int or [int, int]; default -1"),
            ],
            ignored: [
                IgnoredKeys(
                    ["output_shape", "output_shape_type", "output_mask", "output_mask_type", "arguments"],
                    "only used by Python-function modes, which are refused")
            ]),
        LayerOptionsEntry(
            ["Convolution1D", "AtrousConvolution1D", "Convolution2D", "AtrousConvolution2D", "Convolution3D", "Deconvolution2D"],
            [
                LayerOption("nb_filter", "int"),
                LayerOption("filter_length", "1D: int"),
                LayerOption("nb_row", "2D: int"), LayerOption("nb_col", "2D: int"),
                LayerOption("kernel_dim1", "3D: int"), LayerOption("kernel_dim2", "3D: int"),
                LayerOption("kernel_dim3", "3D: int"),
                LayerOption("subsample_length", "1D: int; default 1"),
                LayerOption("subsample", "2D/3D: ints; default 1"),
                LayerOption("atrous_rate", "int or ints; default 1 (not applied by Deconvolution2D)"),
                LayerOption("border_mode", "valid (default) / same / full (not for Deconvolution2D); others refused"),
                LayerOption("dim_ordering", "2D/3D: tf (default) / th; 1D inputs are always (batch, steps, features)"),
                LayerOption("output_shape", "Deconvolution2D: required, batch and three axes"),
                activation, keras1Bias,
            ],
            weights: [("", "{}"), ("bias=false", #"{"bias":false}"#)],
            note: "Theano kernels are flipped by the converter"),
        LayerOptionsEntry(
            ["SeparableConvolution2D"],
            [
                LayerOption("nb_filter", "int"), LayerOption("nb_row", "int"), LayerOption("nb_col", "int"),
                LayerOption("subsample", "ints; default 1"),
                LayerOption("border_mode", "valid (default) / same; full refused"),
                LayerOption("dim_ordering", "tf (default) / th"), depthMultiplier, activation,
                keras1Bias,
            ],
            weights: [("", "{}"), ("bias=false", #"{"bias":false}"#)]),
    ]

    /// The cells an `RNN` layer takes (they are configs inside its `cell`, not catalog classes).
    public static let cells: [LayerOptionsEntry] = [
        LayerOptionsEntry(
            ["SimpleRNNCell"], [units(keras1: false), cellActivation, useBias],
            ignored: [IgnoredKeys(["dropout", "recurrent_dropout"], "training only")]),
        LayerOptionsEntry(
            ["LSTMCell"], lstmOptions(keras1: false),
            ignored: [IgnoredKeys(["dropout", "recurrent_dropout", "implementation"], "training only"), unitForgetBias]),
        LayerOptionsEntry(
            ["GRUCell"], gruOptions(keras1: false),
            ignored: [IgnoredKeys(["dropout", "recurrent_dropout", "implementation"], "training only")]),
        LayerOptionsEntry(["StackedRNNCells"], [LayerOption("cells", "a list of the cells above, run in order")]),
    ]

    /// The entry that covers `className` (a catalog class or an RNN cell).
    public static func entry(for className: String) -> LayerOptionsEntry? {
        for e in entries + cells where e.classes.contains(className) { return e }
        return nil
    }
}
