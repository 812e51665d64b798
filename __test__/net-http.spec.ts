// node:http on ringline/net sockets, each scenario beside the same one on
// node:net (net-sides.ts: node:net on both sides is the reference; ringline
// on the server side, the client side, or both must give the same result).
//
// Server (node:http fed by serveHttp): keep-alive and pipelining, 408 from
// headersTimeout and requestTimeout, 400 and 431, keepAliveTimeout closing
// an idle connection, chunked request and response bodies with trailers, a
// client that half-closes after its request, a client that resets or
// closes mid-response, a slow reader (the server's writes wait for it: the
// bytes queued stay bounded, and every byte arrives), closeIdleConnections,
// and an upgrade handing the socket over. Client: node:http through a
// keep-alive http.Agent whose createConnection is the side's (sockets
// reused, pooled, dropped when the server closes them, and unref'd while
// idle so a process exits).

import test, { type ExecutionContext } from 'ava'
import { once } from 'node:events'
import * as fs from 'node:fs'
import * as http from 'node:http'
import type * as net from 'node:net'
import * as path from 'node:path'
import { makeTmpDir, removeTmpDir, run, tick, waitFor } from './helpers'
import { MiB, pattern, sha256 } from './net-helpers'
import { connector, dial, listenOn, netRequire, sideBySide, type Side } from './net-sides'

/** A raw client: what it received, whether it saw 'end', and its error. */
class Raw {
  text = ''
  ended = false
  error: string | undefined
  readonly closed: Promise<void>
  readonly #waiters = new Set<() => void>()

