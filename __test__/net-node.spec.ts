// ringline/net against the real clients and servers of node: node:http's
// server fed ringline sockets (keep-alive, pipelining, keepAliveTimeout,
// headersTimeout → 408, a malformed request → 400, chunked bodies, a client
// resetting mid-response), node:http's client through a keep-alive
// http.Agent whose createConnection is ringline's (sockets reused; an idle
// unref'd agent socket lets the process exit), tls both ways, and the
// net.Socket / net.Server members node's code touches. Each scenario runs
// over node:net too where that makes sense, with the same assertions.
//
// undici: not a dependency (node_modules has undici-types only), and node
// 20's global fetch takes no dispatcher from outside, so it is not tested.
//
// On the sim engine (RINGLINE_BACKEND=sim) ringline's sockets live in the
// sim's network and cannot reach node:net, node:http or tls peers over the
// kernel: every test here is skipped there.

import type { ExecutionContext } from 'ava'
import { once } from 'node:events'
import * as fs from 'node:fs'
import * as http from 'node:http'
import * as net from 'node:net'
import * as path from 'node:path'
import * as tls from 'node:tls'
import * as rnet from '../net'
import { connect } from '../index'
import { fixtures, makeTmpDir, removeTmpDir, repoRoot, run, waitFor } from './helpers'
import { realKernelOnly } from './sim-setup'

const WHY = "node's own clients and servers on the other end: the sim's network is its own ring's"
// Sim rings cannot reach kernel sockets (see the top of this file).
const realTest = realKernelOnly(WHY)

type Kind = 'node' | 'ringline'
const KINDS: Kind[] = ['node', 'ringline']

interface Served {
  port: number
  close(): Promise<void>
}

/** `httpServer` listening on 127.0.0.1: by itself (node) or through ringline's serveHttp. */
async function serve(t: ExecutionContext, kind: Kind, httpServer: net.Server): Promise<Served> {
  if (kind === 'node') {
    httpServer.listen(0, '127.0.0.1')
    await once(httpServer, 'listening')
    const port = (httpServer.address() as net.AddressInfo).port
    const close = async (): Promise<void> => {
      ;(httpServer as http.Server).closeAllConnections?.()
      if (httpServer.listening) await new Promise<void>((r) => httpServer.close(() => r()))
    }
    t.teardown(close)
    return { port, close }
  }
  const server = rnet.serveHttp(httpServer)
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  const port = server.address()!.port
  const close = async (): Promise<void> => {
    ;(httpServer as http.Server).closeAllConnections?.()
    if (server.listening) await new Promise<void>((r) => server.close(() => r()))
  }
  t.teardown(close)
  return { port, close }
}

/** A node:net client: sends `data`, collects everything until the server closes. */
function rawExchange(port: number, data: string | Buffer): Promise<{ text: string; reset: boolean }> {
  return new Promise((resolve) => {
    const c = net.connect(port, '127.0.0.1')
    const chunks: Buffer[] = []
    let reset = false
    c.on('data', (d: Buffer) => chunks.push(d))
    c.on('error', () => {
      reset = true
    })
    c.on('close', () => resolve({ text: Buffer.concat(chunks).toString('latin1'), reset }))
    c.write(data)
  })
}

function responses(text: string): string[] {
  return text.split(/(?=HTTP\/1\.1 )/).filter((s) => s.length > 0)
}

// ------------------------------------------------------------ node:http server on ringline sockets

