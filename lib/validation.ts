/**
 * Constructor-time checks shared by the constructs. Every check skips values that are
 * still Terraform tokens: those are only known at plan or apply time.
 */
import { Token } from 'cdktf';
import { IConstruct } from 'constructs';

/** Whether a value is (or holds) an unresolved Terraform token. */
export function isUnresolved(value: unknown): boolean {
  return Token.isUnresolved(value);
}

/** Throws an error that names the construct, the bad value and the fix. */
export function fail(construct: IConstruct, message: string): never {
  throw new Error(`${construct.constructor.name} ${construct.node.path}: ${message}`);
}

/** Quotes a value for an error message. */
export function show(value: unknown): string {
  return JSON.stringify(value) ?? String(value);
}

/** A TCP port: an integer from 1 to 65535. */
export function checkPort(construct: IConstruct, name: string, port: number | undefined): void {
  if (port === undefined || isUnresolved(port)) return;
  if (!Number.isInteger(port) || port < 1 || port > 65535) {
    fail(construct, `${name} ${show(port)} is not a TCP port. Use an integer from 1 to 65535 (SSH is usually 22).`);
  }
}

/** A duration that must be more than zero. */
export function checkPositive(construct: IConstruct, name: string, value: number | undefined, example: string): void {
  if (value === undefined || isUnresolved(value)) return;
  if (!Number.isFinite(value) || value <= 0) {
    fail(construct, `${name} ${show(value)} must be a positive number of seconds, for example ${example}.`);
  }
}

/** A count or duration that may be zero. */
export function checkNonNegative(construct: IConstruct, name: string, value: number | undefined, integer: boolean, hint: string): void {
  if (value === undefined || isUnresolved(value)) return;
  if (!Number.isFinite(value) || value < 0 || (integer && !Number.isInteger(value))) {
    fail(construct, `${name} ${show(value)} must be ${integer ? 'a whole number' : 'a number'} of zero or more; ${hint}.`);
  }
}

/** One of a fixed set of strings. */
export function checkOneOf(construct: IConstruct, name: string, value: string | undefined, allowed: readonly string[]): void {
  if (value === undefined || isUnresolved(value)) return;
  if (!allowed.includes(value)) fail(construct, `${name} ${show(value)} is unknown. Use one of ${allowed.map((a) => `"${a}"`).join(', ')}.`);
}

/** An OpenSSH public key line, `TYPE BASE64` (a comment after it is allowed). */
export const SSH_PUBLIC_KEY = /^(ssh-(ed25519|rsa|dss)|ecdsa-sha2-nistp(256|384|521)|sk-(ssh-ed25519|ecdsa-sha2-nistp256)@openssh\.com) [A-Za-z0-9+/]+={0,3}( .*)?$/;

/** A host key, `TYPE BASE64` as in known_hosts. */
export function checkHostKey(construct: IConstruct, name: string, key: string | undefined): void {
  if (key === undefined || isUnresolved(key)) return;
  if (!SSH_PUBLIC_KEY.test(key.trim())) {
    fail(construct, `${name} ${show(key)} is not an SSH public key. Give "TYPE BASE64" as in known_hosts, e.g. the first two fields of /etc/ssh/ssh_host_ed25519_key.pub.`);
  }
}

/** A Nix binary cache public key, `name:base64`. */
export const NIX_PUBLIC_KEY = /^[^\s:]+:[A-Za-z0-9+/]+={0,2}$/;
