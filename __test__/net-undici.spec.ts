// undici on ringline/net sockets: Client, Pool and fetch through an Agent
// whose `connect` returns the side's sockets, each scenario beside the same
// one on node:net (net-sides.ts: node:net on both sides is the reference;
// ringline on the server side, the client side, or both must give the same
// result). The servers are node:http's, fed by serveHttp on ringline's side.
// Covered: keep-alive reuse and pipelining on one connection, request
// bodies (string, Buffer, stream), a pool spreading requests over its
// connections, fetch with large bodies both ways, a server closing idle
// connections (the next request gets a new one), a server closing
// mid-response (undici's error), and an idle pool letting a process exit.

import test, { type ExecutionContext } from 'ava'
import * as fs from 'node:fs'
import * as http from 'node:http'
import type * as net from 'node:net'
import * as path from 'node:path'
import { Readable } from 'node:stream'
import { Agent, Client, Pool, fetch, type buildConnector } from 'undici'
import { makeTmpDir, removeTmpDir, run, waitFor } from './helpers'
import { MiB, pattern, sha256 } from './net-helpers'
import { connector, listenOn, netRequire, sideBySide, type Side } from './net-sides'

/** undici's `connect` option, with the side's sockets: calls back once connected. */
function connectOf(side: Side, made: net.Socket[] = []): buildConnector.connector {
  const make = connector(side)
  return (options, callback) => {
    const s = make({ port: Number(options.port), host: options.hostname })
    made.push(s)
    const onError = (e: Error): void => callback(e, null)
    s.once('error', onError)
    s.once('connect', () => {
      s.off('error', onError)
      callback(null, s)
    })
  }
}

/** A node:http server that names the connection each request came on (`X-Connection`). */
function numbered(handler: (req: http.IncomingMessage, res: http.ServerResponse, conn: number) => void): http.Server {
  const ids = new WeakMap<net.Socket, number>()
  let n = 0
  const srv = http.createServer((req, res) => {
    const conn = ids.get(req.socket) ?? 0
    res.setHeader('X-Connection', String(conn))
    handler(req, res, conn)
  })
  srv.on('connection', (s: net.Socket) => ids.set(s, ++n))
  return srv
}

async function bodyOf(req: http.IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = []
  for await (const c of req) chunks.push(c as Buffer)
  return Buffer.concat(chunks)
}

function closeLater<T extends { close(): Promise<void> }>(t: ExecutionContext, d: T): T {
  t.teardown(() => d.close().catch(() => undefined))
  return d
}

test('Client: requests one after another and pipelined share one connection; string, Buffer and stream bodies', async (t) => {
  const r = await sideBySide(t, async (s) => {
    const srv = numbered(async (req, res) => {
      const body = await bodyOf(req)
      res.setHeader('Content-Type', 'text/plain')
      res.end(`${req.method} ${req.url} ${body.length} ${sha256(body).slice(0, 8)}`)
    })
    const { port } = await listenOn(t, s.server, srv)
    const made: net.Socket[] = []
    const client = closeLater(t, new Client(`http://127.0.0.1:${port}`, { connect: connectOf(s.client, made), pipelining: 3 }))
    const one = async (p: string, method: 'GET' | 'POST' = 'GET', body?: string | Buffer | Readable): Promise<string> => {
      const res = await client.request({ path: p, method, body })
      return `${res.statusCode} ${res.headers['x-connection']} ${res.headers['content-type']} ${await res.body.text()}`
    }
    const seq = [await one('/a'), await one('/b', 'POST', 'hello'), await one('/c', 'POST', pattern(100_000, 4))]
    const streamed = Readable.from([Buffer.from('one '), Buffer.from('two '), Buffer.from('three')])
    const piped = await Promise.all([one('/p1'), one('/p2', 'POST', streamed), one('/p3')])
    return { seq, piped, sockets: made.length }
  })
  t.deepEqual(r.seq, ['200 1 text/plain GET /a 0 e3b0c442', `200 1 text/plain POST /b 5 ${sha256(Buffer.from('hello')).slice(0, 8)}`, `200 1 text/plain POST /c 100000 ${sha256(pattern(100_000, 4)).slice(0, 8)}`])
  t.deepEqual(r.piped, ['200 1 text/plain GET /p1 0 e3b0c442', `200 1 text/plain POST /p2 13 ${sha256(Buffer.from('one two three')).slice(0, 8)}`, '200 1 text/plain GET /p3 0 e3b0c442'])
  t.is(r.sockets, 1)
})

