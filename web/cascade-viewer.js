// An axial slice viewer for the cascade's volume: window/level, scrolling (wheel, slider, keys), drag to adjust the
// window, the ROI heatmap as an overlay, candidate markers and nodule boxes. Drawing only; no computation beyond
// mapping values to grey levels.

export const PRESETS = {
  lung: { width: 1500, level: -600, label: 'Lung' },
  mediastinum: { width: 350, level: 50, label: 'Mediastinum' },
}

export class SliceViewer {
  /**
   * @param {HTMLCanvasElement} canvas the display canvas (its CSS size sets the drawing size)
   * @param {{onSlice?: function(number), onWindow?: function({width, level})}} [callbacks]
   */
  constructor(canvas, callbacks = {}) {
    this.canvas = canvas
    this.ctx = canvas.getContext('2d')
    this.callbacks = callbacks
    this.volume = null // {data, shape: [z, y, x], spacing}
    this.z = 0
    this.window = { ...PRESETS.lung }
    this.heatmap = null
    this.showHeatmap = false
    this.showMarks = true
    this.candidates = []
    this.nodules = []
    this.selected = null // candidate index
    this.threshold = 0.5
    this.slice = document.createElement('canvas')
    this.overlay = document.createElement('canvas')
    this._bind()
    new ResizeObserver(() => this.draw()).observe(canvas)
  }

  setVolume(vol) {
    this.volume = vol
    const [Z, Y, X] = vol.shape
    for (const c of [this.slice, this.overlay]) { c.width = X; c.height = Y }
    this.heatmap = null
    this.candidates = []
    this.nodules = []
    this.selected = null
    this.setSlice(Math.floor(Z / 2))
  }

  clear() {
    this.volume = null
    this.heatmap = null
    this.candidates = []
    this.nodules = []
    this.draw()
  }

  setSlice(z) {
    if (!this.volume) return
    const Z = this.volume.shape[0]
    const nz = Math.max(0, Math.min(Z - 1, Math.round(z)))
    this.z = nz
    this.draw()
    this.callbacks.onSlice?.(nz)
  }

  setWindow(width, level) {
    this.window = { width: Math.max(1, Math.round(width)), level: Math.round(level) }
    this.draw()
    this.callbacks.onWindow?.(this.window)
  }

  setHeatmap(h, threshold = 0.5) { this.heatmap = h; this.threshold = threshold; this.draw() }
  setFindings(candidates, nodules) { this.candidates = candidates ?? []; this.nodules = nodules ?? []; this.draw() }
  select(index) { this.selected = index; this.draw() }

  _bind() {
    const c = this.canvas
    c.addEventListener('wheel', e => {
      if (!this.volume) return
      e.preventDefault()
      this.setSlice(this.z + (e.deltaY > 0 ? 1 : -1))
    }, { passive: false })
    c.tabIndex = 0
    c.addEventListener('keydown', e => {
      if (!this.volume) return
      const step = { ArrowUp: -1, ArrowDown: 1, PageUp: -5, PageDown: 5, Home: -1e9, End: 1e9 }[e.key]
      if (step !== undefined) { e.preventDefault(); this.setSlice(this.z + step) }
    })
    // Dragging adjusts the window as on a workstation: right/left = width, up/down = level.
    let drag = null
    c.addEventListener('pointerdown', e => {
      if (!this.volume || e.button !== 0) return
      drag = { x: e.clientX, y: e.clientY, ...this.window }
      c.setPointerCapture(e.pointerId)
    })
    c.addEventListener('pointermove', e => {
      if (!drag) return
      const dx = e.clientX - drag.x, dy = e.clientY - drag.y
      if (Math.abs(dx) + Math.abs(dy) < 3) return
      this.setWindow(drag.width * Math.exp(dx / 200), drag.level + dy * 2)
    })
    const end = () => { drag = null }
    c.addEventListener('pointerup', end)
    c.addEventListener('pointercancel', end)
  }

  /** Display pixels per voxel and the image's offset in the canvas (square pixels, letterboxed). */
  _layout() {
    const dpr = globalThis.devicePixelRatio || 1
    const rect = this.canvas.getBoundingClientRect()
    const w = Math.max(1, Math.round(rect.width * dpr)), h = Math.max(1, Math.round(rect.height * dpr))
    if (this.canvas.width !== w || this.canvas.height !== h) { this.canvas.width = w; this.canvas.height = h }
    if (!this.volume) return { w, h }
    const [, Y, X] = this.volume.shape
    const sp = this.volume.spacing ?? [1, 1, 1]
    const sy = sp[1], sx = sp[2]
    const s = Math.min(w / (X * sx), h / (Y * sy))
    const dw = X * sx * s, dh = Y * sy * s
    return { w, h, ox: (w - dw) / 2, oy: (h - dh) / 2, px: sx * s, py: sy * s, dpr }
  }

