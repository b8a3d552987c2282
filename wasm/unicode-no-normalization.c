// The Unicode normalisation data the Embedded Swift stdlib asks for when it compares or hashes non-ASCII
// String values, answered as "already normalised, nothing composes or decomposes". Linked in place of the
// toolchain's libswiftUnicodeDataTables.a (31 KB of tables) by wasm/build.sh.
//
// Effect: in kedge.wasm two strings are equal when their Unicode scalars are equal, which is how Python (and so
// Keras, which writes every name and key the core compares) compares str; Swift's own rule also equates
// canonically equivalent spellings ("é" precomposed and "e" + combining acute). Native builds keep Swift's
// rule; the two differ only for non-ASCII names that are canonically equivalent but spelled differently, which
// Keras treats as different names. (The stdlib still composes Hangul jamo algorithmically, without tables.)
#include <stdint.h>

// ccc 0, NFC quick-check Yes, NFD quick-check Yes (stdlib/public/core/UnicodeData.swift, _NormData).
uint16_t _swift_stdlib_getNormData(uint32_t scalar) { (void)scalar; return 0; }

// No canonical decomposition and no composition: UINT32_MAX is the stdlib's "none".
uint32_t _swift_stdlib_getDecompositionEntry(uint32_t scalar) { (void)scalar; return UINT32_MAX; }
uint32_t _swift_stdlib_getComposition(uint32_t x, uint32_t y) { (void)x; (void)y; return UINT32_MAX; }

// Only read after a decomposition entry was found, which never happens.
const uint8_t *const _swift_stdlib_nfd_decompositions = 0;
