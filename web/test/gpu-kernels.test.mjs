// The WGSL kernels of web/gpu/kernels against plain JS references (web/test/gpu/reference.js), in headless
// Chromium on SwiftShader's WebGPU adapter. Skipped without Chromium (or with KEDGE_BROWSER_TESTS=0).
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { spawn, execFileSync } from 'node:child_process'
import { createServer } from 'node:http'
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { extname, join, normalize } from 'node:path'
import { repoRoot } from './wasm.mjs'

const chromium = ['chromium', 'chromium-browser', 'google-chrome'].map(c => {
  try { return execFileSync('sh', ['-c', `command -v ${c}`], { encoding: 'utf8' }).trim() } catch { return '' }
}).find(Boolean)
const skip = process.env.KEDGE_BROWSER_TESTS === '0' ? 'KEDGE_BROWSER_TESTS=0' : !chromium ? 'no chromium installed' : false
const TYPES = { '.js': 'text/javascript', '.html': 'text/html' }

test('WGSL kernels match the JS references (SwiftShader WebGPU)', { skip, timeout: 180_000 }, async () => {
  let done
  const posted = new Promise(r => { done = r })
  const server = createServer((req, res) => {
    const url = new URL(req.url, 'http://x')
    if (req.method === 'POST' && url.pathname === '/result') {
      let body = ''
      req.on('data', c => { body += c })
      req.on('end', () => { res.end('ok'); done(JSON.parse(body)) })
      return
    }
    const p = normalize(join(repoRoot, url.pathname))
    if (!p.startsWith(join(repoRoot, 'web')) || !existsSync(p)) { res.writeHead(404); res.end(); return }
    const data = readFileSync(p)
    res.writeHead(200, { 'content-type': TYPES[extname(p)] ?? 'application/octet-stream' })
    res.end(data)
  })
  await new Promise(r => server.listen(0, '127.0.0.1', r))
  const profile = mkdtempSync(join(tmpdir(), 'kedge-chromium-'))
  const browser = spawn(chromium, ['--headless=new', '--no-sandbox', '--no-first-run', '--enable-unsafe-webgpu',
    '--use-webgpu-adapter=swiftshader', `--user-data-dir=${profile}`,
    `http://127.0.0.1:${server.address().port}/web/test/gpu/kernels.html`], { stdio: 'ignore', detached: true })
  try {
    const r = await Promise.race([posted, new Promise((_, rej) => setTimeout(() => rej(new Error('no result within 150 s')), 150_000).unref())])
    if (process.env.KEDGE_TEST_VERBOSE) for (const x of r.results) console.log(x.ok ? 'ok  ' : 'FAIL', x.name, x.err, x.params ?? '')
    assert.equal(r.error, undefined, r.error)
    assert.ok(r.results.length >= 100, `only ${r.results.length} kernel checks ran`)
    const failed = r.results.filter(x => !x.ok)
    assert.deepEqual(failed, [], `${failed.length} of ${r.results.length} kernel checks failed`)
  } finally {
    try { process.kill(-browser.pid, 'SIGTERM') } catch { /* gone */ }
    server.close()
    setTimeout(() => rmSync(profile, { recursive: true, force: true }), 1000).unref()
  }
})
