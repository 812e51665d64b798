// Functional tests of the file API: open flags and modes, the read/write
// call forms of node:fs/promises, vectored and batched I/O, append, sync,
// stat, truncate, ring options and stats, aligned buffers, and byte-exact
// interchange with node:fs.

import test from 'ava'
import { randomBytes } from 'node:crypto'
import * as fs from 'node:fs'
import { pathToFileURL } from 'node:url'
import { open, Ring, allocAligned, defaultRing, type FileHandle } from '../index'
import { rm, stat } from '../fs'
import { BACKEND, assertSystemError, makeTmpDir, outcome, props, randomFile, rejection, removeTmpDir, sameBytes, uniquePath } from './helpers'
import { SIM, disk, testDir } from './sim-setup'

const dir = testDir('files')

function tmp(name = 'f'): string {
  return uniquePath(dir, name)
}

/** Reads `length` bytes at `position` into a fresh buffer, looping on short reads. */
async function readFully(fh: FileHandle, length: number, position: number): Promise<Buffer> {
  const out = Buffer.alloc(length)
  let done = 0
  for (let i = 0; i < 64 && done < length; i++) {
    const { bytesRead } = await fh.read(out, done, length - done, position + done)
    if (bytesRead === 0) break
    done += bytesRead
  }
  return out.subarray(0, done)
}

// ---------------------------------------------------------------- open

test('the completion mode follows the option, else RINGLINE_COMPLETION (a sim ring: loop), and both modes move data', async (t) => {
  const expected = SIM || process.env.RINGLINE_COMPLETION === 'loop' ? 'loop' : 'thread'
  t.is(defaultRing().completion, expected)
  const p = tmp('modes')
  const want = randomBytes(20000)
  for (const completion of ['thread', 'loop'] as const) {
    const ring = new Ring({ completion })
    t.is(ring.completion, completion)
    await disk(ring).writeFile(p, want)
    const fh = await ring.open(p)
    const got = await Promise.all([0, 4096, 8192].map(async (pos) => (await fh.read(Buffer.alloc(4096), 0, 4096, pos)).buffer))
    t.true(Buffer.concat(got).equals(want.subarray(0, 12288)), completion)
    await fh.close()
    await ring.close()
  }
})

test('open "r" reads an existing file and refuses writes with EBADF', async (t) => {
  const p = tmp()
  await disk().writeFile(p, 'hello ringline')
  const fh = await open(p, 'r')
  t.is(typeof fh.fd, 'number')
  t.true(fh.fd >= 0)
  t.is(fh.path, p)
  t.is(fh.direct, null)
  const { bytesRead, buffer } = await fh.read(Buffer.alloc(5), 0, 5, 6)
  t.is(bytesRead, 5)
  t.is(buffer.toString(), 'ringl')
  const e = await rejection(t, fh.write(Buffer.from('x'), 0, 1, 0))
  assertSystemError(t, e, { code: 'EBADF', errno: -9, syscall: 'write' })
  await fh.close()
  t.is((await disk().readText(p)), 'hello ringline')
})

test('open defaults to "r" and a missing file rejects ENOENT with path and Node message', async (t) => {
  const p = tmp('missing')
  const e = await rejection(t, open(p))
  assertSystemError(t, e, { code: 'ENOENT', errno: -2, syscall: 'open', path: p })
  t.is(props(e).message, `ENOENT: no such file or directory, open '${p}'`)
  const e2 = await rejection(t, open(p, 'r+'))
  assertSystemError(t, e2, { code: 'ENOENT', errno: -2, syscall: 'open', path: p })
})

test('open "r+" reads and writes in place without truncating', async (t) => {
  const p = tmp()
  await disk().writeFile(p, 'abcdefghij')
  const fh = await open(p, 'r+')
  const w = await fh.write(Buffer.from('XYZ'), 0, 3, 2)
  t.is(w.bytesWritten, 3)
  const r = await fh.read(Buffer.alloc(10), 0, 10, 0)
  t.is(r.bytesRead, 10)
  t.is(r.buffer.toString(), 'abXYZfghij')
  await fh.close()
  t.is((await disk().readText(p)), 'abXYZfghij')
})

test('open "w" creates a missing file and truncates an existing one', async (t) => {
  const p = tmp()
  const fh = await open(p, 'w')
  t.true((await disk().exists(p)))
  await fh.write(Buffer.from('first'), 0, 5, 0)
  await fh.close()
  t.is((await disk().readText(p)), 'first')
  const fh2 = await open(p, 'w')
  t.is((await disk().stat(p)).size, 0)
  await fh2.write(Buffer.from('2'), 0, 1, 0)
  // 'w' is write-only: reads fail in the kernel.
  const e = await rejection(t, fh2.read(Buffer.alloc(1), 0, 1, 0))
  assertSystemError(t, e, { code: 'EBADF', errno: -9, syscall: 'read' })
  await fh2.close()
  t.is((await disk().readText(p)), '2')
})

test('open "wx" creates a new file and rejects EEXIST on an existing one', async (t) => {
  const p = tmp()
  const fh = await open(p, 'wx')
  await fh.write(Buffer.from('x'), 0, 1, 0)
  await fh.close()
  const e = await rejection(t, open(p, 'wx'))
  assertSystemError(t, e, { code: 'EEXIST', errno: -17, syscall: 'open', path: p })
  t.is(props(e).message, `EEXIST: file already exists, open '${p}'`)
  t.is((await disk().readText(p)), 'x', 'the existing file is untouched')
})

test('open "a" appends every write at the end, also positional ones (Linux O_APPEND)', async (t) => {
  const p = tmp()
  await disk().writeFile(p, 'start|')
  const fh = await open(p, 'a')
  await fh.write('one|')
  await fh.write(Buffer.from('two|'), 0, 4, null)
  await fh.write(Buffer.from('three|'), 0, 6, 0)
  await fh.close()
  t.is((await disk().readText(p)), 'start|one|two|three|')
  const q = tmp()
  const fh2 = await open(q, 'a')
  await fh2.write('created')
  await fh2.close()
  t.is((await disk().readText(q)), 'created')
})

test('open "a+" reads from anywhere and appends writes', async (t) => {
  const p = tmp()
  await disk().writeFile(p, '0123456789')
  const fh = await open(p, 'a+')
  const r = await fh.read(Buffer.alloc(4), 0, 4, 3)
  t.is(r.buffer.toString(), '3456')
  await fh.write('AB', 0)
  const r2 = await fh.read(Buffer.alloc(12), 0, 12, 0)
  t.is(r2.bytesRead, 12)
  t.is(r2.buffer.toString(), '0123456789AB')
  await fh.close()
})

