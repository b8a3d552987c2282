#!/usr/bin/env node
// Kedge in headless Chromium (WebAssembly, in kedge.js's Web Worker) vs native `kedge bench`, same bundles, same run:
//
//   node tools/bench/web_bench.mjs [--models conv2d_net,conv3d_net,res3d,resnet18,mobilenetv2] [--runs 20]
//       [--warmup 3] [--variants simd128,relaxed] [--dir bench-models] [--kedge .build/release/kedge]
//       [--chromium PATH] [--timeout 600] [--json out.json] [--plain FILE.wasm] [--relaxed FILE.wasm]
//       [--full FILE.wasm] [--fullrelaxed FILE.wasm]
//
// Needs bench-models/<name>.bundle/ (python3 tools/bench/compare_tf.py writes them; it needs .build/release/kedge),
// wasm/out/kedge.wasm and, for the relaxed variant, wasm/out/kedge-relaxed.wasm (bash wasm/build.sh), and Debian's
// chromium. A node http server on 127.0.0.1 (random port, cross-origin isolated: COOP/COEP) serves web/, the two
// modules and the bundles; per model it times the native CLI, then opens web/bench.html once per wasm variant in
// its own headless Chromium, which posts median/min/p90 back. Models are interleaved (native, simd128, relaxed for
// one model, then the next) so that load drift on a shared machine hits the three alike: compare ratios within one
// run. Every step has a time limit; the browsers and the server are stopped at the end, also on failure.
//
// Variants: `simd128` serves kedge.wasm under a name the loader never swaps (and kedge-full.wasm likewise, as the
// page's wasmFull); `relaxed` serves it as /wasm/auto/kedge.wasm with kedge-relaxed.wasm, kedge-full.wasm and
// kedge-full-relaxed.wasm beside it, so the page's loader picks the relaxed flavour, and kedge-full.wasm for a model
// kedge.wasm leaves out, exactly as it would for a user. The five bench models are convolutional: they run in
// kedge.wasm. The output says which module each run used, as the page's model reports it (build and SIMD flavour).
// --plain/--relaxed/--full/--fullrelaxed time other builds of the modules (default wasm/out/kedge.wasm,
// kedge-relaxed.wasm, kedge-full.wasm, kedge-full-relaxed.wasm).

import { spawn, execFileSync } from 'node:child_process'
import { createServer } from 'node:http'
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, extname, join, normalize, resolve, sep } from 'node:path'
import { fileURLToPath } from 'node:url'
import { gzipSync } from 'node:zlib'

const root = resolve(dirname(fileURLToPath(import.meta.url)), '../..')
const USAGE = 'usage: node tools/bench/web_bench.mjs [--models a,b] [--runs N] [--warmup N] [--variants simd128,relaxed] ' +
  '[--dir bench-models] [--kedge PATH] [--chromium PATH] [--timeout SECONDS] [--json FILE] [--plain FILE] [--relaxed FILE] ' +
  '[--full FILE] [--fullrelaxed FILE]'

function parseArgs(argv) {
  const a = {
    models: 'conv2d_net,conv3d_net,res3d,resnet18,mobilenetv2', runs: 20, warmup: 3, variants: 'simd128,relaxed',
    dir: join(root, 'bench-models'), kedge: join(root, '.build/release/kedge'), chromium: null, timeout: 600, json: null,
    plain: join(root, 'wasm/out/kedge.wasm'), relaxed: join(root, 'wasm/out/kedge-relaxed.wasm'),
    full: join(root, 'wasm/out/kedge-full.wasm'), fullrelaxed: join(root, 'wasm/out/kedge-full-relaxed.wasm'),
  }
  const rest = [...argv]
  while (rest.length) {
    const t = rest.shift()
    if (t === '-h' || t === '--help') { console.log(USAGE); process.exit(0) }
    const m = /^--([a-z]+)(?:=(.*))?$/.exec(t)
    if (!m || !(m[1] in a)) throw new Error(`unknown argument ${t}\n${USAGE}`)
    const v = m[2] ?? rest.shift()
    if (v === undefined) throw new Error(`${t} needs a value\n${USAGE}`)
    a[m[1]] = typeof a[m[1]] === 'number' ? Number(v) : v
  }
  a.models = a.models.split(',').filter(Boolean)
  a.variants = a.variants.split(',').filter(Boolean)
  for (const v of a.variants) if (!['simd128', 'relaxed'].includes(v)) throw new Error(`unknown variant ${v} (simd128, relaxed)`)
  if (!(a.runs >= 1 && a.warmup >= 0 && a.timeout > 0)) throw new Error(`--runs, --warmup and --timeout must be positive\n${USAGE}`)
  return a
}

