// Scenarios of reliability.spec.ts, each run in a child process by
// fixtures/scenario.ts (not a spec file itself). Each returns a summary
// whose `problems` lists every deviation from the documented behaviour;
// the spec asserts there are none and checks the counts.
//
// Rings are made with `new Ring({...})`, so RINGLINE_BACKEND and
// RINGLINE_COMPLETION of the spec's run choose engine and completion mode.
// Files are made and read back on the disk the ring sees (test-disk.ts):
// on sim, each ring's own, under "/".

import { randomBytes } from 'node:crypto'
import { setMaxListeners } from 'node:events'
import * as fs from 'node:fs'
import * as net from 'node:net'
import * as path from 'node:path'
import { Ring, type FileHandle, type ReadResult, type RingOptions, type Socket, type WriteResult } from '../index'
import { Tracker, codeOf, fdCount, tally, type Scenario, type Settled } from './child-scenario'
import { makeTmpDir, props, waitFor } from './helpers'
import { SIM, disk } from './test-disk'

const MiB = 1024 * 1024

// The spec passes its temporary directory; run by hand, a scenario makes one.
let workDir = SIM ? '/' : process.env.RINGLINE_SCENARIO_DIR
let counter = 0
function tmp(name: string): string {
  workDir ??= makeTmpDir('scenario')
  counter += 1
  return path.join(workDir, `${name}-${process.pid}-${counter}`)
}

function immediate(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve))
}

function isAbort(e: unknown): boolean {
  return props(e).name === 'AbortError' || props(e).code === 'ABORT_ERR'
}

/** Waits (a bounded number of event-loop polls) for the ring to be at rest; reports it otherwise. */
async function atRest(ring: Ring, problems: string[], what: string): Promise<void> {
  const ok = await waitFor(() => {
    const s = ring.stats()
    return s.inFlight === 0 && s.queued === 0
  }, 200, 5)
  if (!ok) {
    const s = ring.stats()
    problems.push(`${what}: ring not at rest after every op settled (inFlight ${s.inFlight}, queued ${s.queued})`)
  }
}

/** Closes the ring, tracked (a ring.close() that never resolves is named by the watchdog). */
async function closeRing(ring: Ring, tracker: Tracker, problems: string[]): Promise<void> {
  const r = await tracker.track('ring.close()', ring.close())
  if (!r.resolved) problems.push(`ring.close() rejected: ${codeOf(r.error)}`)
}

/** Fixed-width record `tag` + index, ending in a newline, for append tests. */
function record(tag: string, i: number, width = 32): Buffer {
  const s = `${tag}${String(i).padStart(6, '0')}`
  return Buffer.from(`${s.padEnd(width - 1, '.')}\n`)
}

/** Positions of zero bytes (at most a few), for "no gap" checks. */
function zeroBytes(b: Buffer): string {
  const at: number[] = []
  for (let i = 0; i < b.length && at.length < 5; i++) if (b[i] === 0) at.push(i)
  return at.length === 0 ? '' : `zero bytes at ${at.join(', ')}${at.length === 5 ? ', ...' : ''}`
}

/** First index where two buffers differ, for messages. */
function firstDiff(a: Buffer, b: Buffer): string {
  let i = 0
  while (i < a.length && i < b.length && a[i] === b[i]) i++
  return `lengths ${a.length} vs ${b.length}, first difference at ${i}`
}

// ------------------------------------------------------------------ (a) CQ overflow

/** Checks reads that ended: resolved with the file's bytes, or rejected ECANCELED. */
function checkReads(results: Settled<ReadResult>[], data: Buffer, positions: number[], problems: string[], what: string): void {
  results.forEach((r, i) => {
    if (r.resolved) {
      const v = r.value
      if (v === undefined) return
      const want = data.subarray(positions[i], positions[i] + v.buffer.length)
      if (v.bytesRead !== want.length || !v.buffer.subarray(0, v.bytesRead).equals(want)) problems.push(`${what}: read ${i} resolved with wrong data (${v.bytesRead} bytes)`)
    } else if (codeOf(r.error) !== 'ECANCELED') {
      problems.push(`${what}: read ${i} rejected with ${codeOf(r.error)}, expected ECANCELED`)
    }
  })
}

/**
 * arg: `same-tick` (close in the submitting tick) or `in-flight` (close
 * once the reads went to the kernel). Ten rounds on one ring: a completion
 * thread that keeps up hides a lost completion most of the time.
 */
