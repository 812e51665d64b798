// A fixed number of round trips of a ping-pong over one connection with the
// callback API (listen and connect with socket handlers), both ends in this
// process, on the default ring: for counting what one round trip costs, as
// one-op.ts does for a file op. Prints the default ring's stats at the end.
//
//   node --import tsx benches/pingpong-count.ts [roundTrips] [size]
//
// Instructions per round trip: run it twice under callgrind with different
// counts and divide the difference (startup and JIT warm-up cancel out), e.g.
//   valgrind --tool=callgrind --callgrind-out-file=cg.a node --import tsx benches/pingpong-count.ts 2000
//   valgrind --tool=callgrind --callgrind-out-file=cg.b node --import tsx benches/pingpong-count.ts 42000
//   (Ir of cg.b - Ir of cg.a) / 40000
// Syscalls and wake-ups per round trip: strace -f -c, or /usr/bin/time's
// voluntary context switches (%w), over the same command.
// RINGLINE_BACKEND and RINGLINE_COMPLETION pick the engine and the mode.

import { defaultRing, listen, connect, type CallbackSocket } from '../index'

async function main(): Promise<void> {
  const n = Number(process.argv[2] ?? 10000)
  const size = Number(process.argv[3] ?? 64)
  if (!Number.isInteger(n) || n < 1 || !Number.isInteger(size) || size < 1) throw new Error('usage: pingpong-count.ts [roundTrips >= 1] [size >= 1]')
  const msg = Buffer.alloc(size, 0x61)
  const server = await listen({ host: '127.0.0.1', port: 0, socket: { data: (s, d) => void s.write(d) } })
  let left = n
  let got = 0
  let done!: () => void
  const finished = new Promise<void>((resolve) => (done = resolve))
  const client: CallbackSocket = await connect({
    host: '127.0.0.1',
    port: server.address().port,
    socket: {
      data: (s, d) => {
        got += d.length
        if (got < size) return
        got = 0
        if (--left > 0) s.write(msg)
        else done()
      },
    },
  })
  const t0 = process.hrtime.bigint()
  client.write(msg)
  await finished
  const us = Number(process.hrtime.bigint() - t0) / 1000
  console.log(`${n} round trips of ${size} B in ${(us / 1e6).toFixed(3)} s: ${(us / n).toFixed(2)} µs each (${defaultRing().backend}, ${process.env.RINGLINE_COMPLETION ?? 'thread'})`)
  console.log(JSON.stringify(defaultRing().stats()))
  client.close()
  await server.close()
}

main().then(
  () => process.exit(0),
  (e: unknown) => {
    console.error(e)
    process.exit(1)
  },
)
