// tls and https on ringline/net sockets, both ways, each scenario beside
// the same one on node:net (net-sides.ts: node:net on both sides is the
// reference; ringline on the server side, the client side, or both must
// give the same result): tls.connect({ socket }) over the side's socket to
// a tls server fed by the side's server (serveHttp), a tls.TLSSocket
// wrapping an accepted socket, https with a keep-alive https.Agent whose
// sockets are tls over the side's, and certificate failures. Each transfer
// is 1 MiB or more both ways, and ends with a half-close.
//
// Certificate: __test__/fixtures/tls, self-signed for localhost and
// 127.0.0.1, for these tests only.

import test, { type ExecutionContext } from 'ava'
import { once } from 'node:events'
import * as fs from 'node:fs'
import * as https from 'node:https'
import type * as net from 'node:net'
import * as path from 'node:path'
import * as tls from 'node:tls'
import { fixtures, waitFor } from './helpers'
import { MiB, pattern, sha256 } from './net-helpers'
import { dial, listenOn, sideBySide, tcpServer, type Side } from './net-sides'

const cert = {
  key: fs.readFileSync(path.join(fixtures, 'tls', 'key.pem'), 'utf8'),
  cert: fs.readFileSync(path.join(fixtures, 'tls', 'cert.pem'), 'utf8'),
}

/**
 * tls over a socket of the side, to 127.0.0.1:`port`; destroyed at
 * teardown. Once wrapped, the socket is made half-open, as README says to
 * (tls runs on a ringline socket as on any Duplex, and must end it itself;
 * on a node:net socket it changes nothing: tls runs on its handle).
 */
function tlsClient(t: ExecutionContext, side: Side, port: number, options: tls.ConnectionOptions = {}): tls.TLSSocket {
  const raw = dial(t, side, port)
  const s = tls.connect({ socket: raw, ca: cert.cert, servername: 'localhost', ALPNProtocols: ['echo'], ...options })
  raw.allowHalfOpen = true
  t.teardown(() => {
    s.destroy()
  })
  return s
}

/** Echoes what comes, then (once the client has ended) says how much it got and ends. */
function echo(s: tls.TLSSocket): void {
  let n = 0
  s.on('error', () => undefined)
  s.on('data', (d: Buffer) => {
    n += d.length
    s.write(d)
  })
  s.on('end', () => s.end(`bye ${n}`))
}

/** Sends `data` in pieces, ends, and reads to the end: what a client saw. */
async function talk(s: tls.TLSSocket, data: Buffer): Promise<Record<string, unknown>> {
  await once(s, 'secureConnect')
  const protocol = s.getProtocol()
  const chunks: Buffer[] = []
  s.on('data', (d: Buffer) => chunks.push(d))
  for (let i = 0; i < data.length; i += 100_000) s.write(data.subarray(i, i + 100_000))
  s.end()
  await once(s, 'end')
  const all = Buffer.concat(chunks)
  if (!s.destroyed) await once(s, 'close')
  return {
    authorized: s.authorized,
    protocol,
    alpn: s.alpnProtocol,
    echoed: sha256(all.subarray(0, data.length)) === sha256(data),
    tail: all.subarray(data.length).toString(),
  }
}

const DATA = pattern(MiB + 123, 7)
const BIG = pattern(MiB, 9)
const EXPECTED = { authorized: true, protocol: 'TLSv1.3', alpn: 'echo', echoed: true, tail: `bye ${DATA.length}` }

test('tls.connect({ socket }) over the side\'s socket to a tls server fed the side\'s sockets: 1 MiB echoed, half-close', async (t) => {
  const r = await sideBySide(t, async (s) => {
    const srv = tls.createServer({ ...cert, ALPNProtocols: ['echo'] }, echo)
    const { port } = await listenOn(t, s.server, srv)
    return talk(tlsClient(t, s.client, port), DATA)
  })
  t.deepEqual(r, EXPECTED)
})

test('a tls.TLSSocket wrapping a socket the side accepted serves a tls client on the side\'s socket', async (t) => {
  const r = await sideBySide(t, async (s) => {
    const secureContext = tls.createSecureContext(cert)
    let serverSaw: Record<string, unknown> = {}
    const { port } = await tcpServer(t, s.server, (sock: net.Socket) => {
      const ts = new tls.TLSSocket(sock, { isServer: true, secureContext, ALPNProtocols: ['echo'] })
      // As README says (see tlsClient).
      sock.allowHalfOpen = true
      ts.on('secure', () => (serverSaw = { protocol: ts.getProtocol(), alpn: ts.alpnProtocol, servername: (ts as tls.TLSSocket & { servername?: string }).servername }))
      echo(ts)
    })
    const client = await talk(tlsClient(t, s.client, port), DATA)
    return { client, serverSaw }
  })
  t.deepEqual(r, { client: EXPECTED, serverSaw: { protocol: 'TLSv1.3', alpn: 'echo', servername: 'localhost' } })
})

