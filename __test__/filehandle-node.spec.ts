// The parts of node:fs/promises' FileHandle beyond read/write, side by side
// with node: readFile, writeFile, appendFile, streams, readLines,
// readableWebStream, stat({ bigint }), the 'close' event and
// Symbol.asyncDispose. Each test runs the same code on a handle of each and
// compares what the user sees (results, file contents, errors).
import test from 'ava'
import * as fsp from 'node:fs/promises'
import { pipeline } from 'node:stream/promises'
import { open, type FileHandle } from '../index'
import { makeTmpDir, removeTmpDir, uniquePath } from './helpers'
import { SIM, disk, realDisk, realKernelOnly, testDir, type TestDisk } from './sim-setup'

// node's files are on the real disk whatever the engine (the reference);
// ringline's on the disk its ring sees (on sim, the sim's).
const nodeDir = makeTmpDir('filehandle-node')
test.after.always(() => removeTmpDir(nodeDir))
const ringDir = testDir('filehandle-node')

type Impl = 'node' | 'ringline'
const impls: Impl[] = ['node', 'ringline']

/** Where `impl`'s files go, and the disk they are on. */
function placeOf(impl: Impl): { dir: string; d: TestDisk } {
  return impl === 'node' ? { dir: nodeDir, d: realDisk } : { dir: ringDir, d: disk() }
}

/** A handle of either implementation, typed as ringline's (node's has the same methods). */
async function openWith(impl: Impl, path: string, flags: string): Promise<FileHandle> {
  return impl === 'node' ? ((await fsp.open(path, flags)) as unknown as FileHandle) : open(path, flags)
}

/** Runs `f` once per implementation on a fresh copy of `contents`; returns what each gave and the file after. */
async function sideBySide<T>(
  contents: string | Buffer,
  flags: string,
  run: Impl[],
  f: (fh: FileHandle, path: string) => Promise<T>,
): Promise<Record<Impl, { value?: T; error?: string; file: Buffer }>> {
  const out = {} as Record<Impl, { value?: T; error?: string; file: Buffer }>
  for (const impl of run) {
    const { dir, d } = placeOf(impl)
    const p = uniquePath(dir, impl)
    await d.writeFile(p, contents)
    const fh = await openWith(impl, p, flags)
    let value: T | undefined
    let error: string | undefined
    try {
      value = await f(fh, p)
    } catch (e) {
      const err = e as Error & { code?: string }
      error = `${err.name} ${err.code} ${err.message}`
    }
    if (fh.fd !== -1) await fh.close()
    out[impl] = { ...(error === undefined ? { value } : { error }), file: await d.readFile(p) }
  }
  return out
}

const text = Array.from({ length: 2000 }, (_, i) => `line ${i}: ${'é€'.repeat(i % 7)}`).join('\n')
const big = Buffer.from(Array.from({ length: 1_500_000 }, (_, i) => (i * 31) % 251))

test('readFile(): the rest of the file, as a Buffer or decoded, as node gives it', async (t) => {
  for (const [name, f] of [
    ['no options', (fh: FileHandle) => fh.readFile()],
    ['utf8 string', (fh: FileHandle) => fh.readFile('utf8')],
    ['{ encoding: latin1 }', (fh: FileHandle) => fh.readFile({ encoding: 'latin1' })],
    ['after a 10-byte read', async (fh: FileHandle) => (await fh.read(Buffer.alloc(10), 0, 10, null), fh.readFile('utf8'))],
    ['an invalid encoding', (fh: FileHandle) => fh.readFile('bogus' as BufferEncoding)],
    ['options of a wrong type', (fh: FileHandle) => fh.readFile(42 as unknown as BufferEncoding)],
    ['an aborted signal', (fh: FileHandle) => fh.readFile({ signal: AbortSignal.abort() })],
  ] as const) {
    const r = await sideBySide(text, 'r', impls, f as (fh: FileHandle) => Promise<unknown>)
    t.deepEqual(r.ringline, r.node, name)
  }
  const large = await sideBySide(big, 'r', impls, (fh) => fh.readFile())
  t.true(Buffer.isBuffer(large.ringline.value) && (large.ringline.value as Buffer).equals(big), 'a 1.5 MB file, read in 512 KiB chunks')
  t.deepEqual(large.ringline, large.node)
})

