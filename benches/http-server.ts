// Child process of http.ts: one node:http server, on node's own sockets
// (`node`) or on ringline/net's (`ringline`, on the default ring: the
// parent sets RINGLINE_BACKEND and RINGLINE_COMPLETION). It prints
// {"port": N, ...} on stdout once it listens, then answers lines on stdin:
//   cpu    {"cpu": {"user": µs, "system": µs}, "wall": ms}  (process.cpuUsage:
//          every thread of the process, ringline's completion thread too)
//   stats  {"stats": {...}}  the default ring's counters (ringline only)
//   exit   closes the server and exits
//
//   node --import tsx benches/http-server.ts node|ringline [port]
//
// HTTP_KEEPALIVE_MS sets the server's keepAliveTimeout (node's default,
// 5000, otherwise): http-profile.ts sets a long one, since under valgrind a
// connection of the client can wait longer than that for the others.
//
// Routes: /json (a small JSON object, as a string, Content-Type set: the
// common small response) and /big (a 1 MiB Buffer with its Content-Length).
// Anything else: 404.

import * as http from 'node:http'
import * as readline from 'node:readline'
import type * as RinglineNet from '../net'

export const BIG_BYTES = 1 << 20
const JSON_BODY = { message: 'Hello, World!', ok: true, n: 42 }

function handler(big: Buffer): http.RequestListener {
  return (req, res) => {
    if (req.url === '/json') {
      res.setHeader('Content-Type', 'application/json')
      res.end(JSON.stringify(JSON_BODY))
    } else if (req.url === '/big') {
      res.setHeader('Content-Type', 'application/octet-stream')
      res.setHeader('Content-Length', big.length)
      res.end(big)
    } else {
      res.statusCode = 404
      res.end()
    }
  }
}

const emit = (doc: unknown): void => {
  process.stdout.write(`${JSON.stringify(doc)}\n`)
}

async function main(): Promise<void> {
  const engine = process.argv[2]
  const port = Number(process.argv[3] ?? 0)
  if (engine !== 'node' && engine !== 'ringline') throw new Error(`engine: node or ringline, not ${engine}`)
  const big = Buffer.alloc(BIG_BYTES, 'x')
  const server = http.createServer(handler(big))
  if (process.env.HTTP_KEEPALIVE_MS !== undefined) server.keepAliveTimeout = Number(process.env.HTTP_KEEPALIVE_MS)
  let close: () => void
  let stats: () => unknown = () => null
  let info: Record<string, unknown>
  if (engine === 'node') {
    await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve))
    info = { port: (server.address() as { port: number }).port }
    close = () => server.close()
  } else {
    const rn = (await import('../net')) as typeof RinglineNet
    const rl = await import('../index')
    const ring = rl.defaultRing()
    const want = process.env.RINGLINE_BACKEND
    if (want !== undefined && want !== '' && ring.backend !== want) throw new Error(`asked for backend '${want}', the default ring runs on '${ring.backend}'`)
    const rs = rn.serveHttp(server)
    await new Promise<void>((resolve, reject) => {
      rs.once('error', reject)
      rs.listen(port, '127.0.0.1', () => resolve())
    })
    info = { port: (rs.address() as { port: number }).port, backend: ring.backend, completion: process.env.RINGLINE_COMPLETION ?? 'thread' }
    close = () => rs.close()
    stats = () => ring.stats()
  }
  emit(info)
  const rl = readline.createInterface({ input: process.stdin })
  rl.on('line', (line) => {
    switch (line.trim()) {
      case 'cpu':
        emit({ cpu: process.cpuUsage(), wall: performance.now() })
        break
      case 'stats':
        emit({ stats: stats() })
        break
      case 'exit':
        rl.close()
        close()
        setTimeout(() => process.exit(0), 200).unref()
        break
    }
  })
  rl.on('close', () => {
    close()
    setTimeout(() => process.exit(0), 200).unref()
  })
}

main().catch((e: unknown) => {
  emit({ error: String((e as Error)?.stack ?? e) })
  process.exit(1)
})
