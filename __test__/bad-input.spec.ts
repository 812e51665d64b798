// DESIGN.md invariant 5: bad input gets Node's error classes and codes
// before anything is submitted; promise-returning functions reject (never
// throw synchronously), synchronous functions throw.

import test from 'ava'
import * as fs from 'node:fs'
import * as path from 'node:path'
import { open, allocAligned, defaultRing, Ring, type FileHandle, type ReadRequest, type AppendOptions, type RingOptions } from '../index'
import { BACKEND, problemsOf, makeTmpDir, outcome, props, removeTmpDir, repoRoot, run, tick, uniquePath, which } from './helpers'
import { SIM, disk, testDir } from './sim-setup'

/** Real, for node:fs's side of a comparison. */
const nodeDir = makeTmpDir('bad-input')
test.after.always(() => removeTmpDir(nodeDir))
/** The disk the rings under test see. */
const dir = testDir('bad-input')

type ErrorClass = typeof Error | typeof TypeError | typeof RangeError

interface Case {
  name: string
  /** 'async': must return a promise that rejects; 'sync': must throw. */
  mode: 'async' | 'sync'
  call: () => unknown
  cls: ErrorClass
  code: string
  /** For system errors. */
  syscall?: string
  errno?: number
  /** Node's own error (node:url's), of Node's subclass of `cls`, as node:fs gives it. */
  nodeOwn?: true
}

/** A view whose ArrayBuffer has been transferred away. */
function detached(): Buffer {
  const ab = new ArrayBuffer(16)
  const b = Buffer.from(ab)
  structuredClone(ab, { transfer: [ab] })
  return b
}

/** The error a getter installed by `withThrowingGetter` throws. */
function getterError(): Error & { code: string } {
  return Object.assign(new Error('getter called'), { code: 'ERR_TEST_GETTER' })
}

/** `arr` with a getter at index `i` that throws (an accessor element, as JavaScript allows). */
function withThrowingGetter<T>(arr: T[], i: number): T[] {
  Object.defineProperty(arr, i, {
    get() {
      throw getterError()
    },
  })
  return arr
}

/** Calls a function with arguments its types do not allow, as JavaScript callers can. */
const makeRing = (options?: RingOptions): Ring => new Ring(options)

function loose(fn: (...args: never[]) => unknown, thisArg: unknown, ...args: unknown[]): unknown {
  return Reflect.apply(fn, thisArg, args)
}