const readsThenClose: Scenario = async (arg) => {
  const problems: string[] = []
  const p = tmp('reads')
  const data = randomBytes(64 * 1024)
  const ring = new Ring()
  await disk(ring).writeFile(p, data)
  const tr = new Tracker('1100 reads, then fh.close()')
  const all: Settled<ReadResult>[] = []
  for (let round = 0; round < 10; round++) {
    const fh = await ring.open(p)
    const positions: number[] = []
    const reads: Promise<Settled<ReadResult>>[] = []
    for (let i = 0; i < 1100; i++) {
      const pos = (i * 4096) % data.length
      positions.push(pos)
      reads.push(tr.track(`round ${round} read ${i}`, fh.read(Buffer.alloc(4096), 0, 4096, pos)))
    }
    if (arg === 'in-flight') await Promise.resolve()
    const closed = await tr.track(`round ${round} fh.close()`, fh.close())
    if (!closed.resolved) problems.push(`round ${round}: fh.close() rejected: ${codeOf(closed.error)}`)
    const results = await Promise.all(reads)
    all.push(...results)
    checkReads(results, data, positions, problems, `round ${round}`)
    await atRest(ring, problems, `round ${round}, after close`)
  }
  await closeRing(ring, tr, problems)
  return { problems, settled: tr.settled, tracked: tr.tracked, reads: tally(all) }
}

/** 2,000 files opened, then all closed in one synchronous run; three rounds. */
const openClose2000: Scenario = async () => {
  const problems: string[] = []
  const n = 2000
  const paths: string[] = []
  const ring = new Ring()
  for (let i = 0; i < n; i++) {
    const p = tmp('many')
    await disk(ring).writeFile(p, String(i))
    paths.push(p)
  }
  const tr = new Tracker('2000 opens, then 2000 closes in one tick')
  let opened = 0
  const all: Settled<void>[] = []
  for (let round = 0; round < 3; round++) {
    const opens = await Promise.all(paths.map((p, i) => tr.track(`round ${round} open ${i}`, ring.open(p))))
    const handles: FileHandle[] = []
    for (const o of opens) {
      if (o.resolved && o.value !== undefined) handles.push(o.value)
      else problems.push(`${o.label} rejected: ${codeOf(o.error)}`)
    }
    opened += handles.length
    // every close in one synchronous run
    const closes = handles.map((fh, i) => tr.track(`round ${round} close ${i}`, fh.close()))
    const closed = await Promise.all(closes)
    all.push(...closed)
    for (const c of closed) if (!c.resolved) problems.push(`${c.label} rejected: ${codeOf(c.error)}`)
    await atRest(ring, problems, `round ${round}, after the closes`)
    const openFiles = ring.stats().openFiles
    if (openFiles !== 0) problems.push(`round ${round}: stats().openFiles is ${openFiles} after every close resolved`)
  }
  await closeRing(ring, tr, problems)
  return { problems, opened, closes: tally(all), settled: tr.settled, tracked: tr.tracked }
}

/**
 * arg: `<maxInFlight>:<file|ring>`, which close ends the 100 reads. Fifty
 * rounds, each on a fresh ring of one entry (with a completion thread that
 * keeps up, a lost completion shows only now and then).
 */
const tinyRing: Scenario = async (arg) => {
  const [mif, which] = arg.split(':')
  const problems: string[] = []
  const p = tmp('tiny')
  const data = randomBytes(16 * 1024)
  if (!SIM) fs.writeFileSync(p, data)
  const tr = new Tracker(`entries 1, maxInFlight ${mif}: 100 reads then ${which} close`)
  const all: Settled<ReadResult>[] = []
  for (let round = 0; round < 50; round++) {
    const ring = new Ring({ entries: 1, maxInFlight: Number(mif) })
    if (SIM) await disk(ring).writeFile(p, data) // each sim ring has a disk of its own
    const fh = await ring.open(p)
    const positions: number[] = []
    const reads: Promise<Settled<ReadResult>>[] = []
    for (let i = 0; i < 100; i++) {
      const pos = (i * 1024) % data.length
      positions.push(pos)
      reads.push(tr.track(`round ${round} read ${i}`, fh.read(Buffer.alloc(1024), 0, 1024, pos)))
    }
    if (which === 'file') {
      const c = await tr.track(`round ${round} fh.close()`, fh.close())
      if (!c.resolved) problems.push(`round ${round}: fh.close() rejected: ${codeOf(c.error)}`)
      const results = await Promise.all(reads)
      all.push(...results)
      checkReads(results, data, positions, problems, `round ${round}`)
      await atRest(ring, problems, `round ${round}, after fh.close()`)
      await closeRing(ring, tr, problems)
    } else {
      await closeRing(ring, tr, problems)
      const results = await Promise.all(reads)
      all.push(...results)
      checkReads(results, data, positions, problems, `round ${round}`)
      const st = ring.stats()
      if (st.inFlight !== 0 || st.queued !== 0) problems.push(`round ${round}: after ring.close(): inFlight ${st.inFlight}, queued ${st.queued}`)
    }
  }
  return { problems, reads: tally(all), settled: tr.settled, tracked: tr.tracked }
}

