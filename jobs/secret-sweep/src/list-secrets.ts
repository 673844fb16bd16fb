import type { V1Secret } from '@kubernetes/client-node';
import { JobFailure, type Logger } from '@vaultkeeper/runtime';
import { KubeError, type Kube } from './kube.ts';

export interface ListPage<T> {
  items: T[];
  metadata?: { _continue?: string | undefined } | undefined;
}

export interface PageOf<T> {
  items: T[];
  /** True on the first page after the list started over: drop what the earlier pages gave. */
  restarted: boolean;
}

export interface ListPagesOptions {
  operation: string;
  pageSize: number;
  log: Logger;
  /** Start-overs allowed before giving up (a cluster that compacts faster than we can read). */
  maxRestarts?: number;
}

/** One list call: a page of `limit` items from `cont` on. */
export type FetchPage<T> = (limit: number, cont: string | undefined) => Promise<ListPage<T>>;

/**
 * Pages through one or more lists (one per namespace, or one for the cluster) with `limit` and
 * `continue`. `resourceVersion` is left unset on purpose: with resourceVersion=0 the apiserver
 * may serve the list from its watch cache and ignore the limit, which would put the whole
 * cluster's Secrets into one response
 * (https://kubernetes.io/docs/reference/using-api/api-concepts/#retrieving-large-results-sets-in-chunks).
 *
 * A continue token expires when etcd compacts past its revision (every 5 minutes by default);
 * the apiserver then answers 410 Gone. Its Status offers a token to carry on from the latest
 * revision, but that mixes two snapshots, so the whole list starts over instead and the
 * consumer is told (`restarted`) to drop what the earlier pages gave.
 */
export async function* listPages<T>(lists: Array<FetchPage<T>>, opts: ListPagesOptions): AsyncGenerator<PageOf<T>> {
  const maxRestarts = opts.maxRestarts ?? 3;
  let restarted = false;
  restart: for (let restarts = 0; ; restarts++) {
    for (const fetchPage of lists) {
      let cont: string | undefined;
      do {
        let page: ListPage<T>;
        try {
          page = await fetchPage(opts.pageSize, cont);
        } catch (err) {
          if (!(err instanceof KubeError && err.status === 410 && cont !== undefined)) throw err;
          if (restarts >= maxRestarts) {
            throw new JobFailure(`${opts.operation}: the continue token expired ${restarts + 1} times; the list could not finish between etcd compactions`);
          }
          opts.log.warn({ operation: opts.operation, restarts: restarts + 1 }, 'list continue token expired (410 Gone); starting the list over');
          restarted = true;
          continue restart;
        }
        yield { items: page.items, restarted };
        restarted = false;
        cont = page.metadata?._continue || undefined;
      } while (cont);
    }
    return;
  }
}

/** Every Secret of the cluster, or of the given namespaces, one page at a time. */
export function listSecrets(kube: Kube, namespaces: string[], pageSize: number, log: Logger): AsyncGenerator<PageOf<V1Secret>> {
  const lists: Array<FetchPage<V1Secret>> =
    namespaces.length === 0
      ? [(limit, cont) => kube.call('list secrets', (o) => kube.core.listSecretForAllNamespaces({ limit, ...(cont ? { _continue: cont } : {}) }, o), { retry: true })]
      : namespaces.map(
          (namespace) => (limit, cont) =>
            kube.call(`list secrets in ${namespace}`, (o) => kube.core.listNamespacedSecret({ namespace, limit, ...(cont ? { _continue: cont } : {}) }, o), {
              retry: true,
            }),
        );
  return listPages(lists, { operation: 'list secrets', pageSize, log });
}
