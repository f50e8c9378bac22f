import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    globalSetup: ['test/support/globalSetup.ts'],
    // End-to-end tests start real processes and wait for retries and leases.
    testTimeout: 60_000,
    hookTimeout: 60_000,
    pool: 'forks',
  },
});
