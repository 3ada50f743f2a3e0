import * as fs from 'fs';
import * as path from 'path';
import { DeployRequest } from '../lib/engine';
import { World } from '../world/world';

/**
 * Makes sure the main job's two test hosts run, and writes the deploy targets for them:
 * `web` on host1, `db` on host2, and web learns db's address through its special args.
 *   tsx scripts/local-targets.ts OUTPUT_FILE
 */
async function main(output: string): Promise<void> {
  const world = await World.open();
  const web = await world.ensureHost({ name: 'host1' });
  const db = await world.ensureHost({ name: 'host2' });
  const flake = path.resolve(__dirname, '..', 'world', 'fixture-flake');
  const knownHostsFile = path.join(path.dirname(path.resolve(output)), 'known_hosts');
  const target = (h: typeof web) => ({ host: h.address, port: h.port, privateKeyFile: world.clientKeyFile, knownHostsFile });
  const check = (h: typeof web) => [{ http: { url: `http://${h.serviceAddress}:${h.servicePort}/` }, retries: 20, intervalSeconds: 0.5 }];
  const requests: DeployRequest[] = [
    { target: target(web), system: { flake: `${flake}#web`, specialArgs: { db: { host: db.serviceAddress, port: db.servicePort } } }, healthChecks: check(web) },
    { target: target(db), system: { flake: `${flake}#db` }, healthChecks: check(db) },
  ];
  fs.mkdirSync(path.dirname(path.resolve(output)), { recursive: true });
  fs.writeFileSync(output, JSON.stringify(requests, null, 2) + '\n');
}

main(process.argv[2] ?? '.world/targets.json').catch((error: Error) => {
  console.error(`local-targets: ${error.message}`);
  process.exit(1);
});
