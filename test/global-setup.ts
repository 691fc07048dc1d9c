import { writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestProject } from 'vitest/node';
import { stopLeftoverChildren } from './helpers/children.ts';
import { createBucket, startRgw, type RgwHandle } from './helpers/rgw.ts';

declare module 'vitest' {
  export interface ProvidedContext {
    s3Endpoint: string;
    s3AccessKeyId: string;
    s3SecretAccessKey: string;
    s3Bucket: string;
    /** Where the radosgw data lives, so fault tests can stop and start it. */
    s3DataDir: string;
  }
}

/**
 * One real S3-protocol server for the whole run: Ceph RadosGW on free loopback ports (~17 s to
 * start). PRISM_TEST_S3_ENDPOINT (+ _ACCESS_KEY, _SECRET_KEY) uses a running one instead.
 */
export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  // Processes the tests start note their pids here (test/helpers/children.ts); the test files'
  // workers inherit it.
  const children = join(tmpdir(), `prism-test-children-${process.pid}`);
  writeFileSync(children, '');
  process.env.PRISM_TEST_CHILDREN = children;
  const bucket = 'prism-test';
  const external = process.env.PRISM_TEST_S3_ENDPOINT;
  let rgw: RgwHandle | undefined;
  let dataDir = '';
  let target: { endpoint: string; accessKeyId: string; secretAccessKey: string };
  if (external !== undefined) {
    target = {
      endpoint: external,
      accessKeyId: process.env.PRISM_TEST_S3_ACCESS_KEY ?? 'testkey',
      secretAccessKey: process.env.PRISM_TEST_S3_SECRET_KEY ?? 'testsecret',
    };
  } else {
    dataDir = await mkdtemp(join(tmpdir(), 'prism-rgw-'));
    rgw = await startRgw(dataDir);
    target = rgw;
  }
  await createBucket(target, bucket);
  project.provide('s3Endpoint', target.endpoint);
  project.provide('s3AccessKeyId', target.accessKeyId);
  project.provide('s3SecretAccessKey', target.secretAccessKey);
  project.provide('s3Bucket', bucket);
  project.provide('s3DataDir', dataDir);
  return async () => {
    stopLeftoverChildren(children);
    await rgw?.stop();
    if (dataDir !== '') await rm(dataDir, { recursive: true, force: true });
  };
}
