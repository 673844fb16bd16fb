import type { JobDefinition } from '@vaultkeeper/runtime';
import { connectVault } from '@vaultkeeper/vault';
import { jobConfig } from './config.ts';
import { listCommand } from './list-snapshots.ts';
import { runSnapshot } from './run-snapshot.ts';
import { createS3Client } from './s3-store.ts';
import { verifyCommand } from './verify-stored.ts';

export const job: JobDefinition<(typeof jobConfig)['shape']> = {
  name: 'raft-snapshot',
  title: 'nightly Raft snapshot to S3: streamed, verified, encrypted, pruned',
  description: `
Takes a Raft snapshot (GET sys/storage/raft/snapshot on the active node) and streams it into an S3
multipart upload, checking every member against the snapshot's own SHA256SUMS and requiring the
sealed manifest as it passes. Only a verified snapshot is committed, with its SHA-256, size, Raft
index and term, Vault version and serving node recorded as object metadata; a failed one is aborted.
Then prunes old snapshots (last N plus daily/weekly/monthly generations). See docs/raft-snapshot.md.`,
  commands: {
    snapshot: 'take a snapshot, verify it, store it, prune old ones',
    list: 'show the stored snapshots: age, size, Raft index, verified, uploads in progress, lock',
    verify: 'download a stored snapshot <key> (default: the newest) and check it against its manifest and its record',
  },
  config: jobConfig,
  async run(ctx) {
    if (ctx.command === 'snapshot') {
      const vault = await connectVault(ctx.config.vault, ctx);
      const s3 = await createS3Client(ctx.config.s3, vault, ctx.log);
      ctx.onCleanup(() => s3.destroy());
      return runSnapshot(ctx, vault, s3);
    }
    // list and verify work with S3 alone, for the day Vault is the thing that is down.
    const vault = ctx.config.s3.credentialsFromVault ? await connectVault(ctx.config.vault, ctx) : undefined;
    const s3 = await createS3Client(ctx.config.s3, vault, ctx.log);
    ctx.onCleanup(() => s3.destroy());
    return ctx.command === 'list' ? listCommand(ctx, s3) : verifyCommand(ctx, s3);
  },
};