test('bad input is rejected with Node-style errors and nothing is submitted', async (t) => {
  const file = uniquePath(dir)
  const ring = new Ring()
  await disk(ring).writeFile(file, 'bad input test file')
  const fh: FileHandle = await ring.open(file, 'r+')
  const closedFh = await ring.open(file, 'r')
  await closedFh.close()
  const deadRing = new Ring()
  if (SIM) await disk(deadRing).writeFile(file, 'bad input test file') // a disk of its own
  const deadFh = await deadRing.open(file, 'r')
  await deadRing.close()
  const buf = Buffer.alloc(10)
  const good: ReadRequest = { buffer: Buffer.alloc(4), position: 0 }

  const A = 'async' as const
  const S = 'sync' as const
  const TYPE = 'ERR_INVALID_ARG_TYPE'
  const RANGE = 'ERR_OUT_OF_RANGE'
  const VALUE = 'ERR_INVALID_ARG_VALUE'

  const cases: Case[] = [
    // ---- open
    { name: 'open(number path)', mode: A, call: () => loose(ring.open, ring, 123), cls: TypeError, code: TYPE },
    { name: 'open(undefined path)', mode: A, call: () => loose(ring.open, ring), cls: TypeError, code: TYPE },
    { name: 'open(http: URL)', mode: A, call: () => ring.open(new URL('http://example.com/x')), cls: TypeError, code: 'ERR_INVALID_URL_SCHEME', nodeOwn: true },
    { name: 'open(file: URL with a host)', mode: A, call: () => ring.open(new URL('file://host/x')), cls: TypeError, code: 'ERR_INVALID_FILE_URL_HOST', nodeOwn: true },
    { name: 'open(file: URL with an encoded /)', mode: A, call: () => ring.open(new URL('file:///tmp/%2f')), cls: TypeError, code: 'ERR_INVALID_FILE_URL_PATH', nodeOwn: true },
    { name: 'open(path with NUL)', mode: A, call: () => ring.open(`${file}\u0000x`), cls: TypeError, code: VALUE },
    { name: 'open(Buffer path with NUL)', mode: A, call: () => ring.open(Buffer.from(`${file}\u0000`)), cls: TypeError, code: VALUE },
    { name: "open('') rejects ENOENT without submitting", mode: A, call: () => ring.open(''), cls: Error, code: 'ENOENT', syscall: 'open', errno: -2 },
    { name: "open(flags 'zz')", mode: A, call: () => ring.open(file, 'zz'), cls: TypeError, code: VALUE },
    { name: 'open(flags {})', mode: A, call: () => loose(ring.open, ring, file, {}), cls: TypeError, code: VALUE },
    { name: 'open(flags 1.5)', mode: A, call: () => ring.open(file, 1.5), cls: RangeError, code: RANGE },
    { name: 'open(flags 2**40)', mode: A, call: () => ring.open(file, 2 ** 40), cls: RangeError, code: RANGE },
    { name: "open(mode '999')", mode: A, call: () => ring.open(file, 'r', '999'), cls: TypeError, code: VALUE },
    { name: 'open(mode -1)', mode: A, call: () => ring.open(file, 'r', -1), cls: RangeError, code: RANGE },
    { name: 'open(mode 1.5)', mode: A, call: () => ring.open(file, 'r', 1.5), cls: RangeError, code: RANGE },
    { name: 'open(mode true)', mode: A, call: () => loose(ring.open, ring, file, 'r', true), cls: TypeError, code: TYPE },
    { name: 'open(options 5)', mode: A, call: () => loose(ring.open, ring, file, 'r', undefined, 5), cls: TypeError, code: TYPE },
    { name: "open(options.direct 'yes')", mode: A, call: () => loose(ring.open, ring, file, 'r', undefined, { direct: 'yes' }), cls: TypeError, code: TYPE },
    { name: 'open(options.signal {})', mode: A, call: () => loose(ring.open, ring, file, 'r', undefined, { signal: {} }), cls: TypeError, code: TYPE },
    { name: 'default open(path with NUL)', mode: A, call: () => open('/tmp/\u0000'), cls: TypeError, code: VALUE },
    { name: 'default open(null path)', mode: A, call: () => loose(open, undefined, null), cls: TypeError, code: TYPE },
    { name: 'open on a closed ring', mode: A, call: () => deadRing.open(file), cls: Error, code: 'ERR_RING_CLOSED' },

    // ---- Ring constructor
    { name: 'new Ring(5)', mode: S, call: () => loose(makeRing, undefined, 5), cls: TypeError, code: TYPE },
    { name: 'new Ring(null)', mode: S, call: () => loose(makeRing, undefined, null), cls: TypeError, code: TYPE },
    { name: 'new Ring({entries: 0})', mode: S, call: () => new Ring({ entries: 0 }), cls: RangeError, code: RANGE },
    { name: 'new Ring({entries: 40000})', mode: S, call: () => new Ring({ entries: 40000 }), cls: RangeError, code: RANGE },
    { name: 'new Ring({entries: 1.5})', mode: S, call: () => new Ring({ entries: 1.5 }), cls: RangeError, code: RANGE },
    { name: "new Ring({entries: '8'})", mode: S, call: () => loose(makeRing, undefined, { entries: '8' }), cls: TypeError, code: TYPE },
    { name: 'new Ring({entries: NaN})', mode: S, call: () => new Ring({ entries: NaN }), cls: RangeError, code: RANGE },
    { name: "new Ring({completion: 'poll'})", mode: S, call: () => loose(makeRing, undefined, { completion: 'poll' }), cls: TypeError, code: 'ERR_INVALID_ARG_VALUE' },
    { name: 'new Ring({completion: 1})', mode: S, call: () => loose(makeRing, undefined, { completion: 1 }), cls: TypeError, code: 'ERR_INVALID_ARG_VALUE' },
    { name: 'new Ring({maxInFlight: 1})', mode: S, call: () => new Ring({ maxInFlight: 1 }), cls: RangeError, code: RANGE },
    { name: 'new Ring({maxInFlight: -4})', mode: S, call: () => new Ring({ maxInFlight: -4 }), cls: RangeError, code: RANGE },
    { name: 'new Ring({sqpoll: 1})', mode: S, call: () => loose(makeRing, undefined, { sqpoll: 1 }), cls: TypeError, code: TYPE },
    { name: "new Ring({registerBuffers: 'no'})", mode: S, call: () => loose(makeRing, undefined, { registerBuffers: 'no' }), cls: TypeError, code: TYPE },
    { name: 'new Ring({registerFiles: null})', mode: S, call: () => loose(makeRing, undefined, { registerFiles: null }), cls: TypeError, code: TYPE },
    { name: "new Ring({backend: 'epoll'})", mode: S, call: () => loose(makeRing, undefined, { backend: 'epoll' }), cls: TypeError, code: 'ERR_INVALID_ARG_VALUE' },
    { name: 'new Ring({backend: 1})', mode: S, call: () => loose(makeRing, undefined, { backend: 1 }), cls: TypeError, code: 'ERR_INVALID_ARG_VALUE' },
    { name: 'new Ring({fileThreads: 0})', mode: S, call: () => new Ring({ fileThreads: 0 }), cls: RangeError, code: RANGE },
    { name: 'new Ring({fileThreads: 1.5})', mode: S, call: () => new Ring({ fileThreads: 1.5 }), cls: RangeError, code: RANGE },
    { name: 'new Ring({busyPoll: -1})', mode: S, call: () => new Ring({ busyPoll: -1 }), cls: RangeError, code: RANGE },
    { name: 'new Ring({busyPoll: 10001})', mode: S, call: () => new Ring({ busyPoll: 10001 }), cls: RangeError, code: RANGE },
    { name: 'new Ring({busyPoll: 1.5})', mode: S, call: () => new Ring({ busyPoll: 1.5 }), cls: RangeError, code: RANGE },
    { name: "new Ring({busyPoll: '200'})", mode: S, call: () => loose(makeRing, undefined, { busyPoll: '200' }), cls: TypeError, code: TYPE },

    // ---- allocAligned
    { name: 'allocAligned(-1)', mode: S, call: () => ring.allocAligned(-1), cls: RangeError, code: RANGE },
    { name: 'allocAligned(1.5)', mode: S, call: () => ring.allocAligned(1.5), cls: RangeError, code: RANGE },
    { name: "allocAligned('4096')", mode: S, call: () => loose(ring.allocAligned, ring, '4096'), cls: TypeError, code: TYPE },
    { name: 'allocAligned(2**31)', mode: S, call: () => ring.allocAligned(2 ** 31), cls: RangeError, code: RANGE },
    { name: 'allocAligned(Infinity)', mode: S, call: () => ring.allocAligned(Infinity), cls: RangeError, code: RANGE },
    { name: 'default allocAligned()', mode: S, call: () => loose(allocAligned, undefined), cls: TypeError, code: TYPE },
    { name: 'allocAligned on a closed ring', mode: S, call: () => deadRing.allocAligned(4096), cls: Error, code: 'ERR_RING_CLOSED' },

    // ---- read
    { name: "read('nope')", mode: A, call: () => loose(fh.read, fh, 'nope'), cls: TypeError, code: TYPE },
    { name: 'read(42)', mode: A, call: () => loose(fh.read, fh, 42), cls: TypeError, code: TYPE },
    { name: 'read(buf, offset -1)', mode: A, call: () => fh.read(buf, -1), cls: RangeError, code: RANGE },
    { name: 'read(buf, offset 1.5)', mode: A, call: () => fh.read(buf, 1.5), cls: RangeError, code: RANGE },
    { name: "read(buf, offset '0')", mode: A, call: () => loose(fh.read, fh, buf, '0'), cls: TypeError, code: TYPE },
    { name: 'read(buf, offset past the end)', mode: A, call: () => fh.read(buf, 11), cls: RangeError, code: RANGE },
    { name: 'read(buf, length past the buffer)', mode: A, call: () => fh.read(buf, 0, 11), cls: RangeError, code: RANGE },
    { name: 'read(buf, offset+length past the buffer)', mode: A, call: () => fh.read(buf, 5, 6, 0), cls: RangeError, code: RANGE },
    { name: 'read(buf, length -1)', mode: A, call: () => fh.read(buf, 0, -1), cls: RangeError, code: RANGE },
    { name: 'read(buf, length 2.5)', mode: A, call: () => fh.read(buf, 0, 2.5), cls: RangeError, code: RANGE },
    { name: 'read(buf, position -2)', mode: A, call: () => fh.read(buf, 0, 1, -2), cls: RangeError, code: RANGE },
    { name: 'read(buf, position 1.5)', mode: A, call: () => fh.read(buf, 0, 1, 1.5), cls: RangeError, code: RANGE },
    { name: "read(buf, position '0')", mode: A, call: () => loose(fh.read, fh, buf, 0, 1, '0'), cls: TypeError, code: TYPE },
    { name: 'read(buf, position 2n**63n)', mode: A, call: () => fh.read(buf, 0, 1, 2n ** 63n), cls: RangeError, code: RANGE },
    { name: 'read(buf, position -2n)', mode: A, call: () => fh.read(buf, 0, 1, -2n), cls: RangeError, code: RANGE },
    { name: 'read(buf, position 2**53)', mode: A, call: () => fh.read(buf, 0, 1, 2 ** 53), cls: RangeError, code: RANGE },
    { name: 'read(buf, {offset: -1})', mode: A, call: () => fh.read(buf, { offset: -1 }), cls: RangeError, code: RANGE },
    { name: 'read(buf, {length: 100})', mode: A, call: () => fh.read(buf, { length: 100 }), cls: RangeError, code: RANGE },
    { name: "read(buf, {signal: 'x'})", mode: A, call: () => loose(fh.read, fh, buf, { signal: 'x' }), cls: TypeError, code: TYPE },
    { name: "read({buffer: 'x'})", mode: A, call: () => loose(fh.read, fh, { buffer: 'x' }), cls: TypeError, code: TYPE },
    { name: 'read({buffer, position: -3})', mode: A, call: () => fh.read({ buffer: buf, position: -3 }), cls: RangeError, code: RANGE },
    { name: 'read(detached buffer)', mode: A, call: () => fh.read(detached()), cls: TypeError, code: VALUE },
    { name: 'read({buffer: detached})', mode: A, call: () => fh.read({ buffer: detached() }), cls: TypeError, code: VALUE },
    { name: 'read on a closed handle', mode: A, call: () => closedFh.read(buf, 0, 1, 0), cls: Error, code: 'EBADF', syscall: 'read', errno: -9 },
    { name: 'read on a handle of a closed ring', mode: A, call: () => deadFh.read(buf, 0, 1, 0), cls: Error, code: 'EBADF', syscall: 'read', errno: -9 },

    // ---- write
    { name: 'write(123)', mode: A, call: () => loose(fh.write, fh, 123), cls: TypeError, code: TYPE },
    { name: 'write(null)', mode: A, call: () => loose(fh.write, fh, null), cls: TypeError, code: TYPE },
    { name: 'write({})', mode: A, call: () => loose(fh.write, fh, {}), cls: TypeError, code: TYPE },
    { name: 'write(buf, length past the buffer)', mode: A, call: () => fh.write(buf, 0, 20), cls: RangeError, code: RANGE },
    { name: 'write(buf, offset past the end)', mode: A, call: () => fh.write(buf, 11, 0), cls: RangeError, code: RANGE },
    { name: 'write(buf, {position: -5})', mode: A, call: () => fh.write(buf, { position: -5 }), cls: RangeError, code: RANGE },
    { name: 'write(buf, {offset: 0.5})', mode: A, call: () => fh.write(buf, { offset: 0.5 }), cls: RangeError, code: RANGE },
    // An unknown encoding means UTF-8, as in node:fs (node-semantics.spec.ts); odd-length hex is refused.
    { name: "write('abc', 0, 'hex')", mode: A, call: () => loose(fh.write, fh, 'abc', 0, 'hex'), cls: TypeError, code: VALUE },
    { name: 'write(string, position 1.5)', mode: A, call: () => fh.write('x', 1.5), cls: RangeError, code: RANGE },
    { name: "write(string, position '3')", mode: A, call: () => loose(fh.write, fh, 'x', '3'), cls: TypeError, code: TYPE },
    { name: 'write(detached buffer)', mode: A, call: () => fh.write(detached()), cls: TypeError, code: VALUE },
    { name: 'write on a closed handle', mode: A, call: () => closedFh.write(buf, 0, 1, 0), cls: Error, code: 'EBADF', syscall: 'write', errno: -9 },
    { name: 'write(string) on a closed handle', mode: A, call: () => closedFh.write('abc'), cls: Error, code: 'EBADF', syscall: 'write', errno: -9 },

    // ---- readv / writev
    { name: "readv('x')", mode: A, call: () => loose(fh.readv, fh, 'x'), cls: TypeError, code: TYPE },
    { name: 'readv(buffer, not an array)', mode: A, call: () => loose(fh.readv, fh, buf), cls: TypeError, code: TYPE },
    { name: 'readv(array-like object)', mode: A, call: () => loose(fh.readv, fh, { 0: buf, length: 1 }), cls: TypeError, code: TYPE },
    // What node:fs gives: libuv refuses a read into no buffers.
    { name: 'readv([])', mode: A, call: () => fh.readv([]), cls: Error, code: 'EINVAL', syscall: 'read', errno: -22 },
    { name: "readv([buf, 'x'])", mode: A, call: () => loose(fh.readv, fh, [buf, 'x']), cls: TypeError, code: TYPE },
    { name: 'readv([buf], position -2)', mode: A, call: () => fh.readv([buf], -2), cls: RangeError, code: RANGE },
    { name: 'readv([detached])', mode: A, call: () => fh.readv([detached()]), cls: TypeError, code: VALUE },
    { name: 'readv(1025 buffers)', mode: A, call: () => fh.readv(Array.from({ length: 1025 }, () => Buffer.alloc(1))), cls: TypeError, code: VALUE },
    { name: 'readv(sparse array)', mode: A, call: () => fh.readv([buf, , buf] as Buffer[]), cls: TypeError, code: TYPE },
    { name: 'readv(array with a throwing getter)', mode: A, call: () => fh.readv(withThrowingGetter([buf, buf], 1)), cls: Error, code: 'ERR_TEST_GETTER' },
    { name: 'writev(undefined)', mode: A, call: () => loose(fh.writev, fh), cls: TypeError, code: TYPE },
    { name: 'writev([buf], position -3)', mode: A, call: () => fh.writev([buf], -3), cls: RangeError, code: RANGE },
    { name: 'writev([buf], position 0.5)', mode: A, call: () => fh.writev([buf], 0.5), cls: RangeError, code: RANGE },
    { name: 'writev([null])', mode: A, call: () => loose(fh.writev, fh, [null]), cls: TypeError, code: TYPE },
    { name: 'writev(sparse array)', mode: A, call: () => fh.writev(new Array<Buffer>(2)), cls: TypeError, code: TYPE },
    { name: 'writev([detached])', mode: A, call: () => fh.writev([buf, detached()]), cls: TypeError, code: VALUE },
    { name: 'readv on a closed handle', mode: A, call: () => closedFh.readv([buf]), cls: Error, code: 'EBADF', syscall: 'read', errno: -9 },
    { name: 'writev on a closed handle', mode: A, call: () => closedFh.writev([buf]), cls: Error, code: 'EBADF', syscall: 'write', errno: -9 },

    // ---- readMany
    { name: "readMany('x')", mode: A, call: () => loose(fh.readMany, fh, 'x'), cls: TypeError, code: TYPE },
    { name: 'readMany(undefined)', mode: A, call: () => loose(fh.readMany, fh), cls: TypeError, code: TYPE },
    { name: 'readMany([null])', mode: A, call: () => loose(fh.readMany, fh, [null]), cls: TypeError, code: TYPE },
    { name: 'readMany([{buffer}] without position)', mode: A, call: () => loose(fh.readMany, fh, [{ buffer: buf }]), cls: TypeError, code: TYPE },
    { name: "readMany([{buffer: 'x'}])", mode: A, call: () => loose(fh.readMany, fh, [{ buffer: 'x', position: 0 }]), cls: TypeError, code: TYPE },
    { name: 'readMany length past the buffer', mode: A, call: () => fh.readMany([{ buffer: buf, position: 0, length: 100 }]), cls: RangeError, code: RANGE },
    { name: 'readMany offset past the end', mode: A, call: () => fh.readMany([{ buffer: buf, position: 0, offset: 11 }]), cls: RangeError, code: RANGE },
    { name: 'readMany [good, position -2]: nothing of the batch submitted', mode: A, call: () => fh.readMany([good, { buffer: buf, position: -2 }]), cls: RangeError, code: RANGE },
    { name: 'readMany [good, detached]', mode: A, call: () => fh.readMany([good, { buffer: detached(), position: 0 }]), cls: TypeError, code: VALUE },
    { name: 'readMany(reqs, {signal: 1})', mode: A, call: () => loose(fh.readMany, fh, [good], { signal: 1 }), cls: TypeError, code: TYPE },
    { name: "readMany(reqs, 'opts')", mode: A, call: () => loose(fh.readMany, fh, [good], 'opts'), cls: TypeError, code: TYPE },
    { name: 'readMany on a closed handle', mode: A, call: () => closedFh.readMany([good]), cls: Error, code: 'EBADF', syscall: 'read', errno: -9 },

    // ---- append
    { name: 'append(123)', mode: A, call: () => loose(fh.append, fh, 123), cls: TypeError, code: TYPE },
    { name: 'append(undefined)', mode: A, call: () => loose(fh.append, fh), cls: TypeError, code: TYPE },
    { name: "append('x', {sync: 'yes'})", mode: A, call: () => fh.append('x', { sync: 'yes' } as unknown as AppendOptions), cls: TypeError, code: VALUE },
    { name: "append('x', {sync: 1})", mode: A, call: () => fh.append('x', { sync: 1 } as unknown as AppendOptions), cls: TypeError, code: VALUE },
    { name: "append('x', 'data')", mode: A, call: () => loose(fh.append, fh, 'x', 'data'), cls: TypeError, code: TYPE },
    { name: "append('x', {signal: 'no'})", mode: A, call: () => loose(fh.append, fh, 'x', { signal: 'no' }), cls: TypeError, code: TYPE },
    { name: 'append(detached)', mode: A, call: () => fh.append(detached()), cls: TypeError, code: VALUE },
    { name: 'append on a closed handle', mode: A, call: () => closedFh.append('x'), cls: Error, code: 'EBADF', syscall: 'write', errno: -9 },

    // ---- truncate, sync, stat
    { name: "truncate('1')", mode: A, call: () => loose(fh.truncate, fh, '1'), cls: TypeError, code: TYPE },
    { name: 'truncate(1.5)', mode: A, call: () => fh.truncate(1.5), cls: RangeError, code: RANGE },
    { name: 'truncate(NaN)', mode: A, call: () => fh.truncate(NaN), cls: RangeError, code: RANGE },
    { name: 'truncate(null)', mode: A, call: () => loose(fh.truncate, fh, null), cls: TypeError, code: TYPE },
    { name: 'truncate on a closed handle', mode: A, call: () => closedFh.truncate(1), cls: Error, code: 'EBADF', syscall: 'ftruncate', errno: -9 },
    { name: 'datasync on a closed handle', mode: A, call: () => closedFh.datasync(), cls: Error, code: 'EBADF', syscall: 'fdatasync', errno: -9 },
    { name: 'sync on a closed handle', mode: A, call: () => closedFh.sync(), cls: Error, code: 'EBADF', syscall: 'fsync', errno: -9 },
    { name: 'stat on a closed handle', mode: A, call: () => closedFh.stat(), cls: Error, code: 'EBADF', syscall: 'fstat', errno: -9 },
    { name: 'stat on a handle of a closed ring', mode: A, call: () => deadFh.stat(), cls: Error, code: 'EBADF', syscall: 'fstat', errno: -9 },
  ]

  t.true(cases.length >= 30)
  const names = new Set(cases.map((c) => c.name))
  t.is(names.size, cases.length, 'case names are unique')

  const before = ring.stats()
  const defaultBefore = defaultRing().stats().submitted
  const problems = await problemsOf(cases, (c, err, bad) => {
    if (c.nodeOwn ? !(err instanceof c.cls) : Object.getPrototypeOf(err) !== c.cls.prototype) bad(`class ${err.constructor.name}, expected ${c.cls.name} (${err.message})`)
    const p = props(err)
    if (p.code !== c.code) bad(`code ${String(p.code)}, expected ${c.code} (${err.message})`)
    if (err.message.length === 0) bad('empty message')
    if (c.cls !== Error && !String(err.stack).includes(`${c.cls.name} [${c.code}]`)) bad(`stack does not start like Node's "${c.cls.name} [${c.code}]"`)
    if (c.syscall !== undefined) {
      if (p.syscall !== c.syscall) bad(`syscall ${String(p.syscall)}, expected ${c.syscall}`)
      if (p.errno !== c.errno) bad(`errno ${String(p.errno)}, expected ${String(c.errno)}`)
      if (!err.message.startsWith(`${c.code}: `)) bad(`message ${err.message}`)
    }
    if (c.code === 'ENOENT' && p.path !== '') bad(`path ${String(p.path)}`)
  })
  t.deepEqual(problems, [])
  const after = ring.stats()
  t.is(after.submitted, before.submitted, 'nothing was submitted')
  t.is(after.inFlight, 0)
  t.is(after.queued, 0)
  t.is(defaultRing().stats().submitted, defaultBefore, 'nothing was submitted on the default ring')
  t.is(await disk(ring).readText(file), 'bad input test file', 'the file is untouched')

  // and the handle still works after all that
  const r = await fh.read(Buffer.alloc(3), 0, 3, 0)
  t.is(r.buffer.toString(), 'bad')
  await fh.close()
  await ring.close()
})