/**
 * arg: maxInFlight of the ring (empty: the default). 50 synced appends
 * under one signal, aborted in the submitting tick, in a microtask, in
 * setImmediate, or once the first append settled; ten rounds of each on one
 * ring of one entry. After each round every append has settled and the
 * ring is at rest (inFlight 0, queued 0).
 */
const abortSyncAppends: Scenario = async (mif) => {
  const problems: string[] = []
  const ring = new Ring(mif === '' ? { entries: 1 } : { entries: 1, maxInFlight: Number(mif) })
  const tr = new Tracker(`50 aborted synced appends on entries 1, maxInFlight ${mif || 'default'}`)
  const all: Settled<WriteResult>[] = []
  for (const when of ['now', 'microtask', 'immediate', 'first']) {
    for (let round = 0; round < 10; round++) {
      const p = tmp('abort-append')
      const fh = await ring.open(p, 'w')
      const ac = new AbortController()
      setMaxListeners(100, ac.signal)
      const appends: Promise<Settled<WriteResult>>[] = []
      for (let i = 0; i < 50; i++) appends.push(tr.track(`${when} ${round} append ${i}`, fh.append(record('R', i, 512), { sync: 'data', signal: ac.signal })))
      if (when === 'now') ac.abort()
      else if (when === 'microtask') queueMicrotask(() => ac.abort())
      else if (when === 'immediate') setImmediate(() => ac.abort())
      else void Promise.race(appends).then(() => ac.abort())
      const results = await Promise.all(appends)
      all.push(...results)
      for (const r of results) {
        if (!r.resolved && !isAbort(r.error) && codeOf(r.error) !== 'ECANCELED') problems.push(`${r.label} rejected with ${codeOf(r.error)}`)
      }
      await atRest(ring, problems, `abort ${when}, round ${round}`)
      const c = await tr.track(`${when} ${round} fh.close()`, fh.close())
      if (!c.resolved) problems.push(`abort ${when}, round ${round}: fh.close() rejected: ${codeOf(c.error)}`)
    }
  }
  await closeRing(ring, tr, problems)
  return { problems, appends: tally(all), settled: tr.settled, tracked: tr.tracked }
}

// ------------------------------------------------------------------ (b) throwing getter in a readv array

const readvGetter: Scenario = async () => {
  const problems: string[] = []
  const p = tmp('readv')
  const data = randomBytes(64)
  const ring = new Ring()
  await disk(ring).writeFile(p, data)
  const tr = new Tracker('readv with a throwing getter')
  const fh = await ring.open(p)
  const first = Buffer.alloc(10)
  const second = Buffer.alloc(10)
  const arr = [first, second]
  const reads: Promise<Settled<ReadResult>>[] = []
  for (let i = 0; i < 10; i++) reads.push(tr.track(`read ${i}`, fh.read(Buffer.alloc(4), 0, 4, i * 4)))
  const rv = tr.track('readv', fh.readv(arr, 0))
  // Same tick, after submission: element 1 becomes a throwing getter.
  Object.defineProperty(arr, 1, {
    get(): never {
      throw new Error('boom')
    },
  })
  for (let i = 10; i < 20; i++) reads.push(tr.track(`read ${i}`, fh.read(Buffer.alloc(2), 0, 2, i)))
  const [r, ...rs] = await Promise.all([rv, ...reads])
  let readv: string
  if (r.resolved && r.value !== undefined) {
    readv = `resolved ${r.value.bytesRead}`
    if (r.value.bytesRead !== 20) problems.push(`readv resolved with bytesRead ${r.value.bytesRead}, expected 20`)
    if (!first.equals(data.subarray(0, 10))) problems.push('readv: the first view does not hold bytes 0..10')
    if (!second.equals(data.subarray(10, 20))) problems.push('readv: the second view (captured at submission) does not hold bytes 10..20')
  } else {
    readv = `rejected ${codeOf(r.error)}`
    problems.push(`readv rejected with ${codeOf(r.error)}: the views were captured at submission, it should resolve`)
  }
  rs.forEach((x, i) => {
    if (!x.resolved) problems.push(`read ${i} rejected with ${codeOf(x.error)}`)
  })
  const c = await tr.track('fh.close()', fh.close())
  if (!c.resolved) problems.push(`fh.close() rejected: ${codeOf(c.error)}`)
  await closeRing(ring, tr, problems)
  return { problems, readv, reads: tally(rs) }
}

// ------------------------------------------------------------------ (c) append on handles not opened 'a'