test('open with numeric flags and with Buffer and file: URL paths', async (t) => {
  const { O_RDWR, O_CREAT, O_TRUNC, O_RDONLY } = fs.constants
  const p = tmp()
  await disk().writeFile(p, 'old contents')
  const fh = await open(p, O_RDWR | O_CREAT | O_TRUNC)
  t.is((await disk().stat(p)).size, 0)
  await fh.write('numeric', 0)
  const r = await fh.read(Buffer.alloc(7), 0, 7, 0)
  t.is(r.buffer.toString(), 'numeric')
  await fh.close()
  const fb = await open(Buffer.from(p), O_RDONLY)
  t.is((await fb.read(Buffer.alloc(3), 0, 3, 0)).buffer.toString(), 'num')
  await fb.close()
  const fu = await open(pathToFileURL(p), 'r')
  t.is((await fu.read(Buffer.alloc(3), 0, 3, 4)).buffer.toString(), 'ric')
  await fu.close()
})

test('a Buffer path names the file byte for byte, as in node:fs (a name that is not UTF-8)', async (t) => {
  const dir = tmp()
  await disk().mkdir(dir)
  const name = Buffer.concat([Buffer.from(`${dir}/`), Buffer.from([0x61, 0xff, 0xfe, 0x62])])
  await disk().writeFile(name, 'bytes')
  const fh = await open(name, 'r')
  t.is((await fh.read(Buffer.alloc(5), 0, 5, 0)).buffer.toString(), 'bytes')
  await fh.close()
  // The same bytes in a Uint8Array that is not a Buffer.
  const u8 = new Uint8Array(name.length + 2).subarray(1, name.length + 1)
  u8.set(name)
  const fu = await open(u8 as Buffer, 'r+')
  await fu.write('BYTES', 0)
  await fu.close()
  t.is((await disk().readText(name)), 'BYTES')
  // The name decoded (U+FFFD for the bad bytes) is another name: not found,
  // on both sides, with the same message.
  const lossy = name.toString('utf8')
  const ours = await rejection(t, open(lossy, 'r'))
  const theirs = await rejection(t, fs.promises.open(lossy, 'r'))
  t.is(props(ours).code, 'ENOENT')
  t.is((ours as Error).message, (theirs as Error).message)
  // ringline's rm takes the tree away with the name as it is, as node's
  // does; and a directory named by bytes too.
  const sub = Buffer.concat([name, Buffer.from('-dir')])
  await disk().mkdir(sub)
  await disk().writeFile(Buffer.concat([sub, Buffer.from('/'), Buffer.from([0xc3, 0x28])]), 'x')
  await rm(dir, { recursive: true })
  t.is(props(await rejection(t, stat(dir))).code, 'ENOENT')
})

test('file: URLs and URL-like objects as node:fs takes them, and its errors for the others', async (t) => {
  const p = tmp()
  await disk().writeFile(p, 'url')
  const like = { href: pathToFileURL(p).href, protocol: 'file:', hostname: '', pathname: pathToFileURL(p).pathname }
  const fh = await open(like as unknown as URL, 'r')
  t.is((await fh.read(Buffer.alloc(3), 0, 3, 0)).buffer.toString(), 'url')
  await fh.close()
  for (const bad of [new URL('http://example.com/x'), new URL('file://host/x'), new URL('file:///tmp/%2f')]) {
    const ours = await rejection(t, open(bad))
    const theirs = await rejection(t, fs.promises.open(bad))
    t.is(props(ours).code, props(theirs).code, bad.href)
    t.is((ours as Error).message, (theirs as Error).message, bad.href)
    t.is((ours as Error).name, (theirs as Error).name, bad.href)
  }
})

test('open applies mode (number and octal string) to created files', async (t) => {
  const p = tmp()
  const fh = await open(p, 'wx', 0o600)
  await fh.close()
  t.is((await disk().stat(p)).mode & 0o777, 0o600)
  const q = tmp()
  const fh2 = await open(q, 'w', '640')
  await fh2.close()
  t.is((await disk().stat(q)).mode & 0o777, 0o640)
  const r = tmp()
  const fh3 = await open(r, 'w', 0o400)
  await fh3.close()
  t.is((await disk().stat(r)).mode & 0o777, 0o400)
  // mode is only used when the file is created
  const fh4 = await open(p, 'r', 0o777)
  await fh4.close()
  t.is((await disk().stat(p)).mode & 0o777, 0o600)
})

// ---------------------------------------------------------------- read forms

test('read(buffer, offset, length, position) fills the given range only', async (t) => {
  const p = tmp()
  const data = await disk().randomFile(p, 1000)
  const fh = await open(p)
  const buf = Buffer.alloc(100, 0xee)
  const { bytesRead, buffer } = await fh.read(buf, 10, 50, 200)
  t.is(bytesRead, 50)
  t.is(buffer, buf, 'resolves with the same buffer object')
  sameBytes(t, buf.subarray(10, 60), data.subarray(200, 250))
  t.true(buf.subarray(0, 10).every((b) => b === 0xee), 'bytes before offset untouched')
  t.true(buf.subarray(60).every((b) => b === 0xee), 'bytes after offset+length untouched')
  // bigint position
  const r2 = await fh.read(Buffer.alloc(8), 0, 8, 992n)
  t.is(r2.bytesRead, 8)
  sameBytes(t, r2.buffer, data.subarray(992, 1000))
  // offset and length default: offset 0, the rest of the buffer
  const r3 = await fh.read(Buffer.alloc(16), null, null, 16)
  t.is(r3.bytesRead, 16)
  sameBytes(t, r3.buffer, data.subarray(16, 32))
  await fh.close()
})

test('read(buffer, options) honours offset, length and position', async (t) => {
  const p = tmp()
  const data = await disk().randomFile(p, 4096)
  const fh = await open(p)
  const buf = Buffer.alloc(64)
  const { bytesRead, buffer } = await fh.read(buf, { offset: 8, length: 32, position: 1000 })
  t.is(bytesRead, 32)
  t.is(buffer, buf)
  sameBytes(t, buf.subarray(8, 40), data.subarray(1000, 1032))
  t.true(buf.subarray(0, 8).every((b) => b === 0))
  t.true(buf.subarray(40).every((b) => b === 0))
  // typed array target
  const u32 = new Uint32Array(4)
  const r = await fh.read(u32, { position: 0 })
  t.is(r.bytesRead, 16)
  t.is(r.buffer, u32)
  sameBytes(t, Buffer.from(u32.buffer), data.subarray(0, 16))
  await fh.close()
})

