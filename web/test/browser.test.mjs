// kedge.js in headless Chromium: the Web Worker path (and inline mode) fetching a bundle over HTTP. A small node
// server serves the repository and the hand-written bundle; the page posts its results back. Skipped when
// there is no Chromium (KEDGE_BROWSER_TESTS=0 skips it too).
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { spawn, execFileSync } from 'node:child_process'
import { createServer } from 'node:http'
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, extname, join, normalize } from 'node:path'
import { fullWasmPath, repoRoot, wasmPath } from './wasm.mjs'
import { tinyEmbedding, tinyFunctional } from './bundles.mjs'

const chromium = ['chromium', 'chromium-browser', 'google-chrome'].map(c => {
  try { return execFileSync('sh', ['-c', `command -v ${c}`], { encoding: 'utf8' }).trim() } catch { return '' }
}).find(Boolean)
const skip = process.env.KEDGE_BROWSER_TESTS === '0' ? 'KEDGE_BROWSER_TESTS=0' : !chromium ? 'no chromium installed' : false

const TYPES = { '.js': 'text/javascript', '.mjs': 'text/javascript', '.html': 'text/html', '.json': 'application/json', '.wasm': 'application/wasm' }

test('kedge.js, the playground and the bench page in headless Chromium', { skip, timeout: 120_000 }, async () => {
  const b = tinyFunctional(), e = tinyEmbedding()
  const bundle = { 'model.json': b.modelJSON, 'model_weights.buf': b.weights, 'model_metadata.json': b.metadata }
  // A model kedge.wasm leaves out (Embedding): the pages move it to kedge-full.wasm.
  const embedBundle = { 'model.json': e.modelJSON, 'model_weights.buf': e.weights, 'model_metadata.json': e.metadata }
  // The four modules wasm/build.sh writes, served from its output folder as /wasm/out/NAME.
  const modules = ['kedge.wasm', 'kedge-relaxed.wasm', 'kedge-full.wasm', 'kedge-full-relaxed.wasm']
  const moduleFile = name => (name === 'kedge.wasm' ? wasmPath : name === 'kedge-full.wasm' ? fullWasmPath : join(dirname(wasmPath), name))
  const size = name => (existsSync(moduleFile(name)) ? statSync(moduleFile(name)).size : 0)
  const fetched = []
  const posted = new Map()
  const waiters = new Map()
  const result = path => posted.get(path) ?? new Promise(r => waiters.set(path, r))
  const api = {
    models: [{
      name: 'tiny', status: 'ready', kind: 'bundle', source: 'tiny', size: Object.values(bundle).reduce((a, b) => a + b.length, 0),
      files: Object.fromEntries(Object.keys(bundle).map(f => [f, { url: `/bundle/${f}` }])),
    }, {
      name: 'embed', status: 'ready', kind: 'bundle', source: 'embed', size: Object.values(embedBundle).reduce((a, b) => a + b.length, 0),
      files: Object.fromEntries(Object.keys(embedBundle).map(f => [f, { url: `/bundle-embed/${f}` }])),
    }],
    cascades: [],
    wasm: { status: 'ready', url: '/wasm/out/kedge.wasm' },
  }
  const server = createServer((req, res) => {
    const url = new URL(req.url, 'http://x')
    if (req.method === 'POST' && url.pathname.startsWith('/result')) {
      let body = ''
      req.on('data', c => { body += c })
      req.on('end', () => {
        res.end('ok')
        const v = JSON.parse(body)
        posted.set(url.pathname, v)
        waiters.get(url.pathname)?.(v)
      })
      return
    }
    let data = null
    if (url.pathname === '/api/models') data = Buffer.from(JSON.stringify(api))
    else if (url.pathname.startsWith('/bundle/')) data = bundle[url.pathname.slice(8)] ?? null
    else if (url.pathname.startsWith('/bundle-embed/')) data = embedBundle[url.pathname.slice(14)] ?? null
    else if (url.pathname.startsWith('/wasm/out/') && modules.includes(url.pathname.slice(10))) {
      const f = moduleFile(url.pathname.slice(10))
      data = existsSync(f) ? readFileSync(f) : null
      if (data) fetched.push(url.pathname.slice(10))
    }
    else {
      const p = normalize(join(repoRoot, url.pathname))
      if (p.startsWith(join(repoRoot, 'web')) && existsSync(p)) data = readFileSync(p)
    }
    if (data === null) { res.writeHead(404); res.end('not found'); return }
    res.writeHead(200, { 'content-type': TYPES[extname(url.pathname)] ?? 'application/octet-stream', 'content-length': data.length })
    res.end(data)
  })
  await new Promise(r => server.listen(0, '127.0.0.1', r))
  const port = server.address().port
  const base = `http://127.0.0.1:${port}`
  const browsers = []
  // One headless Chromium per page (several URLs in one headless instance do not all run).
  const open = path => {
    const profile = mkdtempSync(join(tmpdir(), 'kedge-chromium-'))
    const p = spawn(chromium, ['--headless=new', '--no-sandbox', '--disable-gpu', '--no-first-run',
      `--user-data-dir=${profile}`, base + path], { stdio: 'ignore', detached: true })
    browsers.push({ p, profile })
  }
  const within = (p, what) => Promise.race([p, new Promise((_, reject) =>
    setTimeout(() => reject(new Error(`${what} posted no result within 90 s`)), 90_000).unref())])
  const close = () => {
    for (const { p, profile } of browsers.splice(0)) {
      try { process.kill(-p.pid, 'SIGTERM') } catch { /* already gone */ }
      setTimeout(() => rmSync(profile, { recursive: true, force: true }), 1000).unref()
    }
  }
  try {
    const sizes = new URLSearchParams(modules.map(m => [m, size(m)]))
    open(`/web/test/browser/kedge-in-browser.html?${sizes}`)
    const { results, userAgent } = await within(result('/result'), 'the API test page')
    if (process.env.KEDGE_TEST_VERBOSE) console.log(userAgent, results)
    assert.ok(results.length >= 13, `only ${results.length} checks ran`)
    const failed = results.filter(r => !r.ok)
    assert.deepEqual(failed, [], failed.map(r => `${r.name}: ${r.message}`).join('\n'))

    close()
    open('/web/playground.html?model=tiny&run=1&layers=1&report=/result-playground')
    const pg = await within(result('/result-playground'), 'the playground')
    if (process.env.KEDGE_TEST_VERBOSE) console.log(pg)
    assert.equal(pg.loadError, '')
    assert.equal(pg.runError, '')
    assert.ok(pg.loaded)
    assert.equal(pg.outputs.length, 1)
    assert.deepEqual(pg.outputs[0].slice(0, 2), ['out', '(1, 2)'])
    assert.equal(pg.layers, 3)
    assert.match(pg.stats, /forward pass [0-9.]+ ms/)
    assert.equal(pg.build, 'kedge')
    assert.match(pg.backendText, /in a Web Worker \(kedge(-relaxed)?\.wasm\)/)

    close()
    // Loaded only: the playground's random normal inputs are no token ids.
    open('/web/playground.html?model=embed&report=/result-playground-embed')
    const pe = await within(result('/result-playground-embed'), 'the playground (embed)')
    if (process.env.KEDGE_TEST_VERBOSE) console.log(pe)
    assert.equal(pe.loadError, '')
    assert.ok(pe.loaded)
    assert.equal(pe.build, 'kedge-full')
    assert.match(pe.backendText, /in a Web Worker \(kedge-full(-relaxed)?\.wasm\)/)

    close()
    open('/web/bench.html?models=tiny,nope,embed&bundle=/bundle/&runs=3&warmup=1&report=/result-bench')
    const bench = await within(result('/result-bench'), 'the bench page')
    if (process.env.KEDGE_TEST_VERBOSE) console.log(bench)
    assert.deepEqual(bench.results.map(r => r.model), ['tiny', 'nope', 'embed', '/bundle/'])
    const relaxed = bench.relaxedSimd ? '-relaxed' : ''
    for (const i of [0, 3]) {
      const r = bench.results[i]
      assert.equal(r.error, null)
      assert.equal(r.inputs, '(1, 4) (1, 3)')
      assert.ok(r.medianMs >= r.minMs && r.p90Ms >= r.medianMs && r.wasmBytes > 0)
      assert.equal(r.build, 'kedge')
      assert.equal(r.module, `kedge${relaxed}.wasm`)
    }
    assert.match(bench.results[1].error, /no such ready model/)
    assert.equal(bench.results[2].error, null)
    assert.equal(bench.results[2].module, `kedge-full${relaxed}.wasm`)
    assert.ok(fetched.includes(`kedge-full${relaxed}.wasm`), `modules fetched: ${fetched}`)
  } finally {
    close()
    server.close()
  }
})
