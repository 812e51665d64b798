// TCP (issue 3) against real peers: node:net clients and servers, node:http
// over stream(), peers that reset mid-transfer, a child process that sends
// 64 MiB to a reader that is slow to start, a child that checks no SIGPIPE
// is raised, and 1,000 node:net clients on one ringline listener.

import { type ExecutionContext } from 'ava'
import { createHash } from 'node:crypto'
import * as http from 'node:http'
import * as net from 'node:net'
import * as path from 'node:path'
import { Ring, type Socket } from '../index'
import { gc, outcome, props, repoRoot, run, sameBytes, start, waitFor } from './helpers'
import {
  KiB,
  MiB,
  LOCAL,
  assertNetError,
  canListen,
  closeLater,
  echo,
  nodeConnect,
  nodeReadAtLeast,
  nodeReadToEnd,
  nodeServer,
  pattern,
  readToEnd,
  sha256,
} from './net-helpers'
import { realKernelOnly } from './sim-setup'

// Every test here has a real peer on the other end (node:net, node:http, a
// child process), which a sim ring's network cannot reach: on the sim they
// are skipped (listed in __test__/SIM-SKIPS.md). The sim's own TCP is tested
// by net.spec.ts and sim-net.spec.ts.
const WHY = "a real peer (node:net, node:http, a child process): the sim's network is its own ring's"
const test = Object.assign(realKernelOnly(WHY), { serial: realKernelOnly(WHY, { serial: true }) })

function ringFor(t: ExecutionContext): Ring {
  return closeLater(t, new Ring())
}

const SIZES = [
  ['1 byte', 1],
  ['100 bytes', 100],
  ['64 KiB', 64 * KiB],
  ['1 MiB', MiB],
  ['16 MiB', 16 * MiB],
] as const

// ------------------------------------------------------------ slow reader (serial: it measures this process's RSS)

const senderScript = `
const net = require('node:net')
const crypto = require('node:crypto')
const fs = require('node:fs')
const port = Number(process.argv[1])
const total = Number(process.argv[2])
const hash = crypto.createHash('sha256')
const s = net.connect({ port, host: '127.0.0.1' }, async () => {
  let sent = 0
  for (let off = 0; off < total; off += 1 << 20) {
    const b = crypto.randomBytes(Math.min(1 << 20, total - off))
    hash.update(b)
    const ok = s.write(b, () => {
      sent += b.length
      fs.writeSync(1, 'sent ' + sent + '\\n')
    })
    if (!ok) await new Promise((r) => s.once('drain', r))
  }
  s.end(() => fs.writeSync(1, 'done ' + hash.digest('hex') + '\\n'))
})
s.on('error', (e) => {
  fs.writeSync(2, String(e.stack) + '\\n')
  process.exit(1)
})
`

