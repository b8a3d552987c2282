// kedge.js in headless Chromium: the Web Worker path (and inline mode) fetching a bundle over HTTP. A small node
// server serves the repository and the hand-written bundle; the page posts its results back. Skipped when
// there is no Chromium (KEDGE_BROWSER_TESTS=0 skips it too).
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { spawn, execFileSync } from 'node:child_process'
import { createServer } from 'node:http'
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { extname, join, normalize } from 'node:path'
import { repoRoot, wasmPath } from './wasm.mjs'
import { tinyFunctional } from './bundles.mjs'

const chromium = ['chromium', 'chromium-browser', 'google-chrome'].map(c => {
  try { return execFileSync('sh', ['-c', `command -v ${c}`], { encoding: 'utf8' }).trim() } catch { return '' }
}).find(Boolean)
const skip = process.env.KEDGE_BROWSER_TESTS === '0' ? 'KEDGE_BROWSER_TESTS=0' : !chromium ? 'no chromium installed' : false

const TYPES = { '.js': 'text/javascript', '.mjs': 'text/javascript', '.html': 'text/html', '.json': 'application/json', '.wasm': 'application/wasm' }

test('kedge.js in headless Chromium (worker and inline)', { skip, timeout: 120_000 }, async () => {
  const b = tinyFunctional()
  const bundle = { 'model.json': b.modelJSON, 'model_weights.buf': b.weights, 'model_metadata.json': b.metadata }
  let resolveResult
  const result = new Promise(r => { resolveResult = r })
  const server = createServer((req, res) => {
    const url = new URL(req.url, 'http://x')
    if (req.method === 'POST' && url.pathname === '/result') {
      let body = ''
      req.on('data', c => { body += c })
      req.on('end', () => { res.end('ok'); resolveResult(JSON.parse(body)) })
      return
    }
    let data = null
    if (url.pathname.startsWith('/bundle/')) data = bundle[url.pathname.slice(8)] ?? null
    else if (url.pathname === '/wasm/out/kedge.wasm') data = readFileSync(wasmPath)
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
  const profile = mkdtempSync(join(tmpdir(), 'kedge-chromium-'))
  const browser = spawn(chromium, ['--headless=new', '--no-sandbox', '--disable-gpu', '--no-first-run',
    `--user-data-dir=${profile}`, `http://127.0.0.1:${port}/web/test/browser/kedge-in-browser.html`],
  { stdio: 'ignore', detached: true })
  try {
    const timeout = new Promise((_, reject) => setTimeout(() => reject(new Error('the page posted no result within 90 s')), 90_000).unref())
    const { results, userAgent } = await Promise.race([result, timeout])
    if (process.env.KEDGE_TEST_VERBOSE) console.log(userAgent, results)
    assert.ok(results.length >= 9, `only ${results.length} checks ran`)
    const failed = results.filter(r => !r.ok)
    assert.deepEqual(failed, [], failed.map(r => `${r.name}: ${r.message}`).join('\n'))
  } finally {
    try { process.kill(-browser.pid, 'SIGTERM') } catch { /* already gone */ }
    server.close()
    setTimeout(() => rmSync(profile, { recursive: true, force: true }), 1000).unref()
  }
})
