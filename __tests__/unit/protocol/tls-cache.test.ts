/**
 * The server certificate kept between provider processes: reused while good, never when
 * others could read it, and renewed a day before it expires.
 */
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { X509Certificate } from 'node:crypto';
import { serverCertificate } from '../../../providers/nixos/protocol/tls-cache';

describe('kept server certificate', () => {
  let dir: string;
  let file: string;
  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cdktf-nixos-tls-'));
    file = path.join(dir, 'sub', 'plugin-tls.json');
  });
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('makes one for localhost, keeps it readable by its owner only, and hands out the same one next time', async () => {
    const first = await serverCertificate(file);
    expect(new X509Certificate(first.der).subjectAltName).toBe('DNS:localhost');
    expect(fs.statSync(file).mode & 0o777).toBe(0o600);
    const second = await serverCertificate(file);
    expect(second.der.equals(first.der)).toBe(true);
    expect(second.keyPem).toBe(first.keyPem);
  });

  it('does not use a kept certificate that others can read, and replaces it', async () => {
    const first = await serverCertificate(file);
    fs.chmodSync(file, 0o644);
    const second = await serverCertificate(file);
    expect(second.der.equals(first.der)).toBe(false);
    expect(fs.statSync(file).mode & 0o777).toBe(0o600);
  });

  it('renews a certificate that expires within a day', async () => {
    const key = path.join(dir, 'key.pem');
    const cert = path.join(dir, 'cert.pem');
    execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-subj', '/CN=localhost', '-keyout', key, '-out', cert, '-days', '1'], { stdio: 'ignore' });
    fs.mkdirSync(path.dirname(file), { recursive: true });
    fs.writeFileSync(file, JSON.stringify({ certPem: fs.readFileSync(cert, 'utf8'), keyPem: fs.readFileSync(key, 'utf8') }), { mode: 0o600 });
    const renewed = await serverCertificate(file);
    expect(renewed.certPem).not.toBe(fs.readFileSync(cert, 'utf8'));
    expect(Date.parse(new X509Certificate(renewed.der).validTo) - Date.now()).toBeGreaterThan(7 * 24 * 3600_000);
  });

  it('makes a new one when the kept file is damaged', async () => {
    fs.mkdirSync(path.dirname(file), { recursive: true });
    fs.writeFileSync(file, '{"certPem": "not a certificate"', { mode: 0o600 });
    const made = await serverCertificate(file);
    expect(new X509Certificate(made.der).subjectAltName).toBe('DNS:localhost');
    expect(JSON.parse(fs.readFileSync(file, 'utf8')).certPem).toBe(made.certPem);
  });
});
