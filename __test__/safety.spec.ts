// DESIGN.md invariants: every op settles exactly once (close, ring close,
// abort), memory safety of user buffers that are transferred mid-flight,
// EBADF for closed and stale handles, O_DIRECT alignment, AbortSignal.

import test, { type ExecutionContext } from 'ava'
import { randomBytes } from 'node:crypto'
import * as fs from 'node:fs'
import { open, Ring, AbortError, type FileHandle, type RingOptions } from '../index'
import { arrayBufferOf, assertSystemError, gc, mkfifo, outcome, props, rejection, sameBytes, tick, uniquePath, waitFor } from './helpers'
import { disk, realKernelOnly, testDir } from './sim-setup'

const dir = testDir('safety')

/** Why the FIFO tests need a real kernel. */
const FIFO = 'a FIFO written by node:fs (reads that stay pending until data comes); the sim has no FIFOs and its ops never stay pending'

function tmp(name = 'f'): string {
  return uniquePath(dir, name)
}

/** Tracks how each promise settles. */
class Settlements {
  resolved = 0
  rejected = 0
  errors: unknown[] = []
  values: unknown[] = []
  track(p: Promise<unknown>): void {
    p.then(
      (v) => {
        this.resolved++
        this.values.push(v)
      },
      (e: unknown) => {
        this.rejected++
        this.errors.push(e)
      },
    )
  }
  get settled(): number {
    return this.resolved + this.rejected
  }
}

/** A Ring that is closed when the test ends, however it ends. */
function useRing(t: ExecutionContext, options?: RingOptions): Ring {
  const ring = new Ring(options)
  t.teardown(async () => {
    await outcome(ring.close())
  })
  return ring
}

/**
 * Opens a new FIFO read-write (so open does not block) and a node:fs writer
 * fd on it. When the test ends, the FIFO gets fed, so that reads a broken
 * cancel left in the kernel can finish (a failing test must not keep the
 * file's process alive), and the writer is closed.
 */
async function fifo(t: ExecutionContext, ring: Ring): Promise<{ path: string; fh: FileHandle; writer: number }> {
  const path = tmp('fifo')
  mkfifo(path)
  const fh = await ring.open(path, 'r+')
  const writer = fs.openSync(path, fs.constants.O_RDWR | fs.constants.O_NONBLOCK)
  t.teardown(() => {
    try {
      fs.writeSync(writer, Buffer.alloc(32768, 0x2a))
    } catch {
      // FIFO full: enough for anything still waiting
    }
    fs.closeSync(writer)
  })
  return { path, fh, writer }
}

// ---------------------------------------------------------------- (a) transfer mid-flight

test('user buffers transferred right after submission: reads and writes settle, no crash, writes carry the data', async (t) => {
  const p = tmp()
  const data = await disk().randomFile(p, 64 * 1024)
  const out = tmp()
  await disk().writeFile(out, Buffer.alloc(200 * 512))
  const fh = await open(p)
  const fw = await open(out, 'r+')
  for (let i = 0; i < 200; i++) {
    const rab = new ArrayBuffer(4096)
    const rbuf = Buffer.from(rab)
    const pos = (i * 4096) % (60 * 1024)
    const rp = fh.read(rbuf, 0, 4096, pos)
    structuredClone(rab, { transfer: [rab] })
    t.is(rbuf.length, 0, 'the view is detached')

    const wab = new ArrayBuffer(512)
    const wbuf = Buffer.from(wab)
    wbuf.fill(i & 0xff)
    wbuf.writeUInt32BE(i, 0)
    const wp = fw.write(wbuf, 0, 512, i * 512)
    structuredClone(wab, { transfer: [wab] })

    // vectored ops with one of their buffers transferred
    const vab = new ArrayBuffer(1024)
    const keep = Buffer.alloc(1024)
    const vp = fh.readv([keep, new Uint8Array(vab)], pos)
    structuredClone(vab, { transfer: [vab] })

    if (i % 10 === 0) gc()
    const [r, w, v] = await Promise.all([rp, wp, vp])
    t.is(r.bytesRead, 4096)
    t.is(w.bytesWritten, 512)
    t.is(v.bytesRead, 2048)
    sameBytes(t, keep, data.subarray(pos, pos + 1024), 'the untransferred readv buffer is filled')
    if (i % 25 === 0) {
      gc()
      gc()
    }
  }
  for (let i = 0; i < 5; i++) {
    gc()
    await tick()
  }
  const written = (await disk().readFile(out))
  for (let i = 0; i < 200; i++) {
    const expected = Buffer.alloc(512, i & 0xff)
    expected.writeUInt32BE(i, 0)
    sameBytes(t, written.subarray(i * 512, (i + 1) * 512), expected, `write ${i} carries the bytes it was submitted with`)
  }
  await fh.close()
  await fw.close()
})

