/**
 * The plugin server in-process, with a gRPC client playing Terraform's part:
 * AutoMTLS both ways, the handshake line, schema, plan, stop and shutdown.
 */
import * as fs from 'node:fs';
import * as grpc from '@grpc/grpc-js';
import { X509Certificate } from 'node:crypto';
import { decodeMsgpack, encodeMsgpack, isUnknown } from '../../../providers/nixos/protocol/cty';
import { loadServices } from '../../../providers/nixos/protocol/proto';
import { RunningPlugin, startPlugin } from '../../../providers/nixos/protocol/serve';
import { ServerCertificate, makeSelfSignedCertificate } from '../../../providers/nixos/protocol/tls';
import { impliedType } from '../../../providers/nixos/protocol/schema';
import { ProviderDefinition } from '../../../providers/nixos/protocol/provider';
import { error } from '../../../providers/nixos/protocol/diagnostics';
import { echoProvider } from '../../../providers/nixos/protocol/testing/echo-provider';

const services = loadServices();
const ProviderClient = grpc.makeGenericClientConstructor(services.provider, 'Provider');
const ControllerClient = grpc.makeGenericClientConstructor(services.controller, 'GRPCController');

/** The server certificate as PEM, from the handshake line's last field. */
function serverCertPem(line: string): string {
  const der = Buffer.from(line.split('|')[5], 'base64');
  return new X509Certificate(der).toString();
}

function connect<T extends grpc.Client>(
  Ctor: new (address: string, creds: grpc.ChannelCredentials, options?: object) => T,
  plugin: RunningPlugin,
  client: ServerCertificate | null,
): T {
  const creds = grpc.credentials.createSsl(
    Buffer.from(serverCertPem(plugin.handshakeLine)),
    client ? Buffer.from(client.keyPem) : null,
    client ? Buffer.from(client.certPem) : null,
  );
  return new Ctor(`unix://${plugin.socketPath}`, creds, { 'grpc.ssl_target_name_override': 'localhost' });
}

function call<T>(client: grpc.Client, method: string, request: object): Promise<T> {
  return new Promise((resolve, reject) => {
    const fn = (client as unknown as Record<string, Function>)[method].bind(client);
    fn(request, { deadline: Date.now() + 5000 }, (err: Error | null, res: T) => (err ? reject(err) : resolve(res)));
  });
}

describe('plugin server', () => {
  let terraformCert: ServerCertificate;
  let plugin: RunningPlugin;

  beforeAll(async () => {
    terraformCert = await makeSelfSignedCertificate('terraform');
    plugin = await startPlugin(echoProvider, { env: { PLUGIN_CLIENT_CERT: terraformCert.certPem, PLUGIN_PROTOCOL_VERSIONS: '5,6' } });
  });
  afterAll(() => plugin.close());

  test('the handshake line names a unix socket and a localhost certificate, base64 without padding', () => {
    const [core, app, network, address, protocol, cert] = plugin.handshakeLine.split('|');
    expect([core, app, network, protocol]).toStrictEqual(['1', '6', 'unix', 'grpc']);
    expect(fs.statSync(address).isSocket()).toBe(true);
    expect(cert).not.toMatch(/[=\s]/);
    const x509 = new X509Certificate(Buffer.from(cert, 'base64'));
    expect(x509.subjectAltName).toBe('DNS:localhost');
    expect(x509.checkHost('localhost')).toBe('localhost');
  });

  test('serves the schema to the client holding Terraform\'s certificate', async () => {
    const client = connect(ProviderClient, plugin, terraformCert);
    const res = await call<any>(client, 'GetProviderSchema', {});
    const attrs = res.resource_schemas.nixos_echo.block.attributes.map((a: any) => [a.name, a.type.toString()]);
    expect(attrs).toStrictEqual([['id', '"string"'], ['input', '"string"'], ['output', '"string"']]);
    client.close();
  });

  test('refuses clients without a certificate or with another one', async () => {
    const stranger = await makeSelfSignedCertificate('stranger');
    for (const cert of [null, stranger]) {
      const client = connect(ProviderClient, plugin, cert);
      await expect(call(client, 'GetMetadata', {})).rejects.toMatchObject({ code: grpc.status.UNAVAILABLE });
      client.close();
    }
  });

  test('plans input into output, with the id known after apply', async () => {
    const type = impliedType(echoProvider.resources.nixos_echo.schema.block);
    const config = { msgpack: Buffer.from(encodeMsgpack({ id: null, input: 'hi', output: null }, type)) };
    const client = connect(ProviderClient, plugin, terraformCert);
    const res = await call<any>(client, 'PlanResourceChange', {
      type_name: 'nixos_echo',
      prior_state: { msgpack: Buffer.from(encodeMsgpack(null, type)) },
      proposed_new_state: config,
      config,
    });
    expect(res.diagnostics).toStrictEqual([]);
    const planned = decodeMsgpack(res.planned_state.msgpack, type) as Record<string, unknown>;
    expect(planned.output).toBe('hi');
    expect(isUnknown(planned.id)).toBe(true);
    // An unknown resource type is a diagnostic, not a gRPC failure.
    const bad = await call<any>(client, 'ValidateResourceConfig', { type_name: 'nixos_nope', config });
    expect(bad.diagnostics[0]).toMatchObject({ severity: 'ERROR', detail: expect.stringMatching(/no resource type "nixos_nope"/) });
    client.close();
  });

  test('the controller\'s Shutdown stops the server and removes the socket', async () => {
    const stopped = await startPlugin(echoProvider, { env: { PLUGIN_CLIENT_CERT: terraformCert.certPem } });
    const controller = connect(ControllerClient, stopped, terraformCert);
    await call(controller, 'Shutdown', {});
    await stopped.closed;
    expect(fs.existsSync(stopped.socketPath)).toBe(false);
    controller.close();
  });

  test('StopProvider cancels in-flight work', async () => {
    const slow: ProviderDefinition = {
      schema: { block: {} },
      resources: {
        slow: {
          schema: { block: { attributes: { id: { type: 'string', computed: true } } } },
          apply: (_req, ctx) =>
            new Promise((resolve) => {
              ctx.signal.addEventListener('abort', () => resolve({ newState: null, diagnostics: [error('Stopped', 'cancelled')] }));
            }),
        },
      },
    };
    const running = await startPlugin(slow, { env: { PLUGIN_CLIENT_CERT: terraformCert.certPem } });
    const client = connect(ProviderClient, running, terraformCert);
    const applying = call<any>(client, 'ApplyResourceChange', { type_name: 'slow' });
    await new Promise((r) => setTimeout(r, 100));
    await expect(call<any>(client, 'StopProvider', {})).resolves.toStrictEqual({ Error: '' });
    const applied = await applying;
    expect(applied.diagnostics).toMatchObject([{ severity: 'ERROR', summary: 'Stopped' }]);
    client.close();
    await running.close();
  });

  test('refuses to start without Terraform\'s client certificate', async () => {
    await expect(startPlugin(echoProvider, { env: {} })).rejects.toThrow(/PLUGIN_CLIENT_CERT/);
  });
});
