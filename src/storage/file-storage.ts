import { createHash, randomBytes } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { mkdir, readdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { dirname, join, resolve, sep } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { measuringStream } from './measure.ts';
import type { ObjectStorage, StoredObject } from './storage.ts';

/**
 * Objects as files below a folder (`file:./data`): an object's key is its path there. A put
 * writes a temporary file next to the target and renames it, so readers never see half a page.
 */
export class FileStorage implements ObjectStorage {
  readonly root: string;
  readonly location: string;

  constructor(root: string) {
    this.root = resolve(root);
    this.location = `file:${this.root}`;
  }

  async put(key: string, body: Uint8Array | Readable, _contentType?: string): Promise<StoredObject> {
    const path = this.pathOf(key);
    await mkdir(dirname(path), { recursive: true });
    const temp = join(dirname(path), `.${randomBytes(6).toString('hex')}.tmp`);
    try {
      if (!(body instanceof Readable)) {
        // A page already in memory (the usual case): one write, no stream machinery per page.
        await writeFile(temp, body);
        await rename(temp, path);
        return { key, bytes: body.byteLength, sha256: createHash('sha256').update(body).digest('hex') };
      }
      const measure = measuringStream();
      await pipeline(body, measure.stream, createWriteStream(temp));
      await rename(temp, path);
      return { key, ...measure.digest() };
    } catch (error) {
      await rm(temp, { force: true });
      throw error;
    }
  }

  async get(key: string): Promise<Buffer | undefined> {
    try {
      return await readFile(this.pathOf(key));
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw error;
    }
  }

  async list(prefix: string): Promise<string[]> {
    const keys: string[] = [];
    const walk = async (dir: string, rel: string): Promise<void> => {
      let entries;
      try {
        entries = await readdir(dir, { withFileTypes: true });
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code === 'ENOENT') return;
        throw error;
      }
      for (const entry of entries) {
        if (entry.name.endsWith('.tmp') && entry.name.startsWith('.')) continue;
        const key = rel === '' ? entry.name : `${rel}/${entry.name}`;
        if (entry.isDirectory()) await walk(join(dir, entry.name), key);
        else if (key.startsWith(prefix)) keys.push(key);
      }
    };
    await walk(this.root, '');
    return keys.sort();
  }

  async close(): Promise<void> {}

  /** Keys are built by Prism, but a key must never reach outside the root all the same. */
  private pathOf(key: string): string {
    const segments = key.split('/');
    if (key === '' || key.includes('\0') || segments.some((s) => s === '' || s === '.' || s === '..')) {
      throw new Error(`invalid object key "${key}"`);
    }
    const path = resolve(this.root, ...segments);
    if (!path.startsWith(this.root + sep)) throw new Error(`object key "${key}" leaves the storage folder`);
    return path;
  }
}