test.serial('a slow reader: a peer sends 64 MiB while nothing is read; memory stays bounded, the sender is held back, then every byte arrives', async (t) => {
  const total = 64 * MiB
  const ring = ringFor(t)
  const listener = closeLater(t, await ring.listen(LOCAL))
  const port = listener.address().port
  gc()
  const rss0 = process.memoryUsage().rss
  let sent = 0
  let doneHash: string | null = null
  const child = start(process.execPath, ['-e', senderScript, String(port), String(total)], {
    onStdout: (all) => {
      const lines = all.trimEnd().split('\n')
      for (let i = lines.length - 1; i >= 0; i--) {
        const m = /^sent (\d+)$/.exec(lines[i])
        if (m) {
          sent = Number(m[1])
          break
        }
      }
      const d = /done ([0-9a-f]{64})/.exec(all)
      if (d) doneHash = d[1]
    },
  })
  t.teardown(() => {
    child.child.kill('SIGKILL')
  })
  const sock = await listener.accept()
  if (sock === null) {
    t.fail('accept() resolved null')
    return
  }
  closeLater(t, sock)

  // Wait (bounded by count) until the sender stops making progress.
  let maxRss = 0
  let maxInUse = 0
  let last = -1
  let still = 0
  for (let i = 0; i < 1500 && still < 25 && sent < total; i++) {
    await new Promise((r) => setTimeout(r, 20))
    maxRss = Math.max(maxRss, process.memoryUsage().rss)
    maxInUse = Math.max(maxInUse, ring.stats().recvBuffersInUse)
    if (sent === last) still += 1
    else still = 0
    last = sent
  }
  const grown = maxRss - rss0
  t.log(`while paused: sender had handed ${(sent / MiB).toFixed(1)} MiB to its kernel, RSS grew ${(grown / MiB).toFixed(1)} MiB, recvBuffersInUse peaked at ${maxInUse}`)
  t.true(sent < total, `backpressure reached the sender: it got ${sent} of ${total} bytes out while nothing was read`)
  t.true(grown < 32 * MiB, `RSS grew ${(grown / MiB).toFixed(1)} MiB while up to 64 MiB was pending`)

  // Now read it all.
  const h = createHash('sha256')
  let got = 0
  for await (const c of sock) {
    h.update(c)
    got += c.length
  }
  t.is(got, total)
  await sock.close()
  const r = await outcome(child.done, 3000, 10)
  t.true(r.settled, 'the sender exits')
  t.is(r.value?.code, 0, r.value?.stderr)
  t.is<unknown, unknown>(h.digest('hex'), doneHash, 'sha256 of what arrived equals the sender\'s')
  t.true(await waitFor(() => ring.stats().recvBuffersInUse === 0), `recvBuffersInUse ${ring.stats().recvBuffersInUse} after closing`)
})

// ------------------------------------------------------------ payloads both ways

async function ringlineServerNodeClient(t: ExecutionContext, size: number): Promise<void> {
  const ring = ringFor(t)
  const listener = closeLater(t, await ring.listen(LOCAL))
  const port = listener.address().port
  const served = (async () => {
    const s = await listener.accept()
    if (s === null) throw new Error('accept() resolved null')
    closeLater(t, s)
    return echo(s)
  })()
  const c = await nodeConnect(t, port)
  const data = pattern(size, size + 1)
  const back = nodeReadToEnd(c)
  c.end(data)
  const got = await back
  t.is(await served, size)
  t.is(got.length, size)
  t.is(sha256(got), sha256(data))
  sameBytes(t, got, data)
}

async function nodeServerRinglineClient(t: ExecutionContext, size: number): Promise<void> {
  const ring = ringFor(t)
  const { port } = await nodeServer(t, (s) => s.pipe(s))
  const c = closeLater(t, await ring.connect({ port, host: '127.0.0.1' }))
  const data = pattern(size, size + 2)
  const back = readToEnd(c)
  t.is(await c.send(data), size)
  await c.shutdown()
  const got = await back
  t.is(got.length, size)
  t.is(sha256(got), sha256(data))
  sameBytes(t, got, data)
}

for (const [label, size] of SIZES) {
  test(`ringline server, node:net client: ${label} echoed byte for byte`, ringlineServerNodeClient, size)
  test(`node:net server, ringline client: ${label} echoed byte for byte`, nodeServerRinglineClient, size)
}

test('half-close with node:net: each side reads the other\'s data before end, then replies', async (t) => {
  const ring = ringFor(t)
  // node client ends first; ringline server reads to end, then replies and shuts down
  const listener = closeLater(t, await ring.listen(LOCAL))
  const serving = (async () => {
    const s = await listener.accept()
    if (s === null) throw new Error('accept() resolved null')
    closeLater(t, s)
    const req = await readToEnd(s)
    await s.send(`got ${req.toString()}`)
    await s.shutdown()
  })()
  const c = await nodeConnect(t, listener.address().port)
  const reply = nodeReadToEnd(c)
  c.end('question')
  t.is((await reply).toString(), 'got question')
  await serving

  // ringline client shuts down first; node server (allowHalfOpen) replies after its 'end'
  const { port } = await nodeServer(
    t,
    (s) => {
      const chunks: Buffer[] = []
      s.on('data', (d: Buffer) => chunks.push(d))
      s.on('end', () => s.end(`node got ${Buffer.concat(chunks).toString()}`))
    },
    '127.0.0.1',
    { allowHalfOpen: true },
  )
  const rc = closeLater(t, await ring.connect({ port, host: '127.0.0.1' }))
  await rc.send('part one, ')
  await rc.send('part two')
  await rc.shutdown()
  t.is((await readToEnd(rc)).toString(), 'node got part one, part two')
})

