// A TCP echo server: every byte a client sends comes back to it.
//
//   node --import tsx examples/echo-server.ts [port] [host]
//
// port defaults to 7000 (0 picks a free one), host to '::' (every IPv4 and
// IPv6 address). It prints the address it listens on. Ctrl-C stops
// listening and closes the open connections; a second Ctrl-C exits at once.
//
// Try it with examples/echo-client.ts, or `nc localhost 7000`.

import { defaultRing, listen, type Socket } from '../index'

async function echo(sock: Socket, open: Set<Socket>): Promise<void> {
  const peer = `${sock.remoteFamily === 'IPv6' ? `[${sock.remoteAddress}]` : sock.remoteAddress}:${sock.remotePort}`
  console.log(`+ ${peer}`)
  let bytes = 0
  try {
    // Chunks as they arrive, until the client closes its side. Each chunk
    // is sent back before the next is read: a client that sends faster
    // than it reads is slowed down by TCP, not buffered here without bound.
    for await (const chunk of sock) {
      await sock.send(chunk)
      bytes += chunk.length
    }
    console.log(`- ${peer} (${bytes} bytes echoed)`)
  } catch (e) {
    const err = e as NodeJS.ErrnoException
    // ECANCELED: closed by Ctrl-C below while a recv was pending.
    if (err.code !== 'ECANCELED') console.log(`- ${peer}: ${err.code ?? err.message} after ${bytes} bytes`)
  } finally {
    open.delete(sock)
    await sock.close()
  }
}

async function main(): Promise<void> {
  const port = Number(process.argv[2] ?? 7000)
  const host = process.argv[3] // undefined: ringline's default, '::' (dual stack)
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    console.error('usage: node --import tsx examples/echo-server.ts [port] [host]')
    process.exit(2)
  }

  const listener = await listen({ port, host })
  const { address, port: bound } = listener.address()
  console.log(`echo server listening on ${address.includes(':') ? `[${address}]` : address}:${bound} (${defaultRing().backend}); Ctrl-C stops it`)

  const open = new Set<Socket>()
  const handlers = new Set<Promise<void>>()
  process.once('SIGINT', () => {
    console.log('\nclosing')
    process.once('SIGINT', () => process.exit(130))
    // Ends the for await below; the accepted sockets stay open until closed.
    void listener.close()
    for (const s of open) void s.close()
  })

  for await (const sock of listener) {
    open.add(sock)
    const h = echo(sock, open)
    handlers.add(h)
    void h.finally(() => handlers.delete(h))
  }
  await Promise.all(handlers)
  console.log('closed')
}

main().catch((e) => {
  console.error(e)
  process.exit(1)
})
