// A seeded fuzzer of the file API (not a spec file itself): used by
// fuzz.spec.ts (a few seeds, through scripts/fuzz.ts) and by
// `node --import tsx scripts/fuzz.ts --seeds 1000 --start 1`.
//
// One seed: a PRNG (mulberry32) drives batches of random ops on rings of
// random sizes (entries 1..256, maxInFlight 2..64, registerFiles and
// registerBuffers random): open ('r+', 'w+', 'a'), read, write (user
// Buffers, allocAligned memory, strings), append (with and without sync),
// truncate, stat, close, AbortSignals on some ops (aborted before the call,
// right after it, in a microtask, in setImmediate, or never), fh.close() and
// ring.close() in the middle of a batch, and calls on closed handles.
//
// The ops of one batch are issued in one synchronous run, then every one of
// them is awaited. A batch never makes the outcome ambiguous: writes to one
// file in a batch cover disjoint bytes; appends to a file come from one
// handle (they land in call order); a truncate or an 'w+' open has its file
// to itself; writes in a batch with appends stay inside the file. The model
// of each file changes ONLY by what the library says happened: a resolved
// write, append, truncate or 'w+' open. At the end every file on disk must
// equal its model, reads of bytes no op of their batch touched must return
// the model's bytes, every op settled exactly once, every rejection has a
// code that the situation allows, and every ring open at the end is at rest.

import * as fs from 'node:fs'
import * as path from 'node:path'
import { Ring, type FileHandle, type RingOptions } from '../index'

export interface FuzzOptions {
  /** A directory of its own for this seed's files (created if missing). */
  dir: string
  /** Batches per seed (default 40). */
  batches?: number
  /** Called with a line per batch when set (for --verbose). */
  log?: (line: string) => void
  /** Called with a line per op and how it ended (for --trace). */
  trace?: (line: string) => void
  /**
   * Features left out, to narrow a failure down: 'abort' (no signals),
   * 'close' (no fh.close()/ring.close() mid-way), 'append', 'truncate',
   * 'open-w' (no 'w+' opens).
   */
  without?: readonly string[]
  /** Ops of the running seed still pending, for a watchdog to print. */
  onPending?: (describe: () => string) => void
}

export interface FuzzResult {
  seed: number
  problems: string[]
  ops: number
  batches: number
  outcomes: Record<string, number>
}

/** mulberry32: a small, fast, seedable PRNG. */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

type Flags = 'r+' | 'w+' | 'a'
type AbortWhen = 'none' | 'before' | 'sync' | 'microtask' | 'immediate' | 'never'

interface ModelFile {
  path: string
  data: Buffer
}

interface RingState {
  ring: Ring
  id: number
  closed: boolean
  options: RingOptions
}

interface HandleState {
  fh: FileHandle
  id: number
  file: ModelFile
  flags: Flags
  ring: RingState
  closed: boolean
}

/** What one op may end as, besides resolving. */
interface OpRecord {
  label: string
  settles: number
  resolved: boolean
  value: unknown
  error: unknown
  /** Codes this op may reject with. */
  allowed: Set<string>
  /** Whether it must reject (an op on a closed handle or ring). */
  mustReject: boolean
  /** Applied to the model when it resolved. */
  apply?: (value: unknown) => string | null
  /** Checks a resolved value against the model (reads, stats). */
  check?: (value: unknown) => string | null
  /** An open: takes the FileHandle it resolved with. */
  opened?: (fh: FileHandle) => void
}

/** Per-file constraints of the batch being built. */
interface BatchFile {
  exclusive: boolean
  used: boolean
  writes: [number, number][]
  appendHandle: HandleState | null
  extends: boolean
  sizeChanges: boolean
  /** Bytes an op of this batch may change: [from, to). */
  unstable: [number, number][]
}

