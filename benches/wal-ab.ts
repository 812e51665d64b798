// Durable appends, each way of making them durable against the others,
// interleaved: round after round, every variant runs for a short slice (in
// a rotated order) next to the one-at-a-time writeSync + fdatasyncSync
// peer, so that a shared machine's slow minutes hit every variant alike.
// Prints each variant's median ops/s, the median of its per-round ratio to
// the peer, and its CPU time per op (the process's: io_uring's workers and
// the pool's threads included). benches/files.ts has the same rows (WAL groups), one long
// slice each.
//
//   node --import tsx benches/wal-ab.ts [--rounds=N] [--slice=S] [--appenders=1,32]
//        [--backends=io_uring,mio] [--dir=DIR]
//
// Variants (RINGLINE_SYNC_APPEND, read when a Ring is made): 'linked' (a
// write linked to an fdatasync), 'dsync' (one write with RWF_DSYNC), each
// append on its own; 'group+linked' and 'group+dsync' (appends in flight
// together share fdatasyncs; the lone one goes as said). With one appender
// the group variants are the lone ones, so only 'linked' and 'dsync' run.

import * as fs from 'node:fs'
import * as path from 'node:path'
import { Ring } from '../index'

const BLOCK = 4096

function arg(name: string, def: string): string {
  const a = process.argv.find((s) => s.startsWith(`--${name}=`))
  return a === undefined ? def : a.slice(name.length + 3)
}

const rounds = Number(arg('rounds', '8'))
const sliceMs = Number(arg('slice', '1.5')) * 1000
const appenderCounts = arg('appenders', '1,32').split(',').map(Number)
const backends = arg('backends', 'io_uring,mio').split(',') as Array<'io_uring' | 'mio'>
const dir = arg('dir', path.join(__dirname, '..', 'bench-results', 'data'))

function ringWith(how: string, backend: 'io_uring' | 'mio'): Ring {
  const before = process.env.RINGLINE_SYNC_APPEND
  process.env.RINGLINE_SYNC_APPEND = how
  try {
    return new Ring({ backend })
  } finally {
    if (before === undefined) delete process.env.RINGLINE_SYNC_APPEND
    else process.env.RINGLINE_SYNC_APPEND = before
  }
}

/** What a slice measured: ops/s, and the process's CPU time (user + system, its io_uring and pool threads included) per op in µs. */
interface Slice {
  rate: number
  cpu: number
}

/** Synced 4 KiB appends by `appenders` loops on one handle for `ms`. */
async function ringline(how: string, backend: 'io_uring' | 'mio', appenders: number, ms: number): Promise<Slice> {
  const file = path.join(dir, `wal-ab-${how}-${backend}.log`)
  fs.rmSync(file, { force: true })
  const ring = ringWith(how, backend)
  const fh = await ring.open(file, 'a')
  const buf = Buffer.alloc(BLOCK, 0x5a)
  let ops = 0
  const end = performance.now() + ms
  const t0 = performance.now()
  const c0 = process.cpuUsage()
  await Promise.all(
    Array.from({ length: appenders }, async () => {
      while (performance.now() < end) {
        const r = await fh.append(buf, { sync: 'data' })
        if (r.bytesWritten !== BLOCK) throw new Error(`short append: ${r.bytesWritten}`)
        ops++
      }
    }),
  )
  const s = (performance.now() - t0) / 1000
  const c = process.cpuUsage(c0)
  await fh.close()
  await ring.close()
  fs.rmSync(file, { force: true })
  return { rate: ops / s, cpu: (c.user + c.system) / ops }
}

/** writeSync + fdatasyncSync of 4 KiB, one at a time, for `ms`. */
function peer(ms: number): Slice {
  const file = path.join(dir, 'wal-ab-sync.log')
  fs.rmSync(file, { force: true })
  const fd = fs.openSync(file, 'a')
  const buf = Buffer.alloc(BLOCK, 0x5a)
  let ops = 0
  const t0 = performance.now()
  const c0 = process.cpuUsage()
  const end = t0 + ms
  while (performance.now() < end) {
    fs.writeSync(fd, buf)
    fs.fdatasyncSync(fd)
    ops++
  }
  const s = (performance.now() - t0) / 1000
  const c = process.cpuUsage(c0)
  fs.closeSync(fd)
  fs.rmSync(file, { force: true })
  return { rate: ops / s, cpu: (c.user + c.system) / ops }
}