for (const kind of KINDS) {
  realTest(`[${kind}] node:http server: keep-alive and pipelining: three requests on one connection, answered in order`, async (t) => {
    const seen: string[] = []
    const srv = http.createServer((req, res) => {
      seen.push(`${req.socket.remotePort}:${req.url}`)
      res.end(`you asked ${req.url}`)
    })
    const { port } = await serve(t, kind, srv)
    const req = (u: string, last = false): string => `GET ${u} HTTP/1.1\r\nHost: x\r\n${last ? 'Connection: close\r\n' : ''}\r\n`
    const { text } = await rawExchange(port, req('/a') + req('/b') + req('/c', true))
    const rs = responses(text)
    t.is(rs.length, 3)
    t.true(rs[0].endsWith('you asked /a') && rs[1].endsWith('you asked /b') && rs[2].endsWith('you asked /c'))
    t.regex(rs[0], /Connection: keep-alive/)
    t.is(new Set(seen.map((s) => s.split(':')[0])).size, 1, 'one connection')
  })

  realTest(`[${kind}] node:http server: keepAliveTimeout closes an idle keep-alive connection`, async (t) => {
    const srv = http.createServer((_req, res) => res.end('ok'))
    srv.keepAliveTimeout = 100
    const { port } = await serve(t, kind, srv)
    // rawExchange resolves only when the server closes the connection.
    const { text, reset } = await rawExchange(port, 'GET / HTTP/1.1\r\nHost: x\r\n\r\n')
    t.is(responses(text).length, 1)
    t.regex(text, /Keep-Alive: timeout=\d+/)
    t.false(reset)
  })

  realTest(`[${kind}] node:http server: headersTimeout answers 408 to a request whose headers never end, and closes`, async (t) => {
    const srv = http.createServer({ connectionsCheckingInterval: 20 }, (_req, res) => res.end('ok'))
    srv.headersTimeout = 100
    srv.requestTimeout = 100
    const { port } = await serve(t, kind, srv)
    const { text } = await rawExchange(port, 'GET / HTTP/1.1\r\nHost: x\r\n')
    t.regex(text, /^HTTP\/1\.1 408 Request Timeout\r\n/)
  })

  realTest(`[${kind}] node:http server: a malformed request gets its 400 before the connection closes`, async (t) => {
    const srv = http.createServer((_req, res) => res.end('ok'))
    const { port } = await serve(t, kind, srv)
    for (let i = 0; i < 5; i++) {
      const { text } = await rawExchange(port, 'THIS IS NOT HTTP\r\n\r\n')
      t.regex(text, /^HTTP\/1\.1 400 Bad Request\r\n/)
    }
    // 431: headers past maxHeaderSize.
    const { text } = await rawExchange(port, `GET / HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(20000)}\r\n\r\n`)
    t.regex(text, /^HTTP\/1\.1 431 /)
  })

  realTest(`[${kind}] node:http server: chunked request and response bodies through node:http's client`, async (t) => {
    const srv = http.createServer(async (req, res) => {
      let n = 0
      for await (const c of req) n += (c as Buffer).length
      res.write(`got ${n} bytes; `)
      for (let i = 0; i < 10; i++) res.write('x'.repeat(1000))
      res.end()
    })
    const { port } = await serve(t, kind, srv)
    const agent = new http.Agent({ keepAlive: false })
    t.teardown(() => agent.destroy())
    const body = await new Promise<{ te: string | undefined; text: string }>((resolve, reject) => {
      const req = http.request({ host: '127.0.0.1', port, method: 'POST', path: '/', agent }, (res) => {
        const chunks: Buffer[] = []
        res.on('data', (c: Buffer) => chunks.push(c))
        res.on('end', () => resolve({ te: res.headers['transfer-encoding'], text: Buffer.concat(chunks).toString() }))
        res.on('error', reject)
      })
      req.on('error', reject)
      for (let i = 0; i < 20; i++) req.write(Buffer.alloc(5000, i))
      req.end()
    })
    t.is(body.te, 'chunked')
    t.is(body.text, `got 100000 bytes; ${'x'.repeat(10000)}`)
  })

  realTest(`[${kind}] node:http server: a client that resets mid-response: the response closes, the server serves on`, async (t) => {
    let closed = 0
    let first = true
    const srv = http.createServer((req, res) => {
      if (req.url === '/big' && first) {
        first = false
        res.on('close', () => closed++)
        // Far more than socket buffers hold: the client resets meanwhile.
        const chunk = Buffer.alloc(64 * 1024, 7)
        const pump = (): void => {
          while (!res.destroyed && res.write(chunk));
          if (!res.destroyed) res.once('drain', pump)
        }
        pump()
        return
      }
      res.end('still here')
    })
    const { port } = await serve(t, kind, srv)
    const c = net.connect(port, '127.0.0.1')
    c.write('GET /big HTTP/1.1\r\nHost: x\r\n\r\n')
    await once(c, 'data')
    c.resetAndDestroy()
    await once(c, 'close')
    t.true(await waitFor(() => closed === 1, 2000, 5), "the response's 'close' fired")
    const { text } = await rawExchange(port, 'GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n')
    t.regex(text, /still here$/)
  })
}

// ------------------------------------------------------------ node:http client through ringline sockets