test('readv/writev of a sparse array reject like node:fs/promises FileHandle (TypeError ERR_INVALID_ARG_TYPE), nothing submitted', async (t) => {
  const file = uniquePath(dir)
  const ring = new Ring()
  await disk(ring).writeFile(file, 'sparse arrays')
  const fh = await ring.open(file, 'r+')
  // node's on the real disk: the same file, or on sim one of the same contents.
  const nodeFile = SIM ? uniquePath(nodeDir) : file
  if (SIM) fs.writeFileSync(nodeFile, 'sparse arrays')
  const nodeFh = await fs.promises.open(nodeFile, 'r+')
  const before = ring.stats().submitted
  const sparse = (): Buffer[] => {
    const a = [Buffer.alloc(4), Buffer.alloc(4), Buffer.alloc(4)]
    delete a[1]
    return a
  }
  for (const [what, ours, theirs] of [
    ['readv', () => fh.readv(sparse(), 0), () => nodeFh.readv(sparse(), 0)],
    ['writev', () => fh.writev(sparse(), 0), () => nodeFh.writev(sparse(), 0)],
  ] as const) {
    const mine = await t.throwsAsync(ours())
    const node = await t.throwsAsync(theirs())
    // Node's own errors are subclasses made per code: compare what shows.
    t.true(node instanceof TypeError && Object.getPrototypeOf(mine) === TypeError.prototype, `${what}: a TypeError as node:fs gives (${String(node?.message)})`)
    t.is(mine?.name, node?.name, `${what}: same name as node:fs`)
    t.is(props(mine).code, props(node).code, `${what}: same code as node:fs`)
    t.is(props(mine).code, 'ERR_INVALID_ARG_TYPE')
  }
  t.is(ring.stats().submitted, before, 'nothing was submitted')
  t.is(await disk(ring).readText(file), 'sparse arrays', 'nothing was written')
  await nodeFh.close()
  await fh.close()
  await ring.close()
})