test('read(options) and read() use a default 16 KiB buffer', async (t) => {
  const p = tmp()
  const data = await disk().randomFile(p, 40000)
  const fh = await open(p)
  const r = await fh.read()
  t.true(Buffer.isBuffer(r.buffer))
  t.is(r.buffer.length, 16384)
  t.is(r.bytesRead, 16384)
  sameBytes(t, r.buffer, data.subarray(0, 16384))
  // read() without position continues at the current file position
  const r2 = await fh.read()
  t.is(r2.bytesRead, 16384)
  sameBytes(t, r2.buffer, data.subarray(16384, 32768))
  const r3 = await fh.read({ position: 35000 })
  t.is(r3.buffer.length, 16384)
  t.is(r3.bytesRead, 5000)
  sameBytes(t, r3.buffer.subarray(0, 5000), data.subarray(35000))
  const own = Buffer.alloc(100)
  const r4 = await fh.read({ buffer: own, offset: 10, length: 20, position: 7 })
  t.is(r4.buffer, own)
  t.is(r4.bytesRead, 20)
  sameBytes(t, own.subarray(10, 30), data.subarray(7, 27))
  const r5 = await fh.read({ buffer: own })
  t.is(r5.bytesRead, 100, 'continues at the current position (32768)')
  sameBytes(t, own, data.subarray(32768, 32868))
  await fh.close()
})

// ---------------------------------------------------------------- write forms

test('write(buffer, offset, length, position) and write(buffer, options)', async (t) => {
  const p = tmp()
  await disk().writeFile(p, Buffer.alloc(64, 0x2e))
  const fh = await open(p, 'r+')
  const src = Buffer.from('0123456789')
  const w = await fh.write(src, 2, 5, 10)
  t.is(w.bytesWritten, 5)
  t.is(w.buffer, src)
  const w2 = await fh.write(src, { offset: 7, length: 3, position: 40 })
  t.is(w2.bytesWritten, 3)
  t.is(w2.buffer, src)
  const u16 = new Uint16Array([0x4241, 0x4443])
  const w3 = await fh.write(u16, { position: 50 })
  t.is(w3.bytesWritten, 4)
  t.is(w3.buffer, u16)
  await fh.close()
  const out = (await disk().readFile(p))
  t.is(out.length, 64)
  t.is(out.subarray(10, 15).toString(), '23456')
  t.is(out.subarray(40, 43).toString(), '789')
  t.is(out.subarray(50, 54).toString(), 'ABCD')
  t.is(out.subarray(0, 10).toString(), '..........')
})

test('write(string, position, encoding) encodes and returns the string', async (t) => {
  const p = tmp()
  const fh = await open(p, 'w+')
  const w = await fh.write('héllo', 0)
  t.is(w.bytesWritten, 6, 'utf8 by default: é is two bytes')
  t.is(w.buffer, 'héllo')
  const w2 = await fh.write('deadbeef', 6, 'hex')
  t.is(w2.bytesWritten, 4)
  t.is(w2.buffer, 'deadbeef')
  const w3 = await fh.write('é', 10, 'latin1')
  t.is(w3.bytesWritten, 1)
  const w4 = await fh.write('', 11)
  t.is(w4.bytesWritten, 0)
  await fh.close()
  const out = (await disk().readFile(p))
  sameBytes(t, out, Buffer.concat([Buffer.from('héllo'), Buffer.from('deadbeef', 'hex'), Buffer.from([0xe9])]))
})

test('position null / -1 / omitted uses and advances the current file position', async (t) => {
  const p = tmp()
  const fh = await open(p, 'w+')
  await fh.write('abc')
  await fh.write(Buffer.from('def'), 0, 3, -1)
  await fh.write(Buffer.from('ghi'), { position: null })
  await fh.write('jkl', null)
  // explicit positions do not move the current position
  await fh.write('ZZ', 100)
  await fh.write('mno', -1)
  await fh.truncate(15)
  t.is((await disk().readText(p)), 'abcdefghijklmno')
  // reading at the current position: it is at the end (15) now
  const atEnd = await fh.read(Buffer.alloc(4), 0, 4, null)
  t.is(atEnd.bytesRead, 0)
  await fh.close()

  const fr = await open(p, 'r')
  const b = Buffer.alloc(4)
  t.is((await fr.read(b, 0, 4, null)).bytesRead, 4)
  t.is(b.toString(), 'abcd')
  t.is((await fr.read(b, 0, 4, -1)).bytesRead, 4)
  t.is(b.toString(), 'efgh')
  t.is((await fr.read(b, 0, 4, 0)).bytesRead, 4, 'positional read')
  t.is(b.toString(), 'abcd')
  t.is((await fr.read(b, { position: null })).bytesRead, 4)
  t.is(b.toString(), 'ijkl', 'the positional read did not move the file position')
  const last = await fr.read(b)
  t.is(last.bytesRead, 3)
  t.is(b.subarray(0, 3).toString(), 'mno')
  t.is((await fr.read(b)).bytesRead, 0)
  await fr.close()
})

test('reads at and after EOF resolve with bytesRead 0', async (t) => {
  const p = tmp()
  await disk().randomFile(p, 100)
  const fh = await open(p)
  const buf = Buffer.alloc(10, 7)
  t.is((await fh.read(buf, 0, 10, 100)).bytesRead, 0)
  t.is((await fh.read(buf, 0, 10, 5000)).bytesRead, 0)
  t.is((await fh.read(buf, 0, 10, Number.MAX_SAFE_INTEGER - 10)).bytesRead, 0)
  t.true(buf.every((b) => b === 7), 'buffer untouched')
  const partial = await fh.read(buf, 0, 10, 95)
  t.is(partial.bytesRead, 5)
  const rv = await fh.readv([Buffer.alloc(4), Buffer.alloc(4)], 200)
  t.is(rv.bytesRead, 0)
  t.deepEqual(await fh.readMany([{ buffer: Buffer.alloc(4), position: 100 }]), [0])
  await fh.close()
  const empty = tmp()
  await disk().writeFile(empty, '')
  const fe = await open(empty)
  const r = await fe.read()
  t.is(r.bytesRead, 0)
  await fe.close()
})

// ---------------------------------------------------------------- vectored