test('Pool: concurrent requests spread over its two connections', async (t) => {
  const r = await sideBySide(t, async (s) => {
    let release!: () => void
    const released = new Promise<void>((resolve) => (release = resolve))
    let waiting = 0
    const srv = numbered((req, res) => {
      waiting++
      void released.then(() => res.end(`hi ${req.url}`))
    })
    const { port } = await listenOn(t, s.server, srv)
    const made: net.Socket[] = []
    const pool = closeLater(t, new Pool(`http://127.0.0.1:${port}`, { connect: connectOf(s.client, made), connections: 2 }))
    const all = Promise.all(
      ['/1', '/2', '/3', '/4', '/5', '/6'].map(async (p) => {
        const res = await pool.request({ path: p, method: 'GET' })
        return { text: await res.body.text(), conn: Number(res.headers['x-connection']) }
      }),
    )
    // One request at a time per connection (no pipelining): two wait.
    t.true(await waitFor(() => waiting === 2, 400, 5))
    release()
    const got = await all
    return { texts: got.map((g) => g.text), connections: [...new Set(got.map((g) => g.conn))].sort(), sockets: made.length }
  })
  t.deepEqual(r, { texts: ['hi /1', 'hi /2', 'hi /3', 'hi /4', 'hi /5', 'hi /6'], connections: [1, 2], sockets: 2 })
})

test('fetch through an Agent: JSON, a 4 MiB upload and a 4 MiB streamed download, headers', async (t) => {
  const up = pattern(4 * MiB, 5)
  const down = pattern(4 * MiB, 6)
  const r = await sideBySide(t, async (s) => {
    const srv = numbered(async (req, res) => {
      if (req.url === '/json') {
        res.setHeader('Content-Type', 'application/json')
        res.end(JSON.stringify({ method: req.method, ua: req.headers['user-agent'] }))
      } else if (req.url === '/up') {
        const body = await bodyOf(req)
        res.end(`${req.headers['content-length']} ${sha256(body)}`)
      } else {
        // Chunked, in pieces.
        for (let i = 0; i < down.length; i += 64 * 1024) if (!res.write(down.subarray(i, i + 64 * 1024))) await new Promise((d) => res.once('drain', d))
        res.end()
      }
    })
    const { port } = await listenOn(t, s.server, srv)
    const made: net.Socket[] = []
    const dispatcher = closeLater(t, new Agent({ connect: connectOf(s.client, made) }))
    const base = `http://127.0.0.1:${port}`
    const json = await fetch(`${base}/json`, { dispatcher, headers: { 'User-Agent': 'ringline-test' } })
    const jsonBody: unknown = await json.json()
    const upload = await fetch(`${base}/up`, { dispatcher, method: 'POST', body: up })
    const uploadBody = await upload.text()
    // undici reuses an idle keep-alive socket only after a check phase of
    // the event loop has passed (its idle-socket validation, a
    // setImmediate): before that it opens another connection. Where the
    // upload's response completes relative to that phase is timing (on sim
    // the whole exchange can finish in one microtask drain), so wait for
    // it, as a program that is not racing would.
    await new Promise((resolve) => setImmediate(resolve))
    const download = await fetch(`${base}/down`, { dispatcher })
    let n = 0
    const chunks: Buffer[] = []
    for await (const c of download.body!) {
      chunks.push(Buffer.from(c))
      n++
    }
    return {
      json: [json.status, json.headers.get('content-type'), jsonBody],
      upload: [upload.status, uploadBody],
      download: [download.status, download.headers.get('transfer-encoding'), sha256(Buffer.concat(chunks)), n > 1],
      // (Which connection undici's pool picks for each is its business.)
      keptAlive: made.length < 3,
    }
  })
  t.deepEqual(r, {
    json: [200, 'application/json', { method: 'GET', ua: 'ringline-test' }],
    upload: [200, `${4 * MiB} ${sha256(up)}`],
    download: [200, 'chunked', sha256(down), true],
    keptAlive: true,
  })
})