test('many in-flight reads whose buffers are transferred and collected all settle', async (t) => {
  const p = tmp()
  await disk().randomFile(p, 1 << 20)
  const fh = await open(p)
  const s = new Settlements()
  for (let round = 0; round < 10; round++) {
    const batch: Promise<unknown>[] = []
    for (let i = 0; i < 50; i++) {
      const ab = new ArrayBuffer(16384)
      const p2 = fh.read(new Uint8Array(ab), 0, 16384, i * 16384)
      s.track(p2)
      batch.push(p2.catch(() => undefined))
      structuredClone(ab, { transfer: [ab] })
    }
    gc()
    gc()
    await Promise.all(batch)
  }
  t.true(await waitFor(() => s.settled === 500))
  t.is(s.resolved, 500, `all resolve (errors: ${s.errors.map((e) => String(props(e).code)).join(',')})`)
  await fh.close()
})

test('an allocAligned buffer transferred mid-flight: the op still settles and the data is right', async (t) => {
  const p = tmp()
  const ring = new Ring()
  const data = await disk(ring).randomFile(p, 64 * 1024)
  const fh = await ring.open(p, 'r+')
  for (let i = 0; i < 50; i++) {
    const buf = ring.allocAligned(8192)
    const rp = fh.read(buf, 0, 8192, 8192)
    let transferred: ArrayBuffer | null = null
    let threw = false
    try {
      const ab = arrayBufferOf(buf)
      transferred = structuredClone(ab, { transfer: [ab] })
    } catch {
      threw = true
    }
    const r = await rp
    t.is(r.bytesRead, 8192)
    if (threw) {
      sameBytes(t, buf, data.subarray(8192, 16384))
    } else if (transferred !== null) {
      // the data went wherever the memory went: the clone, or the
      // original if the buffer could not be detached
      const target = buf.length === 8192 ? buf : new Uint8Array(transferred)
      sameBytes(t, target, data.subarray(8192, 16384))
    }
    transferred = null
    const wbuf = ring.allocAligned(4096)
    wbuf.fill(i)
    const wp = fh.write(wbuf, 0, 4096, 4096 * 15)
    try {
      const wab = arrayBufferOf(wbuf)
      structuredClone(wab, { transfer: [wab] })
    } catch {
      // not transferable: fine
    }
    gc()
    const w = await wp
    t.is(w.bytesWritten, 4096)
    t.true((await disk(ring).readFile(p)).subarray(4096 * 15, 4096 * 16).equals(Buffer.alloc(4096, i)), `aligned write ${i}`)
  }
  gc()
  await fh.close()
  await ring.close()
})

// ---------------------------------------------------------------- (b) close with reads in flight