const which = cmd => { try { return execFileSync('sh', ['-c', `command -v ${cmd}`], { encoding: 'utf8' }).trim() } catch { return '' } }

/** Runs a command with a time limit; resolves with stdout or rejects with stderr. */
function run(cmd, args, timeoutMs) {
  return new Promise((res, rej) => {
    const p = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] })
    let out = '', err = ''
    p.stdout.on('data', d => { out += d })
    p.stderr.on('data', d => { err += d })
    const timer = setTimeout(() => p.kill('SIGKILL'), timeoutMs)
    p.on('close', code => {
      clearTimeout(timer)
      if (code === 0) res(out)
      else rej(new Error(`${cmd} ${args.join(' ')} failed (${code ?? 'timed out'}): ${err.trim().slice(-500)}`))
    })
  })
}

const TYPES = {
  '.js': 'text/javascript', '.mjs': 'text/javascript', '.html': 'text/html', '.json': 'application/json',
  '.wasm': 'application/wasm', '.css': 'text/css', '.buf': 'application/octet-stream',
}

function startServer(a, wasmFiles) {
  const posted = new Map(), waiters = new Map(), served = []
  const server = createServer((req, res) => {
    const url = new URL(req.url, 'http://x')
    if (req.method === 'POST' && url.pathname.startsWith('/result/')) {
      let body = ''
      req.on('data', c => { body += c })
      req.on('end', () => {
        res.end('ok')
        let v
        try { v = JSON.parse(body) } catch (e) { v = { error: `bad JSON from the page: ${e.message}` } }
        posted.set(url.pathname, v)
        waiters.get(url.pathname)?.(v)
      })
      return
    }
    let file = null
    if (url.pathname in wasmFiles) file = wasmFiles[url.pathname]
    else if (url.pathname.startsWith('/bundles/')) {
      const p = normalize(join(a.dir, decodeURIComponent(url.pathname.slice(9))))
      if (p.startsWith(resolve(a.dir) + sep)) file = p
    } else if (url.pathname.startsWith('/web/')) {
      const p = normalize(join(root, decodeURIComponent(url.pathname)))
      if (p.startsWith(join(root, 'web') + sep)) file = p
    }
    const headers = {
      'cross-origin-opener-policy': 'same-origin', 'cross-origin-embedder-policy': 'require-corp',
      'cross-origin-resource-policy': 'same-origin', 'cache-control': 'no-store',
    }
    if (!file || !existsSync(file) || !statSync(file).isFile()) {
      served.push({ path: url.pathname, status: 404 })
      res.writeHead(404, headers)
      res.end('not found')
      return
    }
    const data = readFileSync(file)
    served.push({ path: url.pathname, status: 200 })
    res.writeHead(200, { ...headers, 'content-type': TYPES[extname(file)] ?? 'application/octet-stream', 'content-length': data.length })
    res.end(data)
  })
  const result = path => posted.get(path) ?? new Promise(r => waiters.set(path, r))
  return new Promise(r => server.listen(0, '127.0.0.1', () => r({ server, result, served, port: server.address().port })))
}

/** One headless Chromium on one page, killed (with its whole process group) when `close` is called. */
function openChromium(chromium, url) {
  const profile = mkdtempSync(join(tmpdir(), 'kedge-web-bench-'))
  const p = spawn(chromium, ['--headless=new', '--no-sandbox', '--disable-gpu', '--no-first-run', '--no-default-browser-check',
    '--disable-background-networking', '--disable-component-update', '--disable-sync', '--disable-default-apps',
    '--disable-background-timer-throttling', '--disable-renderer-backgrounding', '--disable-extensions',
    `--user-data-dir=${profile}`, url], { stdio: 'ignore', detached: true })
  return () => {
    try { process.kill(-p.pid, 'SIGKILL') } catch { /* already gone */ }
    setTimeout(() => rmSync(profile, { recursive: true, force: true }), 500)
  }
}

