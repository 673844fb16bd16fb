/** The annotation `kubectl apply` writes with the whole object it applied, data included. */
export const LAST_APPLIED = 'kubectl.kubernetes.io/last-applied-configuration';

export interface AnnotationCopy {
  /** Keys held base64-encoded under `data`. */
  dataKeys: string[];
  /** Keys held in plaintext under `stringData` (kubectl keeps them as written). */
  stringDataKeys: string[];
  /** The values, for comparison in memory only: never put into a report or a log. */
  values: Array<{ key: string; bytes: Buffer }>;
}

/**
 * The Secret content kept in the last-applied annotation, if any. `kubectl apply` stores the
 * manifest as given, so a Secret applied with `stringData` has its values there in plaintext,
 * and one that a controller rewrote since still carries the values it was first applied with.
 * Returns undefined when the annotation is absent or carries no non-empty value.
 */
export function lastAppliedCopy(annotations: Record<string, string> | undefined): AnnotationCopy | 'unparseable' | undefined {
  const raw = annotations?.[LAST_APPLIED];
  if (!raw) return undefined;
  let applied: unknown;
  try {
    applied = JSON.parse(raw);
  } catch {
    return 'unparseable';
  }
  if (!applied || typeof applied !== 'object') return undefined;
  const { data, stringData } = applied as { data?: unknown; stringData?: unknown };
  const copy: AnnotationCopy = { dataKeys: [], stringDataKeys: [], values: [] };
  for (const [key, value] of entries(data)) {
    const bytes = Buffer.from(value, 'base64');
    if (bytes.length === 0) continue;
    copy.dataKeys.push(key);
    copy.values.push({ key, bytes });
  }
  for (const [key, value] of entries(stringData)) {
    if (value === '') continue;
    copy.stringDataKeys.push(key);
    copy.values.push({ key, bytes: Buffer.from(value, 'utf8') });
  }
  return copy.values.length ? copy : undefined;
}

function entries(v: unknown): Array<[string, string]> {
  if (!v || typeof v !== 'object' || Array.isArray(v)) return [];
  return Object.entries(v).filter((e): e is [string, string] => typeof e[1] === 'string');
}
