// Child process of benches/fs.ts: runs one workload (fs-work.ts) with this
// runtime's node:fs, and prints one line of JSON with the measurement. It
// runs under Bun (`bun benches/fs-bun-worker.ts '<job>'`: Bun runs
// TypeScript as it is), and under node as a control (`--child-control`),
// to show what running in a child process alone changes.
//
//   <runtime> benches/fs-bun-worker.ts '{"job": WorkJob, "api": "promises" | "sync"}'
//
// Output (stdout, last line): {"ok": true, "runtime": "...", "measurement": {...}}
// or {"ok": false, "error": "..."}.

import { measureJob, runtimePromises, type Engine, type WorkJob } from './fs-work'

interface Input {
  job: WorkJob
  api: 'promises' | 'sync'
}

function runtime(): string {
  const v = process.versions as Record<string, string | undefined>
  return v.bun !== undefined ? `bun ${v.bun}` : `node ${process.version}`
}

async function main(): Promise<void> {
  const input = JSON.parse(process.argv[2] ?? '') as Input
  const engine: Engine = input.api === 'promises' ? { kind: 'promise', impl: runtimePromises() } : { kind: 'sync' }
  const measurement = await measureJob(input.job, engine)
  process.stdout.write(`${JSON.stringify({ ok: true, runtime: runtime(), measurement })}\n`)
}

main().catch((e: unknown) => {
  process.stdout.write(`${JSON.stringify({ ok: false, runtime: runtime(), error: (e as Error)?.stack ?? String(e) })}\n`)
  process.exitCode = 1
})
