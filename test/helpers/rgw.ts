import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { CreateBucketCommand, S3Client } from '@aws-sdk/client-s3';
import { freePort } from '../../src/runtime/local-nats.ts';

const run = promisify(execFile);
const scripts = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'scripts');

export interface RgwHandle {
  endpoint: string;
  accessKeyId: string;
  secretAccessKey: string;
  region: string;
  dataDir: string;
  /** Stops radosgw, the OSD and the monitor (data stays in dataDir). */
  stop(): Promise<void>;
  /** Starts them again on the same ports and data. */
  start(): Promise<void>;
}

export function rgwInstalled(): boolean {
  return ['/usr/bin/radosgw', '/usr/bin/ceph-mon', '/usr/bin/ceph-osd'].every((p) => existsSync(p));
}

/** A one-node Ceph RadosGW on free loopback ports (scripts/start-rgw.sh, ~17 s cold). */
export async function startRgw(dataDir: string): Promise<RgwHandle> {
  if (!rgwInstalled()) {
    throw new Error(
      'radosgw is not installed: run `bash .ci/run`, or `apt-get install radosgw ceph-mon ceph-osd ceph-common`',
    );
  }
  const port = await freePort();
  const monPort = await freePort();
  const env = {
    ...process.env,
    MON_PORT: String(monPort),
    S3_ACCESS_KEY: 'testkey',
    S3_SECRET_KEY: 'testsecret',
  };
  const start = async (): Promise<void> => {
    await run('bash', [join(scripts, 'start-rgw.sh'), dataDir, String(port)], { env, timeout: 180_000 });
  };
  await start();
  return {
    endpoint: `http://127.0.0.1:${port}`,
    accessKeyId: 'testkey',
    secretAccessKey: 'testsecret',
    region: 'us-east-1',
    dataDir,
    start,
    async stop() {
      await run('bash', [join(scripts, 'stop-rgw.sh'), dataDir], { env, timeout: 60_000 });
    },
  };
}

export function s3Client(h: { endpoint: string; accessKeyId: string; secretAccessKey: string }): S3Client {
  return new S3Client({
    endpoint: h.endpoint,
    region: 'us-east-1',
    forcePathStyle: true,
    credentials: { accessKeyId: h.accessKeyId, secretAccessKey: h.secretAccessKey },
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
    maxAttempts: 10,
  });
}

export async function createBucket(
  h: { endpoint: string; accessKeyId: string; secretAccessKey: string },
  name: string,
): Promise<void> {
  const client = s3Client(h);
  try {
    await client.send(new CreateBucketCommand({ Bucket: name }));
  } catch (error) {
    const code = (error as { name?: string }).name;
    if (code !== 'BucketAlreadyOwnedByYou' && code !== 'BucketAlreadyExists') throw error;
  } finally {
    client.destroy();
  }
}
