// `pnpm stack:env [--with-root-token]`: prints `export X=...` lines for a person's shell:
//   eval "$(pnpm -s stack:env)"
import { readStack, stackEnv } from './stack.ts';

const stack = readStack();
const env: Record<string, string> = {
  ...stackEnv(stack),
  BAO_ADDR: stack.openbao.serviceAddr,
  ...(stack.openbao.tls ? { BAO_CACERT: stack.openbao.tls.caFile } : {}),
};
if (process.argv.includes('--with-root-token')) {
  env.VAULT_TOKEN = stack.openbao.rootToken;
  env.BAO_TOKEN = stack.openbao.rootToken;
}
const quote = (v: string) => `'${v.replaceAll("'", `'\\''`)}'`;
for (const [name, value] of Object.entries(env)) console.log(`export ${name}=${quote(value)}`);
