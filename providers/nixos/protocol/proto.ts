/**
 * Loads the service definitions from the .proto files beside this module at
 * start-up (proto-loader parses them in a few milliseconds; no generated code).
 */
import * as path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';

/** The three services this plugin serves. */
export interface ServiceDefinitions {
  provider: grpc.ServiceDefinition;
  controller: grpc.ServiceDefinition;
  health: grpc.ServiceDefinition;
}

/** Where the .proto files are; overridable for a bundled build that ships them elsewhere. */
export const PROTO_DIR = process.env.CDKTF_NIXOS_PROTO_DIR ?? path.join(__dirname, 'proto');

/**
 * Field names stay snake_case as written in the .proto, enums travel as their
 * names, int64 as JS numbers (versions and indexes are small), and oneofs
 * name the field that is set (used for attribute path steps).
 */
const LOADER_OPTIONS: protoLoader.Options = {
  keepCase: true,
  longs: Number,
  enums: String,
  defaults: true,
  oneofs: true,
};

/** Parses the .proto files and returns the service definitions. */
export function loadServices(dir = PROTO_DIR): ServiceDefinitions {
  const definition = protoLoader.loadSync(
    ['tfplugin6.proto', 'plugin.proto', 'health.proto'].map((f) => path.join(dir, f)),
    LOADER_OPTIONS,
  );
  const service = (name: string) => definition[name] as grpc.ServiceDefinition;
  return {
    provider: service('tfplugin6.Provider'),
    controller: service('plugin.GRPCController'),
    health: service('grpc.health.v1.Health'),
  };
}
