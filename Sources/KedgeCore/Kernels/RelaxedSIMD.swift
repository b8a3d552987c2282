// wasm relaxed SIMD (the `kedge-relaxed.wasm` variant, built with -D KEDGE_RELAXED_SIMD): `f32x4.relaxed_madd`,
// a fused multiply-add where the engine has one (Chromium on x86-64 with FMA3, arm64) and `a * b + c` elsewhere.
// Swift reaches it only through the Builtin module; plain SIMD types have no wasm FMA (`addingProduct` becomes
// four `fmaf` calls). Debian's wasm-opt (108) cannot parse relaxed SIMD, so wasm/build.sh hands it the module
// with each relaxed_madd turned into a call to a stand-in import and puts the instruction back afterwards (an
// import in the Swift source instead made the GEMM ~35% slower: LLVM schedules a call, not an instruction).
#if KEDGE_RELAXED_SIMD
import Builtin

@inline(__always) func relaxedMultiplyAdd(_ a: SIMD4<Float>, _ b: SIMD4<Float>, _ c: SIMD4<Float>) -> SIMD4<Float> {
    unsafeBitCast(
        Builtin.int_wasm_relaxed_madd_Vec4xFPIEEE32(a._storage._value, b._storage._value, c._storage._value),
        to: SIMD4<Float>.self)
}

/// `acc + a * b` on both 128-bit halves.
@inline(__always) func relaxedMultiplyAdd(_ acc: SIMD8<Float>, _ a: SIMD8<Float>, _ b: SIMD8<Float>) -> SIMD8<Float> {
    SIMD8(
        lowHalf: relaxedMultiplyAdd(a.lowHalf, b.lowHalf, acc.lowHalf),
        highHalf: relaxedMultiplyAdd(a.highHalf, b.highHalf, acc.highHalf))
}
#endif