test('writev and readv round-trip several buffers including typed-array and DataView views', async (t) => {
  const p = tmp()
  const fh = await open(p, 'w+')
  const a = Buffer.from('head:')
  const b = new Uint16Array([0x3231, 0x3433, 0x3635])
  const backing = new ArrayBuffer(16)
  new Uint8Array(backing).set(Buffer.from('0123456789abcdef'))
  const c = new DataView(backing, 4, 6) // '456789'
  const d = randomBytes(3000)
  const e = new Uint8Array(Buffer.from('XYZXYZ')).subarray(1, 4) // 'YZX'
  const bufs = [a, b, c, d, e]
  const total = 5 + 6 + 6 + 3000 + 3
  const w = await fh.writev(bufs, 10)
  t.is(w.bytesWritten, total)
  t.is(w.buffers, bufs)
  const expected = Buffer.concat([Buffer.alloc(10), Buffer.from('head:123456456789'), d, Buffer.from('YZX')])
  sameBytes(t, (await disk().readFile(p)), expected)

  const ra = Buffer.alloc(5)
  const rb = new Uint16Array(3)
  const rc = new DataView(new ArrayBuffer(10), 2, 6)
  const rd = Buffer.alloc(3000)
  const re = new Uint8Array(3)
  const rbufs = [ra, rb, rc, rd, re]
  const r = await fh.readv(rbufs, 10)
  t.is(r.bytesRead, total)
  t.is(r.buffers, rbufs)
  t.is(ra.toString(), 'head:')
  t.deepEqual(Array.from(rb), [0x3231, 0x3433, 0x3635])
  t.is(Buffer.from(rc.buffer, rc.byteOffset, rc.byteLength).toString(), '456789')
  t.deepEqual(new Uint8Array(rc.buffer, 0, 2), new Uint8Array(2), 'bytes outside the DataView untouched')
  sameBytes(t, rd, d)
  t.is(Buffer.from(re).toString(), 'YZX')

  // current position: writev/readv without position advance it
  await fh.writev([Buffer.from('ab'), Buffer.from('cd')])
  await fh.writev([Buffer.from('ef')], null)
  t.is((await disk().readFile(p)).subarray(0, 6).toString(), 'abcdef')
  // short readv at EOF fills what there is, in order
  const s1 = Buffer.alloc(2)
  const s2 = Buffer.alloc(10)
  const short = await fh.readv([s1, s2], expected.length - 5)
  t.is(short.bytesRead, 5)
  sameBytes(t, s1, expected.subarray(expected.length - 5, expected.length - 3))
  sameBytes(t, s2.subarray(0, 3), expected.subarray(expected.length - 3))
  await fh.close()
})

// ---------------------------------------------------------------- readMany

test('readMany returns byte counts in request order with mixed aligned and plain buffers', async (t) => {
  const p = tmp()
  const size = 64 * 1024 + 100
  const ring = new Ring()
  const data = await disk(ring).randomFile(p, size)
  const fh = await ring.open(p)
  const aligned = ring.allocAligned(8192)
  const plain = Buffer.alloc(5000)
  const u8 = new Uint8Array(300)
  const requests = [
    { buffer: aligned, position: 4096, length: 4096 },
    { buffer: plain, position: 0 },
    { buffer: u8, position: 60000, offset: 100, length: 200 },
    { buffer: aligned, offset: 4096, length: 4096, position: 32768 },
    { buffer: Buffer.alloc(1000), position: size - 10 },
    { buffer: Buffer.alloc(10), position: size + 5 },
    { buffer: Buffer.alloc(0), position: 0 },
  ]
  const before = ring.stats().submitted
  const counts = await fh.readMany(requests)
  t.deepEqual(counts, [4096, 5000, 200, 4096, 10, 0, 0])
  t.true(ring.stats().submitted > before)
  sameBytes(t, aligned.subarray(0, 4096), data.subarray(4096, 8192))
  sameBytes(t, aligned.subarray(4096), data.subarray(32768, 32768 + 4096))
  sameBytes(t, plain, data.subarray(0, 5000))
  sameBytes(t, Buffer.from(u8.subarray(100, 300)), data.subarray(60000, 60200))
  t.true(u8.subarray(0, 100).every((x) => x === 0))
  sameBytes(t, requests[4].buffer.subarray(0, 10), data.subarray(size - 10))

  // many requests in one batch keep their order
  const many = Array.from({ length: 100 }, (_, i) => ({ buffer: Buffer.alloc(64), position: i * 600 }))
  const counts2 = await fh.readMany(many)
  t.is(counts2.length, 100)
  t.true(counts2.every((c) => c === 64))
  many.forEach((r, i) => sameBytes(t, r.buffer, data.subarray(i * 600, i * 600 + 64)))

  const s = ring.stats().submitted
  t.deepEqual(await fh.readMany([]), [])
  t.is(ring.stats().submitted, s, 'an empty batch submits nothing')
  await fh.close()
  await ring.close()
})

test('readMany with more requests than maxInFlight settles (backlog)', async (t) => {
  const p = tmp()
  const ring = new Ring({ entries: 16, maxInFlight: 8 })
  const data = await disk(ring).randomFile(p, 64 * 1024)
  t.teardown(async () => {
    await outcome(ring.close())
  })
  const fh = await ring.open(p)
  for (const n of [8, 9, 16, 17, 64, 200]) {
    const bufs = Array.from({ length: n }, () => Buffer.alloc(256))
    const o = await outcome(fh.readMany(bufs.map((buffer, i) => ({ buffer, position: (i * 256) % 65536 }))))
    t.true(o.resolved, `readMany of ${n} requests on a ring with maxInFlight 8 resolves (inFlight ${ring.stats().inFlight}, queued ${ring.stats().queued})`)
    t.is(o.value?.length, n)
    t.true(o.value?.every((c) => c === 256))
    bufs.forEach((b, i) => sameBytes(t, b, data.subarray((i * 256) % 65536, ((i * 256) % 65536) + 256), `request ${i} of ${n}`))
  }
  await fh.close()
})

test('readMany rejects with the error of a failing read once all settled', async (t) => {
  const p = tmp()
  await disk().randomFile(p, 100)
  const fh = await open(p, 'w') // write-only: reads fail with EBADF
  const e = await rejection(t, fh.readMany([{ buffer: Buffer.alloc(4), position: 0 }, { buffer: Buffer.alloc(4), position: 4 }]))
  assertSystemError(t, e, { code: 'EBADF', errno: -9, syscall: 'read' })
  await fh.close()
})

// ---------------------------------------------------------------- append

for (const flags of ['a', 'r+'] as const) {
  for (const sync of ['data', 'full', undefined, 'none', true, false] as const) {
    test(`append on a file opened "${flags}" with sync ${String(sync)} lands at the end`, async (t) => {
      const p = tmp()
      await disk().writeFile(p, 'start\n')
      const fh = await open(p, flags)
      const opts = sync === undefined ? undefined : { sync }
      const r1 = await fh.append('one\n', opts)
      t.is(r1.bytesWritten, 4)
      t.is(r1.buffer, 'one\n')
      const data = Buffer.from('two\n')
      const r2 = await fh.append(data, opts)
      t.is(r2.bytesWritten, 4)
      t.is(r2.buffer, data)
      const r3 = await fh.append(new Uint8Array(Buffer.from('three\n')), opts)
      t.is(r3.bytesWritten, 6)
      t.is((await disk().readText(p)), 'start\none\ntwo\nthree\n')
      await fh.close()
    })
  }

  test(`concurrent appends on a file opened "${flags}" land in submission order`, async (t) => {
    const p = tmp()
    await disk().writeFile(p, 'header\n')
    const fh = await open(p, flags)
    const records: string[] = []
    const promises: Promise<unknown>[] = []
    for (let i = 0; i < 200; i++) {
      const rec = `record ${i} ${'x'.repeat(i % 37)}\n`
      records.push(rec)
      const sync = i % 3 === 0 ? 'data' : i % 3 === 1 ? 'full' : 'none'
      promises.push(fh.append(i % 2 === 0 ? rec : Buffer.from(rec), { sync }))
    }
    const results = await Promise.all(promises)
    t.is(results.length, 200)
    t.is((await disk().readText(p)), 'header\n' + records.join(''))
    await fh.close()
  })
}