  draw() {
    const L = this._layout()
    const ctx = this.ctx
    ctx.fillStyle = '#000'
    ctx.fillRect(0, 0, L.w, L.h)
    if (!this.volume) return
    const [, Y, X] = this.volume.shape
    const n = Y * X
    const off = this.z * n
    const d = this.volume.data
    const lo = this.window.level - this.window.width / 2, scale = 255 / this.window.width
    const sctx = this.slice.getContext('2d')
    const img = sctx.createImageData(X, Y)
    const p = img.data
    for (let i = 0; i < n; i++) {
      let g = (d[off + i] - lo) * scale
      g = g < 0 ? 0 : g > 255 ? 255 : g
      p[4 * i] = p[4 * i + 1] = p[4 * i + 2] = g
      p[4 * i + 3] = 255
    }
    sctx.putImageData(img, 0, 0)
    ctx.imageSmoothingEnabled = true
    ctx.imageSmoothingQuality = 'high'
    ctx.drawImage(this.slice, L.ox, L.oy, X * L.px, Y * L.py)

    if (this.showHeatmap && this.heatmap) {
      const octx = this.overlay.getContext('2d')
      const o = octx.createImageData(X, Y)
      const q = o.data
      for (let i = 0; i < n; i++) {
        const v = this.heatmap[off + i]
        if (v < 0.1) continue
        // A "hot" ramp: red -> yellow, more opaque with probability; outlined above the threshold.
        q[4 * i] = 255
        q[4 * i + 1] = Math.round(255 * Math.min(1, v * 1.2))
        q[4 * i + 2] = v >= this.threshold ? 60 : 0
        q[4 * i + 3] = Math.round(30 + 170 * v * v)
      }
      octx.putImageData(o, 0, 0)
      ctx.drawImage(this.overlay, L.ox, L.oy, X * L.px, Y * L.py)
    }
    if (this.showMarks) this._drawMarks(L)
  }

  _drawMarks(L) {
    const ctx = this.ctx
    const px = (x) => L.ox + (x + 0.5) * L.px
    const py = (y) => L.oy + (y + 0.5) * L.py
    const lw = Math.max(1.5, 1.5 * (L.dpr ?? 1))
    const kept = new Set(this.nodules.map(n => n.candidate))
    ctx.save()
    ctx.font = `${Math.round(12 * (L.dpr ?? 1))}px system-ui, sans-serif`
    ctx.textBaseline = 'bottom'
    // Candidates rejected by false-positive reduction: a thin dashed circle on their centre slice.
    this.candidates.forEach((c, i) => {
      if (kept.has(i)) return
      const dz = Math.abs(c.center[0] - this.z)
      if (dz > 1) return
      ctx.setLineDash([4 * (L.dpr ?? 1), 4 * (L.dpr ?? 1)])
      ctx.lineWidth = lw * (this.selected === i ? 1.6 : 1)
      ctx.strokeStyle = dz === 0 ? (this.selected === i ? '#7dd3fc' : 'rgba(180,200,220,0.9)') : 'rgba(180,200,220,0.4)'
      const r = Math.max(6 * L.px, 10)
      ctx.beginPath()
      ctx.arc(px(c.center[2]), py(c.center[1]), r, 0, 2 * Math.PI)
      ctx.stroke()
    })
    ctx.setLineDash([])
    // Kept nodules: their decoded box on its slice (fainter on the neighbouring slices), labelled.
    this.nodules.forEach((n, k) => {
      const b = n.box
      const z = b ? b.z : n.center[0]
      const dz = Math.abs(z - this.z)
      if (dz > 1) return
      const sel = this.selected === n.candidate
      const colour = n.malignancy >= 0.5 ? '255,90,80' : '255,190,60'
      ctx.strokeStyle = `rgba(${colour},${dz === 0 ? 1 : 0.45})`
      ctx.lineWidth = lw * (sel ? 2 : 1.3)
      let x0, y0, x1, y1
      if (b) {
        x0 = L.ox + (b.x0 + 0.5) * L.px; x1 = L.ox + (b.x1 + 0.5) * L.px
        y0 = L.oy + (b.y0 + 0.5) * L.py; y1 = L.oy + (b.y1 + 0.5) * L.py
      } else {
        const r = 6 * L.px
        x0 = px(n.center[2]) - r; x1 = px(n.center[2]) + r; y0 = py(n.center[1]) - r; y1 = py(n.center[1]) + r
      }
      if (dz !== 0) ctx.setLineDash([3 * (L.dpr ?? 1), 3 * (L.dpr ?? 1)])
      ctx.strokeRect(x0, y0, x1 - x0, y1 - y0)
      ctx.setLineDash([])
      if (dz === 0) {
        ctx.fillStyle = `rgb(${colour})`
        ctx.fillText(`N${k + 1}`, x0, y0 - 2)
      }
    })
    ctx.restore()
  }
}