// ------------------------------------------------------------ addresses as node:net sees them

test('addresses and ports match node:net\'s view from the other end (IPv4)', async (t) => {
  const ring = ringFor(t)
  const listener = closeLater(t, await ring.listen(LOCAL))
  const port = listener.address().port
  const accepted = listener.accept()
  const nc = await nodeConnect(t, port)
  const s = await accepted
  if (s === null) {
    t.fail('accept() resolved null')
    return
  }
  closeLater(t, s)
  t.is<unknown, unknown>(s.remoteAddress, nc.localAddress)
  t.is<unknown, unknown>(s.remotePort, nc.localPort)
  t.is(s.remoteFamily, 'IPv4')
  t.is<unknown, unknown>(s.localAddress, nc.remoteAddress)
  t.is<unknown, unknown>(s.localPort, nc.remotePort)
  t.is<unknown, unknown>(listener.address().port, nc.remotePort)

  let nodeSide: net.Socket | undefined
  const { server, port: nport } = await nodeServer(t, (x) => {
    nodeSide = x
  })
  const rc = closeLater(t, await ring.connect({ port: nport, host: '127.0.0.1' }))
  t.true(await waitFor(() => nodeSide !== undefined))
  if (nodeSide === undefined) return
  t.is<unknown, unknown>(rc.localAddress, nodeSide.remoteAddress)
  t.is<unknown, unknown>(rc.localPort, nodeSide.remotePort)
  t.is<unknown, unknown>(rc.remoteAddress, nodeSide.localAddress)
  t.is<unknown, unknown>(rc.remotePort, nodeSide.localPort)
  t.is<unknown, unknown>(rc.remoteFamily, nodeSide.remoteFamily)
  t.deepEqual(listener.address(), { ...(server.address() as net.AddressInfo), port })
})

test('IPv6 on ::1 with node:net on the other end, both ways', async (t) => {
  if (!(await canListen('::1'))) {
    t.log('::1 cannot be bound here; IPv6 not tested')
    t.pass()
    return
  }
  const ring = ringFor(t)
  const listener = closeLater(t, await ring.listen({ host: '::1', port: 0 }))
  const port = listener.address().port
  const accepted = listener.accept()
  const nc = await nodeConnect(t, port, '::1')
  const s = await accepted
  if (s === null) {
    t.fail('accept() resolved null')
    return
  }
  closeLater(t, s)
  t.is(s.remoteAddress, '::1')
  t.is(s.remoteFamily, 'IPv6')
  t.is<unknown, unknown>(s.remotePort, nc.localPort)
  t.is<unknown, unknown>(s.localPort, nc.remotePort)
  const served = echo(s)
  const data = pattern(200 * KiB, 66)
  const back = nodeReadToEnd(nc)
  nc.end(data)
  sameBytes(t, await back, data)
  await served

  let nodeSide: net.Socket | undefined
  const { server, port: nport } = await nodeServer(
    t,
    (x) => {
      nodeSide = x
      x.pipe(x)
    },
    '::1',
  )
  const rc = closeLater(t, await ring.connect({ port: nport, host: '::1' }))
  t.true(await waitFor(() => nodeSide !== undefined))
  t.is(rc.remoteAddress, '::1')
  t.is(rc.remoteFamily, 'IPv6')
  t.is<unknown, unknown>(rc.localPort, nodeSide?.remotePort)
  t.deepEqual(listener.address(), { ...(server.address() as net.AddressInfo), port })
  const back2 = readToEnd(rc)
  await rc.send(data)
  await rc.shutdown()
  sameBytes(t, await back2, data)
})