  constructor(readonly socket: net.Socket) {
    socket.setEncoding('latin1')
    socket.on('data', (d: string) => {
      this.text += d
      for (const w of this.#waiters) w()
    })
    socket.on('end', () => (this.ended = true))
    socket.on('error', (e: NodeJS.ErrnoException) => (this.error = e.code ?? e.message))
    this.closed = new Promise((resolve) =>
      socket.on('close', () => {
        for (const w of this.#waiters) w()
        resolve()
      }),
    )
  }

  /** Resolves once what was received matches `re` (rejects if the connection closes first). */
  until(re: RegExp): Promise<void> {
    return new Promise((resolve, reject) => {
      const check = (): void => {
        if (re.test(this.text)) {
          this.#waiters.delete(check)
          resolve()
        } else if (this.socket.destroyed) {
          this.#waiters.delete(check)
          reject(new Error(`closed before ${re}: got ${JSON.stringify(this.text)}`))
        }
      }
      this.#waiters.add(check)
      check()
    })
  }

  /** Everything received and how it ended, once the connection closed (Date headers removed). */
  async result(): Promise<{ text: string; ended: boolean; error: string | undefined }> {
    await this.closed
    return { text: normalize(this.text), ended: this.ended, error: this.error }
  }
}

function raw(t: ExecutionContext, side: Side, port: number, options: { allowHalfOpen?: boolean } = {}): Raw {
  return new Raw(dial(t, side, port, options))
}

/** Without the Date headers (the only bytes that differ from run to run). */
function normalize(text: string): string {
  return text.replace(/^Date: .*\r\n/gim, '')
}

function responses(text: string): string[] {
  return text.split(/(?=HTTP\/1\.1 )/).filter((s) => s.length > 0)
}

const get = (url: string, extra = ''): string => `GET ${url} HTTP/1.1\r\nHost: x\r\n${extra}\r\n`

/** Numbers the connections of `srv` in the order they come (`connectionId(socket)`). */
function numberConnections(srv: http.Server): (s: net.Socket) => number {
  const ids = new WeakMap<net.Socket, number>()
  let n = 0
  srv.on('connection', (s: net.Socket) => ids.set(s, ++n))
  return (s) => ids.get(s) ?? 0
}

// ------------------------------------------------------------ node:http server

test('server: keep-alive and pipelining: requests on one connection, one after another and pipelined, answered in order', async (t) => {
  const r = await sideBySide(t, async (s) => {
    const srv = http.createServer((req, res) => {
      res.setHeader('X-Connection', String(id(req.socket)))
      res.end(`you asked ${req.url}`)
    })
    const id = numberConnections(srv)
    const { port } = await listenOn(t, s.server, srv)
    const c = raw(t, s.client, port)
    c.socket.write(get('/1'))
    await c.until(/you asked \/1$/)
    c.socket.write(get('/2'))
    await c.until(/you asked \/2$/)
    c.socket.write(get('/a') + get('/b') + get('/c', 'Connection: close\r\n'))
    return c.result()
  })
  const rs = responses(r.text)
  t.is(rs.length, 5)
  t.deepEqual(
    rs.map((x) => x.slice(x.lastIndexOf('\r\n') + 2)),
    ['you asked /1', 'you asked /2', 'you asked /a', 'you asked /b', 'you asked /c'],
  )
  t.true(rs.every((x) => x.includes('X-Connection: 1\r\n')), 'one connection')
  t.regex(rs[3], /Connection: keep-alive/)
  t.regex(rs[4], /Connection: close/)
  t.true(r.ended)
  t.is(r.error, undefined)
})

test('server: headersTimeout and requestTimeout answer 408 and close', async (t) => {
  const r = await sideBySide(t, async (s) => {
    let handled = 0
    let bodyBytes = 0
    const conns: net.Socket[] = []
    const srv = http.createServer({ connectionsCheckingInterval: 20 }, (req, res) => {
      handled++
      req.on('data', (d: Buffer) => (bodyBytes += d.length))
      req.on('end', () => res.end('ok'))
    })
    srv.on('connection', (sock: net.Socket) => conns.push(sock))
    const received = (): number => conns.reduce((n, c) => n + c.bytesRead, 0)
    const { port } = await listenOn(t, s.server, srv)
    // Headers that never end, and a body that never ends.
    const headers = raw(t, s.client, port)
    headers.socket.write('GET / HTTP/1.1\r\nHost: x\r\n')
    const body = raw(t, s.client, port)
    body.socket.write('POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nabc')
    // The timeouts only once the server has all that was sent (node:http
    // checks them on a timer, which a busy event loop can run before it
    // reads what has arrived).
    t.true(await waitFor(() => received() === 25 + 51 && bodyBytes === 3, 400, 5), `${received()} ${bodyBytes}`)
    srv.headersTimeout = 100
    srv.requestTimeout = 200
    return { headers: await headers.result(), body: await body.result(), handled }
  })
  t.deepEqual(r.headers, { text: 'HTTP/1.1 408 Request Timeout\r\nConnection: close\r\n\r\n', ended: true, error: undefined })
  t.deepEqual(r.body, r.headers)
  t.is(r.handled, 1)
})

test('server: malformed requests get 400, too large headers 431, each before the connection closes', async (t) => {
  const r = await sideBySide(t, async (s) => {
    const srv = http.createServer((req, res) => res.end(`ok ${req.url}`))
    const { port } = await listenOn(t, s.server, srv)
    const cases = [
      'THIS IS NOT HTTP\r\n\r\n',
      'GET / HTTP/1.1\r\nHost: x\r\nBad Header\r\n\r\n',
      'POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab',
      `GET / HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(20000)}\r\n\r\n`,
      // A good request, then garbage: its response is sent, no 400 after it.
      `${get('/good')}GARBAGE\r\n\r\n`,
    ]
    return Promise.all(
      cases.map(async (req) => {
        const c = raw(t, s.client, port)
        c.socket.write(req)
        return c.result()
      }),
    )
  })
  const bad = { text: 'HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n', ended: true, error: undefined }
  t.deepEqual(r.slice(0, 3), [bad, bad, bad])
  t.deepEqual(r[3], { text: 'HTTP/1.1 431 Request Header Fields Too Large\r\nConnection: close\r\n\r\n', ended: true, error: undefined })
  t.is(responses(r[4].text).length, 1)
  t.regex(r[4].text, /^HTTP\/1\.1 200 OK\r\n[^]*ok \/good$/)
})

test('server: keepAliveTimeout closes an idle keep-alive connection (the client sees its end, no error)', async (t) => {
  const r = await sideBySide(t, async (s) => {
    const srv = http.createServer((_req, res) => res.end('ok'))
    srv.keepAliveTimeout = 100
    let serverClosed = false
    srv.on('connection', (sock: net.Socket) => sock.on('close', () => (serverClosed = true)))
    const { port } = await listenOn(t, s.server, srv)
    const c = raw(t, s.client, port)
    c.socket.write(get('/'))
    // The result comes only once the server closed the connection.
    const res = await c.result()
    t.true(await waitFor(() => serverClosed, 400, 5))
    return { ...res, serverClosed }
  })
  t.is(responses(r.text).length, 1)
  t.regex(r.text, /Connection: keep-alive\r\nKeep-Alive: timeout=0\r\n/)
  t.true(r.ended)
  t.is(r.error, undefined)
})

test('server: chunked request (extensions, trailers, split across writes) and chunked response with trailers', async (t) => {
  const r = await sideBySide(t, async (s) => {
    const srv = http.createServer(async (req, res) => {
      const chunks: Buffer[] = []
      for await (const c of req) chunks.push(c as Buffer)
      res.writeHead(200, { Trailer: 'X-Sum' })
      const body = Buffer.concat(chunks).toString()
      res.write(`got ${body.length}: ${body}\n`)
      for (let i = 0; i < 3; i++) res.write(`part ${i} ${'x'.repeat(i * 1000)}\n`)
      res.addTrailers({ 'X-Sum': `${req.trailers['x-check']}` })
      res.end()
    })
    const { port } = await listenOn(t, s.server, srv)
    const c = raw(t, s.client, port)
    const req = 'POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n5\r\nhello\r\n6;ext=1\r\n world\r\n3e8\r\n' + 'y'.repeat(1000) + '\r\n0\r\nX-Check: 42\r\n\r\n'
    // In pieces that cut through sizes, data and the trailer.
    for (let i = 0; i < req.length; i += 37) {
      c.socket.write(req.slice(i, i + 37))
      if (i % (37 * 8) === 0) await tick(1)
    }
    return c.result()
  })
  t.regex(r.text, /^HTTP\/1\.1 200 OK\r\nTrailer: X-Sum\r\nConnection: close\r\nTransfer-Encoding: chunked\r\n\r\n/)
  t.regex(r.text, new RegExp(`got 1011: hello world${'y'.repeat(1000)}\n`))
  t.regex(r.text, /\r\n0\r\nX-Sum: 42\r\n\r\n$/)
  t.true(r.ended)
})

test('server: chunked bodies both ways through node:http\'s client on the side\'s sockets', async (t) => {
  const r = await sideBySide(t, async (s) => {
    const srv = http.createServer(async (req, res) => {
      const chunks: Buffer[] = []
      for await (const c of req) chunks.push(c as Buffer)
      res.write(`${req.headers['transfer-encoding']} ${sha256(Buffer.concat(chunks))};`)
      const out = pattern(300_000, 2)
      for (let i = 0; i < out.length; i += 10_000) res.write(out.subarray(i, i + 10_000))
      res.end()
    })
    const { port } = await listenOn(t, s.server, srv)
    const make = connector(s.client)
    const agent = new http.Agent({ keepAlive: false })
    ;(agent as unknown as { createConnection: (o: net.TcpNetConnectOpts) => net.Socket }).createConnection = (o) => make({ port: o.port, host: o.host })
    t.teardown(() => agent.destroy())
    return new Promise<{ status: number | undefined; te: string | undefined; head: string; bodySha: string }>((resolve, reject) => {
      const req = http.request({ host: '127.0.0.1', port, method: 'POST', path: '/', agent }, (res) => {
        const chunks: Buffer[] = []
        res.on('data', (c: Buffer) => chunks.push(c))
        res.on('end', () => {
          const all = Buffer.concat(chunks)
          const semi = all.indexOf(';')
          resolve({ status: res.statusCode, te: res.headers['transfer-encoding'], head: all.subarray(0, semi).toString(), bodySha: sha256(all.subarray(semi + 1)) })
        })
        res.on('error', reject)
      })
      req.on('error', reject)
      const body = pattern(200_000, 1)
      for (let i = 0; i < body.length; i += 5000) req.write(body.subarray(i, i + 5000))
      req.end()
    })
  })
  t.deepEqual(r, { status: 200, te: 'chunked', head: `chunked ${sha256(pattern(200_000, 1))}`, bodySha: sha256(pattern(300_000, 2)) })
})

test('server: a client that half-closes after its request: answered at once it gets the response; answered later the server (no httpAllowHalfOpen) has closed', async (t) => {
  const r = await sideBySide(t, async (s) => {
    const events: string[] = []
    const srv = http.createServer((req, res) => {
      req.on('close', () => events.push(`${req.url} req close`))
      res.on('close', () => events.push(`${req.url} res close`))
      res.on('error', (e: NodeJS.ErrnoException) => events.push(`${req.url} res error ${e.code}`))
      if (req.url === '/now') res.end('answered at once')
      // Once the server has seen the client's end (node:http, without
      // httpAllowHalfOpen, has ended the connection by then).
      else req.socket.once('end', () => setImmediate(() => res.end('answered later')))
    })
    srv.on('connection', (sock: net.Socket) => sock.on('error', (e: NodeJS.ErrnoException) => events.push(`socket error ${e.code}`)))
    const { port } = await listenOn(t, s.server, srv)
    const now = raw(t, s.client, port, { allowHalfOpen: true })
    now.socket.end(get('/now'))
    const later = raw(t, s.client, port, { allowHalfOpen: true })
    later.socket.end(get('/later'))
    const out = { now: await now.result(), later: await later.result() }
    // The late answer comes to a closed response: nothing happens.
    await tick(80)
    return { ...out, events: events.sort() }
  })
  t.like(r, { now: { ended: true, error: undefined }, later: { text: '', ended: true, error: undefined } })
  t.regex(r.now.text, /^HTTP\/1\.1 200 OK\r\n[^]*answered at once$/)
  t.deepEqual(r.events, ['/later req close', '/later res close', '/now req close', '/now res close'])
})

for (const how of ['resets', 'closes'] as const) {
  test(`server: a client that ${how} mid-response: the response closes unfinished, no crash, the server serves on`, async (t) => {
    const r = await sideBySide(t, async (s) => {
      const events: string[] = []
      const srv = http.createServer((req, res) => {
        if (req.url !== '/big') {
          res.end('still here')
          return
        }
        res.on('close', () => events.push(`res close finished=${res.writableFinished}`))
        // Far more than socket buffers hold: the client goes meanwhile.
        const chunk = Buffer.alloc(64 * 1024, 7)
        let sent = 0
        const pump = (): void => {
          while (!res.destroyed && sent < 256 * MiB) {
            sent += chunk.length
            if (!res.write(chunk)) {
              res.once('drain', pump)
              return
            }
          }
          res.end()
        }
        pump()
      })
      const { port } = await listenOn(t, s.server, srv)
      const c = raw(t, s.client, port)
      c.socket.write(get('/big'))
      await c.until(/\r\n\r\n/)
      if (how === 'resets') c.socket.resetAndDestroy()
      else c.socket.destroy()
      await c.closed
      t.true(await waitFor(() => events.length > 0, 400, 5), "the response's 'close'")
      const d = raw(t, s.client, port)
      d.socket.write(get('/', 'Connection: close\r\n'))
      const after = await d.result()
      return { events, after: after.text.slice(after.text.lastIndexOf('\r\n') + 2) }
    })
    t.deepEqual(r, { events: ['res close finished=false'], after: 'still here' })
  })
}

test('server: a slow reader: the server waits for it (bounded bytes queued) and every byte arrives intact', async (t) => {
  const TOTAL = 16 * MiB
  const body = pattern(TOTAL, 3)
  const r = await sideBySide(
    t,
    async (s) => {
      let produced = 0
      let drains = 0
      const srv = http.createServer((_req, res) => {
        res.writeHead(200, { 'Content-Length': TOTAL })
        const CHUNK = 256 * 1024
        const pump = (): void => {
          while (produced < TOTAL) {
            const ok = res.write(body.subarray(produced, produced + CHUNK))
            produced += CHUNK
            if (!ok) {
              drains++
              res.once('drain', pump)
              return
            }
          }
          res.end()
        }
        pump()
      })
      const { port } = await listenOn(t, s.server, srv)
      const c = dial(t, s.client, port)
      c.pause()
      c.write(get('/', 'Connection: close\r\n'))
      // Not reading: the server's writes stop once the buffers are full.
      let last = -1
      let still = 0
      for (let i = 0; i < 1000 && still < 10; i++) {
        await tick(10)
        still = produced === last ? still + 1 : 0
        last = produced
      }
      const queued = produced
      // Then read, slowly: a pause every 256 KiB.
      const chunks: Buffer[] = []
      let got = 0
      let mark = 0
      c.on('data', (d: Buffer) => {
        chunks.push(d)
        got += d.length
        if (got - mark > 256 * 1024) {
          mark = got
          c.pause()
          setTimeout(() => c.resume(), 1)
        }
      })
      c.resume()
      await once(c, 'end')
      const all = Buffer.concat(chunks)
      const head = all.indexOf('\r\n\r\n') + 4
      t.log(`${s.server}/${s.client}: ${(queued / MiB).toFixed(1)} MiB written before the reader read`)
      return {
        status: all.subarray(0, 15).toString(),
        length: all.length - head,
        intact: sha256(all.subarray(head)) === sha256(body),
        stalled: queued < TOTAL / 2,
        waited: drains > 0,
      }
    },
    { serial: true },
  )
  t.deepEqual(r, { status: 'HTTP/1.1 200 OK', length: TOTAL, intact: true, stalled: true, waited: true })
})

test('server: closeIdleConnections closes the idle keep-alive connections only; close() the rest once idle', async (t) => {
  const r = await sideBySide(t, async (s) => {
    let release!: () => void
    const released = new Promise<void>((resolve) => (release = resolve))
    let slow = false
    const srv = http.createServer((req, res) => {
      if (req.url === '/slow') {
        slow = true
        void released.then(() => res.end('slow done'))
      }
      else res.end('quick')
    })
    const served = await listenOn(t, s.server, srv)
    const idle = raw(t, s.client, served.port)
    idle.socket.write(get('/quick'))
    await idle.until(/quick$/)
    const busy = raw(t, s.client, served.port)
    busy.socket.write(get('/slow'))
    t.true(await waitFor(() => slow, 400, 5))
    srv.closeIdleConnections()
    const idleResult = await idle.result()
    const busyOpen = !busy.socket.destroyed && !busy.ended
    release()
    await busy.until(/slow done$/)
    // Closing the server now closes the busy one too (it is idle by now).
    await served.close()
    const busyResult = await busy.result()
    return { idle: idleResult, busyOpen, busy: busyResult }
  })
  t.true(r.busyOpen)
  t.like(r.idle, { ended: true, error: undefined })
  t.regex(r.idle.text, /quick$/)
  t.like(r.busy, { ended: true, error: undefined })
  t.regex(r.busy.text, /^HTTP\/1\.1 200 OK\r\n[^]*slow done$/)
})

test("server: 'upgrade' hands the socket over: the protocol after the 101 runs on it", async (t) => {
  const r = await sideBySide(t, async (s) => {
    const srv = http.createServer((_req, res) => res.end('no upgrade'))
    srv.on('upgrade', (req: http.IncomingMessage, sock: net.Socket, head: Buffer) => {
      sock.write(`HTTP/1.1 101 Switching Protocols\r\nUpgrade: echo\r\nConnection: Upgrade\r\n\r\nhead=${head.toString()};`)
      sock.on('data', (d: Buffer) => sock.write(d.toString().toUpperCase()))
      sock.on('end', () => sock.end(`bye ${req.headers.upgrade}`))
    })
    const { port } = await listenOn(t, s.server, srv)
    const c = raw(t, s.client, port, { allowHalfOpen: true })
    c.socket.write('GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: echo\r\nConnection: Upgrade\r\n\r\nearly')
    await c.until(/head=early;/)
    c.socket.write('hello')
    await c.until(/HELLO$/)
    c.socket.end()
    return c.result()
  })
  t.deepEqual(r, { text: 'HTTP/1.1 101 Switching Protocols\r\nUpgrade: echo\r\nConnection: Upgrade\r\n\r\nhead=early;HELLObye echo', ended: true, error: undefined })
})

test("server: server.timeout destroys a connection idle that long ('timeout' unheard); maxRequestsPerSocket answers Connection: close to the last one", async (t) => {
  const r = await sideBySide(t, async (s) => {
    const srv = http.createServer((req, res) => res.end(`ok ${req.url}`))
    srv.maxRequestsPerSocket = 2
    srv.keepAliveTimeout = 60_000
    const { port } = await listenOn(t, s.server, srv)
    const c = raw(t, s.client, port)
    c.socket.write(get('/1') + get('/2'))
    // (node:http leaves the connection open after the Connection: close it
    // sends here: the client ends it.)
    await c.until(/ok \/2$/)
    c.socket.end()
    const pipelined = await c.result()
    // Taken by the connections made from now on; says nothing: destroyed
    // after server.timeout.
    srv.timeout = 100
    const quiet = raw(t, s.client, port)
    const quietResult = await quiet.result()
    return { quiet: quietResult, pipelined }
  })
  t.deepEqual(r.quiet, { text: '', ended: true, error: undefined })
  const rs = responses(r.pipelined.text)
  t.is(rs.length, 2)
  t.regex(rs[0], /Connection: keep-alive\r\nKeep-Alive: timeout=60, max=2\r\n[^]*ok \/1$/)
  t.regex(rs[1], /Connection: close[^]*ok \/2$/)
  t.like(r.pipelined, { ended: true, error: undefined })
})

test('server: Expect: 100-continue gets its 100 before the body is sent', async (t) => {
  const r = await sideBySide(t, async (s) => {
    const srv = http.createServer(async (req, res) => {
      let n = 0
      for await (const c of req) n += (c as Buffer).length
      res.end(`got ${n}`)
    })
    const { port } = await listenOn(t, s.server, srv)
    const c = raw(t, s.client, port)
    c.socket.write('POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nExpect: 100-continue\r\nConnection: close\r\n\r\n')
    await c.until(/^HTTP\/1\.1 100 Continue\r\n\r\n$/)
    c.socket.write('hello')
    return c.result()
  })
  t.regex(r.text, /^HTTP\/1\.1 100 Continue\r\n\r\nHTTP\/1\.1 200 OK\r\n[^]*got 5$/)
})

// ------------------------------------------------------------ node:http client through a keep-alive http.Agent

/** A keep-alive http.Agent whose sockets are the side's; counts the sockets it makes. */
function agentOf(t: ExecutionContext, side: Side, options: http.AgentOptions): { agent: http.Agent; made: net.Socket[] } {
  const make = connector(side)
  const made: net.Socket[] = []
  const agent = new http.Agent({ keepAlive: true, ...options })
  ;(agent as unknown as { createConnection: (o: net.TcpNetConnectOpts) => net.Socket }).createConnection = (o) => {
    const sock = make({ port: o.port, host: o.host })
    made.push(sock)
    return sock
  }
  t.teardown(() => agent.destroy())
  return { agent, made }
}

function request(agent: http.Agent, port: number, p: string): Promise<{ status: number | undefined; text: string; reused: boolean }> {
  return new Promise((resolve, reject) => {
    const req = http.get({ host: '127.0.0.1', port, path: p, agent }, (res) => {
      let text = ''
      res.setEncoding('utf8')
      res.on('data', (d: string) => (text += d))
      res.on('end', () => resolve({ status: res.statusCode, text, reused: req.reusedSocket }))
      res.on('error', reject)
    })
    req.on('error', reject)
  })
}

function freeCount(agent: http.Agent): number {
  return Object.values(agent.freeSockets).reduce((n, l) => n + (l?.length ?? 0), 0)
}

test('client: a keep-alive http.Agent reuses its sockets, pools them, and drops one the server closes', async (t) => {
  const r = await sideBySide(t, async (s) => {
    let release!: () => void
    let held = new Promise<void>((resolve) => (release = resolve))
    const srv = http.createServer((req, res) => {
      if (req.url?.startsWith('/held')) void held.then(() => res.end(`hi ${req.url}`))
      else res.end(`hi ${req.url} from ${id(req.socket)}`)
    })
    const id = numberConnections(srv)
    const served = await listenOn(t, s.server, srv)
    const { agent, made } = agentOf(t, s.client, { maxSockets: 2 })
    const seq = []
    for (const p of ['/1', '/2', '/3']) {
      seq.push(await request(agent, served.port, p))
      // The agent takes the socket back on the next ticks.
      t.true(await waitFor(() => freeCount(agent) === 1, 400, 5))
    }
    // Four at once on at most two sockets: the first two wait for release.
    const par = Promise.all(['/held1', '/held2', '/held3', '/held4'].map((p) => request(agent, served.port, p)))
    t.true(await waitFor(() => made.length === 2, 400, 5))
    release()
    const parallel = (await par).map((x) => x.text)
    t.true(await waitFor(() => freeCount(agent) === 2, 400, 5))
    // The server closes the pooled sockets: the agent drops them, and the
    // next request gets a new socket.
    held = Promise.resolve()
    srv.closeIdleConnections()
    const dropped = await waitFor(() => freeCount(agent) === 0, 400, 5)
    const after = await request(agent, served.port, '/after')
    return { seq, parallel, dropped, after, sockets: made.length }
  })
  t.deepEqual(
    r.seq.map((x) => [x.text, x.reused]),
    [
      ['hi /1 from 1', false],
      ['hi /2 from 1', true],
      ['hi /3 from 1', true],
    ],
  )
  t.deepEqual(r.parallel, ['hi /held1', 'hi /held2', 'hi /held3', 'hi /held4'])
  t.true(r.dropped)
  t.deepEqual(r.after, { status: 200, text: 'hi /after from 3', reused: false })
  t.is(r.sockets, 3)
})

test("client: a server that closes without answering gives 'socket hang up'; req.setTimeout fires 'timeout' on a silent server", async (t) => {
  const r = await sideBySide(t, async (s) => {
    const srv = http.createServer((req) => {
      if (req.url === '/hangup') req.socket.destroy()
      // '/silent': never answered.
    })
    const { port } = await listenOn(t, s.server, srv)
    const { agent } = agentOf(t, s.client, {})
    const outcome = (p: string, timeout?: number): Promise<string[]> =>
      new Promise((resolve) => {
        const events: string[] = []
        const req = http.get({ host: '127.0.0.1', port, path: p, agent }, () => events.push('response'))
        if (timeout !== undefined)
          req.setTimeout(timeout, () => {
            events.push('timeout')
            req.destroy()
          })
        req.on('error', (e: NodeJS.ErrnoException) => events.push(`error ${e.code} ${e.message}`))
        req.on('close', () => resolve(events))
      })
    return { hangup: await outcome('/hangup'), silent: await outcome('/silent', 100) }
  })
  t.deepEqual(r, { hangup: ['error ECONNRESET socket hang up'], silent: ['timeout', 'error ECONNRESET socket hang up'] })
})

test("client: http.Agent ref()s a reused socket while its request waits (the process stays for the answer) and unref()s it idle (the process exits)", async (t) => {
  const dir = makeTmpDir('ringline-net-http-')
  t.teardown(() => removeTmpDir(dir))
  const r = await sideBySide(t, async (s) => {
    // Server and client in the child (on sim both are in the child's sim
    // network). Nothing of the server holds the process: the listener, its
    // side of the connection and its timer are unref'd; only the client's
    // socket can.
    const script = path.join(dir, `child-${s.server}-${s.client}.js`)
    fs.writeFileSync(
      script,
      `const http = require('node:http')
const serverNet = ${netRequire(s.server)}
const clientNet = ${netRequire(s.client)}
const srv = http.createServer((req, res) => {
  if (req.url === '/late') setTimeout(() => res.end('late'), 200).unref()
  else res.end('ok')
})
srv.keepAliveTimeout = 600000
srv.on('connection', (sock) => sock.unref())
const listener = ${s.server === 'node' ? 'srv' : 'serverNet.serveHttp(srv)'}
const agent = new http.Agent({ keepAlive: true })
agent.createConnection = (o) => clientNet.createConnection({ port: o.port, host: o.host })
const get = (p, cb) => http.get({ host: '127.0.0.1', port: listener.address().port, path: p, agent }, (res) => {
  let text = ''
  res.setEncoding('utf8')
  res.on('data', (d) => (text += d))
  res.on('end', () => setImmediate(() => cb(text, Object.values(agent.freeSockets).flat().length)))
})
listener.listen(0, '127.0.0.1', () => {
  listener.unref()
  get('/', (a) => {
    // Pooled and unref'd now; the next request takes it back (ref'd).
    setImmediate(() => get('/late', (b, free) => console.log(a + ' ' + b + ' ' + free)))
  })
})
process.on('exit', () => console.log('exit'))
`,
    )
    const res = await run(process.execPath, [script], { polls: 3000 })
    return { hung: res.hung, code: res.code, stdout: res.stdout.trim(), stderr: res.stderr }
  })
  t.deepEqual(r, { hung: false, code: 0, stdout: 'ok late 1\nexit', stderr: '' })
})
