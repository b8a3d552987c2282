/// Load-time graph rewrites that change no result beyond float rounding:
/// - a BatchNormalization (on the channel axis) right after a conv/dense is folded into its weights;
/// - a pointwise activation layer right after a conv/dense/norm is fused into that kernel's epilogue.
/// A producer qualifies only when it is called once, has one output, and that output has no other reader
/// and is not a model output. The follower's output slot is then produced by the producer directly.
extension Graph {
    func fuse() {
        var changed = true
        while changed {
            changed = false
            for i in steps.indices.reversed() {
                let st = steps[i]
                guard st.inputs.count == 1, st.outputs.count == 1, let p = producerIndex(of: st.inputs[0]),
                    isPrivateLink(producer: p, slot: st.inputs[0])
                else { continue }
                let producer = steps[p].layer
                var absorbed = false
                if let (scale, shift) = st.layer.scaleShiftForFolding {
                    absorbed = producer.absorbScaleShift(scale: scale, shift: shift)
                } else if let act = st.layer.activationForFusion {
                    absorbed = producer.absorbActivation(act)
                }
                if absorbed {
                    // The producer now writes the follower's slot (which keeps the follower's name, so model
                    // outputs and their names are unchanged).
                    steps[p].outputs[0] = st.outputs[0]
                    steps.remove(at: i)
                    changed = true
                    break
                }
            }
        }
        computeLiveness()
    }

    private func producerIndex(of slot: Int) -> Int? {
        for (i, st) in steps.enumerated() where st.outputs.contains(slot) { return i }
        return nil
    }

    private func isPrivateLink(producer p: Int, slot: Int) -> Bool {
        let st = steps[p]
        guard st.outputs.count == 1, !outputSlots.contains(slot) else { return false }
        var readers = 0
        var calls = 0
        for other in steps {
            if other.inputs.contains(slot) { readers += 1 }
            if other.layer === st.layer { calls += 1 }
        }
        return readers == 1 && calls == 1
    }
}
