// ringline/net: node:net's shape over ringline's TCP sockets, on this
// thread's default ring (or the `ring` option): sockets and servers that
// node:http, https, tls and http.Agent take unchanged. See README.md,
// "ringline/net".

export {
  Socket,
  Server,
  createServer,
  createConnection,
  connect,
  serveHttp,
  isIP,
  isIPv4,
  isIPv6,
  type SocketOptions,
  type TcpConnectOptions,
  type ServerOptions,
  type ServerListenOptions,
  type HttpLikeServer,
} from './lib/net-node'
export type { AddressInfo, NetError } from './lib/net'