const within = (p, ms, what) => {
  let timer
  return Promise.race([p, new Promise((_, rej) => { timer = setTimeout(() => rej(new Error(`${what}: no result within ${ms / 1000} s`)), ms) })])
    .finally(() => clearTimeout(timer))
}

const fmt = v => (v === null || v === undefined ? '–' : v.toFixed(2))
const kb = n => `${(n / 1024).toFixed(0)} KB`

async function main() {
  const a = parseArgs(process.argv.slice(2))
  const chromium = a.chromium ?? ['chromium', 'chromium-browser', 'google-chrome'].map(which).find(Boolean)
  if (!chromium) throw new Error('no chromium found: apt-get install chromium (or pass --chromium PATH)')
  if (!existsSync(a.kedge)) throw new Error(`${a.kedge} is missing: swift build -c release --product kedge`)
  for (const m of a.models) {
    for (const f of ['model.json', 'model_weights.buf', 'model_metadata.json']) {
      if (!existsSync(join(a.dir, `${m}.bundle`, f))) {
        throw new Error(`${join(a.dir, `${m}.bundle`, f)} is missing: run python3 tools/bench/compare_tf.py first (it writes the bundles)`)
      }
    }
  }
  const plain = resolve(a.plain), relaxed = resolve(a.relaxed)
  if (!existsSync(plain)) throw new Error(`${plain} is missing: bash wasm/build.sh`)
  if (a.variants.includes('relaxed') && !existsSync(relaxed)) throw new Error(`${relaxed} is missing: bash wasm/build.sh`)
  const full = resolve(a.full), fullRelaxed = resolve(a.fullrelaxed)
  const modules = { simd128: plain, relaxed, 'full simd128': full, 'full relaxed': fullRelaxed }
  const sizes = Object.fromEntries(Object.entries(modules).filter(([, f]) => existsSync(f)).map(([v, f]) => {
    const b = readFileSync(f)
    return [v, { bytes: b.length, gzipped: gzipSync(b, { level: 9 }).length }]
  }))
  // The loader swaps only files named kedge.wasm / kedge-full.wasm for their relaxed siblings, so simd128 gets other
  // names (and kedge-full.wasm is passed as wasmFull, since it is not beside a kedge.wasm).
  const wasmFiles = {
    '/wasm/plain/kedge-simd128.wasm': plain, '/wasm/plain/kedge-full-simd128.wasm': full,
    '/wasm/auto/kedge.wasm': plain, '/wasm/auto/kedge-relaxed.wasm': relaxed,
    '/wasm/auto/kedge-full.wasm': full, '/wasm/auto/kedge-full-relaxed.wasm': fullRelaxed,
  }
  const wasmURL = { simd128: '/wasm/plain/kedge-simd128.wasm', relaxed: '/wasm/auto/kedge.wasm' }
  const wasmFullURL = { simd128: '/wasm/plain/kedge-full-simd128.wasm' }

  const { server, result, served, port } = await startServer(a, wasmFiles)
  const base = `http://127.0.0.1:${port}`
  const closers = new Set()
  const stopAll = () => { for (const c of closers) c(); closers.clear(); server.close() }
  process.on('SIGINT', () => { stopAll(); process.exit(130) })
  const deadline = Date.now() + a.timeout * 1000 * (a.models.length * (a.variants.length + 1))
  const left = () => Math.max(1000, Math.min(a.timeout * 1000, deadline - Date.now()))
  const rows = []
  let userAgent = '', relaxedSupported = null, isolated = null
  try {
    for (const name of a.models) {
      const bundle = join(a.dir, `${name}.bundle`)
      const row = { model: name, native: null, wasm: {} }
      const meta = JSON.parse(readFileSync(join(bundle, 'model_metadata.json'), 'utf8'))
      const npy = join(a.dir, `${name}.input.npy`)
      const input = existsSync(npy) && meta.inputs?.length === 1 ? ['--input', `${meta.inputs[0].name}=${npy}`] : []
      const out = await run(a.kedge, ['bench', bundle, '--runs', String(a.runs), '--warmup', String(a.warmup), ...input], left())
      const med = /median ([0-9.]+) ms/.exec(out), min = /min ([0-9.]+) ms/.exec(out)
      row.native = { medianMs: med ? Number(med[1]) : null, minMs: min ? Number(min[1]) : null }
      process.stderr.write(`${name}: native median ${fmt(row.native.medianMs)} ms\n`)
      for (const v of a.variants) {
        const tag = `/result/${name}/${v}`
        const from = served.length
        const q = new URLSearchParams({ bundle: `/bundles/${name}.bundle/`, runs: a.runs, warmup: a.warmup, wasm: wasmURL[v], report: tag })
        if (wasmFullURL[v]) q.set('wasmFull', wasmFullURL[v])
        const close = openChromium(chromium, `${base}/web/bench.html?${q}`)
        closers.add(close)
        try {
          const r = await within(result(tag), left(), `${name} in Chromium (${v})`).catch(e => ({ error: e.message }))
          userAgent = r.userAgent ?? userAgent
          relaxedSupported = r.relaxedSimd ?? relaxedSupported
          isolated = r.crossOriginIsolated ?? isolated
          const x = r.results?.[0] ?? { error: r.error ?? 'no result' }
          // What ran, as the page's model says (x.build, x.backend, x.module), and the modules the worker fetched.
          x.fetched = served.slice(from).filter(s => s.status === 200 && s.path.startsWith('/wasm/')).map(s => s.path)
          x.flavour = x.backend === 'wasm-relaxed-simd' ? 'relaxed' : x.backend ? 'simd128' : '?'
          x.module ??= '?'
          row.wasm[v] = x
          process.stderr.write(`${name}: ${v}: ran ${x.module} (build ${x.build ?? '?'}, ${x.flavour}) median ${fmt(x.medianMs)} ms` +
            `${x.error ? ` error: ${x.error}` : ''}\n`)
        } finally {
          close()
          closers.delete(close)
        }
      }
      rows.push(row)
    }
  } finally {
    stopAll()
  }

  const lines = []
  lines.push(`Chromium: ${userAgent || '?'}; cross-origin isolated: ${isolated}; relaxed SIMD: ${relaxedSupported}; ` +
    `${a.warmup} warm-up + ${a.runs} timed runs, batch 1`)
  lines.push('Ran: ' + a.variants.map(v => {
    const used = {}
    for (const r of rows) { const m = r.wasm[v]?.module ?? '?'; used[m] = (used[m] ?? 0) + 1 }
    return `${v} in ${Object.entries(used).map(([m, n]) => `${m} (${n} model${n === 1 ? '' : 's'})`).join(', ')}`
  }).join('; '))
  lines.push(Object.entries(sizes).map(([v, s]) => `${v} (${modules[v].startsWith(root + sep) ? modules[v].slice(root.length + 1) : modules[v]}) ${s.bytes} bytes ` +
    `(${kb(s.bytes)}), ${s.gzipped} gzipped (${kb(s.gzipped)})`).join('; '))
  lines.push('')
  const head = ['model', 'native median (min) ms']
  const sep2 = ['---', '---:']
  for (const v of a.variants) { head.push(`wasm ${v} median (min) ms`, `${v} / native`); sep2.push('---:', '---:') }
  if (a.variants.length === 2) { head.push('relaxed / simd128'); sep2.push('---:') }
  lines.push(`| ${head.join(' | ')} |`, `|${sep2.join('|')}|`)
  for (const r of rows) {
    const cells = [r.model, `${fmt(r.native.medianMs)} (${fmt(r.native.minMs)})`]
    for (const v of a.variants) {
      const w = r.wasm[v]
      if (!w || w.error) { cells.push(`error: ${w?.error ?? 'none'}`, ''); continue }
      // Marked when the run was not kedge.wasm in the variant's flavour.
      const mark = w.flavour !== v || w.build !== 'kedge' ? ` [ran ${w.module}]` : ''
      cells.push(`${fmt(w.medianMs)} (${fmt(w.minMs)})${mark}`, r.native.medianMs ? (w.medianMs / r.native.medianMs).toFixed(2) : '–')
    }
    if (a.variants.length === 2) {
      const [x, y] = a.variants.map(v => r.wasm[v]?.medianMs)
      cells.push(x && y ? (a.variants[0] === 'relaxed' ? x / y : y / x).toFixed(2) : '–')
    }
    lines.push(`| ${cells.join(' | ')} |`)
  }
  console.log(lines.join('\n'))
  if (a.json) writeFileSync(a.json, JSON.stringify({ userAgent, relaxedSupported, isolated, sizes, runs: a.runs, warmup: a.warmup, rows }, null, 2))
}

main().catch(e => { console.error(`web_bench: ${e.message}`); process.exit(1) })
