/** Quotes one word for a POSIX shell. */
export function shellQuote(word: string): string {
  return /^[A-Za-z0-9_@%+=:,./-]+$/.test(word) ? word : `'${word.replace(/'/g, `'\\''`)}'`;
}

/** Joins words into one POSIX shell command line, each quoted. */
export function shellJoin(words: readonly string[]): string {
  return words.map(shellQuote).join(' ');
}