realKernelOnly(FIFO)('closing a FileHandle with FIFO reads pending waits for them, as node:fs/promises does: they get the data, then it closes', async (t) => {
  const ring = useRing(t)
  const { fh, writer } = await fifo(t, ring)
  const s = new Settlements()
  const n = 32
  for (let i = 0; i < n; i++) s.track(fh.read(Buffer.alloc(64), 0, 64, null))
  t.true(await waitFor(() => ring.stats().inFlight === n), 'the reads reached the kernel')
  const closing = new Settlements()
  closing.track(fh.close())
  // Nothing settles, the close included, while the FIFO is empty.
  t.false(await waitFor(() => s.settled > 0 || closing.settled > 0, 5, 2))
  t.is(ring.stats().openFiles, 1)
  fs.writeSync(writer, Buffer.alloc(n * 64, 0x61))
  t.true(await waitFor(() => s.settled === n && closing.settled === 1))
  t.is(s.resolved, n)
  t.is(closing.resolved, 1, 'close() resolves once the reads are done')
  t.is(
    s.values.reduce<number>((sum, v) => sum + (v as { bytesRead: number }).bytesRead, 0),
    n * 64,
    'the reads took every byte written after close()',
  )
  t.false(await waitFor(() => s.settled !== n || closing.settled !== 1, 5, 2), 'nothing settles twice or late')
  t.is(ring.stats().openFiles, 0)
  t.is(ring.stats().inFlight, 0)
})

realKernelOnly(FIFO)('an op a close waits for can still be aborted; the close then resolves', async (t) => {
  const ring = useRing(t)
  const { fh } = await fifo(t, ring)
  const s = new Settlements()
  const acs = Array.from({ length: 4 }, () => new AbortController())
  for (const ac of acs) s.track(fh.read(Buffer.alloc(64), { position: null, signal: ac.signal }))
  t.true(await waitFor(() => ring.stats().inFlight === 4), 'the reads reached the kernel')
  const closing = new Settlements()
  closing.track(fh.close())
  t.false(await waitFor(() => closing.settled > 0, 5, 2), 'the close waits for the reads')
  for (const ac of acs) ac.abort()
  t.true(await waitFor(() => s.settled === 4 && closing.settled === 1))
  t.is(s.rejected, 4)
  for (const e of s.errors) t.is((e as Error).name, 'AbortError')
  t.is(closing.resolved, 1)
  t.is(ring.stats().openFiles, 0)
})

realKernelOnly(FIFO)('closing a FileHandle with a mix of completed, pending and new ops: the pending ones complete, later ones get EBADF, each settles once', async (t) => {
  const ring = useRing(t)
  const { fh, writer } = await fifo(t, ring)
  const s = new Settlements()
  for (let i = 0; i < 10; i++) s.track(fh.read(Buffer.alloc(4), 0, 4, null))
  fs.writeSync(writer, 'abcdefgh') // satisfies two of them
  t.true(await waitFor(() => s.settled >= 2))
  s.track(fh.read(Buffer.alloc(4), 0, 4, null))
  const closing = new Settlements()
  closing.track(fh.close())
  // ops called after close() reject EBADF
  const late = new Settlements()
  late.track(fh.read(Buffer.alloc(4), 0, 4, null))
  late.track(fh.stat())
  t.true(await waitFor(() => late.settled === 2))
  t.is(late.rejected, 2)
  assertSystemError(t, late.errors[0], { code: 'EBADF', errno: -9, syscall: 'read' })
  assertSystemError(t, late.errors[1], { code: 'EBADF', errno: -9, syscall: 'fstat' })
  t.false(await waitFor(() => closing.settled > 0, 5, 2), 'the close waits for the 9 pending reads')
  fs.writeSync(writer, 'ijklmnopqrstuvwxyz0123456789ABCDEFGH') // 9 reads of 4
  t.true(await waitFor(() => s.settled === 11 && closing.settled === 1))
  t.is(s.resolved, 11)
  t.is(closing.resolved, 1)
  const got = s.values.map((v) => (v as { buffer: Buffer }).buffer.toString())
  t.is(got.join('').length, 44)
  t.deepEqual([...got.join('')].sort(), [...'abcdefghijklmnopqrstuvwxyz0123456789ABCDEFGH'].sort(), 'every byte written went to exactly one read')
  t.false(await waitFor(() => s.settled + late.settled + closing.settled !== 14, 5, 2), 'nothing settles twice')
})

