/**
 * Diagnostics: the errors and warnings Terraform shows the user, optionally
 * pointing at an attribute (Terraform then underlines it in the configuration).
 */

/**
 * One step of an attribute path: a string is an attribute name, a number an
 * index into a list or tuple, and `{ key }` a map key (or a set element's key).
 */
export type PathStep = string | number | { key: string };

/** A path into a value, e.g. `['keys', { key: 'db' }, 'file']`. */
export type AttributePath = PathStep[];

/** A diagnostic as provider code writes it. */
export interface Diagnostic {
  severity: 'error' | 'warning';
  summary: string;
  detail?: string;
  path?: AttributePath;
}

/** An error diagnostic. */
export function error(summary: string, detail?: string, path?: AttributePath): Diagnostic {
  return { severity: 'error', summary, detail, path };
}

/** A warning diagnostic. */
export function warning(summary: string, detail?: string, path?: AttributePath): Diagnostic {
  return { severity: 'warning', summary, detail, path };
}

/** Whether any diagnostic is an error. */
export function hasErrors(diagnostics: readonly Diagnostic[]): boolean {
  return diagnostics.some((d) => d.severity === 'error');
}

/** An exception that carries an attribute path, so it can become a pointed diagnostic. */
export class PathError extends Error {
  constructor(
    message: string,
    readonly path: AttributePath,
  ) {
    super(path.length ? `${formatPath(path)}: ${message}` : message);
    this.name = 'PathError';
  }
}

/** Turns any thrown value into an error diagnostic, keeping a PathError's path. */
export function diagnosticFromError(summary: string, thrown: unknown): Diagnostic {
  if (thrown instanceof PathError) return error(summary, thrown.message, thrown.path);
  const detail = thrown instanceof Error ? thrown.message : String(thrown);
  return error(summary, detail);
}

/** Renders a path the way Terraform users read it: `keys["db"].file`, `ports[0]`. */
export function formatPath(path: AttributePath): string {
  let text = '';
  for (const step of path) {
    if (typeof step === 'string') text += text ? `.${step}` : step;
    else if (typeof step === 'number') text += `[${step}]`;
    else text += `[${JSON.stringify(step.key)}]`;
  }
  return text;
}

/** Wire form of an attribute path (tfplugin6.AttributePath). */
export interface ProtoAttributePath {
  steps: Array<{ attribute_name: string } | { element_key_string: string } | { element_key_int: number }>;
}

/** Wire form of a diagnostic (tfplugin6.Diagnostic). */
export interface ProtoDiagnostic {
  severity: 'ERROR' | 'WARNING';
  summary: string;
  detail: string;
  attribute?: ProtoAttributePath;
}

/** Converts a path to its wire form. */
export function pathToProto(path: AttributePath): ProtoAttributePath {
  return {
    steps: path.map((step) => {
      if (typeof step === 'string') return { attribute_name: step };
      if (typeof step === 'number') return { element_key_int: step };
      return { element_key_string: step.key };
    }),
  };
}

/** Reads a path from its wire form (as decoded with `oneofs: true`). */
export function pathFromProto(proto: { steps?: Array<Record<string, unknown>> } | null | undefined): AttributePath {
  return (proto?.steps ?? []).map((step): PathStep => {
    switch (step.selector) {
      case 'element_key_string':
        return { key: String(step.element_key_string) };
      case 'element_key_int':
        return Number(step.element_key_int);
      default:
        return String(step.attribute_name);
    }
  });
}

/** Converts diagnostics to their wire form. */
export function diagnosticsToProto(diagnostics: readonly Diagnostic[]): ProtoDiagnostic[] {
  return diagnostics.map((d) => ({
    severity: d.severity === 'error' ? 'ERROR' : 'WARNING',
    summary: d.summary,
    detail: d.detail ?? '',
    ...(d.path && d.path.length ? { attribute: pathToProto(d.path) } : {}),
  }));
}
