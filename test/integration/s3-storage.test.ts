import { createHash, randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { S3Storage } from '../../src/storage/s3-storage.ts';
import { startHarness, type Harness } from '../helpers/prism-harness.ts';

const s3 = () => ({
  endpoint: inject('s3Endpoint'),
  credentials: { accessKeyId: inject('s3AccessKeyId'), secretAccessKey: inject('s3SecretAccessKey') },
});

describe('S3 storage against a real S3-protocol server (Ceph RadosGW)', () => {
  const storage = new S3Storage(inject('s3Bucket'), `unit-${Date.now()}`, s3());
  afterAll(() => storage.close());

  it('stores a buffer, reads it back, and overwrites idempotently', async () => {
    const body = Buffer.from(JSON.stringify({ data: [1, 2, 3] }));
    const stored = await storage.put('meta/insights/act 1/j-1/page-00000.json', body, 'application/json');
    expect(stored).toEqual({
      key: 'meta/insights/act 1/j-1/page-00000.json',
      bytes: body.length,
      sha256: createHash('sha256').update(body).digest('hex'),
    });
    expect(await storage.get(stored.key)).toEqual(body);
    await storage.put(stored.key, body);
    expect(await storage.list('meta/insights/')).toEqual([stored.key]);
    expect(await storage.get('meta/none')).toBeUndefined();
  });

  it('streams a body of unknown length through multipart upload', async () => {
    const chunks = Array.from({ length: 20 }, () => randomBytes(1024 * 1024));
    const expected = createHash('sha256');
    for (const c of chunks) expected.update(c);
    const stored = await storage.put('big/stream.bin', Readable.from(chunks));
    expect(stored.bytes).toBe(20 * 1024 * 1024);
    expect(stored.sha256).toBe(expected.digest('hex'));
    const back = await storage.get('big/stream.bin');
    expect(
      createHash('sha256')
        .update(back ?? Buffer.alloc(0))
        .digest('hex'),
    ).toBe(stored.sha256);
  });
});

describe('a node with s3:// storage', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness();
  });
  afterAll(async () => {
    await h?.close();
  });

  it('lands every page in the bucket under deterministic keys', async () => {
    const prefix = `node-${Date.now()}`;
    const storage = new S3Storage(inject('s3Bucket'), prefix, s3());
    await h.startNode(
      {
        node: { concurrency: 16 },
        sources: {
          meta: { allowHosts: [h.host], apis: { insights: { paginate: { next: 'paging.next' } } } },
        },
      },
      { storage },
    );
    const id = await h.publish({
      id: 'to-s3',
      source: 'meta',
      api: 'insights',
      account: 'act_9',
      request: { url: `http://${h.host}/meta/act_9/insights`, query: { pages: '2' } },
    });
    await h.waitFor([id]);
    const result = h.results.get(id);
    expect(result?.objects.map((o) => o.key)).toEqual([
      'meta/insights/act_9/to-s3/page-00000.json',
      'meta/insights/act_9/to-s3/page-00001.json',
    ]);
    for (const object of result?.objects ?? []) {
      const body = await storage.get(object.key);
      expect(
        createHash('sha256')
          .update(body ?? Buffer.alloc(0))
          .digest('hex'),
      ).toBe(object.sha256);
    }
  });
});
