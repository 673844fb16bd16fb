// Test support: Authentik's upstream OpenAPI document (shared/, beside the repo; never copied
// into it), the project's subset, $ref resolution and an OpenAPI 3.0 -> JSON Schema converter
// for ajv.
import { existsSync, readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Ajv, type ValidateFunction } from 'ajv';
import { parse } from 'yaml';

export type Json = null | boolean | number | string | Json[] | { [k: string]: Json };
export type Obj = { [k: string]: Json };

export const repoRoot = resolve(fileURLToPath(new URL('.', import.meta.url)), '../../..');
export const upstreamPath = resolve(repoRoot, '..', 'shared', 'authentik', 'schema.yml');
export const subsetPath = resolve(repoRoot, 'packages/authentik/openapi/authentik-subset.yaml');

let upstreamCache: Obj | undefined;

/** The upstream document, or undefined (after a loud warning) when ../shared is not there. */
export function loadUpstream(): Obj | undefined {
  if (upstreamCache) return upstreamCache;
  if (!existsSync(upstreamPath)) {
    console.warn(
      [
        '',
        '!'.repeat(100),
        `!!! SKIPPED: Authentik's upstream OpenAPI schema is not at ${upstreamPath}`,
        '!!! The checks against upstream did NOT run. They need shared/authentik/schema.yml beside the repo.',
        '!'.repeat(100),
        '',
      ].join('\n'),
    );
    return undefined;
  }
  upstreamCache = parse(readFileSync(upstreamPath, 'utf8'), { maxAliasCount: -1 }) as Obj;
  return upstreamCache;
}

export function loadSubset(): Obj {
  return parse(readFileSync(subsetPath, 'utf8')) as Obj;
}

export function isObj(v: Json | undefined): v is Obj {
  return !!v && typeof v === 'object' && !Array.isArray(v);
}

/** Follows a local `$ref` (`#/a/b/c`) chain to the node it names. */
export function deref(doc: Obj, node: Json | undefined): Json | undefined {
  let cur = node;
  for (let hops = 0; isObj(cur) && typeof cur.$ref === 'string'; hops++) {
    if (hops > 50) throw new Error('$ref chain too long');
    const ref = cur.$ref;
    if (!ref.startsWith('#/')) throw new Error(`non-local $ref ${ref}`);
    let target: Json | undefined = doc;
    for (const part of ref.slice(2).split('/')) {
      const key = part.replace(/~1/g, '/').replace(/~0/g, '~');
      target = isObj(target) ? target[key] : undefined;
    }
    if (target === undefined) throw new Error(`dangling $ref ${ref}`);
    cur = target;
  }
  return cur;
}

/** Upstream's operation for a subset path (`/api/v3/x` -> upstream `/x`, upstream serves the API under /api/v3). */
export function upstreamPathFor(subsetPathKey: string): string | undefined {
  return subsetPathKey.startsWith('/api/v3/') ? subsetPathKey.slice('/api/v3'.length) : undefined;
}

// ---------- OpenAPI 3.0 schema -> JSON Schema (draft-07 flavoured, for ajv) ----------

const DROP = new Set(['nullable', 'discriminator', 'example', 'xml', 'externalDocs', 'deprecated']);

/**
 * Converts one OpenAPI 3.0 schema object: `nullable: true` becomes a null alternative (on
 * `type`, on `enum`, or as anyOf around $ref/allOf), `#/components/schemas/X` refs become
 * `#/definitions/X`, OpenAPI-only keywords go, `x-` extensions go.
 */
export function toJsonSchema(node: Json): Json {
  if (Array.isArray(node)) return node.map(toJsonSchema);
  if (!isObj(node)) return node;
  const out: Obj = {};
  for (const [k, v] of Object.entries(node)) {
    if (DROP.has(k) || k.startsWith('x-')) continue;
    if (k === '$ref' && typeof v === 'string') out.$ref = v.replace('#/components/schemas/', '#/definitions/');
    else if (k === 'properties' && isObj(v)) out.properties = Object.fromEntries(Object.entries(v).map(([p, s]) => [p, toJsonSchema(s)]));
    else out[k] = toJsonSchema(v);
  }
  if (node.nullable !== true) return out;
  if (typeof out.type === 'string' && !('$ref' in out) && !('allOf' in out) && !('oneOf' in out) && !('anyOf' in out)) {
    out.type = [out.type, 'null'];
    if (Array.isArray(out.enum) && !out.enum.includes(null)) out.enum = [...out.enum, null];
    return out;
  }
  // A $ref or a combinator: the annotations may stay on the outside, the constraint goes in an anyOf.
  const { description, title, readOnly, writeOnly, ...constraint } = out;
  return {
    ...(description !== undefined ? { description } : {}),
    ...(title !== undefined ? { title } : {}),
    ...(readOnly !== undefined ? { readOnly } : {}),
    ...(writeOnly !== undefined ? { writeOnly } : {}),
    anyOf: [constraint, { type: 'null' }],
  };
}

/** Names of the component schemas `node` reaches through $refs (transitively). */
function referencedSchemas(doc: Obj, node: Json, acc = new Set<string>()): Set<string> {
  const walk = (n: Json): void => {
    if (Array.isArray(n)) n.forEach(walk);
    else if (isObj(n)) {
      for (const [k, v] of Object.entries(n)) {
        if (k === '$ref' && typeof v === 'string' && v.startsWith('#/components/schemas/')) {
          const name = v.slice('#/components/schemas/'.length);
          if (!acc.has(name)) {
            acc.add(name);
            walk(deref(doc, { $ref: v }) ?? null);
          }
        } else walk(v);
      }
    }
  };
  walk(node);
  return acc;
}

const FORMATS: Record<string, RegExp | true> = {
  uuid: /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i,
  uri: /^[a-z][a-z0-9+.-]*:[^\s]*$/i,
  'date-time': /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)$/i,
  email: /^[^\s@]+@[^\s@]+$/,
};

/** An ajv validator for an OpenAPI schema node of `doc` (with every component it references). */
export function compileOpenApiSchema(doc: Obj, schema: Json): ValidateFunction {
  const definitions: Obj = {};
  for (const name of referencedSchemas(doc, schema)) {
    definitions[name] = toJsonSchema(deref(doc, { $ref: `#/components/schemas/${name}` }) ?? null);
  }
  const ajv = new Ajv({ allErrors: true, strict: false });
  const seen = new Set<string>();
  JSON.stringify({ schema, definitions }, (k, v: unknown) => {
    if (k === 'format' && typeof v === 'string') seen.add(v);
    return v;
  });
  for (const f of seen) {
    const known = FORMATS[f];
    ajv.addFormat(f, known === undefined ? true : known);
  }
  return ajv.compile({ ...(toJsonSchema(schema) as Obj), definitions });
}

/** The JSON schema of upstream's response `status` for `method path` (subset-style path), or undefined when upstream does not declare one. */
export function upstreamResponseSchema(doc: Obj, method: string, subsetPathKey: string, status: number): Json | undefined {
  const p = upstreamPathFor(subsetPathKey);
  if (!p) return undefined;
  const op = (doc.paths as Obj)[p] as Obj | undefined;
  const operation = op?.[method.toLowerCase()] as Obj | undefined;
  const response = deref(doc, (operation?.responses as Obj | undefined)?.[String(status)]);
  if (!isObj(response)) return undefined;
  const content = response.content as Obj | undefined;
  return (content?.['application/json'] as Obj | undefined)?.schema;
}
