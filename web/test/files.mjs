// Writes a hand-made bundle (test/bundles.mjs) to a temp folder, for the tests of kedge.js and kedge-node.mjs.
import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

export function writeBundle(b, dir = mkdtempSync(join(tmpdir(), 'kedge-test-'))) {
  writeFileSync(join(dir, 'model.json'), b.modelJSON)
  writeFileSync(join(dir, 'model_weights.buf'), b.weights)
  writeFileSync(join(dir, 'model_metadata.json'), b.metadata)
  return dir
}

export function filepaths(dir) {
  return { model: join(dir, 'model.json'), weights: join(dir, 'model_weights.buf'), metadata: join(dir, 'model_metadata.json') }
}
