import * as os from 'os';
import * as path from 'path';

/** A deployer-side path with a leading `~/` made absolute, as a shell would. */
export function expandHome(file: string): string {
  return file === '~' || file.startsWith('~/') ? path.join(os.homedir(), file.slice(1)) : file;
}
