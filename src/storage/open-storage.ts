import { FileStorage } from './file-storage.ts';
import { S3Storage, type S3StorageOptions } from './s3-storage.ts';
import type { ObjectStorage } from './storage.ts';

/** Storage from its URL: `file:./data`, `file:/abs/path`, `s3://bucket` or `s3://bucket/prefix`. */
export function openStorage(url: string, s3Options: S3StorageOptions = {}): ObjectStorage {
  if (url.startsWith('file:')) {
    const path = url.slice('file:'.length).replace(/^\/\/(?=\/)/, '');
    if (path === '') throw new Error(`storage URL "${url}" has no folder: use file:./data or file:/abs/path`);
    return new FileStorage(path);
  }
  if (url.startsWith('s3://')) {
    const rest = url.slice('s3://'.length);
    const slash = rest.indexOf('/');
    const bucket = slash < 0 ? rest : rest.slice(0, slash);
    const prefix = slash < 0 ? '' : rest.slice(slash + 1).replace(/^\/+|\/+$/g, '');
    if (!/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/.test(bucket)) {
      throw new Error(`storage URL "${url}": "${bucket}" is not a valid bucket name`);
    }
    return new S3Storage(bucket, prefix, s3Options);
  }
  throw new Error(`storage URL "${url}" is not supported: use file:./data or s3://bucket/prefix`);
}