/** arg: the open flags ('r+' or 'w'). */
const appendAfterWrite: Scenario = async (flags) => {
  const problems: string[] = []
  const p = tmp('append-after-write')
  const ring = new Ring()
  await disk(ring).writeFile(p, '')
  const tr = new Tracker(`append after an unawaited write, ${flags}`)
  const fh = await ring.open(p, flags)
  const w = tr.track('write', fh.write(Buffer.alloc(4096, 'A'), 0, 4096, 0))
  const a = await tr.track('append', fh.append('RECORD\n'))
  const wr = await w
  if (!wr.resolved) problems.push(`write rejected ${codeOf(wr.error)}`)
  if (!a.resolved) problems.push(`append rejected ${codeOf(a.error)}`)
  await tr.track('fh.close()', fh.close())
  const got = await disk(ring).readFile(p)
  const want = Buffer.concat([Buffer.alloc(4096, 'A'), Buffer.from('RECORD\n')])
  if (!got.equals(want)) problems.push(`file is not 4096 'A' then 'RECORD\\n': ${firstDiff(got, want)}; ends with ${JSON.stringify(got.subarray(-12).toString('latin1'))}`)
  await closeRing(ring, tr, problems)
  return { problems, size: got.length }
}

const appendAfterTruncate: Scenario = async () => {
  const problems: string[] = []
  const p = tmp('append-after-truncate')
  const ring = new Ring()
  await disk(ring).writeFile(p, Buffer.alloc(10_000, 'z'))
  const tr = new Tracker('append after an unawaited truncate')
  const fh = await ring.open(p, 'r+')
  const t = tr.track('truncate', fh.truncate(0))
  const a = await tr.track('append', fh.append('X'))
  const tt = await t
  if (!tt.resolved) problems.push(`truncate rejected ${codeOf(tt.error)}`)
  if (!a.resolved) problems.push(`append rejected ${codeOf(a.error)}`)
  await tr.track('fh.close()', fh.close())
  const got = await disk(ring).readFile(p)
  if (got.toString('latin1') !== 'X') problems.push(`file is ${got.length} bytes, expected exactly 'X'; starts ${JSON.stringify(got.subarray(0, 8).toString('latin1'))}, ${zeroBytes(got)}`)
  await closeRing(ring, tr, problems)
  return { problems, size: got.length }
}

/** arg: the open flags. 100 appends fired in one tick land in call order. */
const appendOrder: Scenario = async (flags) => {
  const problems: string[] = []
  const p = tmp('append-order')
  const ring = new Ring()
  await disk(ring).writeFile(p, '')
  const tr = new Tracker(`100 appends in one tick, ${flags}`)
  const fh = await ring.open(p, flags)
  const recs = Array.from({ length: 100 }, (_, i) => record('order', i, 10 + (i % 7) * 13))
  const results = await Promise.all(recs.map((r, i) => tr.track(`append ${i}`, fh.append(r))))
  results.forEach((r, i) => {
    if (!r.resolved) problems.push(`append ${i} rejected ${codeOf(r.error)}`)
    else if (r.value?.bytesWritten !== recs[i].length) problems.push(`append ${i} wrote ${String(r.value?.bytesWritten)} of ${recs[i].length}`)
  })
  await tr.track('fh.close()', fh.close())
  const got = await disk(ring).readFile(p)
  const want = Buffer.concat(recs)
  if (!got.equals(want)) problems.push(`file is not the 100 records in call order: ${firstDiff(got, want)}; ${zeroBytes(got)}`)
  await closeRing(ring, tr, problems)
  return { problems, size: got.length }
}

/**
 * arg: `none` or `data` (the appends' sync). An append aborted after
 * submission (before the next append is called, right after it, in a
 * microtask, in setImmediate), then another append: the file holds the
 * first record iff its promise resolved, then the second, and no gap.
 * Thirty fresh files per timing, to catch the race.
 */
