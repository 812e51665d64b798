// Reliability: every op settles and tells the truth under queue pressure,
// cancellation and close; appends land at the end whatever the open flags;
// bounded memory; no leaked descriptors; Node's errors for bad input.
//
// Scenarios that can hang, crash or leak on a broken build run in child
// processes (reliability-scenarios.ts through fixtures/scenario.ts): the
// test asserts the child finished by itself, exited 0 and found no
// problem. Nothing here measures time.

import test, { type ExecutionContext } from 'ava'
import * as fs from 'node:fs'
import * as net from 'node:net'
import { connect, open, Ring } from '../index'
import { noProblems } from './child-scenario'
import { makeTmpDir, outcome, props, rejection, removeTmpDir, uniquePath, waitFor, which } from './helpers'
import { SIM, disk, realKernelOnly, testDir } from './sim-setup'

const dir = makeTmpDir('reliability')
test.after.always(() => removeTmpDir(dir))
/** Where the tests in this process keep files for the default ring. */
const ringDir = testDir('reliability')

const MODULE = 'reliability-scenarios.ts'
const env = { ...process.env, RINGLINE_SCENARIO_DIR: dir }

/** A test body that runs scenario `name` in a child and asserts it found no problem. */
function inChild(name: string, arg = ''): (t: ExecutionContext) => Promise<void> {
  return async (t) => {
    await noProblems(t, MODULE, name, arg, { env })
  }
}

// ---------------------------------------------------------------- (a) CQ overflow loses no completion

test('1,100 reads of one file, then fh.close() in the same tick: close resolves, every read settles', inChild('readsThenClose', 'same-tick'))
test('1,100 reads of one file in the kernel, then fh.close(): close resolves, every read settles', inChild('readsThenClose', 'in-flight'))
test('2,000 files opened, then all closed in one tick: every close settles', inChild('openClose2000'))
for (const mif of [2, 4, 8]) {
  test(`ring { entries: 1, maxInFlight: ${mif} }, 100 reads, then fh.close(): everything settles`, inChild('tinyRing', `${mif}:file`))
  test(`ring { entries: 1, maxInFlight: ${mif} }, 100 reads, then ring.close(): everything settles`, inChild('tinyRing', `${mif}:ring`))
}
test('50 synced appends aborted on a ring of entries 1: every promise settles, the ring ends at rest', inChild('abortSyncAppends', ''))
test('50 synced appends aborted on a ring of entries 1, maxInFlight 2: every promise settles, the ring ends at rest', inChild('abortSyncAppends', '2'))

// ---------------------------------------------------------------- (b) a throwing getter in a readv array

test('readv whose array gets a throwing getter after submission settles with the captured views; the batch settles; no uncaught exception', inChild('readvGetter'))

// ---------------------------------------------------------------- (c) append on handles not opened 'a'

for (const flags of ['r+', 'w']) {
  test(`append after an unawaited write on a '${flags}' handle lands after the written bytes`, inChild('appendAfterWrite', flags))
  test(`100 appends in one tick on a '${flags}' handle land in call order, without gaps`, inChild('appendOrder', flags))
}
test('append after an unawaited truncate(0) on an r+ handle: the file is exactly the appended byte', inChild('appendAfterTruncate'))
for (const sync of ['none', 'data']) {
  test(`an append aborted after submission (sync ${sync}), then another: the file holds the first iff it resolved, no gap`, inChild('abortedAppendThenAppend', sync))
}
test('two r+ handles on one ring appending 200 records each: every record once, no zero bytes', inChild('twoHandlesAppend', 'same'))
realKernelOnly('two rings on one file: each sim ring has a disk of its own')('two r+ handles on two rings appending 200 records each: every record once, no zero bytes', inChild('twoHandlesAppend', 'two'))

// ---------------------------------------------------------------- (d) results tell the truth