test('Client: the server closes the idle connection (next request on a new one) or closes mid-response (the request fails with UND_ERR_SOCKET)', async (t) => {
  const r = await sideBySide(t, async (s) => {
    const srv = numbered((req, res, conn) => {
      if (req.url === '/cut') {
        res.writeHead(200, { 'Content-Length': 1000 })
        res.write('x'.repeat(100), () => req.socket.destroy())
      } else res.end(`hi ${req.url} on ${conn}`)
    })
    const { port } = await listenOn(t, s.server, srv)
    const made: net.Socket[] = []
    const client = closeLater(t, new Client(`http://127.0.0.1:${port}`, { connect: connectOf(s.client, made) }))
    const text = async (p: string): Promise<string> => (await (await client.request({ path: p, method: 'GET' })).body.text())
    const first = await text('/1')
    srv.closeIdleConnections()
    t.true(await waitFor(() => made[0].destroyed, 400, 5), 'the client saw its socket close')
    const second = await text('/2')
    let cut: string
    try {
      cut = `no error: ${await text('/cut')}`
    } catch (e) {
      const err = e as Error & { code?: string }
      cut = `${err.name} ${err.code} ${err.message}`
    }
    const after = await text('/3')
    return { first, second, cut, after, sockets: made.length }
  })
  t.deepEqual(r, { first: 'hi /1 on 1', second: 'hi /2 on 2', cut: 'SocketError UND_ERR_SOCKET other side closed', after: 'hi /3 on 3', sockets: 3 })
})

test('an idle undici pool (keep-alive sockets unref\'d by undici) lets a process exit', async (t) => {
  const dir = makeTmpDir('ringline-net-undici-')
  t.teardown(() => removeTmpDir(dir))
  const r = await sideBySide(t, async (s) => {
    // Server and client in the child (on sim both are in the child's sim
    // network); the server and its side of the connections unref'd.
    const script = path.join(dir, `child-${s.server}-${s.client}.js`)
    fs.writeFileSync(
      script,
      `const http = require('node:http')
const { Agent, fetch } = require(${JSON.stringify(require.resolve('undici'))})
const serverNet = ${netRequire(s.server)}
const clientNet = ${netRequire(s.client)}
const srv = http.createServer((req, res) => res.end('ok ' + req.url))
srv.keepAliveTimeout = 600000
srv.on('connection', (sock) => sock.unref())
const listener = ${s.server === 'node' ? 'srv' : 'serverNet.serveHttp(srv)'}
const connect = (o, cb) => {
  const s = clientNet.createConnection({ port: Number(o.port), host: o.hostname })
  s.once('error', (e) => cb(e, null))
  s.once('connect', () => cb(null, s))
}
const dispatcher = new Agent({ connect, keepAliveTimeout: 600000, keepAliveMaxTimeout: 600000 })
listener.listen(0, '127.0.0.1', async () => {
  listener.unref()
  const base = 'http://127.0.0.1:' + listener.address().port
  const got = await Promise.all(['/a', '/b', '/c'].map(async (p) => (await fetch(base + p, { dispatcher })).text()))
  console.log(got.join(','))
})
process.on('exit', () => console.log('exit'))
`,
    )
    const res = await run(process.execPath, [script], { polls: 3000 })
    return { hung: res.hung, code: res.code, stdout: res.stdout.trim(), stderr: res.stderr }
  })
  t.deepEqual(r, { hung: false, code: 0, stdout: 'ok /a,ok /b,ok /c\nexit', stderr: '' })
})
