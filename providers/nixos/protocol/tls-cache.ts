/**
 * The server certificate, kept between provider processes.
 *
 * Terraform starts the provider about three times per plan, and making a certificate
 * means loading an X.509 library (about 80 ms, a third of the start-up). So a certificate
 * made once is kept in the user's cache folder, readable by that user only, and used
 * until it is a day from expiring. Terraform still pins whatever the handshake line
 * carries, and verifies it; a fresh client certificate comes with every run.
 */
import { X509Certificate } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { ServerCertificate } from './tls';

/** Where the certificate is kept. */
export const TLS_CACHE_FILE = path.join(
  process.env.CDKTF_NIXOS_CACHE_DIR ?? path.join(process.env.XDG_CACHE_HOME || path.join(os.homedir(), '.cache'), 'cdktf-nixos'),
  'plugin-tls.json',
);

const RENEW_BEFORE_MS = 24 * 3600_000;

/** A kept certificate that is still good, or a new one (then kept). */
export async function serverCertificate(file = TLS_CACHE_FILE): Promise<ServerCertificate> {
  const kept = readKept(file);
  if (kept) return kept;
  // Loaded only here: the library is the expensive part of making one.
  const { makeSelfSignedCertificate } = require('./tls') as typeof import('./tls');
  const made = await makeSelfSignedCertificate();
  keep(file, made);
  return made;
}

function readKept(file: string): ServerCertificate | undefined {
  try {
    const stat = fs.statSync(file);
    // Anyone else able to read or write it could impersonate the provider: not ours then.
    if (stat.uid !== process.getuid?.() || (stat.mode & 0o077) !== 0) return undefined;
    const { certPem, keyPem } = JSON.parse(fs.readFileSync(file, 'utf8')) as { certPem: string; keyPem: string };
    const cert = new X509Certificate(certPem);
    if (Date.parse(cert.validTo) - Date.now() < RENEW_BEFORE_MS) return undefined;
    return { certPem, keyPem, der: cert.raw };
  } catch {
    return undefined;
  }
}

function keep(file: string, certificate: ServerCertificate): void {
  try {
    fs.mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
    const partial = `${file}.${process.pid}.tmp`;
    fs.writeFileSync(partial, JSON.stringify({ certPem: certificate.certPem, keyPem: certificate.keyPem }), { mode: 0o600 });
    fs.renameSync(partial, file);
  } catch {
    // A cache only: the next start makes another certificate.
  }
}