test('append on "r+" still lands at the end after the file grew through a positional write', async (t) => {
  const p = tmp()
  await disk().writeFile(p, 'AAAA')
  const fh = await open(p, 'r+')
  await fh.append('BB')
  t.is((await disk().readText(p)), 'AAAABB')
  await fh.write('CCCC', 6) // extends the file to 10 bytes
  await fh.append('DD')
  t.is((await disk().readText(p)), 'AAAABBCCCCDD')
  await fh.close()
})

test('append on "r+" lands at the end after truncate', async (t) => {
  const p = tmp()
  await disk().writeFile(p, '0123456789')
  const fh = await open(p, 'r+')
  await fh.append('ab')
  await fh.truncate(3)
  await fh.append('cd')
  await fh.close()
  t.is((await disk().readText(p)), '012cd')
})

test('append on "r+" lands at the end after another writer grew the file', async (t) => {
  const p = tmp()
  await disk().writeFile(p, '0123')
  const fh = await open(p, 'r+')
  await fh.append('ab')
  await disk().appendFile(p, 'EFG')
  await fh.append('hi')
  await fh.close()
  t.is((await disk().readText(p)), '0123abEFGhi')
})

test('datasync and sync resolve with undefined and data is on disk', async (t) => {
  const p = tmp()
  const fh = await open(p, 'w')
  await fh.write('durable', 0)
  t.is(await fh.datasync(), undefined)
  t.is(await fh.sync(), undefined)
  t.is((await disk().readText(p)), 'durable')
  await fh.close()
})

// ---------------------------------------------------------------- stat, truncate, fd, close

test('stat matches fs.statSync', async (t) => {
  const p = tmp()
  await disk().randomFile(p, 12345)
  await disk().chmod(p, 0o640)
  const fh = await open(p)
  const st = await fh.stat()
  const ns = (await disk().stat(p))
  t.is(st.size, 12345)
  t.is(st.size, ns.size)
  t.is(st.ino, ns.ino)
  t.is(st.dev, ns.dev)
  t.is(st.mode, ns.mode)
  t.is(st.mode & 0o777, 0o640)
  t.is(st.nlink, ns.nlink)
  t.is(st.uid, ns.uid)
  t.is(st.gid, ns.gid)
  t.is(st.blocks, ns.blocks)
  t.is(st.blksize, ns.blksize)
  t.is(st.mtime.getTime(), ns.mtime.getTime())
  t.is(Math.floor(st.mtimeMs), Math.floor(ns.mtimeMs))
  t.true(st.isFile())
  t.false(st.isDirectory())
  t.false(st.isFIFO())
  // A sim descriptor is a number of the sim's, not the process's.
  if (!SIM) t.is(fs.fstatSync(fh.fd).ino, ns.ino, 'fh.fd is the descriptor of this file')
  await fh.close()

  const d = await open(dir)
  const ds = await d.stat()
  t.true(ds.isDirectory())
  t.false(ds.isFile())
  await d.close()
})

test('truncate shrinks, extends with zeros, and treats negative lengths as 0', async (t) => {
  const p = tmp()
  await disk().writeFile(p, 'abcdefghij')
  const fh = await open(p, 'r+')
  t.is(await fh.truncate(4), undefined)
  t.is((await disk().readText(p)), 'abcd')
  await fh.truncate(8)
  sameBytes(t, (await disk().readFile(p)), Buffer.concat([Buffer.from('abcd'), Buffer.alloc(4)]))
  t.is((await fh.stat()).size, 8)
  await fh.truncate(-5)
  t.is((await disk().stat(p)).size, 0)
  await fh.write('xyz', 0)
  await fh.truncate()
  t.is((await disk().stat(p)).size, 0, 'truncate() defaults to 0')
  await fh.close()
  const ro = await open(p, 'r')
  const e = await rejection(t, ro.truncate(1))
  t.true(['EINVAL', 'EBADF'].includes(String(props(e).code)), `read-only truncate fails: ${String(props(e).code)}`)
  t.is(props(e).syscall, 'ftruncate')
  await ro.close()
})

test('close() waits for the ops called before it, as node:fs/promises does: the writes land, then the file closes', async (t) => {
  // The example of the issue, side by side with node:fs/promises (node on
  // the real disk: not on sim, whose disk node cannot see).
  for (const impl of SIM ? (['ringline'] as const) : (['node', 'ringline'] as const)) {
    const p = tmp()
    const fh: Pick<FileHandle, 'write' | 'close'> = impl === 'node' ? ((await fs.promises.open(p, 'w+')) as unknown as FileHandle) : await open(p, 'w+')
    const w = fh.write(Buffer.from('hello'), 0, 5, 0)
    const closing = fh.close()
    t.is((await w).bytesWritten, 5, impl)
    t.is(await closing, undefined, impl)
    t.is((await disk().readText(p)), 'hello', `${impl}: the write called before close() landed`)
  }
  // Ops still queued when close() is called (beyond maxInFlight, behind an
  // append, waiting for bounce memory) run too, in order.
  const ring = new Ring({ maxInFlight: 4 })
  try {
    const p = tmp()
    const fh = await ring.open(p, 'w+')
    const big = 12 << 20 // three of them pass the 32 MiB bounce budget
    const ops: Promise<unknown>[] = []
    for (let i = 0; i < 4; i++) ops.push(fh.write(Buffer.alloc(big, 0x61 + i), 0, big, i * big))
    for (let i = 0; i < 32; i++) ops.push(fh.append(`record ${i}\n`, { sync: i % 8 === 7 ? 'data' : 'none' }))
    ops.push(fh.truncate(4 * big + 32 * 10))
    const read = fh.read(Buffer.alloc(4), 0, 4, 0)
    const closing = fh.close()
    const late = await outcome(fh.write('late', 0))
    t.false(late.resolved, 'an op called after close() is refused')
    t.is(props(late.error).code, 'EBADF')
    const settled = await Promise.allSettled(ops)
    t.deepEqual(settled.filter((r) => r.status === 'rejected'), [], 'every op called before close() resolved')
    t.is((await read).bytesRead, 4)
    t.is(await closing, undefined)
    t.is(ring.stats().openFiles, 0)
    const got = await disk(ring).readFile(p)
    t.is(got.length, 4 * big + 32 * 10)
    for (let i = 0; i < 4; i++) t.is(got[i * big + big - 1], 0x61 + i, `write ${i} landed`)
    const tail = got.subarray(4 * big).toString()
    t.is(tail.slice(0, 20), 'record 0\nrecord 1\nre', 'the appends landed at the end, in call order')
  } finally {
    await ring.close()
  }
})