function median(v: number[]): number {
  const s = [...v].sort((a, b) => a - b)
  const m = s.length >> 1
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2
}

const fmt = (n: number): string => (n >= 1000 ? `${(n / 1000).toFixed(2)}k` : n.toFixed(0))

async function main(): Promise<void> {
  fs.mkdirSync(dir, { recursive: true })
  console.log(`wal-ab: ${rounds} rounds, ${sliceMs / 1000} s slices, dir ${dir}, ${new Date().toISOString()}`)
  for (const appenders of appenderCounts) {
    const hows = appenders === 1 ? ['linked', 'dsync'] : ['linked', 'dsync', 'group+linked', 'group+dsync']
    const variants = [...backends.flatMap((b) => hows.map((h) => ({ name: `${h} (${b})`, run: () => ringline(h, b, appenders, sliceMs) }))), { name: 'writeSync+fdatasyncSync', run: async () => peer(sliceMs) }]
    const got = new Map<string, number[]>(variants.map((v) => [v.name, []]))
    const cpu = new Map<string, number[]>(variants.map((v) => [v.name, []]))
    const ratios = new Map<string, number[]>(variants.map((v) => [v.name, []]))
    // Against 'linked' on the same engine, in the same round.
    const vsLinked = new Map<string, number[]>(variants.map((v) => [v.name, []]))
    for (let r = 0; r < rounds; r++) {
      const order = variants.map((_, i) => variants[(i + r) % variants.length])
      const round = new Map<string, Slice>()
      for (const v of order) round.set(v.name, await v.run())
      const p = (round.get('writeSync+fdatasyncSync') as Slice).rate
      for (const [k, x] of round) {
        got.get(k)?.push(x.rate)
        cpu.get(k)?.push(x.cpu)
        ratios.get(k)?.push(x.rate / p)
        const engine = /\((\w+)\)$/.exec(k)?.[1]
        const linked = round.get(`linked (${engine})`)
        if (linked !== undefined) vsLinked.get(k)?.push(x.rate / linked.rate)
      }
      process.stderr.write(`  ${appenders} appender(s), round ${r + 1}: ${[...round].map(([k, x]) => `${k} ${fmt(x.rate)}`).join(', ')}\n`)
    }
    console.log(`\n${appenders} appender(s) on one handle, 4 KiB appends with sync 'data' (writeSync+fdatasyncSync: one at a time)`)
    console.log(`  ${'variant'.padEnd(28)} ${'median/s'.padStart(9)} ${'min'.padStart(8)} ${'max'.padStart(8)} ${'x peer'.padStart(7)} ${'x linked'.padStart(9)} ${'CPU µs/op'.padStart(10)}`)
    for (const v of variants) {
      const xs = got.get(v.name) as number[]
      const vl = vsLinked.get(v.name) as number[]
      const wins = vl.filter((x) => x > 1).length
      const against = vl.length === 0 ? '-' : `${median(vl).toFixed(2)}x`
      console.log(`  ${v.name.padEnd(28)} ${fmt(median(xs)).padStart(9)} ${fmt(Math.min(...xs)).padStart(8)} ${fmt(Math.max(...xs)).padStart(8)} ${`${median(ratios.get(v.name) as number[]).toFixed(2)}x`.padStart(7)} ${against.padStart(9)} ${median(cpu.get(v.name) as number[]).toFixed(1).padStart(10)}${v.name.startsWith('linked') || vl.length === 0 ? '' : `  (faster than linked in ${wins} of ${vl.length} rounds)`}`)
    }
  }
  console.log(`\nx peer, x linked: the median of each round's ratio to writeSync+fdatasyncSync, to 'linked' on the same engine; CPU: the median of the process's user + system time per op`)
}

main().catch((e) => {
  console.error(e)
  process.exit(1)
})