const abortedAppendThenAppend: Scenario = async (arg) => {
  const sync = arg === 'data' ? 'data' : 'none'
  const problems: string[] = []
  const ring = new Ring()
  const tr = new Tracker(`aborted append then append (sync ${sync})`)
  const outcomes: Record<string, number> = {}
  for (let n = 0; n < 120; n++) {
    const timing = ['before-next', 'after-next', 'microtask', 'immediate'][n % 4]
    const round = `${timing} ${Math.floor(n / 4)}`
    const p = tmp('aborted-append')
    await disk(ring).writeFile(p, '')
    const fh = await ring.open(p, 'r+')
    const ac = new AbortController()
    const rec1 = record('first', n)
    const rec2 = record('second', n)
    const p1 = tr.track(`round ${round} append 1`, fh.append(rec1, { sync, signal: ac.signal }))
    let p2: Promise<Settled<WriteResult>>
    if (timing === 'before-next') {
      ac.abort()
      p2 = tr.track(`round ${round} append 2`, fh.append(rec2, { sync }))
    } else {
      p2 = tr.track(`round ${round} append 2`, fh.append(rec2, { sync }))
      if (timing === 'after-next') ac.abort()
      else if (timing === 'microtask') queueMicrotask(() => ac.abort())
      else setImmediate(() => ac.abort())
    }
    const [r1, r2] = await Promise.all([p1, p2])
    const k = `${timing}: ${r1.resolved ? 'resolved' : isAbort(r1.error) ? 'AbortError' : codeOf(r1.error)}`
    outcomes[k] = (outcomes[k] ?? 0) + 1
    if (!r1.resolved && !isAbort(r1.error) && codeOf(r1.error) !== 'ECANCELED') problems.push(`round ${round}: the aborted append rejected with ${codeOf(r1.error)}`)
    if (!r2.resolved) problems.push(`round ${round}: the second append rejected with ${codeOf(r2.error)}`)
    await tr.track(`round ${round} close`, fh.close())
    const got = await disk(ring).readFile(p)
    const want = Buffer.concat(r1.resolved ? [rec1, rec2] : [rec2])
    if (!got.equals(want)) {
      problems.push(`round ${round} (first ${r1.resolved ? 'resolved' : 'rejected'}): file is not ${r1.resolved ? 'record 1 + record 2' : 'record 2 alone'}: ${firstDiff(got, want)}; ${zeroBytes(got)}`)
    }
  }
  await closeRing(ring, tr, problems)
  return { problems, outcomes }
}

/** arg: `same` (both handles on one ring) or `two` (a ring each). */
const twoHandlesAppend: Scenario = async (arg) => {
  const problems: string[] = []
  const p = tmp('two-handles')
  const ringA = new Ring()
  const ringB = arg === 'two' ? new Ring() : ringA
  await disk(ringA).writeFile(p, '')
  const tr = new Tracker(`two r+ handles appending (${arg} ring)`)
  const a = await ringA.open(p, 'r+')
  const b = await ringB.open(p, 'r+')
  const recs: Buffer[] = []
  const appends: Promise<Settled<WriteResult>>[] = []
  for (let i = 0; i < 200; i++) {
    const ra = record('A', i)
    const rb = record('B', i)
    recs.push(ra, rb)
    appends.push(tr.track(`A ${i}`, a.append(ra)), tr.track(`B ${i}`, b.append(rb)))
  }
  const results = await Promise.all(appends)
  for (const r of results) if (!r.resolved) problems.push(`${r.label} rejected ${codeOf(r.error)}`)
  await tr.track('close A', a.close())
  await tr.track('close B', b.close())
  const got = await disk(ringA).readFile(p)
  const z = zeroBytes(got)
  if (z !== '') problems.push(`the file has ${z}`)
  const want = recs.reduce((s, r) => s + r.length, 0)
  if (got.length !== want) problems.push(`file is ${got.length} bytes, expected ${want}`)
  const text = got.toString('latin1')
  const seen = new Map<string, number>()
  for (const line of text.split('\n')) if (line !== '') seen.set(line, (seen.get(line) ?? 0) + 1)
  let missing = 0
  let repeated = 0
  for (const r of recs) {
    const c = seen.get(r.toString('latin1').slice(0, -1)) ?? 0
    if (c === 0) missing++
    if (c > 1) repeated++
  }
  if (missing > 0) problems.push(`${missing} of 400 records missing`)
  if (repeated > 0) problems.push(`${repeated} records more than once`)
  // each handle's own records in its call order
  for (const tag of ['A', 'B']) {
    const order = text.split('\n').filter((l) => l.startsWith(tag) && /^[AB]\d{6}/.test(l)).map((l) => Number(l.slice(1, 7)))
    if (order.some((v, i) => i > 0 && v < order[i - 1])) problems.push(`handle ${tag}'s records are not in call order`)
  }
  await closeRing(ringA, tr, problems)
  if (ringB !== ringA) await closeRing(ringB, tr, problems)
  return { problems, size: got.length, missing, repeated }
}

// ------------------------------------------------------------------ (d) truthful results

/**
 * arg: open flags. 64 synced appends, then fh.close() without awaiting
 * them: in the submitting tick, once they went to the kernel, or after an
 * event-loop turn; three files each.
 */
