/**
 * Which URLs a job may call. A job can only reach the hosts its source allows (no SSRF into the
 * node's network): http(s) only, no user-info, and the host (and port, when the allow-list
 * entry names one) must match an `allowHosts` entry exactly.
 */
export function checkUrlAllowed(url: string, allowHosts: readonly string[]): string | undefined {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return `malformed URL "${truncate(url)}"`;
  }
  if (parsed.protocol !== 'https:' && parsed.protocol !== 'http:') {
    return `URL scheme "${parsed.protocol}" is not allowed: use http or https`;
  }
  if (parsed.username !== '' || parsed.password !== '')
    return 'URLs with user-info (user:password@) are not allowed';
  if (!isHostAllowed(parsed, allowHosts)) {
    return `host "${parsed.host}" is not in the source's allowHosts`;
  }
  return undefined;
}

export function isHostAllowed(url: URL, allowHosts: readonly string[]): boolean {
  const host = url.hostname.toLowerCase();
  const port = url.port !== '' ? url.port : url.protocol === 'https:' ? '443' : '80';
  for (const entry of allowHosts) {
    const lower = entry.toLowerCase();
    const colon = lower.lastIndexOf(':');
    const bracketed = lower.startsWith('[');
    const hasPort = colon > 0 && (!bracketed || lower.indexOf(']') < colon);
    const entryHost = hasPort ? lower.slice(0, colon) : lower;
    if (entryHost !== host) continue;
    if (!hasPort || lower.slice(colon + 1) === port) return true;
  }
  return false;
}

/** Query parameters that carry credentials; platforms echo them into pagination URLs. */
const CREDENTIAL_PARAMS =
  /^(access_token|token|refresh_token|id_token|client_secret|app_secret|appsecret_proof|api_key|apikey|key|secret|password|signature|sig|x-amz-signature|x-amz-credential|x-amz-security-token)$/i;

/** A URL with credentials removed: safe to log, checkpoint or put in a result event. */
export function redactUrl(url: string): string {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return '[unparseable url]';
  }
  parsed.username = '';
  parsed.password = '';
  for (const name of [...parsed.searchParams.keys()]) {
    if (CREDENTIAL_PARAMS.test(name)) parsed.searchParams.set(name, 'REDACTED');
  }
  return parsed.toString();
}

/** A URL with credential parameters and user-info removed, still usable for the next call. */
export function stripCredentials(url: string): string {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return url;
  }
  parsed.username = '';
  parsed.password = '';
  for (const name of [...parsed.searchParams.keys()]) {
    if (CREDENTIAL_PARAMS.test(name)) parsed.searchParams.delete(name);
  }
  return parsed.toString();
}

function truncate(text: string): string {
  return text.length > 120 ? `${text.slice(0, 120)}…` : text;
}