// ---------------------------------------------------------------- (c) ring.close

realKernelOnly(FIFO)('ring.close with FIFO reads pending rejects them ECANCELED, resolves, and later calls fail', async (t) => {
  const ring = useRing(t)
  const a = await fifo(t, ring)
  const b = await fifo(t, ring)
  const p = tmp()
  await disk().writeFile(p, 'regular')
  const reg = await ring.open(p)
  const s = new Settlements()
  for (let i = 0; i < 20; i++) s.track(a.fh.read(Buffer.alloc(16), 0, 16, null))
  for (let i = 0; i < 20; i++) s.track(b.fh.readv([Buffer.alloc(8), Buffer.alloc(8)], null))
  t.true(await waitFor(() => ring.stats().inFlight === 40), 'the reads reached the kernel')
  t.is(s.settled, 0)
  const c1 = ring.close()
  const c2 = ring.close()
  t.is(c1, c2, 'close twice returns the same promise')
  t.true(ring.closed)
  t.true(await waitFor(() => s.settled === 40), 'every pending read settles at once')
  t.is(s.rejected, 40)
  for (const e of s.errors) assertSystemError(t, e, { code: 'ECANCELED', errno: -125, syscall: 'read' })
  const closed = await outcome(c1)
  t.true(closed.resolved, 'ring.close() resolves although the reads never got data')

  const e = await rejection(t, ring.open(p))
  t.true(e instanceof Error)
  t.is(props(e).code, 'ERR_RING_CLOSED')
  t.throws(() => ring.allocAligned(4096), { code: 'ERR_RING_CLOSED' })
  // (d) handles of a closed ring: EBADF, fd -1, close() resolves
  t.is(reg.fd, -1)
  t.is(a.fh.fd, -1)
  assertSystemError(t, await rejection(t, reg.read(Buffer.alloc(4), 0, 4, 0)), { code: 'EBADF', errno: -9, syscall: 'read' })
  assertSystemError(t, await rejection(t, a.fh.write(Buffer.from('x'), 0, 1, null)), { code: 'EBADF', errno: -9, syscall: 'write' })
  assertSystemError(t, await rejection(t, reg.stat()), { code: 'EBADF', errno: -9, syscall: 'fstat' })
  t.is(await reg.close(), undefined)
  t.is(await a.fh.close(), undefined)
})

test('ring.close on an idle ring resolves; stats still readable', async (t) => {
  const ring = new Ring()
  const p = tmp()
  await disk(ring).writeFile(p, 'x')
  const fh = await ring.open(p)
  await fh.read(Buffer.alloc(1), 0, 1, 0)
  await ring.close()
  t.true(ring.closed)
  const st = ring.stats()
  t.is(st.inFlight, 0)
  t.is(st.completed, st.submitted)
})

// ---------------------------------------------------------------- (d) closed and stale handles

test('every method of a closed handle rejects EBADF naming its syscall', async (t) => {
  const p = tmp()
  await disk().writeFile(p, 'data')
  const fh = await open(p, 'r+')
  await fh.close()
  const buf = Buffer.alloc(4)
  const cases: [string, () => Promise<unknown>][] = [
    ['read', () => fh.read(buf, 0, 4, 0)],
    ['read', () => fh.read()],
    ['write', () => fh.write(buf, 0, 4, 0)],
    ['write', () => fh.write('abc', 0)],
    ['read', () => fh.readv([buf], 0)],
    ['write', () => fh.writev([buf], 0)],
    ['read', () => fh.readMany([{ buffer: buf, position: 0 }])],
    ['write', () => fh.append('x')],
    ['fdatasync', () => fh.datasync()],
    ['fsync', () => fh.sync()],
    ['fstat', () => fh.stat()],
    ['ftruncate', () => fh.truncate(1)],
  ]
  for (const [syscall, call] of cases) {
    const e = await rejection(t, call())
    assertSystemError(t, e, { code: 'EBADF', errno: -9, syscall })
    t.is(props(e).message, `EBADF: bad file descriptor, ${syscall}`)
  }
  t.is((await disk().readText(p)), 'data')
})

