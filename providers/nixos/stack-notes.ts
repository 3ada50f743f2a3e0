/**
 * Notes the provider keeps about the hosts of one Terraform working directory, between its
 * processes (Terraform starts a new one for each plan and apply): one small JSON file per
 * host, readable by the user only, under the provider's state folder. Notes only make
 * things faster: failing to write or read one is never an error.
 */
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { SshTarget } from '../../lib/engine';

const sha = (text: string) => createHash('sha256').update(text).digest('hex').slice(0, 32);

/** One kind of note, kept for `maxAgeMs` after it was last written. */
export class StackNotes<T> {
  constructor(
    private readonly kind: string,
    private readonly maxAgeMs: number,
  ) {}

  /** The notes of the current working directory (Terraform runs providers in the root module's). */
  private dir(stateDir: string): string {
    return path.join(stateDir, this.kind, sha(process.cwd()));
  }

  private file(stateDir: string, target: SshTarget): string {
    return path.join(this.dir(stateDir), `${sha(`${target.user ?? 'root'}@${target.host}:${target.port ?? 22}`)}.json`);
  }

  /** Writes the host's note, replacing the one it had. */
  write(stateDir: string, target: SshTarget, note: T): void {
    try {
      fs.mkdirSync(this.dir(stateDir), { recursive: true, mode: 0o700 });
      const file = this.file(stateDir, target);
      fs.writeFileSync(`${file}.${process.pid}.tmp`, JSON.stringify(note), { mode: 0o600 });
      fs.renameSync(`${file}.${process.pid}.tmp`, file);
    } catch {
      // a note only makes things faster
    }
  }

  /** Removes the host's note. */
  remove(stateDir: string, target: SshTarget): void {
    fs.rmSync(this.file(stateDir, target), { force: true });
  }

  /** The notes written within maxAgeMs. */
  all(stateDir: string): T[] {
    const dir = this.dir(stateDir);
    let names: string[];
    try {
      names = fs.readdirSync(dir).filter((n) => n.endsWith('.json'));
    } catch {
      return [];
    }
    const notes: T[] = [];
    for (const name of names) {
      try {
        const file = path.join(dir, name);
        if (Date.now() - fs.statSync(file).mtimeMs <= this.maxAgeMs) notes.push(JSON.parse(fs.readFileSync(file, 'utf8')) as T);
      } catch {
        // removed meanwhile, or not ours: skip it
      }
    }
    return notes;
  }
}