for (const kind of KINDS) {
  realTest(`[${kind}] http.Agent (keepAlive) with createConnection: no crash, the socket is reused, unref'd while idle`, async (t) => {
    const srv = http.createServer((req, res) => res.end(`hi ${req.url}`))
    srv.listen(0, '127.0.0.1')
    await once(srv, 'listening')
    t.teardown(() => {
      srv.closeAllConnections()
      srv.close()
    })
    const port = (srv.address() as net.AddressInfo).port
    const created: net.Socket[] = []
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 })
    const make = (kind === 'node' ? net.createConnection : rnet.createConnection) as unknown as (o: net.NetConnectOpts) => net.Socket
    ;(agent as unknown as { createConnection: (o: net.TcpNetConnectOpts) => net.Socket }).createConnection = (o) => {
      const s = make({ port: o.port as number, host: o.host })
      created.push(s)
      return s
    }
    t.teardown(() => agent.destroy())
    const get = (p: string): Promise<{ text: string; reused: boolean }> =>
      new Promise((resolve, reject) => {
        const req = http.get({ host: '127.0.0.1', port, path: p, agent }, (res) => {
          let text = ''
          res.setEncoding('utf8')
          res.on('data', (d: string) => (text += d))
          res.on('end', () => resolve({ text, reused: req.reusedSocket }))
        })
        req.on('error', reject)
      })
    const a = await get('/1')
    // The response ended; the agent takes the socket back on the next ticks.
    t.true(await waitFor(() => (agent.freeSockets[Object.keys(agent.freeSockets)[0]]?.length ?? 0) === 1, 500, 2))
    const b = await get('/2')
    const c = await get('/3')
    t.deepEqual([a.text, b.text, c.text], ['hi /1', 'hi /2', 'hi /3'])
    t.deepEqual([a.reused, b.reused, c.reused], [false, true, true])
    t.is(created.length, 1)
    t.true(created[0].bytesWritten > 0 && created[0].bytesRead > 0)
    t.is(created[0].readyState, 'open')
  })

  realTest(`[${kind}] an idle keep-alive agent socket (unref'd by http.Agent) lets a child process exit`, async (t) => {
    const srv = http.createServer((_req, res) => res.end('ok'))
    srv.keepAliveTimeout = 600_000
    srv.listen(0, '127.0.0.1')
    await once(srv, 'listening')
    t.teardown(() => {
      srv.closeAllConnections()
      srv.close()
    })
    const port = (srv.address() as net.AddressInfo).port
    const dir = makeTmpDir('ringline-net-node-')
    t.teardown(() => removeTmpDir(dir))
    const script = path.join(dir, 'child.js')
    const factory = kind === 'node' ? "require('node:net').createConnection" : `require(${JSON.stringify(path.join(repoRoot, 'dist', 'net.js'))}).createConnection`
    fs.writeFileSync(
      script,
      `const http = require('node:http')
const createConnection = ${factory}
const agent = new http.Agent({ keepAlive: true })
agent.createConnection = (o) => createConnection({ port: o.port, host: o.host })
http.get({ host: '127.0.0.1', port: ${port}, agent }, (res) => {
  res.resume()
  res.on('end', () => setImmediate(() => {
    const free = Object.values(agent.freeSockets).flat()
    console.log('done ' + free.length)
  }))
})
`,
    )
    const r = await run(process.execPath, [script], { polls: 1500 })
    t.false(r.hung, 'the child exited by itself')
    t.is(r.code, 0, r.stderr)
    t.is(r.stdout.trim(), 'done 1', 'the socket was idle in the pool when the process exited')
  })
}

// ------------------------------------------------------------ tls

// A self-signed certificate for localhost and 127.0.0.1, for these tests
// only (made once with openssl req -x509 -newkey rsa:2048 -nodes -days 36500
// -subj /CN=localhost -addext subjectAltName=IP:127.0.0.1,DNS:localhost).
const cert = {
  key: fs.readFileSync(path.join(fixtures, 'tls', 'key.pem'), 'utf8'),
  cert: fs.readFileSync(path.join(fixtures, 'tls', 'cert.pem'), 'utf8'),
}

function tlsEcho(): tls.Server {
  return tls.createServer({ key: cert.key, cert: cert.cert }, (s) => {
    s.on('data', (d: Buffer) => s.write(Buffer.from(d.toString().toUpperCase())))
    s.on('end', () => s.end())
    s.on('error', () => undefined)
  })
}

async function tlsRoundTrip(socket: tls.TLSSocket): Promise<string> {
  await once(socket, 'secureConnect')
  let got = ''
  socket.setEncoding('utf8')
  socket.on('data', (d: string) => (got += d))
  socket.end('hello over tls')
  await once(socket, 'end')
  return got
}

