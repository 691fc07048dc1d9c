import { createHash } from 'node:crypto';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { afterAll, describe, expect, it } from 'vitest';
import { FileStorage } from '../../src/storage/file-storage.ts';

const root = mkdtempSync(join(tmpdir(), 'prism-file-storage-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));
const sha = (text: string) => createHash('sha256').update(text).digest('hex');

describe('FileStorage', () => {
  const storage = new FileStorage(root);

  it('stores a buffer and a stream with their size and sha256, and reads them back', async () => {
    const page = Buffer.from('{"data":[1,2,3]}');
    expect(await storage.put('meta/insights/act_1/j1/page-00000.json', page)).toEqual({
      key: 'meta/insights/act_1/j1/page-00000.json',
      bytes: page.length,
      sha256: sha(page.toString()),
    });
    const streamed = await storage.put(
      'meta/insights/act_1/j1/page-00001.json',
      Readable.from(['{"a"', ':1}']),
    );
    expect(streamed).toMatchObject({ bytes: 7, sha256: sha('{"a":1}') });
    expect((await storage.get('meta/insights/act_1/j1/page-00001.json'))?.toString()).toBe('{"a":1}');
  });

  it('overwrites the same key on a redelivery and leaves no temporary files', async () => {
    await storage.put('x/y/z/j2/page-00000.json', Buffer.from('first'));
    await storage.put('x/y/z/j2/page-00000.json', Buffer.from('second'));
    expect((await storage.get('x/y/z/j2/page-00000.json'))?.toString()).toBe('second');
    expect(readdirSync(join(root, 'x/y/z/j2'))).toEqual(['page-00000.json']);
    expect(await storage.list('x/')).toEqual(['x/y/z/j2/page-00000.json']);
  });

  it('refuses keys that would leave its folder', async () => {
    for (const key of ['../escape.json', 'a/../../b.json', '/etc/passwd', 'a//b', 'a/\0/b'])
      await expect(storage.put(key, Buffer.from('x'))).rejects.toThrow(/object key/);
  });
});
