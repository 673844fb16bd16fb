/**
 * At most `limit` of the functions given to the returned runner are in flight at once; the rest
 * wait in arrival order. Keeps a walk over thousands of KV paths from opening thousands of
 * requests against Vault at the same moment.
 */
export function createLimiter(limit: number): <T>(fn: () => Promise<T>) => Promise<T> {
  let active = 0;
  const waiting: Array<() => void> = [];
  return async <T>(fn: () => Promise<T>): Promise<T> => {
    // A finished task hands its slot straight to the next waiter, so a newcomer cannot slip in between.
    if (active >= limit) await new Promise<void>((resolve) => waiting.push(resolve));
    else active++;
    try {
      return await fn();
    } finally {
      const next = waiting.shift();
      if (next) next();
      else active--;
    }
  };
}
