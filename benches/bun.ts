// Finding a bun binary for the benchmarks that run peers under Bun
// (fs.ts, files.ts): --bun=PATH, else $BUN, else `bun` on PATH, else the
// npm package @oven/bun-linux-<arch> under --bun-dir (default $BUN_DIR, else
// /tmp/bun), installed with
//   mkdir -p /tmp/bun && cd /tmp/bun && npm install @oven/bun-linux-x64

import { spawnSync } from 'node:child_process'
import * as fs from 'node:fs'
import * as path from 'node:path'

export interface BunInfo {
  path: string | null
  version: string | null
  looked: string[]
}

function bunVersion(bin: string): string | null {
  try {
    const r = spawnSync(bin, ['--version'], { encoding: 'utf8', timeout: 20_000 })
    return r.status === 0 ? r.stdout.trim() : null
  } catch {
    return null
  }
}

/** The bun binary to use: `bin` if given, else the usual places (above). */
export function findBun(bin: string | null, bunDir: string): BunInfo {
  const looked: string[] = []
  const candidates: [string, string][] = []
  if (bin) candidates.push([bin, '--bun'])
  if (process.env.BUN) candidates.push([process.env.BUN, '$BUN'])
  for (const d of (process.env.PATH ?? '').split(path.delimiter)) if (d) candidates.push([path.join(d, 'bun'), 'PATH'])
  const arch = process.arch === 'arm64' ? 'aarch64' : process.arch
  for (const pkg of [`bun-${process.platform}-${arch}`, `bun-${process.platform}-${arch}-baseline`]) {
    candidates.push([path.join(bunDir, 'node_modules', '@oven', pkg, 'bin', 'bun'), '--bun-dir'])
  }
  for (const [p, via] of candidates) {
    if (via === 'PATH' && !fs.existsSync(p)) continue
    looked.push(`${p} (${via})`)
    if (!fs.existsSync(p)) continue
    const v = bunVersion(p)
    if (v !== null) return { path: p, version: v, looked }
  }
  if (!looked.some((l) => l.endsWith('(PATH)'))) looked.push('bun on PATH')
  return { path: null, version: null, looked }
}