realKernelOnly('procfs')('readFile() of a file that reports no size (procfs) reads to the end', async (t) => {
  const fh = await open('/proc/self/status', 'r')
  const got = await fh.readFile('utf8')
  await fh.close()
  t.regex(got, /^Name:/)
  t.regex(got, /VmRSS|Threads/)
})

test('writeFile() and appendFile(): strings, views, iterables and async iterables, at the file position', async (t) => {
  async function* gen(): AsyncGenerator<string | Uint8Array> {
    yield 'async '
    yield new Uint8Array([0x41, 0x42])
  }
  for (const [name, flags, f] of [
    ['a string', 'r+', (fh: FileHandle) => fh.writeFile('hello')],
    ['hex', 'r+', (fh: FileHandle) => fh.writeFile('68656c6c6f', 'hex')],
    ['a Buffer of 1.5 MB', 'r+', (fh: FileHandle) => fh.writeFile(big)],
    ['a Uint16Array', 'r+', (fh: FileHandle) => fh.writeFile(new Uint16Array([0x4142, 0x4344]))],
    ['an array of chunks', 'r+', (fh: FileHandle) => fh.writeFile(['one ', Buffer.from('two '), 'three'])],
    ['an async generator', 'r+', (fh: FileHandle) => fh.writeFile(gen())],
    ['after a read moved the position', 'r+', async (fh: FileHandle) => (await fh.read(Buffer.alloc(3), 0, 3, null), fh.writeFile('XY'))],
    ['appendFile on a handle opened with a', 'a', (fh: FileHandle) => fh.appendFile('tail')],
    ['a number (refused)', 'r+', (fh: FileHandle) => fh.writeFile(42 as unknown as string)],
    ['flush of a wrong type (refused)', 'r+', (fh: FileHandle) => fh.writeFile('x', { flush: 'yes' as unknown as boolean })],
    ['an aborted signal', 'r+', (fh: FileHandle) => fh.writeFile('never', { signal: AbortSignal.abort() })],
  ] as const) {
    const r = await sideBySide('0123456789', flags, impls, f as (fh: FileHandle) => Promise<unknown>)
    t.deepEqual(r.ringline, r.node, name)
  }
})

test('createReadStream(): node:fs options (start, end, highWaterMark, encoding), the same chunks; it closes the handle when done', async (t) => {
  for (const options of [{}, { start: 100, end: 1_000_000 }, { highWaterMark: 1000, start: 7 }, { encoding: 'hex' as const, end: 99 }]) {
    const got: Record<string, unknown> = {}
    for (const impl of impls) {
      const { dir, d } = placeOf(impl)
      const p = uniquePath(dir, impl)
      await d.writeFile(p, big)
      const fh = await openWith(impl, p, 'r')
      const chunks: (Buffer | string)[] = []
      const closed = new Promise((resolve) => fh.once('close', resolve))
      for await (const c of fh.createReadStream(options)) chunks.push(c as Buffer | string)
      await closed
      got[impl] = { n: chunks.length, sizes: chunks.slice(0, 3).map((c) => c.length), all: typeof chunks[0] === 'string' ? chunks.join('') : Buffer.concat(chunks as Buffer[]).toString('base64'), fd: fh.fd }
    }
    t.deepEqual(got.ringline, got.node, JSON.stringify(options))
  }
})

test('createWriteStream(): a pipeline of many chunks lands whole, with backpressure; the handle closes when the stream ends', async (t) => {
  const got: Record<string, unknown> = {}
  for (const impl of impls) {
    const { dir, d } = placeOf(impl)
    const p = uniquePath(dir, impl)
    await d.writeFile(p, '')
    const fh = await openWith(impl, p, 'w')
    const ws = fh.createWriteStream({ highWaterMark: 4096 })
    let refused = 0
    const original = ws.write.bind(ws)
    ws.write = ((chunk: Buffer, cb?: () => void) => {
      const ok = original(chunk, cb)
      if (!ok) refused++
      return ok
    }) as typeof ws.write
    async function* chunks(): AsyncGenerator<Buffer> {
      for (let i = 0; i < 300; i++) yield big.subarray(i * 5000, (i + 1) * 5000)
    }
    await pipeline(chunks(), ws)
    got[impl] = { file: (await d.readFile(p)).equals(big.subarray(0, 1_500_000)), size: (await d.stat(p)).size, fd: fh.fd, bytesWritten: ws.bytesWritten }
    t.true(refused > 0, `${impl}: write() returned false (backpressure) ${refused} times`)
  }
  t.deepEqual(got.ringline, got.node)
})

