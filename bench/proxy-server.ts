import * as readline from 'readline';
import { startProxy, TcpProxy } from '../world/tcp-proxy';

/**
 * Delay relays for bench/scale.ts, in a process of their own so that their buffers and CPU
 * never count as the deployer's. argv[2]: JSON { targets: [{ host, port }], delayMs }.
 * Prints one JSON line { ports } once listening; then answers each `stats` line on stdin
 * with { bytes, connections } (totals per proxy since start). Ends when stdin closes.
 */
async function main(): Promise<void> {
  const config = JSON.parse(process.argv[2]) as { targets: { host: string; port: number }[]; delayMs: number };
  const proxies: TcpProxy[] = await Promise.all(config.targets.map((t) => startProxy(t.host, t.port, { delayMs: config.delayMs })));
  process.stdout.write(JSON.stringify({ ports: proxies.map((p) => p.port) }) + '\n');
  const lines = readline.createInterface({ input: process.stdin });
  lines.on('line', (line) => {
    if (line.trim() === 'stats') {
      process.stdout.write(JSON.stringify({ bytes: proxies.map((p) => p.bytesUp()), connections: proxies.map((p) => p.connections()) }) + '\n');
    }
  });
  lines.on('close', () => {
    void Promise.all(proxies.map((p) => p.close())).then(() => process.exit(0));
  });
}

main().catch((e) => {
  process.stderr.write(`proxy-server: ${e instanceof Error ? e.stack : e}\n`);
  process.exit(1);
});
