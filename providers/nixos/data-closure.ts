/**
 * Data source `nixos_closure`: evaluate (and optionally build) a NixOS configuration
 * without deploying it, for outputs and other resources.
 */
import * as path from 'node:path';
import type { Json } from '../../lib/engine';
import { engine, engineParts } from './engine';
import { t } from './protocol/cty-types';
import { error } from './protocol/diagnostics';
import { DataSourceType } from './protocol/provider';
import { settings } from './settings';
import { str, toJson } from './values';

export const closureDataSource: DataSourceType = {
  schema: {
    block: {
      description: 'A NixOS system closure, evaluated and optionally built on the deployer.',
      attributes: {
        flake: { type: t.string, required: true, description: 'PATH#NAME.' },
        special_args: { type: t.dynamic, optional: true, description: 'An object handed to the configuration as specialArgs.terraform.' },
        build: { type: t.bool, optional: true, description: 'Build the closure on the deployer (false).' },
        out_path: { type: t.string, computed: true },
        drv_path: { type: t.string, computed: true },
        closure_size: { type: t.number, computed: true, description: 'Bytes (NAR size) of the whole closure, when it is in the deployer\'s store.' },
      },
    },
  },

  async read(config) {
    const { evaluate, DEFAULT_EVAL_CACHE_DIR } = engine();
    const { buildLocally, localClosure, localValidPaths, narSizes } = engineParts();
    const cacheDir = settings.evalCacheDir ?? DEFAULT_EVAL_CACHE_DIR;
    try {
      const args = config.special_args === null ? undefined : toJson(config.special_args, ['special_args']);
      if (args !== undefined && args !== null && (typeof args !== 'object' || Array.isArray(args))) {
        return { state: null, diagnostics: [error('special_args must be an object', undefined, ['special_args'])] };
      }
      const evaluation = await evaluate({ flake: str(config.flake)!, specialArgs: (args ?? undefined) as { [k: string]: Json } | undefined }, cacheDir);
      if (config.build === true && evaluation.drvPath) {
        await buildLocally(evaluation.drvPath, evaluation.outPath, path.join(cacheDir, 'gcroots'));
      }
      let size: number | null = null;
      if ((await localValidPaths([evaluation.outPath])).has(evaluation.outPath)) {
        const sizes = await narSizes(await localClosure([evaluation.outPath]));
        size = [...sizes.values()].reduce((a, b) => a + b, 0);
      }
      return { state: { ...config, out_path: evaluation.outPath, drv_path: evaluation.drvPath ?? null, closure_size: size } };
    } catch (e) {
      return { state: null, diagnostics: [error('Evaluating the NixOS configuration failed', e instanceof Error ? e.message : String(e), ['flake'])] };
    }
  },
};
