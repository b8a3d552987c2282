#!/usr/bin/env bash
# Builds the wasm modules web/kedge.js loads, each from Sources/KedgeCore plus Sources/KedgeWasm (the C ABI),
# compiled as one Embedded-Swift module for wasm32 with SIMD128, linked against Debian's wasi-libc (malloc,
# memcpy, libm) so that it imports nothing. Two builds, each in two SIMD flavours:
#   kedge.wasm / kedge-relaxed.wasm            the feed-forward and convolutional layer families (KEDGE_WASM_SLIM):
#                                              what image models need, under the 400 KB budget
#   kedge-full.wasm / kedge-full-relaxed.wasm  everything: also the sequence family (Layers/Sequence/), the Keras 1
#                                              classes (Layers/Keras1.swift), tree ensembles and the cascade
# kedge.js starts with kedge.wasm and moves to kedge-full.wasm when the model needs it (KedgeError
# .notInThisBuild); the cascade page loads kedge-full.wasm. The -relaxed flavours use f32x4.relaxed_madd in the
# GEMM (-D KEDGE_RELAXED_SIMD); kedge-fetch.js loads them where WebAssembly.validate accepts relaxed SIMD
# (Chromium; node 20 only with --experimental-wasm-relaxed-simd).
#
#   wasm/build.sh                  optimised build of all four: swiftc -Osize, then binaryen's wasm-opt -Oz
#   KEDGE_WASM_RELAXED=0 wasm/build.sh    skip the relaxed flavours
#   wasm/build.sh --check          compile and link only (no wasm-opt, no stats): the core must stay
#                                  Embedded-Swift compatible and need no C symbol wasi-libc lacks
#   wasm/build.sh --compare        build with -O and -Osize, with and without wasm-opt, and print the sizes
#   wasm/build.sh --sizes          build, then list code bytes per Swift type (wasm/sizes.py); wasm/ABI.md, "Module size"
#                                  (KEDGE_SIZES_BUILD=kedge-full for the full build)
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
CLANG=${CLANG:-$(dirname "$SWIFTC")/clang}
BUILTINS=$(ls /usr/lib/llvm-*/lib/clang/*/lib/wasi/libclang_rt.builtins-wasm32.a 2>/dev/null | sort -V | tail -n 1)
for f in "$WASI/crt1-reactor.o" "$WASI/libc.a" "$BUILTINS"; do
    [ -f "$f" ] || { echo "wasm/build.sh: missing $f" >&2; exit 1; }
done

OUT_DIR=wasm/out
OUT=${KEDGE_WASM_OUT:-$OUT_DIR/kedge.wasm}
mkdir -p "$OUT_DIR" "$(dirname "$OUT")"

mapfile -t SOURCES_FULL < <(find Sources/KedgeCore Sources/KedgeWasm -name '*.swift' | LC_ALL=C sort)
# What kedge.wasm leaves out (LayerCatalog.families says the same under #if KEDGE_WASM_SLIM).
SLIM_EXCLUDES='^Sources/KedgeCore/(Layers/Sequence/|Layers/Keras1\.swift$|Cascade/|Trees/)|^Sources/KedgeWasm/CascadeABI\.swift$'
mapfile -t SOURCES_SLIM < <(printf '%s\n' "${SOURCES_FULL[@]}" | grep -Ev "$SLIM_EXCLUDES")
SLIM_FLAGS=(-D KEDGE_WASM_SLIM)
sources_of() { # $1 = build (kedge|kedge-full): its Swift files, one per line
    if [ "$1" = kedge ]; then printf '%s\n' "${SOURCES_SLIM[@]}"; else printf '%s\n' "${SOURCES_FULL[@]}"; fi
}

# Unicode: a C stand-in for the toolchain's libswiftUnicodeDataTables.a (wasm/unicode-no-normalization.c says why).
UNICODE_OBJ=$OUT_DIR/unicode-no-normalization.o
"$CLANG" --target=wasm32-unknown-unknown -Oz -c wasm/unicode-no-normalization.c -o "$UNICODE_OBJ"

# Size: the Embedded stdlib's swift_retain is an ordinary Swift function compiled into this module, and LLVM inlined
# it at ~1,400 call sites; kept out of line (noinline) the module is ~70 KB (9%) smaller at the same speed. That
# needs -disable-swift-specific-llvm-optzns: Swift's LLVM ARC passes treat a swift_retain call as touching no memory
# Swift code reads, but Embedded Swift's inlined uniqueness check reads the refcount with a plain load, so with
# both on a retain moves across that check and copy-on-write skips a copy (52 masked-RNN parity tests fail). Without
# the Swift-specific passes LLVM sees retain's real body and effects (wasm/ABI.md, "Module size").
SIZE_FLAGS=(-Xfrontend -disable-swift-specific-llvm-optzns
    -Xllvm -force-attribute=swift_retain:noinline -Xllvm -force-attribute=swift_retain_n:noinline)

# One module named KedgeCore (the core qualifies names with it), with KedgeWasm compiled into it.
# $1 = build (kedge or kedge-full), $2 = optimisation flag, $3 = object file, then extra swiftc flags
compile() {
    local build=$1 opt=$2 obj=$3 sources flags=()
    shift 3
    mapfile -t sources < <(sources_of "$build")
    [ "$build" = kedge ] && flags=("${SLIM_FLAGS[@]}")
    "$SWIFTC" -target wasm32-unknown-none-wasm \
        -enable-experimental-feature Embedded -enable-experimental-feature Extern \
        -wmo -parse-as-library -module-name KedgeCore -D KEDGE_WASM_SINGLE_MODULE \
        -Xfrontend -disable-stack-protector -Xcc -msimd128 -Xcc -mbulk-memory "${SIZE_FLAGS[@]}" \
        "${flags[@]}" "$@" "$opt" -c "${sources[@]}" -o "$obj"
}
# The relaxed flavour: Builtin.int_wasm_relaxed_madd needs the Builtin module (Kernels/RelaxedSIMD.swift).
RELAXED_FLAGS=(-D KEDGE_RELAXED_SIMD -Xcc -mrelaxed-simd -enable-experimental-feature BuiltinModule)

# The exports are exactly the @_cdecl("kedge_...") functions of the build's KedgeWasm files, plus the reactor's
# initialiser.
exports_of() { # $1 = build
    sources_of "$1" | grep '^Sources/KedgeWasm/' | xargs grep -hoE '@_cdecl\("kedge_[A-Za-z0-9_]+"\)' |
        sed -E 's/@_cdecl\("(.*)"\)/\1/' | sort -u
}

# $1 = build, $2 = object file, $3 = wasm, $4 = --strip-all (default) or --no-strip
link() {
    local exports=(--export=_initialize) strip=(--strip-all) e
    for e in $(exports_of "$1"); do exports+=("--export=$e"); done
    [ ${#exports[@]} -gt 1 ] || { echo "wasm/build.sh: no @_cdecl exports found in Sources/KedgeWasm" >&2; exit 1; }
    [ "${4:-}" = --no-strip ] && strip=()
    "$WASM_LD" --no-entry "${strip[@]}" --gc-sections -z stack-size=1048576 \
        "${exports[@]}" \
        "$WASI/crt1-reactor.o" "$2" "$UNICODE_OBJ" "$WASI/libc.a" "$BUILTINS" -o "$3"
    # A module that imports anything (WASI stdio, an unresolved symbol) would not instantiate without glue.
    local imports
    imports=$(wasm2wat --enable-all "$3" | grep -c '^ *(import' || true)
    if [ "$imports" != 0 ]; then
        echo "wasm/build.sh: $3 imports $imports function(s); it must import nothing:" >&2
        wasm2wat --enable-all "$3" | grep "^ *(import" >&2
        exit 1
    fi
}

# Debian's wasm-opt (108) cannot parse relaxed SIMD. `hide_relaxed` turns each f32x4.relaxed_madd into a call to a
# stand-in import, kedge_relaxed.madd, with the same operands and result; wasm-opt keeps such calls as they are
# (an import is opaque); `restore_relaxed` puts the instruction back and removes the import. Done in the text form,
# where functions are referenced by generated names, so adding and removing the import renumbers nothing by hand.
RELAXED_IMPORT='  (import "kedge_relaxed" "madd" (func $kedge_relaxed.madd (param v128 v128 v128) (result v128)))'
hide_relaxed() { # $1 = in, $2 = out
    local wat=${2%.wasm}.wat n
    wasm2wat --enable-all --generate-names "$1" -o "$wat"
    n=$(grep -c '^ *f32x4\.relaxed_madd$' "$wat" || true)
    [ "$n" -gt 0 ] || { echo "wasm/build.sh: no f32x4.relaxed_madd in $1" >&2; exit 1; }
    if grep -q 'relaxed_\|kedge_relaxed' <(grep -v '^ *f32x4\.relaxed_madd$' "$wat"); then
        echo "wasm/build.sh: $1 holds relaxed SIMD instructions other than f32x4.relaxed_madd; build.sh hides only that one" >&2
        exit 1
    fi
    sed -i -e "0,/^(module/s//(module\n$RELAXED_IMPORT/" -e 's/^\( *\)f32x4\.relaxed_madd$/\1call $kedge_relaxed.madd/' "$wat"
    wat2wasm --enable-all "$wat" -o "$2"
    rm -f "$wat"
}
restore_relaxed() { # $1 = in, $2 = out
    local wat=${2%.wasm}.wat
    wasm2wat --enable-all --generate-names "$1" -o "$wat"
    grep -q '^ *(import "kedge_relaxed" "madd" (func $kedge_relaxed\.madd (type $t[0-9]*)))$' "$wat" ||
        { echo "wasm/build.sh: the stand-in import kedge_relaxed.madd is missing from $1" >&2; exit 1; }
    sed -i -e '/^ *(import "kedge_relaxed" "madd" /d' -e 's/^\( *\)call \$kedge_relaxed\.madd$/\1f32x4.relaxed_madd/' "$wat"
    if grep -q 'kedge_relaxed' "$wat"; then echo "wasm/build.sh: kedge_relaxed.madd left in $wat" >&2; exit 1; fi
    wat2wasm --enable-all "$wat" -o "$2"
    rm -f "$wat"
}

# wasm-opt -Oz; should it fail, the module is kept as linked, with a warning (relaxed modules reach it with the
# instruction hidden, see hide_relaxed).
optimise() { # $1 = in, $2 = out
    if ! wasm-opt --enable-simd --enable-bulk-memory --enable-sign-ext --enable-mutable-globals \
        --enable-nontrapping-float-to-int -Oz "$1" -o "$2" 2>"$2.wasm-opt.log"; then
        echo "wasm/build.sh: warning: wasm-opt failed (see $2.wasm-opt.log); keeping the unoptimised module" >&2
        cp "$1" "$2"
    fi
}

size_of() { stat -c %s "$1"; }
f32x4_of() { wasm2wat --enable-all "$1" | grep -c 'f32x4\.' || true; }
relaxed_of() { wasm2wat --enable-all "$1" | grep -c 'relaxed_' || true; }
gz_of() { gzip -9c "$1" | wc -c; }

# One module: $1 = build (kedge|kedge-full), $2 = flavour (simd128|relaxed), $3 = output path.
build_one() {
    local build=$1 flavour=$2 out=$3 opt=${KEDGE_WASM_OPT:--Osize} t0 tag=$1-$2 extra=()
    t0=$(date +%s)
    [ "$flavour" = relaxed ] && extra=("${RELAXED_FLAGS[@]}")
    compile "$build" "$opt" "$OUT_DIR/$tag.o" "${extra[@]}"
    link "$build" "$OUT_DIR/$tag.o" "$OUT_DIR/$tag.linked.wasm"
    if [ "$flavour" = relaxed ]; then
        hide_relaxed "$OUT_DIR/$tag.linked.wasm" "$OUT_DIR/$tag.hidden.wasm"
        optimise "$OUT_DIR/$tag.hidden.wasm" "$OUT_DIR/$tag.opt.wasm"
        restore_relaxed "$OUT_DIR/$tag.opt.wasm" "$out"
        echo "wasm/build.sh: $out ($opt + wasm-opt -Oz, relaxed SIMD, $(( $(date +%s) - t0 )) s): $(size_of "$out") bytes" \
            "($(gz_of "$out") gzipped), $(relaxed_of "$out") relaxed SIMD ops"
    else
        optimise "$OUT_DIR/$tag.linked.wasm" "$out"
        echo "wasm/build.sh: $out ($opt + wasm-opt -Oz, $(( $(date +%s) - t0 )) s): $(size_of "$out") bytes" \
            "($(gz_of "$out") gzipped), $(f32x4_of "$out") f32x4 ops, $(exports_of "$build" | wc -l) exports"
    fi
}

case $mode in
check)
    t0=$(date +%s)
    compile kedge -Osize "$OUT_DIR/check.o"
    link kedge "$OUT_DIR/check.o" "$OUT_DIR/check.wasm"
    compile kedge-full -Osize "$OUT_DIR/check-full.o"
    link kedge-full "$OUT_DIR/check-full.o" "$OUT_DIR/check-full.wasm"
    echo "wasm/build.sh --check: ${#SOURCES_SLIM[@]} and ${#SOURCES_FULL[@]} files compile as Embedded Swift for" \
        "wasm32 and link ($(( $(date +%s) - t0 )) s)"
    ;;
compare)
    for opt in -O -Osize; do
        compile kedge-full "$opt" "$OUT_DIR/kedge$opt.o"
        link kedge-full "$OUT_DIR/kedge$opt.o" "$OUT_DIR/kedge$opt.wasm"
        optimise "$OUT_DIR/kedge$opt.wasm" "$OUT_DIR/kedge$opt.opt.wasm"
        for f in "$OUT_DIR/kedge$opt.wasm" "$OUT_DIR/kedge$opt.opt.wasm"; do
            echo "$f: $(size_of "$f") bytes ($(gz_of "$f") gzipped), $(f32x4_of "$f") f32x4 ops"
        done
    done
    ;;
sizes)
    b=${KEDGE_SIZES_BUILD:-kedge}
    compile "$b" -Osize "$OUT_DIR/$b.sizes.o"
    link "$b" "$OUT_DIR/$b.sizes.o" "$OUT_DIR/$b.named.wasm" --no-strip
    python3 wasm/sizes.py "$OUT_DIR/$b.named.wasm" "${KEDGE_SIZES_TOP:-40}"
    ;;
build)
    # KEDGE_WASM_OUT names kedge.wasm; the other three are written beside it. Two compilers at a time (the
    # machines here have two cores); each is single-threaded.
    dir=$(dirname "$OUT")
    jobs_=("kedge simd128 $OUT" "kedge-full simd128 $dir/kedge-full.wasm")
    if [ "${KEDGE_WASM_RELAXED:-1}" != 0 ]; then
        jobs_+=("kedge relaxed $dir/kedge-relaxed.wasm" "kedge-full relaxed $dir/kedge-full-relaxed.wasm")
    else
        rm -f "$dir/kedge-relaxed.wasm" "$dir/kedge-full-relaxed.wasm"
    fi
    log_of() { echo "$OUT_DIR/$1-$2.log"; } # $1 $2 = build flavour, as build_one takes them
    pids=()
    for j in "${jobs_[@]}"; do
        # shellcheck disable=SC2086
        build_one $j > "$(log_of $j)" 2>&1 &
        pids+=($!)
        if [ ${#pids[@]} -ge "${KEDGE_WASM_JOBS:-2}" ]; then wait "${pids[0]}" || fail=1; pids=("${pids[@]:1}"); fi
    done
    for p in "${pids[@]}"; do wait "$p" || fail=1; done
    # shellcheck disable=SC2086
    for j in "${jobs_[@]}"; do cat "$(log_of $j)"; done
    [ -z "${fail:-}" ] || { echo "wasm/build.sh: a build failed (logs above)" >&2; exit 1; }
    ;;
esac