test('fd is a number while open and -1 after close; close twice returns the same promise', async (t) => {
  const p = tmp()
  await disk().writeFile(p, 'x')
  const fh = await open(p)
  const fd = fh.fd
  t.is(typeof fd, 'number')
  t.true(Number.isInteger(fd) && fd >= 0)
  const c1 = fh.close()
  const c2 = fh.close()
  t.is(c1, c2)
  t.is(fh.fd, -1)
  t.is(await c1, undefined)
  t.is(fh.close(), c1)
  t.is(fh.fd, -1)
  // The descriptor itself is closed: it is invalid, or (reused by another
  // open elsewhere in this process) refers to some other file. (A sim
  // descriptor is the sim's own: the process has nothing to look at.)
  if (SIM) return
  let stillOurs = false
  try {
    stillOurs = fs.fstatSync(fd).ino === fs.statSync(p).ino
  } catch (e) {
    t.is(props(e).code, 'EBADF')
  }
  t.false(stillOurs, 'the descriptor no longer refers to the closed file')
})

// ---------------------------------------------------------------- ring options and stats

test('a small ring (entries 8, maxInFlight 4) completes 200 concurrent reads correctly', async (t) => {
  const p = tmp()
  const ring = new Ring({ entries: 8, maxInFlight: 4 })
  const st0 = ring.stats()
  t.is(st0.entries, 8)
  t.is(st0.maxInFlight, 4)
  const data = await disk(ring).randomFile(p, 200 * 512)
  const base = ring.stats().submitted // the fixture's ops: on sim they went through this ring
  const fh = await ring.open(p)
  const bufs = Array.from({ length: 200 }, () => Buffer.alloc(512))
  const order = Array.from({ length: 200 }, (_, i) => (i * 73) % 200)
  const results = await Promise.all(order.map((i) => fh.read(bufs[i], 0, 512, i * 512)))
  t.is(results.length, 200)
  for (let k = 0; k < 200; k++) {
    t.is(results[k].bytesRead, 512)
    t.is(results[k].buffer, bufs[order[k]])
  }
  for (let i = 0; i < 200; i++) sameBytes(t, bufs[i], data.subarray(i * 512, (i + 1) * 512))
  const st = ring.stats()
  t.true(st.submitted >= base + 201)
  t.is(st.inFlight, 0)
  t.is(st.queued, 0)
  // a second wave mixing reads, writes and readv
  const out = tmp()
  const fw = await ring.open(out, 'w+')
  const writes = Array.from({ length: 100 }, (_, i) => fw.write(data.subarray(i * 512, (i + 1) * 512), 0, 512, i * 512))
  const w = await Promise.all(writes)
  t.true(w.every((r) => r.bytesWritten === 512))
  sameBytes(t, await disk(ring).readFile(out), data.subarray(0, 100 * 512))
  await fh.close()
  await fw.close()
  await ring.close()
})

test('O_DIRECT reads one at a time each get their bytes; in thread mode on io_uring the loop spins for them (busyPoll), and busyPoll: 0 never does', async (t) => {
  const p = tmp()
  const pages = 64
  const setup = new Ring()
  const data = await disk(setup).randomFile(p, pages * 4096)
  await setup.close()
  // 10 ms: any read of a working disk ends within one spin.
  for (const busyPoll of [10000, 0]) {
    const ring = new Ring({ busyPoll })
    if (SIM) await disk(ring).writeFile(p, data) // each sim ring has its own disk
    const fh = await ring.open(p, 'r', undefined, { direct: true })
    const buf = ring.allocAligned(4096)
    let wrong = 0
    for (let i = 0; i < 300; i++) {
      const page = (i * 37) % pages
      const { bytesRead } = await fh.read(buf, 0, 4096, page * 4096)
      if (bytesRead !== 4096 || !buf.equals(data.subarray(page * 4096, (page + 1) * 4096))) wrong++
    }
    t.is(wrong, 0, `busyPoll ${busyPoll}: every read got its page`)
    const spun = ring.stats().busyPolls
    if (busyPoll > 0 && ring.backend === 'io_uring' && ring.completion === 'thread') t.true(spun > 0, `busyPoll ${busyPoll}: ${spun} spins caught a read`)
    else t.is(spun, 0, `busyPoll ${busyPoll}, ${ring.backend}, ${ring.completion}: no spin`)
    await fh.close()
    await ring.close()
  }
})

test('reads kept 128 deep each get their own bytes; in thread mode on io_uring the completion thread submits them', async (t) => {
  const p = tmp()
  const ring = new Ring({ completion: 'thread' })
  const pages = 256
  const data = await disk(ring).randomFile(p, pages * 4096)
  const fh = await ring.open(p)
  let next = 0
  let wrong = 0
  // 128 readers, each reading pages one after another: the JS thread
  // queues a batch's worth of reads at every flush, 128 in flight.
  const reader = async (): Promise<void> => {
    for (let i = next++; i < 6000; i = next++) {
      const page = (i * 97) % pages
      const { bytesRead, buffer } = await fh.read(Buffer.alloc(4096), 0, 4096, page * 4096)
      if (bytesRead !== 4096 || !buffer.equals(data.subarray(page * 4096, (page + 1) * 4096))) wrong++
    }
  }
  await Promise.all(Array.from({ length: 128 }, reader))
  t.is(wrong, 0, 'every read got its page')
  const s = ring.stats()
  t.is(s.inFlight, 0)
  if (ring.backend === 'io_uring') t.true(s.handedOff > 0, `handed off ${s.handedOff}`)
  else t.is(s.handedOff, 0, 'only io_uring hands submitting over')
  await fh.close()
  await ring.close()
  // Loop mode has no completion thread to hand to.
  const loop = new Ring({ completion: 'loop' })
  if (SIM) await disk(loop).writeFile(p, data) // each sim ring has its own disk
  const fl = await loop.open(p)
  const got = await Promise.all(Array.from({ length: 128 }, (_, i) => fl.read(Buffer.alloc(4096), 0, 4096, (i % pages) * 4096)))
  t.true(got.every((r, i) => r.buffer.equals(data.subarray((i % pages) * 4096, (i % pages + 1) * 4096))))
  t.is(loop.stats().handedOff, 0)
  await fl.close()
  await loop.close()
})

