// Tiled matrix product C[M, N] = A[M, K] * B[K, N] (+ bias, fused activation) for conv (implicit GEMM) and dense.
// Tile: 64 rows (output pixels) x 64 columns (output channels) per workgroup of 16x16 threads; each thread holds a
// 4x4 register block. K advances 16 at a time, A and B staged through workgroup arrays. `loadA(m, k)` is generated
// per op (conv computes the input position of a kernel tap on the fly: im2col is never materialised).
// Groups run as dispatch z; tiles as a linear id over a 2D grid (65535 limit).
import { activationWGSL, bindAndDispatch, grid, pipelineFor } from './common.js'

export function gemm(ctx, { M, N, K, groups = 1, loadA, bBase, outCol, ldc, bias, act, buffers }) {
  const tilesM = Math.ceil(M / 64), tilesN = Math.ceil(N / 64), tiles = tilesM * tilesN
  if (M === 0 || N === 0) return
  const [gx] = grid(tiles)
  const code = `
@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read> w: array<f32>;
${bias ? '@group(0) @binding(2) var<storage, read> bias: array<f32>;' : ''}
@group(0) @binding(${bias ? 3 : 2}) var<storage, read_write> y: array<f32>;
${activationWGSL(act)}
var<workgroup> As: array<array<f32, 64>, 16>;
var<workgroup> Bs: array<array<f32, 64>, 16>;
fn loadA(m: u32, k: u32, g: u32) -> f32 { ${loadA} }
fn loadB(k: u32, n: u32, g: u32) -> f32 { return w[${bBase}]; }
@compute @workgroup_size(16, 16)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
  let tile = wg.x + wg.y * ${gx}u;
  if (tile >= ${tiles}u) { return; }
  let g = wg.z;
  let m0 = (tile / ${tilesN}u) * 64u;
  let n0 = (tile % ${tilesN}u) * 64u;
  let t = lid.y * 16u + lid.x;
  var acc: array<array<f32, 4>, 4>;
  for (var k0 = 0u; k0 < ${K}u; k0 = k0 + 16u) {
    for (var e = 0u; e < 4u; e = e + 1u) {
      let idx = t + e * 256u;
      let kk = idx / 64u; let mm = idx % 64u;
      let m = m0 + mm; let k = k0 + kk;
      var a = 0.0;
      if (m < ${M}u && k < ${K}u) { a = loadA(m, k, g); }
      As[kk][mm] = a;
      let n = n0 + mm;
      var b = 0.0;
      if (n < ${N}u && k < ${K}u) { b = loadB(k, n, g); }
      Bs[kk][mm] = b;
    }
    workgroupBarrier();
    for (var kk = 0u; kk < 16u; kk = kk + 1u) {
      var av: array<f32, 4>; var bv: array<f32, 4>;
      for (var i = 0u; i < 4u; i = i + 1u) { av[i] = As[kk][lid.y * 4u + i]; bv[i] = Bs[kk][lid.x * 4u + i]; }
      for (var i = 0u; i < 4u; i = i + 1u) {
        for (var j = 0u; j < 4u; j = j + 1u) { acc[i][j] = acc[i][j] + av[i] * bv[j]; }
      }
    }
    workgroupBarrier();
  }
  for (var i = 0u; i < 4u; i = i + 1u) {
    let m = m0 + lid.y * 4u + i;
    if (m >= ${M}u) { continue; }
    for (var j = 0u; j < 4u; j = j + 1u) {
      let n = n0 + lid.x * 4u + j;
      if (n >= ${N}u) { continue; }
      let col = ${outCol};
      var v = acc[i][j];
      ${bias ? 'v = v + bias[col];' : ''}
      y[m * ${ldc}u + col] = act(v);
    }
  }
}`
  bindAndDispatch(ctx, pipelineFor(ctx, code), buffers, tiles, groups)
}