for (const flags of ['a', 'r+', 'w']) {
  test(`64 synced appends then close ('${flags}'): close waits for them, every record lands in call order`, inChild('syncAppendsThenClose', flags))
}
test('writes aborted after submission: a rejected write left no bytes, a resolved one is there', inChild('abortedWrites'))
realKernelOnly('reads the file back after ring.close(): a sim disk goes with its ring')('ring.close() with 3,000 writes outstanding on maxInFlight 16: rejected writes left no bytes, resolved ones are there', inChild('ringCloseWrites'))

// ---------------------------------------------------------------- (e) memory

realKernelOnly("a bound on RSS while 1 GB is written: a real kernel keeps it in its page cache, the sim disk in the process's memory")('1,000 concurrent 1 MiB writes of one buffer grow RSS by less than 400 MB (a child process)', inChild('memWrites'))
test('readMany of 24 x 64 MiB into one buffer on a 4 KiB file grows RSS by less than 200 MB (a child process)', inChild('memReadMany'))

// ---------------------------------------------------------------- (f) descriptor leaks

test('1,000 x (new Ring(); await ring.close()) keeps no descriptor (no forced GC)', inChild('ringLeak'))

// ---------------------------------------------------------------- (g) connect

realKernelOnly('a node:net peer: the sim\'s network is its own ring\'s')('connect() with keepAliveInitialDelay 40e6 (20 times) connects or rejects, and leaks no socket', inChild('keepAliveLeak'))

