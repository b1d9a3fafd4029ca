/** Public surface of server/: sockets and framing for UDP and TCP. */
export { parseListenAddress, formatListenAddress } from './listen-address.js'
export type { ListenAddress } from './listen-address.js'
export { chosenUdpIo, listenUdp } from './udp-listener.js'
export type { UdpIo, UdpListener, UdpOptions } from './udp-socket.js'
export { listenTcp } from './tcp-listener.js'
export type { TcpLimits, TcpListener } from './tcp-listener.js'
export { startListeners } from './start-listeners.js'
export type { Listeners } from './start-listeners.js'
