// op -> kernel module ({encode(ctx, step, inputs, outputs)}), as web/gpu/PLAN.md says. Ops missing here have
// no GPU kernel yet: the executor runs them as `cpu` steps.
import * as conv from './conv.js'
import * as dense from './dense.js'
import * as pool from './pool.js'
import * as globalPool from './globalPool.js'
import * as activation from './activation.js'
import * as copy from './copy.js'
import * as softmax from './softmax.js'
import * as scaleShift from './scaleShift.js'
import { encoder } from './merge.js'
import { concat, pad, crop, transpose, upsample, depthwiseConv, convTranspose } from './layout.js'

const merges = Object.fromEntries(['add', 'subtract', 'multiply', 'average', 'maximum', 'minimum']
  .map(op => [op, { encode: encoder(op) }]))

export const kernels = { conv, dense, pool, globalPool, activation, copy, softmax, scaleShift, ...merges,
  concat, pad, crop, transpose, upsample, depthwiseConv, convTranspose }
export const hasKernel = op => Object.hasOwn(kernels, op)
