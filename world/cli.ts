import { World } from './world';

const USAGE = `usage: npm run world -- up [N] [--netns] | down | list
  up N      make sure hosts host1..hostN run (running ones of the current scripts are kept)
  down      remove every host of the world
  list      print the hosts as JSON`;

/** The test world from the command line, for the main job and for people. */
async function main(argv: string[]): Promise<void> {
  const world = await World.open();
  const [command, ...rest] = argv;
  if (command === 'up') {
    const count = Number(rest.find((a) => /^\d+$/.test(a)) ?? '2');
    const network = rest.includes('--netns') ? 'netns' : 'loopback';
    for (let i = 1; i <= count; i++) await world.ensureHost({ name: `host${i}`, network });
  } else if (command === 'down') {
    await world.removeAll();
    return;
  } else if (command !== 'list') {
    throw new Error(USAGE);
  }
  const hosts = world.hosts().map((h) => ({ ...h, hostKey: world.hostKey(h.name) }));
  console.log(JSON.stringify({ dir: world.dir, clientKeyFile: world.clientKeyFile, hosts }, null, 2));
}

main(process.argv.slice(2)).catch((error: Error) => {
  console.error(`world: ${error.message}`);
  process.exit(1);
});
