// Child process of files.ts: runs one node:fs peer job (peers.ts) and prints
// one line of JSON on stdout. files.ts starts it with UV_USE_IO_URING=1,
// which libuv reads once, when the event loop starts; that is why it needs
// its own process.
//
//   node --import tsx benches/peer-child.ts '{"job":{...},"opts":{...}}'

import { ioUringFds, runPeerJob, type Alloc, type PeerJob } from './peers'
import type { TimedOptions } from './harness'

interface Request {
  job: PeerJob
  opts: TimedOptions
}

async function main(): Promise<void> {
  const req = JSON.parse(process.argv[2] ?? '') as Request
  // Counted before ringline (below) opens rings of its own.
  const uringFds = ioUringFds()
  let alloc: Alloc = () => {
    throw new Error('aligned memory not needed')
  }
  if (req.job.kind === 'read' && req.job.direct) {
    // ringline's allocAligned is only the allocator here: O_DIRECT needs
    // aligned memory, and node:fs reads into it as into any Buffer.
    const { Ring } = await import('../index')
    const ring = new Ring({ registerBuffers: false, registerFiles: false })
    alloc = (size) => ring.allocAligned(size)
  }
  const m = await runPeerJob(req.job, req.opts, alloc)
  process.stdout.write(`${JSON.stringify({ ok: true, uringFds, env: process.env.UV_USE_IO_URING ?? null, measurement: m })}\n`)
}

main().then(
  () => process.exit(0),
  (e: unknown) => {
    const err = e as { message?: string; code?: string }
    process.stdout.write(`${JSON.stringify({ ok: false, error: String(err?.message ?? e), code: err?.code ?? null })}\n`)
    process.exit(1)
  },
)
