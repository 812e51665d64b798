// `npm run bench:sim`: how fast the sim engine runs storage code, against
// the same code on io_uring and the real disk, in the same run: 4 KiB
// appends each made durable (append with { sync: 'data' }: a write and an
// fdatasync), one at a time and 32 in flight, and 4 KiB reads of the page
// cache (sim: its memory); and TCP on 127.0.0.1 (sim: its own network): 1 KiB
// request/response round trips on one connection, and whole client/server
// runs (a fresh ring, a listener, 3 clients echoing 50 KB each), which is
// what a test over many seeds repeats. The sim has to be much faster than
// the disk, so that thousands of seeded crash runs fit in one test run.
//
//   node --import tsx benches/sim.ts [--seconds=2] [--dir=/tmp]

import * as fs from 'node:fs'
import * as os from 'node:os'
import * as path from 'node:path'
import { Ring, type Socket } from '../index'

const args = new Map(process.argv.slice(2).map((a) => a.replace(/^--/, '').split('=') as [string, string]))
const SECONDS = Number(args.get('seconds') ?? 2)
const DIR = args.get('dir') ?? os.tmpdir()

/** Ops of one workload at most: 50,000 appends fill 200 MB of the sim's 1 GiB disk. */
const MAX_OPS = 50_000

/** Runs `op` with `depth` callers for SECONDS (or MAX_OPS); returns ops per second. */
async function rate(depth: number, op: () => Promise<unknown>): Promise<number> {
  let n = 0
  const until = performance.now() + SECONDS * 1000
  const caller = async (): Promise<void> => {
    while (performance.now() < until && n < MAX_OPS) {
      await op()
      n++
    }
  }
  const t0 = performance.now()
  await Promise.all(Array.from({ length: depth }, caller))
  return n / ((performance.now() - t0) / 1000)
}

async function measure(ring: Ring, file: string): Promise<Record<string, number>> {
  const block = Buffer.alloc(4096, 7)
  const fh = await ring.open(file, 'a+')
  const out: Record<string, number> = {}
  out['durable appends, 1 at a time'] = await rate(1, () => fh.append(block, { sync: 'data' }))
  await fh.truncate(0)
  out['durable appends, 32 in flight'] = await rate(32, () => fh.append(block, { sync: 'data' }))
  const buf = Buffer.alloc(4096)
  let i = 0
  const blocks = Math.max(1, Math.floor((await fh.stat()).size / 4096))
  out['4 KiB reads, 1 at a time'] = await rate(1, () => fh.read(buf, 0, 4096, 4096 * (i++ % blocks)))
  await fh.close()
  return out
}

async function readAtLeast(s: Socket, n: number): Promise<number> {
  let got = 0
  while (got < n) {
    const c = await s.recv()
    if (c === null) break
    got += c.length
  }
  return got
}

async function echo(s: Socket): Promise<void> {
  for (let c = await s.recv(); c !== null; c = await s.recv()) await s.send(c)
  await s.close()
}

/** One client/server run on a fresh ring: a listener, 3 clients each echoing 50 KB through it. */
async function program(backend: 'io_uring' | 'sim', seed: number): Promise<void> {
  const ring = new Ring(backend === 'sim' ? { backend, seed } : { backend })
  const listener = await ring.listen({ host: '127.0.0.1', port: 0 })
  const port = listener.address().port
  const serving = (async () => {
    const all: Promise<void>[] = []
    for (let i = 0; i < 3; i++) {
      const s = await listener.accept()
      if (s !== null) all.push(echo(s))
    }
    await Promise.all(all)
  })()
  const data = Buffer.alloc(50_000, 3)
  await Promise.all(
    [0, 1, 2].map(async () => {
      const c = await ring.connect({ port, host: '127.0.0.1' })
      await c.send(data)
      await c.shutdown()
      await readAtLeast(c, data.length)
      await c.close()
    }),
  )
  await serving
  await listener.close()
  await ring.close()
}

async function measureNet(ring: Ring, backend: 'io_uring' | 'sim'): Promise<Record<string, number>> {
  const listener = await ring.listen({ host: '127.0.0.1', port: 0 })
  const [client, server] = await Promise.all([ring.connect({ port: listener.address().port, host: '127.0.0.1' }), listener.accept()])
  if (server === null) throw new Error('not accepted')
  const served = echo(server)
  const request = Buffer.alloc(1024, 1)
  const out: Record<string, number> = {}
  out['1 KiB round trips, TCP'] = await rate(1, async () => {
    await client.send(request)
    await readAtLeast(client, request.length)
  })
  await client.close()
  await served
  await listener.close()
  let seed = 0
  out['client/server runs (3 x 50 KB)'] = await rate(1, () => program(backend, ++seed))
  return out
}

async function main(): Promise<void> {
  const real = new Ring({ backend: 'io_uring' })
  const dir = fs.mkdtempSync(path.join(DIR, 'ringline-bench-sim-'))
  const onDisk = { ...(await measure(real, path.join(dir, 'log'))), ...(await measureNet(real, 'io_uring')) }
  await real.close()
  fs.rmSync(dir, { recursive: true, force: true })
  const sim = new Ring({ backend: 'sim', seed: 1 })
  const inSim = { ...(await measure(sim, '/log')), ...(await measureNet(sim, 'sim')) }
  await sim.close()
  console.log(`workload                         io_uring (${DIR})        sim    sim/io_uring`)
  for (const k of Object.keys(onDisk)) {
    const a = onDisk[k]
    const b = inSim[k]
    console.log(`${k.padEnd(32)} ${(a / 1e3).toFixed(1).padStart(10)}k/s ${(b / 1e3).toFixed(1).padStart(9)}k/s ${(b / a).toFixed(1).padStart(8)}x`)
  }
}

main().catch((e) => {
  console.error(e)
  process.exit(1)
})
