/**
 * A throwaway PostgreSQL cluster for Terraform's `pg` backend (Debian's `postgresql`,
 * installed by world/setup-system.sh): initdb in a folder of its own owned by the
 * `postgres` user, a server on a free loopback port (and a unix socket in that folder),
 * one database and one password user. Nothing of the machine's own clusters is touched.
 *
 *   npx tsx world/postgres.ts start DIR   # prints the connection string (PG_CONN_STR)
 *   npx tsx world/postgres.ts stop DIR    # stops the server and deletes DIR
 */
import * as fs from 'fs';
import * as path from 'path';
import { randomBytes } from 'crypto';
import execa from 'execa';
import { freePort } from './world';

export interface PgCluster {
  readonly dir: string;
  readonly port: number;
  readonly database: string;
  readonly user: string;
  readonly password: string;
  /** `postgres://USER:PASSWORD@127.0.0.1:PORT/DB?sslmode=disable`: Terraform's `conn_str` / PG_CONN_STR. */
  readonly connStr: string;
}

/** The newest installed PostgreSQL's bin folder. */
export function postgresBinDir(): string {
  const root = '/usr/lib/postgresql';
  const versions = fs.existsSync(root) ? fs.readdirSync(root).filter((v) => fs.existsSync(path.join(root, v, 'bin', 'pg_ctl'))) : [];
  if (versions.length === 0) throw new Error(`no PostgreSQL in ${root}: run \`bash world/setup-system.sh\` (installs Debian's postgresql)`);
  versions.sort((a, b) => Number(b) - Number(a));
  return path.join(root, versions[0], 'bin');
}

/** Runs a PostgreSQL tool as the `postgres` user (initdb and the server refuse root). */
function asPostgres(tool: string, args: string[], options: execa.Options = {}): execa.ExecaChildProcess {
  const bin = path.join(postgresBinDir(), tool);
  return process.getuid?.() === 0 ? execa('runuser', ['-u', 'postgres', '--', bin, ...args], options) : execa(bin, args, options);
}

/** Starts a new cluster in `dir` (which must not hold one yet; the `postgres` user must be able to reach it). */
export async function startPostgres(dir: string): Promise<PgCluster> {
  const data = path.join(dir, 'data');
  fs.mkdirSync(dir, { recursive: true });
  fs.chmodSync(dir, 0o755);
  if (process.getuid?.() === 0) {
    const { stdout } = await execa('id', ['-u', 'postgres']);
    const { stdout: gid } = await execa('id', ['-g', 'postgres']);
    fs.chownSync(dir, Number(stdout.trim()), Number(gid.trim()));
  }
  await asPostgres('initdb', ['-D', data, '-U', 'postgres', '--auth-local=trust', '--auth-host=scram-sha-256', '-E', 'UTF8', '--no-instructions']);
  const port = await freePort();
  await asPostgres('pg_ctl', ['-D', data, '-l', path.join(dir, 'server.log'), '-w', '-t', '60', '-o', `-p ${port} -k ${dir} -c listen_addresses=127.0.0.1`, 'start']);
  const user = 'terraform';
  const database = 'terraform_state';
  const password = randomBytes(12).toString('hex');
  const psql = (sql: string) => asPostgres('psql', ['-h', dir, '-p', String(port), '-U', 'postgres', '-v', 'ON_ERROR_STOP=1', '-qc', sql]);
  await psql(`CREATE ROLE ${user} LOGIN PASSWORD '${password}'`);
  await psql(`CREATE DATABASE ${database} OWNER ${user}`);
  const cluster: PgCluster = { dir, port, database, user, password, connStr: `postgres://${user}:${password}@127.0.0.1:${port}/${database}?sslmode=disable` };
  fs.writeFileSync(path.join(dir, 'cluster.json'), JSON.stringify(cluster, null, 2), { mode: 0o600 });
  return cluster;
}

/** Stops the cluster in `dir` and deletes the folder. A missing or stopped cluster is fine. */
export async function stopPostgres(dir: string): Promise<void> {
  const data = path.join(dir, 'data');
  if (fs.existsSync(path.join(data, 'postmaster.pid'))) await asPostgres('pg_ctl', ['-D', data, '-m', 'fast', '-w', 'stop'], { reject: false });
  fs.rmSync(dir, { recursive: true, force: true });
}

/** Runs SQL as the superuser over the cluster's unix socket; returns the rows as text. */
export async function psqlQuery(cluster: PgCluster, sql: string): Promise<string> {
  const r = await asPostgres('psql', ['-h', cluster.dir, '-p', String(cluster.port), '-U', 'postgres', '-d', cluster.database, '-At', '-v', 'ON_ERROR_STOP=1', '-c', sql]);
  return String(r.stdout).trim();
}

if (require.main === module) {
  const [command, dir] = process.argv.slice(2);
  const run = async () => {
    if (command === 'start' && dir) console.log((await startPostgres(path.resolve(dir))).connStr);
    else if (command === 'stop' && dir) await stopPostgres(path.resolve(dir));
    else throw new Error('usage: tsx world/postgres.ts start|stop DIR');
  };
  run().catch((e) => {
    console.error(e instanceof Error ? e.message : e);
    process.exit(1);
  });
}