// ------------------------------------------------------------ resets

test('a node:net peer that resets mid-transfer: recv() and the iterator reject ECONNRESET (syscall recv), stream() emits it', async (t) => {
  const ring = ringFor(t)
  const peers: net.Socket[] = []
  const { port } = await nodeServer(t, (s) => {
    peers.push(s)
    s.write(pattern(256 * KiB, 7))
  })

  // recv()
  const a = closeLater(t, await ring.connect({ port, host: '127.0.0.1' }))
  const first = await a.recv()
  t.true(first !== null && first.length > 0)
  t.true(await waitFor(() => peers.length === 1))
  peers[0].resetAndDestroy()
  let errA: unknown
  try {
    for (let i = 0; i < 100000; i++) if ((await a.recv()) === null) break
  } catch (e) {
    errA = e
  }
  assertNetError(t, errA, { code: 'ECONNRESET', syscall: 'recv' }, 'recv()')

  // for await
  const b = closeLater(t, await ring.connect({ port, host: '127.0.0.1' }))
  t.true(await waitFor(() => peers.length === 2))
  let errB: unknown
  let chunks = 0
  try {
    for await (const c of b) {
      t.true(c.length > 0)
      if (chunks++ === 0) peers[1].resetAndDestroy()
    }
  } catch (e) {
    errB = e
  }
  assertNetError(t, errB, { code: 'ECONNRESET', syscall: 'recv' }, 'for await')

  // stream()
  const c = closeLater(t, await ring.connect({ port, host: '127.0.0.1' }))
  t.true(await waitFor(() => peers.length === 3))
  const d = c.stream()
  const errC = await new Promise<unknown>((resolve) => {
    let reset = false
    d.on('data', () => {
      if (!reset) {
        reset = true
        peers[2].resetAndDestroy()
      }
    })
    d.once('error', resolve)
    d.once('end', () => resolve(new Error('stream ended without an error')))
  })
  t.is(props(errC).code, 'ECONNRESET', String(props(errC).message))
})

test('a node:net peer that resets while ringline sends: send() rejects EPIPE or ECONNRESET (syscall send), recv() does not hang', async (t) => {
  const ring = ringFor(t)
  const { port } = await nodeServer(t, (s) => {
    s.once('data', () => s.resetAndDestroy())
  })
  const c = closeLater(t, await ring.connect({ port, host: '127.0.0.1' }))
  const chunk = pattern(MiB, 8)
  let err: unknown
  let ok = 0
  for (let i = 0; i < 500 && err === undefined; i++) {
    try {
      await c.send(chunk)
      ok += 1
    } catch (e) {
      err = e
    }
  }
  t.log(`${ok} sends of 1 MiB went out before the error`)
  assertNetError(t, err, { code: ['EPIPE', 'ECONNRESET'], syscall: 'send' })
  const r = await outcome(c.recv(), 400, 5)
  t.true(r.settled, 'recv() after a reset settles')
  if (r.resolved) t.is(r.value, null)
  else t.is(props(r.error).code, 'ECONNRESET')
})

const sigpipeScript = `
const net = require('node:net')
const { Ring } = require(process.argv[1])
let sigpipes = 0
process.on('SIGPIPE', () => { sigpipes += 1 })
const server = net.createServer((s) => { s.on('error', () => {}); s.destroy() })
server.listen({ port: 0, host: '127.0.0.1' }, async () => {
  const ring = new Ring()
  const sock = await ring.connect({ port: server.address().port, host: '127.0.0.1' })
  const eof = await sock.recv()
  const codes = []
  for (let i = 0; i < 200 && codes.length < 4; i++) {
    try { await sock.send(Buffer.alloc(64 * 1024, i)) } catch (e) { codes.push(e.code + '/' + e.syscall) }
    await new Promise((r) => setTimeout(r, 2))
  }
  await new Promise((r) => setTimeout(r, 100))
  await sock.close()
  await ring.close()
  server.close()
  console.log(JSON.stringify({ eof, codes, sigpipes }))
})
`

