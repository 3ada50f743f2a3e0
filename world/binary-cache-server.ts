import * as fs from 'fs';
import * as http from 'http';
import * as path from 'path';

/** A running binary cache server. */
export interface BinaryCacheServer {
  readonly port: number;
  close(): Promise<void>;
}

/**
 * A Nix HTTP binary cache over a folder, as S3 is one in the test world: GET and HEAD
 * read files, PUT writes them (what `nix copy --to http://…` sends). Paths cannot leave
 * the folder.
 */
export function serveBinaryCache(dir: string, address = '127.0.0.1', port = 0): Promise<BinaryCacheServer> {
  fs.mkdirSync(dir, { recursive: true });
  let uploads = 0;
  const server = http.createServer((req, res) => {
    const name = path.normalize(decodeURIComponent((req.url ?? '/').split('?')[0])).replace(/^(\.\.[/\\])+/, '');
    const file = path.join(dir, name);
    if (!file.startsWith(dir + path.sep)) {
      res.writeHead(403).end();
      return;
    }
    if (req.method === 'PUT') {
      fs.mkdirSync(path.dirname(file), { recursive: true });
      // Written aside and renamed: a reader never sees half a NAR, and of two uploads of
      // one file at once, the last to finish wins whole.
      const partial = `${file}.${process.pid}.${++uploads}.partial`;
      const out = fs.createWriteStream(partial);
      req.pipe(out);
      out.on('finish', () => fs.rename(partial, file, (error) => res.writeHead(error ? 500 : 200).end()));
      out.on('error', () => res.writeHead(500).end());
      return;
    }
    fs.stat(file, (error, stat) => {
      if (error || !stat.isFile()) {
        res.writeHead(404).end();
        return;
      }
      res.writeHead(200, { 'content-length': stat.size });
      if (req.method === 'HEAD') res.end();
      else fs.createReadStream(file).pipe(res);
    });
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, address, () => {
      const bound = (server.address() as { port: number }).port;
      resolve({ port: bound, close: () => new Promise((done) => server.close(() => done())) });
    });
  });
}

// Run inside a host's network namespace: argv = DIR ADDRESS PORT; prints "listening" once up.
if (require.main === module) {
  const [dir, address, port] = process.argv.slice(2);
  serveBinaryCache(path.resolve(dir), address, Number(port)).then(
    () => process.stdout.write('listening\n'),
    (e: Error) => {
      process.stderr.write(`binary-cache-server: ${e.message}\n`);
      process.exit(1);
    },
  );
}