test("readv/writev read the caller's array once at submission: later changes to it (a throwing getter, a replaced element) change nothing, and readv still resolves with the caller's array", async (t) => {
  const file = uniquePath(dir)
  const ring = new Ring()
  await disk(ring).writeFile(file, 'abcdefgh')
  const fh = await ring.open(file, 'r+')

  // Each index is read exactly once (a Proxy counts the reads).
  const reads = new Map<PropertyKey, number>()
  const counted = <T extends object>(target: T): T =>
    new Proxy(target, {
      get(o, key, receiver) {
        reads.set(key, (reads.get(key) ?? 0) + 1)
        return Reflect.get(o, key, receiver) as unknown
      },
    })
  const a = Buffer.alloc(3)
  const b = Buffer.alloc(5)
  const proxied = counted([a, b])
  const r0 = await fh.readv(proxied, 0)
  t.is(r0.bytesRead, 8)
  t.is(r0.buffers, proxied, 'resolves with the array passed')
  t.is(a.toString() + b.toString(), 'abcdefgh')
  t.is(reads.get('0'), 1, 'index 0 read once')
  t.is(reads.get('1'), 1, 'index 1 read once')

  // Plain Buffers are bounced: the data is copied at completion. A getter
  // that throws, installed after submission, is never called.
  const c = Buffer.alloc(4)
  const d = Buffer.alloc(4)
  const arr = [c, d]
  let uncaught: unknown
  const onUncaught = (e: unknown): void => {
    uncaught = e
  }
  process.on('uncaughtException', onUncaught)
  try {
    const p = fh.readv(arr, 0)
    withThrowingGetter(arr, 0)
    withThrowingGetter(arr, 1)
    const o = await outcome(p)
    t.true(o.settled, 'the readv settles')
    t.true(o.resolved, `the readv resolves (${String(o.error)})`)
    t.is(o.value?.bytesRead, 8)
    t.is(o.value?.buffers, arr, "resolves with the caller's array object")
    t.is(c.toString() + d.toString(), 'abcdefgh', 'the data went into the views passed at submission')

    // Ops after it still settle: the batch was not cut short.
    const after = await outcome(fh.read(Buffer.alloc(2), 0, 2, 6))
    t.is(after.value?.buffer.toString(), 'gh')

    // writev: replacing an element after the call writes the original.
    const w = [Buffer.from('12'), Buffer.from('34')]
    const pw = fh.writev(w, 0)
    w[0] = Buffer.from('XX')
    withThrowingGetter(w, 1)
    const ow = await outcome(pw)
    t.true(ow.resolved, `the writev resolves (${String(ow.error)})`)
    t.is(ow.value?.buffers, w)
    t.is(await disk(ring).readText(file), '1234efgh')
    await tick()
    t.is(uncaught, undefined, 'no uncaught exception')
  } finally {
    process.off('uncaughtException', onUncaught)
  }
  await fh.close()
  await ring.close()
})

