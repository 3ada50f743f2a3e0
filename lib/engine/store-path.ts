/**
 * Nix's own rules for a store path: /nix/store/, a 32-character base-32 hash, and a name
 * of [A-Za-z0-9+-._?=] (no spaces, slashes or newlines).
 */
export const STORE_PATH = /^\/nix\/store\/[0-9a-df-np-sv-z]{32}-[A-Za-z0-9+\-._?=]+$/;

/** Whether `value` is a store path; with `drv`, the path of a derivation. */
export function isStorePath(value: string, drv = false): boolean {
  return STORE_PATH.test(value) && (!drv || value.endsWith('.drv'));
}