for (const kind of KINDS) {
  realTest(`[${kind}] tls.connect({ socket }) over a ${kind} socket to a node tls server`, async (t) => {
    const srv = tlsEcho()
    srv.listen(0, '127.0.0.1')
    await once(srv, 'listening')
    t.teardown(() => srv.close())
    const port = (srv.address() as net.AddressInfo).port
    const raw = kind === 'node' ? net.createConnection(port, '127.0.0.1') : (rnet.createConnection(port, '127.0.0.1') as unknown as net.Socket)
    const s = tls.connect({ socket: raw, ca: cert.cert, servername: 'localhost' })
    t.is(await tlsRoundTrip(s), 'HELLO OVER TLS')
    t.true(s.authorized)
  })

  realTest(`[${kind}] a tls server fed ${kind} sockets serves a node tls client`, async (t) => {
    const srv = tlsEcho()
    const { port } = await serve(t, kind, srv)
    const s = tls.connect({ host: '127.0.0.1', port, ca: cert.cert, servername: 'localhost' })
    t.is(await tlsRoundTrip(s), 'HELLO OVER TLS')
  })
}

// ------------------------------------------------------------ net.Socket and net.Server members

interface NetLike {
  createServer(listener: (s: net.Socket) => void): net.Server
  createConnection(port: number, host: string): net.Socket
}
const impl: Record<Kind, NetLike> = {
  node: { createServer: (l) => net.createServer(l), createConnection: (p, h) => net.createConnection(p, h) },
  ringline: {
    createServer: (l) => rnet.createServer(l as unknown as (s: rnet.Socket) => void) as unknown as net.Server,
    createConnection: (p, h) => rnet.createConnection(p, h) as unknown as net.Socket,
  },
}

async function listening(t: ExecutionContext, server: net.Server): Promise<number> {
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  t.teardown(() => new Promise<void>((r) => server.close(() => r())))
  return (server.address() as net.AddressInfo).port
}

