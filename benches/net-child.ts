// Child process of net.ts: runs one TCP job (net-work.ts), server and client
// in this one process, and prints JSON lines on stdout: {"progress": "..."}
// while it runs (the soak's samples), then {"ok": true, "result": ...} or
// {"ok": false, "error": ...}.
//
//   node --expose-gc --import tsx benches/net-child.ts '{"job":{...},"opts":{...}}'

import type { TimedOptions } from './harness'
import { runNetJob, type NetJob } from './net-work'

interface Request {
  job: NetJob
  opts: TimedOptions
}

const emit = (doc: unknown): void => {
  process.stdout.write(`${JSON.stringify(doc)}\n`)
}

async function main(): Promise<void> {
  const req = JSON.parse(process.argv[2] ?? '') as Request
  const result = await runNetJob(req.job, req.opts, (line) => emit({ progress: line }))
  emit({ ok: true, result })
}

main().then(
  () => process.exit(0),
  (e: unknown) => {
    const err = e as { message?: string; code?: string; stack?: string }
    emit({ ok: false, error: String(err?.message ?? e), code: err?.code ?? null, stack: err?.stack ?? null })
    process.exit(1)
  },
)
