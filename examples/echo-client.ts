// A TCP echo client: sends lines and prints what comes back.
//
//   node --import tsx examples/echo-client.ts [host] port [line ...]
//
// With lines on the command line it sends each of them; without, it sends
// the lines of stdin (type, or pipe a file in). One line at a time: a line
// goes out, the client waits for all of its bytes to come back, prints
// them, then sends the next. At the end it half-closes the connection
// (shutdown) and waits for the server to close its side.
//
//   node --import tsx examples/echo-server.ts 7000 &
//   node --import tsx examples/echo-client.ts 7000 hello world
//   printf 'one\ntwo\n' | node --import tsx examples/echo-client.ts localhost 7000

import { createInterface } from 'node:readline'
import { connect, type Socket } from '../index'

function usage(): never {
  console.error('usage: node --import tsx examples/echo-client.ts [host] port [line ...]')
  process.exit(2)
}

const isPort = (s: string | undefined): boolean => s !== undefined && /^\d+$/.test(s) && Number(s) >= 1 && Number(s) <= 65535

/** Bytes received ahead of what the current line needed (none from an echo server). */
let spare: Buffer = Buffer.alloc(0)

/** Reads exactly `n` bytes (a TCP stream may hand them over in any number of chunks). */
async function recvExactly(sock: Socket, n: number): Promise<Buffer> {
  const parts: Buffer[] = spare.length > 0 ? [spare] : []
  let got = spare.length
  while (got < n) {
    const chunk = await sock.recv()
    if (chunk === null) throw new Error(`the server closed the connection after ${got} of ${n} bytes`)
    parts.push(chunk)
    got += chunk.length
  }
  const all = Buffer.concat(parts, got)
  spare = all.subarray(n)
  return all.subarray(0, n)
}

async function* stdinLines(): AsyncGenerator<string> {
  const rl = createInterface({ input: process.stdin, crlfDelay: Infinity, terminal: false })
  for await (const line of rl) yield line
}

async function* argLines(lines: string[]): AsyncGenerator<string> {
  yield* lines
}

async function main(): Promise<void> {
  const args = process.argv.slice(2)
  let host = 'localhost'
  if (!isPort(args[0])) {
    if (!isPort(args[1])) usage()
    host = args.shift()!
  }
  const port = Number(args.shift())
  const sock = await connect({ host, port })
  const addr = (a = '?', p = 0): string => (a.includes(':') ? `[${a}]:${p}` : `${a}:${p}`)
  console.error(`connected to ${addr(sock.remoteAddress, sock.remotePort)} from ${addr(sock.localAddress, sock.localPort)}`)

  let lines = 0
  let totalUs = 0
  try {
    for await (const line of args.length > 0 ? argLines(args) : stdinLines()) {
      const data = Buffer.from(`${line}\n`)
      const t0 = process.hrtime.bigint()
      // Send and wait for the echo at once (the echo cannot arrive before
      // the send anyway); both must succeed.
      const [, echo] = await Promise.all([sock.send(data), recvExactly(sock, data.length)])
      totalUs += Number(process.hrtime.bigint() - t0) / 1000
      lines++
      process.stdout.write(echo)
    }
    await sock.shutdown() // the server reads end of stream, and closes its side
    const rest = await sock.recv()
    if (rest !== null) console.error(`unexpected ${rest.length} bytes after the last echo`)
  } finally {
    await sock.close()
  }
  if (lines > 0) console.error(`${lines} line${lines > 1 ? 's' : ''} echoed, ${(totalUs / lines).toFixed(0)} µs per round trip on average`)
}

main().catch((e) => {
  console.error(e)
  process.exit(1)
})