test('open() of a Uint8Array whose ArrayBuffer was detached rejects as node:fs/promises open does (same class, code and message)', async (t) => {
  const detachedPath = (): Uint8Array => {
    const u8 = new Uint8Array(Buffer.from(`${dir}/x`))
    structuredClone(u8.buffer, { transfer: [u8.buffer] })
    return u8
  }
  const node = await t.throwsAsync(fs.promises.open(detachedPath() as Buffer))
  const ring = new Ring()
  for (const [what, call] of [
    ['ring.open', () => ring.open(detachedPath() as Buffer)],
    ['open', () => open(detachedPath() as Buffer)],
  ] as const) {
    const p = call()
    t.true(p instanceof Promise, `${what} returns a promise (no synchronous throw)`)
    const mine = await t.throwsAsync(p)
    t.is(Object.getPrototypeOf(mine), Object.getPrototypeOf(node), `${what}: class`)
    t.is(mine?.name, node?.name, `${what}: name`)
    t.is(props(mine).code, props(node).code, `${what}: code`)
    t.is(mine?.message, node?.message, `${what}: message`)
  }
  await ring.close()
})

// A child process out of file descriptors creates Rings: the descriptor
// limit is no io_uring refusal, so every backend fails with EMFILE and
// 'auto' does not fall back to mio for it.
const FD_LIMIT_CHILD = `
const fs = require('node:fs')
const { Ring } = require(process.argv[1])
const count = () => fs.readdirSync('/proc/self/fd').length
const before = count()
const held = []
for (;;) {
  try { held.push(fs.openSync('/dev/null', 'r')) } catch (e) { if (e.code !== 'EMFILE') throw e; break }
}
const out = { held: held.length, errors: {} }
for (const backend of JSON.parse(process.argv[2])) {
  try {
    const r = new Ring(backend === 'default' ? undefined : { backend })
    out.errors[backend] = { created: r.backend }
    r.close()
  } catch (e) {
    out.errors[backend] = { proto: Object.getPrototypeOf(e) === Error.prototype ? 'Error' : String(e.constructor && e.constructor.name), code: e.code, errno: e.errno, syscall: e.syscall, message: e.message }
  }
}
for (const fd of held) fs.closeSync(fd)
out.leaked = count() - before
const r = new Ring()
out.afterwards = r.backend
r.close().then(() => console.log('RESULT ' + JSON.stringify(out)))
`