const syncAppendsThenClose: Scenario = async (flags) => {
  const problems: string[] = []
  const ring = new Ring()
  const tr = new Tracker(`64 synced appends then close (${flags})`)
  const all: Settled<WriteResult>[] = []
  for (const when of ['same-tick', 'in-flight', 'immediate']) {
    for (let round = 0; round < 3; round++) {
      const what = `${when} ${round}`
      const p = tmp('sync-appends')
      await disk(ring).writeFile(p, '')
      const fh = await ring.open(p, flags)
      const recs = Array.from({ length: 64 }, (_, i) => record(`r${round}x`, i, 64))
      const appends = recs.map((r, i) => tr.track(`${what} append ${i}`, fh.append(r, { sync: 'data' })))
      if (when === 'in-flight') await Promise.resolve()
      else if (when === 'immediate') await immediate()
      const closing = tr.track(`${what} close`, fh.close())
      const results = await Promise.all(appends)
      const c = await closing
      if (!c.resolved) problems.push(`${what}: close rejected ${codeOf(c.error)}`)
      all.push(...results)
      const got = await disk(ring).readFile(p)
      const text = got.toString('latin1')
      // close() waits for the appends called before it (node:fs/promises'
      // FileHandle.close does): every one lands and resolves.
      results.forEach((r, i) => {
        const present = text.includes(recs[i].toString('latin1'))
        if (r.resolved && !present) problems.push(`${what}: append ${i} resolved but its record is not in the file`)
        if (!r.resolved) problems.push(`${what}: append ${i} rejected (${codeOf(r.error)}), but close() waits for it`)
      })
      const want = Buffer.concat(recs.filter((_, i) => results[i].resolved))
      if (!got.equals(want)) problems.push(`${what}: file is not the resolved records in call order: ${firstDiff(got, want)}; ${zeroBytes(got)}`)
    }
  }
  await closeRing(ring, tr, problems)
  return { problems, appends: tally(all) }
}

/**
 * 64 writes at distinct positions of a pre-filled file, each with its own
 * signal, all aborted after submission: in the submitting tick, in a
 * microtask, in setImmediate; ten files each.
 */
const abortedWrites: Scenario = async () => {
  const problems: string[] = []
  const ring = new Ring()
  const tr = new Tracker('aborted writes')
  const size = 4096
  const n = 64
  const all: Settled<WriteResult>[] = []
  for (let k = 0; k < 30; k++) {
    const timing = ['now', 'microtask', 'immediate'][k % 3]
    const round = `${timing} ${Math.floor(k / 3)}`
    const p = tmp('aborted-writes')
    await disk(ring).writeFile(p, Buffer.alloc(n * size, '.'))
    const fh = await ring.open(p, 'r+')
    const acs = Array.from({ length: n }, () => new AbortController())
    const writes = acs.map((ac, i) => tr.track(`round ${round} write ${i}`, fh.write(Buffer.alloc(size, 0x41 + (i % 26)), { position: i * size, signal: ac.signal })))
    const abort = (): void => {
      for (const ac of acs) ac.abort()
    }
    if (timing === 'now') abort()
    else if (timing === 'microtask') queueMicrotask(abort)
    else setImmediate(abort)
    const results = await Promise.all(writes)
    all.push(...results)
    await tr.track(`round ${round} close`, fh.close())
    const got = await disk(ring).readFile(p)
    results.forEach((r, i) => {
      const region = got.subarray(i * size, (i + 1) * size)
      if (r.resolved) {
        if (r.value?.bytesWritten !== size) problems.push(`round ${round}: write ${i} resolved with bytesWritten ${String(r.value?.bytesWritten)}`)
        if (!region.equals(Buffer.alloc(size, 0x41 + (i % 26)))) problems.push(`round ${round}: write ${i} resolved but its bytes are not in the file`)
      } else {
        if (!isAbort(r.error) && codeOf(r.error) !== 'ECANCELED') problems.push(`round ${round}: write ${i} rejected with ${codeOf(r.error)}`)
        if (!region.equals(Buffer.alloc(size, '.'))) problems.push(`round ${round}: write ${i} rejected (${isAbort(r.error) ? 'AbortError' : codeOf(r.error)}) but changed the file`)
      }
    })
  }
  await closeRing(ring, tr, problems)
  return { problems, writes: tally(all) }
}

/**
 * 3,000 writes on a ring of maxInFlight 16, then ring.close(): in the
 * submitting tick, once the first went to the kernel, after an event-loop
 * turn. A write that resolved is in the file; one that rejected (ECANCELED)
 * left the pre-filled bytes alone.
 */
const ringCloseWrites: Scenario = async () => {
  const problems: string[] = []
  const size = 512
  const n = 3000
  const all: Settled<WriteResult>[] = []
  for (const when of ['same-tick', 'in-flight', 'immediate']) {
    const p = tmp('ring-close-writes')
    fs.writeFileSync(p, Buffer.alloc(n * size, '.')) // (real disk only: see reliability.spec)
    const ring = new Ring({ maxInFlight: 16 })
    const tr = new Tracker(`3000 writes, then ring.close() (${when})`)
    const fh = await ring.open(p, 'r+')
    const bufs = Array.from({ length: n }, (_, i) => {
      const b = Buffer.alloc(size, 0x61 + (i % 26))
      b.writeUInt32BE(i, 0)
      return b
    })
    const writes = bufs.map((b, i) => tr.track(`write ${i}`, fh.write(b, 0, size, i * size)))
    if (when === 'in-flight') await Promise.resolve()
    else if (when === 'immediate') await immediate()
    await closeRing(ring, tr, problems)
    const results = await Promise.all(writes)
    all.push(...results)
    const got = fs.readFileSync(p)
    let lying = 0
    let lost = 0
    const codes = new Set<string>()
    results.forEach((r, i) => {
      const region = got.subarray(i * size, (i + 1) * size)
      if (r.resolved) {
        if (!region.equals(bufs[i])) lost++
      } else {
        if (codeOf(r.error) !== 'ECANCELED') codes.add(codeOf(r.error))
        if (!region.equals(Buffer.alloc(size, '.'))) lying++
      }
    })
    if (codes.size > 0) problems.push(`${when}: writes rejected with ${[...codes].join(', ')} (expected ECANCELED)`)
    if (lost > 0) problems.push(`${when}: ${lost} writes resolved but their bytes are not in the file`)
    if (lying > 0) problems.push(`${when}: ${lying} writes rejected but changed the file`)
  }
  return { problems, writes: tally(all) }
}

