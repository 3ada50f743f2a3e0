import * as net from 'net';

/** How the proxy treats the connections it relays. */
export interface ProxyOptions {
  /** Cut a connection after this many bytes went from client to server. @default never */
  readonly cutAfterBytes?: number;
  /** How many connections are cut that way before the proxy relays faithfully. @default Infinity */
  readonly cuts?: number;
  /** Delay added to each direction, in milliseconds (half a round trip). @default 0 */
  readonly delayMs?: number;
}

/** Bytes a delaying relay holds per direction before it stops reading (above 100 Mbit/s × 100 ms). */
const DELAYED_BYTES_MAX = 4 * 1024 * 1024;

/** A running proxy and what it has seen. */
export interface TcpProxy {
  readonly port: number;
  /** Bytes relayed from clients to the server, over all connections. */
  readonly bytesUp: () => number;
  readonly connections: () => number;
  close(): Promise<void>;
}

/**
 * A TCP relay in front of a test host's sshd: it counts the bytes a deployer sends, can
 * cut connections in the middle of a transfer, and can add latency (netem is not
 * available here).
 */
export function startProxy(targetHost: string, targetPort: number, options: ProxyOptions = {}): Promise<TcpProxy> {
  let up = 0;
  let connections = 0;
  let cutsLeft = options.cuts ?? Infinity;
  const sockets = new Set<net.Socket>();
  const delay = options.delayMs ?? 0;
  const relay = (from: net.Socket, to: net.Socket, count: (n: number) => void) => {
    let delayed = 0;
    const resumeIfRoom = () => {
      if (from.isPaused() && delayed + to.writableLength <= DELAYED_BYTES_MAX) from.resume();
    };
    if (delay > 0) to.on('drain', resumeIfRoom);
    from.on('data', (chunk: Buffer) => {
      count(chunk.length);
      if (delay > 0) {
        // Hold at most DELAYED_BYTES_MAX in flight, so that a slow link behind the proxy
        // slows the sender (backpressure) instead of filling this process's memory.
        delayed += chunk.length;
        if (delayed + to.writableLength > DELAYED_BYTES_MAX) from.pause();
        setTimeout(() => {
          delayed -= chunk.length;
          if (!to.destroyed) to.write(chunk);
          resumeIfRoom();
        }, delay);
      } else if (!to.write(chunk)) {
        from.pause();
        to.once('drain', () => from.resume());
      }
    });
    from.on('end', () => setTimeout(() => to.end(), delay));
    from.on('error', () => to.destroy());
    from.on('close', () => to.destroy());
  };
  const server = net.createServer((client) => {
    connections++;
    const cutThis = options.cutAfterBytes !== undefined && cutsLeft > 0;
    if (cutThis) cutsLeft--;
    let sent = 0;
    const upstream = net.connect(targetPort, targetHost);
    sockets.add(client).add(upstream);
    relay(client, upstream, (n) => {
      up += n;
      sent += n;
      if (cutThis && sent >= options.cutAfterBytes!) {
        client.destroy();
        upstream.destroy();
      }
    });
    relay(upstream, client, () => undefined);
    client.on('close', () => sockets.delete(client));
    upstream.on('close', () => sockets.delete(upstream));
  });
  return new Promise((resolve) => {
    server.listen(0, '127.0.0.1', () => {
      resolve({
        port: (server.address() as net.AddressInfo).port,
        bytesUp: () => up,
        connections: () => connections,
        close: () =>
          new Promise<void>((done) => {
            for (const s of sockets) s.destroy();
            server.close(() => done());
          }),
      });
    });
  });
}
