#!/usr/bin/env bash
# Builds web/kedge.wasm's source of truth: all of Sources/KedgeCore plus Sources/KedgeWasm (the C ABI), compiled as
# one Embedded-Swift module for wasm32 with SIMD128, linked against Debian's wasi-libc (malloc, memcpy, libm) so
# the module imports nothing. Writes wasm/out/kedge.wasm and prints its size and its count of f32x4 instructions.
#
#   wasm/build.sh                  optimised build: swiftc -Osize, then binaryen's wasm-opt -Oz
#   wasm/build.sh --check          compile and link only (no wasm-opt, no stats): the core must stay
#                                  Embedded-Swift compatible and need no C symbol wasi-libc lacks
#   wasm/build.sh --compare        build with -O and -Osize, with and without wasm-opt, and print the sizes
#   wasm/build.sh --sizes          build, then list code bytes per Swift type (wasm/sizes.py)
#   KEDGE_WASM_OPT=-O wasm/build.sh     KEDGE_WASM_OUT=path/kedge.wasm wasm/build.sh
#
# Why -Osize: -O is ~11% larger. -Osize turns off LLVM's loop auto-vectoriser, so hot loops that are not written
# with SIMD types should carry @_optimize(speed) (which restores it per function).
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

# One module named KedgeCore (the core qualifies names with it), with KedgeWasm compiled into it.
compile() { # $1 = optimisation flag, $2 = object file
    "$SWIFTC" -target wasm32-unknown-none-wasm \
        -enable-experimental-feature Embedded -enable-experimental-feature Extern \
        -wmo -parse-as-library -module-name KedgeCore -D KEDGE_WASM_SINGLE_MODULE \
        -Xfrontend -disable-stack-protector -Xcc -msimd128 -Xcc -mbulk-memory \
        "$1" -c "${SOURCES[@]}" -o "$2"
}

link() { # $1 = object file, $2 = wasm, $3 = --strip-all (default) or --no-strip
    local exports=(--export=_initialize) strip=(--strip-all)
    for e in "${EXPORTS[@]}"; do exports+=("--export=$e"); done
    [ "${3:-}" = --no-strip ] && strip=()
    "$WASM_LD" --no-entry "${strip[@]}" --gc-sections -z stack-size=1048576 \
        "${exports[@]}" \
        "$WASI/crt1-reactor.o" "$1" "$UNICODE" "$WASI/libc.a" "$BUILTINS" -o "$2"
    # A module that imports anything (WASI stdio, an unresolved symbol) would not instantiate without glue.
    local imports
    imports=$(wasm2wat "$2" | grep -c '^ *(import' || true)
    if [ "$imports" != 0 ]; then
        echo "wasm/build.sh: $2 imports $imports function(s); it must import nothing:" >&2
        wasm2wat "$2" | grep '^ *(import' >&2
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
    ;;
esac
