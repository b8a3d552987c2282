// wasm relaxed SIMD (the `kedge-relaxed.wasm` variants, built with -D KEDGE_RELAXED_SIMD): `f32x4.relaxed_madd`,
// a fused multiply-add where the engine has one (Chromium on x86-64 with FMA3, arm64) and `a * b + c` elsewhere.
// Plain SIMD types have no wasm FMA in Swift (`addingProduct` becomes four `fmaf` calls).
//
// Swift emits the instruction itself only through the Builtin module. wasm/build.sh instead compiles it as a call
// to an import, `kedge_relaxed.madd`, so that Debian's wasm-opt (version 108, which cannot parse relaxed SIMD)
// can still shrink the module; after wasm-opt the script replaces each call with `f32x4.relaxed_madd` and
// removes the import (wasm/build.sh, `relax`). The operands are on the stack in the same order either way.
#if KEDGE_RELAXED_SIMD
// Swift's convention on wasm adds two i32 parameters (self and error) after the three vectors; `relax` checks the
// import's type and drops them.
@_extern(wasm, module: "kedge_relaxed", name: "madd")
func relaxedMaddImport(_ a: SIMD4<Float>, _ b: SIMD4<Float>, _ c: SIMD4<Float>) -> SIMD4<Float>

/// `a * b + c`, fused where the engine fuses.
@inline(__always) func relaxedMultiplyAdd(_ a: SIMD4<Float>, _ b: SIMD4<Float>, _ c: SIMD4<Float>) -> SIMD4<Float> {
    relaxedMaddImport(a, b, c)
}

/// `acc + a * b` on both 128-bit halves.
@inline(__always) func relaxedMultiplyAdd(_ acc: SIMD8<Float>, _ a: SIMD8<Float>, _ b: SIMD8<Float>) -> SIMD8<Float> {
    SIMD8(
        lowHalf: relaxedMultiplyAdd(a.lowHalf, b.lowHalf, acc.lowHalf),
        highHalf: relaxedMultiplyAdd(a.highHalf, b.highHalf, acc.highHalf))
}
#endif