// ------------------------------------------------------------------ (e) memory

function rss(): number {
  return process.memoryUsage().rss
}

/** Peak RSS of the process so far (getrusage ru_maxrss), in bytes. */
function maxRss(): number {
  return process.resourceUsage().maxRSS * 1024
}

const memWrites: Scenario = async () => {
  const problems: string[] = []
  const p = tmp('mem-writes')
  const ring = new Ring()
  const tr = new Tracker('1000 concurrent 1 MiB writes')
  const fh = await ring.open(p, 'w')
  const buf = Buffer.alloc(MiB, 'w')
  // warm-up: the ring's own memory belongs to the baseline
  await fh.write(buf, 0, MiB, 0)
  const base = rss()
  let peak = base
  const writes: Promise<Settled<WriteResult>>[] = []
  for (let i = 0; i < 1000; i++) {
    writes.push(
      tr.track(`write ${i}`, fh.write(buf, 0, MiB, i * MiB)).then((r) => {
        peak = Math.max(peak, rss())
        return r
      }),
    )
  }
  peak = Math.max(peak, rss())
  const results = await Promise.all(writes)
  const maxGrowth = maxRss() - base
  const growth = Math.max(peak - base, maxGrowth)
  for (const r of results) if (!r.resolved || r.value?.bytesWritten !== MiB) problems.push(`${r.label}: ${r.resolved ? `bytesWritten ${String(r.value?.bytesWritten)}` : codeOf(r.error)}`)
  const bound = 400 * MiB
  if (growth >= bound) problems.push(`RSS grew by ${Math.round(growth / MiB)} MiB for 1000 writes of one 1 MiB buffer (bound ${bound / MiB} MiB)`)
  await tr.track('fh.close()', fh.close())
  await closeRing(ring, tr, problems)
  fs.rmSync(p, { force: true })
  return { problems, baseMiB: Math.round(base / MiB), sampledGrowthMiB: Math.round((peak - base) / MiB), maxRssGrowthMiB: Math.round(maxGrowth / MiB) }
}

const memReadMany: Scenario = async () => {
  const problems: string[] = []
  const p = tmp('mem-readmany')
  const data = randomBytes(4096)
  const ring = new Ring()
  await disk(ring).writeFile(p, data)
  const tr = new Tracker('readMany 24 x 64 MiB')
  const fh = await ring.open(p)
  const buf = Buffer.alloc(64 * MiB, 1)
  await fh.read(buf, 0, 4096, 0)
  const base = rss()
  let peak = base
  const sampler = setInterval(() => {
    peak = Math.max(peak, rss())
  }, 1)
  const reqs = Array.from({ length: 24 }, () => ({ buffer: buf, position: 0 }))
  const r = await tr.track('readMany', fh.readMany(reqs))
  clearInterval(sampler)
  peak = Math.max(peak, rss())
  const maxGrowth = maxRss() - base
  const growth = Math.max(peak - base, maxGrowth)
  if (!r.resolved) problems.push(`readMany rejected ${codeOf(r.error)}`)
  else if (r.value?.some((c) => c !== 4096)) problems.push(`readMany counts ${JSON.stringify(r.value)}`)
  if (!buf.subarray(0, 4096).equals(data)) problems.push('the buffer does not hold the file')
  const bound = 200 * MiB
  if (growth >= bound) problems.push(`RSS grew by ${Math.round(growth / MiB)} MiB for readMany of 24 x 64 MiB into one buffer (bound ${bound / MiB} MiB)`)
  await tr.track('fh.close()', fh.close())
  await closeRing(ring, tr, problems)
  return { problems, baseMiB: Math.round(base / MiB), sampledGrowthMiB: Math.round((peak - base) / MiB), maxRssGrowthMiB: Math.round(maxGrowth / MiB) }
}

// ------------------------------------------------------------------ (f) descriptor leaks

