import 'cdktf/lib/testing/adapters/jest';
import { Testing } from 'cdktf';
import { Construct } from 'constructs';

Testing.setupJest();

/** Synthesizes a scope and returns the stack's JSON, parsed. */
export function synthJson(fn: (scope: Construct) => void): { [key: string]: any } {
  return JSON.parse(Testing.synthScope(fn));
}

/** The only resource of `type` in a parsed stack. */
export function onlyResource(json: { [key: string]: any }, type: string): { [key: string]: any } {
  const all = Object.values(json.resource?.[type] ?? {});
  if (all.length !== 1) throw new Error(`expected one ${type}, found ${all.length}`);
  return all[0] as { [key: string]: any };
}

/** A valid store path, host key and cache key for tests. */
export const STORE_PATH = '/nix/store/0123456789abcdfghijklmnpqrsvwxyz-nixos-system-web-1';
export const HOST_KEY = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIC4N8sVspYasBq6pJ6B3joKVObN/1NILlYhF9agYlBkt';
export const CACHE_PUBLIC_KEY = 'cache-1:+ZUiuX7sz2YdrVDfapj/KawzsD5SDzEkNWClv0dfgr0=';
