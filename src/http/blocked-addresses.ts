import { isIP } from 'node:net';

/**
 * Addresses no job may reach even when a host name resolves to them: link-local (cloud metadata
 * services live at 169.254.169.254 and fd00:ec2::254), the unspecified address, and multicast.
 * Loopback and private ranges stay reachable because allowHosts names them explicitly when wanted.
 */
export function isBlockedAddress(address: string): boolean {
  const family = isIP(address);
  if (family === 4) {
    const [a, b] = address.split('.').map(Number) as [number, number];
    return (
      a === 0 ||
      (a === 169 && b === 254) ||
      (a === 100 && b === 100 && address === '100.100.100.200') ||
      a >= 224
    );
  }
  if (family === 6) {
    const lower = address.toLowerCase();
    if (lower.startsWith('::ffff:')) return isBlockedAddress(lower.slice(7));
    return lower === '::' || /^fe[89ab]/.test(lower) || lower.startsWith('ff') || lower === 'fd00:ec2::254';
  }
  return false;
}
