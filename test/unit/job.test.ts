import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { parseConfig } from '../../src/config/load.ts';
import { parseJob, payloadBytes, payloadText } from '../../src/messages/job.ts';
import { jobSubject } from '../../src/messages/subject.ts';
import { jobIdOf } from '../../src/client/jobs.ts';

const config = parseConfig({
  node: { maxJobBytes: 4096 },
  sources: {
    meta: {
      allowHosts: ['graph.facebook.com', '127.0.0.1:8080'],
      auth: { 'meta-default': { type: 'bearer', tokenEnv: 'META_TOKEN' } },
      apis: { insights: {} },
    },
  },
});
const subject = jobSubject({ source: 'meta', api: 'insights', account: 'act_1' });
const encode = (value: unknown): Uint8Array =>
  new TextEncoder().encode(typeof value === 'string' ? value : JSON.stringify(value));
const base = {
  request: { url: 'https://graph.facebook.com/v21.0/act_1/insights', query: { date_preset: 'yesterday' } },
};
const reasonOf = (value: unknown, subj = subject): string => {
  const parsed = parseJob({ subject: subj, data: encode(value) }, config);
  if (parsed.ok) throw new Error('expected a rejection');
  return parsed.reason;
};

describe('parseJob', () => {
  it('accepts a valid job and fills source/api/account from the subject', () => {
    const parsed = parseJob(
      { subject, data: encode({ ...base, auth: 'meta-default', meta: { date: '2026-11-23' } }) },
      config,
    );
    expect(parsed).toMatchObject({
      ok: true,
      job: { source: 'meta', api: 'insights', account: 'act_1', auth: 'meta-default' },
    });
  });

  it('derives the same id for the same job, as producers do', () => {
    const a = parseJob({ subject, data: encode(base) }, config);
    const b = parseJob(
      { subject, data: encode({ request: { query: { date_preset: 'yesterday' }, url: base.request.url } }) },
      config,
    );
    if (!a.ok || !b.ok) throw new Error('expected valid jobs');
    expect(a.job.id).toBe(b.job.id);
    expect(a.job.id).toBe(jobIdOf({ source: 'meta', api: 'insights', account: 'act_1', ...base }));
    const withMsgId = parseJob({ subject, data: encode(base), msgId: 'producer-id-1' }, config);
    expect(withMsgId).toMatchObject({ ok: true, job: { id: 'producer-id-1' } });
  });

  it.each([
    ['malformed JSON', '{"request":', /malformed JSON/],
    ['not an object', '[1,2]', /invalid job/],
    ['wrong types', { request: { url: 42 } }, /request\.url/],
    ['unknown field', { ...base, priority: 1 }, /priority/],
    ['subject mismatch', { ...base, account: 'act_2' }, /does not match the subject/],
    ['disallowed host', { request: { url: 'https://evil.example/x' } }, /not in the source's allowHosts/],
    ['metadata address', { request: { url: 'http://169.254.169.254/latest/meta-data' } }, /allowHosts/],
    ['wrong port', { request: { url: 'http://127.0.0.1:9999/x' } }, /allowHosts/],
    ['other scheme', { request: { url: 'file:///etc/passwd' } }, /scheme/],
    ['user-info', { request: { url: 'https://u:p@graph.facebook.com/x' } }, /user-info/],
    ['malformed URL', { request: { url: 'http://' } }, /malformed URL/],
    ['secret header', { request: { ...base.request, headers: { Authorization: 'Bearer x' } } }, /credential/],
    ['secret query', { request: { ...base.request, query: { access_token: 'x' } } }, /credential/],
    ['secret in URL', { request: { url: 'https://graph.facebook.com/x?access_token=abc' } }, /credential/],
    ['reserved header', { request: { ...base.request, headers: { Host: 'x' } } }, /set by the node/],
    ['header injection', { request: { ...base.request, headers: { 'X-A': 'a\r\nX-B: b' } } }, /line break/],
    ['unknown auth', { ...base, auth: 'nope' }, /unknown auth/],
    ['bad id', { ...base, id: '../../x' }, /job id/],
    ['GET with body', { request: { ...base.request, body: { a: 1 } } }, /GET request cannot have a body/],
  ])('rejects %s with a clear reason', (_name, value, reason) => {
    expect(reasonOf(value)).toMatch(reason);
  });

  it('rejects unknown sources and apis', () => {
    expect(reasonOf(base, jobSubject({ source: 'myspace', api: 'x', account: 'a' }))).toMatch(
      /unknown source "myspace"/,
    );
    expect(reasonOf(base, jobSubject({ source: 'meta', api: 'x', account: 'a' }))).toMatch(/unknown api "x"/);
  });

  it('rejects huge bodies and invalid UTF-8 before parsing', () => {
    expect(reasonOf({ ...base, meta: { pad: 'x'.repeat(5000) } })).toMatch(/limit is 4096/);
    const bad = parseJob({ subject, data: new Uint8Array([0x7b, 0xff, 0x7d]) }, config);
    expect(bad).toMatchObject({ ok: false, reason: 'job is not valid UTF-8' });
    expect(payloadText(new Uint8Array([0x7b, 0xff, 0x7d]))).toBeUndefined();
  });

  it('parses a payload kept as text as it parses its bytes, counting the limit in bytes', () => {
    const bytes = encode(base);
    const text = payloadText(bytes) as string;
    expect(parseJob({ subject, data: text }, config)).toEqual(parseJob({ subject, data: bytes }, config));
    // 2,100 characters of two bytes each: under the limit in characters, over it in bytes.
    const wide = JSON.stringify({ ...base, meta: { pad: 'é'.repeat(2_100) } });
    expect(parseJob({ subject, data: wide }, config)).toMatchObject({ ok: false, reason: /limit is 4096/ });
    expect(payloadBytes(wide)).toBe(encode(wide).byteLength);
  });

  it('accepts a byte-order mark before the JSON, and keeps it in the text so the bytes round-trip', () => {
    const marked = new Uint8Array([0xef, 0xbb, 0xbf, ...encode(base)]);
    const text = payloadText(marked) as string;
    expect(text.charCodeAt(0)).toBe(0xfeff);
    expect(payloadBytes(text)).toBe(marked.byteLength);
    expect(parseJob({ subject, data: marked }, config).ok).toBe(true);
    expect(parseJob({ subject, data: text }, config).ok).toBe(true);
  });

  it('never throws, whatever the bytes and subject (property)', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }), fc.string(), (bytes, subj) => {
        const parsed = parseJob({ subject: subj, data: bytes }, config);
        if (!parsed.ok) expect(parsed.reason.length).toBeGreaterThan(0);
      }),
    );
    fc.assert(
      fc.property(fc.string({ unit: 'binary', maxLength: 300 }), fc.string(), (text, subj) => {
        const parsed = parseJob({ subject: subj, data: text }, config);
        if (!parsed.ok) expect(parsed.reason.length).toBeGreaterThan(0);
      }),
    );
    fc.assert(
      fc.property(fc.jsonValue(), (value) => {
        const parsed = parseJob({ subject, data: encode(JSON.stringify(value)) }, config);
        if (!parsed.ok) expect(typeof parsed.reason).toBe('string');
      }),
    );
  });
});
