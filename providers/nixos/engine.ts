/**
 * The engine, loaded on first use. Terraform starts the provider about three times per
 * plan, and two of those processes only answer schema and validation calls: they never
 * need ssh2, execa and the rest, whose loading is a third of the start-up.
 */
import type * as Engine from '../../lib/engine';
import type * as Build from '../../lib/engine/build';
import type * as Keys from '../../lib/engine/keys';
import type * as LocalNix from '../../lib/engine/local-nix';

/** The engine's public API. */
export function engine(): typeof Engine {
  return require('../../lib/engine') as typeof Engine;
}

/** The engine's own helpers that the provider uses beyond the public API. */
export function engineParts(): typeof Build & typeof Keys & typeof LocalNix {
  return { ...(require('../../lib/engine/build') as typeof Build), ...(require('../../lib/engine/keys') as typeof Keys), ...(require('../../lib/engine/local-nix') as typeof LocalNix) };
}