test('readLines(): the lines node gives', async (t) => {
  const r = await sideBySide(`${text}\r\nlast`, 'r', impls, async (fh) => {
    const lines: string[] = []
    for await (const l of fh.readLines()) lines.push(l)
    return lines
  })
  t.is((r.ringline.value as string[]).length, 2001)
  t.deepEqual(r.ringline, r.node)
})

test('readableWebStream(): the bytes, for the default and the byte stream; one stream per handle', async (t) => {
  for (const type of [undefined, 'bytes'] as const) {
    // Node 20's own default stream aborts the process (an assertion in its
    // StreamBase, current_read_ == req_wrap) when the handle is closed
    // after reading it to the end: that one runs on ringline only, against
    // node's documented shape (ArrayBuffer chunks).
    const run = type === undefined ? (['ringline'] as Impl[]) : impls
    const r = await sideBySide(big, 'r', run, async (fh) => {
      const stream = fh.readableWebStream(type === undefined ? undefined : { type })
      let second = 'none'
      try {
        fh.readableWebStream()
      } catch (e) {
        second = String((e as { code?: string }).code)
      }
      const parts: Uint8Array[] = []
      const kinds = new Set<string>()
      for await (const c of stream as unknown as AsyncIterable<Uint8Array | ArrayBuffer>) {
        kinds.add(c.constructor.name)
        parts.push(c instanceof ArrayBuffer ? new Uint8Array(c) : c)
      }
      return { bytes: Buffer.concat(parts).equals(big), kinds: [...kinds], second }
    })
    t.deepEqual(r.ringline.value, { bytes: true, kinds: [type === 'bytes' ? 'Uint8Array' : 'ArrayBuffer'], second: 'ERR_INVALID_STATE' }, String(type))
    if (type === 'bytes') t.deepEqual(r.ringline, r.node, String(type))
  }
})

test("stat({ bigint: true }): node's BigIntStats fields", async (t) => {
  // The same file on the real engines; on sim, a file of the same contents
  // and times on each disk, compared in what does not depend on the disk.
  const p = uniquePath(ringDir, 'bigint')
  const q = SIM ? uniquePath(nodeDir, 'bigint') : p
  for (const [d, at] of SIM ? ([[disk(), p], [realDisk, q]] as const) : ([[realDisk, p]] as const)) {
    await d.writeFile(at, 'bigint stats')
    await d.utimes(at, 1_600_000_000.123456, 1_700_000_000.654321)
  }
  const ours = await open(p, 'r')
  const theirs = await fsp.open(q, 'r')
  const a = await ours.stat({ bigint: true })
  const b = await theirs.stat({ bigint: true })
  await ours.close()
  await theirs.close()
  const ofTheDisk = ['dev', 'ino', 'uid', 'gid', 'rdev', 'blksize', 'blocks', 'ctime', 'ctimeMs', 'ctimeNs', 'birthtime', 'birthtimeMs', 'birthtimeNs']
  t.deepEqual(Object.keys(a).sort(), Object.keys(b).sort())
  for (const k of Object.keys(b) as (keyof typeof b)[]) {
    if (k === 'atime' || k === 'atimeMs' || k === 'atimeNs') continue // reading the file may move it
    if (SIM && ofTheDisk.includes(k)) continue
    t.deepEqual(a[k as keyof typeof a], b[k], k)
  }
  t.is(typeof a.size, 'bigint')
  t.is(a.mtimeNs, b.mtimeNs)
  t.true(a.isFile())
  const again = await open(p, 'r')
  t.is((await again.stat({ bigint: false })).size, 12)
  await again.close()
})

test("the 'close' event, and Symbol.asyncDispose closes the handle", async (t) => {
  for (const impl of impls) {
    const { dir, d } = placeOf(impl)
    const p = uniquePath(dir, impl)
    await d.writeFile(p, 'x')
    const fh = await openWith(impl, p, 'r')
    let events = 0
    fh.on('close', () => events++)
    const closing = fh.close()
    t.is(events, 1, `${impl}: 'close' is emitted by close() itself`)
    await closing
    const fh2 = await openWith(impl, p, 'r')
    await (fh2 as unknown as { [Symbol.asyncDispose](): Promise<void> })[Symbol.asyncDispose]()
    t.is(fh2.fd, -1, `${impl}: asyncDispose closed it`)
  }
})