test('a stale handle never reaches the file that reused its slot', async (t) => {
  const ring = new Ring()
  const pa = tmp('a')
  const pb = tmp('b')
  await disk(ring).writeFile(pa, 'AAAAAAAA')
  await disk(ring).writeFile(pb, 'BBBBBBBB')
  for (let i = 0; i < 20; i++) {
    const a = await ring.open(pa, 'r+')
    await a.close()
    const b = await ring.open(pb, 'r+')
    const e = await rejection(t, a.read(Buffer.alloc(8), 0, 8, 0))
    assertSystemError(t, e, { code: 'EBADF', errno: -9, syscall: 'read' })
    const ew = await rejection(t, a.write(Buffer.from('XXXXXXXX'), 0, 8, 0))
    assertSystemError(t, ew, { code: 'EBADF', errno: -9, syscall: 'write' })
    await rejection(t, a.truncate(0))
    const r = await b.read(Buffer.alloc(8), 0, 8, 0)
    t.is(r.buffer.toString(), 'BBBBBBBB')
    await b.close()
  }
  t.is(await disk(ring).readText(pb), 'BBBBBBBB')
  t.is(await disk(ring).readText(pa), 'AAAAAAAA')
  await ring.close()
})

// ---------------------------------------------------------------- (e) O_DIRECT alignment

test('O_DIRECT with a misaligned user buffer works and moves the right bytes', async (t) => {
  const p = tmp()
  const data = await disk().randomFile(p, 64 * 1024)
  const fh = await open(p, 'r+', undefined, { direct: true })
  const al = fh.direct
  t.not(al, null)
  if (al === null) return
  const mis = Buffer.alloc(8192).subarray(1, 4097)
  const r = await fh.read(mis, 0, 4096, 4096)
  t.is(r.bytesRead, 4096)
  t.is(r.buffer, mis)
  sameBytes(t, mis, data.subarray(4096, 8192))
  // misaligned views through the options form, readv and readMany
  const mis2 = new Uint8Array(new ArrayBuffer(4096 + 3), 3, 4096)
  t.is((await fh.read(mis2, { position: 0 })).bytesRead, 4096)
  sameBytes(t, mis2, data.subarray(0, 4096))
  const v1 = Buffer.alloc(4097).subarray(1)
  const v2 = Buffer.alloc(4096)
  t.is((await fh.readv([v1, v2], 8192)).bytesRead, 8192)
  sameBytes(t, v1, data.subarray(8192, 12288))
  sameBytes(t, v2, data.subarray(12288, 16384))
  const m1 = Buffer.alloc(4099).subarray(3)
  t.deepEqual(await fh.readMany([{ buffer: m1, position: 16384 }]), [4096])
  sameBytes(t, m1, data.subarray(16384, 20480))
  // writes from misaligned memory
  const payload = randomBytes(8192)
  const wmis = Buffer.alloc(8192 + 7).subarray(7)
  payload.copy(wmis)
  t.is((await fh.write(wmis, 0, 8192, 32768)).bytesWritten, 8192)
  const wv = Buffer.alloc(4096 + 5).subarray(5)
  payload.copy(wv, 0, 0, 4096)
  t.is((await fh.writev([wv], 49152)).bytesWritten, 4096)
  await fh.close()
  const after = (await disk().readFile(p))
  sameBytes(t, after.subarray(32768, 40960), payload)
  sameBytes(t, after.subarray(49152, 53248), payload.subarray(0, 4096))
  sameBytes(t, after.subarray(0, 32768), data.subarray(0, 32768), 'nothing else changed')
})

