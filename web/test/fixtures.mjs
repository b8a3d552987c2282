// The committed parity fixtures (Tests/Fixtures/index*.json, made by tools/fixtures/ from real Keras), converted
// to bundles by the native `kedge convert` ($KEDGE_BIN, else .build/debug/kedge or .build/release/kedge) into a
// cache under .build/wasm-parity/, reconverted when the model file or the converter is newer.
import { execFileSync } from 'node:child_process'
import { existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { repoRoot } from './wasm.mjs'

export const fixturesDir = join(repoRoot, 'Tests/Fixtures')

export function findKedge() {
  const candidates = [process.env.KEDGE_BIN, join(repoRoot, '.build/debug/kedge'), join(repoRoot, '.build/release/kedge')]
  if (process.env.KEDGE_BIN) return existsSync(process.env.KEDGE_BIN) ? process.env.KEDGE_BIN : null
  // The most recently built one, so a stale release binary does not shadow a fresh debug one.
  const found = candidates.filter(p => p && existsSync(p))
  found.sort((a, b) => statSync(b).mtimeMs - statSync(a).mtimeMs)
  return found[0] ?? null
}

/** Every case folder listed by Tests/Fixtures/index.json (and any other index*.json), once, in index order. */
export function listCases() {
  const indexes = readdirSync(fixturesDir).filter(f => /^index.*\.json$/.test(f)).sort((a, b) => (a === 'index.json' ? -1 : b === 'index.json' ? 1 : a.localeCompare(b)))
  const seen = new Set()
  const cases = []
  for (const f of indexes) {
    for (const item of JSON.parse(readFileSync(join(fixturesDir, f), 'utf8'))) {
      const rel = typeof item === 'string' ? item : item.path
      if (!rel || seen.has(rel)) continue
      seen.add(rel)
      const folder = join(fixturesDir, rel)
      if (!existsSync(join(folder, 'case.json'))) continue
      cases.push({ rel, folder, spec: JSON.parse(readFileSync(join(folder, 'case.json'), 'utf8')) })
    }
  }
  return cases
}

/** The bundle folder for a case, converting it if the cache is missing or stale. Throws the converter's message. */
export function bundleFor(c, kedge) {
  const out = join(repoRoot, '.build/wasm-parity', c.rel)
  const model = join(c.folder, c.spec.model ?? 'model.h5')
  const config = c.spec.config ? join(c.folder, c.spec.config) : null
  const stamp = out + '.converted'
  const newest = Math.max(statSync(model).mtimeMs, config ? statSync(config).mtimeMs : 0, statSync(kedge).mtimeMs)
  if (existsSync(stamp) && statSync(stamp).mtimeMs >= newest) return out
  mkdirSync(join(out, '..'), { recursive: true })
  const args = ['convert', model, '--output', out]
  if (config) args.push('--config', config)
  try {
    execFileSync(kedge, args, { stdio: 'pipe' })
  } catch (e) {
    throw new Error(`kedge convert failed: ${(e.stderr?.toString() || e.message).trim()}`)
  }
  writeFileSync(stamp, '')
  return out
}