test('sending to a closed peer never raises SIGPIPE (MSG_NOSIGNAL), even with a SIGPIPE handler installed', async (t) => {
  const r = await run(process.execPath, ['--import=tsx', '-e', sigpipeScript, path.join(repoRoot, 'index.ts')], { polls: 3000 })
  t.false(r.hung, r.stderr)
  t.is(r.code, 0, r.stderr)
  t.is(r.signal, null)
  let out: { eof: unknown; codes: string[]; sigpipes: number } | undefined
  try {
    out = JSON.parse(r.stdout.trim().split('\n').pop() ?? '') as { eof: unknown; codes: string[]; sigpipes: number }
  } catch {
    t.fail(`no result from the child: ${r.stdout} ${r.stderr}`)
    return
  }
  t.is(out.eof, null, 'recv() read end of stream first')
  t.true(out.codes.length > 0, 'sends failed')
  t.true(['EPIPE/send', 'ECONNRESET/send'].includes(out.codes[0]), out.codes.join(', '))
  t.log(`send errors: ${out.codes.join(', ')}`)
  t.is(out.sigpipes, 0, 'no SIGPIPE reached the process')
})

// ------------------------------------------------------------ many connections

test('1,000 concurrent node:net clients each echo through one ringline listener', async (t) => {
  const ring = ringFor(t)
  const listener = closeLater(t, await ring.listen({ ...LOCAL, backlog: 1024 }))
  const port = listener.address().port
  const serving: Promise<number>[] = []
  const accepting = (async () => {
    for await (const s of listener) {
      closeLater(t, s)
      serving.push(echo(s).finally(() => s.close()))
    }
  })()
  const n = 1000
  const clients: net.Socket[] = []
  t.teardown(() => {
    for (const c of clients) c.destroy()
  })
  const results = await Promise.all(
    Array.from(
      { length: n },
      (_, i) =>
        new Promise<boolean>((resolve, reject) => {
          const msg = pattern(512, 5000 + i)
          const c = net.connect({ port, host: '127.0.0.1' }, () => c.end(msg))
          clients.push(c)
          const chunks: Buffer[] = []
          c.on('data', (d: Buffer) => chunks.push(d))
          c.once('end', () => resolve(Buffer.concat(chunks).equals(msg)))
          c.once('error', reject)
        }),
    ),
  )
  t.is(results.filter(Boolean).length, n)
  await listener.close()
  await accepting
  t.is(serving.length, n)
  const counts = await Promise.all(serving)
  t.true(counts.every((c) => c === 512))
  t.true(await waitFor(() => ring.stats().sockets === 0), `sockets ${ring.stats().sockets} after all closed`)
})

// ------------------------------------------------------------ node:http over stream()

test('node:http client over a ringline socket: http.request({ createConnection: () => sock.stream() })', async (t) => {
  const ring = ringFor(t)
  const server = http.createServer((req, res) => {
    const h = createHash('sha256')
    let n = 0
    req.on('data', (c: Buffer) => {
      h.update(c)
      n += c.length
    })
    req.on('end', () => {
      res.setHeader('content-type', 'application/json')
      res.end(JSON.stringify({ method: req.method, url: req.url, n, sha: h.digest('hex') }))
    })
  })
  await new Promise<void>((resolve) => server.listen({ port: 0, host: '127.0.0.1' }, () => resolve()))
  t.teardown(async () => {
    server.closeAllConnections()
    await new Promise<void>((resolve) => server.close(() => resolve()))
  })
  const port = (server.address() as net.AddressInfo).port
  const sock = closeLater(t, await ring.connect({ port, host: '127.0.0.1' }))
  const body = pattern(MiB + 5, 80)
  const res = await new Promise<{ status: number | undefined; text: string }>((resolve, reject) => {
    const req = http.request(
      {
        method: 'POST',
        path: '/upload?x=1',
        headers: { connection: 'close', 'content-length': body.length },
        createConnection: () => sock.stream() as unknown as net.Socket,
      },
      (r) => {
        const chunks: Buffer[] = []
        r.on('data', (c: Buffer) => chunks.push(c))
        r.on('end', () => resolve({ status: r.statusCode, text: Buffer.concat(chunks).toString() }))
        r.on('error', reject)
      },
    )
    req.on('error', reject)
    req.end(body)
  })
  t.is(res.status, 200)
  t.deepEqual(JSON.parse(res.text), { method: 'POST', url: '/upload?x=1', n: body.length, sha: sha256(body) })
})

