// A fixed number of HTTP/1.1 keep-alive GETs, for profiling a server per
// request (benches/NET-FINDINGS.md): `--requests N` requests over `--conns C`
// node:net connections, `--pipeline P` requests written at once on each
// (the next P once all P answers are in), then it exits. Every response of
// one route has the same length (the Date header has a fixed width), so the
// first response's length counts the rest.
//
// With --warm W: W requests first, then it prints {"warm": W} and waits
// for a line on stdin before the --requests requests, on the same
// connections (so the counted window has no connection set-up in it, and
// the server's code has seen its sockets already).
//
//   node --import tsx benches/http-count.ts --port P [--path /json]
//        [--requests 10000] [--warm 0] [--conns 100] [--pipeline 1]

import * as net from 'node:net'

function arg(name: string, def: string): string {
  const i = process.argv.indexOf(`--${name}`)
  return i >= 0 && i + 1 < process.argv.length ? process.argv[i + 1] : def
}

const port = Number(arg('port', '0'))
const route = arg('path', '/json')
const warm = Number(arg('warm', '0'))
let total = warm > 0 ? warm : Number(arg('requests', '10000'))
let warming = warm > 0
let waiting: (() => void)[] = []
const conns = Number(arg('conns', '100'))
const pipeline = Number(arg('pipeline', '1'))
const one = `GET ${route} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\n\r\n`
const batch = Buffer.from(one.repeat(pipeline))

/** Length of the first complete response in `buf`, or -1. */
function responseLength(buf: Buffer): number {
  const end = buf.indexOf('\r\n\r\n')
  if (end < 0) return -1
  const head = buf.subarray(0, end).toString('latin1')
  const m = /\r\ncontent-length: *(\d+)/i.exec(head)
  if (m === null) throw new Error(`no Content-Length in ${JSON.stringify(head)}`)
  const len = end + 4 + Number(m[1])
  return buf.length >= len ? len : -1
}

let sent = 0
let done = 0
let respLen = -1
let t0 = performance.now()

function start(): void {
  const s = net.createConnection({ port, host: '127.0.0.1', noDelay: true })
  let pending = 0
  let head: Buffer[] = []
  let bytes = 0
  const next = (): void => {
    if (sent >= total) {
      if (warming) {
        waiting.push(next)
        if (waiting.length === conns) warmed()
        return
      }
      s.end()
      return
    }
    const n = Math.min(pipeline, total - sent)
    sent += n
    pending = n
    s.write(n === pipeline ? batch : Buffer.from(one.repeat(n)))
  }
  s.on('connect', next)
  s.on('data', (d: Buffer) => {
    bytes += d.length
    if (respLen < 0) {
      head.push(d)
      const l = responseLength(Buffer.concat(head))
      if (l < 0) return
      respLen = l
      head = []
    }
    while (pending > 0 && bytes >= respLen) {
      bytes -= respLen
      pending--
      done++
    }
    if (pending === 0) {
      if (bytes !== 0) throw new Error(`${bytes} bytes past the responses`)
      next()
    }
  })
  s.on('error', (e) => {
    process.stderr.write(`client: ${e.message}\n`)
    process.exit(1)
  })
  s.on('close', () => {
    if (warming || pending > 0 || sent < total) {
      process.stderr.write(`client: the server closed a connection with requests to go (keepAliveTimeout?)\n`)
      process.exit(1)
    }
    if (--open === 0) {
      const ms = performance.now() - t0
      process.stdout.write(`${JSON.stringify({ requests: done, ms: +ms.toFixed(1), perSec: Math.round((done / ms) * 1000), responseBytes: respLen })}\n`)
    }
  })
}

/** Every connection is done with the warm-up: wait for the go. */
function warmed(): void {
  process.stdout.write(`${JSON.stringify({ warm: done })}\n`)
  process.stdin.once('data', () => {
    process.stdin.destroy()
    warming = false
    sent = 0
    done = 0
    total = Number(arg('requests', '10000'))
    t0 = performance.now()
    const w = waiting
    waiting = []
    for (const f of w) f()
  })
}

let open = conns
for (let i = 0; i < conns; i++) start()
