import Foundation
import KedgeCore

public struct ConvertOptions: Sendable {
    /// How tensors are stored (`--quantize float16|uint8`); float32 keeps them exact.
    public var quantize: WeightStorage
    /// The architecture for a weights-only file: a file holding `model.to_json()` text. Overrides a config
    /// stored in the model file.
    public var configPath: String?
    /// Load the bundle with the core before writing it, so that a bundle that would not load is never written.
    public var validate: Bool
    /// `producer` in model_metadata.json.
    public var producer: String

    public init(
        quantize: WeightStorage = .float32, configPath: String? = nil, validate: Bool = true,
        producer: String = "kedge 0.1.0"
    ) {
        self.quantize = quantize
        self.configPath = configPath
        self.validate = validate
        self.producer = producer
    }
}

/// Keras model files to Kedge bundles (docs/FORMAT.md). Every failure is a `KedgeError` whose message starts
/// with the input file and names the layer and weight concerned.
public enum Converter {
    /// Converts `input` and writes the bundle folder `outputDirectory`. The folder is written next to its final
    /// place and renamed into it at the end, so a failure leaves nothing behind, and an existing bundle there
    /// is replaced only once the new one is complete. An existing folder that is not a bundle is never replaced.
    @discardableResult
    public static func convert(input: String, outputDirectory: String, options: ConvertOptions = ConvertOptions())
        throws -> ConvertedBundle
    {
        try BundleFolder.checkReplaceable(outputDirectory)
        let bundle = try makeBundle(input: input, options: options)
        try BundleFolder.write(bundle, to: outputDirectory)
        return bundle
    }

    /// Converts in memory: the three files as bytes (what a server hands to a browser), nothing written.
    public static func makeBundle(input: String, options: ConvertOptions = ConvertOptions()) throws -> ConvertedBundle {
        if let xgb = try XGBoostSource.bundle(input: input, options: options) { return xgb }
        if let legacy = try LegacySources.bundle(input: input, options: options) { return legacy }
        let src = try SourceModel.open(input, configPath: options.configPath)
        let plan = try src.planner.plan(src.config)

        var buffer = BufferBuilder()
        for p in plan {
            let what = "layer '\(p.layerPath)' weight '\(p.weightName)'"
            let t = try src.weights.readFloats(p.datasetPath, context: what)
            let encoded = try TensorEncoder.encode(t.data, as: options.quantize, what: "\(input): \(what)")
            buffer.append(layer: p.layerPath, weight: p.weightName, shape: t.shape, encoded)
        }

        var inputs: [PortInfo] = []
        for (i, n) in src.config.inputNames.enumerated() {
            inputs.append(PortInfo(name: n, shape: i < src.config.inputShapes.count ? src.config.inputShapes[i] : nil))
        }
        var outputs = src.config.outputNames.map { PortInfo(name: $0, shape: nil) }
        var header = MetadataWriter.Header(
            producer: options.producer, source: (input as NSString).lastPathComponent, sourceFormat: src.format,
            kerasVersion: src.kerasVersion, backend: src.backend, inputs: inputs, outputs: outputs)
        var metadata = MetadataWriter.write(header, entries: buffer.entries)

        if options.validate {
            do throws(KedgeError) {
                let model = try Model(
                    modelJSON: src.modelJSON, weights: buffer.bytes, metadata: metadata,
                    options: Model.Options(fuse: false))
                inputs = model.inputs.map { PortInfo(name: $0.name, shape: $0.shape) }
                outputs = model.outputs.map { PortInfo(name: $0.name, shape: $0.shape) }
            } catch {
                throw KedgeError(error.kind, "\(input): \(error.message)")
            }
            header.inputs = inputs
            header.outputs = outputs
            metadata = MetadataWriter.write(header, entries: buffer.entries)
        }
        return ConvertedBundle(
            modelJSON: src.modelJSON, weights: buffer.bytes, metadata: metadata, source: input,
            sourceFormat: src.format,
            kerasVersion: src.kerasVersion, backend: src.backend, inputs: inputs, outputs: outputs,
            entries: buffer.entries,
            validated: options.validate)
    }
}