for (const kind of KINDS) {
  const N = impl[kind]
  realTest(`[${kind}] Socket: writes before connect are sent; connecting/pending/readyState; addresses; bytes counted`, async (t) => {
    const got: Buffer[] = []
    let serverPeer: string | undefined
    let serverSide: net.Socket | undefined
    const srv = N.createServer((s) => {
      serverSide = s
      serverPeer = s.remoteAddress
      s.on('data', (d: Buffer) => got.push(d))
      s.on('end', () => s.end('bye'))
    })
    const port = await listening(t, srv)
    const c = N.createConnection(port, '127.0.0.1')
    t.true(c.connecting)
    t.true(c.pending)
    t.is(c.readyState, 'opening')
    t.deepEqual(c.address(), {})
    c.write('early ')
    await once(c, 'connect')
    t.false(c.connecting)
    t.false(c.pending)
    t.is(c.readyState, 'open')
    t.is(c.remoteAddress, '127.0.0.1')
    t.is(c.remotePort, port)
    t.is(c.remoteFamily, 'IPv4')
    t.is(c.localAddress, '127.0.0.1')
    t.is(typeof c.localPort, 'number')
    t.deepEqual(c.address(), { address: '127.0.0.1', family: 'IPv4', port: c.localPort })
    c.setNoDelay(true)
    c.setKeepAlive(true, 1000)
    let reply = ''
    c.on('data', (d: Buffer) => (reply += d.toString()))
    c.end('late')
    await once(c, 'close')
    t.is(Buffer.concat(got).toString(), 'early late')
    t.is(reply, 'bye')
    t.is(c.bytesWritten, 10)
    t.is(c.bytesRead, 3)
    t.is(c.readyState, 'closed')
    t.is(serverPeer, '127.0.0.1')
    t.is(serverSide!.bytesRead, 10)
  })

  realTest(`[${kind}] Socket: write() then destroy() delivers the bytes; destroySoon() too`, async (t) => {
    const big = Buffer.alloc(256 * 1024, 3)
    const srv = N.createServer((s) => {
      s.on('error', () => undefined)
      s.on('data', (d: Buffer) => {
        if (d.toString().startsWith('one')) {
          s.write(big)
          s.destroy()
        } else {
          s.write('two')
          s.destroySoon()
        }
      })
    })
    const port = await listening(t, srv)
    for (const word of ['one', 'two']) {
      const c = N.createConnection(port, '127.0.0.1')
      const chunks: Buffer[] = []
      c.on('data', (d: Buffer) => chunks.push(d))
      c.write(word)
      await once(c, 'close')
      const all = Buffer.concat(chunks)
      if (word === 'one') t.true(all.equals(big), `${all.length} of ${big.length} bytes`)
      else t.is(all.toString(), 'two')
    }
  })

  realTest(`[${kind}] Socket: setTimeout emits 'timeout' when idle (and the socket stays open), 0 turns it off`, async (t) => {
    const srv = N.createServer((s) => s.on('data', (d: Buffer) => s.write(d)))
    const port = await listening(t, srv)
    const c = N.createConnection(port, '127.0.0.1')
    await once(c, 'connect')
    let fired = 0
    c.setTimeout(30, () => fired++)
    t.is(c.timeout, 30)
    await once(c, 'timeout')
    t.is(fired, 1)
    t.false(c.destroyed)
    c.write('still open')
    const [d] = (await once(c, 'data')) as [Buffer]
    t.is(d.toString(), 'still open')
    c.setTimeout(0)
    c.destroy()
    await once(c, 'close')
  })

  realTest(`[${kind}] Socket: a failed connect emits 'error' (ECONNREFUSED, syscall connect) then 'close'`, async (t) => {
    const probe = net.createServer()
    probe.listen(0, '127.0.0.1')
    await once(probe, 'listening')
    const port = (probe.address() as net.AddressInfo).port
    await new Promise<void>((r) => probe.close(() => r()))
    const c = N.createConnection(port, '127.0.0.1')
    const closed = new Promise((r) => c.once('close', r))
    const [e] = (await once(c, 'error')) as [NodeJS.ErrnoException]
    t.is(e.code, 'ECONNREFUSED')
    t.is(e.syscall, 'connect')
    await closed
    t.true(c.destroyed)
  })

  realTest(`[${kind}] Socket: 'close' says whether an error closed it (hadError), after 'error'`, async (t) => {
    const srv = N.createServer((s) => s.on('error', () => undefined))
    const port = await listening(t, srv)
    const seen: unknown[] = []
    for (const how of ['destroy()', 'destroy(err)', 'end()']) {
      const c = N.createConnection(port, '127.0.0.1')
      await once(c, 'connect')
      const events: unknown[] = []
      c.on('error', (e: Error) => events.push(`error ${e.message}`))
      const closed = new Promise<void>((r) => c.once('close', (hadError: unknown) => {
        events.push(['close', hadError])
        r()
      }))
      if (how === 'destroy()') c.destroy()
      else if (how === 'destroy(err)') c.destroy(new Error('boom'))
      else {
        c.resume()
        c.end()
        // The server ends its side at the client's end (allowHalfOpen false).
      }
      await closed
      seen.push([how, ...events])
    }
    t.deepEqual(seen, [
      ['destroy()', ['close', false]],
      ['destroy(err)', 'error boom', ['close', true]],
      ['end()', ['close', false]],
    ])
  })

  realTest(`[${kind}] Server: 'listening', address(), getConnections, close() waits for connections, close(cb) when not running`, async (t) => {
    const conns: net.Socket[] = []
    const srv = N.createServer((s) => conns.push(s))
    srv.listen({ port: 0, host: '127.0.0.1' })
    await once(srv, 'listening')
    t.true(srv.listening)
    const port = (srv.address() as net.AddressInfo).port
    t.deepEqual(srv.address(), { address: '127.0.0.1', family: 'IPv4', port })
    const c = net.connect(port, '127.0.0.1')
    await once(c, 'connect')
    t.true(await waitFor(() => conns.length === 1, 500, 2))
    const n = await new Promise<number>((r) => srv.getConnections((_e, k) => r(k)))
    t.is(n, 1)
    let closed = false
    srv.close(() => (closed = true))
    t.false(srv.listening)
    t.is(srv.address(), null)
    c.end()
    await once(srv, 'close')
    t.true(closed)
    const e = await new Promise<Error | undefined>((r) => srv.close((err) => r(err)))
    t.is((e as NodeJS.ErrnoException | undefined)?.code, 'ERR_SERVER_NOT_RUNNING')
  })
}

realTest('ringline/net: listen on a port in use emits EADDRINUSE; isIP passthroughs; the Duplex of stream() is a ringline/net Socket', async (t) => {
  const a = rnet.createServer()
  a.listen(0, '127.0.0.1')
  await once(a, 'listening')
  t.teardown(() => a.close())
  const b = rnet.createServer()
  b.listen(a.address()!.port, '127.0.0.1')
  const [e] = (await once(b, 'error')) as [NodeJS.ErrnoException]
  t.is(e.code, 'EADDRINUSE')
  t.is(rnet.isIP('::1'), 6)
  t.true(rnet.isIPv4('127.0.0.1'))
  t.false(rnet.isIPv6('127.0.0.1'))
  t.is(rnet.isIP, net.isIP)
  const rs = await connect({ port: a.address()!.port, host: '127.0.0.1' })
  const d = rs.stream()
  t.true(d instanceof rnet.Socket)
  t.is(rs.stream(), d)
  d.destroy()
  await once(d, 'close')
  t.true(rs.closed)
})