realKernelOnly('a node:net peer: the sim\'s network is its own ring\'s')('connect() with a keepAliveInitialDelay past 2**31-1 ms connects as node:net does (the idle time is clamped, never wrapped)', async (t) => {
  let connections = 0
  const server = net.createServer((s) => {
    connections++
    s.destroy()
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => new Promise<void>((resolve) => server.close(() => resolve())))
  const a = server.address()
  if (a === null || typeof a === 'string') return t.fail('no port')
  const ring = new Ring()
  t.teardown(async () => {
    await outcome(ring.close())
  })
  // 2**32 s + 1 s in ms would wrap to 1 s in a u32 of seconds
  for (const delay of [2 ** 31, 2 ** 32, 4294967297000]) {
    const nodeSock = net.connect({ port: a.port, host: '127.0.0.1', keepAlive: true, keepAliveInitialDelay: delay })
    const nodeOk = await new Promise<boolean>((resolve) => {
      nodeSock.once('connect', () => resolve(true))
      nodeSock.once('error', () => resolve(false))
    })
    nodeSock.destroy()
    t.true(nodeOk, `node:net connects with delay ${delay}`)
    const r = await outcome(ring.connect({ port: a.port, host: '127.0.0.1', keepAlive: true, keepAliveInitialDelay: delay }))
    t.true(r.resolved, `delay ${delay}: connects as node:net does, got ${String(r.error)}`)
    if (r.resolved) await (r.value as { close(): Promise<void> }).close()
  }
  await waitFor(() => connections >= 6, 200, 5)
  t.is(connections, 6, 'both connected each time')
})

// ---------------------------------------------------------------- (h) the errors Node gives

function sparse(): Buffer[] {
  return [Buffer.alloc(1), , Buffer.alloc(1)] as unknown as Buffer[]
}

test('readv and writev of a sparse array reject TypeError ERR_INVALID_ARG_TYPE, as node:fs/promises does', async (t) => {
  const p = uniquePath(ringDir)
  await disk().writeFile(p, 'abcdef')
  // node's errors, on a real file of the same contents (on sim too).
  const q = SIM ? uniquePath(dir) : p
  if (SIM) fs.writeFileSync(q, 'abcdef')
  const nfh = await fs.promises.open(q, 'r+')
  const nodeReadv = await rejection(t, nfh.readv(sparse(), 0))
  const nodeWritev = await rejection(t, nfh.writev(sparse(), 0))
  await nfh.close()
  t.true(nodeReadv instanceof TypeError)
  t.is(props(nodeReadv).code, 'ERR_INVALID_ARG_TYPE', 'node:fs/promises readv')
  t.is(props(nodeWritev).code, 'ERR_INVALID_ARG_TYPE', 'node:fs/promises writev')

  const fh = await open(p, 'r+')
  t.teardown(async () => {
    await outcome(fh.close())
  })
  const r = await rejection(t, fh.readv(sparse(), 0))
  t.true(r instanceof TypeError, `readv: a TypeError, got ${String(r)}`)
  t.is(props(r).code, 'ERR_INVALID_ARG_TYPE', `readv: ${String(r)}`)
  const w = await rejection(t, fh.writev(sparse(), 0))
  t.true(w instanceof TypeError, `writev: a TypeError, got ${String(w)}`)
  t.is(props(w).code, 'ERR_INVALID_ARG_TYPE', `writev: ${String(w)}`)
  t.is(await disk().readText(p), 'abcdef', 'nothing was written')
})

test('open() of a Uint8Array whose buffer was detached rejects with the error node:fs/promises gives', async (t) => {
  const detached = (): Uint8Array => {
    const u8 = new Uint8Array(Buffer.from(uniquePath(dir)))
    structuredClone(u8.buffer, { transfer: [u8.buffer] })
    return u8
  }
  const nodeErr = await rejection(t, fs.promises.open(detached() as Buffer))
  let thrown: unknown
  let p: Promise<unknown> | undefined
  try {
    p = open(detached() as Buffer)
  } catch (e) {
    thrown = e
  }
  t.is(thrown, undefined, `open() returned a rejected promise rather than throwing: ${String(thrown)}`)
  if (p === undefined) return
  const e = await rejection(t, p)
  t.true(e instanceof Error, `an Error, got ${String(e)}`)
  // Node 20 gives V8's TypeError with no code here; ringline gives the same.
  t.is(props(e).name, props(nodeErr).name, `the class node:fs/promises gives (${String(props(nodeErr).name)}): ${String(e)}`)
  t.is(props(e).code, props(nodeErr).code, "node's code (or none, as node)")
  t.is(props(e).message, props(nodeErr).message, "node's message")
})

realKernelOnly('a node:net peer: the sim\'s network is its own ring\'s')('send() of 10,000 one-byte buffers delivers all 10,000 bytes or rejects before submission, never EINVAL', async (t) => {
  let received = 0
  const server = net.createServer((s) => {
    s.on('data', (d: Buffer) => {
      received += d.length
    })
    s.on('error', () => undefined)
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => new Promise<void>((resolve) => server.close(() => resolve())))
  const a = server.address()
  if (a === null || typeof a === 'string') return t.fail('no port')
  const sock = await connect({ port: a.port, host: '127.0.0.1' })
  t.teardown(async () => {
    await outcome(sock.close())
  })
  const parts: Buffer[] = Array.from({ length: 10000 }, () => Buffer.alloc(1, 0x5a))
  const o = await outcome(sock.send(parts), 2000, 5)
  t.true(o.settled, 'send settles')
  if (o.resolved) {
    t.is(o.value, 10000)
    t.true(await waitFor(() => received >= 10000, 2000, 5), `all 10,000 bytes arrive (got ${received})`)
    t.is(received, 10000)
  } else {
    const e = o.error
    t.not(props(e).code, 'EINVAL', `rejected with EINVAL: ${String(e)}`)
    t.true(e instanceof RangeError || e instanceof TypeError, `a RangeError or TypeError, got ${String(e)}`)
    t.true(['ERR_OUT_OF_RANGE', 'ERR_INVALID_ARG_VALUE'].includes(String(props(e).code)), `code ${String(props(e).code)}`)
    // refused before submission: the socket still works
    t.is(await sock.send(Buffer.from('ok')), 2)
    t.true(await waitFor(() => received >= 2, 2000, 5))
    t.is(received, 2, 'none of the refused message was sent')
  }
})

test('new Ring() with no descriptor left throws code EMFILE, not GenericFailure (a child under prlimit)', async (t) => {
  const prlimit = which('prlimit')
  // Without prlimit the child fills the whole descriptor limit itself.
  await noProblems(t, MODULE, 'emfile', '', { env, prefix: prlimit === null ? [] : [prlimit, '--nofile=256:256'] })
})
