// Keras's regularization layers (keras/src/layers/regularization): all of them act only in training, so at
// inference each is the identity and its output is the very tensor it was given (no copy).

let regularizationBuilders: [LayerBuilder] = [
    LayerBuilder(["Dropout"], make: { s throws(KedgeError) in InferenceIdentity(s, rank: nil) }),
    LayerBuilder(["SpatialDropout1D"], make: { s throws(KedgeError) in InferenceIdentity(s, rank: 3) }),
    LayerBuilder(["SpatialDropout2D"], make: { s throws(KedgeError) in InferenceIdentity(s, rank: 4) }),
    LayerBuilder(["SpatialDropout3D"], make: { s throws(KedgeError) in InferenceIdentity(s, rank: 5) }),
    LayerBuilder(["GaussianNoise"], make: { s throws(KedgeError) in InferenceIdentity(s, rank: nil) }),
    LayerBuilder(["GaussianDropout"], make: { s throws(KedgeError) in InferenceIdentity(s, rank: nil) }),
    LayerBuilder(["AlphaDropout"], make: { s throws(KedgeError) in InferenceIdentity(s, rank: nil) }),
    LayerBuilder(["ActivityRegularization"], make: { s throws(KedgeError) in InferenceIdentity(s, rank: nil) }),
]

/// A layer that only does something while training. `rank` is the input rank Keras insists on
/// (SpatialDropoutND), checked so a wrong model fails at load as it would in Keras.
final class InferenceIdentity: Layer {
    let rank: Int?

    init(_ s: LayerSpec, rank: Int?) {
        self.rank = rank
        super.init(spec: s)
    }

    override func outputShapes(_ inputShapes: [[Int]]) throws(KedgeError) -> [[Int]] {
        guard inputShapes.count == 1 else { throw arityError(inputShapes.count, expected: 1) }
        if let rank, inputShapes[0].count != rank {
            throw shapeError("expects an input of rank \(rank), got shape \(describeShape(inputShapes[0]))")
        }
        return inputShapes
    }

    override func forward(_ inputs: [Tensor]) throws(KedgeError) -> [Tensor] {
        guard inputs.count == 1 else { throw arityError(inputs.count, expected: 1) }
        return inputs
    }
}
