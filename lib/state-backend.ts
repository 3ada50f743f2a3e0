import { LocalBackend, PgBackend, S3Backend, TerraformBackend, TerraformStack } from 'cdktf';
import { fail } from './validation';

/** Terraform's default: a state file on the deployer, locked with a file lock. */
export interface LocalStateBackend {
  readonly type: 'local';
  /** @default cdktf's `terraform.<stack>.tfstate` in the project folder */
  readonly path?: string;
}

/**
 * Shared state in PostgreSQL. Terraform locks it with an advisory lock, so two deploys of
 * the same stack never run at once: the second waits (`-lock-timeout`) or fails with
 * "Error acquiring the state lock".
 */
export interface PgStateBackend {
  readonly type: 'pg';
  /**
   * `postgres://USER:PASSWORD@HOST:PORT/DB?sslmode=disable`. Better left out and given as
   * `PG_CONN_STR` in the environment: a password here ends up in `cdk.tf.json`.
   * @default Terraform reads PG_CONN_STR
   */
  readonly connStr?: string;
  /** @default `cdktf_nixos_<stack id>` (one schema per stack: stacks never share a state) */
  readonly schemaName?: string;
}

/**
 * Shared state in S3, locked with an S3 lock file (`use_lockfile = true`, Terraform 1.10+,
 * no DynamoDB table needed). cdktf 0.21's S3Backend lacks `use_lockfile`: it is set
 * through an override.
 */
export interface S3StateBackend {
  readonly type: 's3';
  readonly bucket: string;
  /** @default `cdktf-nixos/<stack id>.tfstate` */
  readonly key?: string;
  readonly region: string;
  /** @default true */
  readonly encrypt?: boolean;
}

export type StateBackend = LocalStateBackend | PgStateBackend | S3StateBackend;

/**
 * Puts the stack's state into the given backend and returns the backend construct. The
 * local backend is what a stack gets without calling this.
 */
export function useStateBackend(stack: TerraformStack, backend: StateBackend): TerraformBackend {
  const id = stack.node.id;
  switch (backend.type) {
    case 'local':
      return new LocalBackend(stack, backend.path ? { path: backend.path } : {});
    case 'pg':
      // Without connStr the key is left out, and Terraform reads PG_CONN_STR.
      return new PgBackend(stack, { connStr: backend.connStr as string, schemaName: backend.schemaName ?? `cdktf_nixos_${id.replace(/[^A-Za-z0-9_]/g, '_')}` });
    case 's3': {
      const s3 = new S3Backend(stack, { bucket: backend.bucket, key: backend.key ?? `cdktf-nixos/${id}.tfstate`, region: backend.region, encrypt: backend.encrypt ?? true });
      s3.addOverride('use_lockfile', true); // relative to the backend's own block
      return s3;
    }
    default:
      return fail(stack, `state backend: unknown type ${JSON.stringify((backend as { type: unknown }).type)}; use "local", "pg" or "s3"`);
  }
}

/**
 * The backend chosen by the environment, for the example app:
 * `CDKTF_NIXOS_BACKEND` = `local` (default), `pg` (connection string from `PG_CONN_STR`, read
 * by Terraform at init) or `s3` (`CDKTF_NIXOS_S3_BUCKET`, `CDKTF_NIXOS_S3_REGION` or
 * `AWS_REGION`, optional `CDKTF_NIXOS_S3_KEY`).
 */
export function stateBackendFromEnv(stack: TerraformStack, env: NodeJS.ProcessEnv = process.env): StateBackend {
  const type = env.CDKTF_NIXOS_BACKEND ?? 'local';
  switch (type) {
    case 'local':
      return { type: 'local' };
    case 'pg':
      return { type: 'pg' };
    case 's3': {
      const bucket = env.CDKTF_NIXOS_S3_BUCKET;
      const region = env.CDKTF_NIXOS_S3_REGION ?? env.AWS_REGION ?? env.AWS_DEFAULT_REGION;
      if (!bucket || !region) {
        return fail(stack, 'CDKTF_NIXOS_BACKEND=s3 needs CDKTF_NIXOS_S3_BUCKET and CDKTF_NIXOS_S3_REGION (or AWS_REGION): set them to the state bucket and its region');
      }
      return { type: 's3', bucket, region, key: env.CDKTF_NIXOS_S3_KEY };
    }
    default:
      return fail(stack, `CDKTF_NIXOS_BACKEND=${JSON.stringify(type)} is not a backend; use "local" (default), "pg" or "s3"`);
  }
}
