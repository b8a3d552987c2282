/// Moves axes: output axis i is input axis `axes[i]`.
public func transpose(_ x: Tensor, axes: [Int]) -> Tensor {
    let rank = x.rank
    var outShape = [Int](repeating: 0, count: rank)
    for i in 0..<rank { outShape[i] = x.shape[axes[i]] }
    var inStrides = [Int](repeating: 1, count: rank)
    if rank > 1 { for i in stride(from: rank - 2, through: 0, by: -1) { inStrides[i] = inStrides[i + 1] * x.shape[i + 1] } }
    // Strides of the input, in output axis order.
    var s = [Int](repeating: 0, count: rank)
    for i in 0..<rank { s[i] = inStrides[axes[i]] }
    let n = x.count
    return Tensor(shape: outShape) { out in
        x.data.withUnsafeBufferPointer { src in
            var idx = [Int](repeating: 0, count: rank)
            var off = 0
            let last = rank - 1
            let lastLen = rank > 0 ? outShape[last] : 1
            let lastStride = rank > 0 ? s[last] : 0
            var o = 0
            while o < n {
                // Innermost axis as a strided run.
                var p = off
                for j in 0..<lastLen {
                    out[o + j] = src[p]
                    p += lastStride
                }
                o += lastLen
                // Advance the outer index (odometer), keeping `off` in step.
                var a = last - 1
                while a >= 0 {
                    idx[a] += 1
                    off += s[a]
                    if idx[a] < outShape[a] { break }
                    off -= s[a] * outShape[a]
                    idx[a] = 0
                    a -= 1
                }
                if a < 0 { break }
            }
        }
    }
}