function codeOf(e: unknown): string {
  if (typeof e === 'object' && e !== null && 'code' in e && typeof (e as { code: unknown }).code === 'string') return (e as { code: string }).code
  return `no code (${e instanceof Error ? `${e.name}: ${e.message}` : String(e)})`
}

function overlaps(a: [number, number], b: [number, number]): boolean {
  return a[0] < b[1] && b[0] < a[1]
}

function firstDiff(a: Buffer, b: Buffer): string {
  let i = 0
  while (i < a.length && i < b.length && a[i] === b[i]) i++
  return `lengths ${a.length} vs ${b.length}, first difference at ${i}`
}

/** Runs one seed; resolves with every problem it found (none: the library behaved). */
export async function runSeed(seed: number, opts: FuzzOptions): Promise<FuzzResult> {
  const rnd = mulberry32(seed)
  const int = (lo: number, hi: number): number => lo + Math.floor(rnd() * (hi - lo + 1))
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rnd() * xs.length)]
  const chance = (p: number): boolean => rnd() < p
  const without = new Set(opts.without ?? [])

  fs.mkdirSync(opts.dir, { recursive: true })
  const problems: string[] = []
  const outcomes: Record<string, number> = {}
  const pending = new Map<number, string>()
  let opCount = 0
  opts.onPending?.(() => `seed ${seed}: ${pending.size} pending: ${[...pending.values()].slice(0, 20).join(', ')}`)

  // ---------------------------------------------------------------- files, rings
  const files: ModelFile[] = []
  const nFiles = int(1, 4)
  for (let i = 0; i < nFiles; i++) {
    const p = path.join(opts.dir, `f${i}`)
    const data = Buffer.alloc(int(0, 16384))
    for (let j = 0; j < data.length; j++) data[j] = int(0, 255)
    fs.writeFileSync(p, data)
    files.push({ path: p, data })
  }
  const rings: RingState[] = []
  const newRing = (): RingState => {
    const options: RingOptions = {
      entries: chance(0.3) ? int(1, 4) : int(1, 256),
      maxInFlight: chance(0.3) ? int(2, 4) : int(2, 64),
      registerFiles: chance(0.5),
      registerBuffers: chance(0.5),
    }
    const r: RingState = { ring: new Ring(options), id: rings.length, closed: false, options }
    rings.push(r)
    return r
  }
  newRing()
  if (chance(0.5)) newRing()
  const liveRings = (): RingState[] => rings.filter((r) => !r.closed)
  const handles: HandleState[] = []
  let handleIds = 0

  /** Tracks an op: counts settlements, records how it ended. */
  const track = (rec: OpRecord, p: Promise<unknown>): Promise<void> => {
    const id = opCount++
    pending.set(id, rec.label)
    return p.then(
      (v) => {
        rec.settles++
        rec.resolved = true
        rec.value = v
        pending.delete(id)
      },
      (e: unknown) => {
        rec.settles++
        rec.error = e
        pending.delete(id)
      },
    )
  }

  /** Calls `f`, turning a synchronous throw into a rejection (and reporting it). */
  const call = (label: string, f: () => Promise<unknown>): Promise<unknown> => {
    try {
      return f()
    } catch (e) {
      problems.push(`${label}: threw synchronously instead of rejecting: ${String(e)}`)
      return Promise.reject(e)
    }
  }

  const randomBytesFor = (n: number): Buffer => {
    const b = Buffer.alloc(n)
    const v = int(0, 255)
    for (let i = 0; i < n; i++) b[i] = (v + i * 7 + (i >> 8)) & 0xff
    return b
  }

  const numBatches = opts.batches ?? 40
  for (let batch = 0; batch < numBatches; batch++) {
    const state = new Map<ModelFile, BatchFile>()
    const st = (f: ModelFile): BatchFile => {
      let s = state.get(f)
      if (s === undefined) {
        s = { exclusive: false, used: false, writes: [], appendHandle: null, extends: false, sizeChanges: false, unstable: [] }
        state.set(f, s)
      }
      return s
    }
    const recs: OpRecord[] = []
    const settles: Promise<void>[] = []
    const aborts: { when: AbortWhen; ac: AbortController }[] = []
    // A batch that closes something (a handle, or a whole ring) closes it
    // after its other ops, in the same tick.
    let closeHandle: HandleState | null = null
    let closeRing: RingState | null = null
    if (chance(0.25) && !without.has('close')) {
      const live = handles.filter((h) => !h.closed && !h.ring.closed)
      const rs = liveRings()
      if (chance(0.3) && rs.length > 0) closeRing = pick(rs)
      else if (live.length > 0) closeHandle = pick(live)
    }
    const closing = closeHandle !== null || closeRing !== null
    /**
     * Whether the batch's close may cancel an op on ring `r`: only a ring's
     * close does; a handle's close waits for the handle's ops (as
     * node:fs/promises' FileHandle.close does), which must all complete.
     */
    const cancels = (r: RingState): boolean => r === closeRing
    const nOps = int(1, 14)

    const signalFor = (rec: OpRecord): AbortSignal | undefined => {
      if (!chance(0.25) || without.has('abort')) return undefined
      const when = pick<AbortWhen>(['before', 'sync', 'microtask', 'immediate', 'never'])
      const ac = new AbortController()
      if (when === 'before') ac.abort()
      else aborts.push({ when, ac })
      if (when !== 'never') rec.allowed.add('ABORT_ERR').add('ECANCELED')
      return ac.signal
    }

    const newRec = (label: string): OpRecord => ({ label: `batch ${batch} ${label}`, settles: 0, resolved: false, value: undefined, error: undefined, allowed: new Set(), mustReject: false })

    const begin = (rec: OpRecord, f: () => Promise<unknown>): void => {
      recs.push(rec)
      settles.push(track(rec, call(rec.label, f)))
    }

    /** Records for a handle that is closed (or whose ring is): the op must reject EBADF. */
    const deadHandle = (h: HandleState, rec: OpRecord): boolean => {
      if (h.closed || h.ring.closed) {
        rec.mustReject = true
        rec.allowed.add('EBADF')
        return true
      }
      return false
    }

    for (let k = 0; k < nOps; k++) {
      const live = handles.filter((h) => !h.closed && !h.ring.closed)
      const kind = live.length === 0 || chance(0.1) ? 'open' : pick(['read', 'read', 'write', 'write', 'append', 'append', 'truncate', 'stat', 'dead'] as const)
      if (kind === 'open') {
        const rs = liveRings()
        const r = rs.length === 0 || chance(0.05) ? newRing() : pick(rs)
        const file = pick(files)
        const s = st(file)
        let flags = pick<Flags>(['r+', 'r+', 'w+', 'a', 'a'])
        if (flags === 'w+' && (s.used || closing || without.has('open-w'))) flags = 'r+'
        if (s.exclusive) continue
        s.used = true
        const rec = newRec(`open ${path.basename(file.path)} ${flags} on ring ${r.id}`)
        if (flags === 'w+') {
          s.exclusive = true
          s.sizeChanges = true
          s.unstable.push([0, Infinity])
          rec.apply = () => {
            file.data = Buffer.alloc(0)
            return null
          }
        }
        const hid = handleIds++
        // usable from the next batch on, in call order (not in the order
        // the opens happened to complete: a seed must replay the same ops)
        rec.opened = (fh) => handles.push({ fh, id: hid, file, flags, ring: r, closed: false })
        begin(rec, () => r.ring.open(file.path, flags))
        if (cancels(r)) rec.allowed.add('ECANCELED').add('EBADF')
        continue
      }
      if (kind === 'dead') {
        const dead = handles.filter((h) => h.closed || h.ring.closed)
        if (dead.length === 0) continue
        const h = pick(dead)
        const rec = newRec(`${pick(['read', 'write', 'stat'])} on closed handle ${h.id}`)
        deadHandle(h, rec)
        const op = rec.label.split(' ')[2]
        begin(rec, () => (op === 'read' ? h.fh.read(Buffer.alloc(16), 0, 16, 0) : op === 'write' ? h.fh.write(Buffer.from('x'), 0, 1, 0) : h.fh.stat()))
        continue
      }
      const h = pick(live)
      const file = h.file
      const s = st(file)
      if (s.exclusive) continue
      const len = file.data.length
      if (kind === 'read') {
        const pos = int(0, len + 2048)
        // Now and then a read large enough that a few of them exceed the
        // ring's bounce budget (32 MiB): they wait for memory, in order.
        const n = chance(0.02) ? int(6 << 20, 20 << 20) : int(1, 8192)
        const aligned = chance(0.3)
        const buf = aligned ? h.ring.ring.allocAligned(n) : Buffer.alloc(n + 16)
        const off = aligned ? 0 : int(0, 16)
        const rec = newRec(`read h${h.id}(${h.flags} ${path.basename(file.path)}) ${n}@${pos}${aligned ? ' aligned' : ''}`)
        s.used = true
        if (h.flags === 'a') {
          // opened write-only
          rec.mustReject = true
          rec.allowed.add('EBADF')
        }
        const signal = signalFor(rec)
        if (cancels(h.ring)) rec.allowed.add('ECANCELED')
        // Checked against the model when no op of this batch may change these bytes.
        const range: [number, number] = [pos, pos + n]
        rec.check = (v) => {
          const cur = state.get(file)
          if (cur !== undefined && cur.unstable.some((u) => overlaps(u, range))) return null
          const { bytesRead } = v as { bytesRead: number }
          const want = file.data.subarray(Math.min(pos, file.data.length), Math.min(pos + n, file.data.length))
          if (bytesRead !== want.length) return `bytesRead ${bytesRead}, model says ${want.length}`
          const got = buf.subarray(off, off + bytesRead)
          if (!got.equals(want)) return `data differs from the model (${firstDiff(got, want)})`
          return null
        }
        begin(rec, () => (signal === undefined && chance(0.5) ? h.fh.read(buf, off, n, pos) : h.fh.read(buf, { offset: off, length: n, position: pos, signal })))
        continue
      }
      if (kind === 'write') {
        if (h.flags === 'a') continue
        const n = chance(0.02) ? int(6 << 20, 20 << 20) : int(1, 8192)
        let pos = chance(0.2) ? len + int(0, 4096) : int(0, Math.max(0, len - 1))
        if (s.appendHandle !== null) {
          // with appends in the batch, writes stay inside the file
          if (len === 0) continue
          pos = int(0, len - 1)
        }
        let end = pos + n
        if (s.appendHandle !== null && end > len) end = len
        const range: [number, number] = [pos, end]
        if (range[1] <= range[0] || s.writes.some((w) => overlaps(w, range))) continue
        const size = range[1] - range[0]
        const data = randomBytesFor(size)
        const form = pick(['buffer', 'aligned', 'string', 'options'] as const)
        const rec = newRec(`write h${h.id}(${h.flags} ${path.basename(file.path)}) ${size}@${pos} ${form}`)
        s.used = true
        s.writes.push(range)
        s.unstable.push(range)
        if (end > len) {
          s.extends = true
          s.sizeChanges = true
          s.unstable.push([len, Infinity])
        }
        if (cancels(h.ring)) rec.allowed.add('ECANCELED')
        let signal: AbortSignal | undefined
        let text = ''
        if (form === 'string') {
          // ASCII only, so that its UTF-8 bytes are its characters
          text = data.toString('latin1').replace(/[^\x20-\x7e]/g, 'x')
          data.write(text, 'latin1')
        } else if (form === 'options') {
          signal = signalFor(rec)
        }
        rec.apply = (v) => {
          const { bytesWritten } = v as { bytesWritten: number }
          if (bytesWritten !== size) return `bytesWritten ${bytesWritten} of ${size}`
          const need = pos + size
          if (file.data.length < need) file.data = Buffer.concat([file.data, Buffer.alloc(need - file.data.length)])
          data.copy(file.data, pos)
          return null
        }
        if (form === 'aligned') {
          const ab = h.ring.ring.allocAligned(size + 512)
          const o = chance(0.5) ? 0 : 512
          data.copy(ab, o)
          begin(rec, () => h.fh.write(ab, o, size, pos))
        } else if (form === 'string') {
          begin(rec, () => h.fh.write(text, pos))
        } else if (form === 'options') {
          begin(rec, () => h.fh.write(data, { offset: 0, length: size, position: pos, signal }))
        } else {
          begin(rec, () => h.fh.write(data, 0, size, pos))
        }
        continue
      }
      if (kind === 'append') {
        if (without.has('append')) continue
        if (s.appendHandle !== null && s.appendHandle !== h) continue
        if (s.extends) continue
        const n = int(1, 3000)
        const data = randomBytesFor(n)
        const sync = pick(['none', 'none', 'data', 'full'] as const)
        const rec = newRec(`append h${h.id}(${h.flags} ${path.basename(file.path)}) ${n} sync ${sync}`)
        s.used = true
        s.appendHandle = h
        s.sizeChanges = true
        s.unstable.push([len, Infinity])
        if (cancels(h.ring)) rec.allowed.add('ECANCELED')
        const signal = signalFor(rec)
        // appends of one handle land in call order: applied in that order below
        rec.apply = (v) => {
          const { bytesWritten } = v as { bytesWritten: number }
          if (bytesWritten !== n) return `bytesWritten ${bytesWritten} of ${n}`
          file.data = Buffer.concat([file.data, data])
          return null
        }
        begin(rec, () => h.fh.append(data, { sync, signal }))
        continue
      }
      if (kind === 'truncate') {
        if (s.used || without.has('truncate')) continue
        const to = chance(0.3) ? 0 : int(0, len + 4096)
        const rec = newRec(`truncate h${h.id}(${h.flags} ${path.basename(file.path)}) to ${to}`)
        s.used = true
        s.exclusive = true
        s.sizeChanges = true
        s.unstable.push([Math.min(to, len), Infinity])
        if (cancels(h.ring)) rec.allowed.add('ECANCELED')
        rec.apply = () => {
          file.data = to <= file.data.length ? Buffer.from(file.data.subarray(0, to)) : Buffer.concat([file.data, Buffer.alloc(to - file.data.length)])
          return null
        }
        begin(rec, () => h.fh.truncate(to))
        continue
      }
      // stat
      const rec = newRec(`stat h${h.id}(${h.flags} ${path.basename(file.path)})`)
      s.used = true
      if (cancels(h.ring)) rec.allowed.add('ECANCELED')
      rec.check = (v) => {
        const cur = state.get(file)
        if (cur?.sizeChanges === true) return null
        const size = (v as { size: number }).size
        return size === file.data.length ? null : `size ${size}, model says ${file.data.length}`
      }
      begin(rec, () => h.fh.stat())
    }

    // The closing op of the batch, in the same tick as the ops above.
    const closedNow: string[] = []
    if (closeRing !== null) {
      const r = closeRing
      r.closed = true
      closedNow.push(`ring ${r.id}`)
      begin(newRec(`ring ${r.id}.close()`), () => r.ring.close())
    } else if (closeHandle !== null) {
      const h = closeHandle
      h.closed = true
      closedNow.push(`h${h.id}`)
      begin(newRec(`close h${h.id}`), () => h.fh.close())
    }

    for (const { when, ac } of aborts) {
      if (when === 'sync') ac.abort()
      else if (when === 'microtask') queueMicrotask(() => ac.abort())
      else if (when === 'immediate') setImmediate(() => ac.abort())
    }

    await Promise.all(settles)

    // First every check against the model as it was before the batch,
    // then the model updates, in call order (appends of one handle land in
    // that order).
    for (const rec of recs) {
      const tag = rec.resolved ? 'resolved' : codeOf(rec.error)
      const kind = rec.label.split(' ')[2]
      outcomes[`${kind} ${tag}`] = (outcomes[`${kind} ${tag}`] ?? 0) + 1
      if (rec.settles !== 1) problems.push(`${rec.label}: settled ${rec.settles} times`)
      if (rec.resolved) {
        if (rec.mustReject) problems.push(`${rec.label}: resolved, but its handle or ring was closed or it cannot do that`)
        const c = rec.check?.(rec.value)
        if (c !== null && c !== undefined) problems.push(`${rec.label}: ${c}`)
      } else {
        const code = codeOf(rec.error)
        if (!rec.allowed.has(code)) problems.push(`${rec.label}: rejected with ${code}${rec.allowed.size > 0 ? ` (allowed: ${[...rec.allowed].join(', ')})` : ''}`)
      }
    }
    if (opts.trace !== undefined) {
      for (const rec of recs) opts.trace(`  ${rec.label}: ${rec.resolved ? 'resolved' : codeOf(rec.error)}`)
    }
    for (const rec of recs) {
      if (!rec.resolved) continue
      rec.opened?.(rec.value as FileHandle)
      const a = rec.apply?.(rec.value)
      if (a !== null && a !== undefined) problems.push(`${rec.label}: ${a}`)
    }
    // Handles of a ring closed in this batch (opened in it too) are dead.
    for (const h of handles) if (h.ring.closed) h.closed = true
    opts.log?.(`seed ${seed} batch ${batch}: ${recs.length} ops${closedNow.length > 0 ? `, closed ${closedNow.join(', ')}` : ''}`)

    // Rings still open are at rest between batches.
    for (const r of liveRings()) {
      let rest = false
      for (let i = 0; i < 100 && !rest; i++) {
        const s = r.ring.stats()
        rest = s.inFlight === 0 && s.queued === 0
        if (!rest) await new Promise((resolve) => setImmediate(resolve))
      }
      if (!rest) {
        const s = r.ring.stats()
        problems.push(`batch ${batch}: ring ${r.id} not at rest after every op settled (inFlight ${s.inFlight}, queued ${s.queued})`)
      }
    }
  }

  // ---------------------------------------------------------------- the end
  const endRecs: OpRecord[] = []
  const ends: Promise<void>[] = []
  for (const h of handles) {
    const rec: OpRecord = { label: `end: close h${h.id}`, settles: 0, resolved: false, value: undefined, error: undefined, allowed: new Set(), mustReject: false }
    endRecs.push(rec)
    ends.push(track(rec, call(rec.label, () => h.fh.close())))
  }
  await Promise.all(ends)
  for (const r of rings) {
    const rec: OpRecord = { label: `end: ring ${r.id}.close()`, settles: 0, resolved: false, value: undefined, error: undefined, allowed: new Set(), mustReject: false }
    endRecs.push(rec)
    await track(rec, call(rec.label, () => r.ring.close()))
  }
  for (const rec of endRecs) {
    if (rec.settles !== 1) problems.push(`${rec.label}: settled ${rec.settles} times`)
    if (!rec.resolved) problems.push(`${rec.label}: rejected with ${codeOf(rec.error)}`)
  }
  if (pending.size > 0) problems.push(`${pending.size} ops still pending after every ring closed: ${[...pending.values()].slice(0, 10).join(', ')}`)
  for (const f of files) {
    const got = fs.readFileSync(f.path)
    if (!got.equals(f.data)) problems.push(`${path.basename(f.path)}: the file differs from the model (${firstDiff(got, f.data)})`)
  }
  return { seed, problems, ops: opCount, batches: numBatches, outcomes }
}