interface FdLimitReport {
  held: number
  leaked: number
  afterwards: string
  errors: Record<string, { created?: string; proto?: string; code?: unknown; errno?: unknown; syscall?: unknown; message?: unknown }>
}

test('new Ring() out of file descriptors throws a system error EMFILE (errno -24, the syscall that failed) on every backend; auto does not fall back to mio', async (t) => {
  let uringWorks = true
  try {
    await new Ring({ backend: 'io_uring' }).close()
  } catch {
    uringWorks = false
  }
  const backends = ['default', 'auto', 'mio', ...(uringWorks ? ['io_uring'] : [])]
  // A low limit keeps the child quick; without prlimit(1) it fills the limit it has.
  const prlimit = which('prlimit')
  const nodeArgs = ['--import', 'tsx', '-e', FD_LIMIT_CHILD, path.join(repoRoot, 'index.ts'), JSON.stringify(backends)]
  const [file, args] = prlimit !== null ? [prlimit, ['--nofile=64:64', process.execPath, ...nodeArgs]] : [process.execPath, nodeArgs]
  const r = await run(file, args, { cwd: repoRoot })
  const line = r.stdout.split('\n').find((l) => l.startsWith('RESULT '))
  if (line === undefined) {
    t.fail(`the child printed no RESULT line (exit ${String(r.code)}, hung ${String(r.hung)}): ${r.stderr}`)
    return
  }
  const report = JSON.parse(line.slice('RESULT '.length)) as FdLimitReport
  t.log(`child held ${report.held} extra descriptors; errors: ${JSON.stringify(report.errors)}`)
  t.true(report.held > 0)
  for (const backend of backends) {
    const e = report.errors[backend]
    t.is(e.created, undefined, `${backend}: no Ring was created (got ${String(e.created)})`)
    t.is(e.proto, 'Error', `${backend}: a plain Error, as Node's system errors are`)
    t.is(e.code, 'EMFILE', `${backend}: code (${String(e.message)})`)
    t.is(e.errno, -24, `${backend}: errno`)
    t.true(typeof e.syscall === 'string' && e.syscall.length > 0, `${backend}: syscall names what failed`)
    t.is(e.message, `EMFILE: too many open files, ${String(e.syscall)}`, `${backend}: message`)
  }
  if (uringWorks) {
    for (const backend of ['auto', 'io_uring']) {
      t.true(['io_uring_setup', 'eventfd'].includes(String(report.errors[backend].syscall)), `${backend}: the io_uring setup call, not a mio fallback`)
    }
  }
  t.is(report.leaked, 0, 'the failed constructors left no descriptor open')
  // (the default engine: this run's, sim included; else the kernel's)
  const engines = BACKEND === 'sim' ? ['sim'] : ['io_uring', 'mio']
  t.true(engines.includes(report.afterwards), `a Ring is created once descriptors are free (${report.afterwards})`)
})
