// `npm run bench:sim`: how fast the sim engine runs storage code, against
// the same code on io_uring and the real disk, in the same run: 4 KiB
// appends each made durable (append with { sync: 'data' }: a write and an
// fdatasync), one at a time and 32 in flight, and 4 KiB reads of the page
// cache (sim: its memory). The sim has to be much faster than the disk, so
// that thousands of seeded crash runs fit in one test run.
//
//   node --import tsx benches/sim.ts [--seconds=2] [--dir=/tmp]

import * as fs from 'node:fs'
import * as os from 'node:os'
import * as path from 'node:path'
import { Ring } from '../index'

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

async function main(): Promise<void> {
  const real = new Ring({ backend: 'io_uring' })
  const dir = fs.mkdtempSync(path.join(DIR, 'ringline-bench-sim-'))
  const onDisk = await measure(real, path.join(dir, 'log'))
  await real.close()
  fs.rmSync(dir, { recursive: true, force: true })
  const sim = new Ring({ backend: 'sim', seed: 1 })
  const inSim = await measure(sim, '/log')
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
