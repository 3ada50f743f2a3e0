import { Transform } from 'stream';
import { SshSession } from './ssh';
import { missingOnHost, StoreSource } from './store';
import { ProgressEvent } from './types';

/** What a copy sent. */
export interface CopyStats {
  readonly paths: number;
  readonly bytes: number;
}

/** Paths per `nix-store --export` run, to stay far below the argument length limit. */
const CHUNK = 1000;

/**
 * Copies the closure of `roots` from `source` to the host, sending only the paths the
 * host lacks. Paths arrive whole or not at all: Nix registers an imported path only
 * after all of it has arrived, so an interrupted copy can simply be started again.
 */
export async function copyClosure(
  source: StoreSource,
  target: SshSession,
  roots: readonly string[],
  report: (event: Omit<ProgressEvent, 'host'>) => void,
  signal?: AbortSignal,
): Promise<CopyStats> {
  const closure = await source.closure(roots);
  const missing = await missingOnHost(target, closure);
  if (missing.length === 0) {
    report({ step: 'copy', message: `the host has all ${closure.length} paths already` });
    return { paths: 0, bytes: 0 };
  }
  const sizes = await source.narSizes(missing);
  const totalBytes = [...sizes.values()].reduce((a, b) => a + b, 0);
  report({ step: 'copy', message: `copying ${missing.length} of ${closure.length} paths (${formatBytes(totalBytes)}) from ${source.name}` });

  let bytes = 0;
  let narDone = 0;
  let pathsDone = 0;
  const progress = () => {
    while (pathsDone < missing.length && narDone + (sizes.get(missing[pathsDone]) ?? 0) <= bytes) narDone += sizes.get(missing[pathsDone++]) ?? 0;
    report({ step: 'copy', message: 'copying', copied: { paths: pathsDone, totalPaths: missing.length, bytes, totalBytes } });
  };
  for (let start = 0; start < missing.length; start += CHUNK) {
    signal?.throwIfAborted();
    await sendPaths(source, target, missing.slice(start, start + CHUNK), (n) => {
      bytes += n;
      progress();
    }, signal);
  }
  report({ step: 'copy', message: `copied ${missing.length} paths, ${formatBytes(bytes)} sent` });
  return { paths: missing.length, bytes };
}

/** Streams one export into `nix-store --import` on the host, reporting bytes as they pass. */
async function sendPaths(
  source: StoreSource,
  target: SshSession,
  paths: readonly string[],
  onBytes: (n: number) => void,
  signal?: AbortSignal,
): Promise<void> {
  const channel = await target.open('nix-store --import >/dev/null');
  let exported;
  try {
    exported = await source.export(paths);
  } catch (error) {
    channel.close();
    throw error;
  }
  let stderr = '';
  channel.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  // An unread channel never ends, and so never reports the importer's exit.
  channel.resume();
  const counter = new Transform({
    transform(chunk: Buffer, _encoding, callback) {
      onBytes(chunk.length);
      callback(null, chunk);
    },
  });
  const abort = () => {
    exported.kill();
    channel.close();
  };
  signal?.addEventListener('abort', abort, { once: true });
  try {
    const imported = new Promise<void>((resolve, reject) => {
      channel.on('close', (code: number | null) => {
        if (code === 0) resolve();
        else if (signal?.aborted) reject(signal.reason);
        else if (code === null || code === undefined) reject(new Error(`the connection was lost during the copy (${target.lost ?? 'channel closed'})`));
        else reject(new Error(`nix-store --import on the host failed: ${stderr.trim().replace(/\s*\n\s*/g, ' | ') || `exit code ${code}`}`));
      });
    });
    // A dead importer never drains the pipe: stop the exporter, or it waits for ever.
    imported.catch(() => exported.kill());
    // Failures surface as the channel's exit and the exporter's: a write after either ended
    // must not become an unhandled 'error' event.
    for (const stream of [exported.stream, counter, channel]) stream.on('error', () => undefined);
    exported.stream.pipe(counter).pipe(channel);
    // The importer's complaint (a full disk, say) explains the exporter's broken pipe: it wins.
    const [importing, exporting] = await Promise.allSettled([imported, exported.done]);
    if (importing.status === 'rejected') throw importing.reason;
    if (exporting.status === 'rejected') throw exporting.reason;
  } catch (error) {
    exported.kill();
    throw error;
  } finally {
    signal?.removeEventListener('abort', abort);
  }
}

/** Bytes as a short human figure. */
export function formatBytes(bytes: number): string {
  if (bytes < 1024) return `${bytes} B`;
  if (bytes < 1024 * 1024) return `${(bytes / 1024).toFixed(1)} KiB`;
  if (bytes < 1024 * 1024 * 1024) return `${(bytes / 1024 / 1024).toFixed(1)} MiB`;
  return `${(bytes / 1024 / 1024 / 1024).toFixed(2)} GiB`;
}
