// The engine summary: per workload, ringline on io_uring and on mio against
// the node peer of the same run (node:fs fs/promises for files, node:net for
// TCP), with a mark where mio is below node (the target: mio >= node).
// files.ts and net.ts print it for their own workloads and keep the rows in
// their JSON (`engineSummary`); all.ts prints both together at the end.

import { fmtRate, fmtRatio, pad, padLeft, type Backend } from './harness'

export interface EngineRow {
  bench: 'files' | 'tcp' | 'http'
  /** The group: "O_DIRECT qd32 read", "pingpong-1", ... */
  workload: string
  /** The ringline variant compared ("ringline read") and the peer ("fs/promises"). */
  variant: string
  peer: string
  unit: 'ops/s' | 'round trips/s' | 'GB/s' | 'req/s'
  /** The figures of the run (null: not run or failed). */
  node: number | null
  ioUring: number | null
  mio: number | null
}

const fmt = (unit: EngineRow['unit'], v: number | null): string => {
  if (v === null || !Number.isFinite(v)) return '-'
  return unit === 'GB/s' ? `${v.toFixed(2)} GB/s` : fmtRate(v)
}

const ratio = (a: number | null, b: number | null): number | null => (a === null || b === null || !(b > 0) ? null : a / b)

const fmtR = (r: number | null): string => (r === null ? '-' : fmtRatio(r))

/**
 * Prints the table and a line naming the workloads where mio is below node.
 * `backends`: the engines the run asked for (a missing figure of one of them is marked).
 */
export function printEngineSummary(rows: EngineRow[], backends: readonly Backend[], log: (s: string) => void): void {
  if (rows.length === 0) return
  const pairs = [...new Set(rows.map((r) => `${r.variant} vs ${r.peer}`))]
  log(`  (${pairs.join('; ')}; same run; ratios of throughput; target: mio >= node)`)
  log(
    `  ${pad('workload', 24)}${padLeft('node', 11)}${padLeft('io_uring', 11)}${padLeft('/node', 8)}` +
      `${padLeft('mio', 11)}${padLeft('/node', 8)}${padLeft('mio/io_uring', 14)}`,
  )
  const below: string[] = []
  let judged = 0
  for (const r of rows) {
    const u = ratio(r.ioUring, r.node)
    const m = ratio(r.mio, r.node)
    const mu = ratio(r.mio, r.ioUring)
    let mark = ''
    if (m !== null) {
      judged++
      if (m < 1) {
        mark = '  <-- mio below node'
        below.push(`${r.workload} ${fmtRatio(m)}`)
      }
    } else if (backends.includes('mio') && r.node !== null && r.mio === null) {
      mark = '  (no mio figure)'
    }
    log(
      `  ${pad(r.workload, 24)}${padLeft(fmt(r.unit, r.node), 11)}${padLeft(fmt(r.unit, r.ioUring), 11)}${padLeft(fmtR(u), 8)}` +
        `${padLeft(fmt(r.unit, r.mio), 11)}${padLeft(fmtR(m), 8)}${padLeft(fmtR(mu), 14)}${mark}`,
    )
  }
  log('')
  if (!backends.includes('mio')) log('  (mio not run: --backends)')
  else if (judged === 0) log('  mio vs node: no workload with both figures')
  else if (below.length === 0) log(`  mio >= node on all ${judged} workloads with both figures`)
  else log(`  mio below node on ${below.length} of ${judged} workloads: ${below.join(', ')}`)
}
