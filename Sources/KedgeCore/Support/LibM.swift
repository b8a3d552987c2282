// The C math library, reached without Glibc so the same code links natively (libm) and in wasm (wasi-libc's libm).
@_extern(c, "expf") func expf(_ x: Float) -> Float
@_extern(c, "logf") func logf(_ x: Float) -> Float
@_extern(c, "log1pf") func log1pf(_ x: Float) -> Float
@_extern(c, "expm1f") func expm1f(_ x: Float) -> Float
@_extern(c, "tanhf") func tanhf(_ x: Float) -> Float
@_extern(c, "erff") func erff(_ x: Float) -> Float
@_extern(c, "powf") func powf(_ x: Float, _ y: Float) -> Float
@_extern(c, "floorf") func floorf(_ x: Float) -> Float
@_extern(c, "roundf") func roundf(_ x: Float) -> Float
@_extern(c, "exp") func exp(_ x: Double) -> Double
@_extern(c, "log") func log(_ x: Double) -> Double
@_extern(c, "sqrt") func sqrt(_ x: Double) -> Double
@_extern(c, "ceilf") func ceilf(_ x: Float) -> Float
