/** The step of a deploy where something went wrong. */
export type DeployStep =
  | 'evaluate'
  | 'build'
  | 'connect'
  | 'lock'
  | 'copy'
  | 'keys'
  | 'activate'
  | 'confirm'
  | 'health'
  | 'rollback'
  | 'status'
  | 'cancelled';

/**
 * An error a person can act on: one paragraph that says what went wrong, on which host
 * and in which step, and what to do about it. Never carries secret material.
 */
export class DeployError extends Error {
  constructor(
    readonly step: DeployStep,
    readonly host: string | undefined,
    readonly problem: string,
    readonly fix?: string,
  ) {
    const what = step === 'cancelled' ? 'cancelled' : `${step} failed`;
    super(
      [host ? `${host}: ${what}: ${problem}` : `${what}: ${problem}`, fix]
        .filter(Boolean)
        .join(' ')
        .replace(/\s*\n\s*/g, ' '),
    );
    this.name = 'DeployError';
  }
}

/** The last `lines` non-empty lines of a command's output, joined for an error message. */
export function tail(output: string, lines = 10): string {
  return output
    .split('\n')
    .map((l) => l.trimEnd())
    .filter((l) => l.trim() !== '' && !l.includes("use '--show-trace'"))
    .slice(-lines)
    .join(' | ');
}

/** Nix's own error text without the "error:" prefixes and trace hints. */
export function nixErrorText(stderr: string): string {
  const lines = stderr
    .split('\n')
    .filter((l) => !l.startsWith('warning:') && !l.includes("use '--show-trace'") && l.trim() !== '');
  return lines
    .map((l) => l.replace(/^\s*error:\s*/, '').trim())
    .join(' ')
    .trim();
}
