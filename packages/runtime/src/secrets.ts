/**
 * Values known to be secret in this process (the Vault token, a client secret being rotated, a
 * planted test value). Every line the logger writes, and every error message the runtime prints,
 * is scrubbed of them: defence in depth behind the field-name redaction, for the day a library
 * puts a secret into an error message.
 */
const known = new Set<string>();

// Shorter values would make scrubbing rewrite ordinary words.
const MIN_LENGTH = 6;

export function registerSecret(value: string | undefined | null): void {
  if (typeof value === 'string' && value.length >= MIN_LENGTH) {
    known.add(value);
    const escaped = JSON.stringify(value).slice(1, -1);
    if (escaped !== value) known.add(escaped);
  }
}

export function scrubSecrets(text: string): string {
  if (known.size === 0) return text;
  let out = text;
  for (const value of known) if (out.includes(value)) out = out.split(value).join('[redacted]');
  return out;
}
