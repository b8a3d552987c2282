#!/usr/bin/env bash
# Builds web/kedge.wasm's source of truth: all of Sources/KedgeCore plus Sources/KedgeWasm (the C ABI), compiled as
# one Embedded-Swift module for wasm32 with SIMD128, linked against Debian's wasi-libc (malloc, memcpy, libm) so
# the module imports nothing. Writes wasm/out/kedge.wasm and prints its size and its count of f32x4 instructions.
# Also writes wasm/out/kedge-relaxed.wasm: the same with relaxed SIMD (f32x4.relaxed_madd in the GEMM and depthwise
# kernels, -D KEDGE_RELAXED_SIMD), which kedge-fetch.js loads instead where WebAssembly.validate accepts relaxed
# SIMD (Chromium; node 20 only with --experimental-wasm-relaxed-simd). Debian's wasm-opt cannot read relaxed SIMD,
# so that variant is not run through it (it is ~20% larger raw, ~8% gzipped).
#
#   wasm/build.sh                  optimised build: swiftc -Osize, then binaryen's wasm-opt -Oz; then the relaxed variant
#   KEDGE_WASM_RELAXED=0 wasm/build.sh    skip the relaxed variant
#   wasm/build.sh --check          compile and link only (no wasm-opt, no stats): the core must stay
#                                  Embedded-Swift compatible and need no C symbol wasi-libc lacks
#   wasm/build.sh --compare        build with -O and -Osize, with and without wasm-opt, and print the sizes
#   wasm/build.sh --sizes          build, then list code bytes per Swift type (wasm/sizes.py); wasm/ABI.md, "Module size"
#   KEDGE_WASM_OPT=-O wasm/build.sh     KEDGE_WASM_OUT=path/kedge.wasm wasm/build.sh
#
# Why -Osize: -O is ~16% larger (927 vs 800 KB before the size flags below) for ~5% more speed. -Osize marks every function optsize, which turns
# off LLVM's loop vectoriser and shrinks inlining, so the kernels carry @_optimize(speed) (BENCHMARKS.md, "Kedge in the browser":
# 3-26% faster per model for +14 KB). Two traps: closures, and the copies the SIL optimiser makes when it
# specialises a function on a closure argument, do NOT inherit @_optimize(speed) (they come out optsize); a
# speed-mode function that takes a closure should be @inline(__always) into speed-mode callers (as `gemm` is), and
# a hot loop must not sit in a closure (withUnsafeBufferPointer bodies are fine when they get inlined).
set -euo pipefail
cd "$(dirname "$0")/.."

mode=build
case "${1:-}" in
    --check) mode=check ;;
    --compare) mode=compare ;;
    --sizes) mode=sizes ;;
    "") ;;
    *) echo "usage: wasm/build.sh [--check|--compare|--sizes]" >&2; exit 2 ;;
esac

# System packages: wasi-libc (libc.a, crt1-reactor.o), wabt (wasm2wat), compiler-rt builtins (Float16 helpers),
# binaryen (wasm-opt).
need=()
for pkg in wasi-libc wabt libclang-rt-dev-wasm32 binaryen; do
    dpkg -s "$pkg" >/dev/null 2>&1 || need+=("$pkg")