test('node:http server fed ringline sockets: server.emit("connection", sock.stream()) serves a node:http client', async (t) => {
  const ring = ringFor(t)
  const download = pattern(512 * KiB + 3, 81)
  const server = http.createServer((req, res) => {
    const h = createHash('sha256')
    let n = 0
    req.on('data', (c: Buffer) => {
      h.update(c)
      n += c.length
    })
    req.on('end', () => {
      res.setHeader('x-upload', `${n}:${h.digest('hex')}`)
      res.setHeader('content-type', 'application/octet-stream')
      res.end(download)
    })
  })
  const listener = closeLater(t, await ring.listen(LOCAL))
  const port = listener.address().port
  const accepting = (async () => {
    for await (const s of listener) {
      closeLater(t, s)
      server.emit('connection', s.stream())
    }
  })()
  const upload = pattern(300 * KiB, 82)
  const res = await new Promise<{ status: number | undefined; header: unknown; body: Buffer }>((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, method: 'PUT', path: '/f', agent: false, headers: { connection: 'close' } }, (r) => {
      const chunks: Buffer[] = []
      r.on('data', (c: Buffer) => chunks.push(c))
      r.on('end', () => resolve({ status: r.statusCode, header: r.headers['x-upload'], body: Buffer.concat(chunks) }))
      r.on('error', reject)
    })
    req.on('error', reject)
    req.end(upload)
  })
  t.is(res.status, 200)
  t.is(res.header, `${upload.length}:${sha256(upload)}`)
  sameBytes(t, res.body, download)
  await listener.close()
  await accepting
})

// ------------------------------------------------------------ misc interop

test('stream() as a node:net-like Duplex against a node:net echo server, through pipe()', async (t) => {
  const ring = ringFor(t)
  const { port } = await nodeServer(t, (s) => s.pipe(s))
  const sock: Socket = closeLater(t, await ring.connect({ port, host: '127.0.0.1' }))
  const d = sock.stream()
  const data = pattern(3 * MiB, 90)
  const got = new Promise<Buffer>((resolve, reject) => {
    const chunks: Buffer[] = []
    d.on('data', (c: Buffer) => chunks.push(c))
    d.once('end', () => resolve(Buffer.concat(chunks)))
    d.once('error', reject)
  })
  for (let off = 0; off < data.length; off += 100 * KiB) d.write(data.subarray(off, off + 100 * KiB))
  d.end()
  const back = await got
  t.is(back.length, data.length)
  t.is(sha256(back), sha256(data))
})

test('ringline close() is seen by a node:net peer as end, and node:net end() as recv() null', async (t) => {
  const ring = ringFor(t)
  const listener = closeLater(t, await ring.listen(LOCAL))
  const accepted = listener.accept()
  const nc = await nodeConnect(t, listener.address().port)
  const s = await accepted
  if (s === null) {
    t.fail('accept() resolved null')
    return
  }
  closeLater(t, s)
  const ended = nodeReadToEnd(nc)
  await s.send('bye')
  await s.close()
  t.is((await ended).toString(), 'bye')

  const accepted2 = listener.accept()
  const nc2 = await nodeConnect(t, listener.address().port)
  const s2 = await accepted2
  if (s2 === null) {
    t.fail('accept() resolved null')
    return
  }
  closeLater(t, s2)
  nc2.end('last words')
  t.is((await readToEnd(s2)).toString(), 'last words')
  const echoed = nodeReadAtLeast(nc2, 1)
  await s2.send('!')
  t.is((await echoed).toString(), '!')
})