test('https on the side\'s sockets: a keep-alive https.Agent reuses one tls connection for several requests and a 2 MiB upload', async (t) => {
  const up = pattern(2 * MiB, 8)
  const r = await sideBySide(t, async (s) => {
    const srv = https.createServer(cert, async (req, res) => {
      const chunks: Buffer[] = []
      for await (const c of req) chunks.push(c as Buffer)
      res.end(`${req.method} ${req.url} ${sha256(Buffer.concat(chunks)).slice(0, 16)} ${req.socket.constructor.name}`)
    })
    const { port } = await listenOn(t, s.server, srv)
    const agent = new https.Agent({ keepAlive: true, maxSockets: 1 })
    let made = 0
    ;(agent as unknown as { createConnection: (o: tls.ConnectionOptions) => tls.TLSSocket }).createConnection = (o) => {
      made++
      const raw = dial(t, s.client, port)
      const ts = tls.connect({ ...o, socket: raw })
      // As README says (see tlsClient).
      raw.allowHalfOpen = true
      return ts
    }
    t.teardown(() => agent.destroy())
    const request = (p: string, body?: Buffer): Promise<{ status: number | undefined; text: string; reused: boolean }> =>
      new Promise((resolve, reject) => {
        const req = https.request({ host: '127.0.0.1', port, path: p, method: body === undefined ? 'GET' : 'POST', agent, ca: cert.cert, servername: 'localhost' }, (res) => {
          let text = ''
          res.setEncoding('utf8')
          res.on('data', (d: string) => (text += d))
          res.on('end', () => resolve({ status: res.statusCode, text, reused: req.reusedSocket }))
        })
        req.on('error', reject)
        req.end(body)
      })
    const pooled = (): Promise<boolean> => waitFor(() => Object.values(agent.freeSockets).reduce((n, l) => n + (l?.length ?? 0), 0) === 1, 400, 5)
    const out = []
    for (const p of ['/1', '/2', '/3']) {
      out.push(await request(p))
      // The agent takes the socket back on the next ticks.
      t.true(await pooled())
    }
    out.push(await request('/up', up))
    return { out, made }
  })
  const empty = sha256(Buffer.alloc(0)).slice(0, 16)
  t.deepEqual(r, {
    out: [
      { status: 200, text: `GET /1 ${empty} TLSSocket`, reused: false },
      { status: 200, text: `GET /2 ${empty} TLSSocket`, reused: true },
      { status: 200, text: `GET /3 ${empty} TLSSocket`, reused: true },
      { status: 200, text: `POST /up ${sha256(up).slice(0, 16)} TLSSocket`, reused: true },
    ],
    made: 1,
  })
})

test('certificate failures on the side\'s sockets: wrong name, unknown issuer; the server serves on', async (t) => {
  const r = await sideBySide(t, async (s) => {
    const srv = tls.createServer({ ...cert, ALPNProtocols: ['echo'] }, echo)
    const { port } = await listenOn(t, s.server, srv)
    const failure = async (options: tls.ConnectionOptions): Promise<string> => {
      const c = tlsClient(t, s.client, port, options)
      const [e] = (await once(c, 'error')) as [NodeJS.ErrnoException]
      if (!c.destroyed) await once(c, 'close')
      return `${e.code}`
    }
    const wrongName = await failure({ servername: 'not-localhost.example' })
    const unknownIssuer = await failure({ ca: undefined })
    const fine = await talk(tlsClient(t, s.client, port), Buffer.from('still here'))
    return { wrongName, unknownIssuer, fine }
  })
  t.deepEqual(r, {
    wrongName: 'ERR_TLS_CERT_ALTNAME_INVALID',
    unknownIssuer: 'DEPTH_ZERO_SELF_SIGNED_CERT',
    fine: { ...EXPECTED, tail: 'bye 10' },
  })
})

test('the tls server ends first while the client is still sending: the client\'s bytes all arrive, it sees the server\'s end', async (t) => {
  const r = await sideBySide(t, async (s) => {
    let got = 0
    let serverEnded = false
    const srv = tls.createServer({ ...cert, ALPNProtocols: ['echo'] }, (ts) => {
      ts.on('error', () => undefined)
      ts.once('data', () => ts.end('early answer'))
      ts.on('data', (d: Buffer) => (got += d.length))
      ts.on('end', () => (serverEnded = true))
    })
    const { port } = await listenOn(t, s.server, srv)
    const c = tlsClient(t, s.client, port)
    await once(c, 'secureConnect')
    let text = ''
    let error: string | undefined
    c.setEncoding('utf8')
    c.on('data', (d: string) => (text += d))
    c.on('error', (e: NodeJS.ErrnoException) => (error = e.code))
    // Far more than the buffers on the way hold: most of it is still
    // queued on the client when the server's end comes.
    for (let i = 0; i < 8; i++) c.write(BIG)
    await once(c, 'close')
    t.true(await waitFor(() => serverEnded, 400, 5))
    return { text, error, got }
  })
  t.deepEqual(r, { text: 'early answer', error: undefined, got: 8 * BIG.length })
})
