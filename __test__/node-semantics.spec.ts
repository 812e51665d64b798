// FileHandle edge cases run side by side on node:fs/promises and ringline:
// the same call on a handle of each (same file contents) must give the same
// outcome (the result, or the error's class, code and message) and leave
// the same bytes in the file. On sim, node's handle stays on the real disk
// (the reference) and ringline's is on the sim disk, same contents.
import test from 'ava'
import * as fs from 'node:fs'
import * as fsp from 'node:fs/promises'
import { open, type FileHandle } from '../index'
import { makeTmpDir, removeTmpDir, uniquePath } from './helpers'
import { disk, realDisk, testDir } from './sim-setup'

/** node's files, on the real disk whatever the engine. */
const nodeDir = makeTmpDir('node-semantics')
test.after.always(() => removeTmpDir(nodeDir))
/** ringline's, on the disk its ring sees. */
const dir = testDir('node-semantics')

/** A FileHandle of either implementation, called loosely (bad arguments on purpose). */
type Loose = Record<string, (...args: unknown[]) => unknown>

interface Outcome {
  how: 'resolves' | 'rejects' | 'throws'
  what: string
}

function describe(v: unknown): string {
  return JSON.stringify(v, (_k, x: unknown) => {
    if (x && typeof x === 'object' && (x as { type?: unknown }).type === 'Buffer') return `<Buffer ${(x as { data: unknown[] }).data.length}>`
    return x
  })
}

async function outcomeOf(f: () => unknown): Promise<Outcome> {
  let p: unknown
  try {
    p = f()
  } catch (e) {
    const err = e as Error & { code?: string }
    return { how: 'throws', what: `${err.name} ${err.code} ${err.message}` }
  }
  try {
    return { how: 'resolves', what: describe(await p) }
  } catch (e) {
    const err = e as Error & { code?: string }
    return { how: 'rejects', what: `${err.name} ${err.code} ${err.message}` }
  }
}

interface Case {
  name: string
  call: (fh: Loose) => unknown
}

const cases: Case[] = [
  { name: 'write(string, position, 123): a non-string encoding means UTF-8', call: (fh) => fh.write('zz', 0, 123) },
  { name: 'write(string, position, {})', call: (fh) => fh.write('zz', 0, {}) },
  { name: "write(string, position, 'bogus'): an unknown encoding means UTF-8", call: (fh) => fh.write('zz', 0, 'bogus') },
  { name: 'write of odd-length hex is refused', call: (fh) => fh.write('abc', 0, 'hex') },
  { name: 'write of odd-length HEX is refused', call: (fh) => fh.write('abc', 0, 'HEX') },
  { name: 'write of even-length hex', call: (fh) => fh.write('abcd', 1, 'hex') },
  { name: 'write of odd-length base64', call: (fh) => fh.write('abc', 0, 'base64') },
  { name: 'writev([]) resolves 0', call: (fh) => fh.writev([]) },
  { name: 'writev([], 3) resolves 0', call: (fh) => fh.writev([], 3) },
  { name: 'readv([]) rejects EINVAL', call: (fh) => fh.readv([]) },
  { name: "writev with a position that is not a number writes at the file position", call: (fh) => fh.writev([Buffer.from('PQ')], '2') },
  { name: "readv with a position that is not a number reads at the file position", call: (fh) => fh.readv([Buffer.alloc(3)], 2n) },
  { name: 'read into an empty buffer resolves 0', call: (fh) => fh.read(Buffer.alloc(0)) },
  { name: 'read of 1 byte into an empty buffer is refused', call: (fh) => fh.read(Buffer.alloc(0), 0, 1, 0) },
  { name: 'read of 1 byte into an empty buffer (options) is refused', call: (fh) => fh.read(Buffer.alloc(0), { length: 1 }) },
  { name: 'read of length 0 resolves 0', call: (fh) => fh.read(Buffer.alloc(4), 0, 0, 0) },
  { name: 'write of an empty buffer resolves 0', call: (fh) => fh.write(Buffer.alloc(0)) },
]

for (const c of cases) {
  test(c.name, async (t) => {
    const results: Record<string, Outcome & { file: string }> = {}
    for (const impl of ['node', 'ringline'] as const) {
      const d = impl === 'node' ? realDisk : disk()
      const p = uniquePath(impl === 'node' ? nodeDir : dir, impl)
      await d.writeFile(p, 'abcdef')
      const fh = (impl === 'node' ? await fsp.open(p, 'r+') : await open(p, 'r+')) as unknown as Loose
      const o = await outcomeOf(() => c.call(fh))
      await fh.close()
      results[impl] = { ...o, file: (await d.readFile(p)).toString('latin1') }
    }
    t.deepEqual(results.ringline, results.node)
  })
}

test('a method called on something that is not a FileHandle rejects, never throws (as in node:fs/promises)', async (t) => {
  const p = uniquePath(dir, 'this')
  await disk().writeFile(p, 'abcdef')
  const fh = (await open(p, 'r+')) as unknown as Loose
  const q = uniquePath(nodeDir, 'this')
  fs.writeFileSync(q, 'abcdef')
  const nodeFh = (await fsp.open(q, 'r+')) as unknown as Loose
  const calls: [string, unknown[]][] = [
    ['read', [Buffer.alloc(1)]],
    ['write', ['x']],
    ['readv', [[Buffer.alloc(1)]]],
    ['writev', [[Buffer.alloc(1)]]],
    ['stat', []],
    ['sync', []],
    ['datasync', []],
    ['truncate', [0]],
  ]
  for (const [name, args] of calls) {
    const ours = await outcomeOf(() => fh[name].call({}, ...args))
    const theirs = await outcomeOf(() => nodeFh[name].call({}, ...args))
    t.is(theirs.how, 'rejects', `node: ${name}`)
    t.is(ours.how, 'rejects', `ringline: ${name}: ${ours.what}`)
  }
  for (const f of ['readMany', 'append']) {
    t.is((await outcomeOf(() => fh[f].call({}, []))).how, 'rejects', f)
  }
  await (fh.close as () => Promise<void>)()
  await (nodeFh.close as () => Promise<void>)()
})

test('close is bound to its handle, as in node:fs/promises: `const { close } = fh; close()` closes fh', async (t) => {
  const p = uniquePath(dir, 'close')
  await disk().writeFile(p, 'x')
  const q = uniquePath(nodeDir, 'close')
  fs.writeFileSync(q, 'x')
  for (const impl of ['node', 'ringline'] as const) {
    const fh = (impl === 'node' ? await fsp.open(q, 'r') : await open(p, 'r')) as FileHandle
    const { close } = fh
    await close()
    t.is(fh.fd, -1, impl)
  }
})

test('stat() results are fs.Stats, as node:fs code checks them', async (t) => {
  const p = uniquePath(dir, 'stats')
  await disk().writeFile(p, 'x')
  const fh = await open(p, 'r')
  const st = await fh.stat()
  await fh.close()
  t.true(st instanceof fs.Stats)
  t.true(st.isFile())
  t.false(st.isDirectory())
  t.is(st.size, 1)
})
