/// The one tensor type of the core: contiguous Float32 in C order, channels-last, batch dimension explicit.
/// Storage is a Swift array, so copies are copy-on-write and a tensor can be handed between layers cheaply.
public struct Tensor {
    public var shape: [Int]
    public var data: [Float]

    public init(shape: [Int], data: [Float]) {
        precondition(Tensor.elementCount(shape) == data.count, "tensor data does not match its shape")
        self.shape = shape
        self.data = data
    }

    public init(shape: [Int], repeating value: Float = 0) {
        self.shape = shape
        self.data = [Float](repeating: value, count: Tensor.elementCount(shape))
    }

    /// Creates a tensor without initialising its elements; `fill` must write every one of them.
    public init(shape: [Int], unsafeUninitialized fill: (UnsafeMutableBufferPointer<Float>) -> Void) {
        let n = Tensor.elementCount(shape)
        self.shape = shape
        self.data = [Float](unsafeUninitializedCapacity: n) { buf, initialized in
            fill(buf)
            initialized = n
        }
    }

    public var count: Int { data.count }
    public var rank: Int { shape.count }

    public static func elementCount(_ shape: [Int]) -> Int {
        var n = 1
        for d in shape { n *= d }
        return n
    }

    /// The same data under another shape with the same element count.
    public func reshaped(_ newShape: [Int]) -> Tensor {
        Tensor(shape: newShape, data: data)
    }
}