test('an O_DIRECT append to a file whose end is not aligned names the alignment, and later appends land right', async (t) => {
  const p = tmp()
  const ring = new Ring()
  t.teardown(() => ring.close())
  await disk(ring).randomFile(p, 100)
  const fh = await ring.open(p, 'r+', undefined, { direct: true })
  const al = fh.direct
  t.not(al, null)
  if (al === null) return
  const rec = ring.allocAligned(al.offset)
  rec.fill(7)
  const e = await rejection(t, fh.append(rec, { sync: 'data' }))
  t.is(props(e).code, 'EINVAL')
  t.is(props(e).syscall, 'fdatasync')
  t.true(String(props(e).message).includes(`aligned to ${al.offset} bytes`), String(props(e).message))
  await disk(ring).truncate(p, al.offset)
  const r = await fh.append(rec, { sync: 'data' })
  t.is(r.bytesWritten, al.offset)
  const back = await disk(ring).readFile(p)
  t.is(back.length, 2 * al.offset)
  t.true(back.subarray(al.offset).every((b) => b === 7))
  await fh.close()
})

test('O_DIRECT rejects a misaligned position or length with EINVAL naming the alignment', async (t) => {
  const p = tmp()
  const ring = new Ring()
  await disk(ring).randomFile(p, 64 * 1024)
  const fh = await ring.open(p, 'r+', undefined, { direct: true })
  const al = fh.direct
  t.not(al, null)
  if (al === null) return
  const a = String(al.offset)
  const buf = ring.allocAligned(8192)
  const before = ring.stats().submitted
  const cases: [string, () => Promise<unknown>][] = [
    ['read', () => fh.read(buf, 0, 4096, 100)],
    ['read', () => fh.read(buf, 0, 100, 0)],
    ['read', () => fh.read(buf, { length: 4095, position: 0 })],
    ['write', () => fh.write(buf, 0, 4096, 1)],
    ['write', () => fh.write(buf, 0, 1000, 4096)],
    ['write', () => fh.write('abc', 0)],
    ['read', () => fh.readv([buf.subarray(0, 100)], 0)],
    ['write', () => fh.writev([buf.subarray(0, 4096), buf.subarray(0, 10)], 0)],
    ['read', () => fh.readMany([{ buffer: buf, position: 0, length: 4096 }, { buffer: buf, position: 10, length: 4096 }])],
    ['write', () => fh.append(buf.subarray(0, 100))],
  ]
  for (const [syscall, call] of cases) {
    const e = await rejection(t, call())
    t.true(e instanceof Error)
    t.is(props(e).code, 'EINVAL')
    t.is(props(e).errno, -22)
    t.is(props(e).syscall, syscall)
    const msg = String(props(e).message)
    t.true(msg.includes('aligned to'), msg)
    t.true(msg.includes(a), `message names the alignment ${a}: ${msg}`)
  }
  t.is(ring.stats().submitted, before, 'nothing was submitted')
  await fh.close()
  await ring.close()
})

// ---------------------------------------------------------------- (f) AbortSignal

test('an already-aborted signal rejects with AbortError without submitting', async (t) => {
  const p = tmp()
  const ring = new Ring()
  await disk(ring).writeFile(p, 'abc')
  const fh = await ring.open(p, 'r+')
  const signal = AbortSignal.abort()
  const before = ring.stats().submitted
  const calls: (() => Promise<unknown>)[] = [
    () => fh.read(Buffer.alloc(3), { signal }),
    () => fh.read({ buffer: Buffer.alloc(3), signal }),
    () => fh.write(Buffer.from('x'), { position: 0, signal }),
    () => fh.readMany([{ buffer: Buffer.alloc(3), position: 0 }], { signal }),
    () => fh.append('x', { signal }),
    () => ring.open(p, 'r', undefined, { signal }),
  ]
  for (const call of calls) {
    const e = await rejection(t, call())
    t.true(e instanceof AbortError)
    t.true(e instanceof Error)
    t.is(props(e).name, 'AbortError')
    t.is(props(e).code, 'ABORT_ERR')
  }
  t.is(ring.stats().submitted, before)
  t.is(await disk(ring).readText(p), 'abc')
  await fh.close()
  await ring.close()
})

