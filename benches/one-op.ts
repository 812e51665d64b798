// The cost of one op through the Promise API, for profiling the completion
// path (issue 14): `ops` ops of one kind, `depth` loops each awaiting its
// own, on one engine and completion mode. Prints ops/s, latency
// percentiles and the process's CPU time per op (every thread: the
// completion thread, io-wq workers, the mio engine's pool).
//
//   node --import tsx benches/one-op.ts <kind> <engine> <completion> [depth] [ops] [file]
//
// completion: thread, loop, or sqpoll (thread on a Ring({ sqpoll: true }))
//
// kinds: read        4 KiB random reads of the page-cache file (files.ts's
//                    bench-results/data/cache-512m.dat; read it through first)
//        read-direct the same with O_DIRECT (direct-2048m.dat)
//        datasync    fdatasync of a tmpfs file (/dev/shm): the kernel does
//                    nothing, io_uring runs it on an io-wq worker, so each op
//                    is one trip out and back: the thread hop shows here
//
// Instructions per op: run it twice under callgrind with different `ops`
// and divide the difference (startup and JIT warm-up cancel out), e.g.
//   valgrind --tool=callgrind --callgrind-out-file=cg.a node --import tsx benches/one-op.ts read io_uring thread 1 50000
//   valgrind --tool=callgrind --callgrind-out-file=cg.b node --import tsx benches/one-op.ts read io_uring thread 1 250000
//   (Ir of cg.b - Ir of cg.a) / 200000; a build with symbols: cargo build --profile profiling

import * as fs from 'node:fs'
import * as path from 'node:path'
import { Ring } from '../index'
import { Positions } from './harness'

async function main(): Promise<void> {
  const [kind = 'read', backend = 'io_uring', completion = 'thread', depthArg = '1', opsArg = '200000', fileArg] = process.argv.slice(2)
  const depth = Number(depthArg)
  const ops = Number(opsArg)
  const data = path.join(__dirname, '..', 'bench-results', 'data')
  const direct = kind === 'read-direct'
  const file = fileArg ?? (kind === 'datasync' ? `/dev/shm/ringline-one-op-${process.pid}` : path.join(data, direct ? 'direct-2048m.dat' : 'cache-512m.dat'))
  if (kind === 'datasync') fs.writeFileSync(file, 'x')
  const positions = new Positions(fs.statSync(file).size)
  // completion 'sqpoll': thread mode on a Ring({ sqpoll: true })
  const sqpoll = completion === 'sqpoll'
  const ring = new Ring({ backend: backend as 'io_uring' | 'mio', completion: sqpoll ? 'thread' : (completion as 'thread' | 'loop'), sqpoll })
  const fh = await ring.open(file, kind === 'datasync' ? 'r+' : 'r', undefined, { direct })
  const slab = ring.allocAligned(depth * 4096)
  // files.ts's positions: a table of 2^20 pseudo-random blocks.
  const op = kind === 'datasync' ? (): Promise<unknown> => fh.datasync() : (b: Buffer): Promise<unknown> => fh.read(b, 0, 4096, positions.next())
  const lat = new Float64Array(Math.min(ops, 1 << 20))
  let nl = 0
  let left = ops
  const c0 = process.cpuUsage()
  const t0 = process.hrtime.bigint()
  await Promise.all(
    Array.from({ length: depth }, async (_, i) => {
      const b = slab.subarray(i * 4096, (i + 1) * 4096)
      while (left-- > 0) {
        const s = process.hrtime.bigint()
        await op(b)
        if (nl < lat.length) lat[nl++] = Number(process.hrtime.bigint() - s)
      }
    }),
  )
  const ns = Number(process.hrtime.bigint() - t0)
  const c = process.cpuUsage(c0)
  await fh.close()
  await ring.close()
  if (kind === 'datasync') fs.rmSync(file)
  const l = lat.subarray(0, nl).sort()
  const q = (p: number): string => (l[Math.floor(p * (nl - 1))] / 1000).toFixed(1)
  console.log(
    `${kind} ${backend} ${completion} qd${depth}: ${((ops / ns) * 1e6).toFixed(1)}k/s, p50 ${q(0.5)} p90 ${q(0.9)} us, ${((c.user + c.system) / ops).toFixed(2)} us CPU/op`,
  )
}

void main()