test('ring.stats counts submitted and completed ops and is at rest afterwards', async (t) => {
  const p = tmp()
  const ring = new Ring()
  t.is(ring.backend, BACKEND)
  t.is(ring.fallbackReason, null)
  const s0 = ring.stats()
  t.is(s0.backend, BACKEND)
  if (BACKEND === 'io_uring') t.deepEqual(s0.degradations, [])
  else if (BACKEND === 'sim') t.true(s0.degradations.some((d) => d.includes('in-memory disk')), 'sim says it is one')
  else t.true(s0.degradations.length >= 4, 'mio names each degradation')
  t.is(s0.submitted, 0)
  t.is(s0.completed, 0)
  t.is(s0.inFlight, 0)
  t.is(s0.openFiles, 0)
  t.is(s0.registeredBuffers, 0)
  const data = await disk(ring).randomFile(p, 64 * 1024)
  // The fixture's ops: none on the real engines (node:fs wrote it), on sim
  // they went through this ring.
  const base = ring.stats().submitted
  if (!SIM) t.is(base, 0)
  t.is(ring.stats().completed, base)
  const fh = await ring.open(p, 'r+')
  const s1 = ring.stats()
  t.is(s1.submitted, base + 1)
  t.is(s1.completed, base + 1)
  t.is(s1.openFiles, 1)
  await Promise.all([0, 1, 2].map((i) => fh.read(Buffer.alloc(100), 0, 100, i * 100)))
  const s2 = ring.stats()
  t.is(s2.submitted, base + 4)
  t.is(s2.completed, base + 4)
  t.is(s2.inFlight, 0)
  t.is(s2.queued, 0)

  const aligned = ring.allocAligned(16384)
  const fixed0 = ring.stats().fixedBufferOps
  const bounced0 = ring.stats().bounced
  // Two at once: a lone read of cached data may be done during its call
  // (a plain preadv2, no fixed buffer); the other goes to the kernel.
  const rs = await Promise.all([fh.read(aligned, 0, 8192, 0), fh.read(aligned, 8192, 8192, 8192)])
  t.deepEqual(rs.map((r) => r.bytesRead), [8192, 8192])
  sameBytes(t, aligned, data.subarray(0, 16384))
  t.is(ring.stats().bounced, bounced0, 'reads into allocAligned memory go straight into it')
  if (BACKEND === 'io_uring') {
    t.true(ring.stats().registeredBuffers > 0, 'allocAligned registers with the kernel by default')
    t.true(ring.stats().fixedBufferOps > fixed0, 'reads into registered memory use fixed buffers')
  } else {
    t.is(ring.stats().registeredBuffers, 0, `${BACKEND} registers nothing`)
    t.is(ring.stats().unregisteredBuffers, 1, 'the block is plain aligned memory')
    // (sim's degradations do not name it: see __test__/SIM-SKIPS.md.)
    if (BACKEND === 'mio') t.true(ring.stats().degradations.some((d) => d.includes('registered buffers')))
  }

  await fh.close()
  t.is(ring.stats().openFiles, 0)
  await ring.close()
  t.true(ring.closed)
})

test('ring.stats at rest: completed equals submitted, also after linked write+sync appends', async (t) => {
  const p = tmp()
  const ring = new Ring()
  await disk(ring).randomFile(p, 4096)
  const fh = await ring.open(p, 'r+')
  await fh.append('tail', { sync: 'data' })
  await fh.append('tail', { sync: 'full' })
  await fh.sync()
  await fh.datasync()
  await fh.stat()
  await fh.truncate(4096)
  const s = ring.stats()
  t.is(s.inFlight, 0)
  t.is(s.queued, 0)
  t.is(s.completed, s.submitted, `at rest every submitted op has completed (submitted ${s.submitted}, completed ${s.completed})`)
  await fh.close()
  await ring.close()
})

test('a ring opens and closes more files than it has registered-file slots', async (t) => {
  const p = tmp()
  const ring = new Ring()
  await disk(ring).writeFile(p, 'slot')
  const buf = Buffer.alloc(4)
  for (let i = 0; i < 1100; i++) {
    const fh = await ring.open(p)
    const r = await fh.read(buf, 0, 4, 0)
    if (r.bytesRead !== 4 || buf.toString() !== 'slot') {
      t.fail(`open ${i}: read ${r.bytesRead} bytes: ${buf.toString()}`)
      break
    }
    await fh.close()
  }
  const s = ring.stats()
  t.is(s.openFiles, 0)
  t.is(s.inFlight, 0)
  await ring.close()
})

test('reads one at a time (each done during its call when the page cache has it) and reads started together give the same bytes, 0 at the end, and count in stats', async (t) => {
  const p = tmp()
  const ring = new Ring()
  const data = await disk(ring).randomFile(p, 16 * 4096 + 100)
  const fh = await ring.open(p, 'r+')
  const before = ring.stats()
  // One at a time, each awaited: on io_uring a lone page-cache read is
  // done during fh.read (no completion to wait for).
  const one = Buffer.alloc(data.length)
  for (let off = 0; off < data.length; off += 4096) {
    const r = await fh.read(one, off, Math.min(4096, data.length - off), off)
    t.is(r.bytesRead, Math.min(4096, data.length - off))
    t.is(r.buffer, one)
  }
  t.true(one.equals(data))
  // Past the end, and one that ends there.
  t.is((await fh.read(Buffer.alloc(10), 0, 10, data.length)).bytesRead, 0)
  t.is((await fh.read(Buffer.alloc(4096), 0, 4096, data.length - 100)).bytesRead, 100)
  // Started together: the first may be done during its call, the others
  // go to the kernel together; every one settles with its own bytes.
  const bufs = Array.from({ length: 17 }, () => Buffer.alloc(4096))
  const rs = await Promise.all(bufs.map((b, i) => fh.read(b, 0, 4096, i * 4096)))
  t.deepEqual(rs.map((r) => r.bytesRead), [...Array.from({ length: 16 }, () => 4096), 100])
  t.true(Buffer.concat(bufs).subarray(0, data.length).equals(data))
  // A write awaited, then a lone read of what it wrote.
  await fh.write(Buffer.from('fresh bytes'), 0, 11, 5000)
  const back = Buffer.alloc(11)
  await fh.read(back, 0, 11, 5000)
  t.is(back.toString(), 'fresh bytes')
  const s = ring.stats()
  t.is(s.submitted - before.submitted, 17 + 2 + 17 + 2, 'every read and the write count as submitted')
  t.is(s.completed, s.submitted)
  t.is(s.inFlight, 0)
  await fh.close()
  await ring.close()
})

test('awaiting reads in a loop lets the event loop run (timers and setImmediate are not starved)', async (t) => {
  const p = tmp()
  await disk().randomFile(p, 65536)
  const fh = await open(p)
  const buf = Buffer.alloc(4096)
  let immediate = false
  let timer = false
  setImmediate(() => {
    immediate = true
  })
  const handle = setTimeout(() => {
    timer = true
  }, 0)
  // node:fs/promises lets both run after the first read; allow many more.
  let reads = 0
  while (reads < 2000 && !(immediate && timer)) {
    await fh.read(buf, 0, 4096, (reads * 4096) % 65536)
    reads++
  }
  clearTimeout(handle)
  t.true(immediate, `setImmediate ran while ${reads} awaited reads completed`)
  t.true(timer, `a 0 ms timer ran while ${reads} awaited reads completed`)
  await fh.close()
})