done
if [ ${#need[@]} -gt 0 ]; then
    echo "wasm/build.sh: installing ${need[*]}"
    SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
    export DEBIAN_FRONTEND=noninteractive
    $SUDO apt-get update -qq
    $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

SWIFTC=${SWIFTC:-$(command -v swiftc)}
WASM_LD=${WASM_LD:-$(dirname "$SWIFTC")/wasm-ld}
[ -x "$WASM_LD" ] || WASM_LD=$(command -v wasm-ld)
WASI=/usr/lib/wasm32-wasi
# String comparison and hashing (Dictionary<String, _>) need the Unicode normalisation tables.
UNICODE=$(dirname "$SWIFTC")/../lib/swift/embedded/wasm32-unknown-none-wasm/libswiftUnicodeDataTables.a
BUILTINS=$(ls /usr/lib/llvm-*/lib/clang/*/lib/wasi/libclang_rt.builtins-wasm32.a 2>/dev/null | sort -V | tail -n 1)
for f in "$WASI/crt1-reactor.o" "$WASI/libc.a" "$BUILTINS" "$UNICODE"; do
    [ -f "$f" ] || { echo "wasm/build.sh: missing $f" >&2; exit 1; }
done

OUT_DIR=wasm/out
OUT=${KEDGE_WASM_OUT:-$OUT_DIR/kedge.wasm}
mkdir -p "$OUT_DIR" "$(dirname "$OUT")"

mapfile -t SOURCES < <(find Sources/KedgeCore Sources/KedgeWasm -name '*.swift' | LC_ALL=C sort)
# The exports are exactly the @_cdecl("kedge_...") functions of Sources/KedgeWasm, plus the reactor's initialiser.
mapfile -t EXPORTS < <(grep -rhoE '@_cdecl\("kedge_[A-Za-z0-9_]+"\)' Sources/KedgeWasm | sed -E 's/@_cdecl\("(.*)"\)/\1/' | sort -u)
[ ${#EXPORTS[@]} -gt 0 ] || { echo "wasm/build.sh: no @_cdecl exports found in Sources/KedgeWasm" >&2; exit 1; }

# Size: the Embedded stdlib's swift_retain is an ordinary Swift function compiled into this module, and LLVM inlined
# it at ~1,400 call sites; kept out of line (noinline) the module is ~70 KB (9%) smaller at the same speed. That
# needs -disable-swift-specific-llvm-optzns: Swift's LLVM ARC passes treat a swift_retain call as touching no memory
# Swift code reads, but Embedded Swift's inlined uniqueness check reads the refcount with a plain load, so with
# both on a retain moves across that check and copy-on-write skips a copy (52 masked-RNN parity tests fail). Without
# the Swift-specific passes LLVM sees retain's real body and effects (wasm/ABI.md, "Module size").
SIZE_FLAGS=(-Xfrontend -disable-swift-specific-llvm-optzns
    -Xllvm -force-attribute=swift_retain:noinline -Xllvm -force-attribute=swift_retain_n:noinline)

# One module named KedgeCore (the core qualifies names with it), with KedgeWasm compiled into it.
compile() { # $1 = optimisation flag, $2 = object file, then extra swiftc flags
    local opt=$1 obj=$2
    shift 2
    "$SWIFTC" -target wasm32-unknown-none-wasm \
        -enable-experimental-feature Embedded -enable-experimental-feature Extern \
        -wmo -parse-as-library -module-name KedgeCore -D KEDGE_WASM_SINGLE_MODULE \
        -Xfrontend -disable-stack-protector -Xcc -msimd128 -Xcc -mbulk-memory "${SIZE_FLAGS[@]}" \
        "$@" "$opt" -c "${SOURCES[@]}" -o "$obj"
}
# The relaxed-SIMD variant: Builtin.int_wasm_relaxed_madd needs the Builtin module (Kernels/RelaxedSIMD.swift).
RELAXED_FLAGS=(-D KEDGE_RELAXED_SIMD -Xcc -mrelaxed-simd -enable-experimental-feature BuiltinModule)

link() { # $1 = object file, $2 = wasm, $3 = --strip-all (default) or --no-strip
    local exports=(--export=_initialize) strip=(--strip-all)
    for e in "${EXPORTS[@]}"; do exports+=("--export=$e"); done
    [ "${3:-}" = --no-strip ] && strip=()
    "$WASM_LD" --no-entry "${strip[@]}" --gc-sections -z stack-size=1048576 \
        "${exports[@]}" \
        "$WASI/crt1-reactor.o" "$1" "$UNICODE" "$WASI/libc.a" "$BUILTINS" -o "$2"
    # A module that imports anything (WASI stdio, an unresolved symbol) would not instantiate without glue.
    local imports
    imports=$(wasm2wat --enable-all "$2" | grep -c '^ *(import' || true)
    if [ "$imports" != 0 ]; then
        echo "wasm/build.sh: $2 imports $imports function(s); it must import nothing:" >&2
        wasm2wat --enable-all "$2" | grep "^ *(import" >&2
        exit 1
    fi
}

# Debian's wasm-opt (108) predates relaxed SIMD: if it cannot read the module, keep the module as linked.
optimise() { # $1 = in, $2 = out
    if ! wasm-opt --enable-simd --enable-bulk-memory --enable-sign-ext --enable-mutable-globals \
        --enable-nontrapping-float-to-int -Oz "$1" -o "$2" 2>"$OUT_DIR/wasm-opt.log"; then
        echo "wasm/build.sh: warning: wasm-opt failed (see $OUT_DIR/wasm-opt.log); keeping the unoptimised module" >&2
        cp "$1" "$2"
    fi
}

size_of() { stat -c %s "$1"; }
f32x4_of() { wasm2wat --enable-all "$1" | grep -c 'f32x4\.' || true; }
relaxed_of() { wasm2wat --enable-all "$1" | grep -c 'relaxed_' || true; }

case $mode in
check)
    t0=$(date +%s)
    compile -Osize "$OUT_DIR/check.o"
    link "$OUT_DIR/check.o" "$OUT_DIR/check.wasm"
    echo "wasm/build.sh --check: ${#SOURCES[@]} files compile as Embedded Swift for wasm32 and link ($(( $(date +%s) - t0 )) s)"
    ;;
compare)
    for opt in -O -Osize; do
        compile "$opt" "$OUT_DIR/kedge$opt.o"
        link "$OUT_DIR/kedge$opt.o" "$OUT_DIR/kedge$opt.wasm"
        optimise "$OUT_DIR/kedge$opt.wasm" "$OUT_DIR/kedge$opt.opt.wasm"
        for f in "$OUT_DIR/kedge$opt.wasm" "$OUT_DIR/kedge$opt.opt.wasm"; do
            echo "$f: $(size_of "$f") bytes ($(gzip -9c "$f" | wc -c) gzipped), $(f32x4_of "$f") f32x4 ops"
        done
    done
    ;;
sizes)
    compile -Osize "$OUT_DIR/kedge.o"
    link "$OUT_DIR/kedge.o" "$OUT_DIR/kedge.named.wasm" --no-strip
    python3 wasm/sizes.py "$OUT_DIR/kedge.named.wasm" "${KEDGE_SIZES_TOP:-40}"
    ;;
build)
    opt=${KEDGE_WASM_OPT:--Osize}
    t0=$(date +%s)
    compile "$opt" "$OUT_DIR/kedge.o"
    link "$OUT_DIR/kedge.o" "$OUT_DIR/kedge.linked.wasm"
    optimise "$OUT_DIR/kedge.linked.wasm" "$OUT"
    echo "wasm/build.sh: $OUT ($opt + wasm-opt -Oz, $(( $(date +%s) - t0 )) s): $(size_of "$OUT") bytes" \
        "($(gzip -9c "$OUT" | wc -c) gzipped), $(f32x4_of "$OUT") f32x4 ops, ${#EXPORTS[@]} exports"
    if [ "${KEDGE_WASM_RELAXED:-1}" != 0 ]; then
        RELAXED_OUT=${OUT%.wasm}-relaxed.wasm
        t0=$(date +%s)
        compile "$opt" "$OUT_DIR/kedge-relaxed.o" "${RELAXED_FLAGS[@]}"
        link "$OUT_DIR/kedge-relaxed.o" "$RELAXED_OUT"
        echo "wasm/build.sh: $RELAXED_OUT ($opt, relaxed SIMD, no wasm-opt, $(( $(date +%s) - t0 )) s):" \
            "$(size_of "$RELAXED_OUT") bytes ($(gzip -9c "$RELAXED_OUT" | wc -c) gzipped)," \
            "$(relaxed_of "$RELAXED_OUT") relaxed SIMD ops"
    fi
    ;;
esac