realKernelOnly(FIFO)('aborting a pending FIFO read rejects it with AbortError; other reads stay pending', async (t) => {
  const ring = useRing(t)
  const { fh, writer } = await fifo(t, ring)
  const ac = new AbortController()
  const s = new Settlements()
  const aborted = fh.read(Buffer.alloc(8), { signal: ac.signal })
  s.track(aborted)
  const other = fh.read(Buffer.alloc(8), 0, 8, null)
  const acMany = new AbortController()
  const many = fh.readMany([{ buffer: Buffer.alloc(8), position: -1 }], { signal: acMany.signal })
  t.true(await waitFor(() => ring.stats().inFlight === 3), 'the reads reached the kernel')
  t.is(s.settled, 0)
  const reason = new Error('stop')
  ac.abort(reason)
  const o = await outcome(aborted)
  t.true(o.settled, 'the aborted read settles')
  t.true(o.error instanceof AbortError)
  t.is(props(o.error).name, 'AbortError')
  t.is(props(o.error).code, 'ABORT_ERR')
  t.is(o.error instanceof Error ? o.error.cause : undefined, reason)
  acMany.abort()
  const om = await outcome(many)
  t.true(om.settled, 'the aborted readMany settles')
  t.is(props(om.error).name, 'AbortError')
  t.is(props(om.error).code, 'ABORT_ERR')
  // aborting again, after settlement, changes nothing
  ac.abort()
  t.is(s.rejected, 1)
  t.is(s.resolved, 0)
  // the other read is unaffected and gets the data, not an aborted one
  fs.writeSync(writer, 'payload!')
  const r = await outcome(other)
  t.true(r.resolved, 'the other read gets the data')
  if (r.value !== undefined) {
    t.is(r.value.bytesRead, 8)
    t.is(r.value.buffer.toString(), 'payload!')
  }
  t.true(await waitFor(() => ring.stats().inFlight === 0))
  t.true((await outcome(fh.close())).resolved)
})

realKernelOnly(FIFO)('an aborted FIFO read does not swallow data written after the abort', async (t) => {
  for (let round = 0; round < 5; round++) {
    const ring = useRing(t)
    const { fh, writer } = await fifo(t, ring)
    const ac = new AbortController()
    const aborted = fh.read(Buffer.alloc(16), { signal: ac.signal })
    t.true(await waitFor(() => ring.stats().inFlight === 1), 'the read reached the kernel')
    ac.abort()
    const o = await outcome(aborted)
    t.is(props(o.error).name, 'AbortError')
    t.true(await waitFor(() => ring.stats().inFlight === 0), `round ${round}: the aborted read left the kernel (inFlight ${ring.stats().inFlight})`)
    fs.writeSync(writer, `data ${round}`)
    const r = await outcome(fh.read(Buffer.alloc(16), 0, 16, null))
    t.true(r.resolved, `round ${round}: the next read gets the data`)
    if (r.value !== undefined) t.is(r.value.buffer.subarray(0, r.value.bytesRead).toString(), `data ${round}`)
  }
})

test('an abort after completion is a no-op', async (t) => {
  const p = tmp()
  await disk().writeFile(p, 'hello')
  const fh = await open(p)
  const ac = new AbortController()
  const r = await fh.read(Buffer.alloc(5), { position: 0, signal: ac.signal })
  ac.abort()
  t.is(r.bytesRead, 5)
  t.is(r.buffer.toString(), 'hello')
  await fh.close()
})