const ringLeak: Scenario = async () => {
  const problems: string[] = []
  const tr = new Tracker('1000 x new Ring(); await ring.close()')
  // warm-up: whatever the first ring sets up once for the process
  await tr.track('warm-up close', new Ring().close())
  const before = fdCount()
  for (let i = 0; i < 1000; i++) {
    const ring = new Ring()
    const c = await tr.track(`close ${i}`, ring.close())
    if (!c.resolved) problems.push(`close ${i} rejected ${codeOf(c.error)}`)
  }
  const after = fdCount()
  if (after - before > 10) problems.push(`descriptors grew from ${before} to ${after} over 1000 closed rings`)
  return { problems, before, after }
}

// ------------------------------------------------------------------ (g) connect with keep-alive

async function netServer(): Promise<{ server: net.Server; port: number; sockets: Set<net.Socket>; accepted: () => number }> {
  const sockets = new Set<net.Socket>()
  let accepted = 0
  const server = net.createServer((s) => {
    accepted++
    sockets.add(s)
    s.on('error', () => undefined)
    s.on('close', () => sockets.delete(s))
    s.resume()
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const a = server.address()
  if (a === null || typeof a === 'string') throw new Error('no port')
  return { server, port: a.port, sockets, accepted: () => accepted }
}

const keepAliveLeak: Scenario = async () => {
  const problems: string[] = []
  const srv = await netServer()
  const ring = new Ring()
  const tr = new Tracker('connect with keepAliveInitialDelay 40e6')
  // warm-up connection: the ring's socket machinery belongs to the baseline
  const w = await ring.connect({ port: srv.port, host: '127.0.0.1' })
  await w.close()
  await waitFor(() => srv.sockets.size === 0, 200, 5)
  const before = fdCount()
  const results: Settled<Socket>[] = []
  for (let i = 0; i < 20; i++) {
    const r = await tr.track(`connect ${i}`, ring.connect({ port: srv.port, host: '127.0.0.1', keepAlive: true, keepAliveInitialDelay: 40e6 }))
    results.push(r)
    if (r.resolved && r.value !== undefined) await tr.track(`close ${i}`, r.value.close())
  }
  // the server closes its ends (so only the client's descriptors can remain)
  await waitFor(() => srv.accepted() >= 21, 200, 5)
  for (const s of srv.sockets) s.destroy()
  await waitFor(() => srv.sockets.size === 0, 200, 5)
  const after = fdCount()
  if (after - before >= 10) problems.push(`descriptors grew from ${before} to ${after} over 20 connects (${JSON.stringify(tally(results))})`)
  for (const r of results) if (!r.resolved && !(r.error instanceof Error)) problems.push(`${r.label} rejected with a non-Error`)
  await closeRing(ring, tr, problems)
  await new Promise<void>((resolve) => srv.server.close(() => resolve()))
  return { problems, before, after, connects: tally(results), accepted: srv.accepted() }
}

// ------------------------------------------------------------------ (h) EMFILE

/** Opens /dev/null until EMFILE, then tries new Ring() while freeing one descriptor at a time. */
const emfile: Scenario = async () => {
  const problems: string[] = []
  const fds: number[] = []
  for (;;) {
    try {
      fds.push(fs.openSync('/dev/null', 'r'))
    } catch (e) {
      if (codeOf(e) !== 'EMFILE') throw e
      break
    }
    if (fds.length > 100_000) throw new Error('no descriptor limit: run under prlimit --nofile')
  }
  const attempts: string[] = []
  let made: Ring | null = null
  for (let free = 0; free <= 8 && made === null; free++) {
    if (free > 0) fs.closeSync(fds.pop() as number)
    const options: RingOptions = {}
    try {
      made = new Ring(options)
      attempts.push(`${free} free: ok`)
    } catch (e) {
      const code = codeOf(e)
      attempts.push(`${free} free: ${code}`)
      if (code !== 'EMFILE') problems.push(`new Ring() with ${free} descriptor(s) free threw ${code} (${e instanceof Error ? e.message : String(e)}), expected EMFILE`)
    }
  }
  for (const fd of fds) fs.closeSync(fd)
  if (made !== null) await made.close()
  if (attempts[0]?.endsWith(': ok')) problems.push('new Ring() succeeded with no descriptor free')
  return { problems, attempts }
}

export const scenarios: Record<string, Scenario> = {
  readsThenClose,
  openClose2000,
  tinyRing,
  abortSyncAppends,
  readvGetter,
  appendAfterWrite,
  appendAfterTruncate,
  appendOrder,
  abortedAppendThenAppend,
  twoHandlesAppend,
  syncAppendsThenClose,
  abortedWrites,
  ringCloseWrites,
  memWrites,
  memReadMany,
  ringLeak,
  keepAliveLeak,
  emfile,
}
