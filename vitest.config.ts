import { defineConfig } from 'vitest/config';

// One command runs everything: `unit` needs nothing running; `stack` needs `pnpm stack:up`
// (its global setup fails loudly when the stack is not there rather than skipping).
export default defineConfig({
  test: {
    projects: [
      {
        test: {
          name: 'unit',
          include: ['packages/*/test/**/*.test.ts', 'jobs/*/test/**/*.unit.test.ts'],
          // A package's stack tests belong to the stack project alone (servers, no file parallelism).
          exclude: ['**/*.stack.test.ts', '**/node_modules/**'],
        },
      },
      {
        test: {
          name: 'stack',
          include: ['test/e2e/**/*.test.ts', 'jobs/*/test/**/*.stack.test.ts', 'packages/*/test/**/*.stack.test.ts'],
          globalSetup: ['test/stack/vitest-global-setup.ts'],
          testTimeout: 120_000,
          hookTimeout: 180_000,
          // The stack is one shared set of servers; files that kill nodes must not race each other.
          fileParallelism: false,
        },
      },
    ],
  },
});
