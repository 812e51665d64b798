// The node:fs peers: the same workloads as ringline's, through
// node:fs/promises, node:fs callbacks and the synchronous calls. They run in
// the benchmark process (libuv default: thread pool) and in a child process
// started with UV_USE_IO_URING=1 (peer-child.ts), where libuv uses io_uring.

import * as fs from 'node:fs'
import * as fsp from 'node:fs/promises'
import { BLOCK, Positions, callbackLoops, promiseLoops, runSyncTimed, runTimed, type Measurement, type TimedOptions } from './harness'

const O_DIRECT = (fs.constants as Record<string, number>).O_DIRECT ?? 0

/** 4 KiB random reads, `depth` in flight. */
export interface ReadJob {
  kind: 'read'
  engine: 'promises' | 'callback'
  file: string
  fileSize: number
  direct: boolean
  depth: number
}

/** 4 KiB appends, each followed by fdatasync, one at a time, to a fresh file. */
export interface WalJob {
  kind: 'wal'
  engine: 'promises' | 'callback' | 'sync'
  file: string
}

export type PeerJob = ReadJob | WalJob

/** Memory for the reads: O_DIRECT needs aligned buffers, which plain Node Buffers are not. */
export type Alloc = (size: number) => Buffer

/** Read latency is sampled one op in this many (a power of two). */
export const READ_SAMPLE_EVERY = 4

export async function runPeerJob(job: PeerJob, opts: TimedOptions, alloc: Alloc): Promise<Measurement> {
  return job.kind === 'read' ? peerRead(job, opts, alloc) : peerWal(job, opts)
}

function readBuffers(job: ReadJob, alloc: Alloc): Buffer[] {
  // One slab, one 4 KiB slice per op in flight (as for ringline).
  const slab = job.direct ? alloc(job.depth * BLOCK) : Buffer.alloc(job.depth * BLOCK)
  const bufs: Buffer[] = []
  for (let i = 0; i < job.depth; i++) bufs.push(slab.subarray(i * BLOCK, (i + 1) * BLOCK))
  return bufs
}

async function peerRead(job: ReadJob, opts: TimedOptions, alloc: Alloc): Promise<Measurement> {
  const flags = fs.constants.O_RDONLY | (job.direct ? O_DIRECT : 0)
  const bufs = readBuffers(job, alloc)
  const pos = new Positions(job.fileSize)
  if (job.engine === 'promises') {
    const fh = await fsp.open(job.file, flags)
    try {
      return await runTimed(opts, READ_SAMPLE_EVERY, (ctl) =>
        promiseLoops(
          ctl,
          job.depth,
          (slot) => fh.read(bufs[slot], 0, BLOCK, pos.next()),
          (r) => (r.bytesRead === BLOCK ? 1 : -1),
        ),
      )
    } finally {
      await fh.close()
    }
  }
  const fd = fs.openSync(job.file, flags)
  try {
    return await runTimed(opts, READ_SAMPLE_EVERY, (ctl) =>
      callbackLoops(ctl, job.depth, BLOCK, (slot, cb) => fs.read(fd, bufs[slot], 0, BLOCK, pos.next(), cb)),
    )
  } finally {
    fs.closeSync(fd)
  }
}

async function peerWal(job: WalJob, opts: TimedOptions): Promise<Measurement> {
  const buf = Buffer.alloc(BLOCK, 0x5a)
  fs.rmSync(job.file, { force: true })
  try {
    if (job.engine === 'promises') {
      const fh = await fsp.open(job.file, 'a')
      try {
        return await runTimed(opts, 1, (ctl) =>
          promiseLoops(
            ctl,
            1,
            async () => {
              const r = await fh.write(buf, 0, BLOCK, null)
              await fh.datasync()
              return r.bytesWritten
            },
            (n) => (n === BLOCK ? 1 : -1),
          ),
        )
      } finally {
        await fh.close()
      }
    }
    const fd = fs.openSync(job.file, 'a')
    try {
      if (job.engine === 'sync') {
        return runSyncTimed(opts, () => {
          if (fs.writeSync(fd, buf, 0, BLOCK, null) !== BLOCK) throw new Error('short write')
          fs.fdatasyncSync(fd)
        })
      }
      return await runTimed(opts, 1, (ctl) =>
        callbackLoops(ctl, 1, BLOCK, (_slot, cb) =>
          fs.write(fd, buf, 0, BLOCK, null, (err, n) => {
            if (err) cb(err, 0)
            else fs.fdatasync(fd, (err2) => cb(err2, n))
          }),
        ),
      )
    } finally {
      fs.closeSync(fd)
    }
  } finally {
    fs.rmSync(job.file, { force: true })
  }
}

/** How many io_uring instances this process holds (libuv's show up with UV_USE_IO_URING=1). */
export function ioUringFds(): number {
  let n = 0
  try {
    for (const f of fs.readdirSync('/proc/self/fd')) {
      try {
        if (fs.readlinkSync(`/proc/self/fd/${f}`).includes('io_uring')) n++
      } catch {
        // the directory's own fd, or one closed meanwhile
      }
    }
  } catch {
    return -1
  }
  return n
}
