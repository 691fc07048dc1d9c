import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    globalSetup: ['test/global-setup.ts'],
    testTimeout: 60_000,
    hookTimeout: 120_000,
    // Integration tests start real servers (nats-server, radosgw); two cores, so few files at once.
    maxWorkers: 2,
    reporters: ['default'],
  },
});
