#!/usr/bin/env node
// Records one model's WebGPU predict in headless Chromium (SwiftShader) as a replayable trace (web/gpu/trace.js), for
// tools/bench/gpu_replay.py to time the same WGSL on a real GPU (wgpu over Vulkan):
//
//   node tools/bench/gpu_trace.mjs BUNDLE_DIR OUT_PREFIX      writes OUT_PREFIX.json, .bin, .out.bin
//   node tools/bench/gpu_trace.mjs --selftest OUT_PREFIX      a raw compute shader instead of a model
//   node tools/bench/gpu_trace.mjs --layer OUT_PREFIX NAME    one web/gpu/kernels layer at a realistic size
//                                                            (conv3x3_56, conv1x1_28, conv3d_32, dense_2048; web/gpu/trace-page.html)
//
// The bundle's inputs are filled with sin(0.37 i), the same values on every run.
import { spawn, execFileSync } from 'node:child_process'
import { createServer } from 'node:http'
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, extname, join, normalize, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'

const repo = resolve(dirname(fileURLToPath(import.meta.url)), '../..')
const [first, prefix, layerName] = process.argv.slice(2)
if (!first || !prefix) { console.error('usage: gpu_trace.mjs BUNDLE_DIR|--selftest|--layer OUT_PREFIX [LAYER]'); process.exit(2) }
const selftest = first === '--selftest' || first === '--layer'
const bundleDir = selftest ? null : resolve(first)
const chromium = ['chromium', 'chromium-browser', 'google-chrome'].map(c => {
  try { return execFileSync('sh', ['-c', `command -v ${c}`], { encoding: 'utf8' }).trim() } catch { return '' }
}).find(Boolean)
if (!chromium) { console.error('gpu_trace: no chromium'); process.exit(1) }

let query = first === '--layer' ? `layer=${layerName}` : 'selftest=1'
if (!selftest) {
  const meta = JSON.parse(readFileSync(join(bundleDir, 'model_metadata.json'), 'utf8'))
  const inputs = {}
  for (const i of meta.inputs) inputs[i.name] = i.shape.map(d => (d == null || d < 0 ? 1 : d)).reduce((a, b) => a * b, 1)
  query = `bundle=/bundle/&inputs=${encodeURIComponent(JSON.stringify(inputs))}`
}
const TYPES = { '.js': 'text/javascript', '.mjs': 'text/javascript', '.html': 'text/html', '.json': 'application/json', '.wasm': 'application/wasm' }
let finish
const done = new Promise(r => { finish = r })
const server = createServer((req, res) => {
  const url = new URL(req.url, 'http://x')
  if (req.method === 'POST') {
    const parts = []
    req.on('data', c => parts.push(c))
    req.on('end', () => {
      res.end('ok')
      const body = Buffer.concat(parts)
      if (url.pathname === '/error') finish(new Error(body.toString()))
      else if (url.pathname === '/done') finish(null)
      else writeFileSync(prefix + url.pathname.slice('/trace'.length), body)
    })
    return
  }
  let file = null
  if (url.pathname.startsWith('/bundle/') && bundleDir) file = join(bundleDir, url.pathname.slice(8))
  else if (url.pathname.startsWith('/wasm/')) file = join(repo, url.pathname)
  else if (url.pathname.startsWith('/web/')) file = normalize(join(repo, url.pathname))
  if (!file || !file.startsWith(repo === '/' ? '/' : dirname(repo)) || !existsSync(file)) { res.writeHead(404); res.end(); return }
  res.writeHead(200, { 'content-type': TYPES[extname(file)] ?? 'application/octet-stream',
    'cross-origin-opener-policy': 'same-origin', 'cross-origin-embedder-policy': 'require-corp' })
  res.end(readFileSync(file))
})
await new Promise(r => server.listen(0, '127.0.0.1', r))
const profile = mkdtempSync(join(tmpdir(), 'kedge-trace-'))
const browser = spawn(chromium, ['--headless=new', '--no-sandbox', '--no-first-run', '--enable-unsafe-webgpu',
  '--use-webgpu-adapter=swiftshader', `--user-data-dir=${profile}`,
  `http://127.0.0.1:${server.address().port}/web/gpu/trace-page.html?${query}`], { stdio: 'ignore', detached: true })
const timer = setTimeout(() => finish(new Error('no result within 300 s')), 300_000)
const err = await done
clearTimeout(timer)
try { process.kill(-browser.pid, 'SIGTERM') } catch { /* gone */ }
server.close()
setTimeout(() => rmSync(profile, { recursive: true, force: true }), 500)
if (err) { console.error('gpu_trace:', err.message); process.exit(1) }
console.log(`gpu_trace: wrote ${prefix}.json, ${prefix}.bin, ${prefix}.out.bin`)
