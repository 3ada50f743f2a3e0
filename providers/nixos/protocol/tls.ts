/**
 * The server certificate for go-plugin's AutoMTLS.
 *
 * Terraform pins exactly the certificate printed in the handshake line and
 * checks it for the host name `localhost`, so a fresh self-signed certificate
 * per process is all it takes; nothing is written to disk.
 *
 * @peculiar/x509 builds the certificate on top of node's own WebCrypto: ECDSA
 * P-256 key generation is native and takes about a millisecond (unlike RSA in
 * pure JavaScript, which is what node-forge based generators do).
 */
import 'reflect-metadata'; // @peculiar/x509 uses tsyringe, which needs the Reflect metadata polyfill.
import { webcrypto } from 'node:crypto';
import * as x509 from '@peculiar/x509';

/** A certificate with its private key, ready for TLS. */
export interface ServerCertificate {
  certPem: string;
  keyPem: string;
  /** DER bytes, which the handshake line carries (base64, no padding). */
  der: Buffer;
}

const ALGORITHM = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' } as const;

/**
 * Makes a self-signed certificate for `localhost`, usable for both server and
 * client authentication (tests use it as a client certificate too).
 */
export async function makeSelfSignedCertificate(commonName = 'localhost'): Promise<ServerCertificate> {
  x509.cryptoProvider.set(webcrypto as unknown as Parameters<typeof x509.cryptoProvider.set>[0]);
  const keys = (await webcrypto.subtle.generateKey(ALGORITHM, true, ['sign', 'verify'])) as webcrypto.CryptoKeyPair;
  const now = Date.now();
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: Buffer.from(webcrypto.getRandomValues(new Uint8Array(16))).toString('hex').replace(/^[89a-f]/, '1'),
    name: `CN=${commonName},O=cdktf-nixos`,
    // A little slack for clock differences; the certificate only lives as long as the process.
    notBefore: new Date(now - 60_000),
    notAfter: new Date(now + 30 * 24 * 3600_000),
    signingAlgorithm: ALGORITHM,
    keys,
    extensions: [
      // Being its own CA is what lets both Go's and OpenSSL's verifiers accept it as a trust anchor.
      new x509.BasicConstraintsExtension(true, undefined, true),
      new x509.KeyUsagesExtension(
        x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyEncipherment | x509.KeyUsageFlags.keyCertSign,
        true,
      ),
      new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth, x509.ExtendedKeyUsage.clientAuth]),
      new x509.SubjectAlternativeNameExtension([{ type: 'dns', value: 'localhost' }]),
    ],
  });
  const pkcs8 = Buffer.from(await webcrypto.subtle.exportKey('pkcs8', keys.privateKey));
  return {
    certPem: cert.toString('pem'),
    keyPem: toPem('PRIVATE KEY', pkcs8),
    der: Buffer.from(cert.rawData),
  };
}

function toPem(label: string, der: Buffer): string {
  const lines = der.toString('base64').match(/.{1,64}/g) ?? [];
  return `-----BEGIN ${label}-----\n${lines.join('\n')}\n-----END ${label}-----\n`;
}
