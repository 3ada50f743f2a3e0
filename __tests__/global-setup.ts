import { World } from '../world/world';
import { TEST_WORLD_DIR } from './support/world';

/** Clears hosts a killed test run may have left behind, before any suite creates its own. */
export default async function globalSetup(): Promise<void> {
  const world = await World.open(TEST_WORLD_DIR);
  await world.removeAll();
}
