/**
 * The hosts of a working directory as the last refresh reached them, so that the next
 * refresh can read all of them at once (the engine's readAhead) instead of ten at a time
 * as Terraform asks. A host is remembered when it is read, imported or deployed, and
 * forgotten when its resource is destroyed; one unused for 30 days is left out.
 */
import type { SshTarget } from '../../lib/engine';
import { StackNotes } from './stack-notes';

const notes = new StackNotes<SshTarget>('hosts', 30 * 24 * 3600_000);

/** Remembers how a host is reached (no secrets: key files are paths). */
export function rememberTarget(stateDir: string, target: SshTarget): void {
  notes.write(stateDir, target, target);
}

/** Forgets a host. */
export function forgetTarget(stateDir: string, target: SshTarget): void {
  notes.remove(stateDir, target);
}

/** The hosts remembered for this working directory. */
export function rememberedTargets(stateDir: string): SshTarget[] {
  return notes.all(stateDir);
}
