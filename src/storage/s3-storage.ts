import { createHash } from 'node:crypto';
import {
  GetObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
  type S3ClientConfig,
} from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { Readable } from 'node:stream';
import { measuringStream } from './measure.ts';
import type { ObjectStorage, StoredObject } from './storage.ts';

export interface S3StorageOptions {
  endpoint?: string;
  region?: string;
  forcePathStyle?: boolean;
  credentials?: { accessKeyId: string; secretAccessKey: string };
}

/**
 * Objects in an S3 bucket (`s3://bucket/prefix`): AWS, MinIO, Ceph RadosGW. Endpoint, region and
 * credentials come from the AWS SDK's own environment variables unless given here.
 */
export class S3Storage implements ObjectStorage {
  readonly location: string;
  private readonly client: S3Client;
  private readonly bucket: string;
  private readonly prefix: string;

  constructor(bucket: string, prefix: string, options: S3StorageOptions = {}, env = process.env) {
    this.bucket = bucket;
    this.prefix = prefix === '' ? '' : `${prefix.replace(/\/+$/, '')}/`;
    this.location = `s3://${bucket}${this.prefix === '' ? '' : `/${this.prefix.slice(0, -1)}`}`;
    const endpoint = options.endpoint ?? env.AWS_ENDPOINT_URL_S3 ?? env.AWS_ENDPOINT_URL;
    const config: S3ClientConfig = {
      region: options.region ?? env.AWS_REGION ?? env.AWS_DEFAULT_REGION ?? 'us-east-1',
      // Local servers (MinIO, RadosGW) want path-style URLs and no flexible checksums.
      forcePathStyle:
        options.forcePathStyle ?? (endpoint !== undefined || env.AWS_S3_FORCE_PATH_STYLE === 'true'),
      requestChecksumCalculation: 'WHEN_REQUIRED',
      responseChecksumValidation: 'WHEN_REQUIRED',
      maxAttempts: 10,
    };
    if (endpoint !== undefined) config.endpoint = endpoint;
    if (options.credentials !== undefined) config.credentials = options.credentials;
    this.client = new S3Client(config);
  }

  async put(
    key: string,
    body: Uint8Array | Readable,
    contentType = 'application/octet-stream',
  ): Promise<StoredObject> {
    const Key = this.prefix + key;
    if (!(body instanceof Readable)) {
      const sha256 = createHash('sha256').update(body).digest('hex');
      const md5 = createHash('md5').update(body).digest('base64');
      // A buffered body can be retried by the SDK (maxAttempts), unlike a stream.
      await this.client.send(
        new PutObjectCommand({
          Bucket: this.bucket,
          Key,
          Body: body,
          ContentType: contentType,
          ContentMD5: md5,
          Metadata: { sha256 },
        }),
      );
      return { key, bytes: body.byteLength, sha256 };
    }
    const measure = measuringStream();
    // Streams of unknown length go through multipart upload (a plain PUT needs a length); the
    // SDK never retries a stream, so a failed upload fails the put and the caller retries it.
    await new Upload({
      client: this.client,
      params: { Bucket: this.bucket, Key, Body: body.pipe(measure.stream), ContentType: contentType },
      partSize: 8 * 1024 * 1024,
      queueSize: 4,
    }).done();
    return { key, ...measure.digest() };
  }

  async get(key: string): Promise<Buffer | undefined> {
    try {
      const response = await this.client.send(
        new GetObjectCommand({ Bucket: this.bucket, Key: this.prefix + key }),
      );
      return Buffer.from(
        await (response.Body as { transformToByteArray(): Promise<Uint8Array> }).transformToByteArray(),
      );
    } catch (error) {
      if ((error as { name?: string }).name === 'NoSuchKey') return undefined;
      throw error;
    }
  }

  async list(prefix: string): Promise<string[]> {
    const keys: string[] = [];
    let token: string | undefined;
    do {
      const page = await this.client.send(
        new ListObjectsV2Command({
          Bucket: this.bucket,
          Prefix: this.prefix + prefix,
          ContinuationToken: token,
        }),
      );
      for (const object of page.Contents ?? [])
        if (object.Key !== undefined) keys.push(object.Key.slice(this.prefix.length));
      token = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (token !== undefined);
    return keys.sort();
  }

  async close(): Promise<void> {
    this.client.destroy();
  }
}
