/**
 * Runs a provider as a Terraform plugin: the go-plugin handshake.
 *
 * Terraform starts the plugin with a magic cookie and its client certificate
 * in the environment, reads one handshake line from stdout, and then speaks
 * gRPC over TLS to the address in that line. Anything else on stdout would
 * corrupt the handshake, so all console output is sent to stderr, which
 * Terraform copies into its log.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { loadServices } from './proto';
import { ProviderDefinition } from './provider';
import { StopSignal, providerService } from './service';
import { serverCertificate } from './tls-cache';

/** go-plugin's handshake values that Terraform uses for providers. */
export const MAGIC_COOKIE_KEY = 'TF_PLUGIN_MAGIC_COOKIE';
export const MAGIC_COOKIE_VALUE = 'd602bf8f470bc67ca7faa0386276bbdd4330efaf76d1a219cb4d6991ca9872b2';
/** go-plugin's own protocol version, then the provider protocol's major version. */
const CORE_PROTOCOL_VERSION = 1;
const APP_PROTOCOL_VERSION = 6;

/** A running plugin server. */
export interface RunningPlugin {
  socketPath: string;
  handshakeLine: string;
  /** Resolves once the server has stopped (after the controller's Shutdown). */
  closed: Promise<void>;
  /** Stops the server and removes the socket directory. */
  close(): Promise<void>;
}

/** Options mainly for tests, which run the server in-process. */
export interface ServeOptions {
  env?: NodeJS.ProcessEnv;
}

/**
 * Starts the gRPC server for a provider and returns the handshake line to
 * print. Throws if the environment is not one Terraform set up.
 */
export async function startPlugin(provider: ProviderDefinition, options: ServeOptions = {}): Promise<RunningPlugin> {
  const env = options.env ?? process.env;
  const clientCert = env.PLUGIN_CLIENT_CERT;
  if (!clientCert) {
    throw new Error('PLUGIN_CLIENT_CERT is not set: Terraform must run this plugin with AutoMTLS.');
  }
  const versions = (env.PLUGIN_PROTOCOL_VERSIONS ?? String(APP_PROTOCOL_VERSION)).split(',').map((v) => v.trim());
  if (!versions.includes(String(APP_PROTOCOL_VERSION))) {
    throw new Error(`Terraform offers plugin protocol versions ${versions.join(',')}; this provider speaks only 6.`);
  }

  const services = loadServices();
  const certificate = await serverCertificate();
  // Only Terraform's client certificate is trusted, and it must be presented.
  const credentials = grpc.ServerCredentials.createSsl(
    Buffer.from(clientCert),
    [{ private_key: Buffer.from(certificate.keyPem), cert_chain: Buffer.from(certificate.certPem) }],
    true,
  );

  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tf-nixos-'));
  const socketPath = path.join(dir, 'plugin.sock');
  const server = new grpc.Server();
  const stop = new StopSignal();

  let resolveClosed!: () => void;
  const closed = new Promise<void>((resolve) => (resolveClosed = resolve));
  const close = async () => {
    await new Promise<void>((resolve) => server.tryShutdown(() => resolve()));
    fs.rmSync(dir, { recursive: true, force: true });
    resolveClosed();
  };

  server.addService(services.provider, providerService(provider, stop));
  server.addService(services.controller, {
    Shutdown: (_call: unknown, callback: grpc.sendUnaryData<object>) => {
      stop.stop();
      callback(null, {});
      // Answer first, then stop: Terraform waits for the reply before it kills the process.
      setImmediate(() => void close());
    },
  });
  server.addService(services.health, {
    Check: (_call: unknown, callback: grpc.sendUnaryData<object>) => callback(null, { status: 'SERVING' }),
  });

  await new Promise<void>((resolve, reject) =>
    server.bindAsync(`unix://${socketPath}`, credentials, (err) => (err ? reject(err) : resolve())),
  );

  const der = certificate.der.toString('base64').replace(/=+$/, '');
  const handshakeLine = `${CORE_PROTOCOL_VERSION}|${APP_PROTOCOL_VERSION}|unix|${socketPath}|grpc|${der}`;
  return { socketPath, handshakeLine, closed, close };
}

/**
 * The plugin's main function: checks the magic cookie, serves, prints the
 * handshake line, and exits after the controller's Shutdown.
 */
export async function servePlugin(provider: ProviderDefinition): Promise<void> {
  // Keep stdout for the handshake line only.
  const toStderr = (...args: unknown[]) => console.error(...args);
  console.log = toStderr;
  console.info = toStderr;
  console.debug = toStderr;

  if (process.env[MAGIC_COOKIE_KEY] !== MAGIC_COOKIE_VALUE) {
    process.stderr.write(
      'This is a Terraform provider plugin (registry.terraform.io/cdktf-nixos/nixos).\n' +
        'It is not meant to be run directly: Terraform starts it when a configuration uses it.\n',
    );
    process.exit(1);
  }

  // Terraform forwards Ctrl-C to its whole process group and then calls
  // StopProvider itself; dying on SIGINT would lose an apply's result.
  process.on('SIGINT', () => undefined);

  let plugin: RunningPlugin;
  try {
    plugin = await startPlugin(provider);
  } catch (err) {
    process.stderr.write(`provider failed to start: ${(err as Error).message}\n`);
    process.exit(1);
  }
  // Remove the socket directory however the process ends.
  process.on('exit', () => fs.rmSync(path.dirname(plugin.socketPath), { recursive: true, force: true }));
  process.on('SIGTERM', () => void plugin.close().then(() => process.exit(0)));

  process.stdout.write(`${plugin.handshakeLine}\n`);
  await plugin.closed;
  process.exit(0);
}