// ---------------------------------------------------------------- aligned buffers

test('allocAligned returns a zeroed Buffer at offset 0 of its own memory, usable for O_DIRECT zero-copy', async (t) => {
  for (const size of [1, 100, 4096, 65536, 1 << 20]) {
    const b = allocAligned(size)
    t.true(Buffer.isBuffer(b))
    t.is(b.length, size)
    t.is(b.byteOffset, 0)
    t.is(b.buffer.byteLength, size)
    t.true(b.every((x) => x === 0), 'zeroed')
  }
  const z = allocAligned(0)
  t.true(Buffer.isBuffer(z))
  t.is(z.length, 0)

  const p = tmp()
  const ring = new Ring()
  const data = await disk(ring).randomFile(p, 64 * 1024)
  const fh = await ring.open(p, 'r+', undefined, { direct: true })
  const al = fh.direct
  t.not(al, null)
  if (al === null) return
  t.true(al.offset > 0 && al.offset <= 4096 && 4096 % al.offset === 0, `offset alignment ${al.offset}`)
  t.true(al.memory > 0 && al.memory <= 4096 && 4096 % al.memory === 0, `memory alignment ${al.memory}`)
  const buf = ring.allocAligned(16384)
  const bounced0 = ring.stats().bounced
  const r = await fh.read(buf, 0, 16384, 8192)
  t.is(r.bytesRead, 16384)
  sameBytes(t, buf, data.subarray(8192, 8192 + 16384))
  // a 4096-aligned slice of aligned memory is aligned too
  const r2 = await fh.read(buf.subarray(4096, 8192), 0, 4096, 0)
  t.is(r2.bytesRead, 4096)
  sameBytes(t, buf.subarray(4096, 8192), data.subarray(0, 4096))
  t.is(ring.stats().bounced, bounced0, 'aligned memory is used directly, without a bounce copy')
  // O_DIRECT write from aligned memory
  buf.fill(0x5a)
  const w = await fh.write(buf, 0, 8192, 0)
  t.is(w.bytesWritten, 8192)
  await fh.close()
  sameBytes(t, (await disk(ring).readFile(p)).subarray(0, 8192), Buffer.alloc(8192, 0x5a))
  await ring.close()
})

// ---------------------------------------------------------------- interchange with node:fs

const SIZES = [1, 2, 511, 4095, 4096, 4097, 65536 + 3, 1 << 20, (8 << 20) - 1, 8 << 20]

test('data written by ringline reads back byte-exact through node:fs', async (t) => {
  const p = tmp()
  const fh = await open(p, 'w+')
  for (const size of SIZES) {
    const payload = randomBytes(size)
    await fh.truncate(0)
    let done = 0
    for (let i = 0; i < 64 && done < size; i++) {
      const { bytesWritten } = await fh.write(payload, done, size - done, done)
      t.true(bytesWritten > 0)
      done += bytesWritten
    }
    t.is(done, size)
    const back = (await disk().readFile(p))
    t.is(back.length, size)
    t.true(back.equals(payload), `size ${size}`)
  }
  await fh.close()
})

test('data written by node:fs reads back byte-exact through ringline (plain and aligned buffers)', async (t) => {
  const ring = new Ring()
  for (const size of SIZES) {
    const p = tmp()
    const payload = randomBytes(size)
    await disk(ring).writeFile(p, payload)
    const fh = await ring.open(p)
    const back = await readFully(fh, size + 10, 0)
    t.is(back.length, size)
    t.true(back.equals(payload), `size ${size}`)
    const aligned = ring.allocAligned(size)
    const r = await fh.read(aligned, 0, size, 0)
    t.is(r.bytesRead, size)
    t.true(aligned.equals(payload), `aligned, size ${size}`)
    await fh.close()
    await disk(ring).unlink(p)
  }
  await ring.close()
})

test('O_DIRECT round trip with aligned buffers of several sizes', async (t) => {
  const ring = new Ring()
  const p = tmp()
  const fh = await ring.open(p, 'w+', 0o644, { direct: true })
  for (const size of [4096, 8192, 1 << 20]) {
    const buf = ring.allocAligned(size)
    const payload = randomBytes(size)
    payload.copy(buf)
    const w = await fh.write(buf, 0, size, 4096)
    t.is(w.bytesWritten, size)
    t.true((await disk(ring).readFile(p)).subarray(4096, 4096 + size).equals(payload))
    const rb = ring.allocAligned(size)
    const r = await fh.read(rb, 0, size, 4096)
    t.is(r.bytesRead, size)
    t.true(rb.equals(payload))
  }
  await fh.close()
  await ring.close()
})

test('the default ring is the one open() uses', async (t) => {
  const r1 = defaultRing()
  t.is(defaultRing(), r1)
  const p = tmp()
  await disk().writeFile(p, 'abc')
  const fh = await open(p)
  t.true(r1.stats().openFiles >= 1)
  await fh.close()
  t.false(r1.closed)
})

test('backend option: mio on request whatever the default, its pool size named in stats, a bad RINGLINE_BACKEND refused', async (t) => {
  const ring = new Ring({ backend: 'mio', fileThreads: 2 })
  t.is(ring.backend, 'mio')
  t.is(ring.fallbackReason, null, 'asked for, not a fallback')
  t.true(ring.stats().degradations.some((d) => d.includes('up to 2 threads')))
  // A mio ring works on the real disk, whatever this run's engine (sim too).
  const real = makeTmpDir('files-mio')
  t.teardown(() => removeTmpDir(real))
  const p = uniquePath(real)
  const data = randomFile(p, 256 * 1024)
  const fh = await ring.open(p, 'r')
  // 8 reads in flight on a pool of at most 2 threads: all complete, in place.
  const bufs = Array.from({ length: 8 }, () => Buffer.alloc(32 * 1024))
  const rs = await Promise.all(bufs.map((b, i) => fh.read(b, 0, b.length, i * b.length)))
  rs.forEach((r, i) => {
    t.is(r.bytesRead, 32 * 1024)
    sameBytes(t, bufs[i], data.subarray(i * 32 * 1024, (i + 1) * 32 * 1024))
  })
  await fh.close()
  await ring.close()
  const saved = process.env.RINGLINE_BACKEND
  process.env.RINGLINE_BACKEND = 'epoll'
  try {
    const e = t.throws(() => new Ring())
    t.is(props(e).code, 'ERR_INVALID_ARG_VALUE')
    t.regex(String(e?.message), /RINGLINE_BACKEND/)
  } finally {
    if (saved === undefined) delete process.env.RINGLINE_BACKEND
    else process.env.RINGLINE_BACKEND = saved
  }
})
