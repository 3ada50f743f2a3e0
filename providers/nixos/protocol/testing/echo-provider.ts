/**
 * A tiny provider for testing the protocol layer against the real Terraform:
 * resource `nixos_echo` copies `input` to `output` at plan time.
 *
 * Run it as a plugin with `node -r tsx/cjs echo-provider.ts` (Terraform starts it).
 */
import { randomUUID } from 'node:crypto';
import { CtyObject, UNKNOWN, t } from '../cty-types';
import { ProviderDefinition } from '../provider';
import { servePlugin } from '../serve';

/** The echo provider's definition. */
export const echoProvider: ProviderDefinition = {
  schema: { block: { attributes: {} } },
  resources: {
    nixos_echo: {
      schema: {
        block: {
          attributes: {
            id: { type: t.string, computed: true },
            input: { type: t.string, required: true },
            output: { type: t.string, computed: true },
          },
        },
      },
      async plan({ prior, proposed }) {
        if (proposed === null) return { planned: null }; // destroy
        const planned: CtyObject = {
          ...proposed,
          // The id stays for the life of the object; a new object gets one at apply.
          id: prior?.id ?? UNKNOWN,
          // Known or unknown, output is whatever input is.
          output: proposed.input,
        };
        return { planned };
      },
      async apply({ planned, prior }) {
        if (planned === null) return { newState: null }; // destroyed
        return { newState: { ...planned, id: prior?.id ?? randomUUID(), output: planned.input } };
      },
    },
  },
};

if (require.main === module) {
  void servePlugin(echoProvider);
}
